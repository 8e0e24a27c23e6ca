"""The kill test: a worker killed (SIGKILL) in the middle of the daily alert, then the day run
again by other workers. Nobody gets two alerts that day; the alerts whose fate is unknown are at
most the window the dead worker had claimed for its SMTP connections (SEND_WINDOW), and they are
announced again the next day.

Real everything: worker.py in its own processes, PostgreSQL, the Redis server and an SMTP server
on loopback (offering PIPELINING, as mail servers do) that takes a little time per message so
that the kill lands mid-way.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import subprocess
import sys
import threading
import time
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import date, timedelta
from pathlib import Path
from typing import Any

import pytest
from aiosmtpd.controller import Controller
from flask import Flask
from redis import Redis
from rq import Queue, Worker
from sqlalchemy import select, text

from ebox.accounts.models import Citizen
from ebox.alerts.jobs import start_daily_alerts
from ebox.alerts.models import PLANNED, SENDING, SENT, AlertDelivery
from ebox.alerts.services import SEND_WINDOW, delivery_counts, platform_today
from ebox.db_types import utcnow
from ebox.extensions import db
from ebox.jobs import QUEUE
from tests.factories import create_message_type, create_sender
from tests.mail.smtp_server import free_port

pytestmark = [pytest.mark.slow, pytest.mark.postgres_only]

CITIZENS = 3000
# Not a whole number of windows: the kill lands while a window's e-mails are going out.
KILL_AFTER = CITIZENS // 3 + 37
ROOT = Path(__file__).resolve().parents[2]
WORKER_TIMEOUT = 90  # seconds; a worker that takes longer has hung


@dataclass
class SlowMailServer:
    """Takes every message after a millisecond's pause; keeps the envelope recipients."""

    recipients: list[str] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)

    async def handle_EHLO(
        self, server: Any, session: Any, envelope: Any, hostname: str, responses: list[str]
    ) -> list[str]:
        session.host_name = hostname
        return [*responses[:-1], "250-PIPELINING", responses[-1]]

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        await asyncio.sleep(0.001)
        with self.lock:
            self.recipients.extend(envelope.rcpt_tos)
        return "250 Message accepted for delivery"

    def received(self) -> list[str]:
        with self.lock:
            return list(self.recipients)


@pytest.fixture
def mail_server() -> Iterator[tuple[SlowMailServer, str]]:
    handler = SlowMailServer()
    port = free_port()
    controller = Controller(handler, hostname="127.0.0.1", port=port)
    controller.start()
    try:
        yield handler, f"smtp://127.0.0.1:{port}"
    finally:
        controller.stop()


class Workers:
    """worker.py processes started by the test; any still running at the end is killed."""

    def __init__(self, environment: dict[str, str], logs: Path) -> None:
        self.environment = environment
        self.logs = logs
        self.started: list[subprocess.Popen[bytes]] = []

    def start(self, *, burst: bool = True) -> subprocess.Popen[bytes]:
        """A worker that stops once the queue is empty (burst), or that works until killed."""
        log = (self.logs / f"worker-{len(self.started) + 1}.log").open("wb")
        process = subprocess.Popen(
            [sys.executable, str(ROOT / "worker.py"), *(["--burst"] if burst else [])],
            cwd=ROOT,
            env=self.environment,
            stdout=log,
            stderr=subprocess.STDOUT,
            # Its own process group: the scheduler it forks dies with it (a node that dies takes
            # both). Left alone, that scheduler would hold this Redis's scheduler lock for the
            # tests that come after.
            start_new_session=True,
        )
        log.close()
        self.started.append(process)
        return process

    def run_to_the_end(self, count: int = 1) -> None:
        """count workers side by side, until the queue is empty."""
        processes = [self.start() for _ in range(count)]
        for process in processes:
            assert process.wait(timeout=WORKER_TIMEOUT) == 0, self.log_of(process)

    def log_of(self, process: subprocess.Popen[bytes]) -> str:
        number = self.started.index(process) + 1
        return (self.logs / f"worker-{number}.log").read_text(errors="replace")[-3000:]

    @staticmethod
    def kill(process: subprocess.Popen[bytes]) -> None:
        """SIGKILL the worker and whatever it forked (its scheduler, a job's work horse)."""
        with contextlib.suppress(ProcessLookupError):
            os.killpg(process.pid, signal.SIGKILL)
        process.wait()

    def stop_all(self) -> None:
        for process in self.started:
            self.kill(process)


