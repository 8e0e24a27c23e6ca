"""A citizen's push subscriptions: one per device (browser) that allowed notifications.

The endpoint is the address the browser's push service gave it: whoever knows it, with our
signing key, can wake the device, so it is never logged or shown. p256dh and auth are the
browser's keys that encrypt each message for that browser alone (RFC 8291).
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import ForeignKey, String
from sqlalchemy.orm import Mapped, mapped_column

from ebox.db_types import UTCDateTime, utcnow
from ebox.extensions import Model

MAX_ENDPOINT_LENGTH = 1000


class PushSubscription(Model):
    __tablename__ = "push_subscriptions"

    id: Mapped[int] = mapped_column(primary_key=True)
    citizen_id: Mapped[int] = mapped_column(
        ForeignKey("citizens.id", ondelete="CASCADE"), index=True
    )
    # A device subscribes once: the same endpoint again replaces its keys (or its citizen).
    endpoint: Mapped[str] = mapped_column(String(MAX_ENDPOINT_LENGTH), unique=True)
    p256dh: Mapped[str] = mapped_column(String(100))  # base64url, 65 bytes: a P-256 point
    auth: Mapped[str] = mapped_column(String(30))  # base64url, 16 bytes
    # The device as the citizen sees it in the profile ("Firefox", "Android"; "" when unknown).
    browser: Mapped[str] = mapped_column(String(40), default="")
    system: Mapped[str] = mapped_column(String(40), default="")
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    last_success_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    # Failures since the last success; the first of them dates them (dropped after some days).
    failures: Mapped[int] = mapped_column(default=0)
    failing_since: Mapped[datetime | None] = mapped_column(UTCDateTime)
    last_error: Mapped[str | None] = mapped_column(String(200))
