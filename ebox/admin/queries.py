"""Reads for the staff pages. Documents are seen through metadata only: never a title, a body,
a file name or content, so that no staff screen can show what a citizen received."""

from __future__ import annotations

import math
import uuid
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from typing import Any

from sqlalchemy import ColumnElement, Select, and_, func, not_, select
from sqlalchemy.orm import selectinload

from ebox.accounts.models import Citizen
from ebox.alerts.models import AlertDelivery
from ebox.alerts.services import delivery_counts, platform_today
from ebox.applications.models import STATUS_PENDING, SenderApplication
from ebox.audit.models import AuditEvent
from ebox.db_types import utcnow
from ebox.evidence.jobs import SWEEP_WINDOW
from ebox.evidence.models import Evidence
from ebox.evidence.services import count_late_proofs, latest_proof_versions
from ebox.extensions import db
from ebox.mailbox.models import Document
from ebox.mailbox.queries import Page
from ebox.mandates.models import Mandate
from ebox.national_number import mask
from ebox.senders.models import MessageType, Sender, SenderCertificate
from ebox.soap import faults

APPLICATION_STATUSES = ("pending", "approved", "rejected")
PAGE_SIZE = 25
AUDIT_PAGE_SIZE = 50
MAX_LOOKUP_RESULTS = 50
# A proof is normally made seconds after its event; after this it counts as late.
PROOF_GRACE = timedelta(minutes=15)


@dataclass(frozen=True)
class Dashboard:
    pending_applications: int
    active_senders: int
    suspended_senders: int
    published_last_day: int
    published_last_week: int
    refusals_last_day: int
    staff_actions_last_day: int
    alerts_today: dict[str, int]  # the day's alert e-mails by status (ebox.alerts.models)
    late_proofs: int  # registered messages whose proof of delivery is overdue


@dataclass(frozen=True)
class DeliveryStatus:
    """What staff may know of one document: when, for whom (masked), and what happened."""

    id: uuid.UUID
    sender_name: str
    message_type_code: str
    ticket: str
    sequence: int | None
    recipient: str
    is_registered: bool
    published_at: datetime
    read_at: datetime | None
    expires_at: datetime
    deleted_at: datetime | None
    # Registered mail: what was sealed, and the latest proof the sender can fetch.
    events: tuple[SealedEvent, ...] = ()
    proof_version: int | None = None


@dataclass(frozen=True)
class SealedEvent:
    """One evidence as staff see it: its event, time and id, never its XML (it names the title)."""

    event: str
    event_at: datetime
    evidence_id: uuid.UUID


@dataclass(frozen=True)
class Conflicts:
    """Why an application could not be approved as it stands."""

    sender_with_number: Sender | None
    certificate_owner_id: int | None


def _count(query: Select[Any]) -> int:
    return int(db.session.scalar(select(func.count()).select_from(query.subquery())) or 0)


def _paged(query: Select[Any], number: int, size: int) -> Page[Any]:
    total = _count(query.order_by(None))
    count = max(1, math.ceil(total / size))
    number = min(max(1, number), count)
    items = db.session.scalars(query.limit(size).offset((number - 1) * size)).all()
    return Page(items=items, number=number, count=count, total=total)


def dashboard(now: datetime) -> Dashboard:
    day, week = now - timedelta(days=1), now - timedelta(days=7)
    return Dashboard(
        pending_applications=_count(
            select(SenderApplication.id).where(SenderApplication.status == STATUS_PENDING)
        ),
        active_senders=_count(select(Sender.id).where(Sender.is_active.is_(True))),
        suspended_senders=_count(select(Sender.id).where(Sender.is_active.is_(False))),
        published_last_day=_count(select(Document.id).where(Document.published_at > day)),
        published_last_week=_count(select(Document.id).where(Document.published_at > week)),
        refusals_last_day=_count(
            select(AuditEvent.id).where(
                AuditEvent.occurred_at > day, AuditEvent.action.in_(faults.REFUSAL_ACTIONS)
            )
        ),
        staff_actions_last_day=_count(
            select(AuditEvent.id).where(
                AuditEvent.occurred_at > day, AuditEvent.actor_type == "staff"
            )
        ),
        alerts_today=delivery_counts(platform_today(now)),
        late_proofs=count_late_proofs(now, window=SWEEP_WINDOW, grace=PROOF_GRACE),
    )


