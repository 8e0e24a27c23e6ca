"""eBox as two web nodes and two workers behind nginx, on one machine, in the foreground.

Run through `scripts/cluster` (options: `scripts/cluster --help`). Every process listens on
127.0.0.1 only:

    nginx        Debian's, rendering deploy/nginx/*.conf: the portal on --portal-port (TLS),
                 SOAP with mutual TLS on --soap-port, the redirect from plain HTTP on --http-port
    web nodes    gunicorn -c python:ebox.gunicorn_conf, one per --node-ports entry
    workers      python worker.py, --workers of them
    PostgreSQL   the machine's (--postgres), where the database --database is made afresh
    Redis        a redis-server of its own, nothing saved
    S3           moto's server (docs/decisions/0003), the bucket created at start
    SMTP         aiosmtpd, keeping every e-mail in a Maildir under the state folder

eBox runs with EBOX_ENV=production and real values for every setting production asks for,
generated at the first start in the state folder (--state, instance/cluster by default): a local
CA and the portal's certificate, a CA for the SOAP clients and one client certificate, the
secret key and master key, the SAML service provider's key pair, a seal CA and seal certificate.
One setting cannot be real on one machine: EBOX_SAML_IDP_METADATA names an identity provider
that does not exist (metadata generated here, its key thrown away), so citizens cannot log in;
the portal, the staff area's refusals and SOAP work as in production.

The object store lives in moto's memory, so every start begins empty: the database is dropped
and made again, Redis starts empty, and the database is dropped at the end. What stays in the
state folder is the PKI, the keys and the settings (ebox.env, an EnvironmentFile as systemd
reads it), and the logs of the last run under logs/.

Ctrl-C or SIGTERM stops everything, nginx first and the stores last, each process group waited
for (and killed after 30 s). A process that dies meanwhile is reported and not restarted: the
others carry on, as behind a real load balancer.
"""

from __future__ import annotations

import argparse
import base64
import contextlib
import datetime as dt
import ipaddress
import json
import os
import re
import secrets
import shutil
import signal
import socket
import ssl
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

import boto3  # noqa: E402
import psycopg  # noqa: E402
from cryptography import x509  # noqa: E402
from cryptography.hazmat.primitives import hashes, serialization  # noqa: E402
from cryptography.hazmat.primitives.asymmetric import ec  # noqa: E402
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID  # noqa: E402

from ebox.evidence.seal import DEMO_FILES, demo_seal  # noqa: E402

NGINX = "/usr/sbin/nginx"
DEPLOY = ROOT / "deploy" / "nginx"
BIN = Path(sys.executable).parent
BUCKET = "ebox-documents"
REGION = "eu-west-1"
HOST = "localhost"
STOP_WAIT_SECONDS = 30


class Stop(Exception):
    """SIGINT or SIGTERM arrived."""


def _stop(signum: int, frame: Any) -> None:
    # Once: a second Ctrl-C during the stop must not leave processes behind.
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.signal(signal.SIGTERM, signal.SIG_IGN)
    raise Stop


# --- options ------------------------------------------------------------------------------------


def parse_options(argv: list[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="scripts/cluster",
        description="eBox as two web nodes and two workers behind nginx, on 127.0.0.1.",
    )
    parser.add_argument("--state", type=Path, default=ROOT / "instance" / "cluster")
    parser.add_argument("--portal-port", type=int, default=8443)
    parser.add_argument("--soap-port", type=int, default=9443, help="SOAP with mutual TLS")
    parser.add_argument("--http-port", type=int, default=8080, help="redirects to the portal")
    parser.add_argument(
        "--node-ports",
        default="8101,8102",
        help="one gunicorn node per port, comma-separated (default: 8101,8102)",
    )
    parser.add_argument("--node-workers", type=int, default=2, help="gunicorn workers per node")
    parser.add_argument("--workers", type=int, default=2, help="worker.py processes")
    parser.add_argument("--redis-port", type=int, default=8379)
    parser.add_argument("--s3-port", type=int, default=8900)
    parser.add_argument("--smtp-port", type=int, default=8025)
    parser.add_argument(
        "--postgres",
        default="postgresql://postgres@127.0.0.1:5432/postgres",
        help="a PostgreSQL database to connect to as a superuser, to make --database",
    )
    parser.add_argument(
        "--database",
        default="ebox_cluster",
        help="dropped and made again at start, dropped at the end (default: ebox_cluster)",
    )
    options = parser.parse_args(argv)
    options.node_ports = [int(port) for port in options.node_ports.split(",") if port]
    options.state = options.state.resolve()
    return options


# --- the state folder: PKI, keys, settings -------------------------------------------------------


def _name(common_name: str) -> x509.Name:
    return x509.Name(
        [
            x509.NameAttribute(NameOID.ORGANIZATION_NAME, "eBox local cluster"),
            x509.NameAttribute(NameOID.COMMON_NAME, common_name),
        ]
    )


def _key_pem(key: ec.EllipticCurvePrivateKey) -> bytes:
    return key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )


