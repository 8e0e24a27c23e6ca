"""Writes to the mailbox. publish_document() is the only way a document enters eBox.

The citizen's side: marking read, hiding, unhiding and the log of every access.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import BinaryIO

from sqlalchemy import select

from ebox import national_number
from ebox.accounts.models import Citizen
from ebox.config import LANGUAGES
from ebox.db_types import utcnow
from ebox.extensions import db
from ebox.mailbox.models import Document, DocumentAccessEvent
from ebox.senders.models import MessageType, Sender
from ebox.storage.services import delete_content, store_content
from ebox.transactions import after_rollback

log = logging.getLogger(__name__)

MAX_TITLE_LENGTH = 400


class PublicationRefused(ValueError):
    """A document cannot be published. `code` is stable (faults use it), the message explains."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code


@dataclass(frozen=True)
class Publication:
    """What a sender submits: everything but the content itself."""

    sender: Sender
    message_type: MessageType
    recipient_national_number: str
    ticket: str
    sequence: int | None
    title: str
    language: str
    file_name: str
    media_type: str
    body_text: str | None = None
    expires_at: datetime | None = None
    is_registered: bool = False


def publish_document(publication: Publication, content: BinaryIO | bytes) -> Document:
    """Check a publication, store its content encrypted and record it. Flushes, never commits.

    The same MessageID with the same content returns the document already published; with
    other content it is refused. Nothing is ever silently replaced.
    """
    recipient = _check(publication)
    stored = store_content(content)
    existing = _find_by_message_id(publication)
    if existing is not None:
        delete_content(stored.storage_key)
        if existing.sha256 != stored.sha256 or existing.recipient_national_number != recipient:
            raise PublicationRefused(
                "DUPLICATE_MESSAGE_ID",
                "This MessageID was already used for another document.",
            )
        return existing
    # If the transaction does not commit, the stored object must not outlive it.
    after_rollback(lambda: delete_content(stored.storage_key))
    document = Document(
        sender_id=publication.sender.id,
        message_type_id=publication.message_type.id,
        recipient_national_number=recipient,
        sender_ticket=publication.ticket,
        sender_sequence=publication.sequence,
        title=publication.title,
        language=publication.language,
        body_text=publication.body_text,
        file_name=publication.file_name,
        media_type=publication.media_type,
        size_bytes=stored.size_bytes,
        sha256=stored.sha256,
        storage_key=stored.storage_key,
        content_key=stored.content_key,
        content_key_id=stored.content_key_id,
        is_registered=publication.is_registered,
        published_at=utcnow(),
        expires_at=publication.expires_at or _default_expiry(publication.message_type),
    )
    db.session.add(document)
    db.session.flush()
    log.info("document %s published by sender %s", document.id, publication.sender.id)
    return document


def _check(publication: Publication) -> str:
    try:
        recipient = national_number.normalise(publication.recipient_national_number)
    except national_number.InvalidNationalNumber as exc:
        raise PublicationRefused("INVALID_NATIONAL_NUMBER", str(exc)) from exc
    if not publication.sender.is_active:
        raise PublicationRefused("SENDER_NOT_ACTIVE", "This sender may not publish.")
    if publication.message_type.sender_id != publication.sender.id:
        raise PublicationRefused(
            "MESSAGE_TYPE_NOT_ALLOWED", "This message type is not the sender's."
        )
    if publication.language not in LANGUAGES:
        raise PublicationRefused("INVALID_LANGUAGE", "The language must be nl, fr, de or en.")
    if not publication.title.strip() or len(publication.title) > MAX_TITLE_LENGTH:
        raise PublicationRefused("INVALID_TITLE", "The title must have 1 to 400 characters.")
    if not 1 <= len(publication.ticket) <= 25:
        raise PublicationRefused("INVALID_MESSAGE_ID", "The ticket must have 1 to 25 characters.")
    if publication.sequence is not None and not 0 <= publication.sequence <= 99999:
        raise PublicationRefused("INVALID_MESSAGE_ID", "The sequence must be between 0 and 99999.")
    if publication.expires_at is not None and publication.expires_at <= utcnow():
        raise PublicationRefused("INVALID_EXPIRATION", "The expiration date is in the past.")
    return recipient


def _find_by_message_id(publication: Publication) -> Document | None:
    query = select(Document).where(
        Document.sender_id == publication.sender.id,
        Document.sender_ticket == publication.ticket,
    )
    if publication.sequence is None:
        query = query.where(Document.sender_sequence.is_(None))
    else:
        query = query.where(Document.sender_sequence == publication.sequence)
    return db.session.scalars(query).first()


def _default_expiry(message_type: MessageType) -> datetime:
    return utcnow() + timedelta(days=message_type.validity_days)


# --- the citizen's side ------------------------------------------------------------------

ACTION_OPENED = "opened"
ACTION_DOWNLOADED = "downloaded"
ACTION_VIEWED_INLINE = "viewed_inline"
ACTION_HIDDEN = "hidden"
ACTION_UNHIDDEN = "unhidden"
ACTION_RECEIPT_CONFIRMED = "receipt_confirmed"
ACTIONS = (
    ACTION_OPENED,
    ACTION_DOWNLOADED,
    ACTION_VIEWED_INLINE,
    ACTION_HIDDEN,
    ACTION_UNHIDDEN,
    ACTION_RECEIPT_CONFIRMED,
)
MAX_USER_AGENT_LENGTH = 300
MAX_IP_LENGTH = 45


def record_access(
    *,
    document: Document,
    citizen: Citizen,
    action: str,
    ip_address: str | None,
    user_agent: str | None,
) -> DocumentAccessEvent:
    """Log one access of the citizen to a document; the citizen sees these on the history page."""
    if action not in ACTIONS:
        raise ValueError(f"unknown access action {action!r}")
    event = DocumentAccessEvent(
        document_id=document.id,
        citizen_id=citizen.id,
        action=action,
        occurred_at=utcnow(),
        ip_address=(ip_address or "")[:MAX_IP_LENGTH] or None,
        user_agent=(user_agent or "")[:MAX_USER_AGENT_LENGTH] or None,
    )
    db.session.add(event)
    db.session.flush()
    return event


def mark_read(*, document: Document) -> bool:
    """Set read_at the first time only: it records when the citizen first opened the document."""
    if document.read_at is not None:
        return False
    document.read_at = utcnow()
    db.session.flush()
    return True


def needs_receipt_confirmation(document: Document) -> bool:
    """Registered mail stays closed until the citizen confirms that opening records a receipt."""
    return document.is_registered and document.read_at is None


def confirm_receipt(*, document: Document) -> bool:
    """The citizen accepts that opening a registered document records a proof of receipt."""
    if not document.is_registered:
        raise ValueError("only registered documents have a receipt to confirm")
    confirmed = mark_read(document=document)
    if confirmed:
        log.info("receipt of registered document %s confirmed", document.id)
    return confirmed


def hide_document(*, document: Document) -> None:
    """Move the document to the archive. It stays until its sender's expiry, like any other."""
    if document.hidden_at is None:
        document.hidden_at = utcnow()
        db.session.flush()


def unhide_document(*, document: Document) -> None:
    if document.hidden_at is not None:
        document.hidden_at = None
        db.session.flush()
