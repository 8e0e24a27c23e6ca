"""Admins manage senders: certificates (rotation, revocation), suspension, registered mail;
staff look up deliveries without ever seeing what was sent, and check the audit chain."""

from __future__ import annotations

import io
from datetime import timedelta

from flask.testing import FlaskClient
from sqlalchemy import select, update

from ebox.admin.services import find_staff
from ebox.audit.models import AuditEvent
from ebox.audit.services import verify_chain
from ebox.db_types import utcnow
from ebox.evidence.jobs import make_proof
from ebox.evidence.services import chain_of
from ebox.extensions import db
from ebox.mailbox.services import confirm_receipt
from ebox.national_number import mask
from ebox.senders.models import MessageType, Sender, SenderCertificate
from tests.admin.admin_helpers import log_in_staff, staff_post
from tests.factories import create_citizen, create_document, create_message_type, create_sender
from tests.senders.certificate_helpers import make_certificate_pem, make_key, private_key_pem


def sender_with_certificate() -> tuple[Sender, SenderCertificate]:
    sender = create_sender()
    now = utcnow()
    certificate = SenderCertificate(
        sender_id=sender.id,
        fingerprint_sha256="ab" * 32,
        pem="-----BEGIN CERTIFICATE-----\n...\n-----END CERTIFICATE-----\n",
        subject="CN=Old back office",
        not_before=now - timedelta(days=300),
        not_after=now + timedelta(days=60),
    )
    db.session.add(certificate)
    db.session.commit()
    return sender, certificate


def staff_actions() -> list[str]:
    db.session.rollback()
    query = select(AuditEvent.action).where(AuditEvent.actor_type == "staff")
    return list(db.session.scalars(query.order_by(AuditEvent.id)))


def test_a_certificate_is_added_for_rotation_and_the_old_one_revoked(client: FlaskClient) -> None:
    sender, old = sender_with_certificate()
    log_in_staff(client, "admin")
    page = f"/admin/senders/{sender.id}"

    pem = make_certificate_pem(make_key("ec", curve="p384"), name="New back office")
    added = staff_post(client, page, f"{page}/certificates", {"certificate_pem": pem})
    assert added.status_code == 303
    duplicate = staff_post(client, page, f"{page}/certificates", {"certificate_pem": pem})
    assert duplicate.status_code == 422
    assert "already registered" in duplicate.get_data(as_text=True)

    no_reason = staff_post(client, page, f"{page}/certificates/{old.id}/revoke", {"reason": ""})
    assert no_reason.status_code == 422
    revoked = staff_post(
        client, page, f"{page}/certificates/{old.id}/revoke", {"reason": "Key rotation"}
    )
    assert revoked.status_code == 303

    db.session.rollback()
    certificates = db.session.scalars(
        select(SenderCertificate).order_by(SenderCertificate.id)
    ).all()
    assert "CN=Old back office" in certificates[0].subject
    assert "CN=New back office" in certificates[1].subject
    assert certificates[0].revoked_at is not None
    assert certificates[0].revocation_reason == "Key rotation"
    assert certificates[1].is_usable(utcnow())
    assert staff_actions() == ["certificate.added", "certificate.revoked"]
    assert "revoked" in client.get(page).get_data(as_text=True)


def test_a_certificate_file_can_be_uploaded_and_bad_ones_are_refused(client: FlaskClient) -> None:
    sender, _ = sender_with_certificate()
    log_in_staff(client, "admin")
    page = f"/admin/senders/{sender.id}"
    key = make_key()
    with_key = staff_post(
        client,
        page,
        f"{page}/certificates",
        {"certificate_pem": make_certificate_pem(key) + private_key_pem(key)},
    )
    assert with_key.status_code == 422 and "Never send a private key" in with_key.get_data(
        as_text=True
    )
    weak = make_certificate_pem(make_key("rsa", bits=1024)).encode()
    refused = staff_post(
        client, page, f"{page}/certificates", {"certificate_file": (io.BytesIO(weak), "w.pem")}
    )
    assert refused.status_code == 422 and "2048" in refused.get_data(as_text=True)
    good = make_certificate_pem().encode()
    accepted = staff_post(
        client, page, f"{page}/certificates", {"certificate_file": (io.BytesIO(good), "g.pem")}
    )
    assert accepted.status_code == 303
    db.session.rollback()
    assert len(db.session.scalars(select(SenderCertificate)).all()) == 2