def _write(path: Path, data: bytes, *, secret: bool = False) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    temporary = path.with_name(path.name + ".new")
    temporary.write_bytes(data)
    temporary.chmod(0o600 if secret else 0o644)
    temporary.replace(path)


@dataclass
class Authority:
    """A CA of the state folder: its certificate and key, issuing leaves."""

    certificate: x509.Certificate
    key: ec.EllipticCurvePrivateKey

    @classmethod
    def load_or_make(cls, folder: Path, stem: str, common_name: str) -> Authority:
        cert_path, key_path = folder / f"{stem}.pem", folder / f"{stem}.key"
        if not cert_path.exists():
            key = ec.generate_private_key(ec.SECP256R1())
            name = _name(common_name)
            now = dt.datetime.now(dt.UTC) - dt.timedelta(minutes=5)
            certificate = (
                x509.CertificateBuilder()
                .subject_name(name)
                .issuer_name(name)
                .public_key(key.public_key())
                .serial_number(x509.random_serial_number())
                .not_valid_before(now)
                .not_valid_after(now + dt.timedelta(days=3650))
                .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
                .add_extension(_usage(key_cert_sign=True), critical=True)
                .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), False)
                .sign(key, hashes.SHA256())
            )
            _write(key_path, _key_pem(key), secret=True)
            _write(cert_path, certificate.public_bytes(serialization.Encoding.PEM))
        key = serialization.load_pem_private_key(key_path.read_bytes(), password=None)
        assert isinstance(key, ec.EllipticCurvePrivateKey)
        return cls(x509.load_pem_x509_certificate(cert_path.read_bytes()), key)

    def issue(
        self,
        cert_path: Path,
        key_path: Path,
        common_name: str,
        *,
        server_names: list[str] | None = None,
    ) -> None:
        """A TLS server certificate (with server_names) or client certificate, once."""
        if cert_path.exists() and key_path.exists():
            return
        key = ec.generate_private_key(ec.SECP256R1())
        now = dt.datetime.now(dt.UTC) - dt.timedelta(minutes=5)
        usage = ExtendedKeyUsageOID.SERVER_AUTH if server_names else ExtendedKeyUsageOID.CLIENT_AUTH
        builder = (
            x509.CertificateBuilder()
            .subject_name(_name(common_name))
            .issuer_name(self.certificate.subject)
            .public_key(key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(now)
            .not_valid_after(now + dt.timedelta(days=825))
            .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
            .add_extension(_usage(digital_signature=True), critical=True)
            .add_extension(x509.ExtendedKeyUsage([usage]), critical=False)
            .add_extension(
                x509.AuthorityKeyIdentifier.from_issuer_public_key(self.key.public_key()), False
            )
        )
        if server_names:
            names: list[x509.GeneralName] = [x509.DNSName(name) for name in server_names]
            names.append(x509.IPAddress(ipaddress.ip_address("127.0.0.1")))
            builder = builder.add_extension(x509.SubjectAlternativeName(names), critical=False)
        certificate = builder.sign(self.key, hashes.SHA256())
        _write(key_path, _key_pem(key), secret=True)
        _write(cert_path, certificate.public_bytes(serialization.Encoding.PEM))


def _usage(*, digital_signature: bool = False, key_cert_sign: bool = False) -> x509.KeyUsage:
    return x509.KeyUsage(
        digital_signature=digital_signature,
        content_commitment=False,
        key_encipherment=False,
        data_encipherment=False,
        key_agreement=False,
        key_cert_sign=key_cert_sign,
        crl_sign=key_cert_sign,
        encipher_only=False,
        decipher_only=False,
    )


def _self_signed(cert_path: Path, key_path: Path | None, common_name: str) -> None:
    """A self-signed certificate (the SAML key pairs); key_path None: the key is thrown away."""
    if cert_path.exists():
        return
    key = ec.generate_private_key(ec.SECP256R1())
    now = dt.datetime.now(dt.UTC) - dt.timedelta(minutes=5)
    certificate = (
        x509.CertificateBuilder()
        .subject_name(_name(common_name))
        .issuer_name(_name(common_name))
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now)
        .not_valid_after(now + dt.timedelta(days=3650))
        .sign(key, hashes.SHA256())
    )
    if key_path is not None:
        _write(key_path, _key_pem(key), secret=True)
    _write(cert_path, certificate.public_bytes(serialization.Encoding.PEM))


