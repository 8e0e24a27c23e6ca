"""The daily alert, in two steps that scale apart.

Planning is set-based: one INSERT ... SELECT per range of citizen ids writes a delivery row for
every citizen with a confirmed address and news (unread, unhidden documents published since the
last alert, or whose deletion came within the warning window since then). No citizen is loaded
into Python to decide it, so memory does not grow with the number of citizens.

Sending works through delivery rows in small batches. Each delivery is claimed in its own
committed transaction before its mail goes out and marked sent after, so no second worker, rerun
or retry can send it again (so these services commit between their steps, through
ebox.transactions: decision 0008). A worker killed in between leaves it "sending": not resent
that day, and, because the citizen's watermarks move only when an alert is sent, announced the
next day.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta

from flask_babel import lazy_gettext as _l
from sqlalchemy import ColumnElement, and_, case, func, literal, or_, select, update
from sqlalchemy.dialects import postgresql, sqlite

from ebox import transactions
from ebox.accounts.models import Citizen
from ebox.alerts.models import FAILED, PLANNED, SENDING, SENT, SKIPPED, AlertDelivery, AlertRun
from ebox.config import Settings, current_settings
from ebox.db_types import PLATFORM_TIMEZONE, UTCDateTime, utcnow
from ebox.extensions import db
from ebox.mail.services import MailDeliveryError, Mailer, RenderedEmail, render_email
from ebox.mailbox.models import Document
from ebox.senders.models import Sender

log = logging.getLogger(__name__)

CHUNK_CITIZENS = 10_000  # citizen ids planned by one job
SEND_BATCH = 200  # deliveries sent by one job, over one SMTP connection


def platform_today(now: datetime | None = None) -> date:
    return (now or utcnow()).astimezone(PLATFORM_TIMEZONE).date()


def start_run(day: date, now: datetime) -> AlertRun:
    """The day's run. The first call fixes its cutoff (now); every later call gets that one back,
    so a rerun after a crash plans exactly the same news."""
    _insert_ignoring_duplicates(AlertRun, {"day": day, "cutoff_at": now, "started_at": now})
    transactions.commit()
    run = db.session.get(AlertRun, day)
    assert run is not None
    return run


def citizen_id_ranges(size: int = CHUNK_CITIZENS) -> list[tuple[int, int]]:
    """Half-open id ranges covering every citizen with a confirmed address."""
    low, high = db.session.execute(
        select(func.min(Citizen.id), func.max(Citizen.id)).where(
            Citizen.email_confirmed_at.is_not(None)
        )
    ).one()
    if low is None:
        return []
    return [(start, start + size) for start in range(low, high + 1, size)]


def plan_range(run: AlertRun, first_id: int, end_id: int, settings: Settings) -> int:
    """Write the deliveries of citizens first_id <= id < end_id; returns how many were new."""
    cutoff = run.cutoff_at
    expiry_until = cutoff + timedelta(days=settings.alert_expiry_window_days)
    news_after = func.coalesce(Citizen.alerted_news_until, Citizen.email_confirmed_at)
    # Deletions already warned of are not announced again; nor are those already past.
    expiry_after = case(
        (Citizen.alerted_expiry_until > cutoff, Citizen.alerted_expiry_until),
        else_=literal(cutoff, UTCDateTime()),
    )
    is_new = and_(Document.published_at > news_after, Document.published_at <= cutoff)
    is_expiring = and_(Document.expires_at > expiry_after, Document.expires_at <= expiry_until)
    news = (
        select(
            Citizen.id,
            literal(run.day),
            literal(PLANNED),
            news_after,
            literal(cutoff, UTCDateTime()),
            expiry_after,
            literal(expiry_until, UTCDateTime()),
            func.sum(case((is_new, 1), else_=0)),
            func.sum(case((is_expiring, 1), else_=0)),
            literal(utcnow(), UTCDateTime()),
        )
        .join(Document, Document.recipient_national_number == Citizen.national_number)
        .where(
            Citizen.id >= first_id,
            Citizen.id < end_id,
            Citizen.email_confirmed_at.is_not(None),
            Citizen.email.is_not(None),
            _still_news(cutoff),
            or_(is_new, is_expiring),
        )
        .group_by(Citizen.id)
    )
    columns = [
        "citizen_id",
        "day",
        "status",
        "news_after",
        "cutoff_at",
        "expiry_after",
        "expiry_until",
        "new_count",
        "expiring_count",
        "planned_at",
    ]
    statement = _insert_statement(AlertDelivery).from_select(columns, news)
    # INSERT ... SELECT reports its row count only when asked to keep it.
    result = db.session.execute(
        statement.on_conflict_do_nothing(), execution_options={"preserve_rowcount": True}
    )
    transactions.commit()
    return _rowcount(result)


def deliveries_to_send(day: date, first_id: int, end_id: int) -> Iterator[list[int]]:
    """The ids of the range's deliveries still to send (or to retry), in batches of SEND_BATCH."""
    ids = db.session.scalars(
        select(AlertDelivery.id)
        .where(
            AlertDelivery.day == day,
            AlertDelivery.status.in_([PLANNED, FAILED]),
            AlertDelivery.citizen_id >= first_id,
            AlertDelivery.citizen_id < end_id,
        )
        .order_by(AlertDelivery.id)
    ).all()
    for start in range(0, len(ids), SEND_BATCH):
        yield list(ids[start : start + SEND_BATCH])


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


