"""Publication over SOAP (and REST): documents per second through the real service under gunicorn.

    .venv/bin/python benchmarks/publish.py [--api soap|rest] [--workers 2] [--threads 1]
        [--requests 2000] [--concurrency 8] [--size-kb 100] [--profile 200]

Builds a fresh PostgreSQL database with the migrations (dropped again at the end), a sender
with an RSA certificate and a message type, some citizens, encrypted local storage in a
temporary directory and the replay guard on a Redis database of its own. Then `gunicorn
app:app` serves eBox on 127.0.0.1 and a pool of client threads posts publishEboxMessage
requests, each a ~100 kB PDF under a ticket of its own, WS-Security signed (X.509 token, signed
Timestamp, RSA-SHA256). Requests are signed before the timed part, in batches, so that the
client's signing is not measured and every Timestamp is still valid (5 minutes) when it arrives.

Prints documents/s, latency percentiles and every fault; then the floor: the same gunicorn
settings serving a bare Flask app that, per POST, writes 100 kB to a file and INSERTs one row
with psycopg, fed by the same client. --profile N runs N more requests in this process and
prints where one spends its time, stage by stage (wall clock and CPU).

--api rest measures, in the same run and on the same gunicorn, SOAP and then REST: the same
PDF, the same number of publications and client threads, each REST request a POST
/api/v1/messages (multipart: the message part and the PDF, an Idempotency-Key of its own) with
a bearer token fetched before the timed part. It prints both rates, the CPU of gunicorn per
document for each, and REST / SOAP (target: REST's CPU per document no more than SOAP's).
"""

from __future__ import annotations

import argparse
import base64
import contextlib
import functools
import hashlib
import http.client
import importlib
import itertools
import json
import os
import signal
import subprocess
import sys
import tempfile
import textwrap
import threading
import time
import uuid
from collections import Counter
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import urlencode

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from flask import Flask
from flask_migrate import upgrade
from lxml import etree
from redis import Redis
from sqlalchemy import create_engine, event, text
from sqlalchemy.engine import make_url

from benchmarks.common import add_database_options, free_port, fresh_database
from ebox import create_app
from ebox.audit.services import OPERATOR
from ebox.config import Settings
from ebox.db_types import utcnow
from ebox.demo.pdf import make_pdf
from ebox.extensions import db
from ebox.senders import services as senders
from ebox.senders.certificates import parse_certificate
from ebox.soap.envelope import EBOX_NS, element
from ebox.soap.xml import SOAP11_NS
from tests.api.api_helpers import client_assertion, token_form
from tests.factories import create_citizen
from tests.soap.wss_helpers import Identity, body_of, make_envelope, make_identity, serialize, sign

ROOT = Path(__file__).resolve().parent.parent
SOAP_PATH = "/soap/EboxMessage/v1"
REST_PATH = "/api/v1/messages"
MESSAGE_TYPE = "BENCH"
ENTERPRISE_NUMBER = "0999999999"
HEADERS = {"Content-Type": "text/xml; charset=utf-8", "SOAPAction": '""'}
# The address eBox names in the assertion's audience; nothing is sent there.
PUBLIC_URL = "https://ebox.bench.example"

# The floor: a publication endpoint that does the least any would (one file, one row).
FLOOR_APP = '''
"""Per POST: the document's bytes to a file, one row INSERTed and committed."""

import os
import threading
import uuid

import psycopg
from flask import Flask, request

DSN = os.environ["BENCH_FLOOR_DSN"]
FOLDER = os.environ["BENCH_FLOOR_FOLDER"]
SIZE = int(os.environ["BENCH_FLOOR_SIZE"])
FSYNC = os.environ["BENCH_FLOOR_FSYNC"] == "1"
app = Flask(__name__)
_local = threading.local()


def _connection():
    connection = getattr(_local, "connection", None)
    if connection is None or connection.closed:
        connection = _local.connection = psycopg.connect(DSN, autocommit=True)
    return connection


@app.get("/healthz")
def healthz():
    return "ok"


@app.post("/")
def publish():
    data = request.get_data()[:SIZE]
    name = uuid.uuid4().hex
    with open(os.path.join(FOLDER, name), "wb") as handle:
        handle.write(data)
        if FSYNC:
            handle.flush()
            os.fsync(handle.fileno())
    _connection().execute(
        "INSERT INTO floor_documents (name, size_bytes) VALUES (%s, %s)", (name, len(data))
    )
    return "ok"
'''

