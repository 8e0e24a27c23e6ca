"""Confirm first: the form sends one fixed e-mail with a single-use, expiring link, and nothing
reaches staff until that link is used. Forms never confirmed are forgotten."""

from __future__ import annotations

import hashlib
from datetime import timedelta

from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy import func, select

from ebox.applications.jobs import forget_unconfirmed_applications
from ebox.applications.models import SenderApplication, UnconfirmedApplication
from ebox.db_types import utcnow
from ebox.extensions import db
from tests.admin.admin_helpers import log_in_staff
from tests.applications.application_helpers import (
    confirm,
    confirmation_path,
    post_application,
    switch_browser,
    valid_form,
)
from tests.mail.smtp_server import Received
from tests.profile.forms_helper import csrf_token_from

# What a phisher would type: none of it may reach an address that is not confirmed.
BAIT = {
    "organisation_name": "Urgent: your tax refund is blocked, call +32 470 00 00 00",
    "business_contact_name": "Log in at https://refund.example to unblock it",
    "technical_contact_name": "Bank details needed before Friday",
    "business_contact_email": "victim@example.org",
    "use_case": "Collect the bank details of citizens who expect a refund, quickly.",
    "public_contact_url": "https://refund.example/unblock",
    "message_types-0-name_en": "Refund blocked notice",
}


def count(model: type[SenderApplication] | type[UnconfirmedApplication]) -> int:
    db.session.rollback()
    return int(db.session.scalar(select(func.count(model.id))) or 0)


def waiting_form() -> UnconfirmedApplication:
    db.session.rollback()
    return db.session.scalars(select(UnconfirmedApplication)).one()


def expire_every_link() -> None:
    db.session.rollback()
    for waiting in db.session.scalars(select(UnconfirmedApplication)):
        waiting.expires_at = utcnow() - timedelta(seconds=1)
    db.session.commit()


def test_an_application_sends_exactly_one_email_and_none_of_the_applicants_text(
    client: FlaskClient, smtp_server: Received
) -> None:
    assert post_application(client, valid_form(**BAIT)).status_code == 303

    [mail] = smtp_server.messages
    assert smtp_server.recipients == [["victim@example.org"]]
    whole = mail.as_string()
    for parts in (mail.get_body(("plain",)), mail.get_body(("html",))):
        assert parts is not None
        whole += str(parts.get_content())
    for typed in BAIT.values():
        if typed != "victim@example.org":
            for fragment in (typed, typed[:20], typed[-20:]):
                assert fragment not in whole, fragment
    assert "refund" not in whole.lower()
    assert "/apply/confirm/" in whole


def test_the_link_opens_a_page_whose_button_alone_confirms(
    client: FlaskClient, smtp_server: Received
) -> None:
    post_application(client, valid_form())
    path = confirmation_path(smtp_server.last_to("an.janssens@pensions.example"))

    page = client.get(path)  # what a mail scanner does
    assert page.status_code == 200
    assert page.headers["Cache-Control"] == "no-store"
    assert "Confirm and send the application" in page.get_data(as_text=True)
    assert "Federal Pension Service" not in page.get_data(as_text=True)
    assert count(SenderApplication) == 0

    assert confirm(client, path).status_code == 303
    assert count(SenderApplication) == 1


def test_a_confirmation_without_the_csrf_token_is_refused(
    client: FlaskClient, smtp_server: Received
) -> None:
    post_application(client, valid_form())
    path = confirmation_path(smtp_server.last_to("an.janssens@pensions.example"))
    assert client.post(path).status_code == 400
    assert count(SenderApplication) == 0