def send_deliveries(delivery_ids: list[int], *, settings: Settings) -> SendOutcome:
    """Send each delivery that nobody has claimed yet (or that the server refused today)."""
    outcome = SendOutcome()
    with Mailer(settings) as mailer:
        for delivery_id in delivery_ids:
            delivery = _claim(delivery_id, outcome)
            if delivery is None:
                continue
            _send_one(delivery, mailer, settings, outcome)
    return outcome


@dataclass(frozen=True)
class News:
    new: list[tuple[str, int]]  # (sender name, documents) published since the last alert
    expiring: list[tuple[str, int]]  # (sender name, documents) soon deleted unread
    first_deletion: date | None


def news_of(delivery: AlertDelivery, citizen: Citizen, now: datetime) -> News:
    """What the alert says, read when it is sent: a document read meanwhile is no news."""

    def by_sender(*window: ColumnElement[bool]) -> list[tuple[str, int]]:
        rows = db.session.execute(
            select(Sender.name, func.count(Document.id))
            .join(Sender, Sender.id == Document.sender_id)
            .where(
                Document.recipient_national_number == citizen.national_number,
                _still_news(now),
                *window,
            )
            .group_by(Sender.name)
            .order_by(Sender.name)
        ).all()
        return [(name, int(count)) for name, count in rows]

    expiring_window = (
        Document.expires_at > delivery.expiry_after,
        Document.expires_at <= delivery.expiry_until,
    )
    first = db.session.scalar(
        select(func.min(Document.expires_at)).where(
            Document.recipient_national_number == citizen.national_number,
            _still_news(now),
            *expiring_window,
        )
    )
    return News(
        new=by_sender(
            Document.published_at > delivery.news_after,
            Document.published_at <= delivery.cutoff_at,
        ),
        expiring=by_sender(*expiring_window),
        first_deletion=platform_today(first) if first is not None else None,
    )


def _still_news(now: datetime) -> ColumnElement[bool]:
    return and_(
        Document.read_at.is_(None),
        Document.hidden_at.is_(None),
        Document.deleted_at.is_(None),
        Document.expires_at > now,
    )


def _claim(delivery_id: int, outcome: SendOutcome) -> AlertDelivery | None:
    """Take the delivery for this worker, committed before anything is sent; None if it is not
    to be sent (already taken, or superseded: then it is marked skipped)."""
    delivery = db.session.get(AlertDelivery, delivery_id)
    if delivery is None:
        return None
    # One claim at a time per citizen (PostgreSQL; SQLite has a single writer anyway), so the
    # checks below and the claim see the same state.
    _lock(Citizen, delivery.citizen_id)
    claimable = and_(
        AlertDelivery.id == delivery_id,
        or_(
            AlertDelivery.status == PLANNED,
            # A refused mail is retried on its own day only: the next day has its own alert.
            and_(AlertDelivery.status == FAILED, AlertDelivery.day == platform_today()),
        ),
    )
    reason = _superseded(delivery)
    values: dict[str, object] = (
        {"status": SKIPPED, "finished_at": utcnow(), "last_error": reason}
        if reason
        else {"status": SENDING, "claimed_at": utcnow(), "attempts": AlertDelivery.attempts + 1}
    )
    claimed = _rowcount(db.session.execute(update(AlertDelivery).where(claimable).values(values)))
    transactions.commit()
    if not claimed:
        return None
    if reason:
        outcome.skipped += 1
        return None
    return db.session.get(AlertDelivery, delivery_id)


def _superseded(delivery: AlertDelivery) -> str | None:
    """Why a late delivery must not go out: a newer alert of the citizen tells the same news."""
    newer = db.session.scalar(
        select(AlertDelivery.id)
        .where(AlertDelivery.citizen_id == delivery.citizen_id, AlertDelivery.day > delivery.day)
        .limit(1)
    )
    if newer is not None:
        return "superseded by a later day's alert"
    news_until, expiry_until = db.session.execute(
        select(Citizen.alerted_news_until, Citizen.alerted_expiry_until).where(
            Citizen.id == delivery.citizen_id
        )
    ).one()
    if (
        news_until is not None
        and expiry_until is not None
        and news_until >= delivery.cutoff_at
        and expiry_until >= delivery.expiry_until
    ):
        return "its news was already announced"
    return None