def applications_page(status: str | None, *, number: int) -> Page[SenderApplication]:
    query = select(SenderApplication).order_by(SenderApplication.submitted_at.desc())
    if status in APPLICATION_STATUSES:
        query = query.where(SenderApplication.status == status)
    return _paged(query, number, PAGE_SIZE)


def find_application(application_id: int) -> SenderApplication | None:
    return db.session.get(SenderApplication, application_id)


def conflicts_for(application: SenderApplication) -> Conflicts:
    sender = db.session.scalars(
        select(Sender).where(Sender.enterprise_number == application.enterprise_number)
    ).first()
    owner = db.session.scalar(
        select(SenderCertificate.sender_id).where(
            SenderCertificate.fingerprint_sha256 == application.certificate_fingerprint_sha256
        )
    )
    return Conflicts(sender_with_number=sender, certificate_owner_id=owner)


def senders_page(*, number: int) -> Page[Sender]:
    query = select(Sender).order_by(Sender.name, Sender.id)
    return _paged(query.options(selectinload(Sender.certificates)), number, PAGE_SIZE)


def find_sender(sender_id: int) -> Sender | None:
    return db.session.scalars(
        select(Sender)
        .where(Sender.id == sender_id)
        .options(selectinload(Sender.message_types), selectinload(Sender.certificates))
    ).first()


def find_certificate(sender_id: int, certificate_id: int) -> SenderCertificate | None:
    certificate = db.session.get(SenderCertificate, certificate_id)
    return certificate if certificate is not None and certificate.sender_id == sender_id else None


def all_senders() -> list[tuple[int, str]]:
    return [(row.id, row.name) for row in db.session.execute(select(Sender.id, Sender.name))]


def delivery_by_ticket(
    *, sender_id: int, ticket: str, sequence: int | None
) -> list[DeliveryStatus]:
    """Every document of the sender with this ticket; one only when the sequence is given."""
    query = _status_query().where(Document.sender_id == sender_id, Document.sender_ticket == ticket)
    if sequence is not None:
        query = query.where(Document.sender_sequence == sequence)
    return _statuses(query.order_by(Document.sender_sequence).limit(MAX_LOOKUP_RESULTS))


def delivery_by_id(document_id: uuid.UUID) -> list[DeliveryStatus]:
    return _statuses(_status_query().where(Document.id == document_id))


def _status_query() -> Select[*tuple[Any, ...]]:
    """Columns named one by one: a title, body or file name is never even read."""
    return (
        select(
            Document.id,
            Sender.name.label("sender_name"),
            MessageType.code.label("message_type_code"),
            Document.sender_ticket,
            Document.sender_sequence,
            Document.recipient_national_number,
            Document.is_registered,
            Document.published_at,
            Document.read_at,
            Document.expires_at,
            Document.deleted_at,
        )
        .select_from(Document)
        .join(Sender, Document.sender_id == Sender.id)
        .join(MessageType, Document.message_type_id == MessageType.id)
    )


def _statuses(query: Select[*tuple[Any, ...]]) -> list[DeliveryStatus]:
    rows = list(db.session.execute(query))
    registered = [row.id for row in rows if row.is_registered]
    events = _sealed_events(registered)
    proofs = latest_proof_versions(registered)
    return [
        DeliveryStatus(
            id=row.id,
            sender_name=row.sender_name,
            message_type_code=row.message_type_code,
            ticket=row.sender_ticket,
            sequence=row.sender_sequence,
            recipient=mask(row.recipient_national_number),
            is_registered=row.is_registered,
            published_at=row.published_at,
            read_at=row.read_at,
            expires_at=row.expires_at,
            deleted_at=row.deleted_at,
            events=tuple(events.get(row.id, [])),
            proof_version=proofs.get(row.id),
        )
        for row in rows
    ]


def _sealed_events(document_ids: list[uuid.UUID]) -> dict[uuid.UUID, list[SealedEvent]]:
    """Columns named one by one: the evidence XML is never read."""
    found: dict[uuid.UUID, list[SealedEvent]] = {}
    if not document_ids:
        return found
    rows = db.session.execute(
        select(Evidence.document_id, Evidence.event, Evidence.event_at, Evidence.id)
        .where(Evidence.document_id.in_(document_ids))
        .order_by(Evidence.document_id, Evidence.position)
    )
    for document_id, event, event_at, evidence_id in rows:
        found.setdefault(document_id, []).append(SealedEvent(event, event_at, evidence_id))
    return found


