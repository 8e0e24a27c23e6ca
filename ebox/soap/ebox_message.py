"""The operations of the EboxMessage v1 service, from a validated request element to a response.

Each operation gets the payload element (already checked against the XSD) and the sender the
signature proved, and returns the response element. Refusals raise SoapFault. The publication
rules themselves live in ebox.mailbox.services, shared with every other way of publishing.

RegisteredMail v1 (ebox.soap.registered_mail) takes the same publication fields and the same
message queries in its own namespace: the readers here take names in the namespace of the
element they read, so both services share them.
"""

from __future__ import annotations

import base64
import binascii
import dataclasses
import logging
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from datetime import date, datetime

from flask import current_app
from lxml import etree
from sqlalchemy import or_, select, text

from ebox import national_number
from ebox.config import Settings
from ebox.db_types import utcnow
from ebox.evidence.timestamp import TimestampError
from ebox.extensions import db
from ebox.mailbox import services as mailbox
from ebox.mailbox.models import Document
from ebox.senders.models import MessageType, Sender
from ebox.soap import faults
from ebox.soap.envelope import EBOX_NS, ebox, element
from ebox.soap.faults import SoapFault
from ebox.soap.service import Caller, Operation, Service

log = logging.getLogger(__name__)

MAX_NATIONAL_NUMBERS = 1000
MAX_STATUS_QUERIES = 250

# The mailbox's refusal codes that are not Fault codes of the same name.
_REFUSAL_TO_FAULT = {mailbox.INVALID_FIELD: faults.SCHEMA_INVALID}


def _settings() -> Settings:
    settings: Settings = current_app.config["EBOX"]
    return settings


def _find(parent: etree._Element, *path: str) -> etree._Element | None:
    """A descendant by its local names, in the namespace of parent."""
    namespace = etree.QName(parent).namespace
    return parent.find("/".join(f"{{{namespace}}}{name}" for name in path))


def _text(parent: etree._Element, *path: str) -> str | None:
    node = _find(parent, *path)
    return None if node is None else (node.text or "")


def _required(parent: etree._Element, *path: str) -> str:
    value = _text(parent, *path)
    assert value is not None  # the schema requires it
    return value


def _message_id(parent: etree._Element | None) -> tuple[str, int | None]:
    assert parent is not None  # the schema requires it
    sequence = _text(parent, "Sequence")
    return _required(parent, "Ticket"), None if sequence is None else int(sequence)


def _message_id_element(ticket: str, sequence: int | None) -> etree._Element:
    node = element("MessageID", None, element("Ticket", ticket))
    if sequence is not None:
        node.append(element("Sequence", sequence))
    return node


def _xsd_datetime(moment: datetime) -> str:
    return moment.isoformat(timespec="seconds").replace("+00:00", "Z")


# --- publishEboxMessage ---------------------------------------------------------------------


def publish_ebox_message(request: etree._Element, caller: Caller | None) -> etree._Element:
    assert caller is not None  # only healthCheck is anonymous
    if _text(request, "RegisteredMail") in ("true", "1"):
        raise SoapFault(
            faults.REGISTERED_MAIL_NOT_HERE,
            "Registered mail is not accepted by publishEboxMessage: it has a service of its own.",
        )
    document = publish(request, caller, is_registered=False)
    return element(
        "publishEboxMessageResponse",
        None,
        element("EboxMessageId", document.id),
        element("ExpirationDate", mailbox.expiration_day(document.expires_at).isoformat()),
        element("CitizenActivated", is_activated(document.recipient_national_number)),
    )


def publish(request: etree._Element, caller: Caller, *, is_registered: bool) -> Document:
    """Publish what a validated publication request describes, audited; refusals as Faults."""
    sender = caller.sender
    try:
        publication = _publication(request, sender, is_registered=is_registered)
        publication = dataclasses.replace(
            publication, sender_certificate_sha256=caller.certificate_sha256
        )
        published = mailbox.publish(publication, _content(request))
    except mailbox.PublicationRefused as refusal:
        code = _REFUSAL_TO_FAULT.get(refusal.code, refusal.code)
        raise SoapFault(code, refusal.message) from None
    except TimestampError as error:
        # Registered mail's evidence is timestamped before anything is committed.
        log.error("publication refused: the timestamp authority failed: %s", error)
        raise SoapFault(
            faults.SERVICE_UNAVAILABLE,
            "The timestamp authority that registered mail's evidence needs did not answer; "
            "nothing was published. Try again later.",
        ) from None
    _audit_publication(sender, published.document, is_new=published.is_new)
    return published.document