def test_a_certificate_of_another_sender_cannot_be_revoked_through_this_one(
    client: FlaskClient,
) -> None:
    _sender, certificate = sender_with_certificate()
    other = create_sender()
    db.session.commit()
    log_in_staff(client, "admin")
    page = f"/admin/senders/{other.id}"
    response = staff_post(
        client, page, f"{page}/certificates/{certificate.id}/revoke", {"reason": "Mistake"}
    )
    assert response.status_code == 404
    db.session.rollback()
    assert db.session.get(SenderCertificate, certificate.id).revoked_at is None  # type: ignore[union-attr]


def test_a_sender_is_suspended_and_reactivated(client: FlaskClient) -> None:
    sender, _ = sender_with_certificate()
    log_in_staff(client, "admin")
    page = f"/admin/senders/{sender.id}"

    assert staff_post(client, page, f"{page}/suspend", {"reason": "Abuse"}).status_code == 303
    db.session.rollback()
    assert db.session.get(Sender, sender.id).is_active is False  # type: ignore[union-attr]
    assert "Reactivate this sender" in client.get(page).get_data(as_text=True)

    assert staff_post(client, page, f"{page}/reactivate").status_code == 303
    db.session.rollback()
    assert db.session.get(Sender, sender.id).is_active is True  # type: ignore[union-attr]
    assert staff_actions() == ["sender.suspended", "sender.reactivated"]
    events = db.session.scalars(select(AuditEvent).where(AuditEvent.actor_type == "staff")).all()
    assert events[0].details == {"reason": "Abuse"}


def test_the_registered_mail_right_is_granted_and_withdrawn(client: FlaskClient) -> None:
    sender, _ = sender_with_certificate()
    log_in_staff(client, "admin")
    page = f"/admin/senders/{sender.id}"
    staff_post(client, page, f"{page}/registered", {"allow": "yes"})
    db.session.rollback()
    assert db.session.get(Sender, sender.id).may_send_registered is True  # type: ignore[union-attr]
    staff_post(client, page, f"{page}/registered", {"allow": "no"})
    db.session.rollback()
    assert db.session.get(Sender, sender.id).may_send_registered is False  # type: ignore[union-attr]
    assert staff_actions() == ["sender.registered_right_changed"] * 2


def test_reminders_of_a_message_type_are_turned_off_and_on_by_an_admin_only(
    client: FlaskClient,
) -> None:
    message_type = create_message_type(code="RECEIPT")
    sender_id = message_type.sender_id
    page = f"/admin/senders/{sender_id}"
    action = f"{page}/message-types/{message_type.id}/reminders"
    log_in_staff(client, "support")
    assert staff_post(client, page, action, {"allow": "no"}).status_code == 403
    log_in_staff(client, "admin")
    assert "Turn off" in client.get(page).get_data(as_text=True)
    staff_post(client, page, action, {"allow": "no"})
    db.session.rollback()
    assert db.session.get(MessageType, message_type.id).sends_reminders is False  # type: ignore[union-attr]
    staff_post(client, page, action, {"allow": "yes"})
    db.session.rollback()
    assert db.session.get(MessageType, message_type.id).sends_reminders is True  # type: ignore[union-attr]
    assert staff_actions() == ["message_type.reminders_changed"] * 2
    # Another sender's message type is not reachable through this sender's page.
    other = create_sender(name="Other Sender")
    wrong = f"/admin/senders/{other.id}/message-types/{message_type.id}/reminders"
    assert (
        staff_post(client, f"/admin/senders/{other.id}", wrong, {"allow": "no"}).status_code == 404
    )


