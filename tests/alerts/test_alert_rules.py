"""What the daily alert announces, to whom, and how often: run as the operator's command runs it
(plan and send in one process), into a real SMTP server on loopback."""

from __future__ import annotations

from datetime import date, timedelta
from email.message import EmailMessage

import pytest
from flask import Flask
from flask.testing import FlaskCliRunner
from sqlalchemy import select

from ebox.accounts.models import Citizen
from ebox.alerts.models import FAILED, SENT, SKIPPED, AlertDelivery
from ebox.alerts.services import (
    citizen_id_ranges,
    plan_range,
    platform_today,
    run_inline,
    start_run,
)
from ebox.db_types import utcnow
from ebox.extensions import db
from ebox.mailbox.publication import SubmittedAttachment
from ebox.senders.models import MessageType
from tests.factories import (
    create_citizen,
    create_document,
    create_message_type,
    create_sender,
    next_national_number,
)
from tests.mail.smtp_server import Received, free_port

TODAY = date(2026, 11, 30)


@pytest.fixture
def pensions() -> MessageType:
    return create_message_type(create_sender(name="Federal Pension Service"), code="PENSION")


@pytest.fixture
def taxes() -> MessageType:
    return create_message_type(create_sender(name="Federal Tax Service"), code="TAX")


def person(name: str, language: str = "en", **fields: object) -> Citizen:
    return create_citizen(
        given_name=name, email=f"{name.lower()}@example.org", language=language, **fields
    )


def mails_to(smtp_server: Received, citizen: Citizen) -> list[EmailMessage]:
    return [m for m in smtp_server.messages if m["To"] == citizen.email]


def text_and_html(message: EmailMessage) -> tuple[str, str]:
    text = message.get_body(("plain",))
    html = message.get_body(("html",))
    assert text is not None and html is not None, "an alert has a text and an HTML part"
    return str(text.get_content()), str(html.get_content())


def run(day: date = TODAY) -> None:
    outcome = run_inline(day)
    db.session.expire_all()
    assert not outcome.failed


def test_new_documents_are_announced_once_with_counts_and_senders_in_the_citizens_language(
    smtp_server: Received, pensions: MessageType, taxes: MessageType
) -> None:
    anna = person("Anna", language="nl")
    create_document(anna, message_type=pensions, title="Secret pension amount")
    create_document(anna, message_type=pensions, title="Second pension letter")
    create_document(anna, message_type=taxes, title="Tax assessment 2026")

    run()

    [mail] = mails_to(smtp_server, anna)
    assert mail["Content-Language"] == "nl"
    assert "nieuwe documenten" in mail["Subject"]
    text, html = text_and_html(mail)
    for part in (text, html):
        assert "Federal Pension Service: 2 documenten" in part
        assert "Federal Tax Service: 1 document" in part
        assert "http://localhost" in part  # the portal link (EBOX_PUBLIC_URL)
        for title in ("Secret pension amount", "Second pension letter", "Tax assessment"):
            assert title not in part
    assert "Secret" not in mail["Subject"]


def test_unread_documents_soon_deleted_are_announced_once_and_later_ones_not_yet(
    smtp_server: Received, pensions: MessageType
) -> None:
    now = utcnow()
    bert = person("Bert")
    create_document(bert, message_type=pensions, expires_at=now + timedelta(days=3))
    create_document(bert, message_type=pensions, expires_at=now + timedelta(days=20))
    bert.alerted_news_until = now + timedelta(seconds=1)  # both already announced as new
    db.session.commit()

    run()

    [mail] = mails_to(smtp_server, bert)
    text, _ = text_and_html(mail)
    assert "Unread documents will be deleted soon" in text
    assert "Federal Pension Service: 1 document" in text
    assert "New documents" not in text
    # The next day, the same deletion is not announced again.
    run(TODAY + timedelta(days=1))
    assert len(mails_to(smtp_server, bert)) == 1


def test_new_and_expiring_together_make_one_mail(
    smtp_server: Received, pensions: MessageType
) -> None:
    carla = person("Carla")
    create_document(carla, message_type=pensions, expires_at=utcnow() + timedelta(days=2))
    run()
    [mail] = mails_to(smtp_server, carla)
    text, _ = text_and_html(mail)
    assert "New documents are waiting" in text and "will be deleted soon" in text


def test_read_hidden_deleted_or_expired_documents_are_no_news(
    smtp_server: Received, pensions: MessageType
) -> None:
    dirk = person("Dirk")
    for change in ("read_at", "hidden_at", "deleted_at"):
        document = create_document(dirk, message_type=pensions)
        setattr(document, change, utcnow())
    expired = create_document(dirk, message_type=pensions)
    expired.expires_at = utcnow() - timedelta(minutes=1)
    db.session.commit()

    run()

    assert mails_to(smtp_server, dirk) == []