# Where a publication spends its time (--profile): what, and the function that does it (in the
# namespace its caller looks it up in). Indented rows are part of the row above them.
STAGES = (
    ("hardened XML parse", "ebox.soap.views", "parse_envelope"),
    ("WS-Security, in all", "ebox.soap.views", "authenticate"),
    ("  Id table", "ebox.soap.wssecurity", "_collect_ids"),
    ("  certificate (remembered, or X.509 + DB)", "ebox.soap.wssecurity", "find_signer"),
    ("  our digests (exc-C14N + SHA-256)", "ebox.soap.wssecurity", "_check_digest"),
    ("  signature over SignedInfo (RSA)", "ebox.soap.wssecurity", "verify_signed_info"),
    ("  replay guard (INSERT ON CONFLICT)", "ebox.soap.wssecurity", "remember_request"),
    ("XSD validation", "ebox.soap.views", "_validate"),
    ("base64 decode of the PDF", "ebox.soap.messages", "_base64"),
    ("message type (remembered, or DB)", "ebox.senders.directory", "find_message_type"),
    ("publication, in all", "ebox.mailbox.publication", "publish"),
    ("  document digest", "ebox.mailbox.publication", "check_digest"),
    ("  PDF parse (pyHanko)", "ebox.mailbox.publication", "is_pdf"),
    ("  store, then INSERT (+ CitizenActivated)", "ebox.mailbox.publication", "_insert_or_find"),
    ("    encrypt + write + fsync", "ebox.mailbox.attachments", "store_content"),
    ("audit chain (free chain, insert + head)", "ebox.mailbox.sender_messages", "record_event"),
    ("commit", "ebox.transactions", "commit"),
)
# The same for REST (--api rest --profile N).
REST_STAGES = (
    ("bearer token (remembered, or JWT)", "ebox.api.tokens", "read"),
    ("certificate (remembered, or DB)", "ebox.api.auth", "find_signer_by_fingerprint"),
    ("rate limit (Redis)", "ebox.rate_limits", "take"),
    ("multipart body and message part", "ebox.api.publication", "read_submission"),
    ("Idempotency-Key claimed (INSERT ON CONFLICT)", "ebox.api.idempotency", "claim_key"),
    ("publication, in all", "ebox.mailbox.publication", "publish"),
    ("  store, then INSERT (+ CitizenActivated)", "ebox.mailbox.publication", "_insert_or_find"),
    ("    encrypt + write + fsync", "ebox.mailbox.attachments", "store_content"),
    ("audit chain (free chain, insert + head)", "ebox.mailbox.sender_messages", "record_event"),
    ("Idempotency-Key's document (UPDATE)", "ebox.api.idempotency", "attach_document"),
    ("answer (JSON)", "ebox.api.publication", "_answer"),
    ("commit", "ebox.transactions", "commit"),
)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--api",
        choices=("soap", "rest"),
        default="soap",
        help="rest: SOAP and REST side by side, same documents and publishers",
    )
    parser.add_argument("--workers", type=int, default=2, help="gunicorn worker processes")
    parser.add_argument("--threads", type=int, default=1, help="threads per gunicorn worker")
    parser.add_argument("--requests", type=int, default=2000, help="timed publications")
    parser.add_argument("--concurrency", type=int, default=8, help="client threads")
    parser.add_argument("--size-kb", type=int, default=100, help="size of each PDF")
    parser.add_argument("--batch", type=int, default=1000, help="requests signed at a time")
    parser.add_argument("--warmup", type=int, default=40, help="untimed requests first")
    parser.add_argument("--citizens", type=int, default=200)
    parser.add_argument(
        "--floor",
        action=argparse.BooleanOptionalAction,
        default=True,
        help="also measure the bare Flask floor",
    )
    parser.add_argument(
        "--floor-fsync",
        action=argparse.BooleanOptionalAction,
        default=True,
        help="the floor fsyncs its file, as eBox's local store does",
    )
    parser.add_argument(
        "--profile", type=int, default=0, metavar="N", help="profile N requests in-process"
    )
    add_database_options(parser, "ebox_bench_publish")
    parser.add_argument(
        "--redis-url",
        default="redis://127.0.0.1:6379/13",
        help="the replay guard's Redis: a database number nothing else uses",
    )
    args = parser.parse_args()
    size = args.size_kb * 1024

    with tempfile.TemporaryDirectory(prefix="ebox-bench-") as folder_name:
        folder = Path(folder_name)
        with fresh_database(
            args.database_server, args.database, keep=args.keep_database
        ) as database_url:
            settings = Settings(
                env="development",
                instance_path=folder / "instance",
                database_url=database_url,
                storage_path=str(folder / "documents"),
                redis_url=args.redis_url,
                public_url=PUBLIC_URL,
            )
            app = create_app(settings)
            with app.app_context():
                upgrade()
                identity, recipients = prepare_data(args.citizens)
                db.session.remove()
                db.engine.dispose()
            pdf = make_pdf("Benchmark letter", ["One of many"], total_size=size)
            factory = RequestFactory(identity, pdf, recipients)
            print(
                f"eBox: gunicorn --workers {args.workers} --threads {args.threads}, "
                f"{args.requests} publications of {len(pdf) / 1024:.0f} kB "
                f"({len(factory.one()) / 1024:.0f} kB signed request), "
                f"client concurrency {args.concurrency}, {os.cpu_count()} cores"
            )
            rest = None
            try:
                if args.api == "rest":
                    rest = RestRequestFactory(pdf, recipients, factory.run)
                    soap, ebox = measure_ebox(args, settings, folder, factory, rest)
                    report("eBox SOAP", soap, unit="documents/s")
                    report("eBox REST", ebox, unit="documents/s")
                    compare(soap, ebox)
                else:
                    ebox, _nothing = measure_ebox(args, settings, folder, factory)
                    report("eBox", ebox, unit="documents/s")
                if args.floor:
                    floor = measure_floor(args, database_url, folder, factory.one(), size)
                    report("floor", floor, unit="requests/s")
                    print(
                        f"eBox / floor: {ebox.per_second / floor.per_second:.0%} "
                        "(target: >= 250 documents/s and <= 5 ms of gunicorn CPU per document)"
                    )
                if args.profile:
                    profile(app, factory, args.profile, rest)
            finally:
                forget_replays(args.redis_url)


