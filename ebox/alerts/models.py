"""One row per daily run and one per citizen announced that day.

The unique (citizen, day) delivery row is what makes "at most one alert per citizen per day" hold
across repeated runs, crashes and several workers: a delivery is claimed (planned -> sending) in
a committed transaction before the mail goes out, and is never claimed twice (how, and what a
killed worker leaves behind: ebox.alerts.services).
"""

from __future__ import annotations

from datetime import date, datetime

from sqlalchemy import Date, ForeignKey, Index, String, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from ebox.db_types import UTCDateTime, utcnow
from ebox.extensions import Model

# planned: chosen, not yet sent. sending: claimed by a worker; if that worker died before it
# recorded the outcome (or the connection broke after the mail's content left), nobody knows
# whether the mail left: it is not sent again that day, and the next alert covers its news.
# sent. failed: the mail server refused it (retried with back-off). skipped: the news was read
# before the mail went out, or a later alert of the citizen tells it.
PLANNED, SENDING, SENT, FAILED, SKIPPED = "planned", "sending", "sent", "failed", "skipped"
DELIVERY_STATUSES = (PLANNED, SENDING, SENT, FAILED, SKIPPED)


class AlertRun(Model):
    """The day's run. Its cutoff is fixed by the first attempt, so a rerun plans the same news."""

    __tablename__ = "alert_runs"

    day: Mapped[date] = mapped_column(Date, primary_key=True)
    cutoff_at: Mapped[datetime] = mapped_column(UTCDateTime)
    started_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)


class AlertDelivery(Model):
    """One citizen's alert of one day, with the windows of news it announces."""

    __tablename__ = "alert_deliveries"
    __table_args__ = (
        UniqueConstraint("citizen_id", "day", name="uq_alert_deliveries_citizen_day"),
        # A sending job's range of citizens among the day's deliveries still to send.
        Index("ix_alert_deliveries_day_status_citizen", "day", "status", "citizen_id"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    citizen_id: Mapped[int] = mapped_column(ForeignKey("citizens.id", ondelete="CASCADE"))
    day: Mapped[date] = mapped_column(Date)
    status: Mapped[str] = mapped_column(String(10), default=PLANNED)
    # New documents: published in (news_after, cutoff]; expiring: expiry in (expiry_after,
    # expiry_until]. Both lower bounds come from the citizen's last alert that was sent.
    news_after: Mapped[datetime] = mapped_column(UTCDateTime)
    cutoff_at: Mapped[datetime] = mapped_column(UTCDateTime)
    expiry_after: Mapped[datetime] = mapped_column(UTCDateTime)
    expiry_until: Mapped[datetime] = mapped_column(UTCDateTime)
    # Reminders: documents published in (reminder_after, reminder_until], unread since; empty
    # when the citizen turned reminders off. NULL in the deliveries made before reminders.
    reminder_after: Mapped[datetime | None] = mapped_column(UTCDateTime)
    reminder_until: Mapped[datetime | None] = mapped_column(UTCDateTime)
    new_count: Mapped[int] = mapped_column(default=0)
    expiring_count: Mapped[int] = mapped_column(default=0)
    reminder_count: Mapped[int] = mapped_column(default=0, server_default="0")
    attempts: Mapped[int] = mapped_column(default=0)
    planned_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    claimed_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    finished_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    last_error: Mapped[str | None] = mapped_column(String(300))
