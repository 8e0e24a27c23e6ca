"""scripts/cluster as an operator and institutions meet it: nginx with TLS and mutual TLS in front
of two gunicorn nodes in production mode, two workers, PostgreSQL, Redis and an S3 store (moto).

The script itself is run, with its own configuration, on free loopback ports and a database of
this test's own. Publications go through nginx's mutual-TLS port with zeep and WS-Security, are
read back through each node directly, and one node is SIGKILLed while several institutions
publish: every publication answered with an id exists once, its object is in the bucket and
decrypts to the bytes sent, what failed during the kill succeeds when retried with the same
Ticket + Sequence, and the other node carries on. Then the script stops everything it started.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import hashlib
import http.client
import io
import json
import os
import shutil
import signal
import socket
import ssl
import subprocess
import tempfile
import threading
import time
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import boto3
import psycopg
import pytest
import requests
import zeep
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID
from redis import Redis
from rq import Worker

from ebox.demo.pdf import make_pdf
from ebox.storage.crypto import decrypt, unwrap_data_key
from examples.ebox_client import fault_code, make_client, message_fields
from tests.api.api_helpers import client_assertion, message_part, token_form
from tests.conftest import POSTGRES_SERVER
from tests.soap.wss_helpers import Identity, make_identity

ROOT = Path(__file__).resolve().parent.parent
NGINX = Path("/usr/sbin/nginx")
EBOX_BINDING = "{urn:ebox:ns:EboxMessage:v1}EboxMessageSoapBinding"
RM_BINDING = "{urn:ebox:ns:RegisteredMail:v1}RegisteredMailSoapBinding"
RECIPIENT = "85073003328"
PUBLISHERS = 4
PER_PUBLISHER = 15
KILL_AFTER = 15  # acknowledged publications before one node is killed


def test_the_documented_nginx_configuration_and_units_are_the_files_in_deploy():
    # scripts/cluster renders deploy/nginx/: what operations.md shows is what it runs.
    operations = (ROOT / "docs" / "operations.md").read_text()
    files = sorted((ROOT / "deploy").glob("*/*"))
    assert len(files) == 4
    for path in files:
        assert path.read_text() in operations, path


@dataclass
class Running:
    """The started script: its process, output and cluster.json."""

    process: subprocess.Popen[bytes]
    state: Path
    output: Path
    database: str
    description: dict[str, Any] = field(default_factory=dict)
    settings: dict[str, str] = field(default_factory=dict)

    def node_log(self, node: int) -> str:
        return (self.state / "logs" / f"web{node}.log").read_text()

    def said(self) -> str:
        return self.output.read_text()

    def diagnosis(self) -> str:
        """What the script said, and the end of each process's log."""
        logs = sorted((self.state / "logs").glob("*.log"))
        ends = [f"--- {log.name}\n" + "\n".join(log.read_text().splitlines()[-5:]) for log in logs]
        return "\n".join([self.said(), *ends])


