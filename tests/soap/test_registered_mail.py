"""The RegisteredMail v1 service end to end: zeep on the served WSDL, a live server, the real
database, Redis and worker, and verifiers nobody on this project wrote (xmlsec1, pdfsig)."""

from __future__ import annotations

import hashlib
import re
import subprocess
import sys
import uuid
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
import requests
import zeep
from flask import Flask
from lxml import etree
from redis import Redis
from rq import Queue
from sqlalchemy import select

from ebox import create_app
from ebox.audit.models import AuditEvent
from ebox.db_types import utcnow
from ebox.demo.pdf import make_pdf
from ebox.evidence.models import DeliveryProof, Evidence
from ebox.evidence.services import forget_expired_evidence, platform_seal
from ebox.evidence.xml import NS as EVIDENCE_NS
from ebox.evidence.xml import signature_timestamp
from ebox.extensions import db
from ebox.jobs import QUEUE, AppWorker
from ebox.mailbox.models import Document
from ebox.retention.services import purge_expired
from ebox.senders.models import Sender
from examples.ebox_client import (
    fault_code,
    make_client,
    publish_pdf,
    save_proof_of_delivery,
    send_registered_pdf,
)
from tests.conftest import make_settings
from tests.evidence.tsa_server import TimestampAuthority, openssl_ts_verify, unreachable_url
from tests.evidence.verifiers import pdfsig, xmlsec1_verify
from tests.factories import create_citizen, create_message_type, login, next_national_number
from tests.live_server import LiveServer, live_server
from tests.mailbox.mailbox_helpers import post
from tests.soap.node_example import run_node_example
from tests.soap.wss_helpers import Identity, body_of, make_envelope, register, serialize, sign

RM_NS = "urn:ebox:ns:RegisteredMail:v1"
EXAMPLES = Path(__file__).resolve().parents[2] / "examples"
PDF = make_pdf("Formal notice", ["Dear citizen,", "This is a formal notice."])


def redis_url(worker_id: str) -> str:
    """A Redis database of these tests alone (one per pytest-xdist worker): it is flushed."""
    index = int(worker_id[2:]) if worker_id.startswith("gw") else 0
    return f"redis://127.0.0.1:6379/{9 + index % 2}"


@pytest.fixture(scope="module")
def rm_server(
    _migrated_app: Flask, instance_path: Path, database_url: str, worker_id: str
) -> Iterator[LiveServer]:
    """The application on 127.0.0.1 with a Redis database of its own, where it queues proofs."""
    settings = make_settings(instance_path, database_url, redis_url=redis_url(worker_id))
    served = create_app(settings, TESTING=True)
    with live_server(served) as server:
        settings.public_url = server.url
        yield server


@pytest.fixture
def jobs(app: Flask, rm_server: LiveServer, worker_id: str) -> Iterator[Queue]:
    """The queue the server uses, emptied. The test's own application (the citizen's browser,
    the purge) queues there too, and names the platform by the same address in evidence."""
    settings = app.config["EBOX"]
    previous = settings.redis_url, settings.public_url
    settings.redis_url = redis_url(worker_id)
    settings.public_url = rm_server.url
    connection = Redis.from_url(settings.redis_url)
    connection.flushdb()
    try:
        yield Queue(QUEUE, connection=connection)
    finally:
        connection.flushdb()
        connection.close()
        settings.redis_url, settings.public_url = previous


@pytest.fixture(scope="module")
def rm_client(rm_server: LiveServer, identity: Identity) -> zeep.Client:
    return make_client(f"{rm_server.url}/soap/RegisteredMail/v1?wsdl", *identity_keys(identity))


@pytest.fixture(scope="module")
def other_rm_client(rm_server: LiveServer, other_identity: Identity) -> zeep.Client:
    wsdl = f"{rm_server.url}/soap/RegisteredMail/v1?wsdl"
    return make_client(wsdl, *identity_keys(other_identity))


def identity_keys(identity: Identity) -> tuple[bytes, bytes]:
    return identity.key_pem, identity.cert_pem


