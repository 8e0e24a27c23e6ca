"""Webhooks end to end, from outside: a back office subscribes over the API, publishes over the
API, and its receiver on loopback (verifying every delivery with the standardwebhooks package)
fails the first deliveries. A real eBox RQ worker delivers and retries. In the end the receiver
has every event once, in order: exactly the events GET /api/v1/events serves."""

from __future__ import annotations

import time
from collections.abc import Iterator
from typing import Any

import pytest
import requests
from flask import Flask
from redis import Redis
from rq import Queue

from ebox.config import Settings
from ebox.demo.pdf import make_pdf
from ebox.extensions import db
from ebox.jobs import QUEUE, AppWorker
from tests.api.api_helpers import bearer, live_access_token, message_part, publish_live
from tests.api.conftest import ApiSender
from tests.conftest import FAST_WEBHOOKS, settings_changed
from tests.factories import create_citizen, login
from tests.live_server import LiveServer
from tests.webhooks.receiver import FAIL, Receiver, running_receiver

PUBLICATIONS = 3


@pytest.fixture
def served_settings(api_server: LiveServer, empty_redis_url: str) -> Iterator[Settings]:
    """The served eBox's settings for this test: loopback receivers allowed (development only),
    a one-second back-off and time-out; its Redis is this process's own, emptied."""
    settings: Settings = api_server.app.config["EBOX"]
    assert settings.redis_url == empty_redis_url
    with settings_changed(settings, **FAST_WEBHOOKS):
        yield settings


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    with running_receiver() as running:
        yield running


def work_until(app: Flask, redis_url: str, done: Any, *, timeout: float = 30.0) -> None:
    """Run eBox's worker (burst mode, with its scheduler, which queues retries when they are
    due) again and again until done() or the time-out. Not the periodic sweep: the retries
    alone must deliver."""
    connection = Redis.from_url(redis_url)
    jobs = Queue(QUEUE, connection=connection)
    deadline = time.monotonic() + timeout
    try:
        while not done():
            assert time.monotonic() < deadline, "the worker did not deliver in time"
            worker = AppWorker([jobs], connection=connection, app=app)
            worker.work(burst=True, with_scheduler=True, logging_level="WARNING")
            time.sleep(0.2)
    finally:
        connection.close()


def pulled_events(base_url: str, token: str) -> list[dict[str, Any]]:
    """Every event GET /api/v1/events serves, page after page, as a back office pulls them."""
    found: list[dict[str, Any]] = []
    cursor = None
    while True:
        params = {"limit": 2, **({"after": cursor} if cursor else {})}
        answer = requests.get(
            f"{base_url}/api/v1/events", params=params, headers=bearer(token), timeout=30
        )
        assert answer.status_code == 200, answer.text
        page = answer.json()
        if not page["events"]:
            return found
        found += page["events"]
        cursor = page["next"]


def test_the_receiver_gets_every_event_once_in_order_after_failures(
    api_server: LiveServer,
    served_settings: Settings,
    api_sender: ApiSender,
    receiver: Receiver,
) -> None:
    recipient = create_citizen().national_number
    db.session.commit()  # an open transaction of this test would hold back events after it
    token = live_access_token(api_server.url, api_sender.identity, api_sender.client_id)
    created = requests.post(
        f"{api_server.url}/api/v1/webhooks",
        json={"url": receiver.url},
        headers=bearer(token),
        timeout=30,
    )
    assert created.status_code == 201, created.text
    receiver.secret = created.json()["secret"]
    receiver.behaviours = [FAIL, FAIL]

    documents = [("letter.pdf", "application/pdf", make_pdf("Letter", ["A letter"]))]
    for _ in range(PUBLICATIONS):
        message = message_part(recipient, api_sender.message_type.code, documents)
        answer = publish_live(api_server.url, token, message, documents)
        assert answer.status_code == 201, answer.text

    started = time.monotonic()
    work_until(api_server.app, served_settings.redis_url, lambda: len(receiver.accepted) >= 3)
    assert time.monotonic() - started < 10  # back-offs of about 1 and 2 s, not the sweep's 60

    pulled = pulled_events(api_server.url, token)
    assert [event["type"] for event in pulled] == ["message.published"] * PUBLICATIONS
    assert receiver.accepted == pulled  # the same JSON, once each, in the same order
    assert len(set(receiver.accepted_ids)) == PUBLICATIONS
    assert receiver.unverified == 0
    assert receiver.attempts == PUBLICATIONS + 2  # two refused, then each event once

    webhook = requests.get(
        f"{api_server.url}/api/v1/webhooks/{created.json()['id']}",
        headers=bearer(token),
        timeout=30,
    ).json()
    assert (webhook["active"], webhook["failingSince"], webhook["lastDeliveryAt"] is not None) == (
        True,
        None,
        True,
    )


def test_the_citizens_reading_reaches_the_senders_webhook_and_its_events(
    api_server: LiveServer,
    served_settings: Settings,
    api_sender: ApiSender,
    receiver: Receiver,
) -> None:
    """The issue's whole journey: published over REST, read by the citizen in eBox's portal,
    the reading pushed to the sender's webhook and pulled from its events, the same."""
    citizen = create_citizen()
    db.session.commit()
    token = live_access_token(api_server.url, api_sender.identity, api_sender.client_id)
    created = requests.post(
        f"{api_server.url}/api/v1/webhooks",
        json={"url": receiver.url, "eventTypes": ["message.published", "message.read"]},
        headers=bearer(token),
        timeout=30,
    )
    assert created.status_code == 201, created.text
    receiver.secret = created.json()["secret"]
    documents = [("letter.pdf", "application/pdf", make_pdf("Letter", ["A letter"]))]
    message = message_part(citizen.national_number, api_sender.message_type.code, documents)
    published = publish_live(api_server.url, token, message, documents)
    assert published.status_code == 201, published.text
    message_id = published.json()["id"]

    portal = api_server.app.test_client()
    login(portal, citizen)
    assert portal.get(f"/documents/{message_id}").status_code == 200
    db.session.remove()  # nothing of this test's own stays open to hold events back

    work_until(api_server.app, served_settings.redis_url, lambda: len(receiver.accepted) >= 2)
    assert [(event["type"], event["messageId"]) for event in receiver.accepted] == [
        ("message.published", message_id),
        ("message.read", message_id),
    ]
    assert receiver.accepted == pulled_events(api_server.url, token)
    status = requests.get(
        f"{api_server.url}/api/v1/messages/{message_id}", headers=bearer(token), timeout=30
    ).json()
    assert status["status"] == "read"
    assert receiver.accepted[1]["time"] == status["readAt"]
