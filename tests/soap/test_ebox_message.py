"""The EboxMessage v1 service end to end: zeep loads the served WSDL, signs with a registered
certificate and calls every operation on a live server backed by the real database, store and
Redis."""

from __future__ import annotations

import hashlib
from collections.abc import Iterator
from datetime import date, timedelta
from typing import Any

import pytest
import requests
import zeep
from flask import Flask
from flask.testing import FlaskClient
from lxml import etree
from sqlalchemy import select, text

from ebox.audit.models import AuditEvent
from ebox.db_types import PLATFORM_TIMEZONE, utcnow
from ebox.demo.pdf import make_pdf
from ebox.extensions import db
from ebox.mailbox.models import Document
from ebox.mailbox.publication import end_of_day
from ebox.senders.models import MessageType, Sender
from ebox.storage.services import list_storage_keys, open_content
from examples.ebox_client import fault_code, publish_pdf
from tests.factories import (
    create_citizen,
    create_document,
    create_message_type,
    login,
    next_national_number,
)
from tests.live_server import LiveServer
from tests.soap.wss_helpers import Identity, register

EBOX_NS = "urn:ebox:ns:EboxMessage:v1"
PDF = make_pdf("Tax assessment 2026", ["Dear citizen,", "Your assessment is attached."])


@pytest.fixture
def sender(app: Flask, identity: Identity) -> Sender:
    """An approved sender owning the session's signing certificate, with one message type."""
    record = register(identity)
    sender = db.session.get(Sender, record.sender_id)
    assert sender is not None
    create_message_type(sender, code="TAX", validity_days=60)
    db.session.commit()
    return sender


@pytest.fixture
def stored_keys(app: Flask) -> Iterator[set[str]]:
    """The store's keys before the test; compare with list_storage_keys() after."""
    yield set(list_storage_keys())


def publish(client: zeep.Client, **changes: object) -> Any:
    values: dict[str, object] = {
        "recipient": next_national_number(),
        "message_type": "TAX",
        "title": "Your tax assessment",
        "pdf": PDF,
        "file_name": "assessment.pdf",
        "ticket": "TAX-0001",
        "language": "en",
    }
    values.update(changes)
    return publish_pdf(client, **values)  # type: ignore[arg-type]


def refused(call: object, *args: object, **kwargs: object) -> zeep.exceptions.Fault:
    with pytest.raises(zeep.exceptions.Fault) as caught:
        call(*args, **kwargs)  # type: ignore[operator]
    return caught.value


def documents() -> list[Document]:
    db.session.expire_all()
    return list(db.session.scalars(select(Document)))


def audit_actions() -> list[tuple[str, str, dict[str, object]]]:
    db.session.expire_all()
    events = db.session.scalars(select(AuditEvent).order_by(AuditEvent.id))
    return [(e.actor_id, e.action, e.details) for e in events]


# The contract


def test_the_wsdl_names_the_public_address_and_its_schema_by_url(soap_server: LiveServer) -> None:
    endpoint = f"{soap_server.url}/soap/EboxMessage/v1"
    response = requests.get(f"{endpoint}?wsdl", timeout=10)
    assert response.status_code == 200
    assert response.headers["Content-Type"].startswith("text/xml")
    wsdl = etree.fromstring(response.content)
    address = wsdl.find(".//{http://schemas.xmlsoap.org/wsdl/soap/}address")
    assert address is not None and address.get("location") == endpoint
    schema_import = wsdl.find(".//{http://www.w3.org/2001/XMLSchema}import")
    assert schema_import is not None
    schema_url = schema_import.get("schemaLocation")
    assert schema_url == f"{endpoint}?xsd=EboxMessage-v1.xsd"

    schema = requests.get(schema_url, timeout=10)
    assert schema.status_code == 200
    assert etree.fromstring(schema.content).get("targetNamespace") == EBOX_NS
    assert requests.get(f"{endpoint}?xsd=../../config.py", timeout=10).status_code == 404


def test_zeep_builds_the_four_operations_from_the_served_wsdl(zeep_client: zeep.Client) -> None:
    operations = zeep_client.service._binding._operations
    assert set(operations) == {"publishEboxMessage", "hasAnEbox", "getMessageStatus", "healthCheck"}
    assert zeep_client.service._binding_options["address"].endswith("/soap/EboxMessage/v1")


# publishEboxMessage