def test_delivery_status_shows_dates_and_a_masked_recipient_but_never_the_document(
    client: FlaskClient,
) -> None:
    citizen = create_citizen()
    message_type = create_message_type(code="TAX_BILL")
    title = "Secret tax assessment of Jan Peeters 2026"
    document = create_document(
        citizen,
        message_type=message_type,
        title=title,
        ticket="BATCH-42",
        sequence=7,
        file_name="assessment-jan.pdf",
    )
    log_in_staff(client, "support")

    by_id = client.get(f"/admin/delivery?message_id={document.id}").get_data(as_text=True)
    by_ticket = client.get(
        f"/admin/delivery?sender_id={message_type.sender_id}&ticket=BATCH-42&sequence=7"
    ).get_data(as_text=True)
    for page in (by_id, by_ticket):
        assert str(document.id) in page
        assert "TAX_BILL" in page
        assert mask(citizen.national_number) in page
        assert citizen.national_number not in page
        assert "not yet" in page  # unread
        assert title not in page and "Secret tax assessment" not in page
        assert "assessment-jan.pdf" not in page

    nothing = client.get(
        f"/admin/delivery?sender_id={message_type.sender_id}&ticket=OTHER"
    ).get_data(as_text=True)
    assert "No document matches." in nothing
    no_sender = client.get("/admin/delivery?ticket=BATCH-42").get_data(as_text=True)
    assert "Choose the sender of this ticket." in no_sender
    bad_id = client.get("/admin/delivery?message_id=not-a-uuid").get_data(as_text=True)
    assert "32 hexadecimal digits" in bad_id


def test_every_delivery_lookup_is_audited_with_the_staff_member_and_the_message_id(
    client: FlaskClient,
) -> None:
    message_type = create_message_type()
    document = create_document(create_citizen(), message_type=message_type, ticket="BATCH-9")
    staff = log_in_staff(client, "support")
    member = find_staff(staff.national_number)
    assert member is not None
    sender_id = message_type.sender_id

    client.get("/admin/delivery")  # the empty form: nothing looked up
    client.get("/admin/delivery?message_id=not-a-uuid")  # refused: nothing looked up
    client.get(f"/admin/delivery?message_id={document.id}")
    client.get(f"/admin/delivery?sender_id={sender_id}&ticket=BATCH-9&sequence=3")

    db.session.rollback()
    by_id, by_ticket = db.session.scalars(
        select(AuditEvent).where(AuditEvent.action == "delivery.looked_up").order_by(AuditEvent.id)
    )
    for event in (by_id, by_ticket):
        assert (event.actor_type, event.actor_id) == ("staff", str(member.id))
    assert (by_id.subject_type, by_id.subject_id) == ("document", str(document.id))
    assert by_id.details == {"found": 1}
    assert (by_ticket.subject_type, by_ticket.subject_id) == ("sender", str(sender_id))
    assert by_ticket.details == {"ticket": "BATCH-9", "sequence": 3, "found": 0}
    listing = client.get("/admin/audit").get_data(as_text=True)
    assert "delivery.looked_up" in listing and "ticket: BATCH-9" in listing


def test_the_audit_page_lists_events_and_checks_the_chain(client: FlaskClient) -> None:
    sender, _ = sender_with_certificate()
    log_in_staff(client, "admin")
    page = f"/admin/senders/{sender.id}"
    staff_post(client, page, f"{page}/suspend", {"reason": "Check"})

    listing = client.get("/admin/audit").get_data(as_text=True)
    assert "sender.suspended" in listing and "staff.added" in listing
    intact = client.get("/admin/audit?verify=1").get_data(as_text=True)
    assert "The chain is intact" in intact
    assert verify_chain() == []

    db.session.execute(
        update(AuditEvent).where(AuditEvent.action == "sender.suspended").values(subject_id="999")
    )
    db.session.commit()
    broken = client.get("/admin/audit?verify=1").get_data(as_text=True)
    assert "The chain is broken" in broken
    assert "content was changed" in broken


def test_delivery_status_of_registered_mail_lists_sealed_events_never_the_evidence(
    client: FlaskClient,
) -> None:
    title = "Registered notice for Jan Peeters"
    document = create_document(create_citizen(), is_registered=True, title=title)
    confirm_receipt(document=document)
    db.session.commit()
    log_in_staff(client, "support")

    page = client.get(f"/admin/delivery?message_id={document.id}").get_data(as_text=True)

    events = [item.event for item in chain_of(document.id)]
    assert events == ["SubmissionAcceptance", "ContentConsignment", "ContentHandover"]
    for item in chain_of(document.id):
        assert f"{item.event} ·" in page and str(item.id) in page
    assert "being made" in page  # no proof yet: the worker makes it
    assert title not in page and "<ev:" not in page and "SignatureValue" not in page
    make_proof(str(document.id))
    page = client.get(f"/admin/delivery?message_id={document.id}").get_data(as_text=True)
    assert "version 1" in page
