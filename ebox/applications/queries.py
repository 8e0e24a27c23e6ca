"""Reads of applications. Only SenderApplication rows, whose address is confirmed, are for staff;
an UnconfirmedApplication is read only through its link or its reference, by its applicant."""

from __future__ import annotations

import hashlib
import uuid
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import func, select

from ebox.applications.models import STATUS_PENDING, SenderApplication, UnconfirmedApplication
from ebox.extensions import db

# secrets.token_urlsafe(32) gives 43 characters; anything much longer is not one of ours.
MAX_TOKEN_LENGTH = 100

# What a confirmation link can do.
LINK_USABLE = "usable"
LINK_USED = "used"
LINK_EXPIRED = "expired"
LINK_UNKNOWN = "unknown"  # never sent, mistyped, or forgotten after it expired


@dataclass(frozen=True)
class SameEnterpriseNumber:
    """Applications that name one enterprise number: anyone may type any number in the form, so
    staff weigh an application against the others that claim the same organisation."""

    total: int
    waiting: int


def hash_token(token: str) -> str:
    """The stored form of a link's token. The token is 256 random bits: a plain hash suffices."""
    return hashlib.sha256(token.encode()).hexdigest()


def unconfirmed_by_token(token: str) -> UnconfirmedApplication | None:
    if not token or len(token) > MAX_TOKEN_LENGTH:
        return None
    return db.session.scalars(
        select(UnconfirmedApplication).where(UnconfirmedApplication.token_hash == hash_token(token))
    ).first()


def link_state(unconfirmed: UnconfirmedApplication | None, *, now: datetime) -> str:
    if unconfirmed is None:
        return LINK_UNKNOWN
    if unconfirmed.confirmed_at is not None:
        return LINK_USED
    if unconfirmed.expires_at <= now:
        return LINK_EXPIRED
    return LINK_USABLE


def unconfirmed_by_reference(reference: uuid.UUID) -> UnconfirmedApplication | None:
    return db.session.scalars(
        select(UnconfirmedApplication).where(UnconfirmedApplication.reference == reference)
    ).first()


def find_by_reference(reference: uuid.UUID) -> SenderApplication | None:
    return db.session.scalars(
        select(SenderApplication).where(SenderApplication.reference == reference)
    ).first()


def same_enterprise_number(enterprise_number: str) -> SameEnterpriseNumber:
    """Confirmed applications naming this number (the one being looked at included)."""
    row = db.session.execute(
        select(
            func.count().label("total"),
            func.count().filter(SenderApplication.status == STATUS_PENDING).label("waiting"),
        ).where(SenderApplication.enterprise_number == enterprise_number)
    ).one()
    return SameEnterpriseNumber(total=row.total, waiting=row.waiting)
