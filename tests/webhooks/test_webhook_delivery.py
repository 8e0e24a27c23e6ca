"""Deliveries: signed, in order, at least once; backing off after a failure, disabled after a
day of failures, and never sent where a URL may not lead."""

from __future__ import annotations

import base64
from datetime import datetime, timedelta

import pytest
from flask import Flask
from flask.testing import FlaskClient

from ebox.audit.services import SYSTEM
from ebox.config import Settings
from ebox.db_types import utcnow
from ebox.extensions import db
from ebox.mailbox.services import mark_read
from ebox.senders.models import MessageType
from ebox.webhooks.delivery import deliver_pending
from ebox.webhooks.models import WebhookSubscription
from ebox.webhooks.services import (
    TOO_MANY_WEBHOOKS,
    WEBHOOK_URL_REFUSED,
    WebhookRefused,
    create_subscription,
)
from tests.admin.admin_helpers import log_in_staff, staff_post
from tests.events.events_helpers import all_events, settled
from tests.factories import create_citizen, create_document, create_message_type
from tests.metrics_helpers import sample_value, scrape
from tests.webhooks.receiver import FAIL, HANG, Receiver


@pytest.fixture
def message_type(app: Flask) -> MessageType:
    return create_message_type()


def subscribe(
    message_type: MessageType, receiver: Receiver, settings: Settings, **changes: object
) -> WebhookSubscription:
    created = create_subscription(
        sender=message_type.sender,
        url=str(changes.get("url", receiver.url)),
        event_types=changes.get("event_types"),  # type: ignore[arg-type]
        settings=settings,
        actor=SYSTEM,
    )
    db.session.commit()
    receiver.secret = created.secret
    return created.subscription


def reloaded(subscription: WebhookSubscription) -> WebhookSubscription:
    db.session.rollback()
    found = db.session.get(WebhookSubscription, subscription.id)
    assert found is not None
    return found


def publish_some(message_type: MessageType, count: int) -> None:
    citizen = create_citizen()
    documents = [create_document(citizen, message_type=message_type) for _ in range(count)]
    mark_read(document=documents[0])
    db.session.commit()
    settled()


def delivery_counts(client: FlaskClient) -> dict[str, float]:
    exposed = scrape(client)
    return {
        result: sample_value(exposed, f'ebox_webhook_deliveries_total{{result="{result}"}}')
        for result in ("ok", "failed", "disabled")
    }


def test_after_failures_and_retries_the_receiver_has_every_event_once_in_order(
    message_type: MessageType, receiver: Receiver, webhook_settings: Settings, client: FlaskClient
) -> None:
    db.session.commit()
    message_type_id = message_type.id
    counted_before = delivery_counts(client)  # the request's end closes the test's session
    message_type = db.session.get(MessageType, message_type_id)
    subscription = subscribe(message_type, receiver, webhook_settings)
    publish_some(message_type, 3)
    receiver.behaviours = [FAIL, HANG]

    now = utcnow()
    assert deliver_pending(subscription.id, now=now) == 0
    failed = reloaded(subscription)
    assert (failed.failures, failed.last_error) == (1, "the receiver answered HTTP 500")
    assert failed.failing_since == now and failed.next_attempt_at is not None
    assert 0.75 <= (failed.next_attempt_at - now).total_seconds() <= 1.0
    assert deliver_pending(subscription.id, now=now) == 0  # backing off: nobody is called
    assert receiver.attempts == 1

    now = failed.next_attempt_at
    assert deliver_pending(subscription.id, now=now) == 0
    timed_out = reloaded(subscription)
    assert timed_out.last_error == "no answer from the receiver (timed out)"
    assert timed_out.failures == 2 and timed_out.next_attempt_at is not None
    assert 1.5 <= (timed_out.next_attempt_at - now).total_seconds() <= 2.0

    assert deliver_pending(subscription.id, now=timed_out.next_attempt_at) == 4
    expected = [event.public_id for event in all_events(message_type.sender_id)]
    assert receiver.accepted_ids == expected and len(set(expected)) == 4
    assert receiver.unverified == 0 and receiver.attempts == 6
    assert [event["type"] for event in receiver.accepted] == [
        "message.published",
        "message.published",
        "message.published",
        "message.read",
    ]
    healthy = reloaded(subscription)
    assert (healthy.failures, healthy.failing_since, healthy.next_attempt_at) == (0, None, None)
    assert deliver_pending(subscription.id) == 0  # nothing left: nothing sent again
    assert receiver.attempts == 6
    counted = delivery_counts(client)
    assert {result: counted[result] - counted_before[result] for result in counted} == {
        "ok": 4,
        "failed": 2,
        "disabled": 0,
    }


def test_only_the_chosen_types_are_delivered_from_the_subscription_on(
    message_type: MessageType, receiver: Receiver, webhook_settings: Settings
) -> None:
    publish_some(message_type, 1)  # before the subscription: not delivered
    subscription = subscribe(message_type, receiver, webhook_settings, event_types=["message.read"])
    publish_some(message_type, 2)
    assert deliver_pending(subscription.id) == 1
    assert [event["type"] for event in receiver.accepted] == ["message.read"]