@pytest.fixture
def cluster() -> Iterator[Running]:
    if not NGINX.exists():
        pytest.skip("/usr/sbin/nginx is missing: scripts/setup --dev installs Debian's nginx")
    # Not under pytest's temporary folder: as root, nginx's workers (nobody) could not enter it.
    state = Path(tempfile.mkdtemp(prefix="ebox-cluster-"))
    state.chmod(0o755)
    database = f"ebox_cluster_test_{os.getpid()}"
    postgres = POSTGRES_SERVER.replace("postgresql+psycopg://", "postgresql://")
    names = ("portal", "soap", "http", "redis", "s3", "smtp", "node1", "node2")
    ports = dict(zip(names, _free_ports(len(names)), strict=True))
    output = state / "script-output.log"
    with output.open("wb") as sink:
        process = subprocess.Popen(
            [
                str(ROOT / "scripts" / "cluster"),
                *("--state", str(state), "--database", database, "--postgres", postgres),
                *("--portal-port", ports["portal"], "--soap-port", ports["soap"]),
                *("--http-port", ports["http"], "--redis-port", ports["redis"]),
                *("--s3-port", ports["s3"], "--smtp-port", ports["smtp"]),
                *("--node-ports", f"{ports['node1']},{ports['node2']}"),
            ],
            cwd=ROOT,
            stdout=sink,
            stderr=subprocess.STDOUT,
        )
    running = Running(process, state, output, database)
    try:
        deadline = time.monotonic() + 120
        while not (state / "cluster.json").exists():
            assert process.poll() is None, f"scripts/cluster ended:\n{running.diagnosis()}"
            assert time.monotonic() < deadline, f"not ready in 120 s:\n{running.diagnosis()}"
            time.sleep(0.2)
        running.description = json.loads((state / "cluster.json").read_text())
        running.settings = _read_env_file(Path(running.description["env_file"]))
        yield running
    finally:
        if process.poll() is None:
            process.send_signal(signal.SIGTERM)
            try:
                process.wait(timeout=60)
            except subprocess.TimeoutExpired:
                process.kill()
        for pid in running.description.get("pids", {}).values():
            with contextlib.suppress(ProcessLookupError):
                os.killpg(pid, signal.SIGKILL)
        with psycopg.connect(postgres, autocommit=True) as connection:
            connection.execute(f'DROP DATABASE IF EXISTS "{database}" WITH (FORCE)')
        shutil.rmtree(state, ignore_errors=True)


def _free_ports(count: int) -> list[str]:
    """Ports free on 127.0.0.1, all different: each probe stays bound until all are chosen."""
    with contextlib.ExitStack() as stack:
        probes = [stack.enter_context(socket.socket()) for _ in range(count)]
        for probe in probes:
            probe.bind(("127.0.0.1", 0))
        return [str(probe.getsockname()[1]) for probe in probes]


def _read_env_file(path: Path) -> dict[str, str]:
    lines = path.read_text().splitlines()
    return dict(line.split("=", 1) for line in lines if line and not line.startswith("#"))


