"""Support staff look a citizen up by national number: activation, e-mail confirmed, counts and
the last alert, never an address, a title or content; every lookup is audited with its reason."""

from __future__ import annotations

import json
import re
from datetime import datetime, timedelta

from flask import Flask
from flask.testing import FlaskClient
from flask_babel import format_date, format_datetime
from sqlalchemy import select, update
from werkzeug.test import TestResponse

from ebox.accounts.services import record_login
from ebox.admin.services import find_staff
from ebox.alerts.services import platform_today, run_inline
from ebox.audit.models import AuditEvent
from ebox.db_types import utcnow
from ebox.extensions import db
from ebox.mailbox.models import Document
from ebox.mailbox.services import mark_read
from ebox.national_number import mask, printed
from ebox.retention.services import purge_expired
from tests.admin.admin_helpers import log_in_staff, staff_post
from tests.factories import create_citizen, create_document, login, next_national_number
from tests.mail.smtp_server import Received

PAGE = "/admin/citizen"
REASON = "Phone call 2026-0412: no alert received"


def look_up(client: FlaskClient, number: str, reason: str = REASON) -> TestResponse:
    return staff_post(client, PAGE, PAGE, {"national_number": number, "reason": reason})


def fact(page: str, label: str) -> str:
    """The value shown next to a label, in a list of facts or of counts."""
    found = re.search(rf"<dt>{re.escape(label)}</dt><dd>(.*?)</dd>", page, re.DOTALL)
    assert found, f"no {label!r} on the page"
    return found.group(1).strip()


def lookups() -> list[AuditEvent]:
    db.session.rollback()
    query = select(AuditEvent).where(AuditEvent.action == "citizen.looked_up")
    return list(db.session.scalars(query.order_by(AuditEvent.id)))


def in_english(app: Flask, moment: datetime) -> str:
    with app.test_request_context(headers={"Accept-Language": "en"}):
        return format_datetime(moment, "medium")


def expire(document: Document) -> None:
    """Past its expiry, not yet purged: the citizen no longer sees it."""
    db.session.execute(
        update(Document)
        .where(Document.id == document.id)
        .values(expires_at=utcnow() - timedelta(hours=1))
    )
    db.session.commit()


def test_support_staff_see_that_an_activated_citizen_is_reached_and_when(
    app: Flask, client: FlaskClient, smtp_server: Received
) -> None:
    citizen = create_citizen(given_name="Griet", surname="Claes", email="griet@example.org")
    record_login(
        national_number=citizen.national_number, given_name="Griet", surname="Claes", language="en"
    )
    create_document(citizen)
    assert run_inline(platform_today()).sent == 1
    db.session.expire_all()
    log_in_staff(client, "support")

    response = look_up(client, printed(citizen.national_number))

    assert response.status_code == 200
    page = response.get_data(as_text=True)
    assert fact(page, "eBox activated") == "yes"
    assert citizen.email_confirmed_at is not None and citizen.last_login_at is not None
    confirmed = in_english(app, citizen.email_confirmed_at)
    assert fact(page, "E-mail address") == f"confirmed on {confirmed}"
    assert fact(page, "Conditions accepted") != "not yet"
    assert fact(page, "First login") == in_english(app, citizen.created_at)
    assert fact(page, "Last login") == in_english(app, citizen.last_login_at)
    with app.test_request_context(headers={"Accept-Language": "en"}):
        today = format_date(platform_today(), "medium")
    assert fact(page, "Last e-mail alert") == f"{today} · Sent"
    assert printed(citizen.national_number) in page  # staff typed it
    for private in ("griet@example.org", "Griet", "Claes"):
        assert private not in page


def test_a_citizen_who_has_not_finished_the_first_visit_is_not_activated(
    client: FlaskClient,
) -> None:
    citizen = create_citizen(activated=False)
    db.session.commit()
    log_in_staff(client, "support")

    page = look_up(client, citizen.national_number).get_data(as_text=True)

    assert fact(page, "eBox activated") == "no"
    assert fact(page, "Conditions accepted") == "not yet"
    assert fact(page, "E-mail address") == "none yet"
    assert fact(page, "First login") == fact(page, "Last login") == "not yet"
    assert fact(page, "Last e-mail alert") == "none yet"


def test_the_counts_leave_out_deleted_and_expired_documents_and_no_title_is_ever_shown(
    client: FlaskClient,
) -> None:
    citizen = create_citizen()
    create_document(citizen, title="Tax assessment of Griet Claes", file_name="tax-griet.pdf")
    create_document(citizen, title="Registered notice", is_registered=True)
    opened = create_document(citizen, title="Pension statement")
    mark_read(document=opened)
    db.session.commit()
    expire(create_document(citizen, title="Deleted letter"))
    assert purge_expired().documents == 1
    expire(create_document(citizen, title="Expired letter", is_registered=True))
    create_document(next_national_number(), title="Someone else's letter")
    log_in_staff(client, "support")

    page = look_up(client, citizen.national_number).get_data(as_text=True)

    assert fact(page, "Available") == "3"
    assert fact(page, "Unread") == "2"
    assert fact(page, "Registered mail") == "1"
    assert fact(page, "Deleted at expiry") == "2"
    for title in ("Tax assessment", "Registered notice", "Pension statement", "Expired letter"):
        assert title not in page
    assert "Deleted letter" not in page and "tax-griet.pdf" not in page


