"""A window of deliveries through the database: claimed (and their news read) in one committed
transaction before any e-mail leaves, their outcomes recorded in another once the mail server
has answered for all of them. Why this gives exactly one alert per citizen and day, and what a
killed worker leaves behind: ebox.alerts.services."""

from __future__ import annotations

import logging
from collections import defaultdict
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from sqlalchemy import and_, case, exists, or_, select, text, update

from ebox import transactions
from ebox.alerts.models import FAILED, PLANNED, SENDING, SENT, SKIPPED
from ebox.alerts.queries import (
    CITIZENS,
    DELIVERIES,
    DOCUMENTS,
    Alert,
    alerts_to_send,
    already_announced,
    among,
    newer_alert,
    still_news,
)
from ebox.db_types import PLATFORM_TIMEZONE, utcnow
from ebox.events.models import MESSAGE_EXPIRY_WARNING_SENT
from ebox.events.services import record_events_from
from ebox.extensions import db
from ebox.mail.smtp import MailResult

log = logging.getLogger(__name__)


@dataclass
class SendOutcome:
    sent: int = 0
    skipped: int = 0
    failed: list[int] = field(default_factory=list)  # refused by the mail server: retried
    unknown: list[int] = field(default_factory=list)  # may have left: not resent today

    def add(self, other: SendOutcome) -> None:
        self.sent += other.sent
        self.skipped += other.skipped
        self.failed += other.failed
        self.unknown += other.unknown


def claim_window(delivery_ids: list[int], outcome: SendOutcome) -> list[Alert]:
    """Take the deliveries still to send (planned, or refused earlier the same day), and read
    what they will say.

    Committed before any of them is sent (decision 0008): from then on no other worker, rerun
    or retry can take them, so none can go out twice. Those with nothing left to tell, or
    superseded, become skipped in the same transaction."""
    now = utcnow()
    lock_citizens(delivery_ids)
    claimed = _claim(delivery_ids, now)
    alerts = alerts_to_send(claimed, now) if claimed else []
    told = {alert.delivery_id for alert in alerts}
    untold = [delivery_id for delivery_id in claimed if delivery_id not in told]
    if untold:
        _skip(untold, now)
    outcome.skipped += len(untold)
    transactions.commit()
    return alerts


def record_outcomes(results: list[MailResult], outcome: SendOutcome) -> None:
    """What the mail server said about each e-mail of a window, in one transaction.

    The sent ones and their citizens' watermarks commit together (decision 0008), so a sent
    alert's news is never announced again; one whose e-mail may have left stays "sending", so
    it is not sent again. This commit need not wait for the disk (PostgreSQL): the next claim's
    commit flushes it anyway, and if PostgreSQL itself crashed before, the window would stay
    "sending": never sent twice, announced the next day."""
    now = utcnow()
    if db.engine.dialect.name == "postgresql":
        db.session.execute(text("SET LOCAL synchronous_commit TO OFF"))
    sent = [result.key for result in results if result.error is None]
    if sent:
        lock_citizens(sent)
        _move_watermarks(sent)
        _finish(sent, SENT, now)
        _record_expiry_warnings(sent, now)
    refused: dict[str, list[int]] = defaultdict(list)
    in_doubt: dict[str, list[int]] = defaultdict(list)
    for result in results:
        if result.error is not None:
            doubtful = result.error.may_have_been_delivered
            (in_doubt if doubtful else refused)[str(result.error)[:300]].append(result.key)
    for error, delivery_ids in refused.items():
        _finish(delivery_ids, FAILED, now, error=error)
        outcome.failed += delivery_ids
    for error, delivery_ids in in_doubt.items():
        _note_error(delivery_ids, error)  # they stay "sending"
        outcome.unknown += delivery_ids
        log.error("alerts %s: the mail server may have taken them; not resent today", delivery_ids)
    transactions.commit()
    outcome.sent += len(sent)