def fail_for(subscription: WebhookSubscription, start: datetime, hours: float) -> None:
    """Run the retries of a subscription whose receiver always fails, for hours."""
    now = start
    while now < start + timedelta(hours=hours):
        deliver_pending(subscription.id, now=now)
        current = reloaded(subscription)
        if not current.is_active:
            return
        assert current.next_attempt_at is not None
        assert current.next_attempt_at - now <= timedelta(hours=1)  # capped
        now = current.next_attempt_at


def test_a_subscription_failing_for_a_day_is_disabled_and_staff_see_why_and_turn_it_on(
    message_type: MessageType,
    receiver: Receiver,
    webhook_settings: Settings,
    client: FlaskClient,
) -> None:
    subscription = subscribe(message_type, receiver, webhook_settings)
    publish_some(message_type, 1)
    receiver.behaviours = [FAIL] * 100
    start = utcnow()

    fail_for(subscription, start, hours=23)
    assert reloaded(subscription).is_active
    fail_for(subscription, start + timedelta(hours=23), hours=3)
    disabled = reloaded(subscription)
    assert not disabled.is_active and disabled.disabled_at is not None
    assert disabled.disabled_at - start >= timedelta(hours=24)
    assert disabled.disabled_reason is not None
    assert "last error: the receiver answered HTTP 500" in disabled.disabled_reason
    attempts = receiver.attempts
    assert deliver_pending(subscription.id) == 0 and receiver.attempts == attempts

    log_in_staff(client, "admin")
    page = f"/admin/senders/{message_type.sender_id}"
    html = client.get(page).get_data(as_text=True)
    assert "127.0.0.1" in html and "disabled" in html
    assert "last error: the receiver answered HTTP 500" in html
    assert "source=test" not in html  # the host only, not the URL's path or query

    receiver.behaviours = []
    action = f"{page}/webhooks/{subscription.id}/enable"
    assert staff_post(client, page, action).status_code == 303
    enabled = reloaded(subscription)
    assert enabled.is_active and enabled.disabled_reason is None and enabled.failures == 0
    assert deliver_pending(subscription.id) == 2
    assert len(receiver.accepted) == 2


@pytest.mark.parametrize(
    "url",
    [
        "http://127.0.0.1:8080/hook",
        "http://localhost/hook",  # a name that resolves to loopback
        "http://[::1]/hook",
        "http://10.1.2.3/hook",
        "http://192.168.0.10/hook",
        "http://169.254.169.254/latest/meta-data",
        "http://0.0.0.0/hook",
        "http://224.0.0.1/hook",
        "http://[fe80::1]/hook",
        "http://user:pw@93.184.215.14/hook",
        "ftp://93.184.215.14/hook",
        "http://exa mple..be/hook",
    ],
)
def test_addresses_a_webhook_must_not_reach_are_refused(
    message_type: MessageType, webhook_settings: Settings, url: str
) -> None:
    webhook_settings.webhook_allow_loopback = False
    assert refusal_of(message_type, url, webhook_settings).code == WEBHOOK_URL_REFUSED


def refusal_of(message_type: MessageType, url: str, settings: Settings) -> WebhookRefused:
    """Why a subscription of the message type's sender to url is refused."""
    with pytest.raises(WebhookRefused) as refused:
        create_subscription(
            sender=message_type.sender, url=url, event_types=None, settings=settings, actor=SYSTEM
        )
    return refused.value


def test_production_takes_https_only_and_never_loopback(
    message_type: MessageType, webhook_settings: Settings
) -> None:
    webhook_settings.env = "production"
    try:
        for url in ("http://93.184.215.14/hook", "https://127.0.0.1/hook"):
            refusal = refusal_of(message_type, url, webhook_settings)
            assert "https" in str(refusal) or "loopback" in str(refusal), refusal
        assert "EBOX_WEBHOOK_ALLOW_LOOPBACK is on" in " ".join(
            webhook_settings.problems_for_production()
        )
    finally:
        webhook_settings.env = "test"


def test_the_address_is_checked_again_at_each_delivery(
    message_type: MessageType, receiver: Receiver, webhook_settings: Settings
) -> None:
    subscription = subscribe(message_type, receiver, webhook_settings)
    publish_some(message_type, 1)
    webhook_settings.webhook_allow_loopback = False  # as if the name now led to loopback
    assert deliver_pending(subscription.id) == 0
    assert receiver.attempts == 0
    assert reloaded(subscription).last_error == "The URL's host is a loopback address."


def test_a_sender_has_at_most_ten_subscriptions(
    message_type: MessageType, receiver: Receiver, webhook_settings: Settings
) -> None:
    for _ in range(10):
        subscribe(message_type, receiver, webhook_settings)
    with pytest.raises(WebhookRefused) as refused:
        subscribe(message_type, receiver, webhook_settings)
    assert refused.value.code == TOO_MANY_WEBHOOKS


def test_the_secret_is_not_in_the_database_in_clear(
    message_type: MessageType, receiver: Receiver, webhook_settings: Settings
) -> None:
    subscribe(message_type, receiver, webhook_settings)
    raw = base64.b64decode(receiver.secret.removeprefix("whsec_"))
    assert len(raw) == 32
    stored = db.session.scalars(db.select(WebhookSubscription.secret_wrapped)).one()
    assert raw not in stored and receiver.secret.encode() not in stored