@pytest.fixture
def workers(
    app: Flask,
    database_url: str,
    empty_redis_url: str,
    mail_server: tuple[SlowMailServer, str],
    tmp_path: Path,
) -> Iterator[Workers]:
    settings = app.config["EBOX"]
    environment = {k: v for k, v in os.environ.items() if not k.startswith("EBOX_")}
    environment.update(
        EBOX_ENV="test",
        EBOX_DATABASE_URL=database_url,
        EBOX_REDIS_URL=empty_redis_url,
        EBOX_SMTP_URL=mail_server[1],
        EBOX_INSTANCE_PATH=str(tmp_path / "instance"),
        EBOX_MASTER_KEY=settings.master_key,
        EBOX_PUBLIC_URL=settings.public_url,
    )
    started = Workers(environment, tmp_path)
    try:
        yield started
    finally:
        started.stop_all()


def create_citizens_with_news(count: int) -> None:
    """count citizens with a confirmed address and one unread document each, in two statements."""
    message_type = create_message_type(create_sender(name="Federal Pension Service"))
    now = utcnow().replace(tzinfo=None)  # the columns hold naive UTC
    db.session.execute(
        text(
            "INSERT INTO citizens (national_number, given_name, surname, language, email,"
            " email_confirmed_at, conditions_accepted_at, is_electronic_only, created_at)"
            " SELECT lpad(n::text, 11, '0'), 'Citizen', 'Number ' || n,"
            " (ARRAY['nl', 'fr', 'de', 'en'])[1 + n % 4], 'citizen' || n || '@example.org',"
            " :confirmed, :confirmed, false, :confirmed"
            " FROM generate_series(1, :count) AS n"
        ),
        {"count": count, "confirmed": now - timedelta(days=2)},
    )
    db.session.execute(
        text(
            "INSERT INTO documents (id, sender_id, message_type_id, recipient_national_number,"
            " sender_ticket, title, language, media_type, size_bytes, sha256, is_registered,"
            " published_at, expires_at)"
            " SELECT gen_random_uuid(), :sender, :type, lpad(n::text, 11, '0'), 'K' || n,"
            " 'Confidential letter ' || n, 'en', 'application/pdf', 0, repeat('0', 64), false,"
            " :published, :expires"
            " FROM generate_series(1, :count) AS n"
        ),
        {
            "count": count,
            "sender": message_type.sender_id,
            "type": message_type.id,
            "published": now - timedelta(hours=1),
            "expires": now + timedelta(days=60),
        },
    )
    db.session.commit()


def deliveries_of(day: date) -> list[tuple[str, str]]:
    """(e-mail address, status) of each of the day's deliveries."""
    db.session.expire_all()
    rows = db.session.execute(
        select(Citizen.email, AlertDelivery.status)
        .join(Citizen, Citizen.id == AlertDelivery.citizen_id)
        .where(AlertDelivery.day == day)
    ).all()
    return [(str(email), status) for email, status in rows]


