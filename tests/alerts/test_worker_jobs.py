"""The daily alert and the periodic jobs as the worker runs them: a real RQ worker (the one
worker.py starts) in burst mode, on the Redis server and on the embedded Redis, sending into a
real SMTP server on loopback."""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from email.message import EmailMessage

import pytest
from flask import Flask
from redis import Redis
from rq import Queue
from sqlalchemy import select
from sqlalchemy.exc import OperationalError

from ebox.accounts.models import Citizen
from ebox.alerts import services
from ebox.alerts.jobs import start_daily_alerts
from ebox.alerts.models import SENT, AlertDelivery, AlertRun
from ebox.db_types import utcnow
from ebox.extensions import db
from ebox.jobs import QUEUE, AppWorker
from ebox.push.endpoints import parse_subscription
from ebox.push.services import subscribe
from ebox.redis_connection import embedded_redis
from ebox.schedule import RETRY_SECONDS, ensure_scheduled, periodic_jobs, run_periodic
from ebox.senders.models import MessageType
from tests.factories import create_citizen, create_document, create_message_type, create_sender
from tests.mail.smtp_server import Received
from tests.push.push_service import PushService

# What each language says; the catalogs in ebox/translations are the source.
SUBJECTS = {
    "nl": "U hebt nieuwe documenten in uw eBox",
    "fr": "Vous avez de nouveaux documents dans votre eBox",
    "de": "Sie haben neue Dokumente in Ihrer eBox",
    "en": "You have new documents in your eBox",
}
NEWS_LINES = {
    "nl": "Er wachten nieuwe documenten in uw eBox:",
    "fr": "De nouveaux documents vous attendent dans votre eBox",
    "de": "In Ihrer eBox warten neue Dokumente:",
    "en": "New documents are waiting in your eBox:",
}


@pytest.fixture(scope="module")
def embedded_server(_migrated_app: Flask) -> Iterator[Redis]:
    """The embedded Redis that worker.py starts when EBOX_REDIS_URL is unset, under instance/.
    One per module: stopping it takes seconds."""
    with embedded_redis(_migrated_app.config["EBOX"]) as connection:
        yield connection


@pytest.fixture(params=["redis-server", "embedded-redis"])
def redis(request: pytest.FixtureRequest, app: Flask, own_redis_url: str) -> Iterator[Redis]:
    """An empty Redis, and the application's settings pointing at it for the test."""
    settings = app.config["EBOX"]
    previous = settings.redis_url
    if request.param == "redis-server":
        settings.redis_url = own_redis_url
        connection = Redis.from_url(settings.redis_url)
    else:
        settings.redis_url = ""  # as worker.py: the embedded server, found through instance/
        connection = request.getfixturevalue("embedded_server")
    connection.flushdb()
    try:
        yield connection
    finally:
        connection.flushdb()
        settings.redis_url = previous
        if request.param == "redis-server":
            connection.close()


def work(app: Flask, jobs: Queue, *, with_scheduler: bool = False) -> None:
    """What `python worker.py --burst` does, in this process: run every queued job, then stop."""
    worker = AppWorker([jobs], connection=jobs.connection, app=app)
    worker.work(burst=True, with_scheduler=with_scheduler)
    db.session.expire_all()


def mails_to(smtp_server: Received, citizen: Citizen) -> list[EmailMessage]:
    return [m for m in smtp_server.messages if m["To"] == citizen.email]


@pytest.fixture
def pensions() -> MessageType:
    return create_message_type(create_sender(name="Federal Pension Service"), code="PENSION")


