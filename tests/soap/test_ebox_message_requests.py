"""The EboxMessage endpoint fed hand-made requests, as a client other than zeep might send them:
unsigned, oversized, off the schema, for an unknown operation, or over a limit zeep would refuse
to send. Each is answered with a SOAP 1.1 Fault and stores nothing."""

from __future__ import annotations

import base64
import hashlib
import subprocess
import sys
from datetime import timedelta
from pathlib import Path

import pytest
import requests
from flask import Flask
from lxml import etree
from sqlalchemy import func, select

from ebox.audit.models import AuditEvent
from ebox.demo.pdf import make_pdf
from ebox.extensions import db
from ebox.mailbox.models import Document
from ebox.senders.models import Sender
from ebox.soap.xml import SOAP11_NS
from tests.factories import create_citizen, create_message_type, next_national_number
from tests.live_server import LiveServer
from tests.soap.wss_helpers import (
    REDIS_URL,
    Identity,
    body_of,
    make_envelope,
    register,
    serialize,
    sign,
)

EBOX_NS = "urn:ebox:ns:EboxMessage:v1"
ROOT = Path(__file__).resolve().parents[2]
PDF = make_pdf("Letter", ["Hello"])


def e(name: str, *children: etree._Element, text: str | None = None) -> etree._Element:
    node = etree.Element(f"{{{EBOX_NS}}}{name}", nsmap={"e": EBOX_NS})
    node.text = text
    node.extend(children)
    return node


def publication(**texts: str) -> etree._Element:
    """A well-formed publishEboxMessageRequest; texts replace fields (an empty string drops one)."""
    fields = {
        "Recipient": next_national_number(),
        "MessageType": "TAX",
        "Language": "nl",
        "Title": "Aanslagbiljet",
        **texts,
    }
    request = e("publishEboxMessageRequest", e("MessageID", e("Ticket", text="RAW-1")))
    for name in ("Recipient", "MessageType", "Language", "Title"):
        if fields[name] != "":
            request.append(e(name, text=fields[name]))
    digest = e("Digest", text=base64.b64encode(hashlib.sha256(PDF).digest()).decode())
    digest.set("Algorithm", "SHA-256")
    request.append(
        e(
            "Document",
            e("DownloadFileName", text="brief.pdf"),
            e("MediaType", text="application/pdf"),
            digest,
            e("Content", text=base64.b64encode(PDF).decode()),
        )
    )
    return request


def envelope_with(payload: etree._Element, *, with_security: bool = True) -> etree._Element:
    envelope = make_envelope(with_security=with_security)
    body = body_of(envelope)
    body.remove(body[0])
    body.append(payload)
    return envelope


def post(server: LiveServer, data: bytes, **headers: str) -> requests.Response:
    return requests.post(
        f"{server.url}/soap/EboxMessage/v1",
        data=data,
        headers={"Content-Type": "text/xml; charset=utf-8", **headers},
        timeout=30,
    )


def signed(payload: etree._Element, identity: Identity) -> bytes:
    return serialize(sign(envelope_with(payload), identity))


def fault_of(response: requests.Response) -> tuple[str, str, str]:
    """(faultcode, business code, message) of a SOAP 1.1 Fault answered with HTTP 500."""
    assert response.status_code == 500
    assert response.headers["Content-Type"].startswith("text/xml")
    fault = etree.fromstring(response.content).find(f"{{{SOAP11_NS}}}Body/{{{SOAP11_NS}}}Fault")
    assert fault is not None
    code = fault.findtext(f"detail/{{{EBOX_NS}}}EboxFault/{{{EBOX_NS}}}Code")
    message = fault.findtext(f"detail/{{{EBOX_NS}}}EboxFault/{{{EBOX_NS}}}Message")
    assert message == fault.findtext("faultstring")
    return str(fault.findtext("faultcode")), str(code), str(message)