def approved_sender(identity: Identity, *, registered: bool = True) -> Sender:
    sender = db.session.get(Sender, register(identity).sender_id)
    assert sender is not None
    sender.may_send_registered = registered
    create_message_type(sender, code="NOTICE", validity_days=30)
    db.session.commit()
    return sender


@pytest.fixture
def sender(app: Flask, identity: Identity, jobs: Queue) -> Sender:
    return approved_sender(identity)


def send(client: zeep.Client, **changes: object) -> Any:
    values: dict[str, object] = {
        "recipient": next_national_number(),
        "message_type": "NOTICE",
        "title": "Formal notice of 29 November",
        "pdf": PDF,
        "file_name": "notice.pdf",
        "ticket": "NOTICE-0001",
        "language": "fr",
    }
    values.update(changes)
    return send_registered_pdf(client, **values)


def refused(call: object, *args: object, **kwargs: object) -> zeep.exceptions.Fault:
    with pytest.raises(zeep.exceptions.Fault) as caught:
        call(*args, **kwargs)  # type: ignore[operator]
    return caught.value


def work(app: Flask, jobs: Queue) -> None:
    """What `python worker.py --burst` does, in this process."""
    AppWorker([jobs], connection=jobs.connection, app=app).work(burst=True)
    db.session.expire_all()


def events_of(status: Any) -> list[str]:
    return [event.Type for event in status.Event]


def root_pem_file(folder: Path) -> Path:
    path = folder / "root.pem"
    path.write_bytes(platform_seal().root_pem)
    return path


# --- the contract -----------------------------------------------------------------------------


def test_the_contract_is_served_with_the_public_address_and_its_imported_schema(
    rm_server: LiveServer,
) -> None:
    base = f"{rm_server.url}/soap/RegisteredMail/v1"
    wsdl = etree.fromstring(requests.get(f"{base}?wsdl", timeout=10).content)
    address = wsdl.find(".//{http://schemas.xmlsoap.org/wsdl/soap/}address")
    assert address is not None and address.get("location") == base
    own = etree.fromstring(requests.get(f"{base}?xsd=RegisteredMail-v1.xsd", timeout=10).content)
    [schema_import] = own.iterfind("{http://www.w3.org/2001/XMLSchema}import")
    assert schema_import.get("schemaLocation") == f"{base}?xsd=EboxMessage-v1.xsd"
    assert requests.get(f"{base}?xsd=EboxMessage-v1.xsd", timeout=10).status_code == 200
    assert requests.get(f"{base}?xsd=../config.py", timeout=10).status_code == 404


# --- who may use it ---------------------------------------------------------------------------


def test_a_sender_without_the_registered_mail_right_is_refused_everywhere(
    app: Flask, identity: Identity, rm_client: zeep.Client, jobs: Queue
) -> None:
    approved_sender(identity, registered=False)

    for fault in (
        refused(send, rm_client),
        refused(rm_client.service.getRegisteredMailStatus, Query=[{"MessageID": {"Ticket": "X"}}]),
        refused(
            rm_client.service.getProofOfDelivery,
            EboxMessageId="00000000-0000-4000-8000-000000000000",
        ),
    ):
        assert fault_code(fault) == "REGISTERED_MAIL_NOT_ALLOWED"
    assert db.session.scalars(select(Document)).all() == []
    refusals = db.session.scalars(
        select(AuditEvent)
        .where(AuditEvent.action.in_(["publication.refused", "request.refused"]))
        .order_by(AuditEvent.id)
    ).all()
    assert [event.details["code"] for event in refusals] == ["REGISTERED_MAIL_NOT_ALLOWED"] * 3


# --- sendRegisteredDocument -------------------------------------------------------------------