@pytest.mark.slow
def test_two_nodes_behind_nginx_lose_nothing_acknowledged_when_one_is_killed(
    cluster: Running, tmp_path: Path
) -> None:
    started = time.monotonic()
    identity = make_identity("rsa", name="Cluster Test Institution Back Office")
    sender_id = _create_sender(cluster, identity, tmp_path)
    tls = _client_certificates(cluster, tmp_path, PUBLISHERS + 1)

    # No client certificate: nginx answers 400 itself, and no node sees the request.
    refused = requests.post(
        f"{cluster.description['soap_url']}/soap/EboxMessage/v1",
        data=b"<x/>",
        verify=cluster.description["ca"],
        timeout=10,
    )
    assert refused.status_code == 400
    assert "No required SSL certificate was sent" in refused.text
    assert not any('"method": "POST"' in cluster.node_log(number) for number in (1, 2))
    # The portal over TLS, with one HSTS header.
    portal = _session(cluster).get(f"{cluster.description['public_url']}/auth/login", timeout=10)
    assert portal.status_code == 200
    assert portal.headers["Strict-Transport-Security"] == "max-age=63072000; includeSubDomains"

    # REST through nginx's portal server, with an attachment larger than its 3 MiB forms.
    _publish_over_rest_through_nginx(cluster, identity)

    # One publication through nginx, read back through each node directly.
    through_nginx = _service(cluster, identity, tls[0])
    first_pdf = make_pdf("Cluster letter 0", ["Published through nginx."])
    answer = through_nginx.publishEboxMessage(**_fields("CLUSTER-FIRST", first_pdf))
    for node in cluster.description["nodes"]:
        status = _service(cluster, identity, None, address=node).getMessageStatus(
            Query=[{"MessageID": {"Ticket": "CLUSTER-FIRST", "Sequence": 1}}]
        )[0]
        assert (status.Found, status.EboxMessageId) == (True, answer.EboxMessageId), node
    for number in (1, 2):
        assert '"message": "POST /soap/EboxMessage/v1 200"' in cluster.node_log(number)

    # A worker makes the registered letter's proof.
    registered = _service(cluster, identity, tls[0], registered=True)
    letter = registered.sendRegisteredDocument(
        **_fields("CLUSTER-REGISTERED", make_pdf("Cluster formal notice", ["Registered."]))
    )
    proof = _wait_for_proof(registered, letter.EboxMessageId)
    assert proof.ProofVersion == 1 and proof.Pdf.startswith(b"%PDF-")
    workers = Worker.all(connection=Redis.from_url(cluster.settings["EBOX_REDIS_URL"]))
    assert len(workers) == 2
    # Its log says so once the job has returned, a moment after the proof was committed.
    made = f"proof of delivery {letter.EboxMessageId} v1 (2 events) made"
    assert _eventually(lambda: any(made in _worker_log(cluster, n) for n in (1, 2))), made

    # Several institutions publish; web2 is SIGKILLed (master and workers) after KILL_AFTER.
    load = Load(cluster, identity, tls[:PUBLISHERS])
    web2_soap = cluster.node_log(2).count('"path": "/soap/EboxMessage/v1"')
    load.start()
    assert load.enough.wait(timeout=60), f"only {load.acknowledged_count()} acknowledged"
    web2_before_kill = cluster.node_log(2).count('"path": "/soap/EboxMessage/v1"') - web2_soap
    os.killpg(cluster.description["pids"]["web2"], signal.SIGKILL)
    killed_at = load.acknowledged_count()
    load.join(timeout=90)
    assert not load.errors, load.errors[:5]
    assert len(load.acknowledged) == PUBLISHERS * PER_PUBLISHER

    # The other node carries on: more publications, each accepted at its first attempt.
    after = _service(cluster, identity, tls[PUBLISHERS])
    later: dict[str, tuple[str, str]] = {}
    for number in range(5):
        ticket = f"CLUSTER-AFTER-{number}"
        pdf = make_pdf(f"Cluster letter after {number}", ["After the kill."])
        later[ticket] = (
            after.publishEboxMessage(**_fields(ticket, pdf)).EboxMessageId,
            hashlib.sha256(pdf).hexdigest(),
        )

    # Every acknowledged publication once, in the database and the bucket, decrypting to the
    # bytes sent.
    expected = dict(load.acknowledged)
    expected.update(later)
    expected["CLUSTER-FIRST"] = (answer.EboxMessageId, hashlib.sha256(first_pdf).hexdigest())
    rows = _documents(cluster, sender_id)
    duplicates = len(rows) - len({row["ticket"] for row in rows})
    found = {row["ticket"]: row for row in rows if row["ticket"] in expected}
    decrypted = 0
    for ticket, (message_id, sha256) in expected.items():
        row = found[ticket]
        assert str(row["id"]) == message_id, ticket
        assert row["sha256"] == sha256, ticket
        assert _decrypted_sha256(cluster, row) == sha256, ticket
        decrypted += 1
    stray = {row["ticket"] for row in rows} - set(expected) - {"CLUSTER-REGISTERED", "CLUSTER-REST"}
    report = (
        f"{len(expected)} acknowledged ({len(load.acknowledged)} under load, {killed_at} before "
        f"the kill), {len(found)} found, {decrypted} decrypted, {duplicates} duplicates, "
        f"{len(stray)} never acknowledged; {len(load.retried)} publications retried after "
        f"{sum(load.failures.values())} failed attempts {dict(load.failures)}; web2 had "
        f"answered {web2_before_kill} publications before the kill"
    )
    print(report)
    assert len(found) == len(expected), report
    assert duplicates == 0 and not stray, report
    assert web2_before_kill > 0, "nginx sent nothing to web2: the kill proved nothing"
    # The later ones were answered by web1 (nginx's access log names the upstreams it tried).
    access = (cluster.state / "logs" / "nginx-access.log").read_text().splitlines()
    web1 = cluster.description["nodes"][0].removeprefix("http://")
    assert all(web1 in line for line in access[-5:])

    # The script saw web2 die, kept the rest, and stops everything it started on SIGTERM.
    assert _eventually(lambda: "web2 ended (killed by SIGKILL)" in cluster.said(), 5)
    assert "web2 ended (killed by SIGKILL); the others carry on" in cluster.said()
    cluster.process.send_signal(signal.SIGTERM)
    assert cluster.process.wait(timeout=60) == 0
    groups = set(cluster.description["pids"].values())
    assert not _processes_in_groups(groups), "processes left after the stop"
    assert not (cluster.state / "cluster.json").exists()
    assert f"database {cluster.database} dropped" in cluster.said()
    print(f"the whole test took {time.monotonic() - started:.1f} s after the start")