IDP_METADATA = """<?xml version="1.0" encoding="UTF-8"?>
<!-- No such identity provider: eBox in production needs one, and citizens cannot log in here. -->
<md:EntityDescriptor xmlns:md="urn:oasis:names:tc:SAML:2.0:metadata"
    xmlns:ds="http://www.w3.org/2000/09/xmldsig#" entityID="{public_url}/no-identity-provider">
  <md:IDPSSODescriptor protocolSupportEnumeration="urn:oasis:names:tc:SAML:2.0:protocol">
    <md:KeyDescriptor use="signing">
      <ds:KeyInfo><ds:X509Data><ds:X509Certificate>{certificate}</ds:X509Certificate></ds:X509Data></ds:KeyInfo>
    </md:KeyDescriptor>
    <md:SingleSignOnService Binding="urn:oasis:names:tc:SAML:2.0:bindings:HTTP-Redirect"
        Location="{public_url}/no-identity-provider"/>
  </md:IDPSSODescriptor>
</md:EntityDescriptor>
"""


@dataclass
class State:
    """Paths of the state folder."""

    root: Path

    @property
    def pki(self) -> Path:
        return self.root / "pki"

    @property
    def nginx(self) -> Path:
        return self.root / "nginx"

    @property
    def logs(self) -> Path:
        return self.root / "logs"

    @property
    def env_file(self) -> Path:
        return self.root / "ebox.env"

    @property
    def description(self) -> Path:
        """Written once everything answers, removed at the stop: ports, pids, paths."""
        return self.root / "cluster.json"

    def instance(self, node: int) -> Path:
        """EBOX_INSTANCE_PATH of web node `node` and the workers beside it (metrics)."""
        return self.root / f"node{node}"