def test_a_signed_publication_is_stored_and_shown_in_the_citizens_inbox(
    client: FlaskClient, zeep_client: zeep.Client, sender: Sender, stored_keys: set[str]
) -> None:
    citizen = create_citizen()
    db.session.commit()

    result = publish(zeep_client, recipient=citizen.national_number, title="Tax 2026")

    [document] = documents()
    assert str(document.id) == result.EboxMessageId
    assert document.sender_id == sender.id
    assert document.sender_ticket == "TAX-0001" and document.sender_sequence is None
    assert document.sha256 == hashlib.sha256(PDF).hexdigest()
    assert result.CitizenActivated is True
    assert result.ExpirationDate == (utcnow().astimezone(PLATFORM_TIMEZONE).date()) + timedelta(
        days=60
    )
    assert document.expires_at == end_of_day(result.ExpirationDate)
    assert set(list_storage_keys()) - stored_keys == {document.storage_key}
    stream = open_content(
        storage_key=document.storage_key,  # type: ignore[arg-type]
        content_key=document.content_key,  # type: ignore[arg-type]
        content_key_id=document.content_key_id,  # type: ignore[arg-type]
    )
    assert stream.read() == PDF
    assert audit_actions()[-1][:2] == (str(sender.id), "document.published")
    assert "Tax 2026" not in str(audit_actions()[-1][2])

    login(client, citizen)
    inbox = client.get("/")
    assert inbox.status_code == 200
    assert "Tax 2026" in inbox.get_data(as_text=True)


def test_a_citizen_without_an_activated_ebox_is_reported_as_such(
    zeep_client: zeep.Client, sender: Sender
) -> None:
    citizen = create_citizen(activated=False)
    db.session.commit()
    assert publish(zeep_client, recipient=citizen.national_number).CitizenActivated is False
    assert publish(zeep_client, ticket="T2").CitizenActivated is False  # never logged in


def test_an_expiration_date_means_the_end_of_that_day_in_brussels(
    zeep_client: zeep.Client, sender: Sender
) -> None:
    day = date.today() + timedelta(days=10)
    result = publish(zeep_client, expiration_date=day, sequence=7)
    assert result.ExpirationDate == day
    [document] = documents()
    assert document.sender_sequence == 7
    local = document.expires_at.astimezone(PLATFORM_TIMEZONE)
    assert (local.date(), local.hour, local.minute) == (day + timedelta(days=1), 0, 0)


def test_a_retry_with_the_same_message_id_and_message_returns_the_first_id(
    zeep_client: zeep.Client, sender: Sender, stored_keys: set[str]
) -> None:
    recipient = next_national_number()
    first = publish(zeep_client, recipient=recipient, ticket="RETRY", sequence=1)
    again = publish(zeep_client, recipient=recipient, ticket="RETRY", sequence=1)

    assert again.EboxMessageId == first.EboxMessageId
    assert len(documents()) == 1
    assert len(set(list_storage_keys()) - stored_keys) == 1
    published = [d for _, action, d in audit_actions() if action == "document.published"]
    assert [d["repeated"] for d in published] == [False, True]
    assert {d["channel"] for d in published} == {"soap"}


@pytest.mark.parametrize(
    "change",
    [
        {"pdf": make_pdf("Another document")},
        {"title": "Another title"},
        {"recipient": "85073003328"},
    ],
    ids=["content", "title", "recipient"],
)
def test_the_same_message_id_for_another_message_is_refused(
    zeep_client: zeep.Client, sender: Sender, stored_keys: set[str], change: dict[str, object]
) -> None:
    first = publish(zeep_client, recipient="90010100123", ticket="DUP")

    fault = refused(publish, zeep_client, **{"recipient": "90010100123", "ticket": "DUP", **change})

    assert fault_code(fault) == "DUPLICATE_MESSAGE_ID"
    assert [str(d.id) for d in documents()] == [first.EboxMessageId]
    assert len(set(list_storage_keys()) - stored_keys) == 1


def _registered(client: zeep.Client) -> object:
    return client.service.publishEboxMessage(
        MessageID={"Ticket": "REG-1"},
        Recipient=next_national_number(),
        MessageType="TAX",
        Language="nl",
        Title="Aangetekende zending",
        Document={
            "DownloadFileName": "a.pdf",
            "MediaType": "application/pdf",
            "Digest": {"_value_1": hashlib.sha256(PDF).digest(), "Algorithm": "SHA-256"},
            "Content": PDF,
        },
        RegisteredMail=True,
    )


