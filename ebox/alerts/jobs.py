"""The daily alert as jobs: one job starts the day, one per range of citizens plans, and one per
batch of deliveries sends. More workers finish sooner; any job may run again safely.

Planning and sending jobs have retries: RQ uses them both when a job fails and when its worker
died during it (ebox.jobs), so the deliveries a dead worker had not claimed yet are sent by
another worker within minutes, with no operator. Those it had claimed stay "sending" and are
not sent again that day (ebox.alerts.services)."""

from __future__ import annotations

import logging
from datetime import date

from rq import Retry

from ebox.alerts import services
from ebox.config import current_settings
from ebox.db_types import utcnow
from ebox.extensions import db
from ebox.jobs import queue

log = logging.getLogger(__name__)


def alert_retry() -> Retry:
    """Refused mails (or a dead worker's batch) are tried again after 1 minute, 10 minutes and
    1 hour by default (EBOX_ALERT_RETRY_SECONDS); then the job stays in RQ's failed registry for
    operators, and the next day's alert covers the citizen's news."""
    waits = list(current_settings().alert_retry_seconds)
    return Retry(max=len(waits), interval=waits)


class AlertsRefused(RuntimeError):
    """The mail server refused some alerts of a batch: the job fails so that RQ retries it."""


def start_daily_alerts(day: str | None = None) -> int:
    """Fix the day's cutoff and enqueue one planning job per range of citizens."""
    alert_day = date.fromisoformat(day) if day else services.platform_today()
    run = services.start_run(alert_day, utcnow())
    ranges = services.citizen_id_ranges()
    jobs = queue()
    for first_id, end_id in ranges:
        jobs.enqueue(plan_alerts, run.day.isoformat(), first_id, end_id, retry=alert_retry())
    log.info("alerts %s: %d planning jobs enqueued", run.day, len(ranges))
    return len(ranges)


def plan_alerts(day: str, first_id: int, end_id: int) -> int:
    """Plan one range of citizens, then enqueue its deliveries in sending batches."""
    alert_day = date.fromisoformat(day)
    run = services.start_run(alert_day, utcnow())
    planned = services.plan_range(run, first_id, end_id, current_settings())
    batches = list(services.deliveries_to_send(alert_day, first_id, end_id))
    db.session.rollback()  # read only: end it before enqueueing
    jobs = queue()
    retry = alert_retry()
    for batch in batches:
        jobs.enqueue(send_alerts, day, batch, retry=retry)
    return planned


def send_alerts(day: str, delivery_ids: list[int]) -> dict[str, int]:
    outcome = services.send_deliveries(delivery_ids, settings=current_settings())
    if outcome.failed:
        raise AlertsRefused(
            f"{len(outcome.failed)} alerts of {day} were refused by the mail server "
            f"(deliveries {outcome.failed[:10]}); they are retried"
        )
    return {"sent": outcome.sent, "skipped": outcome.skipped, "unknown": len(outcome.unknown)}
