"""The operations of the EboxMessage v1 service, from a validated request element to a response.

Each operation gets the payload element (already checked against the XSD) and the sender the
signature proved, and returns the response element. Refusals raise SoapFault. What this service
shares with RegisteredMail v1 (reading a publication, finding a sender's messages) is in
ebox.soap.messages; the publication rules are ebox.mailbox.publication's.
"""

from __future__ import annotations

from datetime import datetime

from lxml import etree

from ebox import national_number
from ebox.db_types import utcnow
from ebox.health.checks import run_checks
from ebox.mailbox.models import Document
from ebox.mailbox.publication import expiration_day
from ebox.mailbox.queries import recipient_status
from ebox.soap import faults
from ebox.soap.envelope import EBOX_NS, ebox, element
from ebox.soap.faults import SoapFault
from ebox.soap.messages import (
    DOCUMENT_CONTENT,
    MAX_NATIONAL_NUMBERS,
    MAX_STATUS_QUERIES,
    Query,
    copy_query,
    match,
    message_id_element,
    own_documents,
    publish,
    queries_of,
    required_text,
    text_of,
    xsd_datetime,
)
from ebox.soap.service import Caller, Operation, Service

# --- publishEboxMessage ---------------------------------------------------------------------


def publish_ebox_message(request: etree._Element, caller: Caller | None) -> etree._Element:
    assert caller is not None  # only healthCheck is anonymous
    if text_of(request, "RegisteredMail") in ("true", "1"):
        raise SoapFault(
            faults.REGISTERED_MAIL_NOT_HERE,
            "Registered mail is not accepted by publishEboxMessage: it has a service of its own.",
        )
    accepted = publish(request, caller, is_registered=False)
    document = accepted.document
    return element(
        "publishEboxMessageResponse",
        None,
        element("EboxMessageId", document.id),
        element("ExpirationDate", expiration_day(document.expires_at).isoformat()),
        element("CitizenActivated", accepted.citizen_activated),
    )


# --- hasAnEbox ------------------------------------------------------------------------------


def has_an_ebox(request: etree._Element, caller: Caller | None) -> etree._Element:
    numbers = [node.text or "" for node in request.iterfind(ebox("NationalNumber"))]
    for position, number in enumerate(numbers, start=1):
        if not national_number.is_valid(number):
            raise SoapFault(
                faults.INVALID_NATIONAL_NUMBER,
                f"NationalNumber {position} ({number}) is not a valid national register number.",
            )
    citizens = recipient_status(sorted(set(numbers)))
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


# --- getMessageStatus -----------------------------------------------------------------------


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


def _status(query: Query, document: Document | None, now: datetime) -> etree._Element:
    node = element("MessageStatus", None, copy_query(query.node))
    node.append(element("Found", document is not None))
    if document is None:
        return node
    deleted_at = document.deleted_at or (
        document.expires_at if document.expires_at <= now else None
    )
    node.append(element("EboxMessageId", document.id))
    node.append(message_id_element(EBOX_NS, "ebox", document))
    node.append(element("PublishedAt", xsd_datetime(document.published_at)))
    node.append(element("Read", document.read_at is not None))
    if document.read_at is not None:
        node.append(element("ReadAt", xsd_datetime(document.read_at)))
    node.append(element("ExpiresAt", xsd_datetime(document.expires_at)))
    node.append(element("Deleted", deleted_at is not None))
    if deleted_at is not None:
        node.append(element("DeletedAt", xsd_datetime(deleted_at)))
    return node


# --- healthCheck ----------------------------------------------------------------------------


def health_check(request: etree._Element, caller: Caller | None) -> etree._Element:
    components = _HEALTH_LEVELS[required_text(request, "Level")]
    results = run_checks(components)
    overall = all(results.values())
    answer = element("healthCheckResponse", None, element("Status", _ok(overall)))
    for name, ok in results.items():
        answer.append(element("Component", None, element("Name", name), element("Status", _ok(ok))))
    return answer


# What each Level of healthCheck looks at (the XSD allows only these levels).
_HEALTH_LEVELS = {
    "PING": (),
    "DEFAULT": ("database",),
    "DEEP": ("database", "storage", "redis"),
}


def _ok(ok: bool) -> str:
    return "OK" if ok else "FAILED"


OPERATIONS = {
    ebox("publishEboxMessageRequest"): Operation(
        "publishEboxMessage", publish_ebox_message, publishes=True, bulk=DOCUMENT_CONTENT
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