def _worker_log(cluster: Running, worker: int) -> str:
    return (cluster.state / "logs" / f"worker{worker}.log").read_text()


def _eventually(condition: Any, timeout: float = 10) -> bool:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            return False
        time.sleep(0.2)
    return True


class Load:
    """PUBLISHERS institutions' back offices publishing at once, each with its own TLS client
    certificate, retrying a failed publication with a new signed request and the same Ticket +
    Sequence, as the integration guide says."""

    def __init__(self, cluster: Running, identity: Identity, tls: list[tuple[str, str]]) -> None:
        self.services = [_service(cluster, identity, pair) for pair in tls]
        self.acknowledged: dict[str, tuple[str, str]] = {}
        self.retried: set[str] = set()
        self.failures: Counter[str] = Counter()
        self.errors: list[str] = []
        self.enough = threading.Event()
        self.lock = threading.Lock()
        self.threads = [
            threading.Thread(target=self._publish, args=(number, service), daemon=True)
            for number, service in enumerate(self.services)
        ]

    def start(self) -> None:
        for thread in self.threads:
            thread.start()

    def join(self, timeout: float) -> None:
        deadline = time.monotonic() + timeout
        for thread in self.threads:
            thread.join(max(0.0, deadline - time.monotonic()))
            assert not thread.is_alive(), "a publisher is still running"

    def acknowledged_count(self) -> int:
        with self.lock:
            return len(self.acknowledged)

    def _publish(self, publisher: int, service: Any) -> None:
        for number in range(PER_PUBLISHER):
            ticket = f"CLUSTER-{publisher}-{number}"
            pdf = make_pdf(f"Cluster letter {publisher}-{number}", [f"Publisher {publisher}."])
            for attempt in range(1, 21):
                try:
                    answer = service.publishEboxMessage(**_fields(ticket, pdf))
                except zeep.exceptions.TransportError as error:
                    self._failed(ticket, f"HTTP {error.status_code}")  # nginx's 502, say
                except requests.RequestException as error:
                    self._failed(ticket, type(error).__name__)
                except zeep.exceptions.Fault as fault:
                    if fault_code(fault) not in {"SERVICE_UNAVAILABLE", "INTERNAL_ERROR"}:
                        self.errors.append(f"{ticket}: Fault {fault_code(fault)} {fault}")
                        return
                    self._failed(ticket, f"Fault {fault_code(fault)}")
                else:
                    with self.lock:
                        self.acknowledged[ticket] = (
                            answer.EboxMessageId,
                            hashlib.sha256(pdf).hexdigest(),
                        )
                        if len(self.acknowledged) >= KILL_AFTER:
                            self.enough.set()
                    break
                if attempt == 20:
                    self.errors.append(f"{ticket}: still failing after {attempt} attempts")
                    return
                time.sleep(0.25)

    def _failed(self, ticket: str, why: str) -> None:
        with self.lock:
            self.failures[why] += 1
            self.retried.add(ticket)


def _fields(ticket: str, pdf: bytes) -> dict[str, Any]:
    return message_fields(
        recipient=RECIPIENT,
        message_type="TAX",
        title=f"Letter {ticket}",
        pdf=pdf,
        file_name="letter.pdf",
        ticket=ticket,
        sequence=1,
    )