def test_sending_answers_the_id_and_the_sealed_submission_acceptance(
    app: Flask,
    sender: Sender,
    identity: Identity,
    rm_client: zeep.Client,
    jobs: Queue,
    tmp_path: Path,
) -> None:
    answer = send(rm_client)

    document = db.session.get(Document, uuid.UUID(answer.EboxMessageId))
    assert document is not None and document.is_registered
    acceptance = answer.SubmissionAcceptance
    assert acceptance.Type == "SubmissionAcceptance"
    (tmp_path / "acceptance.xml").write_bytes(acceptance.Xml)
    verified = xmlsec1_verify(tmp_path / "acceptance.xml", root_pem_file(tmp_path))
    assert verified.returncode == 0, verified.stderr
    facts = etree.fromstring(acceptance.Xml)
    ns = {"ev": EVIDENCE_NS}
    assert facts.findtext("ev:EvidenceId", namespaces=ns) == acceptance.EvidenceId
    assert facts.findtext("ev:Message/ev:PlatformMessageId", namespaces=ns) == str(document.id)
    assert facts.findtext("ev:Message/ev:DocumentDigest", namespaces=ns) == (
        hashlib.sha256(PDF).hexdigest()
    )
    # Which of the sender's certificates signed the request, and how long it stays available.
    assert facts.findtext("ev:Sender/ev:CertificateDigest", namespaces=ns) == (
        hashlib.sha256(identity.cert_der).hexdigest()
    )
    assert facts.findtext("ev:Message/ev:AvailableUntil", namespaces=ns) is not None
    assert facts.findtext("ev:SealingTime", namespaces=ns) is not None
    stored = db.session.scalars(
        select(Evidence).where(Evidence.document_id == document.id).order_by(Evidence.position)
    ).all()
    assert [item.event for item in stored] == ["SubmissionAcceptance", "ContentConsignment"]
    assert stored[0].xml == acceptance.Xml
    # The proof is asked of the worker once the publication committed.
    assert jobs.count == 1


def test_sending_the_same_message_again_answers_the_same_evidence(
    app: Flask, sender: Sender, rm_client: zeep.Client
) -> None:
    recipient = next_national_number()
    first = send(rm_client, recipient=recipient)
    again = send(rm_client, recipient=recipient)

    assert again.EboxMessageId == first.EboxMessageId
    assert again.SubmissionAcceptance.EvidenceId == first.SubmissionAcceptance.EvidenceId
    assert again.SubmissionAcceptance.Xml == first.SubmissionAcceptance.Xml
    assert len(db.session.scalars(select(Evidence)).all()) == 2


def test_a_bad_registered_document_is_refused_and_nothing_is_recorded(
    app: Flask, sender: Sender, rm_client: zeep.Client, jobs: Queue
) -> None:
    fault = refused(send, rm_client, pdf=b"not a pdf at all")

    assert fault_code(fault) in {"NOT_A_PDF", "DIGEST_MISMATCH"}
    assert db.session.scalars(select(Evidence)).all() == []
    assert jobs.count == 0


# --- getRegisteredMailStatus ------------------------------------------------------------------


def test_status_lists_the_events_of_own_registered_messages_only(
    app: Flask,
    sender: Sender,
    identity: Identity,
    other_identity: Identity,
    rm_client: zeep.Client,
    other_rm_client: zeep.Client,
    rm_server: LiveServer,
) -> None:
    mine = send(rm_client, ticket="MINE-1")
    approved_sender(other_identity)
    theirs = send(other_rm_client, ticket="THEIRS-1")
    ebox_client = make_client(f"{rm_server.url}/soap/EboxMessage/v1?wsdl", *identity_keys(identity))
    plain = publish_pdf(
        ebox_client,
        recipient=next_national_number(),
        message_type="NOTICE",
        title="Not registered",
        pdf=PDF,
        file_name="plain.pdf",
        ticket="PLAIN-1",
    )

    answer = rm_client.service.getRegisteredMailStatus(
        Query=[
            {"EboxMessageId": mine.EboxMessageId},
            {"MessageID": {"Ticket": "MINE-1"}},
            {"EboxMessageId": theirs.EboxMessageId},
            {"EboxMessageId": plain.EboxMessageId},
        ]
    )

    by_id, by_ticket, other, not_registered = answer
    for status in (by_id, by_ticket):
        assert status.Found is True
        assert status.EboxMessageId == mine.EboxMessageId
        assert status.MessageID.Ticket == "MINE-1"
        assert events_of(status) == ["SubmissionAcceptance", "ContentConsignment"]
        assert status.Event[0].EvidenceId == mine.SubmissionAcceptance.EvidenceId
        assert status.ProofVersion is None
    assert by_ticket.Query.MessageID.Ticket == "MINE-1"
    # Another sender's message and a plain one look exactly like a missing one.
    for status in (other, not_registered):
        assert status.Found is False
        assert status.EboxMessageId is None and status.Event == []


