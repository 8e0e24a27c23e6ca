"""Every periodic job, declared here and nowhere else.

Each occurrence is an RQ scheduled job whose id names the job and its time
("ebox-schedule-purge-20261129T1000Z"). Scheduling the same occurrence twice therefore leaves one
job: every worker may call ensure_scheduled() when it starts, and a redeploy never adds a copy.
When an occurrence runs it first schedules the next one, then does its work; a worker that was
down at the time runs it late (RQ keeps scheduled jobs in Redis) rather than skipping it, and
one that fails is tried again (RETRY_SECONDS).
"""

from __future__ import annotations

import importlib
import logging
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, time, timedelta

from rq import Queue, Retry

from ebox.config import Settings, current_settings
from ebox.db_types import PLATFORM_TIMEZONE, utcnow
from ebox.jobs import queue

log = logging.getLogger(__name__)

# An occurrence that fails (PostgreSQL restarting, its worker killed) runs again after 1, 5 and
# 30 minutes instead of waiting for its next occurrence: for a daily job, the next day. Every
# periodic job is safe to run twice.
RETRY_SECONDS = (60, 300, 1800)


@dataclass(frozen=True)
class Periodic:
    name: str
    job: str  # dotted path of a function without arguments
    next_time: Callable[[datetime], datetime]  # the first occurrence strictly after a moment


def daily_at(hour: int, minute: int = 0) -> Callable[[datetime], datetime]:
    """At hour:minute in Brussels every day (the clock time stays put across DST changes)."""

    def next_time(after: datetime) -> datetime:
        local = after.astimezone(PLATFORM_TIMEZONE)
        day = local.date()
        while True:
            candidate = datetime.combine(day, time(hour, minute), tzinfo=PLATFORM_TIMEZONE)
            if candidate > after:
                return candidate.astimezone(UTC)
            day += timedelta(days=1)

    return next_time


def every(minutes: int) -> Callable[[datetime], datetime]:
    """On every multiple of minutes since midnight UTC, so all workers agree on the times."""

    def next_time(after: datetime) -> datetime:
        midnight = datetime.combine(after.astimezone(UTC).date(), time(0), tzinfo=UTC)
        elapsed = (after - midnight) // timedelta(minutes=minutes) + 1
        return midnight + elapsed * timedelta(minutes=minutes)

    return next_time


def periodic_jobs(settings: Settings) -> list[Periodic]:
    return [
        Periodic("alerts", "ebox.alerts.jobs.start_daily_alerts", daily_at(settings.alert_hour)),
        Periodic(
            "purge",
            "ebox.retention.jobs.purge_expired_documents",
            every(settings.purge_interval_minutes),
        ),
        Periodic("orphans", "ebox.retention.jobs.remove_orphan_objects", daily_at(3, 30)),
        Periodic("saml-assertions", "ebox.accounts.jobs.forget_expired_assertions", every(60)),
        Periodic("missing-proofs", "ebox.evidence.jobs.make_missing_proofs", every(10)),
        Periodic("old-evidence", "ebox.evidence.jobs.forget_expired_evidence", daily_at(4, 0)),
        Periodic(
            "unconfirmed-applications",
            "ebox.applications.jobs.forget_unconfirmed_applications",
            every(60),
        ),
        Periodic("wss-seen-requests", "ebox.soap.jobs.forget_expired_requests", every(10)),
        Periodic("webhooks", "ebox.webhooks.jobs.deliver_due", every(1)),
        Periodic("old-events", "ebox.events.jobs.forget_old_events", every(60)),
        Periodic("api-idempotency-keys", "ebox.api.jobs.forget_old_idempotency_keys", every(60)),
    ]


def ensure_scheduled(jobs: Queue | None = None, now: datetime | None = None) -> list[str]:
    """Schedule the next occurrence of every periodic job; returns their job ids."""
    settings = current_settings()
    jobs = jobs or queue()
    now = now or utcnow()
    return [_schedule(jobs, each, each.next_time(now)) for each in periodic_jobs(settings)]


def run_periodic(name: str) -> object:
    """The scheduled job itself: book the next occurrence, then do the work."""
    settings = current_settings()
    periodic = {p.name: p for p in periodic_jobs(settings)}[name]
    _schedule(queue(), periodic, periodic.next_time(utcnow()))
    module, _, function = periodic.job.rpartition(".")
    return getattr(importlib.import_module(module), function)()


def _schedule(jobs: Queue, periodic: Periodic, at: datetime) -> str:
    job_id = f"ebox-schedule-{periodic.name}-{at.astimezone(UTC):%Y%m%dT%H%MZ}"
    retry = Retry(max=len(RETRY_SECONDS), interval=list(RETRY_SECONDS))
    jobs.enqueue_at(at, run_periodic, periodic.name, job_id=job_id, retry=retry)
    log.debug("scheduled %s at %s", periodic.name, at.isoformat())
    return job_id
