"""What the REST API remembers: the Idempotency-Keys of recent publications."""

from __future__ import annotations

import uuid
from datetime import datetime

from sqlalchemy import ForeignKey, String, Uuid
from sqlalchemy.orm import Mapped, mapped_column

from ebox.db_types import UTCDateTime, utcnow
from ebox.extensions import Model


class IdempotencyKey(Model):
    """A publication's Idempotency-Key, recorded in the publication's own transaction: a second
    request with the same key gets the first one's message (same fingerprint) or a refusal.
    Kept for a day (ebox.api.jobs), long enough for any back office's retries."""

    __tablename__ = "api_idempotency_keys"

    sender_id: Mapped[int] = mapped_column(ForeignKey("senders.id"), primary_key=True)
    key: Mapped[str] = mapped_column(String(255), primary_key=True)
    # Hex SHA-256 over the request's message (canonical JSON) and its documents' SHA-256.
    fingerprint: Mapped[str] = mapped_column(String(64))
    # Set in the same transaction, once the publication has its document.
    document_id: Mapped[uuid.UUID | None] = mapped_column(
        Uuid, ForeignKey("documents.id", ondelete="CASCADE")
    )
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow, index=True)
