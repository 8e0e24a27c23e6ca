"""A sender's webhook subscriptions, with where each delivery stands.

The secret signs every delivery (Standard Webhooks). It is kept wrapped by the master key
(ebox.storage.crypto, as documents' keys are), so a database dump alone does not reveal it;
secret_key_id names the master key that wraps it.
"""

from __future__ import annotations

import uuid
from datetime import datetime

from sqlalchemy import JSON, BigInteger, ForeignKey, LargeBinary, String, Uuid
from sqlalchemy.orm import Mapped, mapped_column

from ebox.db_types import UTCDateTime, utcnow
from ebox.extensions import Model

MAX_URL_LENGTH = 2000
MAX_SUBSCRIPTIONS_PER_SENDER = 10


class WebhookSubscription(Model):
    __tablename__ = "webhook_subscriptions"

    id: Mapped[uuid.UUID] = mapped_column(Uuid, primary_key=True, default=uuid.uuid4)
    sender_id: Mapped[int] = mapped_column(ForeignKey("senders.id", ondelete="CASCADE"), index=True)
    url: Mapped[str] = mapped_column(String(MAX_URL_LENGTH))
    event_types: Mapped[list[str] | None] = mapped_column(JSON)  # None: every type
    secret_wrapped: Mapped[bytes] = mapped_column(LargeBinary)
    secret_key_id: Mapped[str] = mapped_column(String(50))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    is_active: Mapped[bool] = mapped_column(default=True)
    # Failed deliveries in a row; the first of them dates the failure (disabled after a day).
    failures: Mapped[int] = mapped_column(default=0)
    failing_since: Mapped[datetime | None] = mapped_column(UTCDateTime)
    next_attempt_at: Mapped[datetime | None] = mapped_column(UTCDateTime)  # backing off until
    disabled_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    disabled_reason: Mapped[str | None] = mapped_column(String(400))
    last_delivery_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    last_error: Mapped[str | None] = mapped_column(String(300))
    # The last event delivered (its cursor position, ebox.events.queries); 0, 0: none yet.
    position_xid: Mapped[int] = mapped_column(BigInteger, default=0)
    position_id: Mapped[int] = mapped_column(BigInteger, default=0)