def _wrong_digest(client: zeep.Client) -> object:
    return client.service.publishEboxMessage(
        MessageID={"Ticket": "DIGEST-1"},
        Recipient=next_national_number(),
        MessageType="TAX",
        Language="fr",
        Title="Avis",
        Document={
            "DownloadFileName": "a.pdf",
            "MediaType": "application/pdf",
            "Digest": {"_value_1": hashlib.sha512(b"other").digest(), "Algorithm": "SHA-512"},
            "Content": PDF,
        },
    )


BUSINESS_REFUSALS = [
    ("INVALID_NATIONAL_NUMBER", lambda c: publish(c, recipient="85073003329")),
    ("MESSAGE_TYPE_UNKNOWN", lambda c: publish(c, message_type="NOT-OURS")),
    ("NOT_A_PDF", lambda c: publish(c, pdf=b"%PDF-1.7\nnot really a pdf\n%%EOF")),
    ("NOT_A_PDF", lambda c: publish(c, pdf=b"PK\x03\x04 a zip file")),
    ("DIGEST_MISMATCH", _wrong_digest),
    ("EXPIRATION_OUT_OF_BOUNDS", lambda c: publish(c, expiration_date=date.today())),
    (
        "EXPIRATION_OUT_OF_BOUNDS",
        lambda c: publish(c, expiration_date=date.today() + timedelta(days=4 * 365)),
    ),
    ("REGISTERED_MAIL_NOT_HERE", _registered),
]


@pytest.mark.parametrize(
    ("code", "call"),
    BUSINESS_REFUSALS,
    ids=[
        "national-number",
        "message-type",
        "pdf-header-only",
        "not-pdf",
        "digest",
        "expiry-today",
        "expiry-too-far",
        "registered",
    ],
)
def test_a_publication_breaking_a_rule_is_refused_audited_and_stores_nothing(
    zeep_client: zeep.Client, sender: Sender, stored_keys: set[str], code: str, call: object
) -> None:
    other_sender_type = create_message_type(code="NOT-OURS")  # exists, but another sender's
    db.session.commit()
    assert other_sender_type.sender_id != sender.id

    fault = refused(call, zeep_client)

    assert fault_code(fault) == code
    assert fault.code.endswith("Client")
    assert documents() == []
    assert set(list_storage_keys()) == stored_keys
    actor, action, details = audit_actions()[-1]
    assert (actor, action, details["code"]) == (str(sender.id), "publication.refused", code)
    assert "Title" not in details and "title" not in details


def test_a_document_above_the_size_limit_is_refused(
    soap_server: LiveServer, zeep_client: zeep.Client, sender: Sender, stored_keys: set[str]
) -> None:
    settings = soap_server.app.config["EBOX"]
    settings.max_document_bytes = len(PDF) - 1
    try:
        fault = refused(publish, zeep_client)
    finally:
        settings.max_document_bytes = 10 * 1024 * 1024
    assert fault_code(fault) == "DOCUMENT_TOO_LARGE"
    assert documents() == [] and set(list_storage_keys()) == stored_keys


@pytest.mark.slow
def test_a_document_of_the_full_size_limit_is_published_and_downloaded_intact(
    soap_server: LiveServer, client: FlaskClient, zeep_client: zeep.Client, sender: Sender
) -> None:
    limit = soap_server.app.config["EBOX"].max_document_bytes
    assert limit == 10 * 1024 * 1024  # the default: the request limit must leave room for it
    scan = make_pdf("Scanned file", total_size=limit)
    citizen = create_citizen()
    db.session.commit()

    result = publish(zeep_client, recipient=citizen.national_number, pdf=scan)

    login(client, citizen)
    download = client.get(f"/documents/{result.EboxMessageId}/content")
    assert download.status_code == 200
    assert len(download.data) == limit and download.data == scan


@pytest.mark.postgres_only
def test_a_commit_that_fails_answers_internal_error_and_leaves_no_stored_object(
    zeep_client: zeep.Client, sender: Sender, stored_keys: set[str]
) -> None:
    # A deferred trigger makes the database refuse the COMMIT itself, after the content is stored.
    db.session.execute(
        text(
            "CREATE FUNCTION refuse_document() RETURNS trigger LANGUAGE plpgsql AS "
            "$$ BEGIN RAISE EXCEPTION 'database refused the document'; END $$"
        )
    )
    db.session.execute(
        text(
            "CREATE CONSTRAINT TRIGGER refuse_document AFTER INSERT ON documents "
            "DEFERRABLE INITIALLY DEFERRED FOR EACH ROW EXECUTE FUNCTION refuse_document()"
        )
    )
    db.session.commit()
    try:
        fault = refused(publish, zeep_client)
    finally:
        db.session.execute(text("DROP TRIGGER refuse_document ON documents"))
        db.session.execute(text("DROP FUNCTION refuse_document()"))
        db.session.commit()

    assert fault_code(fault) == "INTERNAL_ERROR"
    assert "database refused" not in fault.message  # no internals leak to the caller
    assert documents() == []
    assert set(list_storage_keys()) == stored_keys
    # The Fault says "try again later": the same message then goes through.
    assert publish(zeep_client).EboxMessageId == str(documents()[0].id)