def test_a_worker_killed_mid_run_never_makes_anyone_get_two_alerts_a_day(
    app: Flask,
    workers: Workers,
    empty_redis_url: str,
    mail_server: tuple[SlowMailServer, str],
) -> None:
    if db.engine.dialect.name != "postgresql":
        pytest.skip("the citizens are created with PostgreSQL's generate_series")
    smtp, _ = mail_server
    started = time.monotonic()
    create_citizens_with_news(CITIZENS)
    day = platform_today()
    jobs = Queue(QUEUE, connection=Redis.from_url(empty_redis_url))

    # The first worker is killed once about a third of the alerts have arrived.
    jobs.enqueue(start_daily_alerts, day.isoformat())
    doomed = workers.start()
    while len(smtp.received()) < KILL_AFTER:
        assert doomed.poll() is None, workers.log_of(doomed)
        assert time.monotonic() - started < WORKER_TIMEOUT, "the first worker sends too slowly"
        time.sleep(0.001)
    workers.kill(doomed)
    killed = 1
    killed_after = time.monotonic() - started
    at_kill = len(smtp.received())
    abandoned = len(jobs.started_job_registry.get_job_ids())  # the job the dead worker held

    # Two other workers, side by side; the day is run again, as an operator (or the next
    # trigger) would: what the dead worker had planned is sent, what it had claimed is not.
    jobs.enqueue(start_daily_alerts, day.isoformat())
    workers.run_to_the_end(count=2)
    assert jobs.count == 0
    first_day = smtp.received()
    day_done_after = time.monotonic() - started

    counts = delivery_counts(day)
    deliveries = deliveries_of(day)
    ambiguous = sorted(email for email, status in deliveries if status == SENDING)
    sent = {email for email, status in deliveries if status == SENT}
    per_recipient = Counter(first_day)
    print(
        f"\n{CITIZENS} citizens; {at_kill} alerts had arrived when the worker was killed; "
        f"{abandoned} job abandoned; day 1: {len(first_day)} mails, deliveries {counts}; "
        f"{len(ambiguous)} in doubt after the kill, {sum(per_recipient[e] for e in ambiguous)} "
        f"of them arrived; killed at {killed_after:.1f} s, the day done at {day_done_after:.1f} s"
    )
    assert len(deliveries) == CITIZENS
    assert set(counts) <= {SENT, SENDING}, counts
    assert per_recipient.most_common(1)[0][1] == 1, "someone got two alerts on one day"
    assert sent <= set(per_recipient), "every alert marked sent has arrived"
    assert set(per_recipient) <= sent | set(ambiguous)
    # A worker claims its next window only once the last one's outcomes are committed: at most
    # one window per worker killed is left in doubt.
    assert len(ambiguous) <= killed * SEND_WINDOW, len(ambiguous)
    # An alert marked sent has moved its citizen's watermark: the next alert starts after it.
    left_behind = watermarks_left_behind(day)
    assert not left_behind, f"sent, but the next alert would announce it again: {left_behind}"

    # The next day, with nothing new published: only the alerts in flight are announced again.
    next_day = day + timedelta(days=1)
    jobs.enqueue(start_daily_alerts, next_day.isoformat())
    workers.run_to_the_end()
    second_day = smtp.received()[len(first_day) :]
    print(f"day 2: {len(second_day)} mails, deliveries {delivery_counts(next_day)}")
    assert sorted(second_day) == ambiguous
    assert sorted(deliveries_of(next_day)) == [(email, SENT) for email in ambiguous]
    elapsed = time.monotonic() - started
    print(f"the kill test took {elapsed:.1f} s")


def watermarks_left_behind(day: date) -> list[str]:
    """Citizens whose alert of the day is sent but whose watermark did not move with it."""
    rows = db.session.execute(
        select(Citizen.email)
        .join(AlertDelivery, AlertDelivery.citizen_id == Citizen.id)
        .where(
            AlertDelivery.day == day,
            AlertDelivery.status == SENT,
            Citizen.alerted_news_until.is_distinct_from(AlertDelivery.cutoff_at),
        )
    ).all()
    return [str(email) for (email,) in rows]