def prepare_state(state: State, options: argparse.Namespace) -> dict[str, str]:
    """Make what is missing in the state folder; return eBox's settings (also in ebox.env)."""
    state.root.mkdir(parents=True, exist_ok=True)
    for folder in (state.pki, state.nginx, state.logs):
        folder.mkdir(exist_ok=True)
    pki = state.pki
    local_ca = Authority.load_or_make(pki, "local-ca", "eBox local cluster CA")
    # The file names of deploy/nginx/, in the state folder instead of /etc/nginx/ebox/.
    local_ca.issue(
        state.nginx / "ebox.example.fullchain.pem",
        state.nginx / "ebox.example.key",
        HOST,
        server_names=[HOST],
    )
    clients_ca = Authority.load_or_make(pki, "soap-clients-ca", "eBox local SOAP clients CA")
    shutil.copyfile(pki / "soap-clients-ca.pem", state.nginx / "soap-clients-ca.pem")
    clients_ca.issue(pki / "soap-client.pem", pki / "soap-client.key", "Local SOAP client")
    _self_signed(pki / "saml-sp-cert.pem", pki / "saml-sp-key.pem", "eBox local cluster SP")
    _self_signed(pki / "idp-cert.pem", None, "No such identity provider")
    seal = pki / "seal"
    demo_seal(seal)  # a CA and a seal certificate, made once (ebox/evidence/seal.py)
    public_url = f"https://{HOST}:{options.portal_port}"
    der = x509.load_pem_x509_certificate((pki / "idp-cert.pem").read_bytes()).public_bytes(
        serialization.Encoding.DER
    )
    metadata = IDP_METADATA.format(
        public_url=public_url, certificate=base64.b64encode(der).decode()
    )
    _write(pki / "idp-metadata.xml", metadata.encode())

    secrets_file = pki / "secrets.json"
    if not secrets_file.exists():
        kept = {
            "EBOX_SECRET_KEY": secrets.token_urlsafe(48),
            "EBOX_MASTER_KEY": base64.b64encode(os.urandom(32)).decode(),
        }
        _write(secrets_file, json.dumps(kept, indent=2).encode(), secret=True)
    kept = json.loads(secrets_file.read_text())
    root_ca, seal_key, seal_cert = (seal / name for name in DEMO_FILES)
    settings = {
        "EBOX_ENV": "production",
        "EBOX_INSTANCE_PATH": str(state.root / "cli"),
        "EBOX_PUBLIC_URL": public_url,
        "EBOX_SECRET_KEY": kept["EBOX_SECRET_KEY"],
        "EBOX_MASTER_KEY": kept["EBOX_MASTER_KEY"],
        "EBOX_DATABASE_URL": _database_url(options.postgres, options.database),
        "EBOX_REDIS_URL": f"redis://127.0.0.1:{options.redis_port}/0",
        "EBOX_STORAGE": "s3",
        "EBOX_S3_ENDPOINT_URL": f"http://127.0.0.1:{options.s3_port}",
        "EBOX_S3_BUCKET": BUCKET,
        "EBOX_S3_REGION": REGION,
        # moto takes any credentials; they never leave the loopback interface.
        "EBOX_S3_ACCESS_KEY_ID": "cluster-key-id",
        "EBOX_S3_SECRET_ACCESS_KEY": "cluster-secret",
        "EBOX_SAML_IDP": "federation",
        "EBOX_SAML_IDP_METADATA": str(pki / "idp-metadata.xml"),
        "EBOX_SAML_SP_CERT": str(pki / "saml-sp-cert.pem"),
        "EBOX_SAML_SP_KEY": str(pki / "saml-sp-key.pem"),
        "EBOX_SMTP_URL": f"smtp://127.0.0.1:{options.smtp_port}",
        "EBOX_SEAL_KEY": str(seal_key),
        "EBOX_SEAL_CERT": str(seal_cert),
        "EBOX_SEAL_CA_CERT": str(root_ca),
        "EBOX_TRUSTED_PROXIES": "1",
    }
    lines = [f"{name}={value}" for name, value in settings.items()]
    header = "# eBox's settings for scripts/cluster (systemd's EnvironmentFile format).\n"
    _write(state.env_file, (header + "\n".join(lines) + "\n").encode(), secret=True)
    return settings


def _database_url(postgres: str, database: str) -> str:
    base = postgres.rsplit("/", 1)[0].replace("postgresql://", "postgresql+psycopg://", 1)
    return f"{base}/{database}"