def _create_sender(cluster: Running, identity: Identity, folder: Path) -> int:
    """As an operator would: flask --app app ebox senders create, with the cluster's settings."""
    certificate = folder / "signing.pem"
    certificate.write_bytes(identity.cert_pem)
    environment = {k: v for k, v in os.environ.items() if not k.startswith("EBOX_")}
    environment.update(cluster.settings)
    created = subprocess.run(
        [
            str(ROOT / ".venv" / "bin" / "flask"),
            *("--app", "app", "ebox", "senders", "create"),
            *("--name", "Cluster Test Institution", "--enterprise-number", "0123.456.749"),
            *("--certificate", str(certificate), "--message-type", "TAX:30", "--registered"),
        ],
        cwd=ROOT,
        env=environment,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert created.returncode == 0, created.stderr
    return int(created.stdout.strip().splitlines()[-1])


def _publish_over_rest_through_nginx(cluster: Running, identity: Identity) -> None:
    """A token and a 4 MiB message over REST through nginx; a body announced beyond the
    publication limit is refused by nginx itself, as a problem like eBox's own."""
    url = cluster.description["public_url"]
    session = _session(cluster)
    assertion = client_assertion(identity, "0123456749", audience=f"{url}/api/v1/token")
    token = session.post(f"{url}/api/v1/token", data=token_form(assertion), timeout=10)
    assert token.status_code == 200, token.text
    letter = make_pdf("Cluster REST letter", ["Published over REST through nginx."])
    table = ("day;amount\n" + "2026-12-02;100\n" * 280_000).encode()  # about 4.2 MB
    documents = [("letter.pdf", "application/pdf", letter), ("table.csv", "text/csv", table)]
    message = message_part(RECIPIENT, "TAX", documents, reference={"ticket": "CLUSTER-REST"})
    files = [("message", ("message.json", json.dumps(message).encode(), "application/json"))]
    files += [("documents", (name, data, kind)) for name, kind, data in documents]
    headers = {"Authorization": f"Bearer {token.json()['access_token']}", "Idempotency-Key": "k1"}
    published = session.post(f"{url}/api/v1/messages", files=files, headers=headers, timeout=60)
    assert published.status_code == 201, published.text
    assert [d["sizeBytes"] for d in published.json()["documents"]] == [len(letter), len(table)]

    host, port = url.removeprefix("https://").split(":")
    context = ssl.create_default_context(cafile=cluster.description["ca"])
    connection = http.client.HTTPSConnection(host, int(port), context=context, timeout=10)
    connection.putrequest("POST", "/api/v1/messages")
    connection.putheader("Content-Type", "multipart/form-data; boundary=x")
    connection.putheader("Content-Length", str(42 * 1024 * 1024))
    connection.endheaders()
    refused = connection.getresponse()
    assert refused.status == 413
    assert refused.getheader("Content-Type") == "application/problem+json"
    assert json.loads(refused.read())["code"] == "REQUEST_TOO_LARGE"
    connection.close()


def _client_certificates(cluster: Running, folder: Path, count: int) -> list[tuple[str, str]]:
    """TLS client certificates from the clients' CA the script made, one per institution."""
    ca_cert = x509.load_pem_x509_certificate(Path(cluster.description["clients_ca"]).read_bytes())
    ca_key = serialization.load_pem_private_key(
        Path(cluster.description["clients_ca_key"]).read_bytes(), password=None
    )
    assert isinstance(ca_key, ec.EllipticCurvePrivateKey)
    pairs = [(cluster.description["client_cert"], cluster.description["client_key"])]
    now = dt.datetime.now(dt.UTC) - dt.timedelta(minutes=5)
    for number in range(1, count):
        key = ec.generate_private_key(ec.SECP256R1())
        name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, f"Institution {number}")])
        certificate = (
            x509.CertificateBuilder()
            .subject_name(name)
            .issuer_name(ca_cert.subject)
            .public_key(key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(now)
            .not_valid_after(now + dt.timedelta(days=1))
            .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
            .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.CLIENT_AUTH]), False)
            .sign(ca_key, hashes.SHA256())
        )
        cert_path, key_path = folder / f"tls-{number}.pem", folder / f"tls-{number}.key"
        cert_path.write_bytes(certificate.public_bytes(serialization.Encoding.PEM))
        key_path.write_bytes(
            key.private_bytes(
                serialization.Encoding.PEM,
                serialization.PrivateFormat.PKCS8,
                serialization.NoEncryption(),
            )
        )
        pairs.append((str(cert_path), str(key_path)))
    return pairs


