"""Writes to senders: creation (approval or command line), certificates, suspension, rights.

Every change is audited in the same transaction, with the actor who made it. Functions flush,
never commit.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from urllib.parse import urlsplit

from sqlalchemy import select

from ebox.audit.services import Actor, record_event
from ebox.db_types import utcnow
from ebox.extensions import db
from ebox.senders.certificates import CertificateInfo
from ebox.senders.enterprise_number import display
from ebox.senders.models import MessageType, Sender, SenderCertificate
from ebox.senders.texts import _

CODE_PATTERN = re.compile(r"[A-Z0-9_]{2,50}")
MAX_MESSAGE_TYPES = 20
MIN_VALIDITY_DAYS = 1
MAX_VALIDITY_DAYS = 1096
MAX_NAME_LENGTH = 200
MAX_URL_LENGTH = 500


class SenderRefused(ValueError):
    """The change would break a rule (a duplicate, a bad message type); the message says which."""

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


@dataclass(frozen=True)
class MessageTypeSpec:
    code: str
    name_nl: str
    name_fr: str
    name_de: str
    name_en: str
    validity_days: int

    @classmethod
    def from_dict(cls, row: dict[str, object]) -> MessageTypeSpec:
        return cls(
            code=str(row["code"]),
            name_nl=str(row["name_nl"]),
            name_fr=str(row["name_fr"]),
            name_de=str(row["name_de"]),
            name_en=str(row["name_en"]),
            validity_days=int(str(row["validity_days"])),
        )

    def as_dict(self) -> dict[str, object]:
        return {
            "code": self.code,
            "name_nl": self.name_nl,
            "name_fr": self.name_fr,
            "name_de": self.name_de,
            "name_en": self.name_en,
            "validity_days": self.validity_days,
        }


@dataclass(frozen=True)
class ContactDetails:
    """What citizens see with every document to reach the sender."""

    email: str = ""
    phone: str = ""
    url: str = ""
    address: str = ""


def check_message_types(specs: Sequence[MessageTypeSpec]) -> None:
    """Raise SenderRefused unless specs are 1 to 20 well-formed types with distinct codes."""
    if not 1 <= len(specs) <= MAX_MESSAGE_TYPES:
        raise SenderRefused(_("Give between 1 and 20 message types."))
    codes = [spec.code for spec in specs]
    if len(set(codes)) != len(codes):
        raise SenderRefused(_("Each message type needs a code of its own."))
    for spec in specs:
        if not CODE_PATTERN.fullmatch(spec.code):
            raise SenderRefused(
                _(
                    "The code %(code)s is not valid: use 2 to 50 capital letters, digits or _.",
                    code=spec.code,
                )
            )
        if not MIN_VALIDITY_DAYS <= spec.validity_days <= MAX_VALIDITY_DAYS:
            raise SenderRefused(
                _("The validity of %(code)s must be 1 to 1096 days.", code=spec.code)
            )
        names = (spec.name_nl, spec.name_fr, spec.name_de, spec.name_en)
        if not all(0 < len(name.strip()) <= MAX_NAME_LENGTH for name in names):
            raise SenderRefused(
                _("Message type %(code)s needs a name in every language.", code=spec.code)
            )


def check_new_sender(*, enterprise_number: str, fingerprint_sha256: str) -> None:
    """Raise SenderRefused if the organisation or the certificate is already registered."""
    existing = db.session.scalars(
        select(Sender).where(Sender.enterprise_number == enterprise_number)
    ).first()
    if existing is not None:
        raise SenderRefused(
            _(
                "A sender with enterprise number %(number)s already exists (%(name)s).",
                number=display(enterprise_number),
                name=existing.name,
            )
        )
    check_certificate_is_new(fingerprint_sha256)


def check_certificate_is_new(fingerprint_sha256: str) -> None:
    owner = db.session.scalars(
        select(SenderCertificate).where(SenderCertificate.fingerprint_sha256 == fingerprint_sha256)
    ).first()
    if owner is not None:
        raise SenderRefused(
            _(
                "This certificate is already registered (to sender %(sender_id)d). "
                "Each certificate belongs to one sender only.",
                sender_id=owner.sender_id,
            )
        )


def create_sender(
    *,
    name: str,
    enterprise_number: str,
    certificate: CertificateInfo,
    message_types: Sequence[MessageTypeSpec],
    may_send_registered: bool,
    contact: ContactDetails,
    actor: Actor,
) -> Sender:
    """An approved, active sender with its message types and certificate. Raises SenderRefused."""
    check_message_types(message_types)
    check_new_sender(
        enterprise_number=enterprise_number, fingerprint_sha256=certificate.fingerprint_sha256
    )
    sender = Sender(
        name=name,
        enterprise_number=enterprise_number,
        contact_email=contact.email,
        contact_phone=contact.phone,
        contact_url=contact.url,
        contact_address=contact.address,
        is_active=True,
        may_send_registered=may_send_registered,
    )
    db.session.add(sender)
    db.session.flush()
    for spec in message_types:
        db.session.add(MessageType(sender_id=sender.id, **spec.as_dict()))
    stored = _store_certificate(sender, certificate)
    record_event(
        actor,
        "sender.created",
        "sender",
        sender.id,
        {
            "enterprise_number": enterprise_number,
            "message_types": [spec.code for spec in message_types],
            "may_send_registered": may_send_registered,
            "certificate_fingerprint": stored.fingerprint_sha256,
        },
    )
    return sender


def add_certificate(
    *, sender: Sender, certificate: CertificateInfo, actor: Actor
) -> SenderCertificate:
    """Register another certificate (rotation). Raises SenderRefused for a known certificate."""
    check_certificate_is_new(certificate.fingerprint_sha256)
    stored = _store_certificate(sender, certificate)
    record_event(
        actor,
        "certificate.added",
        "sender",
        sender.id,
        {"certificate_id": stored.id, "fingerprint": stored.fingerprint_sha256},
    )
    return stored


def revoke_certificate(*, certificate: SenderCertificate, reason: str, actor: Actor) -> None:
    """Stop accepting a certificate at once. Revoking twice is refused."""
    if certificate.revoked_at is not None:
        raise SenderRefused(_("This certificate is already revoked."))
    certificate.revoked_at = utcnow()
    certificate.revocation_reason = reason[:500]
    db.session.flush()
    record_event(
        actor,
        "certificate.revoked",
        "sender",
        certificate.sender_id,
        {
            "certificate_id": certificate.id,
            "fingerprint": certificate.fingerprint_sha256,
            "reason": reason[:500],
        },
    )


def suspend_sender(*, sender: Sender, reason: str, actor: Actor) -> None:
    if not sender.is_active:
        raise SenderRefused(_("This sender is already suspended."))
    sender.is_active = False
    db.session.flush()
    record_event(actor, "sender.suspended", "sender", sender.id, {"reason": reason[:500]})


def reactivate_sender(*, sender: Sender, actor: Actor) -> None:
    if sender.is_active:
        raise SenderRefused(_("This sender is already active."))
    sender.is_active = True
    db.session.flush()
    record_event(actor, "sender.reactivated", "sender", sender.id)


def set_reminders(*, message_type: MessageType, sends_reminders: bool, actor: Actor) -> bool:
    """Turn reminders on or off for a message type's documents. False (and no audit event)
    when nothing changes."""
    if message_type.sends_reminders == sends_reminders:
        return False
    message_type.sends_reminders = sends_reminders
    db.session.flush()
    record_event(
        actor,
        "message_type.reminders_changed",
        "message_type",
        message_type.id,
        {"sender_id": message_type.sender_id, "sends_reminders": sends_reminders},
    )
    return True


def set_registered_right(*, sender: Sender, may_send_registered: bool, actor: Actor) -> bool:
    """Grant or withdraw registered mail. False (and no audit event) when nothing changes."""
    if sender.may_send_registered == may_send_registered:
        return False
    sender.may_send_registered = may_send_registered
    db.session.flush()
    record_event(
        actor,
        "sender.registered_right_changed",
        "sender",
        sender.id,
        {"may_send_registered": may_send_registered},
    )
    return True


def _store_certificate(sender: Sender, certificate: CertificateInfo) -> SenderCertificate:
    stored = SenderCertificate(
        sender_id=sender.id,
        fingerprint_sha256=certificate.fingerprint_sha256,
        pem=certificate.pem,
        subject=certificate.subject,
        not_before=certificate.not_before,
        not_after=certificate.not_after,
    )
    db.session.add(stored)
    db.session.flush()
    return stored


def parse_message_type_option(text: str) -> MessageTypeSpec:
    """CODE:DAYS or CODE:DAYS:NAME (the name in every language; the code when absent)."""
    code, _sep, rest = text.partition(":")
    days, _sep, name = rest.partition(":")
    code = code.strip().upper()
    if not days.strip().isdigit():
        raise SenderRefused(
            _("Write a message type as CODE:DAYS or CODE:DAYS:NAME, not %(text)s.", text=text)
        )
    name = name.strip() or code
    spec = MessageTypeSpec(code, name, name, name, name, int(days))
    check_message_types([spec])
    return spec


def check_public_url(url: str) -> str:
    """A web address citizens may be sent to: https, a host name, no credentials. Raises."""
    url = url.strip()
    parts = urlsplit(url)
    if (
        parts.scheme != "https"
        or not parts.hostname
        or "." not in parts.hostname
        or parts.username
        or parts.password
        or any(char.isspace() or ord(char) < 32 for char in url)
        or len(url) > MAX_URL_LENGTH
    ):
        raise SenderRefused(
            _("Give a web address starting with https://, like https://example.be/contact.")
        )
    return url