def render_nginx(state: State, options: argparse.Namespace) -> Path:
    """deploy/nginx/*.conf for this machine: its paths, ports and nodes, loopback only."""
    documented_ports = {"80": options.http_port, "443": options.portal_port}
    documented_ports["8443"] = options.soap_port
    site = (DEPLOY / "ebox.conf").read_text()
    common = (DEPLOY / "server-common.conf").read_text()

    def substitute(
        text: str, pattern: str, replacement: str | Callable[[re.Match[str]], str]
    ) -> str:
        changed, count = re.subn(pattern, replacement, text, flags=re.MULTILINE)
        if not count:
            raise SystemExit(f"deploy/nginx/ changed: {pattern!r} not found, update {__file__}")
        return changed

    site = substitute(site, r"^\s*listen \[::\]:\d+.*\n", "")
    site = substitute(
        site,
        r"^(\s*)listen (\d+)",
        lambda found: f"{found[1]}listen 127.0.0.1:{documented_ports[found[2]]}",
    )
    nodes = "".join(f"    server 127.0.0.1:{port};\n" for port in options.node_ports)
    site = substitute(
        site, r"^upstream ebox_web \{\n(?:\s*server .*\n)+", f"upstream ebox_web {{\n{nodes}"
    )
    site = substitute(site, r"server_name ebox\.example;", f"server_name {HOST};")
    site = substitute(
        site,
        r"https://ebox\.example\$request_uri",
        f"https://{HOST}:{options.portal_port}$request_uri",
    )
    site = substitute(site, r"/etc/nginx/ebox/", f"{state.nginx}/")
    common = substitute(common, r"/etc/nginx/ebox/", f"{state.nginx}/")
    _write(state.nginx / "server-common.conf", common.encode())
    _write(state.nginx / "ebox.conf", site.encode())
    temporary = state.nginx / "temp"
    temporary.mkdir(exist_ok=True)
    # Debian's /etc/nginx/nginx.conf reduced to what a process of this user needs.
    main = f"""# Made by scripts/cluster from deploy/nginx/; changed at every start.
pid {state.nginx}/nginx.pid;
worker_processes 2;
error_log {state.logs}/nginx-error.log notice;
events {{
    worker_connections 512;
}}
http {{
    include /etc/nginx/mime.types;
    default_type application/octet-stream;
    sendfile on;
    server_tokens off;
    log_format ebox '$remote_addr [$time_local] "$request" $status $body_bytes_sent '
                    '$request_time $upstream_addr request_id=$request_id';
    access_log {state.logs}/nginx-access.log ebox;
    client_body_temp_path {temporary}/body;
    proxy_temp_path {temporary}/proxy;
    fastcgi_temp_path {temporary}/fastcgi;
    uwsgi_temp_path {temporary}/uwsgi;
    scgi_temp_path {temporary}/scgi;
    include {state.nginx}/ebox.conf;
}}
"""
    _write(state.nginx / "nginx.conf", main.encode())
    return state.nginx / "nginx.conf"


# --- processes ----------------------------------------------------------------------------------


@dataclass
class Component:
    name: str
    command: list[str]
    environment: dict[str, str] = field(default_factory=dict)
    process: subprocess.Popen[bytes] | None = None
    log: IO[bytes] | None = None
    reported: bool = False


class Cluster:
    """The processes, started in order and stopped in the reverse order."""

    def __init__(self, state: State) -> None:
        self.state = state
        self.components: list[Component] = []

    def start(self, component: Component) -> Component:
        component.log = (self.state.logs / f"{component.name}.log").open("ab")
        component.process = subprocess.Popen(  # noqa: S603 (our own command lines)
            component.command,
            cwd=ROOT,
            env=component.environment or None,
            stdin=subprocess.DEVNULL,
            stdout=component.log,
            stderr=subprocess.STDOUT,
            # A group of its own: Ctrl-C reaches this script alone, which stops everything in
            # order; a process group is killed whole (gunicorn's workers with their master).
            start_new_session=True,
        )
        self.components.append(component)
        say(f"{component.name} started (pid {component.process.pid})")
        return component

    def check(self) -> None:
        """Report, once, each process that ended on its own."""
        for component in self.components:
            assert component.process is not None
            code = component.process.poll()
            if code is not None and not component.reported:
                component.reported = True
                how = (
                    f"killed by {signal.Signals(-code).name}" if code < 0 else f"exit status {code}"
                )
                say(f"{component.name} ended ({how}); the others carry on")

    def stop(self) -> None:
        for component in reversed(self.components):
            process = component.process
            assert process is not None
            if process.poll() is None:
                # nginx: SIGQUIT lets requests in flight finish; the others stop on SIGTERM.
                process.send_signal(signal.SIGQUIT if component.name == "nginx" else signal.SIGTERM)
                try:
                    process.wait(timeout=STOP_WAIT_SECONDS)
                except subprocess.TimeoutExpired:
                    say(f"{component.name} did not stop within {STOP_WAIT_SECONDS} s: killed")
            # Whatever is left of its group (a gunicorn worker whose master was killed, say).
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.killpg(process.pid, signal.SIGKILL)
            process.wait()
            if component.log is not None:
                component.log.close()
            say(f"{component.name} stopped")


def say(message: str) -> None:
    print(f"cluster: {message}", flush=True)


def wait_until(
    what: str, answers: Callable[[], bool], component: Component, timeout: float = 60
) -> None:
    deadline = time.monotonic() + timeout
    while not answers():
        assert component.process is not None
        if component.process.poll() is not None:
            raise SystemExit(f"{what} ended at start: see {component.log and component.log.name}")
        if time.monotonic() > deadline:
            raise SystemExit(f"{what} does not answer after {timeout:.0f} s")
        time.sleep(0.1)