def test_no_mail_without_a_confirmed_address(smtp_server: Received, pensions: MessageType) -> None:
    unconfirmed = person("Eva", email_confirmed_at=None)
    create_document(unconfirmed, message_type=pensions)
    create_document(next_national_number(), message_type=pensions)  # never logged in
    run()
    assert smtp_server.messages == []


def test_never_two_alerts_on_one_day_even_when_run_again_with_new_news(
    smtp_server: Received, pensions: MessageType
) -> None:
    frank = person("Frank")
    create_document(frank, message_type=pensions)
    run()
    create_document(frank, message_type=pensions, title="Arrived after the run")
    run()
    assert len(mails_to(smtp_server, frank)) == 1

    run(TODAY + timedelta(days=1))  # the next day tells of what came after the first alert
    _, second = mails_to(smtp_server, frank)
    assert "Federal Pension Service: 1 document" in text_and_html(second)[0]


def test_a_day_the_mail_server_refused_is_covered_by_the_next_alert(
    app: Flask, smtp_server: Received, pensions: MessageType, runner: FlaskCliRunner
) -> None:
    gina = person("Gina")
    create_document(gina, message_type=pensions)
    settings = app.config["EBOX"]
    working = settings.smtp_url
    settings.smtp_url = f"smtp://127.0.0.1:{free_port()}"  # nobody listens: refused
    try:
        refused = runner.invoke(args=["ebox", "alerts", "run", "--date", TODAY.isoformat()])
    finally:
        settings.smtp_url = working
    assert refused.exit_code != 0
    assert "1 refused by the mail server" in refused.output
    assert delivery_states(gina) == [(TODAY, FAILED)]

    create_document(gina, message_type=pensions)
    tomorrow = TODAY + timedelta(days=1)
    result = runner.invoke(args=["ebox", "alerts", "run", "--date", tomorrow.isoformat()])
    assert result.exit_code == 0, result.output
    assert "1 sent now" in result.output

    [mail] = mails_to(smtp_server, gina)
    assert "Federal Pension Service: 2 documents" in text_and_html(mail)[0]
    assert delivery_states(gina) == [(TODAY, FAILED), (tomorrow, SENT)]


def test_a_refused_alert_is_retried_on_its_own_day(
    app: Flask, smtp_server: Received, pensions: MessageType
) -> None:
    hans = person("Hans")
    create_document(hans, message_type=pensions)
    today = platform_today()
    settings = app.config["EBOX"]
    working = settings.smtp_url
    settings.smtp_url = f"smtp://127.0.0.1:{free_port()}"
    try:
        assert run_inline(today).failed
    finally:
        settings.smtp_url = working
    assert run_inline(today).sent == 1
    assert len(mails_to(smtp_server, hans)) == 1


def delivery_states(citizen: Citizen) -> list[tuple[date, str]]:
    db.session.expire_all()
    rows = db.session.execute(
        select(AlertDelivery.day, AlertDelivery.status)
        .where(AlertDelivery.citizen_id == citizen.id)
        .order_by(AlertDelivery.day)
    ).all()
    return [(day, status) for day, status in rows]


def test_a_late_alert_of_an_earlier_day_is_not_sent_after_a_newer_one(
    app: Flask, smtp_server: Received, pensions: MessageType
) -> None:
    ines = person("Ines")
    create_document(ines, message_type=pensions)
    # The earlier day was planned, but its sending jobs ran late: after the next day's alert.
    earlier = start_run(TODAY, utcnow())
    planned = sum(
        plan_range(earlier, first_id, end_id, app.config["EBOX"])
        for first_id, end_id in citizen_id_ranges()
    )
    assert planned == 1  # Ines
    assert plan_range(earlier, *next(iter(citizen_id_ranges())), app.config["EBOX"]) == 0
    run(TODAY + timedelta(days=1))
    assert len(mails_to(smtp_server, ines)) == 1

    run(TODAY)

    assert len(mails_to(smtp_server, ines)) == 1
    assert delivery_states(ines) == [(TODAY, SKIPPED), (TODAY + timedelta(days=1), SENT)]


def test_a_message_with_attachments_counts_once(
    smtp_server: Received, pensions: MessageType
) -> None:
    otto = person("Otto")
    annexes = [
        SubmittedAttachment(f"annex-{n}.txt", "text/plain", b"Annex %d\n" % n) for n in range(3)
    ]
    create_document(otto, message_type=pensions, attachments=annexes)
    run()
    [mail] = mails_to(smtp_server, otto)
    text, html = text_and_html(mail)
    for part in (text, html):
        assert "Federal Pension Service: 1 document" in part
        assert "annex-" not in part
