"""The events of a sender's messages, kept EVENT_RETENTION for pull clients and webhooks.

An event says that something happened to a message, never what the message says: no title,
body, file name or national number. Each row is written in the transaction of the change it
reports, so an event exists exactly when its change was committed.

Ordering (decision 0028): on PostgreSQL each row keeps the id of the transaction that wrote it
(xid, filled in by the column's default) and readers serve only rows of transactions older than
every transaction still running, in (xid, id) order. A row committed later therefore always
sorts after everything already served, whatever order the ids were handed out in. SQLite has a
single writer, so commit order is id order: xid stays 0 there.
"""

from __future__ import annotations

import uuid
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import JSON, BigInteger, ForeignKey, Index, Integer, String, Uuid, text
from sqlalchemy.orm import Mapped, mapped_column

from ebox.db_types import UTCDateTime
from ebox.extensions import Model

EVENT_RETENTION = timedelta(days=7)

MESSAGE_PUBLISHED = "message.published"
MESSAGE_READ = "message.read"
MESSAGE_EXPIRY_WARNING_SENT = "message.expiry_warning_sent"
MESSAGE_DELETED = "message.deleted"
MESSAGE_EVIDENCE_RECORDED = "message.evidence_recorded"
MESSAGE_PROOF_READY = "message.proof_ready"
EVENT_TYPES = (
    MESSAGE_PUBLISHED,
    MESSAGE_READ,
    MESSAGE_EXPIRY_WARNING_SENT,
    MESSAGE_DELETED,
    MESSAGE_EVIDENCE_RECORDED,
    MESSAGE_PROOF_READY,
)
PUBLIC_ID_PREFIX = "evt_"


def new_public_id() -> str:
    return PUBLIC_ID_PREFIX + uuid.uuid4().hex


class SenderEvent(Model):
    __tablename__ = "sender_events"
    __table_args__ = (
        # A sender's events in the order they are served (ebox.events.queries).
        Index("ix_sender_events_sender_position", "sender_id", "xid", "id"),
        Index("ix_sender_events_occurred_at", "occurred_at"),
    )

    id: Mapped[int] = mapped_column(
        BigInteger().with_variant(Integer, "sqlite"), primary_key=True, autoincrement=True
    )
    # The event's id for its receivers (the webhook-id header): stable, and says nothing.
    public_id: Mapped[str] = mapped_column(String(40), unique=True)
    sender_id: Mapped[int] = mapped_column(ForeignKey("senders.id", ondelete="CASCADE"))
    type: Mapped[str] = mapped_column(String(40))
    document_id: Mapped[uuid.UUID] = mapped_column(
        Uuid, ForeignKey("documents.id", ondelete="CASCADE")
    )
    occurred_at: Mapped[datetime] = mapped_column(UTCDateTime)
    # What the type adds (an evidence's type and id, a proof's version); small, never content.
    data: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    # PostgreSQL: the writing transaction's id (pg_current_xact_id(), the migration's default).
    xid: Mapped[int] = mapped_column(BigInteger, server_default=text("0"))
