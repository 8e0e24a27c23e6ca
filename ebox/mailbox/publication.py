"""Publication: the rules a document must meet to enter a citizen's eBox, and the one way in.

publish() checks a Publication (what a sender submits) and its content, stores the content
encrypted and records the document; a refusal raises PublicationRefused with a stable code. Every
way of publishing (the SOAP services, the demo data, tests) goes through it. A registered
document's first evidence is sealed in the same transaction (ebox.evidence.services).
"""

from __future__ import annotations

import logging
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from typing import Any, BinaryIO, cast

from sqlalchemy import Table, bindparam, select, text
from sqlalchemy.dialects import postgresql
from sqlalchemy.orm import make_transient_to_detached

from ebox import national_number
from ebox.accounts.models import Citizen
from ebox.config import LANGUAGES, Settings, current_settings
from ebox.db_types import PLATFORM_TIMEZONE, utcnow
from ebox.events import services as events
from ebox.events.models import MESSAGE_PUBLISHED
from ebox.evidence import services as evidence
from ebox.evidence.xml import CONTENT_CONSIGNMENT, SUBMISSION_ACCEPTANCE
from ebox.extensions import db
from ebox.mailbox.attachments import (
    CheckedAttachment,
    SubmittedAttachment,
    check_attachments,
    same_attachments,
    store_attachments,
    store_for_transaction,
)
from ebox.mailbox.content_rules import (  # noqa: F401 (the codes and rules, for every caller)
    ATTACHMENT_TYPE_REFUSED,
    DIGEST_ALGORITHMS,
    DIGEST_MISMATCH,
    DOCUMENT_TOO_LARGE,
    DUPLICATE_MESSAGE_ID,
    EXPIRATION_OUT_OF_BOUNDS,
    INVALID_FIELD,
    INVALID_NATIONAL_NUMBER,
    MESSAGE_TOO_LARGE,
    MESSAGE_TYPE_UNKNOWN,
    NOT_A_PDF,
    PDF_MAGIC,
    SENDER_SUSPENDED,
    TOO_MANY_ATTACHMENTS,
    Digest,
    PublicationRefused,
    check_digest,
    is_pdf,
    sha256_hex,
)
from ebox.mailbox.models import Document
from ebox.senders import directory
from ebox.senders.models import MessageType, Sender
from ebox.storage.services import StoredContent, delete_content
from ebox.webhooks.requests import request_deliveries_after_commit

log = logging.getLogger(__name__)

MAX_TITLE_LENGTH = 400
MAX_TICKET_LENGTH = 25
MAX_SEQUENCE = 99999
# The columns of the MessageID's unique index (uq_documents_sender_message_id).
_MESSAGE_ID_INDEX = ("sender_id", "sender_ticket", text("coalesce(sender_sequence, -1)"))
_documents = cast(Table, Document.__table__)
_citizens = cast(Table, Citizen.__table__)
# PostgreSQL, built once: the row, unless the MessageID's unique index stops it; and on the way
# back, whether the recipient's eBox is activated (the SOAP answer's CitizenActivated).
_INSERT_DOCUMENT = (
    postgresql.insert(_documents)
    .on_conflict_do_nothing(index_elements=_MESSAGE_ID_INDEX)
    .returning(
        _documents.c.id,
        select(
            _citizens.c.conditions_accepted_at.is_not(None)
            & _citizens.c.email_confirmed_at.is_not(None)
        )
        .where(_citizens.c.national_number == bindparam("recipient"))
        .scalar_subquery(),
    )
)


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
    digest: Digest | None = None
    # The certificate the publication request was signed with (SHA-256, hex): the evidence of
    # a registered document's acceptance names it.
    sender_certificate_sha256: str | None = None
    # Only the demo data sets it, to spread its documents over past weeks: everything else is
    # published, and its evidence sealed, now.
    published_at: datetime | None = None


@dataclass(frozen=True)
class Published:
    """The outcome of publish_document(): the document, and whether this call created it."""

    document: Document
    is_new: bool
    # Whether the recipient's eBox is activated, when the publication learnt it on the way.
    recipient_is_activated: bool | None = None


def find_message_type(sender: Sender, code: str) -> MessageType:
    """The sender's message type with this code, or PublicationRefused MESSAGE_TYPE_UNKNOWN."""
    message_type = directory.find_message_type(sender.id, code, now=utcnow())
    if message_type is None:
        raise PublicationRefused(
            MESSAGE_TYPE_UNKNOWN, f"The message type {code!r} is not one of this sender's."
        )
    return message_type


def end_of_day(day: date) -> datetime:
    """The moment a document given this expiration date expires: the next midnight in Brussels."""
    next_midnight = datetime.combine(day + timedelta(days=1), time(), tzinfo=PLATFORM_TIMEZONE)
    return next_midnight.astimezone(UTC)