@dataclass(frozen=True)
class DocumentCounts:
    """Documents addressed to one national number, counted: nothing else of them is read."""

    available: int  # not deleted and not expired: what the citizen sees
    unread: int  # available and never opened
    registered: int  # available registered mail
    # Gone at expiry: deleted, or expired and waiting for the purge (the citizen no longer
    # sees them either way).
    expired: int


@dataclass(frozen=True)
class LastAlert:
    """The citizen's latest daily e-mail alert: its day and state (ebox.alerts.models)."""

    day: date
    status: str


@dataclass(frozen=True)
class CitizenAccount:
    """A citizen who has logged in, as staff see them: dates and states only."""

    citizen_id: int
    first_login_at: datetime | None
    last_login_at: datetime | None
    conditions_accepted_at: datetime | None
    has_email: bool
    email_confirmed_at: datetime | None
    last_alert: LastAlert | None
    # Active mandates: how many, never whose or on what.
    mandates_granted: int = 0
    mandates_held: int = 0

    @property
    def is_activated(self) -> bool:
        """The rule of Citizen.is_activated, on the columns read here."""
        return self.conditions_accepted_at is not None and self.email_confirmed_at is not None


@dataclass(frozen=True)
class CitizenOverview:
    national_number: str
    account: CitizenAccount | None  # None: never logged in; documents wait for the first visit
    documents: DocumentCounts


def citizen_overview(number: str, *, now: datetime) -> CitizenOverview:
    """What staff may know of one national number's eBox, whether or not the citizen came yet."""
    return CitizenOverview(
        national_number=number,
        account=_citizen_account(number),
        documents=_document_counts(number, now=now),
    )


def _citizen_account(number: str) -> CitizenAccount | None:
    """Columns named one by one: neither the names nor the e-mail address are even read."""
    row = db.session.execute(
        select(
            Citizen.id,
            Citizen.created_at,
            Citizen.last_login_at,
            Citizen.conditions_accepted_at,
            Citizen.email.is_not(None).label("has_email"),
            Citizen.email_confirmed_at,
        ).where(Citizen.national_number == number)
    ).first()
    if row is None:
        return None
    return CitizenAccount(
        citizen_id=row.id,
        # A login makes the row; one made otherwise (demo data) has no login to date.
        first_login_at=row.created_at if row.last_login_at is not None else None,
        last_login_at=row.last_login_at,
        conditions_accepted_at=row.conditions_accepted_at,
        has_email=bool(row.has_email),
        email_confirmed_at=row.email_confirmed_at,
        last_alert=_last_alert(row.id),
        mandates_granted=_active_mandates(Mandate.owner_id == row.id),
        mandates_held=_active_mandates(Mandate.holder_id == row.id),
    )


def _active_mandates(whose: ColumnElement[bool]) -> int:
    now = utcnow()
    active = (Mandate.ended_at.is_(None), Mandate.accepted_at.is_not(None), Mandate.ends_at > now)
    return db.session.scalar(select(func.count()).select_from(Mandate).where(whose, *active)) or 0


def _document_counts(number: str, *, now: datetime) -> DocumentCounts:
    """Every count in one pass over the number's documents (ix_documents_recipient_published)."""
    available = and_(Document.deleted_at.is_(None), Document.expires_at > now)
    row = db.session.execute(
        select(
            func.count().filter(available).label("available"),
            func.count().filter(available, Document.read_at.is_(None)).label("unread"),
            func.count().filter(available, Document.is_registered.is_(True)).label("registered"),
            func.count().filter(not_(available)).label("expired"),
        ).where(Document.recipient_national_number == number)
    ).one()
    return DocumentCounts(
        available=row.available, unread=row.unread, registered=row.registered, expired=row.expired
    )


def _last_alert(citizen_id: int) -> LastAlert | None:
    """Day and state only: the windows, counts and errors of an alert stay with the worker."""
    row = db.session.execute(
        select(AlertDelivery.day, AlertDelivery.status)
        .where(AlertDelivery.citizen_id == citizen_id)
        .order_by(AlertDelivery.day.desc())
        .limit(1)
    ).first()
    return LastAlert(day=row.day, status=row.status) if row is not None else None


def audit_page(*, number: int) -> Page[AuditEvent]:
    query = select(AuditEvent).order_by(AuditEvent.id.desc())
    return _paged(query, number, AUDIT_PAGE_SIZE)
