"""Granting, accepting and ending mandates, and what a holder may read.

Every change is audited (actor: the citizen). A holder never acts for the owner beyond
reading: the mandate pages, the profile and the archive stay each citizen's own.
"""

from __future__ import annotations

import hashlib
import secrets
import uuid
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import func, select

from ebox.accounts.models import Citizen
from ebox.audit.services import Actor, record_event
from ebox.db_types import utcnow
from ebox.evidence.xml import Representative
from ebox.extensions import db
from ebox.mailbox.queries import Scope
from ebox.mandates.models import Mandate
from ebox.senders.models import Sender

MAX_MANDATE_DAYS = 3 * 365 + 1  # the platform's bound on a mandate's length
INVITATION_DAYS = 14  # a code not used by then is worth nothing
MAX_OPEN_MANDATES = 10  # granted by one owner, pending or active
_CODE_ALPHABET = "ABCDEFGHJKLMNPQRSTUVWXYZ23456789"  # no 0/O, 1/I
_CODE_LENGTH = 12  # 60 bits: guessing is hopeless, and the code only serves its one holder


class MandateRefused(Exception):
    """A request the rules refuse; message is for the citizen (translated by the view)."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


@dataclass(frozen=True)
class Invitation:
    mandate: Mandate
    code: str  # shown once to the owner, never stored


def invite(
    *,
    owner: Citizen,
    holder_national_number: str,
    sender_ids: list[int] | None,
    may_open_registered: bool,
    ends_at: datetime,
    now: datetime | None = None,
) -> Invitation:
    """A pending mandate for the person with that national number; sender_ids None: every
    sender of the owner's documents."""
    now = now or utcnow()
    if holder_national_number == owner.national_number:
        raise MandateRefused("self")
    if not now < ends_at <= now + timedelta(days=MAX_MANDATE_DAYS):
        raise MandateRefused("end")
    if _open_mandates(owner, now) >= MAX_OPEN_MANDATES:
        raise MandateRefused("too_many")
    senders: list[Sender] = []
    if sender_ids is not None:
        senders = list(db.session.scalars(select(Sender).where(Sender.id.in_(sender_ids))))
        if not senders or len(senders) != len(set(sender_ids)):
            raise MandateRefused("senders")
    code = "".join(secrets.choice(_CODE_ALPHABET) for _ in range(_CODE_LENGTH))
    mandate = Mandate(
        owner_id=owner.id,
        holder_national_number=holder_national_number,
        is_every_sender=sender_ids is None,
        may_open_registered=may_open_registered,
        ends_at=ends_at,
        code_hash=_hash(code),
        code_expires_at=now + timedelta(days=INVITATION_DAYS),
        created_at=now,
        senders=senders,
    )
    db.session.add(mandate)
    db.session.flush()
    _audit(owner, "mandate.granted", mandate)
    return Invitation(mandate=mandate, code=printed_code(code))


def accept(*, holder: Citizen, code: str, now: datetime | None = None) -> Mandate:
    """The holder accepts the invitation the code belongs to. A code that is wrong, used,
    expired, or meant for someone else is refused alike."""
    now = now or utcnow()
    mandate = db.session.scalar(
        select(Mandate).where(Mandate.code_hash == _hash(code)).with_for_update()
    )
    if (
        mandate is None
        or mandate.holder_national_number != holder.national_number
        or mandate.state(now) != "pending"
    ):
        raise MandateRefused("code")
    mandate.holder_id = holder.id
    mandate.accepted_at = now
    mandate.code_hash = None  # used: worth nothing any more
    db.session.flush()
    _audit(holder, "mandate.accepted", mandate)
    return mandate


def end(*, mandate: Mandate, by: Citizen, now: datetime | None = None) -> None:
    """Owner or holder ends the mandate at once (a pending invitation too)."""
    side = "owner" if by.id == mandate.owner_id else "holder"
    if side == "holder" and mandate.holder_id != by.id:
        raise MandateRefused("not_yours")
    if mandate.ended_at is None:
        mandate.ended_at = now or utcnow()
        mandate.ended_by = side
        mandate.code_hash = None
        db.session.flush()
        _audit(by, "mandate.ended", mandate)


def find_for(citizen: Citizen, mandate_id: uuid.UUID) -> Mandate | None:
    """A mandate the citizen granted or holds (or is invited to); None for anyone else's."""
    mandate = db.session.get(Mandate, mandate_id)
    if mandate is None:
        return None
    if citizen.id in (mandate.owner_id, mandate.holder_id):
        return mandate
    return None


def active_mandate(holder: Citizen, mandate_id: uuid.UUID, now: datetime) -> Mandate | None:
    """The mandate the holder reads under, if it is theirs and active now."""
    mandate = db.session.get(Mandate, mandate_id)
    if mandate is None or mandate.holder_id != holder.id or not mandate.is_active(now):
        return None
    return mandate


def scope_of(mandate: Mandate) -> Scope:
    senders = None if mandate.is_every_sender else tuple(s.id for s in mandate.senders)
    return Scope(sender_ids=senders, registered=mandate.may_open_registered)


def granted_by(owner: Citizen) -> list[Mandate]:
    return list(
        db.session.scalars(
            select(Mandate).where(Mandate.owner_id == owner.id).order_by(Mandate.created_at.desc())
        )
    )


def held_by(holder: Citizen) -> list[Mandate]:
    return list(
        db.session.scalars(
            select(Mandate)
            .where(Mandate.holder_id == holder.id)
            .order_by(Mandate.accepted_at.desc())
        )
    )


def representative_in(mandate: Mandate) -> Representative:
    """The holder as registered-mail evidence names them, with what the mandate allows."""
    holder = mandate.holder
    assert holder is not None  # only an accepted mandate is read under
    senders = (
        "every-sender"
        if mandate.is_every_sender
        else "senders=" + ",".join(str(s.id) for s in mandate.senders)
    )
    registered = " registered-mail" if mandate.may_open_registered else ""
    return Representative(
        national_number=holder.national_number,
        name=f"{holder.given_name} {holder.surname}".strip(),
        mandate_id=str(mandate.id),
        mandate_scope=senders + registered,
        mandate_valid_until=mandate.ends_at,
    )


def printed_code(code: str) -> str:
    return "-".join(code[i : i + 4] for i in range(0, len(code), 4))


def _hash(code: str) -> str:
    normalised = "".join(ch for ch in code.upper() if ch.isalnum())
    return hashlib.sha256(normalised.encode()).hexdigest()


def _open_mandates(owner: Citizen, now: datetime) -> int:
    pending_or_active = (
        select(func.count())
        .select_from(Mandate)
        .where(Mandate.owner_id == owner.id, Mandate.ended_at.is_(None), Mandate.ends_at > now)
        .where((Mandate.accepted_at.is_not(None)) | (Mandate.code_expires_at > now))
    )
    return db.session.scalar(pending_or_active) or 0


def _audit(citizen: Citizen, action: str, mandate: Mandate) -> None:
    details = {
        "owner_id": mandate.owner_id,
        "holder_id": mandate.holder_id,
        "every_sender": mandate.is_every_sender,
        "sender_ids": [s.id for s in mandate.senders],
        "registered": mandate.may_open_registered,
        "ends_at": mandate.ends_at.isoformat(),
    }
    record_event(Actor("citizen", str(citizen.id)), action, "mandate", str(mandate.id), details)
