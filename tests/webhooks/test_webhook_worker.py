"""Deliveries as the worker makes them: queued once the publication commits, retried by RQ's
scheduler after a failure, and picked up by the periodic sweep when the request was lost."""

from __future__ import annotations

import time

import pytest
from flask import Flask
from redis import Redis
from rq import Queue
from sqlalchemy import select, text

from ebox import transactions
from ebox.audit.services import SYSTEM
from ebox.config import Settings
from ebox.extensions import db
from ebox.jobs import QUEUE, AppWorker
from ebox.senders.models import MessageType
from ebox.webhooks.delivery import finish_run
from ebox.webhooks.jobs import deliver_due
from ebox.webhooks.models import WebhookSubscription
from ebox.webhooks.services import create_subscription
from tests.events.events_helpers import all_events, settled
from tests.factories import create_citizen, create_document, create_message_type
from tests.webhooks.receiver import FAIL, Receiver

pytestmark = pytest.mark.slow


def work(app: Flask, settings: Settings, *, with_scheduler: bool = False) -> None:
    jobs = Queue(QUEUE, connection=Redis.from_url(settings.redis_url))
    AppWorker([jobs], connection=jobs.connection, app=app).work(
        burst=True, with_scheduler=with_scheduler
    )
    db.session.expire_all()


def subscribed(receiver: Receiver, settings: Settings) -> MessageType:
    """A new sender's message type, the sender subscribed with receiver."""
    message_type = create_message_type()
    created = create_subscription(
        sender=message_type.sender,
        url=receiver.url,
        event_types=None,
        settings=settings,
        actor=SYSTEM,
    )
    transactions.commit()
    receiver.secret = created.secret
    return message_type


def failed_once(app: Flask, receiver: Receiver, settings: Settings) -> WebhookSubscription:
    """A subscription whose first delivery (of two events) the worker made and the receiver
    refused: it backs off, its retry scheduled."""
    message_type = subscribed(receiver, settings)
    receiver.behaviours = [FAIL]

    citizen = create_citizen()
    create_document(citizen, message_type=message_type, commit=False)
    create_document(citizen, message_type=message_type, commit=False)
    transactions.commit()  # queues the sender's deliveries
    settled()
    work(app, settings)
    assert receiver.attempts == 1 and receiver.accepted == []
    subscription = db.session.scalars(
        select(WebhookSubscription).filter_by(sender_id=message_type.sender_id)
    ).one()
    assert subscription.next_attempt_at is not None
    return subscription


def work_when_due(app: Flask, settings: Settings) -> None:
    """Run the worker with its scheduler once the scheduled jobs may start."""
    time.sleep(max(max(scheduled_retries(settings)) - time.time(), 0) + 0.1)
    work(app, settings, with_scheduler=True)


def scheduled_retries(settings: Settings) -> list[float]:
    """When RQ's scheduler starts the scheduled jobs: as soon as the second each is filed under
    has begun."""
    registry = Queue(QUEUE, connection=Redis.from_url(settings.redis_url)).scheduled_job_registry
    return [
        float(registry.connection.zscore(registry.key, job_id) or 0)
        for job_id in registry.get_job_ids()
    ]


def test_the_worker_delivers_after_the_commit_and_retries_a_failure(
    app: Flask, receiver: Receiver, webhook_settings: Settings
) -> None:
    subscription = failed_once(app, receiver, webhook_settings)
    work_when_due(app, webhook_settings)
    expected = [event.public_id for event in all_events(subscription.sender_id)]
    assert receiver.accepted_ids == expected and len(expected) == 2