def test_the_worker_plans_and_sends_the_day_one_mail_per_citizen_in_their_language(
    app: Flask,
    redis: Redis,
    smtp_server: Received,
    pensions: MessageType,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # Two deliveries per sending job, so that the planning job fans out into several.
    monkeypatch.setattr(services, "SEND_BATCH", 2)
    readers = {}
    for language, name in (("nl", "Anneleen"), ("fr", "Pierre"), ("de", "Heinz"), ("en", "Emma")):
        citizen = create_citizen(
            given_name=name, email=f"{name.lower()}@example.org", language=language
        )
        create_document(citizen, message_type=pensions, title=f"Pension decision of {name}")
        create_document(citizen, message_type=pensions, title=f"Pension payslip of {name}")
        readers[language] = citizen
    quiet = create_citizen(given_name="Quinten", email="quinten@example.org")
    create_document(quiet, message_type=pensions).read_at = utcnow()
    unconfirmed = create_citizen(given_name="Uma", email="uma@example.org", email_confirmed_at=None)
    create_document(unconfirmed, message_type=pensions)
    db.session.commit()
    day = services.platform_today()
    jobs = Queue(QUEUE, connection=redis)

    jobs.enqueue(start_daily_alerts, day.isoformat())
    work(app, jobs)

    # start, one planning job (one range of citizens), two sending jobs; none failed.
    assert len(jobs.finished_job_registry.get_job_ids()) == 4
    assert jobs.failed_job_registry.get_job_ids() == []
    assert jobs.count == 0
    assert Counter(m["To"] for m in smtp_server.messages) == {
        citizen.email: 1 for citizen in readers.values()
    }
    for language, citizen in readers.items():
        [mail] = mails_to(smtp_server, citizen)
        assert mail["Content-Language"] == language
        assert mail["Subject"] == SUBJECTS[language]
        text_part, html_part = mail.get_body(("plain",)), mail.get_body(("html",))
        assert text_part is not None and html_part is not None, "text and HTML parts"
        for part in (str(text_part.get_content()), str(html_part.get_content())):
            assert NEWS_LINES[language] in part
            assert "Federal Pension Service" in part
            assert citizen.given_name in part
            assert "Pension decision" not in part and "payslip" not in part
        assert "Pension" not in mail["Subject"]
    states = db.session.execute(select(AlertDelivery.citizen_id, AlertDelivery.status)).all()
    assert sorted(states) == sorted((c.id, SENT) for c in readers.values())
    run = db.session.get(AlertRun, day)
    assert run is not None
    assert {c.alerted_news_until for c in readers.values()} == {run.cutoff_at}

    # The day run again (a second trigger, a redeploy): nobody gets a second mail.
    jobs.enqueue(start_daily_alerts, day.isoformat())
    work(app, jobs)
    assert len(smtp_server.messages) == len(readers)
    assert jobs.failed_job_registry.get_job_ids() == []


def test_on_the_worker_a_reminder_and_its_push_go_out_once_with_the_days_alert(
    app: Flask, redis: Redis, smtp_server: Received, push_service: PushService
) -> None:
    pensions = create_message_type(create_sender(name="Federal Pension Service"), code="PENSION")
    ria = create_citizen(
        given_name="Ria", email="ria@example.org", email_confirmed_at=utcnow() - timedelta(30)
    )
    ria.alerted_news_until = ria.alerted_expiry_until = utcnow() - timedelta(days=1)
    waiting = create_document(ria, message_type=pensions, title="Waiting since long")
    waiting.published_at = utcnow() - timedelta(days=16)
    device = push_service.subscribe()
    settings = app.config["EBOX"]
    subscribe(
        citizen_id=ria.id,
        subscription=parse_subscription(device.to_json(), settings),
        user_agent="Mozilla/5.0 (Android 15) Firefox/140.0",
    )
    db.session.commit()
    jobs = Queue(QUEUE, connection=redis)

    for _ in range(2):  # the day triggered twice: one mail, one push
        jobs.enqueue(start_daily_alerts, services.platform_today().isoformat())
        work(app, jobs)

    assert jobs.failed_job_registry.get_job_ids() == []
    [mail] = mails_to(smtp_server, ria)
    assert mail["Subject"] == "Documents in your eBox are still unread"
    text = str(mail.get_body(("plain",)).get_content())  # type: ignore[union-attr]
    assert "Still unread 15 days after they arrived" in text
    assert "Federal Pension Service: 1 document" in text
    assert "Waiting since long" not in text
    [push] = push_service.pushes_to(device)
    assert b"Waiting since long" not in push.payload
    assert b"Federal Pension" not in push.payload
    assert push.message == {"title": "eBox", "body": "1 document is still unread."}


DEPLOY = datetime(2026, 11, 30, 10, 10, tzinfo=UTC)


def test_two_deploys_leave_one_scheduled_job_per_periodic_job(app: Flask, redis: Redis) -> None:
    jobs = Queue(QUEUE, connection=redis)

    first = ensure_scheduled(jobs, now=DEPLOY)
    second = ensure_scheduled(jobs, now=DEPLOY + timedelta(minutes=7))

    assert (
        first
        == second
        == [
            "ebox-schedule-alerts-20261201T0600Z",  # 07:00 in Brussels (winter time)
            "ebox-schedule-purge-20261130T1100Z",
            "ebox-schedule-orphans-20261201T0230Z",  # 03:30 in Brussels
            "ebox-schedule-saml-assertions-20261130T1100Z",
            "ebox-schedule-missing-proofs-20261130T1020Z",
            "ebox-schedule-old-evidence-20261201T0300Z",  # 04:00 in Brussels
            "ebox-schedule-unconfirmed-applications-20261130T1100Z",
            "ebox-schedule-wss-seen-requests-20261130T1020Z",
            "ebox-schedule-api-idempotency-keys-20261130T1100Z",
        ]
    )
    registry = jobs.scheduled_job_registry
    assert sorted(registry.get_job_ids()) == sorted(first)
    assert registry.get_scheduled_time(first[0]) == datetime(2026, 12, 1, 6, 0, tzinfo=UTC)
    assert registry.get_scheduled_time(first[1]) == datetime(2026, 11, 30, 11, 0, tzinfo=UTC)
    assert jobs.count == 0  # nothing runs before its time


def test_an_occurrence_missed_while_no_worker_ran_runs_late_and_books_the_next(
    app: Flask, redis: Redis
) -> None:
    jobs = Queue(QUEUE, connection=redis)
    missed = ensure_scheduled(jobs, now=utcnow() - timedelta(days=2))
    booked_after = utcnow()

    work(app, jobs, with_scheduler=True)  # the scheduler finds the occurrences due: all four

    assert sorted(jobs.finished_job_registry.get_job_ids()) == sorted(missed)
    assert jobs.failed_job_registry.get_job_ids() == []
    assert db.session.get(AlertRun, services.platform_today()) is not None  # the alert ran
    # Each booked its next occurrence, in the future, exactly once per periodic job.
    booked_before = utcnow()
    registry = jobs.scheduled_job_registry
    scheduled = registry.get_job_ids()
    assert len(scheduled) == len(periodic_jobs(app.config["EBOX"]))
    for periodic in periodic_jobs(app.config["EBOX"]):
        [job_id] = [i for i in scheduled if i.startswith(f"ebox-schedule-{periodic.name}-2")]
        at = registry.get_scheduled_time(job_id)
        assert at in {periodic.next_time(booked_after), periodic.next_time(booked_before)}
        assert at > booked_after
    # A deploy now finds them booked already.
    ensure_scheduled(jobs)
    assert sorted(registry.get_job_ids()) == sorted(scheduled)


def test_run_periodic_books_the_next_occurrence_before_the_work(app: Flask, redis: Redis) -> None:
    jobs = Queue(QUEUE, connection=redis)
    before = utcnow()

    jobs.enqueue(run_periodic, "alerts")
    work(app, jobs)

    after = utcnow()
    [job_id] = jobs.scheduled_job_registry.get_job_ids()
    [alerts] = [p for p in periodic_jobs(app.config["EBOX"]) if p.name == "alerts"]
    expected = {alerts.next_time(before), alerts.next_time(after)}
    assert jobs.scheduled_job_registry.get_scheduled_time(job_id) in expected
    assert job_id in {f"ebox-schedule-alerts-{at:%Y%m%dT%H%MZ}" for at in expected}
    assert db.session.get(AlertRun, services.platform_today()) is not None


def test_a_failed_occurrence_is_tried_again_within_minutes_not_the_next_day(
    app: Flask, redis: Redis, monkeypatch: pytest.MonkeyPatch
) -> None:
    jobs = Queue(QUEUE, connection=redis)
    [occurrence] = [
        job_id
        for job_id in ensure_scheduled(jobs, now=utcnow() - timedelta(days=2))
        if job_id.startswith("ebox-schedule-alerts-")
    ]
    start_run = services.start_run

    def database_restarting(*args: object) -> AlertRun:
        raise OperationalError("SELECT", {}, Exception("the database system is starting up"))

    monkeypatch.setattr(services, "start_run", database_restarting)
    failed_at = utcnow()
    work(app, jobs, with_scheduler=True)

    # Not failed for good: booked again a minute later, with two more tries left.
    assert occurrence not in jobs.failed_job_registry.get_job_ids()
    retry_at = jobs.scheduled_job_registry.get_scheduled_time(occurrence)
    assert failed_at + timedelta(seconds=55) < retry_at < utcnow() + timedelta(seconds=65)
    job = jobs.fetch_job(occurrence)
    assert job is not None and job.retries_left == len(RETRY_SECONDS) - 1
    assert db.session.get(AlertRun, services.platform_today()) is None

    monkeypatch.setattr(services, "start_run", start_run)
    # A minute later RQ's scheduler queues it again (its own part, not retested here: a second
    # scheduler in the same second may find the first one's lock and wait).
    jobs.scheduled_job_registry.remove(job)
    jobs.enqueue_job(job)
    work(app, jobs)

    assert occurrence in jobs.finished_job_registry.get_job_ids()
    assert db.session.get(AlertRun, services.platform_today()) is not None