def document_count() -> int:
    db.session.expire_all()
    return int(db.session.scalar(select(func.count()).select_from(Document)) or 0)


@pytest.fixture
def sender(app: Flask, identity: Identity) -> Sender:
    record = register(identity)
    sender = db.session.get(Sender, record.sender_id)
    assert sender is not None
    create_message_type(sender, code="TAX")
    db.session.commit()
    return sender


def test_a_hand_made_signed_publication_is_accepted(
    soap_server: LiveServer, identity: Identity, sender: Sender
) -> None:
    response = post(soap_server, signed(publication(), identity))
    assert response.status_code == 200, response.text
    answer = etree.fromstring(response.content)
    assert answer.findtext(f".//{{{EBOX_NS}}}EboxMessageId")
    assert document_count() == 1


def test_an_unsigned_publication_is_refused(soap_server: LiveServer, sender: Sender) -> None:
    response = post(soap_server, serialize(envelope_with(publication(), with_security=False)))
    faultcode, code, _ = fault_of(response)
    assert (faultcode, code) == ("soap:Client", "SECURITY_HEADER_MISSING")
    assert document_count() == 0


def test_an_unsigned_ping_is_answered_without_a_signature(soap_server: LiveServer) -> None:
    ping = e("healthCheckRequest", e("Level", text="PING"))
    response = post(soap_server, serialize(envelope_with(ping, with_security=False)))
    assert response.status_code == 200
    assert etree.fromstring(response.content).findtext(f".//{{{EBOX_NS}}}Status") == "OK"


def test_an_unknown_operation_is_refused(
    soap_server: LiveServer, identity: Identity, sender: Sender
) -> None:
    response = post(soap_server, serialize(sign(make_envelope(), identity)))
    assert fault_of(response)[:2] == ("soap:Client", "UNKNOWN_OPERATION")


@pytest.mark.parametrize(
    ("texts", "in_message"),
    [
        ({"Title": "x" * 401}, "Title"),
        ({"Recipient": ""}, "Recipient"),
        ({"Language": "es"}, "Language"),
    ],
    ids=["title-too-long", "recipient-missing", "language"],
)
def test_a_request_off_the_schema_is_refused_with_the_schema_message(
    soap_server: LiveServer,
    identity: Identity,
    sender: Sender,
    texts: dict[str, str],
    in_message: str,
) -> None:
    response = post(soap_server, signed(publication(**texts), identity))
    faultcode, code, message = fault_of(response)
    assert (faultcode, code) == ("soap:Client", "SCHEMA_INVALID")
    assert in_message in message and "/" not in message.split("schema:")[0]
    assert len(message) < 400
    assert document_count() == 0
    db.session.expire_all()
    event = db.session.scalars(select(AuditEvent).order_by(AuditEvent.id.desc())).first()
    assert event is not None and event.action == "publication.refused"
    assert event.details == {
        "code": "SCHEMA_INVALID",
        "operation": "publishEboxMessage",
        "ticket": "RAW-1",
        "sequence": None,
    }


@pytest.mark.parametrize(
    ("operation", "child", "most"),
    [("hasAnEboxRequest", "NationalNumber", 1000), ("getMessageStatusRequest", "Query", 250)],
)
def test_more_ids_than_allowed_are_refused_as_too_many(
    soap_server: LiveServer,
    identity: Identity,
    sender: Sender,
    operation: str,
    child: str,
    most: int,
) -> None:
    def item() -> etree._Element:
        if child == "NationalNumber":
            return e(child, text="85073003328")
        return e(child, e("EboxMessageId", text="00000000-0000-4000-8000-000000000000"))

    accepted = post(soap_server, signed(e(operation, *[item() for _ in range(most)]), identity))
    assert accepted.status_code == 200, accepted.text
    response = post(soap_server, signed(e(operation, *[item() for _ in range(most + 1)]), identity))
    assert fault_of(response)[:2] == ("soap:Client", "TOO_MANY_IDS")


