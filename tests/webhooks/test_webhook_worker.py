"""Deliveries as the worker makes them: queued once the publication commits, retried by RQ's
scheduler after a failure, and picked up by the periodic sweep when the request was lost."""

from __future__ import annotations

import time

import pytest
from flask import Flask
from redis import Redis
from rq import Queue

from ebox import transactions
from ebox.audit.services import SYSTEM
from ebox.config import Settings
from ebox.db_types import utcnow
from ebox.extensions import db
from ebox.jobs import QUEUE, AppWorker
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


def test_the_worker_delivers_after_the_commit_and_retries_a_failure(
    app: Flask, receiver: Receiver, webhook_settings: Settings
) -> None:
    message_type = create_message_type()
    created = create_subscription(
        sender=message_type.sender,
        url=receiver.url,
        event_types=None,
        settings=webhook_settings,
        actor=SYSTEM,
    )
    transactions.commit()
    receiver.secret = created.secret
    receiver.behaviours = [FAIL]

    citizen = create_citizen()
    create_document(citizen, message_type=message_type, commit=False)
    create_document(citizen, message_type=message_type, commit=False)
    transactions.commit()  # queues the sender's deliveries
    settled()
    work(app, webhook_settings)
    assert receiver.attempts == 1 and receiver.accepted == []

    subscription = db.session.get(WebhookSubscription, created.subscription.id)
    assert subscription is not None and subscription.next_attempt_at is not None
    time.sleep(max((subscription.next_attempt_at - utcnow()).total_seconds(), 0) + 0.2)
    work(app, webhook_settings, with_scheduler=True)

    expected = [event.public_id for event in all_events(message_type.sender_id)]
    assert receiver.accepted_ids == expected and len(expected) == 2


def test_the_sweep_queues_what_no_request_announced(
    app: Flask, receiver: Receiver, webhook_settings: Settings
) -> None:
    message_type = create_message_type()
    created = create_subscription(
        sender=message_type.sender,
        url=receiver.url,
        event_types=None,
        settings=webhook_settings,
        actor=SYSTEM,
    )
    db.session.commit()
    receiver.secret = created.secret
    create_document(create_citizen(), message_type=message_type)  # commits: nothing queued
    settled()
    work(app, webhook_settings)
    assert receiver.attempts == 0

    assert deliver_due() == 1
    work(app, webhook_settings)
    assert len(receiver.accepted) == 1
    assert deliver_due() == 0  # nothing pending any more