def _lock(model: type[Citizen], row_id: int) -> None:
    if db.engine.dialect.name == "postgresql":
        db.session.execute(select(model.id).where(model.id == row_id).with_for_update())


def _send_one(
    delivery: AlertDelivery, mailer: Mailer, settings: Settings, outcome: SendOutcome
) -> None:
    citizen = db.session.get(Citizen, delivery.citizen_id)
    news = news_of(delivery, citizen, utcnow()) if citizen and citizen.email else None
    if citizen is None or news is None or not (news.new or news.expiring):
        _finish(delivery, SKIPPED)
        outcome.skipped += 1
        return
    message = render_alert(citizen, news, settings)
    try:
        mailer.send(
            to=citizen.email or "",
            subject=message.subject,
            text=message.text,
            html=message.html,
            language=citizen.language,
        )
    except MailDeliveryError as exc:
        if exc.may_have_been_delivered:
            outcome.unknown.append(delivery.id)
            log.error("alert %s: the mail server may have taken it; not resent today", delivery.id)
            _note_error(delivery, str(exc))  # stays "sending"
        else:
            outcome.failed.append(delivery.id)
            _finish(delivery, FAILED, error=str(exc))
        return
    # The next alert starts where this one ended, committed with the outcome: a crash cannot
    # leave a sent alert whose news would be announced again.
    citizen.alerted_news_until = _later(citizen.alerted_news_until, delivery.cutoff_at)
    citizen.alerted_expiry_until = _later(citizen.alerted_expiry_until, delivery.expiry_until)
    _finish(delivery, SENT)
    outcome.sent += 1


def _later(current: datetime | None, candidate: datetime) -> datetime:
    return candidate if current is None or candidate > current else current


def _finish(delivery: AlertDelivery, status: str, *, error: str | None = None) -> None:
    delivery.status = status
    delivery.finished_at = utcnow()
    delivery.last_error = error[:300] if error else None
    transactions.commit()


def _note_error(delivery: AlertDelivery, error: str) -> None:
    delivery.last_error = error[:300]
    transactions.commit()


def render_alert(citizen: Citizen, news: News, settings: Settings) -> RenderedEmail:
    if news.new and news.expiring:
        subject = _l("News and documents soon deleted in your eBox")
    elif news.new:
        subject = _l("You have new documents in your eBox")
    else:
        subject = _l("Unread documents in your eBox will soon be deleted")
    return render_email(
        "alert",
        subject=subject,
        language=citizen.language,
        citizen=citizen,
        news=news,
        portal_url=settings.public_url + "/",
    )


def delivery_counts(day: date) -> dict[str, int]:
    """How many of the day's alerts are in each state (for operators)."""
    rows = db.session.execute(
        select(AlertDelivery.status, func.count(AlertDelivery.id))
        .where(AlertDelivery.day == day)
        .group_by(AlertDelivery.status)
    ).all()
    return {status: int(count) for status, count in rows}


def run_inline(
    day: date,
    *,
    now: datetime | None = None,
    progress: Callable[[str], None] | None = None,
) -> SendOutcome:
    """Plan and send the whole day in this process (the CLI), reporting progress."""
    settings = current_settings()
    run = start_run(day, now or utcnow())
    ranges = citizen_id_ranges()
    total = SendOutcome()
    for number, (first_id, end_id) in enumerate(ranges, start=1):
        planned = plan_range(run, first_id, end_id, settings)
        for batch in deliveries_to_send(day, first_id, end_id):
            total.add(send_deliveries(batch, settings=settings))
        if progress:
            progress(
                f"citizens {first_id}-{end_id - 1} ({number}/{len(ranges)}): {planned} planned, "
                f"{total.sent} sent so far"
            )
    return total


def _rowcount(result: object) -> int:
    # CursorResult has it; the generic Result type that session.execute() declares does not.
    return max(int(getattr(result, "rowcount", 0) or 0), 0)


def _insert_statement(model: type) -> postgresql.Insert | sqlite.Insert:
    dialect = postgresql if db.engine.dialect.name == "postgresql" else sqlite
    return dialect.insert(model)


def _insert_ignoring_duplicates(model: type, values: dict[str, object]) -> None:
    db.session.execute(_insert_statement(model).values(**values).on_conflict_do_nothing())
