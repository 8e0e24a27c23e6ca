"""What a citizen sets up: the e-mail address, confirmed with a one-time code."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import ForeignKey, String
from sqlalchemy.orm import Mapped, mapped_column

from ebox.db_types import UTCDateTime, utcnow
from ebox.extensions import Model


class EmailChallenge(Model):
    """A 6-digit code sent to an address the citizen wants to register."""

    __tablename__ = "email_challenges"

    id: Mapped[int] = mapped_column(primary_key=True)
    citizen_id: Mapped[int] = mapped_column(
        ForeignKey("citizens.id", ondelete="CASCADE"), index=True
    )
    email: Mapped[str] = mapped_column(String(254))
    code_hash: Mapped[str] = mapped_column(String(128))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    expires_at: Mapped[datetime] = mapped_column(UTCDateTime)
    attempts: Mapped[int] = mapped_column(default=0)
    confirmed_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