def _session(cluster: Running, tls: tuple[str, str] | None = None) -> requests.Session:
    session = requests.Session()
    session.trust_env = False
    session.verify = cluster.description["ca"]
    if tls is not None:
        session.cert = tls
    return session


def _service(
    cluster: Running,
    identity: Identity,
    tls: tuple[str, str] | None,
    *,
    address: str | None = None,
    registered: bool = False,
) -> Any:
    """A signing zeep service: through nginx's mutual-TLS port, or at a node's own address."""
    name, binding = ("RegisteredMail", RM_BINDING) if registered else ("EboxMessage", EBOX_BINDING)
    wsdl = f"{cluster.description['public_url']}/soap/{name}/v1?wsdl"
    client = make_client(
        wsdl, identity.key_pem, identity.cert_pem, session=_session(cluster, tls), timeout=30
    )
    base = address or cluster.description["soap_url"]
    return client.create_service(binding, f"{base}/soap/{name}/v1")


def _wait_for_proof(service: Any, message_id: str) -> Any:
    deadline = time.monotonic() + 45
    while True:
        try:
            return service.getProofOfDelivery(EboxMessageId=message_id)
        except zeep.exceptions.Fault as fault:
            assert fault_code(fault) == "PROOF_NOT_READY", fault
            assert time.monotonic() < deadline, "no worker made the proof"
            time.sleep(0.3)


def _documents(cluster: Running, sender_id: int) -> list[dict[str, Any]]:
    url = cluster.settings["EBOX_DATABASE_URL"].replace("postgresql+psycopg://", "postgresql://")
    with psycopg.connect(url) as connection:
        cursor = connection.execute(
            "SELECT id, sender_ticket, storage_key, content_key, content_key_id, sha256 "
            "FROM documents WHERE sender_id = %s",
            (sender_id,),
        )
        names = ["id", "ticket", "storage_key", "content_key", "content_key_id", "sha256"]
        return [dict(zip(names, row, strict=True)) for row in cursor.fetchall()]


def _decrypted_sha256(cluster: Running, row: dict[str, Any]) -> str:
    """The object in the bucket, decrypted with the master key from the cluster's settings."""
    settings = cluster.settings
    s3 = boto3.session.Session().client(
        "s3",
        endpoint_url=settings["EBOX_S3_ENDPOINT_URL"],
        region_name=settings["EBOX_S3_REGION"],
        aws_access_key_id=settings["EBOX_S3_ACCESS_KEY_ID"],
        aws_secret_access_key=settings["EBOX_S3_SECRET_ACCESS_KEY"],
    )
    stored = s3.get_object(Bucket=settings["EBOX_S3_BUCKET"], Key=row["storage_key"])["Body"]
    data_key = unwrap_data_key(
        bytes(row["content_key"]),
        master_key=settings["EBOX_MASTER_KEY"],
        master_key_id=row["content_key_id"],
    )
    with decrypt(
        io.BytesIO(stored.read()), data_key=data_key, storage_key=row["storage_key"]
    ) as plain:
        return hashlib.sha256(plain.read()).hexdigest()


def _processes_in_groups(groups: set[int]) -> list[str]:
    left = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
        except OSError:
            continue
        # pid (comm) state ppid pgrp ...: comm may hold spaces, so split after its ')'.
        fields = stat.rsplit(")", 1)[1].split()
        if int(fields[2]) in groups:
            left.append(f"{entry.name} {stat.split(')')[0]})")
    return left
