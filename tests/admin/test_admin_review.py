"""Admins approve or reject applications; the applicant is told by e-mail either way."""

from __future__ import annotations

from flask.testing import FlaskClient
from sqlalchemy import select

from ebox.applications.models import STATUS_APPROVED, STATUS_PENDING, STATUS_REJECTED
from ebox.audit.models import AuditEvent
from ebox.audit.services import verify_chain
from ebox.extensions import db
from ebox.senders.models import Sender
from tests.admin.admin_helpers import log_in_staff, staff_post, submit_application
from tests.factories import create_sender
from tests.mail.smtp_server import Received, text_of

CONTACT = "an.janssens@pensions.example"


def test_approval_creates_the_sender_its_types_and_certificate_and_tells_the_applicant(
    client: FlaskClient, smtp_server: Received
) -> None:
    application = submit_application(client)
    staff = log_in_staff(client, "admin")
    detail = f"/admin/applications/{application.id}"

    response = staff_post(client, detail, f"{detail}/approve")
    assert response.status_code == 303

    db.session.rollback()
    sender = db.session.scalars(select(Sender)).one()
    assert response.headers["Location"] == f"/admin/senders/{sender.id}"
    assert (sender.name, sender.enterprise_number, sender.is_active) == (
        "Federal Pension Service",
        "0123456749",
        True,
    )
    assert sender.may_send_registered is True
    assert sender.contact_url == "https://pensions.example/contact"
    assert [(t.code, t.name_de, t.validity_days) for t in sender.message_types] == [
        ("PENSION_STATEMENT", "Rentenübersicht", 365)
    ]
    [certificate] = sender.certificates
    assert certificate.fingerprint_sha256 == application.certificate_fingerprint_sha256
    db.session.refresh(application)
    assert application.status == STATUS_APPROVED
    assert application.sender_id == sender.id
    assert application.reviewed_by_id is not None

    staff_events = db.session.scalars(
        select(AuditEvent).where(AuditEvent.actor_type == "staff")
    ).all()
    assert {event.action for event in staff_events} == {"sender.created", "application.approved"}
    assert {event.actor_id for event in staff_events} == {str(application.reviewed_by_id)}
    assert verify_chain() == []
    assert staff is not None

    mail = text_of(smtp_server.last_to(CONTACT))
    assert "approved" in mail
    assert "docs/integration/" in mail
    assert "/soap/EboxMessage/v1?wsdl" in mail

    page = client.get(response.headers["Location"]).get_data(as_text=True)
    assert "can publish now" in page


def test_an_application_cannot_be_approved_twice(client: FlaskClient) -> None:
    application = submit_application(client)
    log_in_staff(client, "admin")
    detail = f"/admin/applications/{application.id}"
    staff_post(client, detail, f"{detail}/approve")
    second = staff_post(client, detail, f"{detail}/approve")
    assert second.status_code == 303
    assert "already decided" in client.get(detail).get_data(as_text=True)
    db.session.rollback()
    assert len(db.session.scalars(select(Sender)).all()) == 1


def test_approval_is_refused_when_the_enterprise_number_already_has_a_sender(
    client: FlaskClient, smtp_server: Received
) -> None:
    create_sender(name="Existing Pension Office", enterprise_number="0123456749")
    db.session.commit()
    application = submit_application(client)
    log_in_staff(client, "admin")
    detail = f"/admin/applications/{application.id}"
    assert "Existing Pension Office" in client.get(detail).get_data(as_text=True)

    staff_post(client, detail, f"{detail}/approve")
    page = client.get(detail).get_data(as_text=True)
    assert "Not approved" in page and "0123.456.749 already exists" in page
    db.session.rollback()
    db.session.refresh(application)
    assert application.status == STATUS_PENDING
    assert len(db.session.scalars(select(Sender)).all()) == 1
    assert smtp_server.messages == []  # a refused approval tells the applicant nothing


def test_approval_is_refused_when_the_certificate_is_already_registered(
    client: FlaskClient,
) -> None:
    first = submit_application(client)
    log_in_staff(client, "admin")
    detail = f"/admin/applications/{first.id}"
    staff_post(client, detail, f"{detail}/approve")
    second = submit_application(
        client, certificate_pem=first.certificate_pem, enterprise_number="0207451227"
    )

    detail = f"/admin/applications/{second.id}"
    staff_post(client, detail, f"{detail}/approve")
    assert "already registered" in client.get(detail).get_data(as_text=True)
    db.session.rollback()
    assert len(db.session.scalars(select(Sender)).all()) == 1


def test_rejection_needs_a_reason_which_the_applicant_receives(
    client: FlaskClient, smtp_server: Received
) -> None:
    application = submit_application(client)
    log_in_staff(client, "admin")
    detail = f"/admin/applications/{application.id}"

    empty = staff_post(client, detail, f"{detail}/reject", {"reason": ""})
    assert empty.status_code == 422
    assert 'id="reason-error"' in empty.get_data(as_text=True)

    reason = "Your organisation has no public task for these documents."
    response = staff_post(client, detail, f"{detail}/reject", {"reason": reason})
    assert response.status_code == 303
    db.session.rollback()
    db.session.refresh(application)
    assert (application.status, application.rejection_reason) == (STATUS_REJECTED, reason)
    assert db.session.scalars(select(Sender)).first() is None
    event = db.session.scalars(
        select(AuditEvent).where(AuditEvent.action == "application.rejected")
    ).one()
    assert event.actor_type == "staff" and event.details == {"reason": reason}

    mail = smtp_server.last_to(CONTACT)
    assert "not approved" in mail["Subject"]
    assert reason in text_of(mail)


def test_the_decision_mail_speaks_the_applicants_language(
    client: FlaskClient, smtp_server: Received
) -> None:
    application = submit_application(client)
    application.language = "de"
    db.session.commit()
    log_in_staff(client, "admin")
    detail = f"/admin/applications/{application.id}"
    staff_post(client, detail, f"{detail}/reject", {"reason": "Unvollständige Angaben."})
    assert smtp_server.last_to(CONTACT)["Content-Language"] == "de"


def test_the_list_filters_by_status(client: FlaskClient) -> None:
    pending = submit_application(client, organisation_name="Pending Agency")
    rejected = submit_application(
        client, organisation_name="Rejected Agency", enterprise_number="0207451227"
    )
    log_in_staff(client, "admin")
    detail = f"/admin/applications/{rejected.id}"
    staff_post(client, detail, f"{detail}/reject", {"reason": "Not a public task."})

    waiting = client.get("/admin/applications").get_data(as_text=True)
    assert "Pending Agency" in waiting and "Rejected Agency" not in waiting
    done = client.get("/admin/applications?status=rejected").get_data(as_text=True)
    assert "Rejected Agency" in done and "Pending Agency" not in done
    everything = client.get("/admin/applications?status=all").get_data(as_text=True)
    assert "Rejected Agency" in everything and "Pending Agency" in everything
    assert pending.status == STATUS_PENDING
