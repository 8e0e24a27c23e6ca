"""An institution's application to publish: waiting for its e-mail address to be confirmed, then
kept whatever the decision."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

from sqlalchemy import JSON, ForeignKey, String, Text, Uuid
from sqlalchemy.orm import Mapped, mapped_column

from ebox.db_types import UTCDateTime, utcnow
from ebox.extensions import Model

STATUS_PENDING = "pending"
STATUS_APPROVED = "approved"
STATUS_REJECTED = "rejected"


class SenderApplication(Model):
    """An application whose business contact confirmed the address: what staff review."""

    __tablename__ = "sender_applications"

    id: Mapped[int] = mapped_column(primary_key=True)
    # Quoted to the applicant; not guessable, unlike the id.
    reference: Mapped[uuid.UUID] = mapped_column(Uuid, unique=True, default=uuid.uuid4)
    status: Mapped[str] = mapped_column(String(20), default=STATUS_PENDING, index=True)
    organisation_name: Mapped[str] = mapped_column(String(200))
    enterprise_number: Mapped[str] = mapped_column(String(10), index=True)
    business_contact_name: Mapped[str] = mapped_column(String(200))
    business_contact_email: Mapped[str] = mapped_column(String(254))
    business_contact_phone: Mapped[str] = mapped_column(String(50), default="")
    technical_contact_name: Mapped[str] = mapped_column(String(200))
    technical_contact_email: Mapped[str] = mapped_column(String(254))
    technical_contact_phone: Mapped[str] = mapped_column(String(50), default="")
    # What citizens will see with every document, to contact the institution.
    public_contact_email: Mapped[str] = mapped_column(String(254), default="")
    public_contact_phone: Mapped[str] = mapped_column(String(50), default="")
    public_contact_url: Mapped[str] = mapped_column(String(500), default="")
    public_contact_address: Mapped[str] = mapped_column(String(500), default="")
    use_case: Mapped[str] = mapped_column(Text)
    expected_monthly_volume: Mapped[int]
    expected_peak_per_day: Mapped[int]
    # [{"code", "name_nl", "name_fr", "name_de", "name_en", "validity_days"}, ...]
    message_types: Mapped[list[dict[str, Any]]] = mapped_column(JSON)
    needs_registered_mail: Mapped[bool] = mapped_column(default=False)
    certificate_pem: Mapped[str] = mapped_column(Text)
    certificate_fingerprint_sha256: Mapped[str] = mapped_column(String(64))
    language: Mapped[str] = mapped_column(String(2), default="nl")
    submitted_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    reviewed_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    reviewed_by_id: Mapped[int | None] = mapped_column(ForeignKey("staff_members.id"))
    rejection_reason: Mapped[str] = mapped_column(Text, default="")
    sender_id: Mapped[int | None] = mapped_column(ForeignKey("senders.id"))


class UnconfirmedApplication(Model):
    """A submitted form whose e-mail address is not confirmed yet. Staff never see it: it becomes
    a SenderApplication only when the link sent to the business contact is used.

    Once confirmed, the row keeps only what tells a second use of the link from an unknown one,
    until the link would have expired; the periodic job then forgets it, confirmed or not.
    """

    __tablename__ = "unconfirmed_applications"

    id: Mapped[int] = mapped_column(primary_key=True)
    # The SenderApplication takes the same reference at confirmation.
    reference: Mapped[uuid.UUID] = mapped_column(Uuid, unique=True, default=uuid.uuid4)
    # SHA-256 of the link's token, hex: a copy of the database opens no link.
    token_hash: Mapped[str] = mapped_column(String(64), unique=True)
    # Where the link went; emptied at confirmation, like details.
    email: Mapped[str] = mapped_column(String(254))
    # The SenderApplication's columns as the form filled them in.
    details: Mapped[dict[str, Any]] = mapped_column(JSON)
    language: Mapped[str] = mapped_column(String(2), default="nl")
    submitted_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    expires_at: Mapped[datetime] = mapped_column(UTCDateTime, index=True)
    confirmed_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