# --- preparation --------------------------------------------------------------------------


def prepare_data(citizen_count: int) -> tuple[Identity, list[str]]:
    """The sender (with its certificate and message type) and the citizens, committed."""
    identity = make_identity("rsa", name="Benchmark Institution Back Office")
    senders.create_sender(
        name="Benchmark Institution",
        enterprise_number=ENTERPRISE_NUMBER,
        certificate=parse_certificate(identity.cert_pem.decode(), now=utcnow()),
        message_types=[senders.parse_message_type_option(f"{MESSAGE_TYPE}:60:Benchmark")],
        may_send_registered=False,
        contact=senders.ContactDetails(),
        actor=OPERATOR,
    )
    recipients = [create_citizen().national_number for _ in range(citizen_count)]
    db.session.commit()
    return identity, recipients


class RequestFactory:
    """Signed publishEboxMessage requests, each under a ticket of its own."""

    def __init__(self, identity: Identity, pdf: bytes, recipients: Sequence[str]) -> None:
        self.identity = identity
        self.content = base64.b64encode(pdf).decode()
        self.digest = base64.b64encode(hashlib.sha256(pdf).digest()).decode()
        self.recipients = recipients
        self.run = uuid.uuid4().hex[:8]
        self.numbers = itertools.count(1)

    def one(self) -> bytes:
        number = next(self.numbers)
        recipient = self.recipients[number % len(self.recipients)]
        digest = element("Digest", self.digest)
        digest.set("Algorithm", "SHA-256")
        payload = element(
            "publishEboxMessageRequest",
            None,
            element("MessageID", None, element("Ticket", f"B-{self.run}-{number}")),
            element("Recipient", recipient),
            element("MessageType", MESSAGE_TYPE),
            element("Language", "nl"),
            element("Title", f"Benchmark letter {number}"),
            element(
                "Document",
                None,
                element("DownloadFileName", "letter.pdf"),
                element("MediaType", "application/pdf"),
                digest,
                element("Content", self.content),
            ),
        )
        envelope = make_envelope()
        body = body_of(envelope)
        body.remove(body[0])
        body.append(payload)
        return serialize(sign(envelope, self.identity))

    def batch(self, count: int) -> list[bytes]:
        return [self.one() for _ in range(count)]