def listening(port: int) -> Callable[[], bool]:
    def answers() -> bool:
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.5):
                return True
        except OSError:
            return False

    return answers


def ready(port: int) -> Callable[[], bool]:
    def answers() -> bool:
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{port}/readyz", timeout=2) as answer:
                return bool(answer.status == 200)
        except (OSError, urllib.error.URLError):
            return False

    return answers


def tls_answers(port: int, ca: Path) -> Callable[[], bool]:
    context = ssl.create_default_context(cafile=str(ca))

    def answers() -> bool:
        try:
            with (
                socket.create_connection(("127.0.0.1", port), timeout=1) as raw,
                context.wrap_socket(raw, server_hostname=HOST),
            ):
                return True
        except OSError:
            return False

    return answers


def make_database(postgres: str, database: str) -> None:
    if not re.fullmatch(r"[a-z_][a-z0-9_]{0,62}", database):
        raise SystemExit(f"--database {database!r}: lower-case letters, digits and _ only")
    try:
        connection = psycopg.connect(postgres, autocommit=True, connect_timeout=5)
    except psycopg.OperationalError as error:
        raise SystemExit(
            f"PostgreSQL does not answer ({error}): scripts/services starts it"
        ) from None
    with connection:
        connection.execute(f'DROP DATABASE IF EXISTS "{database}" WITH (FORCE)')
        connection.execute(f'CREATE DATABASE "{database}"')


def drop_database(postgres: str, database: str) -> None:
    try:
        with psycopg.connect(postgres, autocommit=True, connect_timeout=5) as connection:
            connection.execute(f'DROP DATABASE IF EXISTS "{database}" WITH (FORCE)')
    except psycopg.Error as error:
        say(f"database {database} not dropped: {error}")


