"""A real RFC 3161 timestamp authority on loopback, for tests: OpenSSL itself signs the replies.

An http.server in a daemon thread takes POSTed application/timestamp-query bodies, hands each to
`openssl ts -reply` and answers its application/timestamp-reply. The authority has a test PKI of
its own, made in its folder: a root CA and a TSA certificate with the critical extendedKeyUsage
timeStamping that `openssl ts -verify` insists on.

Two knobs make a misbehaving authority out of the same real one: `digests` (which hash algorithms
OpenSSL grants; others get a rejection) and `alter_query` (rewrites each query before OpenSSL
answers it, e.g. another imprint, so the reply no longer matches the request).

Standalone, from the repository: `.venv/bin/python -m tests.evidence.tsa_server --port 8318`
serves until interrupted.
"""

from __future__ import annotations

import argparse
import contextlib
import socket
import subprocess
import tempfile
import threading
from collections.abc import Callable
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from types import TracebackType

from cryptography.x509.oid import ExtendedKeyUsageOID

from tests.pki import issue, make_ca

PATH = "/tsa"
TEST_POLICY = "1.2.3.4.1"  # the example policy of OpenSSL's documentation: a test TSA's own

CONFIG = """\
[ tsa ]
default_tsa = test_tsa

[ test_tsa ]
serial = {folder}/serial
crypto_device = builtin
signer_cert = {folder}/tsa-cert.pem
signer_key = {folder}/tsa-key.pem
certs = {folder}/ca.pem
signer_digest = sha256
default_policy = {policy}
digests = {digests}
accuracy = secs:1
ordering = no
tsa_name = yes
ess_cert_id_chain = no
ess_cert_id_alg = sha256
"""


class TimestampAuthority:
    """The authority: `url` takes queries, `ca_pem_path` is the root a verifier trusts,
    `cert_pem_path` the TSA signing certificate (`openssl ts -verify -untrusted`)."""

    def __init__(
        self,
        folder: Path,
        *,
        port: int = 0,
        digests: str = "sha256, sha384, sha512",
        alter_query: Callable[[bytes], bytes] | None = None,
    ) -> None:
        self.folder = folder
        self.ca_pem_path = folder / "ca.pem"
        self.cert_pem_path = folder / "tsa-cert.pem"
        self.key_pem_path = folder / "tsa-key.pem"
        self.config_path = folder / "tsa.cnf"
        self.alter_query = alter_query
        self._lock = threading.Lock()  # openssl rewrites the serial file on every reply
        folder.mkdir(parents=True, exist_ok=True)
        _write_pki(folder)
        (folder / "serial").write_text("01\n")
        self.config_path.write_text(
            CONFIG.format(folder=folder, policy=TEST_POLICY, digests=digests)
        )
        self._server = _Server(("127.0.0.1", port), _Handler, self)
        self._thread = threading.Thread(
            target=self._server.serve_forever, name="test-tsa", daemon=True
        )

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self._server.server_port}{PATH}"

    def start(self) -> TimestampAuthority:
        self._thread.start()
        return self

    def stop(self) -> None:
        if self._thread.is_alive():  # shutdown() would wait forever for a loop never started
            self._server.shutdown()
            self._thread.join(timeout=10)
        self._server.server_close()

    def __enter__(self) -> TimestampAuthority:
        return self.start()

    def __exit__(
        self,
        kind: type[BaseException] | None,
        error: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.stop()

    def reply(self, query: bytes) -> bytes:
        """OpenSSL's DER reply to a DER query; ValueError when OpenSSL cannot answer at all."""
        if self.alter_query is not None:
            query = self.alter_query(query)
        with self._lock, tempfile.TemporaryDirectory(dir=self.folder) as work:
            query_file, reply_file = Path(work) / "query.tsq", Path(work) / "reply.tsr"
            query_file.write_bytes(query)
            result = subprocess.run(
                ["openssl", "ts", "-reply", "-config", str(self.config_path),
                 "-queryfile", str(query_file), "-inkey", str(self.key_pem_path),
                 "-signer", str(self.cert_pem_path), "-out", str(reply_file)],
                capture_output=True, text=True, check=False,
            )  # fmt: skip
            if result.returncode != 0:
                raise ValueError(result.stderr)
            return reply_file.read_bytes()


def openssl_ts_verify(
    authority: TimestampAuthority,
    data: bytes,
    token: bytes,
    folder: Path,
    *,
    untrusted: bool = True,
) -> subprocess.CompletedProcess[str]:
    """`openssl ts -verify` of a DER token over data, trusting only the authority's root.

    untrusted=False leaves out the TSA certificate: the token must then carry it itself.
    """
    (folder / "data.bin").write_bytes(data)
    (folder / "token.der").write_bytes(token)
    command = ["openssl", "ts", "-verify", "-data", str(folder / "data.bin"),
               "-in", str(folder / "token.der"), "-token_in",
               "-CAfile", str(authority.ca_pem_path)]  # fmt: skip
    if untrusted:
        command += ["-untrusted", str(authority.cert_pem_path)]
    return subprocess.run(command, capture_output=True, text=True, check=False)


def unreachable_url() -> str:
    """A timestamp URL on loopback where nothing listens (the port was free a moment ago)."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    return f"http://127.0.0.1:{port}{PATH}"


class _Server(ThreadingHTTPServer):
    daemon_threads = True

    def __init__(
        self,
        address: tuple[str, int],
        handler: type[BaseHTTPRequestHandler],
        authority: TimestampAuthority,
    ) -> None:
        self.authority = authority
        super().__init__(address, handler)


class _Handler(BaseHTTPRequestHandler):
    server: _Server

    def do_POST(self) -> None:
        if self.path != PATH:
            self.send_error(404)
            return
        if self.headers.get("Content-Type") != "application/timestamp-query":
            self.send_error(415, "expected application/timestamp-query")
            return
        query = self.rfile.read(int(self.headers.get("Content-Length") or 0))
        try:
            reply = self.server.authority.reply(query)
        except ValueError as exc:
            self.send_error(400, "openssl ts -reply failed", str(exc))
            return
        self.send_response(200)
        self.send_header("Content-Type", "application/timestamp-reply")
        self.send_header("Content-Length", str(len(reply)))
        self.end_headers()
        self.wfile.write(reply)

    def log_message(self, format: str, *args: object) -> None:
        pass  # quiet: pytest shows failures, not every request


def _write_pki(folder: Path) -> None:
    ca = make_ca("eBox test timestamp root CA")
    tsa = issue(
        ca, "eBox test timestamp authority", extended_usage=ExtendedKeyUsageOID.TIME_STAMPING
    )
    (folder / "ca.pem").write_bytes(ca.cert_pem)
    (folder / "tsa-cert.pem").write_bytes(tsa.cert_pem)
    (folder / "tsa-key.pem").write_bytes(tsa.key_pem)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--port", type=int, default=0)
    parser.add_argument("--folder", type=Path, help="where the PKI goes (default: a temp dir)")
    arguments = parser.parse_args()
    with tempfile.TemporaryDirectory() as scratch:
        folder = arguments.folder or Path(scratch)
        with TimestampAuthority(folder, port=arguments.port) as authority:
            print(authority.url)
            print(f"root CA: {authority.ca_pem_path}")
            print(f"TSA certificate: {authority.cert_pem_path}", flush=True)
            with contextlib.suppress(KeyboardInterrupt):
                threading.Event().wait()


if __name__ == "__main__":
    main()