def test_a_retry_never_starts_before_the_back_off_ends_and_one_started_early_comes_again(
    app: Flask, receiver: Receiver, webhook_settings: Settings
) -> None:
    webhook_settings.webhook_retry_base_seconds = 3  # time to start the retry early
    subscription = failed_once(app, receiver, webhook_settings)
    assert subscription.next_attempt_at is not None
    due = subscription.next_attempt_at.timestamp()
    assert [start >= due for start in scheduled_retries(webhook_settings)] == [True]

    # Started before the back-off ends (as a scheduler on a host whose clock is ahead would).
    jobs = Queue(QUEUE, connection=Redis.from_url(webhook_settings.redis_url))
    for job in jobs.scheduled_job_registry.get_job_ids():
        jobs.scheduled_job_registry.remove(job)
        jobs.enqueue_job(jobs.fetch_job(job))  # type: ignore[arg-type]
    work(app, webhook_settings)
    assert receiver.attempts == 1  # not due yet: the receiver is left alone
    assert [start >= due for start in scheduled_retries(webhook_settings)] == [True]

    work_when_due(app, webhook_settings)
    assert len(receiver.accepted) == 2 and receiver.attempts == 3
    assert scheduled_retries(webhook_settings) == []


def test_a_retry_that_finds_another_run_delivering_comes_again(
    app: Flask, receiver: Receiver, webhook_settings: Settings
) -> None:
    subscription = failed_once(app, receiver, webhook_settings)
    redis = Redis.from_url(webhook_settings.redis_url)
    other_run = redis.lock(f"ebox:webhook:{subscription.id}", timeout=30)
    assert other_run.acquire(blocking=False)
    work_when_due(app, webhook_settings)  # finds the lock taken
    assert receiver.attempts == 1 and len(scheduled_retries(webhook_settings)) == 1
    other_run.release()  # it found nothing due

    work_when_due(app, webhook_settings)
    assert len(receiver.accepted) == 2 and scheduled_retries(webhook_settings) == []


def test_new_events_a_run_in_progress_had_stopped_looking_for_are_delivered_after_it(
    app: Flask, receiver: Receiver, webhook_settings: Settings
) -> None:
    """A publication's delivery finds another run holding the subscription, one that has looked
    for events for the last time: the note it leaves makes that run queue one more as it lets
    go, so the event does not wait for the sweep."""
    message_type = subscribed(receiver, webhook_settings)
    subscription = db.session.scalars(
        select(WebhookSubscription).filter_by(sender_id=message_type.sender_id)
    ).one()
    redis = Redis.from_url(webhook_settings.redis_url)
    holder = redis.lock(f"ebox:webhook:{subscription.id}", timeout=30)
    assert holder.acquire(blocking=False)  # the run in progress, past its last look

    create_document(create_citizen(), message_type=message_type, commit=False)
    transactions.commit()  # queues the sender's delivery
    settled()
    work(app, webhook_settings)  # that delivery finds the subscription held, leaves a note
    assert receiver.attempts == 0

    finish_run(redis, subscription.id, holder)  # the run in progress ends
    work(app, webhook_settings)
    expected = [event.public_id for event in all_events(message_type.sender_id)]
    assert receiver.accepted_ids == expected and len(expected) == 1
    finish_run(redis, subscription.id, holder)  # no note left: nothing more is queued
    assert Queue(QUEUE, connection=redis).count == 0


@pytest.mark.postgres_only
def test_events_an_older_transaction_holds_back_are_delivered_soon_after_it_ends(
    app: Flask, receiver: Receiver, webhook_settings: Settings
) -> None:
    message_type = subscribed(receiver, webhook_settings)
    with db.engine.connect() as other:
        other.execute(text("SELECT pg_current_xact_id()"))  # began before the publication
        create_document(create_citizen(), message_type=message_type, commit=False)
        transactions.commit()  # queues the sender's deliveries
        work(app, webhook_settings)
        assert receiver.attempts == 0  # its event is not served yet
        other.rollback()
    assert len(scheduled_retries(webhook_settings)) == 1  # it comes again, not the sweep
    settled()  # and the transactions of other tests on the server, which hold it back too
    work_when_due(app, webhook_settings)
    assert len(receiver.accepted) == 1 and scheduled_retries(webhook_settings) == []


def test_the_sweep_queues_what_no_request_announced(
    app: Flask, receiver: Receiver, webhook_settings: Settings
) -> None:
    message_type = subscribed(receiver, webhook_settings)
    create_document(create_citizen(), message_type=message_type)  # commits: nothing queued
    settled()
    work(app, webhook_settings)
    assert receiver.attempts == 0

    assert deliver_due() == 1
    work(app, webhook_settings)
    assert len(receiver.accepted) == 1
    assert deliver_due() == 0  # nothing pending any more
