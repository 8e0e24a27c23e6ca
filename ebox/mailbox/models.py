"""Documents in citizens' mailboxes and the log of every access to them."""

from __future__ import annotations

import uuid
from datetime import datetime

from sqlalchemy import ForeignKey, Index, LargeBinary, String, Text, UniqueConstraint, Uuid, text
from sqlalchemy.orm import Mapped, mapped_column, relationship

from ebox.accounts.models import MAX_IP_LENGTH, MAX_USER_AGENT_LENGTH, Citizen
from ebox.db_types import UTCDateTime, utcnow
from ebox.extensions import Model
from ebox.senders.models import MessageType, Sender


class Document(Model):
    """One document published to one citizen.

    Addressed by national number, not by citizen row: a document may arrive before the
    citizen's first visit. The content lives encrypted in the document store; this row holds
    the wrapped key that opens it, so forgetting the key makes the content unreadable at once.
    """

    __tablename__ = "documents"
    __table_args__ = (
        # The sender's MessageID (ticket + optional sequence) is its idempotency key.
        Index(
            "uq_documents_sender_message_id",
            "sender_id",
            "sender_ticket",
            text("coalesce(sender_sequence, -1)"),
            unique=True,
        ),
        Index("ix_documents_recipient_published", "recipient_national_number", "published_at"),
        # The purge (ebox.retention) looks for expired documents not yet deleted, and for deleted
        # ones whose stored object is still to be removed: both stay small however many rows,
        # and each is walked in key order from where the last batch ended.
        Index(
            "ix_documents_to_purge",
            "expires_at",
            "id",
            postgresql_where=text("deleted_at IS NULL"),
            sqlite_where=text("deleted_at IS NULL"),
        ),
        Index(
            "ix_documents_removal_pending",
            "id",
            postgresql_where=text("deleted_at IS NOT NULL AND storage_key IS NOT NULL"),
            sqlite_where=text("deleted_at IS NOT NULL AND storage_key IS NOT NULL"),
        ),
        # The inbox (ebox.mailbox.queries, decision 0015): a partial index per list, in the
        # list's order (read backwards), carrying the columns its filters read, so that a
        # page, a count or the senders come from the index alone and stop early.
        Index(
            "ix_documents_inbox",
            *("recipient_national_number", "published_at", "id"),
            # The title too: a search of the inbox for frequent words reads the index alone.
            postgresql_include=["expires_at", "title"],
            postgresql_where=text("deleted_at IS NULL AND hidden_at IS NULL"),
            sqlite_where=text("deleted_at IS NULL AND hidden_at IS NULL"),
        ),
        Index(
            "ix_documents_archive",
            *("recipient_national_number", "published_at", "id"),
            postgresql_include=["expires_at"],
            postgresql_where=text("deleted_at IS NULL AND hidden_at IS NOT NULL"),
            sqlite_where=text("deleted_at IS NULL AND hidden_at IS NOT NULL"),
        ),
        Index(
            "ix_documents_unread",
            *("recipient_national_number", "published_at", "id"),
            postgresql_include=["expires_at", "hidden_at"],
            postgresql_where=text("deleted_at IS NULL AND read_at IS NULL"),
            sqlite_where=text("deleted_at IS NULL AND read_at IS NULL"),
        ),
        Index(
            "ix_documents_by_sender",
            *("recipient_national_number", "sender_id", "published_at", "id"),
            postgresql_include=["expires_at", "hidden_at", "read_at"],
            postgresql_where=text("deleted_at IS NULL"),
            sqlite_where=text("deleted_at IS NULL"),
        ),
        # Master key rotation: which master keys documents still need (a few index seeks at
        # start) and each key's documents in id order (the rotation's batches, resumable).
        Index(
            "ix_documents_content_key",
            "content_key_id",
            "id",
            postgresql_where=text("content_key_id IS NOT NULL"),
            sqlite_where=text("content_key_id IS NOT NULL"),
        ),
        # Search in titles: trigrams, so that ILIKE '%words%' finds rare words without reading
        # the mailbox (PostgreSQL only; pg_trgm, and btree_gin for the national number).
        Index(
            "ix_documents_title_search",
            "recipient_national_number",
            "title",
            postgresql_using="gin",
            postgresql_ops={"title": "gin_trgm_ops"},
            postgresql_with={"fastupdate": "off"},
            postgresql_where=text("deleted_at IS NULL"),
        ).ddl_if(dialect="postgresql"),
    )

    id: Mapped[uuid.UUID] = mapped_column(Uuid, primary_key=True, default=uuid.uuid4)
    sender_id: Mapped[int] = mapped_column(ForeignKey("senders.id"), index=True)
    message_type_id: Mapped[int] = mapped_column(ForeignKey("message_types.id"))
    recipient_national_number: Mapped[str] = mapped_column(String(11))
    sender_ticket: Mapped[str] = mapped_column(String(25))
    sender_sequence: Mapped[int | None]
    title: Mapped[str | None] = mapped_column(String(400))
    language: Mapped[str] = mapped_column(String(2))
    body_text: Mapped[str | None] = mapped_column(Text)
    file_name: Mapped[str | None] = mapped_column(String(255))
    media_type: Mapped[str] = mapped_column(String(100))
    size_bytes: Mapped[int]
    sha256: Mapped[str] = mapped_column(String(64))
    storage_key: Mapped[str | None] = mapped_column(String(200))
    # The per-document AES key, wrapped by the master key named by content_key_id.
    content_key: Mapped[bytes | None] = mapped_column(LargeBinary)
    content_key_id: Mapped[str | None] = mapped_column(String(50))
    is_registered: Mapped[bool] = mapped_column(default=False)
    published_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    expires_at: Mapped[datetime] = mapped_column(UTCDateTime)
    read_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    hidden_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    # Set when the content is removed at expiry; the row stays as a minimal record.
    deleted_at: Mapped[datetime | None] = mapped_column(UTCDateTime)

    sender: Mapped[Sender] = relationship()
    message_type: Mapped[MessageType] = relationship()
    # Loaded only when asked for (the document page, the evidence): the inbox never reads them.
    attachments: Mapped[list[Attachment]] = relationship(
        order_by="Attachment.position", viewonly=True
    )

    def is_available(self, now: datetime) -> bool:
        """Shown to the citizen: not deleted and not past its expiry (even before the purge)."""
        return self.deleted_at is None and self.expires_at > now