def lock_citizens(delivery_ids: list[int]) -> None:
    """Lock the deliveries' citizens, in id order (PostgreSQL; SQLite has a single writer):
    one claim or outcome at a time per citizen, so that a claim's checks and its UPDATE see
    the same state, and two transactions never wait for each other in a circle."""
    if db.engine.dialect.name != "postgresql":
        return
    deliveries, citizens = DELIVERIES.c, CITIZENS.c
    of_deliveries = select(deliveries.citizen_id).where(among(deliveries.id, delivery_ids))
    db.session.execute(
        select(citizens.id)
        .where(citizens.id.in_(of_deliveries))
        .order_by(citizens.id)
        .with_for_update()
    )


def _claim(delivery_ids: list[int], now: datetime) -> list[int]:
    deliveries = DELIVERIES.c
    today = now.astimezone(PLATFORM_TIMEZONE).date()
    claimed = db.session.execute(
        update(DELIVERIES)
        .where(
            among(deliveries.id, delivery_ids),
            or_(
                deliveries.status == PLANNED,
                # A refused mail is retried on its own day only: the next day has its alert.
                and_(deliveries.status == FAILED, deliveries.day == today),
            ),
        )
        .values(status=SENDING, claimed_at=now, attempts=deliveries.attempts + 1)
        .returning(deliveries.id)
    )
    return sorted(claimed.scalars())


def _skip(delivery_ids: list[int], now: datetime) -> None:
    """Skip claimed deliveries with nothing to tell, saying why when a newer alert tells it."""
    announced = exists().where(CITIZENS.c.id == DELIVERIES.c.citizen_id, already_announced())
    reason = case(
        (newer_alert(), "superseded by a later day's alert"),
        (announced, "its news was already announced"),
        else_=None,
    )
    _finish(delivery_ids, SKIPPED, now, error=reason)


def _move_watermarks(delivery_ids: list[int]) -> None:
    """The next alert of each citizen starts where this one ended."""
    deliveries, citizens = DELIVERIES.c, CITIZENS.c
    db.session.execute(
        update(CITIZENS)
        .where(citizens.id == deliveries.citizen_id, among(deliveries.id, delivery_ids))
        .values(
            alerted_news_until=_later(citizens.alerted_news_until, deliveries.cutoff_at),
            alerted_expiry_until=_later(citizens.alerted_expiry_until, deliveries.expiry_until),
            alerted_reminder_until=_later(
                citizens.alerted_reminder_until, deliveries.reminder_until
            ),
        )
    )


def _record_expiry_warnings(delivery_ids: list[int], now: datetime) -> None:
    """Tell each sender which of its documents the sent alerts warned of (their deletion
    soon): one INSERT ... SELECT for the window, whatever the number of documents."""
    deliveries, citizens, documents = DELIVERIES.c, CITIZENS.c, DOCUMENTS.c
    warned = (
        select(documents.sender_id, documents.id)
        .join_from(DELIVERIES, CITIZENS, citizens.id == deliveries.citizen_id)
        .join(DOCUMENTS, documents.recipient_national_number == citizens.national_number)
        .where(
            among(deliveries.id, delivery_ids),
            documents.expires_at > deliveries.expiry_after,
            documents.expires_at <= deliveries.expiry_until,
            still_news(now),
        )
    )
    record_events_from(warned, type=MESSAGE_EXPIRY_WARNING_SENT, at=now)


def _later(current: Any, candidate: Any) -> Any:
    """The later of two moments, current possibly NULL (SQL)."""
    return case((or_(current.is_(None), current < candidate), candidate), else_=current)


def _finish(delivery_ids: list[int], status: str, now: datetime, *, error: Any = None) -> None:
    deliveries = DELIVERIES.c
    db.session.execute(
        update(DELIVERIES)
        .where(among(deliveries.id, delivery_ids), deliveries.status == SENDING)
        .values(status=status, finished_at=now, last_error=error)
    )


def _note_error(delivery_ids: list[int], error: str) -> None:
    db.session.execute(
        update(DELIVERIES).where(among(DELIVERIES.c.id, delivery_ids)).values(last_error=error)
    )
