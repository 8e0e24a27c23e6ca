"""What the EboxMessage v1 and RegisteredMail v1 services share about messages.

Both take the same publication fields and the same status queries, each in its own namespace:
the readers here take names in the namespace of the element they read. publish() turns a
validated publication request into a Publication for ebox.mailbox.publication, audits it, and
answers its refusals as Faults; the query helpers find a sender's own messages by platform id
or by the sender's MessageID.
"""

from __future__ import annotations

import base64
import binascii
import dataclasses
import functools
import logging
import uuid
from dataclasses import dataclass
from datetime import date, datetime

from lxml import etree

from ebox.evidence.timestamp import TimestampError
from ebox.mailbox import publication
from ebox.mailbox.models import Document
from ebox.mailbox.sender_messages import (  # noqa: F401 (the services share them)
    Accepted,
    MessageQuery,
    is_activated,
    match,
    own_documents,
    publish_audited,
)
from ebox.senders.models import MessageType, Sender
from ebox.soap import faults
from ebox.soap.binary import plain_base64
from ebox.soap.envelope import element_in
from ebox.soap.faults import SoapFault
from ebox.soap.service import Caller

log = logging.getLogger(__name__)

MAX_NATIONAL_NUMBERS = 1000
MAX_STATUS_QUERIES = 250
# Where a publication request carries the document (xs:base64Binary).
DOCUMENT_CONTENT = ("Document", "Content")

# The publication rule's refusal codes that are not Fault codes of the same name.
_REFUSAL_TO_FAULT = {publication.INVALID_FIELD: faults.SCHEMA_INVALID}


# --- reading request elements -------------------------------------------------------------


def find(parent: etree._Element, *path: str) -> etree._Element | None:
    """A descendant by its local names, in the namespace of parent."""
    return parent.find(_path(str(parent.tag), path))


@functools.lru_cache(maxsize=256)
def _path(parent_tag: str, names: tuple[str, ...]) -> str:
    """The Clark path of names in parent_tag's namespace (a publication reads a dozen; only
    validated requests are read, so the names are the schema's)."""
    namespace = etree.QName(parent_tag).namespace
    return "/".join(f"{{{namespace}}}{name}" for name in names)


def text_of(parent: etree._Element, *path: str) -> str | None:
    node = find(parent, *path)
    return None if node is None else (node.text or "")


def required_text(parent: etree._Element, *path: str) -> str:
    value = text_of(parent, *path)
    assert value is not None  # the schema requires it
    return value


def read_message_id(parent: etree._Element | None) -> tuple[str, int | None]:
    """The (ticket, sequence) of a MessageID element."""
    assert parent is not None  # the schema requires it
    sequence = text_of(parent, "Sequence")
    return required_text(parent, "Ticket"), None if sequence is None else int(sequence)


def message_id_element(namespace: str, prefix: str, document: Document) -> etree._Element:
    """The document's MessageID (the sender's ticket and sequence) in a service's namespace."""
    node = element_in(namespace, prefix, "MessageID")
    node.append(element_in(namespace, prefix, "Ticket", document.sender_ticket))
    if document.sender_sequence is not None:
        node.append(element_in(namespace, prefix, "Sequence", document.sender_sequence))
    return node


def xsd_datetime(moment: datetime) -> str:
    return moment.isoformat(timespec="seconds").replace("+00:00", "Z")


def _xsd_date(value: str) -> date:
    """An xs:date; a time-zone suffix, which the schema allows, does not change the day meant."""
    return date.fromisoformat(value.strip()[:10])


def _base64(value: str | None) -> bytes:
    plain = plain_base64(value or "")
    if plain is not None:
        return plain
    try:
        return base64.b64decode("".join((value or "").split()), validate=True)
    except (binascii.Error, ValueError):
        raise SoapFault(faults.SCHEMA_INVALID, "A base64Binary value is not valid.") from None


# --- publishing -----------------------------------------------------------------------------


def publish(request: etree._Element, caller: Caller, *, is_registered: bool) -> Accepted:
    """Publish what a validated publication request describes, audited; refusals as Faults."""
    sender = caller.sender
    try:
        submitted = dataclasses.replace(
            _publication(request, sender, is_registered=is_registered),
            sender_certificate_sha256=caller.certificate_sha256,
        )
        return publish_audited(
            submitted, _base64(text_of(request, *DOCUMENT_CONTENT)), channel="soap"
        )
    except publication.PublicationRefused as refusal:
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


def _publication(
    request: etree._Element, sender: Sender, *, is_registered: bool
) -> publication.Publication:
    ticket, sequence = read_message_id(find(request, "MessageID"))
    expiration = text_of(request, "ExpirationDate")
    digest = find(request, "Document", "Digest")
    assert digest is not None  # the schema requires it
    return publication.Publication(
        sender=sender,
        message_type=_message_type(sender, required_text(request, "MessageType")),
        recipient_national_number=required_text(request, "Recipient"),
        ticket=ticket,
        sequence=sequence,
        title=required_text(request, "Title"),
        language=required_text(request, "Language"),
        body_text=text_of(request, "BodyText") or None,
        file_name=required_text(request, "Document", "DownloadFileName"),
        media_type=required_text(request, "Document", "MediaType"),
        expires_at=None if expiration is None else publication.end_of_day(_xsd_date(expiration)),
        digest=publication.Digest(str(digest.get("Algorithm")), _base64(digest.text)),
        is_registered=is_registered,
    )


def _message_type(sender: Sender, code: str) -> MessageType:
    try:
        return publication.find_message_type(sender, code)
    except publication.PublicationRefused as refusal:
        raise SoapFault(faults.MESSAGE_TYPE_UNKNOWN, refusal.message) from None


# --- finding a sender's messages ------------------------------------------------------------


@dataclass(frozen=True)
class Query(MessageQuery):
    """A Query element of a status request, and the message it asks for."""

    node: etree._Element


def queries_of(request: etree._Element) -> list[Query]:
    """The Query children of a status request, by platform id or by the sender's MessageID.

    Their number was checked before the schema (the Operation's limit)."""
    namespace = etree.QName(request).namespace
    return [_query(node) for node in request.iterfind(f"{{{namespace}}}Query")]


def _query(node: etree._Element) -> Query:
    document_id = text_of(node, "EboxMessageId")
    if document_id is not None:
        return Query(uuid.UUID(document_id), None, None, node)
    ticket, sequence = read_message_id(find(node, "MessageID"))
    return Query(None, ticket, sequence, node)


def copy_query(query: etree._Element) -> etree._Element:
    """The query as asked, in the answer's namespace: the sender matches answers to questions."""
    copy = etree.Element(query.tag, nsmap=query.nsmap)
    for child in query:
        if isinstance(child.tag, str):
            copy.append(etree.fromstring(etree.tostring(child)))
    return copy
