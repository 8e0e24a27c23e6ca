"""What the sender-facing interfaces (the SOAP services and the REST API) share about messages.

publish_audited() publishes as both do: through ebox.mailbox.publication, audited, answered
with whether the recipient's eBox is activated. own_documents() and match() find a sender's own
messages by platform id or by the sender's reference (its MessageID: ticket and sequence), one
MessageID space per sender whichever interface published it. Refusals are the publication's
(PublicationRefused, TimestampError); each interface answers them in its own way.
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from typing import BinaryIO

from sqlalchemy import or_, select

from ebox import national_number
from ebox.accounts.models import Citizen
from ebox.audit.services import Actor, record_event
from ebox.extensions import db
from ebox.mailbox import publication
from ebox.mailbox.models import Document
from ebox.senders.models import Sender


@dataclass(frozen=True)
class Accepted:
    """A publication accepted (or an identical retry), and what its answer tells the sender."""

    document: Document
    citizen_activated: bool
    is_new: bool


def publish_audited(
    submitted: publication.Publication,
    content: BinaryIO | bytes,
    attachments: Sequence[publication.SubmittedAttachment] = (),
    *,
    channel: str,
) -> Accepted:
    """Publish, and audit the publication (a retry too) with the channel it came by ("soap" or
    "rest"). Flushes; refusals propagate."""
    published = publication.publish(submitted, content, attachments)
    document = published.document
    _audit_publication(
        submitted.sender,
        document,
        is_new=published.is_new,
        channel=channel,
        attachments=len(attachments),
    )
    activated = published.recipient_is_activated
    if activated is None:
        activated = is_activated(document.recipient_national_number)
    return Accepted(document, activated, published.is_new)


def is_activated(number: str) -> bool:
    """CitizenActivated: one column read, no citizen loaded (every publication answers it)."""
    activated = db.session.scalar(
        select(
            Citizen.conditions_accepted_at.is_not(None) & Citizen.email_confirmed_at.is_not(None)
        ).where(Citizen.national_number == number)
    )
    return bool(activated)


def _audit_publication(
    sender: Sender, document: Document, *, is_new: bool, channel: str, attachments: int
) -> None:
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
            "channel": channel,
            "attachments": attachments,
        },
    )


# --- finding a sender's messages ------------------------------------------------------------


@dataclass(frozen=True)
class MessageQuery:
    """One message asked for: by the id eBox gave it, or else by the sender's reference."""

    document_id: uuid.UUID | None
    ticket: str | None
    sequence: int | None


def own_documents(sender: Sender, queries: Sequence[MessageQuery]) -> list[Document]:
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


def match(query: MessageQuery, documents: list[Document]) -> Document | None:
    for document in documents:
        if query.document_id is not None:
            if document.id == query.document_id:
                return document
        elif (document.sender_ticket, document.sender_sequence) == (query.ticket, query.sequence):
            return document
    return None
