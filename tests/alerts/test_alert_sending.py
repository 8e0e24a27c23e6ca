"""How the daily alert's e-mails leave: a window of deliveries claimed at once, sent pipelined
over several connections, its outcomes recorded together. Into a real SMTP server on loopback
that offers PIPELINING and misbehaves on request."""

from __future__ import annotations

from datetime import date, timedelta

import pytest
from sqlalchemy import select

from ebox.accounts.models import Citizen
from ebox.alerts import services
from ebox.alerts.claims import SendOutcome, claim_window
from ebox.alerts.models import FAILED, SENDING, SENT, AlertDelivery
from ebox.alerts.services import platform_today, run_inline
from ebox.extensions import db
from ebox.senders.models import MessageType
from tests.factories import create_citizen, create_document, create_message_type, create_sender
from tests.mail.smtp_server import PickyServer


@pytest.fixture
def pensions() -> MessageType:
    return create_message_type(create_sender(name="Federal Pension Service"), code="PENSION")


def citizens_with_news(count: int, pensions: MessageType) -> list[Citizen]:
    citizens = []
    for number in range(1, count + 1):
        citizen = create_citizen(given_name=f"Citizen{number}", email=f"c{number}@example.org")
        create_document(citizen, message_type=pensions)
        citizens.append(citizen)
    return citizens


def states(day: date) -> dict[str, str]:
    db.session.expire_all()
    rows = db.session.execute(
        select(Citizen.email, AlertDelivery.status)
        .join(Citizen, Citizen.id == AlertDelivery.citizen_id)
        .where(AlertDelivery.day == day)
    ).all()
    return {str(email): status for email, status in rows}


def test_an_alert_whose_connection_broke_after_it_left_stays_sending_and_is_told_next_day(
    picky_server: PickyServer, pensions: MessageType
) -> None:
    citizens = citizens_with_news(12, pensions)
    picky_server.dropped_after = {"c5@example.org"}
    today = platform_today()

    outcome = run_inline(today)

    assert outcome.sent == 11 and len(outcome.unknown) == 1 and not outcome.failed
    assert states(today) == {
        c.email: SENDING if c.email == "c5@example.org" else SENT for c in citizens
    }
    assert sorted(picky_server.arrived()) == sorted(c.email for c in citizens)  # once each
    # Its watermark did not move: the next day's alert tells the same news, to it alone.
    picky_server.dropped_after.clear()
    run_inline(today + timedelta(days=1))
    assert states(today + timedelta(days=1)) == {"c5@example.org": SENT}
    assert picky_server.arrived().count("c5@example.org") == 2


def test_a_refused_alert_fails_alone_and_goes_out_when_retried_the_same_day(
    picky_server: PickyServer, pensions: MessageType
) -> None:
    citizens = citizens_with_news(12, pensions)
    picky_server.refused_recipients = {"c3@example.org"}
    picky_server.refused_messages = {"c8@example.org"}
    today = platform_today()

    outcome = run_inline(today)

    assert outcome.sent == 10 and len(outcome.failed) == 2 and not outcome.unknown
    failed = {email for email, status in states(today).items() if status == FAILED}
    assert failed == {"c3@example.org", "c8@example.org"}
    picky_server.refused_recipients.clear()
    picky_server.refused_messages.clear()
    assert run_inline(today).sent == 2
    assert sorted(picky_server.arrived()) == sorted(c.email for c in citizens)


def test_a_worker_that_dies_between_claim_and_record_leaves_that_window_alone_in_doubt(
    picky_server: PickyServer, pensions: MessageType, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(services, "SEND_WINDOW", 4)
    citizens_with_news(10, pensions)
    today = platform_today()
    run = services.start_run(today, services.utcnow())
    [(first_id, end_id)] = services.citizen_id_ranges()
    services.plan_range(run, first_id, end_id, services.current_settings())
    [batch] = services.deliveries_to_send(today, first_id, end_id)

    # The worker claimed its first window (committed), then died before sending anything.
    claimed = claim_window(batch[: services.SEND_WINDOW], SendOutcome())
    assert len(claimed) == services.SEND_WINDOW

    # Run again: the window is not claimed a second time; everything else goes out.
    outcome = run_inline(today)
    assert outcome.sent == 6
    in_doubt = {email for email, status in states(today).items() if status == SENDING}
    assert in_doubt == {alert.recipient.email for alert in claimed}
    assert not in_doubt & set(picky_server.arrived())
    assert claim_window(batch, SendOutcome()) == []
