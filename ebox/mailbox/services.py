"""The citizen's side of the mailbox: marking read, confirming receipt of registered mail,
hiding and unhiding, and the log of every access. Documents enter through
ebox.mailbox.publication.
"""

from __future__ import annotations

import logging

from sqlalchemy import update
from sqlalchemy.orm.attributes import set_committed_value

from ebox.accounts.models import MAX_IP_LENGTH, MAX_USER_AGENT_LENGTH, Citizen
from ebox.db_types import utcnow
from ebox.events import services as events
from ebox.events.models import MESSAGE_READ
from ebox.evidence import services as evidence
from ebox.evidence.xml import CONTENT_HANDOVER, RecipientAuthentication, Representative
from ebox.extensions import db
from ebox.mailbox.models import Document, DocumentAccessEvent

log = logging.getLogger(__name__)

ACTION_OPENED = "opened"
ACTION_DOWNLOADED = "downloaded"
ACTION_VIEWED_INLINE = "viewed_inline"
ACTION_HIDDEN = "hidden"
ACTION_UNHIDDEN = "unhidden"
ACTION_RECEIPT_CONFIRMED = "receipt_confirmed"
ACTION_ATTACHMENT_DOWNLOADED = "attachment_download"
ACTIONS = (
    ACTION_OPENED,
    ACTION_DOWNLOADED,
    ACTION_VIEWED_INLINE,
    ACTION_HIDDEN,
    ACTION_UNHIDDEN,
    ACTION_RECEIPT_CONFIRMED,
    ACTION_ATTACHMENT_DOWNLOADED,
)


def record_access(
    *,
    document: Document,
    citizen: Citizen,
    action: str,
    ip_address: str | None,
    user_agent: str | None,
    representative: Citizen | None = None,
) -> DocumentAccessEvent:
    """Log one access to a document of the citizen, by them or by a trusted person for them
    (representative); the citizen sees these on the history page, with the person's name."""
    if action not in ACTIONS:
        raise ValueError(f"unknown access action {action!r}")
    event = DocumentAccessEvent(
        document_id=document.id,
        citizen_id=citizen.id,
        representative_id=representative.id if representative is not None else None,
        action=action,
        occurred_at=utcnow(),
        ip_address=(ip_address or "")[:MAX_IP_LENGTH] or None,
        user_agent=(user_agent or "")[:MAX_USER_AGENT_LENGTH] or None,
    )
    db.session.add(event)
    db.session.flush()
    return event


def mark_read(*, document: Document) -> bool:
    """Set read_at the first time only: it records when the citizen first opened the document.

    One conditional UPDATE, so that of two openings at the same moment exactly one is first
    (the other waits for its row lock, then finds read_at set) and the first time is kept. A
    document that expired, or that the purge deleted meanwhile, is never marked opened.
    """
    if document.read_at is not None:
        return False
    now = utcnow()
    result = db.session.execute(
        update(Document)
        .where(
            Document.id == document.id,
            Document.read_at.is_(None),
            Document.deleted_at.is_(None),
            Document.expires_at > now,
        )
        .values(read_at=now)
        .execution_options(synchronize_session=False)
    )
    if result.rowcount != 1:  # type: ignore[attr-defined]
        db.session.refresh(document, ["read_at"])
        return False
    set_committed_value(document, "read_at", now)
    events.record_event(
        sender_id=document.sender_id, document_id=document.id, type=MESSAGE_READ, at=now
    )
    return True


def needs_receipt_confirmation(document: Document) -> bool:
    """Registered mail stays closed until the citizen confirms that opening records a receipt."""
    return document.is_registered and document.read_at is None


def confirm_receipt(
    *,
    document: Document,
    authentication: RecipientAuthentication | None = None,
    representative: Representative | None = None,
) -> bool:
    """The citizen accepts that opening a registered document records a proof of receipt;
    authentication, how they logged in, goes into the sealed evidence of handover.

    representative: someone else opens it on the recipient's behalf, under a mandate the
    caller found valid and covering registered mail; the evidence names them, and
    authentication is then their login."""
    if not document.is_registered:
        raise ValueError("only registered documents have a receipt to confirm")
    confirmed = mark_read(document=document)
    if confirmed:
        # Exactly once, even when two clicks race: the evidence is unique per event.
        evidence.record_evidence(
            document,
            CONTENT_HANDOVER,
            at=document.read_at,
            authentication=authentication,
            representative=representative,
        )
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
