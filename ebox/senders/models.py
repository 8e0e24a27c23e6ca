"""Institutions that publish documents, the kinds of message each may send, and the
certificates their back offices sign SOAP requests with."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import ForeignKey, String, Text, UniqueConstraint, true
from sqlalchemy.orm import Mapped, mapped_column, relationship

from ebox.db_types import UTCDateTime, utcnow
from ebox.extensions import Model


class Sender(Model):
    __tablename__ = "senders"

    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(String(200))
    enterprise_number: Mapped[str] = mapped_column(String(10), unique=True)
    # How citizens reach the sender: shown with every document.
    contact_email: Mapped[str] = mapped_column(String(254), default="")
    contact_phone: Mapped[str] = mapped_column(String(50), default="")
    contact_url: Mapped[str] = mapped_column(String(500), default="")
    contact_address: Mapped[str] = mapped_column(String(500), default="")
    # A suspended sender (is_active False) is refused at the door of every web service.
    is_active: Mapped[bool] = mapped_column(default=True)
    may_send_registered: Mapped[bool] = mapped_column(default=False)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)

    message_types: Mapped[list[MessageType]] = relationship(
        back_populates="sender", order_by="MessageType.code"
    )
    certificates: Mapped[list[SenderCertificate]] = relationship(
        back_populates="sender", order_by="SenderCertificate.added_at"
    )


class MessageType(Model):
    __tablename__ = "message_types"
    __table_args__ = (UniqueConstraint("sender_id", "code"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    sender_id: Mapped[int] = mapped_column(ForeignKey("senders.id"), index=True)
    code: Mapped[str] = mapped_column(String(50))
    name_nl: Mapped[str] = mapped_column(String(200))
    name_fr: Mapped[str] = mapped_column(String(200))
    name_de: Mapped[str] = mapped_column(String(200))
    name_en: Mapped[str] = mapped_column(String(200))
    validity_days: Mapped[int]
    # Off for documents a reminder makes no sense for (a receipt, a copy of what the citizen did).
    sends_reminders: Mapped[bool] = mapped_column(default=True, server_default=true())

    sender: Mapped[Sender] = relationship(back_populates="message_types")

    def name_in(self, language: str) -> str:
        return str(getattr(self, f"name_{language}", None) or self.name_en)


class SenderCertificate(Model):
    """An X.509 certificate a sender signs with. Several may be valid at once (rotation).

    The sender of a SOAP request is the owner of the certificate that verified its signature,
    found by the certificate's SHA-256 fingerprint; nothing in the payload names the sender.
    """

    __tablename__ = "sender_certificates"

    id: Mapped[int] = mapped_column(primary_key=True)
    sender_id: Mapped[int] = mapped_column(ForeignKey("senders.id"), index=True)
    # Hex SHA-256 of the DER encoding, lower case.
    fingerprint_sha256: Mapped[str] = mapped_column(String(64), unique=True)
    pem: Mapped[str] = mapped_column(Text)
    subject: Mapped[str] = mapped_column(String(1000))
    not_before: Mapped[datetime] = mapped_column(UTCDateTime)
    not_after: Mapped[datetime] = mapped_column(UTCDateTime)
    added_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    revoked_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    revocation_reason: Mapped[str] = mapped_column(String(500), default="")

    sender: Mapped[Sender] = relationship(back_populates="certificates")

    def is_usable(self, now: datetime) -> bool:
        return self.revoked_at is None and self.not_before <= now <= self.not_after