def expiration_day(expires_at: datetime) -> date:
    """The last day a document expiring at expires_at can be seen, in Brussels (see end_of_day)."""
    return (expires_at.astimezone(PLATFORM_TIMEZONE) - timedelta(microseconds=1)).date()


def publish_document(publication: Publication, content: BinaryIO | bytes) -> Document:
    """Check a publication, store its content encrypted and record it. Flushes, never commits.

    The same MessageID with the same message returns the document already published; with
    anything different it is refused. Nothing is ever silently replaced.
    """
    return publish(publication, content).document


def publish(
    publication: Publication,
    content: BinaryIO | bytes,
    attachments: Sequence[SubmittedAttachment] = (),
) -> Published:
    """publish_document(), also telling whether the document is new or an identical retry.

    attachments: the message's further files after its main document (content), in order.
    Every check runs before anything is stored, so a refusal (PublicationRefused) leaves nothing
    behind. An accepted message's stored objects are removed again if the transaction rolls back.
    """
    settings = current_settings()
    recipient = _check(publication, settings)
    data = _read_checked_content(content, publication.digest, settings)
    checked = check_attachments(attachments, main_size=len(data), settings=settings)
    sha256 = sha256_hex(data, publication.digest)
    message = _Message(publication, recipient, data, sha256, checked)
    if db.engine.dialect.name == "postgresql":
        published = _insert_or_find(message)
    else:
        published = _find_or_insert(message)
    document = published.document
    if published.is_new:
        store_attachments(document, checked)
        # In the same transaction: the event exists exactly when the document does.
        events.record_event(
            sender_id=document.sender_id,
            document_id=document.id,
            type=MESSAGE_PUBLISHED,
            at=document.published_at,
            data={"registered": document.is_registered},
        )
        request_deliveries_after_commit(document.sender_id)
    if published.is_new and document.is_registered:
        # Accepted, and at once available in the citizen's eBox: both sealed with the row.
        evidence.record_evidence(
            document,
            SUBMISSION_ACCEPTANCE,
            at=document.published_at,
            sender_certificate_sha256=publication.sender_certificate_sha256,
        )
        evidence.record_evidence(document, CONTENT_CONSIGNMENT, at=document.published_at)
    if published.is_new:
        log.info("document %s published by sender %s", document.id, publication.sender.id)
    return published


@dataclass(frozen=True)
class _Message:
    """A publication whose every rule is met: what is stored, or compared with a retry."""

    publication: Publication
    recipient: str  # normalised
    data: bytes
    sha256: str
    attachments: Sequence[CheckedAttachment]


def _insert_or_find(message: _Message) -> Published:
    """PostgreSQL: one INSERT, which the MessageID's unique index stops for a retry or for a
    twin published concurrently (it waits for the twin's transaction to end). The content is
    stored first, as the row names it: a retry's copy is removed again at once. Attachments are
    stored only once the row is in."""
    stored = store_for_transaction(message.data)
    values = _document_values(message.publication, message.recipient, stored)
    # The Core connection of the session's transaction: half the cost of the ORM session.
    connection = db.session.connection()
    recipient = {"recipient": message.recipient}
    inserted = connection.execute(_INSERT_DOCUMENT, values | recipient).first()
    if inserted is not None:
        return Published(_loaded(values), is_new=True, recipient_is_activated=bool(inserted[1]))
    delete_content(stored.storage_key)
    existing = _find_by_message_id(message.publication)
    if existing is None:  # the twin's row was in the index, so it is committed and visible now
        raise RuntimeError("a MessageID conflicted with a document that cannot be found")
    return Published(_same_or_refuse(existing, message), is_new=False)


def _find_or_insert(message: _Message) -> Published:
    """SQLite has a single writer: a concurrent twin fails at commit and its retry finds us."""
    existing = _find_by_message_id(message.publication)
    if existing is not None:
        return Published(_same_or_refuse(existing, message), is_new=False)
    stored = store_for_transaction(message.data)
    document = Document(**_document_values(message.publication, message.recipient, stored))
    db.session.add(document)
    db.session.flush()
    return Published(document, is_new=True)


def _loaded(values: dict[str, Any]) -> Document:
    """The document just inserted, in the session as if loaded: every column is known."""
    document = Document(**values, read_at=None, hidden_at=None, deleted_at=None)
    make_transient_to_detached(document)
    db.session.add(document)
    return document