class RestRequestFactory:
    """POST /api/v1/messages bodies for the same PDF: multipart, each under a ticket and an
    Idempotency-Key of its own. The bearer token is set once fetched."""

    BOUNDARY = "ebox-bench-boundary-7d1f"

    def __init__(self, pdf: bytes, recipients: Sequence[str], run: str) -> None:
        self.pdf = pdf
        self.sha256 = hashlib.sha256(pdf).hexdigest()
        self.recipients = recipients
        self.run = run
        self.numbers = itertools.count(1)
        self.token = ""

    def one(self) -> tuple[bytes, dict[str, str]]:
        number = next(self.numbers)
        message = {
            "recipient": self.recipients[number % len(self.recipients)],
            "messageType": MESSAGE_TYPE,
            "language": "nl",
            "title": f"Benchmark letter {number}",
            "reference": {"ticket": f"R-{self.run}-{number}"},
            "documents": [
                {"fileName": "letter.pdf", "mediaType": "application/pdf", "sha256": self.sha256}
            ],
        }
        body = b"".join(
            [
                self._part("message", "message.json", "application/json"),
                json.dumps(message).encode(),
                self._part("documents", "letter.pdf", "application/pdf"),
                self.pdf,
                f"\r\n--{self.BOUNDARY}--\r\n".encode(),
            ]
        )
        headers = {
            "Content-Type": f"multipart/form-data; boundary={self.BOUNDARY}",
            "Authorization": f"Bearer {self.token}",
            "Idempotency-Key": f"bench-{self.run}-{number}",
        }
        return body, headers

    def _part(self, name: str, file_name: str, media_type: str) -> bytes:
        opening = "" if name == "message" else "\r\n"
        return (
            f"{opening}--{self.BOUNDARY}\r\n"
            f'Content-Disposition: form-data; name="{name}"; filename="{file_name}"\r\n'
            f"Content-Type: {media_type}\r\n\r\n"
        ).encode()

    def batch(self, count: int) -> list[tuple[bytes, dict[str, str]]]:
        return [self.one() for _ in range(count)]


def fetch_token(server: Server, identity: Identity) -> str:
    """An access token from the served token endpoint (the assertion signed here, untimed)."""
    assertion = client_assertion(identity, ENTERPRISE_NUMBER, audience=f"{PUBLIC_URL}/api/v1/token")
    connection = http.client.HTTPConnection("127.0.0.1", server.port, timeout=30)
    connection.request(
        "POST",
        "/api/v1/token",
        body=urlencode(token_form(assertion)),
        headers={"Content-Type": "application/x-www-form-urlencoded"},
    )
    response = connection.getresponse()
    answer = response.read()
    connection.close()
    if response.status != 200:
        sys.exit(f"the token endpoint refused: {answer[:500]!r}")
    return str(json.loads(answer)["access_token"])


def forget_replays(redis_url: str) -> None:
    """The replay guard's keys expire by themselves; remove them now all the same."""
    client = Redis.from_url(redis_url)
    try:
        keys = list(client.scan_iter(match="ebox:wss:seen:*", count=1000))
        if keys:
            client.delete(*keys)
    finally:
        client.close()


# --- servers ------------------------------------------------------------------------------


@dataclass(frozen=True)
class Server:
    port: int
    pid: int  # gunicorn's master; its workers are its children


@contextlib.contextmanager
def gunicorn(
    target: str, *, workers: int, threads: int, cwd: Path, env: dict[str, str], log: Path
) -> Iterator[Server]:
    """gunicorn serving target on 127.0.0.1 until the block ends."""
    port = free_port()
    command = [
        sys.executable,
        "-m",
        "gunicorn",
        "--bind",
        f"127.0.0.1:{port}",
        "--workers",
        str(workers),
        "--threads",
        str(threads),
        "--timeout",
        "120",
        target,
    ]
    with log.open("ab") as output:
        server = subprocess.Popen(  # noqa: S603 (our own command line)
            command, cwd=cwd, env={**os.environ, **env}, stdout=output, stderr=output
        )
    try:
        wait_until_ready(server, port, log)
        yield Server(port, server.pid)
    finally:
        server.send_signal(signal.SIGTERM)
        try:
            server.wait(timeout=30)
        except subprocess.TimeoutExpired:
            server.kill()
            server.wait()