def test_documents_waiting_for_a_citizen_who_never_logged_in_are_shown(
    client: FlaskClient,
) -> None:
    number = next_national_number()
    create_document(number, title="Welcome letter")
    create_document(number, title="Second letter", is_registered=True)
    log_in_staff(client, "support")

    page = look_up(client, number).get_data(as_text=True)

    assert "their documents wait for their first visit" in page
    assert fact(page, "Available") == "2"
    assert fact(page, "Registered mail") == "1"
    assert "<dt>eBox activated</dt>" not in page  # no account to describe
    assert "Welcome letter" not in page
    [event] = lookups()
    assert (event.subject_type, event.subject_id) == ("national_number", mask(number))


def test_a_number_never_seen_says_there_is_no_account_and_no_document(
    client: FlaskClient,
) -> None:
    log_in_staff(client, "support")

    response = look_up(client, next_national_number())

    assert response.status_code == 200
    page = response.get_data(as_text=True)
    assert "never logged in, and no document is waiting for them" in page
    assert fact(page, "Available") == "0"
    assert len(lookups()) == 1


def test_an_invalid_number_gets_a_form_error_and_nothing_is_audited(
    client: FlaskClient,
) -> None:
    valid = next_national_number()
    wrong_check = valid[:9] + f"{(int(valid[9:]) + 1) % 100:02d}"
    log_in_staff(client, "support")

    for number in (wrong_check, "1234", "85.07.30-A33.28"):
        response = look_up(client, number)
        assert response.status_code == 422
        assert "This is not a national register number" in response.get_data(as_text=True)
    empty = look_up(client, "")
    assert "Give the national register number." in empty.get_data(as_text=True)
    assert lookups() == []


def test_a_lookup_without_a_reason_is_refused(client: FlaskClient) -> None:
    citizen = create_citizen()
    db.session.commit()
    log_in_staff(client, "support")

    missing = look_up(client, citizen.national_number, reason="   ")
    too_long = look_up(client, citizen.national_number, reason="x" * 501)

    assert missing.status_code == too_long.status_code == 422
    assert "Give the reason for this lookup." in missing.get_data(as_text=True)
    assert "From 3 to 500 characters." in too_long.get_data(as_text=True)
    assert "Result for" not in missing.get_data(as_text=True)
    assert lookups() == []


def test_every_lookup_is_audited_with_the_staff_member_and_the_reason_the_number_masked(
    client: FlaskClient,
) -> None:
    citizen = create_citizen()
    db.session.commit()
    staff = log_in_staff(client, "support")
    member = find_staff(staff.national_number)
    assert member is not None
    number = citizen.national_number

    look_up(client, number)
    look_up(client, printed(number), reason=f"Asked by {printed(number)} at the desk")

    first, second = lookups()
    for event in (first, second):
        assert (event.actor_type, event.actor_id) == ("staff", str(member.id))
        assert (event.subject_type, event.subject_id) == ("citizen", str(citizen.id))
        assert event.details["national_number"] == mask(number)
        stored = json.dumps([event.subject_id, event.details])
        assert number not in stored and printed(number) not in stored
    assert first.details["reason"] == REASON
    assert second.details["reason"] == f"Asked by {mask(number)} at the desk"


def test_the_lookup_never_takes_the_number_from_the_url(client: FlaskClient) -> None:
    citizen = create_citizen()
    db.session.commit()
    log_in_staff(client, "support")

    page = client.get(f"{PAGE}?national_number={citizen.national_number}&reason=Call")
    without_token = client.post(PAGE, data={"national_number": citizen.national_number})

    assert page.status_code == 200 and "Result for" not in page.get_data(as_text=True)
    assert without_token.status_code == 400
    assert lookups() == []


def test_citizens_who_are_not_staff_are_told_the_lookup_does_not_exist(
    client: FlaskClient,
) -> None:
    someone = create_citizen()
    db.session.commit()
    login(client, someone)

    response = staff_post(
        client, "/profile/", PAGE, {"national_number": someone.national_number, "reason": REASON}
    )

    assert response.status_code == 404
    assert lookups() == []


def test_the_staff_navigation_links_to_the_citizen_lookup(client: FlaskClient) -> None:
    log_in_staff(client, "support")
    page = client.get("/admin/").get_data(as_text=True)
    assert f'href="{PAGE}"' in page and "Citizen lookup" in page
