"""Writes of the accounts domain: logins, the assertions they used, and sessions the citizen
ends. Flush, never commit."""

from __future__ import annotations

import logging
import uuid
from datetime import datetime

from sqlalchemy import delete, select, update
from sqlalchemy.exc import IntegrityError

from ebox.accounts.models import Citizen, SeenAssertion, WebSession
from ebox.config import LANGUAGES
from ebox.db_types import utcnow
from ebox.extensions import db

log = logging.getLogger(__name__)


class AssertionReplayed(Exception):
    """This SAML assertion was accepted before: using it again is a replay."""


def remember_assertion(*, assertion_id: str, expires_at: datetime) -> None:
    """Record an accepted assertion id, or raise AssertionReplayed if it was seen before.

    The primary key decides, not a read before the write: of two concurrent posts of the
    same assertion, the second insert fails (PostgreSQL makes it wait for the first).
    """
    try:
        with db.session.begin_nested():
            db.session.add(SeenAssertion(assertion_id=assertion_id, expires_at=expires_at))
    except IntegrityError:
        raise AssertionReplayed(assertion_id) from None


def forget_expired_assertions(now: datetime) -> int:
    """Drop assertion ids that could no longer be accepted anyway. Returns how many."""
    result = db.session.execute(delete(SeenAssertion).where(SeenAssertion.expires_at < now))
    return int(getattr(result, "rowcount", 0) or 0)


def end_sessions(*, citizen_id: int, session_ids: list[uuid.UUID] | None = None) -> int:
    """End the citizen's sessions with these ids (all of them when None) at once: their cookies
    stop working. Another citizen's session id ends nothing. Returns how many were open."""
    statement = update(WebSession).where(
        WebSession.citizen_id == citizen_id, WebSession.ended_at.is_(None)
    )
    if session_ids is not None:
        statement = statement.where(WebSession.id.in_(session_ids))
    result = db.session.execute(
        statement.values(ended_at=utcnow()).execution_options(synchronize_session=False)
    )
    return int(getattr(result, "rowcount", 0) or 0)


def record_login(
    *,
    national_number: str,
    given_name: str,
    surname: str,
    language: str | None,
    chosen_language: str | None = None,
) -> Citizen:
    """Create or update the citizen the identity provider vouched for.

    Names follow the identity provider at every login. The language is taken once, at the
    first login: the one chosen on the page (language switcher) if any, else the identity
    provider's. After that the stored preference is the citizen's to change.
    """
    citizen = _find_or_create(national_number)
    citizen.given_name = given_name or citizen.given_name
    citizen.surname = surname or citizen.surname
    if citizen.last_login_at is None:
        first_choice = chosen_language if chosen_language in LANGUAGES else language
        citizen.language = first_choice or citizen.language or "nl"
    citizen.last_login_at = utcnow()
    db.session.flush()
    return citizen


def _find_or_create(national_number: str) -> Citizen:
    citizen = _find(national_number)
    if citizen is not None:
        return citizen
    try:
        with db.session.begin_nested():
            citizen = Citizen(national_number=national_number)
            db.session.add(citizen)
        return citizen
    except IntegrityError:  # a concurrent first login of the same citizen won the insert
        found = _find(national_number)
        assert found is not None
        return found


def _find(national_number: str) -> Citizen | None:
    query = select(Citizen).where(Citizen.national_number == national_number)
    return db.session.scalars(query).one_or_none()