def wait_until_ready(server: subprocess.Popen[bytes], port: int, log: Path) -> None:
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        if server.poll() is not None:
            sys.exit(f"gunicorn stopped at start:\n{log.read_text(errors='replace')[-3000:]}")
        try:
            connection = http.client.HTTPConnection("127.0.0.1", port, timeout=5)
            connection.request("GET", "/healthz")
            if connection.getresponse().status == 200:
                connection.close()
                return
        except OSError:
            pass
        time.sleep(0.2)
    sys.exit("gunicorn did not answer /healthz within 60 seconds")


# --- the client ---------------------------------------------------------------------------


@dataclass
class Result:
    latencies: list[float] = field(default_factory=list)  # seconds, successful requests only
    seconds: float = 0.0  # wall-clock time of the timed sending
    faults: Counter[str] = field(default_factory=Counter)
    examples: dict[str, str] = field(default_factory=dict)
    # CPU seconds while sending: gunicorn (master and workers), this client, the whole machine.
    server_cpu: float = 0.0
    client_cpu: float = 0.0
    machine_busy: float = 0.0
    machine_total: float = 0.0
    peak_worker_mb: float = 0.0  # the largest resident memory a gunicorn worker reached

    @property
    def per_second(self) -> float:
        return len(self.latencies) / self.seconds if self.seconds else 0.0


Post = tuple[bytes, Mapping[str, str]]  # a request's body and headers


def send_all(
    server: Server,
    path: str,
    bodies: Sequence[bytes | Post],
    concurrency: int,
    check: Callable[[int, bytes], tuple[str, str] | None],
    result: Result,
) -> None:
    """POST every body (with HEADERS, or the headers given with it) with `concurrency`
    threads, each on a connection of its own."""
    lock = threading.Lock()
    positions = iter(range(len(bodies)))

    def next_body() -> Post | None:
        with lock:
            position = next(positions, None)
        if position is None:
            return None
        body = bodies[position]
        return (body, HEADERS) if isinstance(body, bytes) else body

    def record(latency: float | None, problem: tuple[str, str] | None) -> None:
        with lock:
            if problem is None and latency is not None:
                result.latencies.append(latency)
            elif problem is not None:
                result.faults[problem[0]] += 1
                result.examples.setdefault(problem[0], problem[1])

    def worker() -> None:
        connection = http.client.HTTPConnection("127.0.0.1", server.port, timeout=120)
        while (post := next_body()) is not None:
            body, headers = post
            started = time.perf_counter()
            try:
                connection.request("POST", path, body=body, headers=dict(headers))
                response = connection.getresponse()
                answer = response.read()
            except (OSError, http.client.HTTPException) as exc:
                connection.close()
                record(None, ("CONNECTION", repr(exc)))
                continue
            latency = time.perf_counter() - started
            record(latency, check(response.status, answer))
        connection.close()

    threads = [threading.Thread(target=worker) for _ in range(concurrency)]
    server_before, client_before = tree_cpu_seconds(server.pid), time.process_time()
    busy_before, total_before = machine_cpu_seconds()
    started = time.perf_counter()
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    result.seconds += time.perf_counter() - started
    busy_after, total_after = machine_cpu_seconds()
    result.server_cpu += tree_cpu_seconds(server.pid) - server_before
    result.client_cpu += time.process_time() - client_before
    result.machine_busy += busy_after - busy_before
    result.machine_total += total_after - total_before


def tree_cpu_seconds(root: int) -> float:
    """CPU time (user + system) of a process and of its children."""
    ticks = 0
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except OSError:  # the process ended meanwhile
            continue
        if int(stat.parent.name) == root or int(fields[1]) == root:
            ticks += int(fields[11]) + int(fields[12])
    return ticks / os.sysconf("SC_CLK_TCK")


def peak_worker_mb(master: int) -> float:
    """The highest resident memory (VmHWM) any worker of the gunicorn master reached, in MB."""
    peak = 0
    for status in Path("/proc").glob("[0-9]*/status"):
        try:
            fields = dict(line.split(":", 1) for line in status.read_text().splitlines())
        except (OSError, ValueError):  # the process ended meanwhile
            continue
        if int(fields.get("PPid", "0")) == master and "VmHWM" in fields:
            peak = max(peak, int(fields["VmHWM"].split()[0]))
    return peak / 1024


