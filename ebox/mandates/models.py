"""A mandate: a citizen (the owner) lets a trusted person (the holder) read their eBox, within
the limits the owner set: every sender or chosen ones, registered mail or not, until a date.

An invitation names the holder by national register number and carries a one-time code that
the owner passes on; only the code's hash is kept. The holder, logged in with their own eID,
accepts with the code. Either side ends it; it ends by itself at ends_at.
"""

from __future__ import annotations

import uuid
from datetime import datetime

from sqlalchemy import Column, ForeignKey, Index, String, Table, Uuid
from sqlalchemy.orm import Mapped, mapped_column, relationship

from ebox.accounts.models import Citizen
from ebox.db_types import UTCDateTime, utcnow
from ebox.extensions import Model
from ebox.senders.models import Sender

PENDING, ACTIVE, ENDED, EXPIRED = "pending", "active", "ended", "expired"

mandate_senders = Table(
    "mandate_senders",
    Model.metadata,
    Column("mandate_id", ForeignKey("mandates.id", ondelete="CASCADE"), primary_key=True),
    Column("sender_id", ForeignKey("senders.id", ondelete="CASCADE"), primary_key=True),
)


class Mandate(Model):
    __tablename__ = "mandates"
    __table_args__ = (
        Index("ix_mandates_owner_id", "owner_id"),
        Index("ix_mandates_holder_id", "holder_id"),
        Index("ix_mandates_holder_national_number", "holder_national_number"),
    )

    id: Mapped[uuid.UUID] = mapped_column(Uuid, primary_key=True, default=uuid.uuid4)
    owner_id: Mapped[int] = mapped_column(ForeignKey("citizens.id", ondelete="CASCADE"))
    holder_national_number: Mapped[str] = mapped_column(String(11))
    # Set when the holder accepts.
    holder_id: Mapped[int | None] = mapped_column(ForeignKey("citizens.id", ondelete="CASCADE"))
    is_every_sender: Mapped[bool] = mapped_column(default=True)
    may_open_registered: Mapped[bool] = mapped_column(default=False)
    ends_at: Mapped[datetime] = mapped_column(UTCDateTime)
    code_hash: Mapped[str | None] = mapped_column(String(64), unique=True)
    code_expires_at: Mapped[datetime] = mapped_column(UTCDateTime)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    accepted_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    ended_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    ended_by: Mapped[str | None] = mapped_column(String(10))  # owner | holder

    owner: Mapped[Citizen] = relationship(foreign_keys=[owner_id])
    holder: Mapped[Citizen | None] = relationship(foreign_keys=[holder_id])
    senders: Mapped[list[Sender]] = relationship(secondary=mandate_senders, order_by=Sender.name)

    def state(self, now: datetime) -> str:
        if self.ended_at is not None:
            return ENDED
        if self.accepted_at is None:
            return PENDING if self.code_expires_at > now else EXPIRED
        return ACTIVE if self.ends_at > now else EXPIRED

    def is_active(self, now: datetime) -> bool:
        return self.state(now) == ACTIVE