def test_status_takes_at_most_250_queries(
    app: Flask, sender: Sender, identity: Identity, rm_server: LiveServer
) -> None:
    # zeep refuses to send 251; a hand-made request shows what the server answers.
    def status_request(count: int) -> etree._Element:
        request = etree.Element(f"{{{RM_NS}}}getRegisteredMailStatusRequest", nsmap={"rm": RM_NS})
        for n in range(count):
            query = etree.SubElement(request, f"{{{RM_NS}}}Query")
            message_id = etree.SubElement(query, f"{{{RM_NS}}}MessageID")
            etree.SubElement(message_id, f"{{{RM_NS}}}Ticket").text = f"T{n}"
        return request

    def call(count: int) -> requests.Response:
        envelope = make_envelope()
        body = body_of(envelope)
        body.remove(body[0])
        body.append(status_request(count))
        return requests.post(
            f"{rm_server.url}/soap/RegisteredMail/v1",
            data=serialize(sign(envelope, identity)),
            headers={"Content-Type": "text/xml; charset=utf-8"},
            timeout=30,
        )

    assert call(250).status_code == 200
    too_many = call(251)
    assert too_many.status_code == 500
    assert b"<ebox:Code>TOO_MANY_IDS</ebox:Code>" in too_many.content


# --- getProofOfDelivery -----------------------------------------------------------------------


def test_the_proof_is_not_ready_until_the_worker_made_it(
    app: Flask, sender: Sender, rm_client: zeep.Client, jobs: Queue
) -> None:
    answer = send(rm_client)

    fault = refused(rm_client.service.getProofOfDelivery, EboxMessageId=answer.EboxMessageId)
    assert fault_code(fault) == "PROOF_NOT_READY"
    assert fault.code.endswith("Server")  # it may succeed later

    work(app, jobs)
    proof = rm_client.service.getProofOfDelivery(EboxMessageId=answer.EboxMessageId)
    assert proof.ProofVersion == 1
    assert proof.Pdf.startswith(b"%PDF-")
    assert [item.Type for item in proof.Evidence] == ["SubmissionAcceptance", "ContentConsignment"]


# --- from the command line, and from node-soap -------------------------------------------------