def machine_cpu_seconds() -> tuple[float, float]:
    """CPU time of the whole machine, all cores: (busy, busy + idle)."""
    with open("/proc/stat") as stat:
        values = [int(value) for value in stat.readline().split()[1:9]]
    idle = values[3] + values[4]  # idle, iowait
    return (sum(values) - idle) / os.sysconf("SC_CLK_TCK"), sum(values) / os.sysconf("SC_CLK_TCK")


def check_publication(status: int, answer: bytes) -> tuple[str, str] | None:
    """None for a publishEboxMessageResponse; else the Fault's code and message."""
    if status == 200 and b"publishEboxMessageResponse" in answer:
        return None
    try:
        root = etree.fromstring(answer)
    except etree.XMLSyntaxError:
        return f"HTTP {status}", answer[:200].decode(errors="replace")
    fault = root.find(f"{{{SOAP11_NS}}}Body/{{{SOAP11_NS}}}Fault")
    if fault is None:
        return f"HTTP {status}", answer[:200].decode(errors="replace")
    code = fault.findtext(f"detail/{{{EBOX_NS}}}EboxFault/{{{EBOX_NS}}}Code") or f"HTTP {status}"
    return code, fault.findtext("faultstring") or ""


def check_rest_publication(status: int, answer: bytes) -> tuple[str, str] | None:
    """None for 201 Created; else the problem's code and detail."""
    if status == 201:
        return None
    try:
        problem = json.loads(answer)
        return str(problem.get("code", f"HTTP {status}")), str(problem.get("detail", ""))
    except ValueError:
        return f"HTTP {status}", answer[:200].decode(errors="replace")


def check_floor(status: int, answer: bytes) -> tuple[str, str] | None:
    if status == 200:
        return None
    return f"HTTP {status}", answer[:200].decode(errors="replace")


# --- the two measurements -----------------------------------------------------------------


def measure_ebox(
    args: argparse.Namespace,
    settings: Settings,
    folder: Path,
    factory: RequestFactory,
    rest: RestRequestFactory | None = None,
) -> tuple[Result, Result]:
    """SOAP's result, and REST's on the same server when rest is given (else an empty one)."""
    env = {
        "EBOX_ENV": settings.env,
        "EBOX_INSTANCE_PATH": str(settings.instance_path),
        "EBOX_DATABASE_URL": settings.database_url,
        "EBOX_STORAGE_PATH": settings.storage_path,
        "EBOX_REDIS_URL": settings.redis_url,
        "EBOX_PUBLIC_URL": PUBLIC_URL,
        # One token serves the whole run, and the sender's budget is not what is measured.
        "EBOX_API_TOKEN_MINUTES": "60",
        "EBOX_API_REQUESTS_PER_MINUTE": "1000000",
    }
    log = folder / "gunicorn-ebox.log"
    with gunicorn(
        "app:app", workers=args.workers, threads=args.threads, cwd=ROOT, env=env, log=log
    ) as server:
        if rest is not None:
            rest.token = fetch_token(server, factory.identity)
        warm_up(args, server, log, SOAP_PATH, factory.batch, check_publication)
        if rest is not None:
            warm_up(args, server, log, REST_PATH, rest.batch, check_rest_publication)
        soap = Result()
        remaining = args.requests
        while remaining > 0:
            count = min(args.batch, remaining)
            signing = time.perf_counter()
            bodies = factory.batch(count)
            print(f"  signed {count} requests in {time.perf_counter() - signing:.1f} s (untimed)")
            send_all(server, SOAP_PATH, bodies, args.concurrency, check_publication, soap)
            remaining -= count
        soap.peak_worker_mb = peak_worker_mb(server.pid)
        over_rest = Result()
        if rest is not None:
            posts = rest.batch(args.requests)
            send_all(server, REST_PATH, posts, args.concurrency, check_rest_publication, over_rest)
            over_rest.peak_worker_mb = peak_worker_mb(server.pid)
    return soap, over_rest