def _document_values(
    publication: Publication, recipient: str, stored: StoredContent
) -> dict[str, Any]:
    return {
        "id": uuid.uuid4(),
        "sender_id": publication.sender.id,
        "message_type_id": publication.message_type.id,
        "recipient_national_number": recipient,
        "sender_ticket": publication.ticket,
        "sender_sequence": publication.sequence,
        "title": publication.title,
        "language": publication.language,
        "body_text": publication.body_text,
        "file_name": publication.file_name,
        "media_type": publication.media_type,
        "size_bytes": stored.size_bytes,
        "sha256": stored.sha256,
        "storage_key": stored.storage_key,
        "content_key": stored.content_key,
        "content_key_id": stored.content_key_id,
        "is_registered": publication.is_registered,
        "published_at": publication.published_at or utcnow(),
        "expires_at": publication.expires_at or default_expiry(publication.message_type),
    }


def _check(publication: Publication, settings: Settings) -> str:
    """Every rule on the fields, cheapest first; returns the recipient's normalised number."""
    try:
        recipient = national_number.normalise(publication.recipient_national_number)
    except national_number.InvalidNationalNumber as exc:
        raise PublicationRefused(INVALID_NATIONAL_NUMBER, str(exc)) from exc
    if not publication.sender.is_active:
        raise PublicationRefused(SENDER_SUSPENDED, "This sender is suspended and may not publish.")
    if publication.message_type.sender_id != publication.sender.id:
        raise PublicationRefused(
            MESSAGE_TYPE_UNKNOWN, "This message type is not one of the sender's."
        )
    if publication.language not in LANGUAGES:
        raise PublicationRefused(INVALID_FIELD, "The language must be nl, fr, de or en.")
    if not publication.title.strip() or len(publication.title) > MAX_TITLE_LENGTH:
        raise PublicationRefused(INVALID_FIELD, "The title must have 1 to 400 characters.")
    if not 1 <= len(publication.ticket) <= MAX_TICKET_LENGTH:
        raise PublicationRefused(INVALID_FIELD, "The ticket must have 1 to 25 characters.")
    if publication.sequence is not None and not 0 <= publication.sequence <= MAX_SEQUENCE:
        raise PublicationRefused(INVALID_FIELD, "The sequence must be between 0 and 99999.")
    if publication.expires_at is not None:
        _check_expiry(publication.expires_at, settings)
    return recipient


def _check_expiry(expires_at: datetime, settings: Settings) -> None:
    lifetime = expires_at - utcnow()
    if (
        not timedelta(days=settings.min_expiry_days)
        <= lifetime
        <= timedelta(days=settings.max_expiry_days)
    ):
        raise PublicationRefused(
            EXPIRATION_OUT_OF_BOUNDS,
            f"The document must stay available at least {settings.min_expiry_days} day(s) and "
            f"at most {settings.max_expiry_days} days from now.",
        )


def _read_checked_content(
    content: BinaryIO | bytes, digest: Digest | None, settings: Settings
) -> bytes:
    """The content, once it is known to be a PDF within the size limit matching its digest."""
    limit = settings.max_document_bytes
    data = content if isinstance(content, bytes) else content.read(limit + 1)
    if len(data) > limit:
        raise PublicationRefused(
            DOCUMENT_TOO_LARGE, f"The document is larger than the {limit} bytes accepted."
        )
    if digest is not None:
        check_digest(data, digest)
    if not is_pdf(data):
        raise PublicationRefused(NOT_A_PDF, "The document is not a readable PDF file.")
    return data


def _same_or_refuse(existing: Document, message: _Message) -> Document:
    """A retry must repeat the message exactly (its expiry aside), attachments included;
    anything else is refused."""
    publication = message.publication
    if existing.deleted_at is not None:
        # Its title and name are erased, so "the same" cannot be told; it is gone anyway.
        raise PublicationRefused(
            DUPLICATE_MESSAGE_ID,
            "This MessageID was used for a message that has expired and been deleted; use a new "
            "Ticket or Sequence.",
        )
    same = (
        existing.recipient_national_number == message.recipient
        and existing.message_type_id == publication.message_type.id
        and existing.sha256 == message.sha256
        and existing.title == publication.title
        and existing.language == publication.language
        and (existing.body_text or None) == (publication.body_text or None)
        and existing.file_name == publication.file_name
        and existing.is_registered == publication.is_registered
        and same_attachments(existing, message.attachments)
    )
    if not same:
        raise PublicationRefused(
            DUPLICATE_MESSAGE_ID,
            "This MessageID was already used for another message; use a new Ticket or Sequence.",
        )
    return existing


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


def default_expiry(message_type: MessageType) -> datetime:
    """The end of the day (Brussels) validity_days from today: the type's validity period."""
    today = utcnow().astimezone(PLATFORM_TIMEZONE).date()
    return end_of_day(today + timedelta(days=message_type.validity_days))
