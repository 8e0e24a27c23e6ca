"""An institution's application: submitted on the public form, confirmed by its business
contact, then approved or rejected by staff.

A submitted form is kept apart (UnconfirmedApplication) and its business contact is sent one
e-mail: a fixed text with a single-use link, nothing the applicant typed, so that the form cannot
carry anyone's words to anyone's address under eBox's name. Only the link makes it an application
that staff see. Approval creates the sender, its message types and its certificate in the
caller's transaction. Every e-mail speaks the language the form was filled in, and leaves once
the transaction has committed.
"""

from __future__ import annotations

import dataclasses
import logging
import secrets
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from flask_babel import lazy_gettext
from sqlalchemy import delete, select

from ebox.admin.models import StaffMember
from ebox.applications import queries
from ebox.applications.models import (
    STATUS_APPROVED,
    STATUS_PENDING,
    STATUS_REJECTED,
    SenderApplication,
    UnconfirmedApplication,
)
from ebox.audit.services import Actor, record_event
from ebox.config import LANGUAGES, current_settings
from ebox.db_types import utcnow
from ebox.extensions import db
from ebox.mail.messages import render_email
from ebox.mail.services import queue_email
from ebox.senders import services as senders
from ebox.senders.certificates import CertificateInfo, parse_certificate
from ebox.senders.models import Sender
from ebox.senders.texts import _

log = logging.getLogger(__name__)

PUBLIC = Actor("public", "web")
INTEGRATION_GUIDE = "docs/integration/"
# The page the confirmation link opens (ebox.applications.views.confirm_page).
CONFIRM_PATH = "/apply/confirm/"
# SenderApplication's columns that confirm_application sets, never the form.
_SET_AT_CONFIRMATION = {"id", "reference", "status", "language", "submitted_at"}


class ApplicationRefused(ValueError):
    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


class LinkRefused(Exception):
    """The confirmation link cannot be used; state says why (queries.LINK_*)."""

    def __init__(self, state: str) -> None:
        super().__init__(state)
        self.state = state


@dataclass(frozen=True)
class NewApplication:
    """What the public form collects, checked and normalised."""

    organisation_name: str
    enterprise_number: str
    business_contact_name: str
    business_contact_email: str
    business_contact_phone: str
    technical_contact_name: str
    technical_contact_email: str
    technical_contact_phone: str
    public_contact_email: str
    public_contact_phone: str
    public_contact_url: str
    public_contact_address: str
    use_case: str
    expected_monthly_volume: int
    expected_peak_per_day: int
    message_types: Sequence[senders.MessageTypeSpec]
    needs_registered_mail: bool
    certificate: CertificateInfo
    language: str

    def columns(self) -> dict[str, Any]:
        """The SenderApplication columns it fills, as JSON can keep them until confirmation."""
        plain = {
            each.name: getattr(self, each.name)
            for each in dataclasses.fields(self)
            if each.name not in {"message_types", "certificate", "language"}
        }
        return {
            **plain,
            "message_types": [spec.as_dict() for spec in self.message_types],
            "certificate_pem": self.certificate.pem,
            "certificate_fingerprint_sha256": self.certificate.fingerprint_sha256,
        }


def link_lifetime() -> timedelta:
    return timedelta(hours=current_settings().application_link_hours)


def submit_application(*, new: NewApplication) -> UnconfirmedApplication:
    """Keep the form until its business contact confirms the address, and queue the e-mail that
    asks for it. Staff see nothing of it until then."""
    token = secrets.token_urlsafe(32)
    now = utcnow()
    unconfirmed = UnconfirmedApplication(
        token_hash=queries.hash_token(token),
        email=new.business_contact_email,
        details=new.columns(),
        language=new.language if new.language in LANGUAGES else "nl",
        submitted_at=now,
        expires_at=now + link_lifetime(),
    )
    db.session.add(unconfirmed)
    db.session.flush()
    _queue_confirmation_request(unconfirmed, token)
    log.info("application %s waits for its address to be confirmed", unconfirmed.reference)
    return unconfirmed


def _queue_confirmation_request(unconfirmed: UnconfirmedApplication, token: str) -> None:
    """A fixed text, the link and our reference: nothing that the applicant typed, since the
    address is not known to be theirs yet."""
    settings = current_settings()
    mail = render_email(
        "application_confirm",
        subject=lazy_gettext("Confirm your e-mail address for an application to eBox"),
        language=unconfirmed.language,
        link=f"{settings.public_url}{CONFIRM_PATH}{token}",
        hours=settings.application_link_hours,
        reference=unconfirmed.reference,
        public_url=settings.public_url,
    )
    queue_email(
        to=unconfirmed.email,
        subject=mail.subject,
        text=mail.text,
        html=mail.html,
        language=unconfirmed.language,
    )