def _publication(
    request: etree._Element, sender: Sender, *, is_registered: bool
) -> mailbox.Publication:
    ticket, sequence = _message_id(_find(request, "MessageID"))
    expiration = _text(request, "ExpirationDate")
    digest = _find(request, "Document", "Digest")
    assert digest is not None  # the schema requires it
    return mailbox.Publication(
        sender=sender,
        message_type=_message_type(sender, _required(request, "MessageType")),
        recipient_national_number=_required(request, "Recipient"),
        ticket=ticket,
        sequence=sequence,
        title=_required(request, "Title"),
        language=_required(request, "Language"),
        body_text=_text(request, "BodyText") or None,
        file_name=_required(request, "Document", "DownloadFileName"),
        media_type=_required(request, "Document", "MediaType"),
        expires_at=None if expiration is None else mailbox.end_of_day(_xsd_date(expiration)),
        digest=mailbox.Digest(str(digest.get("Algorithm")), _base64(digest.text)),
        is_registered=is_registered,
    )


def _message_type(sender: Sender, code: str) -> MessageType:
    try:
        return mailbox.find_message_type(sender, code)
    except mailbox.PublicationRefused as refusal:
        raise SoapFault(faults.MESSAGE_TYPE_UNKNOWN, refusal.message) from None


def _xsd_date(value: str) -> date:
    """An xs:date; a time-zone suffix, which the schema allows, does not change the day meant."""
    return date.fromisoformat(value.strip()[:10])


def _base64(value: str | None) -> bytes:
    try:
        return base64.b64decode("".join((value or "").split()), validate=True)
    except (binascii.Error, ValueError):
        raise SoapFault(faults.SCHEMA_INVALID, "A base64Binary value is not valid.") from None


def _content(request: etree._Element) -> bytes:
    return _base64(_text(request, "Document", "Content"))


def is_activated(number: str) -> bool:
    citizen = mailbox.recipient_status([number]).get(number)
    return citizen is not None and citizen.is_activated


def _audit_publication(sender: Sender, document: Document, *, is_new: bool) -> None:
    from ebox.audit.services import Actor, record_event

    record_event(
        Actor("sender", str(sender.id)),
        "document.published",
        "document",
        document.id,
        {
            "ticket": document.sender_ticket,
            "sequence": document.sender_sequence,
            "message_type_id": document.message_type_id,
            "recipient": national_number.mask(document.recipient_national_number),
            "size_bytes": document.size_bytes,
            "registered": document.is_registered,
            "repeated": not is_new,
        },
    )


# --- hasAnEbox ------------------------------------------------------------------------------


def has_an_ebox(request: etree._Element, caller: Caller | None) -> etree._Element:
    numbers = [node.text or "" for node in request.iterfind(ebox("NationalNumber"))]
    _check_count(len(numbers), MAX_NATIONAL_NUMBERS, "national numbers")
    for position, number in enumerate(numbers, start=1):
        if not national_number.is_valid(number):
            raise SoapFault(
                faults.INVALID_NATIONAL_NUMBER,
                f"NationalNumber {position} ({number}) is not a valid national register number.",
            )
    citizens = mailbox.recipient_status(sorted(set(numbers)))
    answer = element("hasAnEboxResponse")
    for number in numbers:
        citizen = citizens.get(number)
        answer.append(
            element(
                "Citizen",
                None,
                element("NationalNumber", number),
                element("Exists", citizen is not None),
                element("Activated", citizen is not None and citizen.is_activated),
                element("ElectronicOnly", citizen is not None and citizen.is_electronic_only),
            )
        )
    return answer


def _check_count(count: int, most: int, what: str) -> None:
    if count > most:
        raise SoapFault(faults.TOO_MANY_IDS, f"At most {most} {what} per request ({count} given).")


# --- getMessageStatus -----------------------------------------------------------------------


@dataclass(frozen=True)
class Query:
    node: etree._Element
    document_id: uuid.UUID | None
    ticket: str | None
    sequence: int | None


def get_message_status(request: etree._Element, caller: Caller | None) -> etree._Element:
    assert caller is not None
    sender = caller.sender
    queries = queries_of(request)
    documents = own_documents(sender, queries)
    now = utcnow()
    answer = element("getMessageStatusResponse")
    for query in queries:
        answer.append(_status(query, match(query, documents), now))
    return answer


def queries_of(request: etree._Element) -> list[Query]:
    """The Query children of a status request, by platform id or by the sender's MessageID."""
    namespace = etree.QName(request).namespace
    queries = [_query(node) for node in request.iterfind(f"{{{namespace}}}Query")]
    _check_count(len(queries), MAX_STATUS_QUERIES, "messages")
    return queries


