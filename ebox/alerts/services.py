"""The daily alert, in two steps that scale apart.

Planning is set-based: one INSERT ... SELECT per range of citizen ids writes a delivery row for
every citizen with a confirmed address and news (unread, unhidden documents published since the
last alert, or whose deletion came within the warning window since then). No citizen is loaded
into Python to decide it, so memory does not grow with the number of citizens.

Sending works through a job's deliveries a window of SEND_WINDOW at a time, in two committed
transactions per window (so these services commit between their steps, through
ebox.transactions: decision 0008):

1. claim_window: the window's deliveries still to send go planned -> sending in one UPDATE ...
   RETURNING, and what they will say is read in one query. Committed before any e-mail leaves:
   no second worker, rerun or retry can claim them again.
2. The e-mails go out over SMTP_CONNECTIONS connections, pipelined (ebox.mail.services).
3. record_outcomes, once the mail server has answered for every e-mail of the window: sent, with
   the citizens' watermarks in the same transaction (they move only with a sent alert); failed
   when the server refused (RQ retries the job, on that day only); or left "sending" when a
   connection broke after the content left, since the server may have taken it.
4. The sent alerts also go out as pushes to their citizens' devices, if they allowed them: by
   this process only, since only it moved them to sent, so at most once (ebox.push.sending).

So a citizen never gets two alerts on one day, whatever crashes, reruns, retries or workers.
A worker killed (SIGKILL) between the claim and the record of a window leaves that window
"sending": nobody knows which of its e-mails left, so none of them is sent again that day, and,
because the watermarks did not move, the next day's alert announces their news. That bounds the
deliveries a kill leaves in doubt: at most SEND_WINDOW (100) per worker killed, the e-mails the
worker had claimed for its SMTP connections. Of these, at most one per connection had been
sent without an answer yet; the others had been accepted by the server, or not sent at all.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from datetime import date, datetime, timedelta
from typing import Any

from sqlalchemy import and_, case, func, literal, or_, select
from sqlalchemy.dialects import postgresql, sqlite

from ebox import transactions
from ebox.accounts.models import Citizen
from ebox.alerts.claims import SendOutcome, claim_window, record_outcomes
from ebox.alerts.letters import AlertLetters
from ebox.alerts.models import FAILED, PLANNED, AlertDelivery, AlertRun
from ebox.alerts.queries import reminded, still_news
from ebox.config import Settings, current_settings
from ebox.db_types import PLATFORM_TIMEZONE, UTCDateTime, utcnow
from ebox.extensions import db
from ebox.mail.services import Mailer
from ebox.mailbox.models import Document
from ebox.push.sending import push_alerts
from ebox.senders.models import MessageType

CHUNK_CITIZENS = 10_000  # citizen ids planned by one job
SEND_BATCH = 1_000  # deliveries sent by one job
SEND_WINDOW = 100  # deliveries claimed together: the most a killed worker leaves in doubt
SMTP_CONNECTIONS = 4  # per worker, shared by the window's e-mails


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
    reminder_after, reminder_until = _reminder_window(cutoff, settings)
    is_new = and_(Document.published_at > news_after, Document.published_at <= cutoff)
    is_expiring = and_(Document.expires_at > expiry_after, Document.expires_at <= expiry_until)
    is_reminder = reminded(
        Document.published_at, MessageType.sends_reminders, reminder_after, reminder_until
    )
    news = (
        select(
            Citizen.id,
            literal(run.day),
            literal(PLANNED),
            news_after,
            literal(cutoff, UTCDateTime()),
            expiry_after,
            literal(expiry_until, UTCDateTime()),
            reminder_after,
            reminder_until,
            func.sum(case((is_new, 1), else_=0)),
            func.sum(case((is_expiring, 1), else_=0)),
            func.sum(case((and_(is_reminder, ~is_new, ~is_expiring), 1), else_=0)),
            literal(utcnow(), UTCDateTime()),
        )
        .join(Document, Document.recipient_national_number == Citizen.national_number)
        .join(MessageType, MessageType.id == Document.message_type_id)
        .where(
            Citizen.id >= first_id,
            Citizen.id < end_id,
            Citizen.email_confirmed_at.is_not(None),
            Citizen.email.is_not(None),
            still_news(cutoff),
            or_(is_new, is_expiring, is_reminder),
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
        "reminder_after",
        "reminder_until",
        "new_count",
        "expiring_count",
        "reminder_count",
        "planned_at",
    ]
    statement = _insert_statement(AlertDelivery).from_select(columns, news)
    # INSERT ... SELECT reports its row count only when asked to keep it.
    result = db.session.execute(
        statement.on_conflict_do_nothing(), execution_options={"preserve_rowcount": True}
    )
    transactions.commit()
    return _rowcount(result)


def _reminder_window(cutoff: datetime, settings: Settings) -> tuple[Any, Any]:
    """The documents a reminder names: published in (after, until], where after is where the
    citizen's last sent alert left off and until is EBOX_REMINDER_DAYS before the cutoff. The
    window is empty (until = after) for a citizen who turned reminders off, or when it would
    end before it starts; so each document is named once, by the first alert sent after it
    reached that age, however many days have no alert."""
    after = func.coalesce(Citizen.alerted_reminder_until, Citizen.email_confirmed_at)
    if not settings.reminder_days:
        return after, after
    until = literal(cutoff - timedelta(days=settings.reminder_days), UTCDateTime())
    return after, case((and_(Citizen.wants_reminders, until > after), until), else_=after)


def deliveries_to_send(day: date, first_id: int, end_id: int) -> Iterator[list[int]]:
    """The ids of the range's deliveries still to send (or to retry), in batches of SEND_BATCH.
    The (day, status, citizen_id) index gives exactly the range's rows."""
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


def send_deliveries(delivery_ids: list[int], *, settings: Settings) -> SendOutcome:
    """Send each delivery that nobody has claimed yet (or that the server refused today), a
    window at a time, over SMTP_CONNECTIONS connections kept open for the whole batch."""
    outcome = SendOutcome()
    with Mailer(settings, connections=SMTP_CONNECTIONS) as mailer:
        letters = AlertLetters(
            mailer, portal_url=settings.public_url + "/", reminder_days=settings.reminder_days
        )
        for start in range(0, len(delivery_ids), SEND_WINDOW):
            alerts = claim_window(delivery_ids[start : start + SEND_WINDOW], outcome)
            if alerts:
                results = mailer.send_all(letters.compose(alert) for alert in alerts)
                record_outcomes(results, outcome)
                # Once the window's outcomes are committed, and never raising: ebox.push.
                sent = {result.key for result in results if result.error is None}
                if settings.push_enabled and sent:
                    push_alerts([alert for alert in alerts if alert.delivery_id in sent], settings)
    return outcome


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