def test_a_message_type_of_a_suspended_sender_is_refused_at_the_door(
    zeep_client: zeep.Client, sender: Sender
) -> None:
    sender.is_active = False
    db.session.commit()
    assert fault_code(refused(publish, zeep_client)) == "SENDER_SUSPENDED"
    assert documents() == []


# hasAnEbox


def test_has_an_ebox_answers_for_each_number_in_order(
    zeep_client: zeep.Client, sender: Sender
) -> None:
    active = create_citizen()
    inactive = create_citizen(activated=False)
    paperless = create_citizen(is_electronic_only=True)
    unknown = next_national_number()
    db.session.commit()
    numbers = [unknown, active.national_number, inactive.national_number, paperless.national_number]

    answers = zeep_client.service.hasAnEbox(NationalNumber=numbers)

    assert [(a.NationalNumber, a.Exists, a.Activated, a.ElectronicOnly) for a in answers] == [
        (unknown, False, False, False),
        (active.national_number, True, True, False),
        (inactive.national_number, True, False, False),
        (paperless.national_number, True, True, True),
    ]


def test_has_an_ebox_refuses_a_number_with_wrong_check_digits(
    zeep_client: zeep.Client, sender: Sender
) -> None:
    fault = refused(zeep_client.service.hasAnEbox, NationalNumber=["85073003329"])
    assert fault_code(fault) == "INVALID_NATIONAL_NUMBER"


# getMessageStatus


def test_message_status_tells_own_messages_and_hides_other_senders_ones(
    zeep_client: zeep.Client, sender: Sender
) -> None:
    [message_type] = db.session.scalars(
        select(MessageType).where(MessageType.sender_id == sender.id)
    ).all()
    citizen = create_citizen()
    unread = create_document(citizen, message_type=message_type, ticket="S-1")
    read = create_document(citizen, message_type=message_type, ticket="S-2", sequence=4)
    read.read_at = utcnow()
    expired = create_document(citizen, message_type=message_type, ticket="S-3")
    expired.expires_at = utcnow() - timedelta(hours=1)
    others = create_document(citizen, ticket="S-1")  # another sender, same ticket
    db.session.commit()

    statuses = zeep_client.service.getMessageStatus(
        Query=[
            {"EboxMessageId": str(unread.id)},
            {"MessageID": {"Ticket": "S-2", "Sequence": 4}},
            {"EboxMessageId": str(expired.id)},
            {"EboxMessageId": str(others.id)},
            {"MessageID": {"Ticket": "S-2"}},  # no such message without a sequence
            {"EboxMessageId": "00000000-0000-4000-8000-000000000000"},
        ]
    )

    found = [s.Found for s in statuses]
    assert found == [True, True, True, False, False, False]
    first, second, third = statuses[:3]
    assert (first.EboxMessageId, first.MessageID.Ticket) == (str(unread.id), "S-1")
    assert (first.Read, first.ReadAt, first.Deleted) == (False, None, False)
    assert second.EboxMessageId == str(read.id) and second.Read is True
    assert second.ReadAt is not None and second.MessageID.Sequence == 4
    assert third.Deleted is True and third.DeletedAt is not None
    assert statuses[3].EboxMessageId is None and statuses[3].PublishedAt is None
    assert statuses[3].Query.EboxMessageId == str(others.id)


# healthCheck


@pytest.mark.parametrize(
    ("level", "components"),
    [("PING", []), ("DEFAULT", ["database"]), ("DEEP", ["database", "storage", "redis"])],
)
def test_health_check_reports_each_component_of_its_level(
    zeep_client: zeep.Client, sender: Sender, level: str, components: list[str]
) -> None:
    answer = zeep_client.service.healthCheck(Level=level)
    assert answer.Status == "OK"
    assert [(c.Name, c.Status) for c in answer.Component] == [(n, "OK") for n in components]