def warm_up(
    args: argparse.Namespace,
    server: Server,
    log: Path,
    path: str,
    batch: Callable[[int], Sequence[bytes | Post]],
    check: Callable[[int, bytes], tuple[str, str] | None],
) -> None:
    if not args.warmup:
        return
    warmup = Result()
    send_all(server, path, batch(args.warmup), args.concurrency, check, warmup)
    if warmup.faults:
        report("warm-up", warmup, unit="documents/s")
        tail = log.read_text(errors="replace")[-3000:]
        sys.exit(f"the warm-up was refused; the end of gunicorn's log:\n{tail}")


def compare(soap: Result, rest: Result) -> None:
    """REST against SOAP: rate and gunicorn's CPU per document."""
    if not soap.latencies or not rest.latencies:
        return
    soap_cpu = soap.server_cpu / len(soap.latencies) * 1000
    rest_cpu = rest.server_cpu / len(rest.latencies) * 1000
    print(
        f"REST / SOAP: {rest.per_second:.1f} / {soap.per_second:.1f} documents/s = "
        f"{rest.per_second / soap.per_second:.2f}; gunicorn CPU per document "
        f"{rest_cpu:.1f} / {soap_cpu:.1f} ms = {rest_cpu / soap_cpu:.2f} "
        f"(target: REST's CPU per document <= SOAP's)"
    )


def measure_floor(
    args: argparse.Namespace, database_url: str, folder: Path, body: bytes, size: int
) -> Result:
    dsn = make_url(database_url).set(drivername="postgresql").render_as_string(False)
    engine = create_engine(database_url)
    with engine.begin() as connection:
        connection.execute(
            text(
                "CREATE TABLE floor_documents (id bigserial PRIMARY KEY, name text NOT NULL, "
                "size_bytes integer NOT NULL, received_at timestamptz NOT NULL DEFAULT now())"
            )
        )
    engine.dispose()
    code = folder / "floor"
    files = folder / "floor-files"
    code.mkdir()
    files.mkdir()
    (code / "floor_app.py").write_text(textwrap.dedent(FLOOR_APP).lstrip())
    env = {
        "BENCH_FLOOR_DSN": dsn,
        "BENCH_FLOOR_FOLDER": str(files),
        "BENCH_FLOOR_SIZE": str(size),
        "BENCH_FLOOR_FSYNC": "1" if args.floor_fsync else "0",
    }
    log = folder / "gunicorn-floor.log"
    print(
        f"floor: bare Flask, per POST one {size // 1024} kB file "
        f"({'fsynced' if args.floor_fsync else 'not fsynced'}) and one INSERT, same gunicorn"
    )
    with gunicorn(
        "floor_app:app", workers=args.workers, threads=args.threads, cwd=code, env=env, log=log
    ) as server:
        send_all(server, "/", [body] * args.warmup, args.concurrency, check_floor, Result())
        result = Result()
        send_all(server, "/", [body] * args.requests, args.concurrency, check_floor, result)
    return result


def report(name: str, result: Result, *, unit: str) -> None:
    latencies = sorted(result.latencies)
    errors = sum(result.faults.values())
    print(f"{name}: {result.per_second:.1f} {unit} ({len(latencies)} in {result.seconds:.1f} s)")
    if latencies:
        print(
            "  latency ms: "
            + ", ".join(f"p{p} {percentile(latencies, p) * 1000:.0f}" for p in (50, 95, 99))
            + f", max {latencies[-1] * 1000:.0f}"
        )
    if latencies and result.machine_total:
        count = len(latencies)
        other = result.machine_busy - result.server_cpu - result.client_cpu
        print(
            f"  CPU ms per request: gunicorn {result.server_cpu / count * 1000:.1f}, "
            f"client {result.client_cpu / count * 1000:.1f}, "
            f"rest (PostgreSQL, Redis, kernel) {other / count * 1000:.1f}; "
            f"machine busy {result.machine_busy / result.machine_total:.0%}"
        )
    if result.peak_worker_mb:
        print(f"  peak memory of a gunicorn worker: {result.peak_worker_mb:.0f} MB")
    print(f"  errors: {errors}")
    for code, count in result.faults.most_common():
        print(f"    {count} x {code}: {result.examples[code]}")