def run(options: argparse.Namespace) -> None:
    state = State(options.state)
    if not Path(NGINX).exists():
        raise SystemExit(f"{NGINX} is missing: scripts/setup --dev installs Debian's nginx")
    say(f"state folder {state.root}")
    settings = prepare_state(state, options)
    nginx_conf = render_nginx(state, options)
    base = {key: value for key, value in os.environ.items() if not key.startswith("EBOX_")}
    base.update(settings)
    cluster = Cluster(state)
    made_database = False
    try:
        redis_folder = state.root / "redis"
        redis_folder.mkdir(exist_ok=True)
        redis = cluster.start(
            Component(
                "redis",
                [
                    shutil.which("redis-server") or "redis-server",
                    *("--port", str(options.redis_port), "--bind", "127.0.0.1"),
                    *("--save", "", "--appendonly", "no", "--dir", str(redis_folder)),
                ],
            )
        )
        s3 = cluster.start(
            Component(
                "s3",
                [str(BIN / "moto_server"), "-H", "127.0.0.1", "-p", str(options.s3_port)],
            )
        )
        smtp = cluster.start(
            Component(
                "smtp",
                [
                    sys.executable,
                    *("-m", "aiosmtpd", "-n", "-l", f"127.0.0.1:{options.smtp_port}"),
                    *("-c", "aiosmtpd.handlers.Mailbox", str(state.root / "mail")),
                ],
            )
        )
        wait_until("redis", listening(options.redis_port), redis)
        wait_until("s3", listening(options.s3_port), s3)
        wait_until("smtp", listening(options.smtp_port), smtp)
        boto3.session.Session().client(
            "s3",
            endpoint_url=settings["EBOX_S3_ENDPOINT_URL"],
            region_name=REGION,
            aws_access_key_id=settings["EBOX_S3_ACCESS_KEY_ID"],
            aws_secret_access_key=settings["EBOX_S3_SECRET_ACCESS_KEY"],
        ).create_bucket(Bucket=BUCKET, CreateBucketConfiguration={"LocationConstraint": REGION})

        make_database(options.postgres, options.database)
        made_database = True
        say(f"database {options.database} made; migrating")
        with (state.logs / "migrations.log").open("ab") as log:
            migrated = subprocess.run(  # noqa: S603 (our own command line)
                [str(BIN / "flask"), "--app", "app", "db", "upgrade"],
                cwd=ROOT,
                env=base,
                stdout=log,
                stderr=subprocess.STDOUT,
                check=False,
            )
        if migrated.returncode:
            raise SystemExit(f"the migrations failed: see {state.logs / 'migrations.log'}")

        nodes = []
        for number, port in enumerate(options.node_ports, start=1):
            environment = dict(base, EBOX_INSTANCE_PATH=str(state.instance(number)))
            nodes.append(
                cluster.start(
                    Component(
                        f"web{number}",
                        [
                            str(BIN / "gunicorn"),
                            *("-c", "python:ebox.gunicorn_conf", "--bind", f"127.0.0.1:{port}"),
                            *("--workers", str(options.node_workers), "app:app"),
                        ],
                        environment,
                    )
                )
            )
        for number in range(1, options.workers + 1):
            # Beside a web node, as on a host: its metrics are counted in that node's folder.
            beside = (number - 1) % len(options.node_ports) + 1
            environment = dict(base, EBOX_INSTANCE_PATH=str(state.instance(beside)))
            cluster.start(Component(f"worker{number}", [sys.executable, "worker.py"], environment))
        for node, port in zip(nodes, options.node_ports, strict=True):
            wait_until(node.name, ready(port), node)

        nginx_command = [NGINX, "-p", str(state.nginx), "-e", str(state.logs / "nginx-error.log")]
        nginx_command += ["-c", str(nginx_conf)]
        checked = subprocess.run(  # noqa: S603 (our own command line)
            [*nginx_command, "-t", "-q"], capture_output=True, text=True, check=False
        )
        if checked.returncode:
            raise SystemExit(f"nginx -t refused the configuration:\n{checked.stderr}")
        nginx = cluster.start(Component("nginx", [*nginx_command, "-g", "daemon off;"]))
        ca = state.pki / "local-ca.pem"
        wait_until("nginx", tls_answers(options.portal_port, ca), nginx)
        wait_until("nginx", tls_answers(options.soap_port, ca), nginx)

        description = {
            "public_url": settings["EBOX_PUBLIC_URL"],
            "soap_url": f"https://{HOST}:{options.soap_port}",
            "nodes": [f"http://127.0.0.1:{port}" for port in options.node_ports],
            "env_file": str(state.env_file),
            "ca": str(ca),
            "client_cert": str(state.pki / "soap-client.pem"),
            "client_key": str(state.pki / "soap-client.key"),
            "clients_ca": str(state.pki / "soap-clients-ca.pem"),
            "clients_ca_key": str(state.pki / "soap-clients-ca.key"),
            "logs": str(state.logs),
            "pids": {
                component.name: component.process.pid
                for component in cluster.components
                if component.process is not None
            },
        }
        _write(state.description, json.dumps(description, indent=2).encode())
        _announce(state, options, settings)
        while True:
            cluster.check()
            time.sleep(0.5)
    except Stop:
        say("stopping")
    finally:
        state.description.unlink(missing_ok=True)
        signal.signal(signal.SIGINT, signal.SIG_IGN)
        signal.signal(signal.SIGTERM, signal.SIG_IGN)
        cluster.stop()
        if made_database:
            drop_database(options.postgres, options.database)
            say(f"database {options.database} dropped")


def _announce(state: State, options: argparse.Namespace, settings: dict[str, str]) -> None:
    relative = state.root.relative_to(ROOT) if state.root.is_relative_to(ROOT) else state.root
    say("ready")
    print(
        f"""
  portal             {settings["EBOX_PUBLIC_URL"]}/   (trust {relative}/pki/local-ca.pem)
  SOAP, mutual TLS   https://{HOST}:{options.soap_port}/soap/EboxMessage/v1
                     client certificate {relative}/pki/soap-client.pem (+ .key)
  web nodes          {", ".join(f"http://127.0.0.1:{port}" for port in options.node_ports)}
  logs               {relative}/logs/
  operator commands  set -a; . {relative}/ebox.env; set +a; .venv/bin/flask --app app ebox ...

Ctrl-C stops everything.
""",
        flush=True,
    )


def main(argv: list[str]) -> int:
    options = parse_options(argv)
    signal.signal(signal.SIGINT, _stop)
    signal.signal(signal.SIGTERM, _stop)
    with contextlib.suppress(Stop):
        run(options)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