def test_staff_do_not_see_the_application_until_the_address_is_confirmed(
    app: Flask, client: FlaskClient, smtp_server: Received
) -> None:
    applicant = app.test_client()
    applicant.environ_base["HTTP_ACCEPT_LANGUAGE"] = "en"
    post_application(applicant, valid_form(organisation_name="Unconfirmed Agency"))
    waiting_id = waiting_form().id

    switch_browser()
    log_in_staff(client, "admin")
    for page in ("/admin/applications?status=all", "/admin/applications?status=pending"):
        assert "Unconfirmed Agency" not in client.get(page).get_data(as_text=True)
    assert client.get(f"/admin/applications/{waiting_id}").status_code == 404
    overview = client.get("/admin/").get_data(as_text=True)
    assert "Applications waiting for review</a></dt><dd>0<" in overview

    switch_browser()
    confirm(applicant, confirmation_path(smtp_server.last_to("an.janssens@pensions.example")))
    switch_browser()
    assert "Unconfirmed Agency" in client.get("/admin/applications").get_data(as_text=True)
    overview = client.get("/admin/").get_data(as_text=True)
    assert "Applications waiting for review</a></dt><dd>1<" in overview


def test_only_a_hash_of_the_token_is_stored(client: FlaskClient, smtp_server: Received) -> None:
    post_application(client, valid_form())
    token = confirmation_path(smtp_server.last_to("an.janssens@pensions.example")).rsplit("/")[-1]
    assert len(token) >= 43  # 256 random bits
    waiting = waiting_form()
    assert waiting.token_hash == hashlib.sha256(token.encode()).hexdigest()
    assert token not in str(
        db.session.execute(select(UnconfirmedApplication.__table__)).one()._asdict()
    )


def test_a_used_link_is_refused_with_a_clear_page_and_confirms_nothing_more(
    client: FlaskClient, smtp_server: Received
) -> None:
    post_application(client, valid_form())
    path = confirmation_path(smtp_server.last_to("an.janssens@pensions.example"))
    assert confirm(client, path).status_code == 303

    again = client.get(path)
    assert again.status_code == 410
    assert "This link was used already" in again.get_data(as_text=True)
    switch_browser()
    other_tab = client.post(path, data={"csrf_token": csrf_token_from(client, "/apply/")})
    assert other_tab.status_code == 410
    assert "This link was used already" in other_tab.get_data(as_text=True)
    assert count(SenderApplication) == 1
    leftover = waiting_form()
    assert (leftover.details, leftover.email) == ({}, "")  # no second copy of the form


def test_an_expired_link_is_refused_with_a_clear_page(
    client: FlaskClient, smtp_server: Received
) -> None:
    post_application(client, valid_form())
    path = confirmation_path(smtp_server.last_to("an.janssens@pensions.example"))
    csrf_token = csrf_token_from(client, "/apply/")
    expire_every_link()

    page = client.get(path)
    assert page.status_code == 410
    assert "This link has expired" in page.get_data(as_text=True)
    assert "fill in the form again" in page.get_data(as_text=True)
    posted = client.post(path, data={"csrf_token": csrf_token})
    assert posted.status_code == 410
    assert count(SenderApplication) == 0


def test_a_link_that_was_never_sent_is_refused_with_a_clear_page(client: FlaskClient) -> None:
    for token in ("not-a-token", "A" * 43, "A" * 500):
        page = client.get(f"/apply/confirm/{token}")
        assert page.status_code == 404
        assert "This link does not work" in page.get_data(as_text=True)


def test_unconfirmed_applications_are_forgotten_by_the_job(
    client: FlaskClient, smtp_server: Received
) -> None:
    post_application(client, valid_form())
    confirm(client, confirmation_path(smtp_server.last_to("an.janssens@pensions.example")))
    post_application(client, valid_form(business_contact_email="late@pensions.example"))
    expire_every_link()
    post_application(client, valid_form(business_contact_email="fresh@pensions.example"))
    assert count(UnconfirmedApplication) == 3

    assert forget_unconfirmed_applications() == 2
    assert forget_unconfirmed_applications() == 0  # safe to run twice
    assert [w.email for w in db.session.scalars(select(UnconfirmedApplication))] == [
        "fresh@pensions.example"
    ]
    assert count(SenderApplication) == 1  # a confirmed application is staff's, and stays

    late_link = confirmation_path(smtp_server.last_to("late@pensions.example"))
    assert client.get(late_link).status_code == 404