def confirm_application(*, token: str) -> SenderApplication:
    """Make the form an application that staff review, and spend the link. Raises LinkRefused."""
    now = utcnow()
    unconfirmed = _unconfirmed_for_update(token)
    state = queries.link_state(unconfirmed, now=now)
    if unconfirmed is None or state != queries.LINK_USABLE:
        raise LinkRefused(state)
    application = SenderApplication(
        **_known_columns(unconfirmed.details),
        reference=unconfirmed.reference,
        status=STATUS_PENDING,
        language=unconfirmed.language,
        submitted_at=now,
    )
    db.session.add(application)
    # Kept until the link would expire, to tell a second click apart from a wrong link.
    unconfirmed.confirmed_at = now
    unconfirmed.details = {}
    unconfirmed.email = ""
    db.session.flush()
    record_event(
        PUBLIC,
        "application.submitted",
        "application",
        application.id,
        {"enterprise_number": application.enterprise_number},
    )
    log.info("application %s confirmed: waiting for review", application.reference)
    return application


def _unconfirmed_for_update(token: str) -> UnconfirmedApplication | None:
    """Locked, so that two clicks at once cannot both confirm."""
    if not token or len(token) > queries.MAX_TOKEN_LENGTH:
        return None
    return db.session.scalars(
        select(UnconfirmedApplication)
        .where(UnconfirmedApplication.token_hash == queries.hash_token(token))
        .with_for_update()
    ).first()


def _known_columns(details: dict[str, Any]) -> dict[str, Any]:
    """What the form filled in of SenderApplication's columns, whatever else the JSON holds."""
    columns = set(SenderApplication.__table__.columns.keys()) - _SET_AT_CONFIRMATION
    return {name: value for name, value in details.items() if name in columns}


def forget_unconfirmed_applications(*, now: datetime) -> int:
    """Delete every form whose link has expired, confirmed or not (a confirmed one is only a
    marker by then). Returns how many."""
    result = db.session.execute(
        delete(UnconfirmedApplication).where(UnconfirmedApplication.expires_at <= now)
    )
    return int(getattr(result, "rowcount", 0) or 0)


def pending_application_for_update(application_id: int) -> SenderApplication:
    """The application, locked against a simultaneous decision. Raises ApplicationRefused."""
    application = db.session.scalars(
        select(SenderApplication).where(SenderApplication.id == application_id).with_for_update()
    ).first()
    if application is None or application.status != STATUS_PENDING:
        raise ApplicationRefused(_("This application was already decided."))
    return application


def approve_application(*, application_id: int, staff: StaffMember, actor: Actor) -> Sender:
    """Create the sender of a pending application. Raises ApplicationRefused, SenderRefused or
    CertificateRejected (the certificate may have expired since it was submitted)."""
    application = pending_application_for_update(application_id)
    certificate = parse_certificate(application.certificate_pem, now=utcnow())
    sender = senders.create_sender(
        name=application.organisation_name,
        enterprise_number=application.enterprise_number,
        certificate=certificate,
        message_types=[senders.MessageTypeSpec.from_dict(row) for row in application.message_types],
        may_send_registered=application.needs_registered_mail,
        contact=senders.ContactDetails(
            email=application.public_contact_email,
            phone=application.public_contact_phone,
            url=application.public_contact_url,
            address=application.public_contact_address,
        ),
        actor=actor,
    )
    _decide(application, staff, STATUS_APPROVED)
    application.sender_id = sender.id
    record_event(
        actor, "application.approved", "application", application.id, {"sender": sender.id}
    )
    _queue_mail(
        application,
        "application_approved",
        lazy_gettext("Your application to publish in eBox is approved"),
        sender=sender,
    )
    return sender


def reject_application(
    *, application_id: int, staff: StaffMember, reason: str, actor: Actor
) -> SenderApplication:
    application = pending_application_for_update(application_id)
    _decide(application, staff, STATUS_REJECTED)
    application.rejection_reason = reason
    record_event(actor, "application.rejected", "application", application.id, {"reason": reason})
    _queue_mail(
        application,
        "application_rejected",
        lazy_gettext("Your application to publish in eBox is not approved"),
    )
    return application


def _decide(application: SenderApplication, staff: StaffMember, status: str) -> None:
    application.status = status
    application.reviewed_at = utcnow()
    application.reviewed_by_id = staff.id
    db.session.flush()


def _queue_mail(
    application: SenderApplication, template: str, subject: object, **context: object
) -> None:
    settings = current_settings()
    mail = render_email(
        template,
        subject=subject,
        language=application.language,
        application=application,
        public_url=settings.public_url,
        wsdl_url=f"{settings.public_url}/soap/EboxMessage/v1?wsdl",
        integration_guide=INTEGRATION_GUIDE,
        **context,
    )
    queue_email(
        to=application.business_contact_email,
        subject=mail.subject,
        text=mail.text,
        html=mail.html,
        language=application.language,
    )