# The takeover test's timings: a job may run 10 s, a worker silent 2 s past that is dead, and
# workers clean RQ's registries every second; a retry waits 1 s. Production: 180 s, 60 s, 60 s.
TAKEOVER_SETTINGS = {
    "EBOX_JOB_TIMEOUT_SECONDS": "10",
    "EBOX_WORKER_GRACE_SECONDS": "2",
    "EBOX_WORKER_MAINTENANCE_SECONDS": "1",
    "EBOX_ALERT_RETRY_SECONDS": "1,1,1",
}
TAKEOVER_CITIZENS = 1000  # one sending job (SEND_BATCH)
TAKEOVER_DEADLINE = 60  # seconds after the kill


def test_a_dead_workers_batch_is_taken_over_by_another_worker_without_an_operator(
    app: Flask,
    workers: Workers,
    empty_redis_url: str,
    mail_server: tuple[SlowMailServer, str],
) -> None:
    if db.engine.dialect.name != "postgresql":
        pytest.skip("the citizens are created with PostgreSQL's generate_series")
    smtp, _ = mail_server
    workers.environment.update(TAKEOVER_SETTINGS)
    create_citizens_with_news(TAKEOVER_CITIZENS)
    day = platform_today()
    redis = Redis.from_url(empty_redis_url)
    jobs = Queue(QUEUE, connection=redis)

    # A worker, killed in the middle of the day's only sending job.
    jobs.enqueue(start_daily_alerts, day.isoformat())
    doomed = workers.start()
    started = time.monotonic()
    while len(smtp.received()) < TAKEOVER_CITIZENS // 3 + 37:
        assert doomed.poll() is None, workers.log_of(doomed)
        assert time.monotonic() - started < WORKER_TIMEOUT, "the first worker sends too slowly"
        time.sleep(0.001)
    workers.kill(doomed)
    killed_at = time.monotonic()
    at_kill = len(smtp.received())
    assert [worker.pid for worker in Worker.all(connection=redis)] == [doomed.pid]
    assert len(jobs.started_job_registry.get_job_ids()) == 1, "the dead worker's job"
    assert delivery_counts(day).get(PLANNED, 0) > 0, "the kill came too late to strand any"

    # Another worker is started, as a supervisor would; nobody runs or enqueues anything.
    survivor = workers.start(burst=False)
    taken_over_after = None
    while taken_over_after is None:
        assert survivor.poll() is None, workers.log_of(survivor)
        waited = time.monotonic() - killed_at
        assert waited < TAKEOVER_DEADLINE, (
            f"after {waited:.0f} s: {delivery_counts(day)}\n{workers.log_of(survivor)}"
        )
        if PLANNED not in delivery_counts(day):
            taken_over_after = waited
        time.sleep(0.2)
    db.session.rollback()
    # The dead worker is gone from what `rq info` shows: only the new one is left.
    assert [worker.pid for worker in Worker.all(connection=redis)] == [survivor.pid]
    assert Worker.count(queue=jobs) == 1
    rq_command = str(Path(sys.executable).parent / "rq")
    info = subprocess.run(
        [rq_command, "info", "--url", empty_redis_url, "--only-workers"],
        capture_output=True,
        text=True,
        timeout=30,
        check=True,
    ).stdout
    assert "1 workers" in info, info

    counts = delivery_counts(day)
    deliveries = deliveries_of(day)
    ambiguous = {email for email, status in deliveries if status == SENDING}
    sent = {email for email, status in deliveries if status == SENT}
    received = Counter(smtp.received())
    print(
        f"\n{at_kill} alerts had arrived at the kill; the rest was taken over "
        f"{taken_over_after:.1f} s after it; deliveries {counts}"
    )
    assert len(deliveries) == TAKEOVER_CITIZENS
    assert set(counts) <= {SENT, SENDING}, counts
    assert received.most_common(1)[0][1] == 1, "someone got two alerts on one day"
    assert sent <= set(received), "every alert marked sent has arrived"
    assert set(received) <= sent | ambiguous
    assert len(ambiguous) <= SEND_WINDOW, len(ambiguous)
    assert len(sent) >= TAKEOVER_CITIZENS - SEND_WINDOW
    assert jobs.count == 0
    assert jobs.failed_job_registry.count == 0