def run_example(
    script: str, url: str, folder: Path, *arguments: str
) -> subprocess.CompletedProcess[str]:
    keys = ("--key", str(folder / "key.pem"), "--cert", str(folder / "cert.pem"))
    return subprocess.run(
        [sys.executable, str(EXAMPLES / script), "--url", url, *keys, *arguments],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


def message_id_in(output: str) -> str:
    found = re.search(r"EboxMessageId=([0-9a-f-]{36})", output)
    assert found is not None, output
    return found.group(1)


@pytest.mark.slow
def test_the_example_scripts_send_registered_mail_and_save_its_proof(
    app: Flask,
    sender: Sender,
    identity: Identity,
    rm_server: LiveServer,
    jobs: Queue,
    tmp_path: Path,
) -> None:
    (tmp_path / "key.pem").write_bytes(identity.key_pem)
    (tmp_path / "cert.pem").write_bytes(identity.cert_pem)
    (tmp_path / "notice.pdf").write_bytes(PDF)
    recipient = ("--recipient", next_national_number(), "--message-type", "NOTICE")

    sent = run_example(
        "publish_example.py",
        rm_server.url,
        tmp_path,
        "--registered",
        *recipient,
        "--pdf",
        str(tmp_path / "notice.pdf"),
    )
    assert sent.returncode == 0, sent.stderr
    assert "Evidence: SubmissionAcceptance " in sent.stdout
    message_id = message_id_in(sent.stdout)
    proof = ("--message-id", message_id, "--out", str(tmp_path / "proofs"))
    not_yet = run_example("proof_example.py", rm_server.url, tmp_path, *proof)
    assert not_yet.returncode == 1 and "PROOF_NOT_READY" in not_yet.stderr

    work(app, jobs)
    saved = run_example("proof_example.py", rm_server.url, tmp_path, *proof)

    assert saved.returncode == 0, saved.stderr
    pdf, *evidence = [Path(line) for line in saved.stdout.split()]
    assert pdf.read_bytes().startswith(b"%PDF-")
    assert [path.name.split("-")[-1] for path in evidence] == [
        "SubmissionAcceptance.xml",
        "ContentConsignment.xml",
    ]
    for path in evidence:
        assert xmlsec1_verify(path, root_pem_file(tmp_path)).returncode == 0


@pytest.mark.slow
def test_node_soap_with_its_default_ws_security_sends_registered_mail(
    app: Flask,
    sender: Sender,
    identity: Identity,
    rm_server: LiveServer,
    jobs: Queue,
    tmp_path: Path,
) -> None:
    result = run_node_example(
        rm_server.url,
        identity,
        tmp_path,
        PDF,
        *("--registered", "--recipient", next_national_number(), "--message-type", "NOTICE"),
        *("--language", "fr", "--ticket", "NODE-NOTICE-1"),
    )

    assert result.returncode == 0, result.stdout + result.stderr
    document = db.session.get(Document, uuid.UUID(message_id_in(result.stdout)))
    assert document is not None and document.is_registered
    assert document.sender_ticket == "NODE-NOTICE-1"
    [acceptance, _consignment] = db.session.scalars(
        select(Evidence).where(Evidence.document_id == document.id).order_by(Evidence.position)
    ).all()
    assert f"Evidence: SubmissionAcceptance {acceptance.id} " in result.stdout


def test_another_senders_proof_is_answered_as_unknown(
    app: Flask,
    sender: Sender,
    other_identity: Identity,
    rm_client: zeep.Client,
    other_rm_client: zeep.Client,
    jobs: Queue,
) -> None:
    approved_sender(other_identity)
    theirs = send(other_rm_client, ticket="THEIRS-2")
    work(app, jobs)

    fault = refused(rm_client.service.getProofOfDelivery, EboxMessageId=theirs.EboxMessageId)

    assert fault_code(fault) == "MESSAGE_NOT_FOUND"


# --- the whole flow ---------------------------------------------------------------------------


def test_sent_opened_proved_and_sent_expired_unopened_proved(
    app: Flask, sender: Sender, rm_client: zeep.Client, jobs: Queue, tmp_path: Path
) -> None:
    citizen = create_citizen(language="fr")
    db.session.commit()
    opened = send(rm_client, recipient=citizen.national_number, ticket="NOTICE-OPENED")
    unopened = send(rm_client, recipient=citizen.national_number, ticket="NOTICE-UNOPENED")
    work(app, jobs)

    # The citizen opens the first one in the browser, confirming receipt.
    browser = app.test_client()
    login(browser, citizen)
    assert post(browser, f"/documents/{opened.EboxMessageId}/receipt").status_code == 303
    assert browser.get(f"/documents/{opened.EboxMessageId}/content").data == PDF
    work(app, jobs)

    # The second one expires unopened; the purge seals its non-retrieval before deleting it.
    # The purge runs at the real time only: the document's availability ends now instead.
    document = db.session.get(Document, uuid.UUID(unopened.EboxMessageId))
    assert document is not None
    document.expires_at = utcnow()
    db.session.commit()
    purge_expired()
    work(app, jobs)

    status = rm_client.service.getRegisteredMailStatus(
        Query=[{"EboxMessageId": opened.EboxMessageId}, {"EboxMessageId": unopened.EboxMessageId}]
    )
    assert events_of(status[0]) == [
        "SubmissionAcceptance",
        "ContentConsignment",
        "ContentHandover",
    ]
    assert events_of(status[1]) == [
        "SubmissionAcceptance",
        "ContentConsignment",
        "ContentHandoverFailure",
    ]
    assert status[0].ProofVersion == status[1].ProofVersion == 2

    root = root_pem_file(tmp_path)
    for message in (opened, unopened):
        saved = save_proof_of_delivery(rm_client, message.EboxMessageId, tmp_path / "proofs")
        pdf, *evidence_files = saved
        checked = pdfsig(pdf, root, tmp_path / f"nss-{message.EboxMessageId}")
        assert "Signature is Valid" in checked, checked
        assert "Certificate is Trusted" in checked, checked
        assert len(evidence_files) == 3
        for evidence_file in evidence_files:
            verified = xmlsec1_verify(evidence_file, root)
            assert verified.returncode == 0, verified.stderr

    # Proofs and evidence outlive the deleted document; version 1 is kept beside version 2.
    deleted = db.session.get(Document, uuid.UUID(unopened.EboxMessageId))
    assert deleted is not None and deleted.deleted_at is not None and deleted.title is None
    versions = db.session.scalars(
        select(DeliveryProof.version)
        .where(DeliveryProof.document_id == deleted.id)
        .order_by(DeliveryProof.version)
    ).all()
    assert versions == [1, 2]


# --- with a timestamp authority ---------------------------------------------------------------


@pytest.fixture
def timestamped(app: Flask, rm_server: LiveServer, tsa: TimestampAuthority) -> Iterator[str]:
    """The server and the worker timestamp with the test authority."""
    settings = (rm_server.app.config["EBOX"], app.config["EBOX"])
    for each in settings:
        each.tsa_url, each.tsa_ca_cert = tsa.url, str(tsa.ca_pem_path)
    try:
        yield tsa.url
    finally:
        for each in settings:
            each.tsa_url, each.tsa_ca_cert = "", ""


def test_with_an_authority_evidence_and_proof_carry_verifiable_timestamps(
    app: Flask,
    sender: Sender,
    rm_client: zeep.Client,
    jobs: Queue,
    timestamped: str,
    tsa: TimestampAuthority,
    tmp_path: Path,
) -> None:
    answer = send(rm_client)
    work(app, jobs)

    stamped = signature_timestamp(answer.SubmissionAcceptance.Xml)
    assert stamped is not None
    token, signature_value = stamped
    checked = openssl_ts_verify(tsa, signature_value, token, tmp_path)
    assert checked.returncode == 0, checked.stdout + checked.stderr
    (tmp_path / "acceptance.xml").write_bytes(answer.SubmissionAcceptance.Xml)
    assert xmlsec1_verify(tmp_path / "acceptance.xml", root_pem_file(tmp_path)).returncode == 0

    [pdf, *_] = save_proof_of_delivery(rm_client, answer.EboxMessageId, tmp_path / "proof")
    report = pdfsig(pdf, root_pem_file(tmp_path), tmp_path / "nss")
    assert "Signature is Valid" in report and "Certificate is Trusted" in report, report
    assert "Signature Type: ETSI.CAdES.detached" in report, report


def test_with_the_authority_down_nothing_is_published_and_the_sender_may_retry(
    app: Flask, sender: Sender, rm_server: LiveServer, rm_client: zeep.Client, jobs: Queue
) -> None:
    rm_server.app.config["EBOX"].tsa_url = unreachable_url()
    try:
        fault = refused(send, rm_client)
    finally:
        rm_server.app.config["EBOX"].tsa_url = ""

    assert fault_code(fault) == "SERVICE_UNAVAILABLE"
    assert fault.code.endswith("Server")
    assert db.session.scalars(select(Document)).all() == []
    assert db.session.scalars(select(Evidence)).all() == []
    assert send(rm_client).EboxMessageId  # the same message goes through once it is back


def test_once_evidence_is_past_retention_the_proof_is_answered_as_gone(
    app: Flask, sender: Sender, rm_client: zeep.Client, jobs: Queue
) -> None:
    answer = send(rm_client)
    work(app, jobs)
    forget_expired_evidence(utcnow() + timedelta(days=365 * 11))

    fault = refused(rm_client.service.getProofOfDelivery, EboxMessageId=answer.EboxMessageId)

    assert fault_code(fault) == "MESSAGE_NOT_FOUND"
    assert "past its retention period" in fault.message
