"""Reminders: a document still unread EBOX_REMINDER_DAYS (15) after it arrived is named once more
in the daily alert, which stays one e-mail per citizen per day. Run as the operator's command
runs the alert (plan and send in one process), into a real SMTP server on loopback."""

from __future__ import annotations

from datetime import date, datetime, timedelta

import pytest
from flask import Flask
from sqlalchemy import select

from ebox.accounts.models import Citizen
from ebox.alerts.models import AlertDelivery
from ebox.db_types import utcnow
from ebox.extensions import db
from ebox.mailbox.models import Document
from ebox.senders.models import MessageType
from tests.alerts.test_alert_rules import mails_to, person, run, text_and_html
from tests.factories import create_document, create_message_type, create_sender
from tests.mail.smtp_server import Received

TODAY = date(2026, 11, 30)
REMINDER = "Still unread 15 days after they arrived"


@pytest.fixture
def pensions() -> MessageType:
    return create_message_type(create_sender(name="Federal Pension Service"), code="PENSION")


def arrived(citizen: Citizen, days_ago: float, message_type: MessageType) -> Document:
    """A document that arrived days_ago, announced as new by an alert sent since."""
    document = create_document(citizen, message_type=message_type)
    document.published_at = utcnow() - timedelta(days=days_ago)
    db.session.commit()
    return document


def long_time_user(name: str, alerted_at: datetime) -> Citizen:
    """A citizen with a confirmed address for a month, last alerted at alerted_at."""
    citizen = person(name, email_confirmed_at=utcnow() - timedelta(days=30))
    citizen.alerted_news_until = alerted_at
    citizen.alerted_expiry_until = alerted_at
    db.session.commit()
    return citizen


def test_a_document_unread_after_15_days_is_named_once_in_the_alert(
    smtp_server: Received, pensions: MessageType
) -> None:
    dora = long_time_user("Dora", alerted_at=utcnow() - timedelta(days=1))
    arrived(dora, 16, pensions)
    arrived(dora, 14, pensions)  # not yet
    arrived(dora, 15.5, pensions)

    run()

    [mail] = mails_to(smtp_server, dora)
    assert mail["Subject"] == "Documents in your eBox are still unread"
    for part in text_and_html(mail):
        assert REMINDER in part
        assert "Federal Pension Service: 2 documents" in part
        assert "You can also turn reminders off there." in part
        assert "New documents" not in part
    [delivery] = db.session.scalars(select(AlertDelivery)).all()
    assert delivery.reminder_count == 2
    # The next days: the same documents are not named again; the third is, when its turn comes.
    run(TODAY + timedelta(days=1))
    assert len(mails_to(smtp_server, dora)) == 1


def test_a_document_reaching_15_days_on_a_day_without_alert_is_named_by_the_next_one(
    smtp_server: Received, pensions: MessageType
) -> None:
    # The last alert was sent 5 days ago; the document reached 15 days 2 days ago.
    emil = long_time_user("Emil", alerted_at=utcnow() - timedelta(days=5))
    db.session.execute(
        Citizen.__table__.update()
        .where(Citizen.id == emil.id)
        .values(alerted_reminder_until=utcnow() - timedelta(days=20))
    )
    arrived(emil, 17, pensions)

    run()

    [mail] = mails_to(smtp_server, emil)
    assert REMINDER in text_and_html(mail)[0]


def test_new_documents_and_reminders_make_one_mail_and_a_new_document_is_not_also_a_reminder(
    smtp_server: Received, pensions: MessageType
) -> None:
    # Never alerted since a month: a 16-day-old document is still news, named once as new.
    fien = person("Fien", email_confirmed_at=utcnow() - timedelta(days=30))
    arrived(fien, 16, pensions)
    gust = long_time_user("Gust", alerted_at=utcnow() - timedelta(days=1))
    arrived(gust, 16, pensions)
    create_document(gust, message_type=pensions)  # new today

    run()

    [for_fien] = mails_to(smtp_server, fien)
    text, _ = text_and_html(for_fien)
    assert "New documents are waiting" in text
    assert REMINDER not in text
    [for_gust] = mails_to(smtp_server, gust)
    assert for_gust["Subject"] == "You have new documents in your eBox"
    text, _ = text_and_html(for_gust)
    assert "New documents are waiting" in text
    assert REMINDER in text


@pytest.mark.parametrize("turned_off_by", ["citizen", "message type", "platform"])
def test_reminders_turned_off_name_nothing(
    app: Flask, smtp_server: Received, pensions: MessageType, turned_off_by: str
) -> None:
    hugo = long_time_user("Hugo", alerted_at=utcnow() - timedelta(days=1))
    arrived(hugo, 16, pensions)
    settings = app.config["EBOX"]
    if turned_off_by == "citizen":
        hugo.wants_reminders = False
    elif turned_off_by == "message type":
        pensions.sends_reminders = False
    else:
        settings.reminder_days = 0
    db.session.commit()
    try:
        run()
    finally:
        settings.reminder_days = 15

    assert mails_to(smtp_server, hugo) == []
    assert db.session.scalars(select(AlertDelivery)).all() == []


def test_a_document_read_before_its_reminder_is_not_named(
    smtp_server: Received, pensions: MessageType
) -> None:
    ida = long_time_user("Ida", alerted_at=utcnow() - timedelta(days=1))
    document = arrived(ida, 16, pensions)
    document.read_at = utcnow() - timedelta(days=2)
    db.session.commit()

    run()

    assert mails_to(smtp_server, ida) == []
