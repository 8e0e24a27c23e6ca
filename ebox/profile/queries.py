"""Reads for the first visit and the profile page."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import select

from ebox.accounts.models import Citizen
from ebox.db_types import utcnow
from ebox.extensions import db
from ebox.national_number import printed
from ebox.profile.models import EmailChallenge


@dataclass(frozen=True)
class ProfileSummary:
    full_name: str
    national_number: str
    email: str | None
    is_email_confirmed: bool
    language: str
    is_electronic_only: bool
    pending_email: str | None


def latest_open_challenge(citizen_id: int, *, for_update: bool = False) -> EmailChallenge | None:
    """The newest challenge not yet confirmed, live or not (expired or burnt ones included)."""
    query = (
        select(EmailChallenge)
        .where(EmailChallenge.citizen_id == citizen_id, EmailChallenge.confirmed_at.is_(None))
        .order_by(EmailChallenge.created_at.desc(), EmailChallenge.id.desc())
        .limit(1)
    )
    if for_update:
        # Two tries at once must not both read the same attempt count.
        query = query.with_for_update().execution_options(populate_existing=True)
    return db.session.scalars(query).first()


def pending_challenge(citizen_id: int, *, max_attempts: int) -> EmailChallenge | None:
    """The challenge whose code may still be entered: not expired, not burnt."""
    challenge = latest_open_challenge(citizen_id)
    if challenge is None or challenge.expires_at <= utcnow():
        return None
    if challenge.attempts >= max_attempts:
        return None
    return challenge


def challenge_times_since(citizen_id: int, since: datetime) -> list[datetime]:
    """When codes were issued to this citizen since a moment, oldest first (rate limits)."""
    query = (
        select(EmailChallenge.created_at)
        .where(EmailChallenge.citizen_id == citizen_id, EmailChallenge.created_at > since)
        .order_by(EmailChallenge.created_at)
    )
    return list(db.session.scalars(query))


def live_challenges(citizen_id: int, now: datetime) -> list[EmailChallenge]:
    """Unconfirmed challenges that have not expired yet."""
    query = select(EmailChallenge).where(
        EmailChallenge.citizen_id == citizen_id,
        EmailChallenge.confirmed_at.is_(None),
        EmailChallenge.expires_at > now,
    )
    return list(db.session.scalars(query))


def lock_citizen(citizen_id: int) -> None:
    """Serialise code requests of one citizen (PostgreSQL row lock; SQLite locks on write)."""
    db.session.execute(select(Citizen.id).where(Citizen.id == citizen_id).with_for_update())


def profile_summary(citizen: Citizen, *, max_attempts: int) -> ProfileSummary:
    pending = pending_challenge(citizen.id, max_attempts=max_attempts)
    return ProfileSummary(
        full_name=f"{citizen.given_name} {citizen.surname}".strip(),
        national_number=printed(citizen.national_number),
        email=citizen.email,
        is_email_confirmed=citizen.email_confirmed_at is not None,
        language=citizen.language,
        is_electronic_only=citizen.is_electronic_only,
        pending_email=pending.email if pending is not None else None,
    )