def percentile(ordered: Sequence[float], p: int) -> float:
    """Nearest rank: the smallest value with at least p% of them at or below it."""
    rank = max(1, -(-len(ordered) * p // 100))
    return ordered[rank - 1]


# --- where the time goes ------------------------------------------------------------------


def profile(
    app: Flask, factory: RequestFactory, count: int, rest: RestRequestFactory | None = None
) -> None:
    """Run count requests through the app in this process, one after another: plain, then
    with each stage's function wrapped to add up its wall-clock and CPU time. SOAP's, then
    REST's when rest is given.

    Wall minus CPU is time spent waiting: on PostgreSQL, Redis or the disk."""
    client = app.test_client()

    def post_soap(bodies: Sequence[bytes | Post]) -> None:
        for body in bodies:
            body, headers = (body, HEADERS) if isinstance(body, bytes) else body
            response = client.post(SOAP_PATH, data=body, headers=dict(headers))
            problem = check_publication(response.status_code, response.data)
            if problem is not None:
                sys.exit(f"profiling: a request was refused: {problem}")

    profile_api("SOAP", app, count, post_soap, factory.batch, STAGES)
    if rest is None:
        return
    assertion = client_assertion(
        factory.identity, ENTERPRISE_NUMBER, audience=f"{PUBLIC_URL}/api/v1/token"
    )
    rest.token = client.post("/api/v1/token", data=token_form(assertion)).get_json()["access_token"]

    def post_rest(posts: Sequence[bytes | Post]) -> None:
        for post in posts:
            body, headers = (post, {}) if isinstance(post, bytes) else post
            response = client.post(REST_PATH, data=body, headers=dict(headers))
            problem = check_rest_publication(response.status_code, response.data)
            if problem is not None:
                sys.exit(f"profiling: a request was refused: {problem}")

    profile_api("REST", app, count, post_rest, rest.batch, REST_STAGES)


def profile_api(
    api: str,
    app: Flask,
    count: int,
    post_all: Callable[[Sequence[bytes | Post]], None],
    batch: Callable[[int], Sequence[bytes | Post]],
    stages: Sequence[tuple[str, str, str]],
) -> None:
    post_all(batch(5))  # imports, schema, connections
    bodies = batch(count)
    with counted_statements(app) as statements:
        started, cpu = time.perf_counter(), time.thread_time()
        post_all(bodies)
        wall, cpu = time.perf_counter() - started, time.thread_time() - cpu
    print(
        f"profile {api}: {count} requests one after another in one process: "
        f"{wall / count * 1000:.1f} ms per request, {cpu / count * 1000:.1f} ms of it CPU "
        f"(so at most {count / cpu:.0f} documents/s per core); "
        f"{len(statements) / count:.1f} SQL statements per request besides BEGIN and COMMIT"
    )
    timings: dict[str, list[float]] = {label: [0.0, 0.0] for label, _where, _name in stages}
    with contextlib.ExitStack() as stack:
        for label, where, name in stages:
            stack.enter_context(timed(where, name, timings[label]))
        post_all(batch(count))
    print(f"  {'stage':<46} {'wall ms':>8} {'CPU ms':>8}")
    for label, (stage_wall, stage_cpu) in timings.items():
        print(f"  {label:<46} {stage_wall / count * 1000:8.2f} {stage_cpu / count * 1000:8.2f}")


@contextlib.contextmanager
def counted_statements(app: Flask) -> Iterator[list[str]]:
    """The SQL statements the app's engine executes until the block ends."""
    executed: list[str] = []

    def count(_conn: object, _cursor: object, statement: str, *_args: object) -> None:
        executed.append(statement)

    with app.app_context():
        engine = db.engine
    event.listen(engine, "before_cursor_execute", count)
    try:
        yield executed
    finally:
        event.remove(engine, "before_cursor_execute", count)


@contextlib.contextmanager
def timed(where: str, name: str, totals: list[float]) -> Iterator[None]:
    """Wrap where's attribute name (module, or module:Class) to add its times to totals."""
    module_name, _colon, class_name = where.partition(":")
    owner = importlib.import_module(module_name)
    if class_name:
        owner = getattr(owner, class_name)
    original = getattr(owner, name)

    @functools.wraps(original)
    def wrapper(*args: object, **kwargs: object) -> object:
        wall, cpu = time.perf_counter(), time.thread_time()
        try:
            return original(*args, **kwargs)
        finally:
            totals[0] += time.perf_counter() - wall
            totals[1] += time.thread_time() - cpu

    setattr(owner, name, wrapper)
    try:
        yield
    finally:
        setattr(owner, name, original)


if __name__ == "__main__":
    main()