class Attachment(Model):
    """A further file of a message, after its main document (decision 0027).

    Stored and encrypted exactly like the document's content, each under its own data key. The
    purge erases the name and key with the document's, then removes the object and the row.
    """

    __tablename__ = "attachments"
    __table_args__ = (
        UniqueConstraint("document_id", "position"),
        # Master key rotation walks each key's attachments in id order, like the documents'.
        Index(
            "ix_attachments_content_key",
            "content_key_id",
            "id",
            postgresql_where=text("content_key_id IS NOT NULL"),
            sqlite_where=text("content_key_id IS NOT NULL"),
        ),
        # The orphan pass asks which stored objects an attachment names.
        Index("ix_attachments_storage_key", "storage_key"),
    )

    id: Mapped[uuid.UUID] = mapped_column(Uuid, primary_key=True, default=uuid.uuid4)
    document_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("documents.id", ondelete="CASCADE"))
    position: Mapped[int]  # 1 to 10, in the order the sender gave them
    file_name: Mapped[str | None] = mapped_column(String(255))
    media_type: Mapped[str] = mapped_column(String(100))
    size_bytes: Mapped[int]
    sha256: Mapped[str] = mapped_column(String(64))
    storage_key: Mapped[str | None] = mapped_column(String(200))
    content_key: Mapped[bytes | None] = mapped_column(LargeBinary)
    content_key_id: Mapped[str | None] = mapped_column(String(50))


class DocumentAccessEvent(Model):
    """Every time the citizen (or a trusted person for them) opens, downloads, hides or
    unhides a document."""

    __tablename__ = "document_access_events"

    id: Mapped[int] = mapped_column(primary_key=True)
    document_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("documents.id", ondelete="CASCADE"), index=True
    )
    citizen_id: Mapped[int] = mapped_column(
        ForeignKey("citizens.id", ondelete="CASCADE"), index=True
    )
    action: Mapped[str] = mapped_column(String(20))
    occurred_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    ip_address: Mapped[str | None] = mapped_column(String(MAX_IP_LENGTH))
    user_agent: Mapped[str | None] = mapped_column(String(MAX_USER_AGENT_LENGTH))
    # The trusted person who read it for the citizen under a mandate; None: the citizen.
    representative_id: Mapped[int | None] = mapped_column(
        ForeignKey("citizens.id", ondelete="SET NULL")
    )

    document: Mapped[Document] = relationship()
    representative: Mapped[Citizen | None] = relationship(foreign_keys=[representative_id])