def _query(node: etree._Element) -> Query:
    document_id = _text(node, "EboxMessageId")
    if document_id is not None:
        return Query(node, uuid.UUID(document_id), None, None)
    ticket, sequence = _message_id(_find(node, "MessageID"))
    return Query(node, None, ticket, sequence)


def own_documents(sender: Sender, queries: list[Query]) -> list[Document]:
    """Only this sender's documents: another's id is answered exactly like a missing one."""
    ids = [q.document_id for q in queries if q.document_id is not None]
    tickets = [q.ticket for q in queries if q.ticket is not None]
    if not ids and not tickets:
        return []
    statement = select(Document).where(
        Document.sender_id == sender.id,
        or_(Document.id.in_(ids), Document.sender_ticket.in_(tickets)),
    )
    return list(db.session.scalars(statement))


def match(query: Query, documents: list[Document]) -> Document | None:
    for document in documents:
        if query.document_id is not None:
            if document.id == query.document_id:
                return document
        elif (document.sender_ticket, document.sender_sequence) == (query.ticket, query.sequence):
            return document
    return None


def _status(query: Query, document: Document | None, now: datetime) -> etree._Element:
    node = element("MessageStatus", None, copy_query(query.node))
    node.append(element("Found", document is not None))
    if document is None:
        return node
    deleted_at = document.deleted_at or (
        document.expires_at if document.expires_at <= now else None
    )
    node.append(element("EboxMessageId", document.id))
    node.append(_message_id_element(document.sender_ticket, document.sender_sequence))
    node.append(element("PublishedAt", _xsd_datetime(document.published_at)))
    node.append(element("Read", document.read_at is not None))
    if document.read_at is not None:
        node.append(element("ReadAt", _xsd_datetime(document.read_at)))
    node.append(element("ExpiresAt", _xsd_datetime(document.expires_at)))
    node.append(element("Deleted", deleted_at is not None))
    if deleted_at is not None:
        node.append(element("DeletedAt", _xsd_datetime(deleted_at)))
    return node


def copy_query(query: etree._Element) -> etree._Element:
    """The query as asked, in the answer's namespace: the sender matches answers to questions."""
    copy = etree.Element(query.tag, nsmap=query.nsmap)
    for child in query:
        if isinstance(child.tag, str):
            copy.append(etree.fromstring(etree.tostring(child)))
    return copy


# --- healthCheck ----------------------------------------------------------------------------


def health_check(request: etree._Element, caller: Caller | None) -> etree._Element:
    level = _required(request, "Level")
    checks: dict[str, Callable[[], None]] = {}
    if level in ("DEFAULT", "DEEP"):
        checks["database"] = _check_database
    if level == "DEEP":
        checks["storage"] = _check_storage
        checks["redis"] = _check_redis
    results = {name: _run_check(name, check) for name, check in checks.items()}
    overall = all(results.values())
    answer = element("healthCheckResponse", None, element("Status", "OK" if overall else "FAILED"))
    for name, ok in results.items():
        answer.append(element("Component", None, element("Name", name), element("Status", _ok(ok))))
    return answer


def _ok(ok: bool) -> str:
    return "OK" if ok else "FAILED"


def _run_check(name: str, check: Callable[[], None]) -> bool:
    try:
        check()
    except Exception as exc:  # a health check reports every failure, whatever its kind
        log.warning("healthCheck: %s failed: %s", name, exc)
        return False
    return True


def _check_database() -> None:
    db.session.execute(text("SELECT 1"))


def _check_storage() -> None:
    from ebox.storage.services import check_storage

    check_storage()


def _check_redis() -> None:
    from ebox.soap.views import redis_for_app

    redis_for_app().ping()


OPERATIONS = {
    ebox("publishEboxMessageRequest"): Operation(
        "publishEboxMessage", publish_ebox_message, publishes=True
    ),
    ebox("hasAnEboxRequest"): Operation(
        "hasAnEbox", has_an_ebox, limit=("NationalNumber", MAX_NATIONAL_NUMBERS)
    ),
    ebox("getMessageStatusRequest"): Operation(
        "getMessageStatus", get_message_status, limit=("Query", MAX_STATUS_QUERIES)
    ),
    ebox("healthCheckRequest"): Operation("healthCheck", health_check, allows_anonymous=True),
}

SERVICE = Service(
    name="EboxMessage",
    version="v1",
    namespace=EBOX_NS,
    wsdl_file="EboxMessage-v1.wsdl",
    xsd_files=("EboxMessage-v1.xsd",),
    operations=OPERATIONS,
)
