"""An institution's application: submitted on the public form, then approved or rejected by staff.

Approval creates the sender, its message types and its certificate in the caller's transaction;
the applicant is told of every step by e-mail, in the language the form was filled in, once
the transaction has committed.
"""

from __future__ import annotations

import logging
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import timedelta

from flask_babel import lazy_gettext
from sqlalchemy import func, select

from ebox.admin.models import StaffMember
from ebox.applications.models import (
    STATUS_APPROVED,
    STATUS_PENDING,
    STATUS_REJECTED,
    SenderApplication,
)
from ebox.audit.services import Actor, record_event
from ebox.config import LANGUAGES, current_settings
from ebox.db_types import utcnow
from ebox.extensions import db
from ebox.mail.services import queue_email, render_email
from ebox.senders import services as senders
from ebox.senders.certificates import CertificateInfo, parse_certificate
from ebox.senders.models import Sender
from ebox.senders.texts import _

log = logging.getLogger(__name__)

PUBLIC = Actor("public", "web")
# A public form invites abuse: a few pending applications per organisation, and a ceiling for
# everybody together, keep a flood from burying real ones.
MAX_PENDING_PER_ORGANISATION = 3
MAX_SUBMISSIONS_PER_HOUR = 60
INTEGRATION_GUIDE = "docs/integration/"


class ApplicationRefused(ValueError):
    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


class TooManyApplications(ApplicationRefused):
    pass


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


def submit_application(new: NewApplication) -> SenderApplication:
    """Save a pending application and queue its acknowledgement. Raises TooManyApplications."""
    _check_limits(new.enterprise_number)
    application = SenderApplication(
        status=STATUS_PENDING,
        organisation_name=new.organisation_name,
        enterprise_number=new.enterprise_number,
        business_contact_name=new.business_contact_name,
        business_contact_email=new.business_contact_email,
        business_contact_phone=new.business_contact_phone,
        technical_contact_name=new.technical_contact_name,
        technical_contact_email=new.technical_contact_email,
        technical_contact_phone=new.technical_contact_phone,
        public_contact_email=new.public_contact_email,
        public_contact_phone=new.public_contact_phone,
        public_contact_url=new.public_contact_url,
        public_contact_address=new.public_contact_address,
        use_case=new.use_case,
        expected_monthly_volume=new.expected_monthly_volume,
        expected_peak_per_day=new.expected_peak_per_day,
        message_types=[spec.as_dict() for spec in new.message_types],
        needs_registered_mail=new.needs_registered_mail,
        certificate_pem=new.certificate.pem,
        certificate_fingerprint_sha256=new.certificate.fingerprint_sha256,
        language=new.language if new.language in LANGUAGES else "nl",
    )
    db.session.add(application)
    db.session.flush()
    record_event(
        PUBLIC,
        "application.submitted",
        "application",
        application.id,
        {"enterprise_number": application.enterprise_number},
    )
    _queue_mail(application, "application_received", lazy_gettext("We received your application"))
    log.info("application %s submitted", application.reference)
    return application


def _check_limits(enterprise_number: str) -> None:
    pending = db.session.scalar(
        select(func.count(SenderApplication.id)).where(
            SenderApplication.enterprise_number == enterprise_number,
            SenderApplication.status == STATUS_PENDING,
        )
    )
    if (pending or 0) >= MAX_PENDING_PER_ORGANISATION:
        raise TooManyApplications(
            _(
                "Several applications of this organisation are already waiting for review. "
                "We will answer them first."
            )
        )
    recent = db.session.scalar(
        select(func.count(SenderApplication.id)).where(
            SenderApplication.submitted_at > utcnow() - timedelta(hours=1)
        )
    )
    if (recent or 0) >= MAX_SUBMISSIONS_PER_HOUR:
        raise TooManyApplications(
            _("We receive many applications at the moment. Please try again in an hour.")
        )


def find_by_reference(reference: uuid.UUID) -> SenderApplication | None:
    return db.session.scalars(
        select(SenderApplication).where(SenderApplication.reference == reference)
    ).first()


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
