"""The daily alert as a push, on the devices a citizen allowed: run as the operator's command
runs the alert, into a real SMTP server and a push service on loopback that checks the VAPID
signature and decrypts each push with the subscription's keys, as a browser would."""

from __future__ import annotations

from datetime import timedelta

import pytest
from flask import Flask
from sqlalchemy import select

from ebox.accounts.models import Citizen
from ebox.alerts.models import SENT, AlertDelivery
from ebox.config import Settings
from ebox.db_types import utcnow
from ebox.extensions import db
from ebox.push import keys
from ebox.push.endpoints import parse_subscription
from ebox.push.models import PushSubscription
from ebox.push.sending import DROP_AFTER
from ebox.push.services import subscribe
from ebox.senders.models import MessageType
from tests.alerts.test_alert_rules import TODAY, mails_to, person, run
from tests.factories import create_document, create_message_type, create_sender
from tests.mail.smtp_server import Received
from tests.push.push_service import BrowserSubscription, PushService


@pytest.fixture
def pensions() -> MessageType:
    return create_message_type(create_sender(name="Federal Pension Service"), code="PENSION")


def allow_pushes(citizen: Citizen, service: PushService, settings: Settings) -> BrowserSubscription:
    """A device of citizen subscribes, as the profile page's button does."""
    browser = service.subscribe()
    subscribe(
        citizen_id=citizen.id,
        subscription=parse_subscription(browser.to_json(), settings),
        user_agent="Mozilla/5.0 (Android 15) Firefox/140.0",
    )
    db.session.commit()
    return browser


def test_the_daily_alert_arrives_once_on_each_device_and_says_only_counts(
    app: Flask, smtp_server: Received, push_service: PushService, pensions: MessageType
) -> None:
    settings = app.config["EBOX"]
    anna = person("Anna")
    phone = allow_pushes(anna, push_service, settings)
    laptop = allow_pushes(anna, push_service, settings)
    create_document(anna, message_type=pensions, title="Secret pension amount")
    create_document(anna, message_type=pensions, title="Second pension letter")
    bert = person("Bert")  # news, but no device
    create_document(bert, message_type=pensions)
    cleo = person("Cleo")  # a device, but no news: no alert, so no push
    cleo_phone = allow_pushes(cleo, push_service, settings)

    run()

    assert len(mails_to(smtp_server, anna)) == 1 and len(mails_to(smtp_server, bert)) == 1
    assert not push_service.refused
    for device in (phone, laptop):
        [push] = push_service.pushes_to(device)
        assert push.message == {"title": "eBox", "body": "You have 2 new documents in your eBox."}
        for secret in ("Secret pension amount", "Second pension letter", "Federal Pension"):
            assert secret.encode() not in push.payload
        assert push.vapid_key == keys.public_key(settings)
        assert push.claims["sub"] == settings.push_vapid_subject
        assert push.headers["ttl"] == str(24 * 3600)
        assert push.headers["urgency"] == "normal"
    assert push_service.pushes_to(cleo_phone) == []
    stored = db.session.scalars(select(PushSubscription)).all()
    assert all(row.last_success_at is not None for row in stored if row.citizen_id == anna.id)

    # The same day again: no e-mail, no push.
    run()
    assert len(mails_to(smtp_server, anna)) == 1
    assert len(push_service.pushes) == 2


def test_the_push_is_in_the_citizens_language_with_every_kind_of_news(
    app: Flask, smtp_server: Received, push_service: PushService, pensions: MessageType
) -> None:
    dirk = person("Dirk", language="nl")
    device = allow_pushes(dirk, push_service, app.config["EBOX"])
    create_document(dirk, message_type=pensions)
    create_document(dirk, message_type=pensions, expires_at=utcnow() + timedelta(days=2))

    run()

    [push] = push_service.pushes_to(device)
    body = push.message["body"]
    assert "2 nieuwe documenten" in body
    assert "1 ongelezen document wordt binnenkort verwijderd." in body


def test_a_subscription_the_push_service_says_is_gone_is_dropped_and_the_mail_still_sent(
    app: Flask, smtp_server: Received, push_service: PushService, pensions: MessageType
) -> None:
    settings = app.config["EBOX"]
    emma = person("Emma")
    gone = allow_pushes(emma, push_service, settings)
    kept = allow_pushes(emma, push_service, settings)
    push_service.answers[gone.token] = 410
    create_document(emma, message_type=pensions)

    run()

    assert len(mails_to(smtp_server, emma)) == 1
    [delivery] = db.session.scalars(select(AlertDelivery)).all()
    assert delivery.status == SENT
    endpoints = db.session.scalars(select(PushSubscription.endpoint)).all()
    assert endpoints == [kept.endpoint]


def test_a_push_service_that_keeps_failing_loses_its_subscription_after_some_days(
    app: Flask, smtp_server: Received, push_service: PushService, pensions: MessageType
) -> None:
    settings = app.config["EBOX"]
    fons = person("Fons")
    device = allow_pushes(fons, push_service, settings)
    push_service.answers[device.token] = 500
    create_document(fons, message_type=pensions)

    run()

    [row] = db.session.scalars(select(PushSubscription)).all()
    assert row.failures == 1 and row.failing_since is not None
    assert row.last_error == "push service answered 500"
    # Failing since longer than DROP_AFTER when the next alert's push fails too: dropped.
    row.failing_since = utcnow() - DROP_AFTER - timedelta(hours=1)
    db.session.commit()
    create_document(fons, message_type=pensions)
    run(TODAY + timedelta(days=1))

    assert len(push_service.pushes_to(device)) == 2
    assert db.session.scalars(select(PushSubscription)).all() == []


def test_no_push_goes_to_an_endpoint_the_settings_no_longer_allow(
    app: Flask, smtp_server: Received, push_service: PushService, pensions: MessageType
) -> None:
    settings = app.config["EBOX"]
    gert = person("Gert")
    device = allow_pushes(gert, push_service, settings)
    create_document(gert, message_type=pensions)
    settings.env = "production"  # loopback endpoints are refused in production
    try:
        run()
    finally:
        settings.env = "test"

    assert len(mails_to(smtp_server, gert)) == 1
    assert push_service.pushes_to(device) == []
    assert len(db.session.scalars(select(PushSubscription)).all()) == 1  # kept, not sent to


def test_no_push_when_pushes_are_off(
    app: Flask, smtp_server: Received, push_service: PushService, pensions: MessageType
) -> None:
    settings = app.config["EBOX"]
    hilde = person("Hilde")
    device = allow_pushes(hilde, push_service, settings)
    create_document(hilde, message_type=pensions)
    settings.push_enabled = False
    try:
        run()
    finally:
        settings.push_enabled = True

    assert len(mails_to(smtp_server, hilde)) == 1
    assert push_service.pushes_to(device) == []