def test_a_request_announcing_more_than_the_limit_is_refused_unread(
    soap_server: LiveServer, identity: Identity, sender: Sender
) -> None:
    settings = soap_server.app.config["EBOX"]
    raw = signed(publication(), identity)
    settings.soap_max_request_bytes = len(raw) - 1
    try:
        response = post(soap_server, raw)
    finally:
        settings.soap_max_request_bytes = 16 * 1024 * 1024
    assert fault_of(response)[:2] == ("soap:Client", "REQUEST_TOO_LARGE")
    assert document_count() == 0


def test_the_longest_timestamp_lifetime_is_the_operators_setting(
    soap_server: LiveServer, identity: Identity, sender: Sender
) -> None:
    settings = soap_server.app.config["EBOX"]
    ping = e("healthCheckRequest", e("Level", text="PING"))
    six_minutes = timedelta(minutes=6)
    accepted = post(
        soap_server, serialize(sign(envelope_with(ping), identity, lifetime=six_minutes))
    )
    assert accepted.status_code == 200, accepted.text
    settings.wss_max_timestamp_minutes = 5
    try:
        response = post(
            soap_server, serialize(sign(envelope_with(ping), identity, lifetime=six_minutes))
        )
    finally:
        settings.wss_max_timestamp_minutes = 10
    _, code, message = fault_of(response)
    assert code == "TIMESTAMP_INVALID"
    assert "within 5 minutes" in message


def test_without_redis_a_signed_request_is_published_and_its_replay_refused(
    soap_server: LiveServer, identity: Identity, sender: Sender
) -> None:
    """The replay guard keeps its record in the database: Redis is not needed to tell."""
    settings = soap_server.app.config["EBOX"]
    settings.redis_url = "redis://127.0.0.1:1/0"  # nothing listens on port 1
    try:
        raw = signed(publication(), identity)
        first = post(soap_server, raw)
        again = post(soap_server, raw)
    finally:
        settings.redis_url = REDIS_URL
    assert first.status_code == 200, first.text
    assert fault_of(again)[:2] == ("soap:Client", "REPLAY")
    assert document_count() == 1


def test_a_refused_request_stays_seen(
    soap_server: LiveServer, identity: Identity, sender: Sender
) -> None:
    """Refused, its transaction rolled back, the request is still recorded as seen: sent again
    once the refusal's cause is gone (here the message type is created), it is a replay."""
    raw = signed(publication(MessageType="LATER"), identity)
    assert fault_of(post(soap_server, raw))[1] == "MESSAGE_TYPE_UNKNOWN"
    create_message_type(sender, code="LATER")
    db.session.commit()

    assert fault_of(post(soap_server, raw))[1] == "REPLAY"
    assert document_count() == 0


def test_the_example_script_publishes_a_pdf(
    soap_server: LiveServer, identity: Identity, sender: Sender, tmp_path: Path
) -> None:
    citizen = create_citizen()
    db.session.commit()
    (tmp_path / "key.pem").write_bytes(identity.key_pem)
    (tmp_path / "cert.pem").write_bytes(identity.cert_pem)
    (tmp_path / "letter.pdf").write_bytes(PDF)

    result = subprocess.run(
        [
            sys.executable,
            str(ROOT / "examples" / "publish_example.py"),
            "--url",
            soap_server.url,
            "--key",
            str(tmp_path / "key.pem"),
            "--cert",
            str(tmp_path / "cert.pem"),
            "--recipient",
            citizen.national_number,
            "--pdf",
            str(tmp_path / "letter.pdf"),
            "--message-type",
            "TAX",
            "--ticket",
            "SCRIPT-1",
        ],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )

    assert result.returncode == 0, result.stderr
    db.session.expire_all()
    document = db.session.scalars(select(Document)).one()
    assert str(document.id) in result.stdout
    assert document.sender_ticket == "SCRIPT-1"
