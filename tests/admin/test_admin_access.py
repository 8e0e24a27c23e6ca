"""Who gets into /admin: staff only, found in the staff list; support staff only read."""

from __future__ import annotations

from datetime import timedelta

import pytest
from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy import select, update

from ebox.admin.queries import dashboard
from ebox.applications.models import STATUS_PENDING
from ebox.audit.services import Actor, record_event
from ebox.db_types import utcnow
from ebox.evidence.jobs import make_proof
from ebox.evidence.models import Evidence
from ebox.extensions import db
from ebox.senders.models import Sender
from ebox.soap import faults
from tests.admin.admin_helpers import log_in_staff, staff_post, submit_application
from tests.factories import create_citizen, create_document, create_sender, login

PAGES = [
    "/admin/",
    "/admin/applications",
    "/admin/senders",
    "/admin/delivery",
    "/admin/citizen",
    "/admin/audit",
]


def test_anonymous_visitors_are_sent_to_the_login_page(client: FlaskClient) -> None:
    response = client.get("/admin/applications?status=all")
    assert response.status_code == 302
    assert response.headers["Location"].startswith("/auth/login?next=")
    assert "admin/applications" in response.headers["Location"]


@pytest.mark.parametrize("page", PAGES)
def test_citizens_who_are_not_staff_are_told_the_area_does_not_exist(
    client: FlaskClient, page: str
) -> None:
    login(client, create_citizen())
    assert client.get(page).status_code == 404
    assert "/admin/" not in client.get("/profile/").get_data(as_text=True)


def test_removed_staff_lose_access(client: FlaskClient, runner: object) -> None:
    from ebox.admin.services import remove_staff
    from ebox.audit.services import OPERATOR

    citizen = log_in_staff(client, "admin")
    assert client.get("/admin/").status_code == 200
    remove_staff(raw_number=citizen.national_number, actor=OPERATOR)
    db.session.commit()
    assert client.get("/admin/").status_code == 404


@pytest.mark.parametrize("page", PAGES)
def test_staff_use_the_pages_without_the_citizens_first_visit(
    client: FlaskClient, page: str
) -> None:
    log_in_staff(client, "support")
    response = client.get(page)
    assert response.status_code == 200
    assert 'href="/admin/"' in response.get_data(as_text=True)  # the header's link


def test_support_staff_read_but_every_change_is_forbidden(client: FlaskClient) -> None:
    application = submit_application(client)
    sender = create_sender()
    db.session.commit()
    log_in_staff(client, "support")
    detail = f"/admin/applications/{application.id}"
    page = client.get(detail).get_data(as_text=True)
    assert "Federal Pension Service" in page
    assert "/approve" not in page  # no buttons they could not use

    sender_page = f"/admin/senders/{sender.id}"
    for page_url, action in [
        (detail, f"{detail}/approve"),
        (detail, f"{detail}/reject"),
        (sender_page, f"{sender_page}/suspend"),
        (sender_page, f"{sender_page}/reactivate"),
        (sender_page, f"{sender_page}/registered"),
        (sender_page, f"{sender_page}/certificates"),
    ]:
        response = staff_post(client, page_url, action, {"reason": "Because", "allow": "yes"})
        assert response.status_code == 403, action

    db.session.rollback()
    assert db.session.get(type(application), application.id).status == STATUS_PENDING  # type: ignore[union-attr]
    assert db.session.scalars(select(Sender)).one().is_active


def test_a_staff_post_without_csrf_token_is_refused(client: FlaskClient) -> None:
    application = submit_application(client)
    log_in_staff(client, "admin")
    response = client.post(f"/admin/applications/{application.id}/approve")
    assert response.status_code == 400
    db.session.rollback()
    assert db.session.scalars(select(Sender)).first() is None


def test_the_overview_counts_refused_calls_and_staff_actions_of_the_last_day(
    client: FlaskClient,
) -> None:
    sender = create_sender()
    db.session.commit()
    caller = Actor("sender", str(sender.id))
    record_event(caller, faults.PUBLICATION_REFUSED, "sender", sender.id, {"code": "NOT_A_PDF"})
    record_event(caller, faults.REQUEST_REFUSED, "sender", sender.id, {"code": "REPLAY"})
    record_event(caller, "document.published", "document", "1")
    db.session.commit()
    log_in_staff(client, "support")

    counts = dashboard(utcnow())
    assert (counts.refusals_last_day, counts.active_senders) == (2, 1)
    page = client.get("/admin/").get_data(as_text=True)
    assert "Refused requests, last 24 hours</dt><dd>2</dd>" in page


def test_the_overview_shows_the_job_queue_or_says_it_cannot_be_reached(
    app: Flask, client: FlaskClient
) -> None:
    log_in_staff(client, "support")
    settings = app.config["EBOX"]
    settings.redis_url = "redis://127.0.0.1:1/0"  # nothing listens there
    try:
        unreachable = client.get("/admin/").get_data(as_text=True)
        settings.redis_url = "redis://127.0.0.1:6379/0"
        reachable = client.get("/admin/").get_data(as_text=True)
    finally:
        settings.redis_url = ""
    assert "The job queue (Redis) cannot be reached" in unreachable
    assert "Failed jobs" not in unreachable
    assert "Failed jobs" in reachable and "cannot be reached" not in reachable


def test_the_overview_counts_proofs_of_delivery_overdue(client: FlaskClient) -> None:
    overdue = create_document(create_citizen(), is_registered=True)
    create_document(create_citizen(), is_registered=True)  # just published: still in time
    db.session.execute(
        update(Evidence)
        .where(Evidence.document_id == overdue.id)
        .values(recorded_at=utcnow() - timedelta(minutes=20))
    )
    db.session.commit()
    log_in_staff(client, "support")

    assert dashboard(utcnow()).late_proofs == 1
    page = client.get("/admin/").get_data(as_text=True)
    assert "Registered mail: proofs of delivery overdue</dt><dd>1</dd>" in page

    make_proof(str(overdue.id))
    assert dashboard(utcnow()).late_proofs == 0
