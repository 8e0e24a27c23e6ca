"""The citizen's first visit and profile: conditions, e-mail address with a one-time code, language.

A code is stored only as an HMAC keyed with the application's secret, so a copy of the database
does not reveal codes. Codes are short-lived, counted per try and rate limited per citizen.
"""

from __future__ import annotations

import hashlib
import hmac
import logging
import re
import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta

from flask_babel import lazy_gettext

from ebox.accounts.models import Citizen
from ebox.config import LANGUAGES, current_settings
from ebox.db_types import utcnow
from ebox.extensions import db
from ebox.mail.messages import render_email
from ebox.mail.services import queue_email, send_email
from ebox.national_number import mask
from ebox.profile import queries
from ebox.profile.models import EmailChallenge

log = logging.getLogger(__name__)

MAX_EMAIL_LENGTH = 254
RESEND_INTERVAL = timedelta(seconds=60)
CODES_PER_HOUR = 5

_LOCAL_PART = re.compile(r"[A-Za-z0-9!#$%&'*+/=?^_`{|}~-]+(?:\.[A-Za-z0-9!#$%&'*+/=?^_`{|}~-]+)*")
_DOMAIN_LABEL = re.compile(r"[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?")


class InvalidEmail(ValueError):
    """Not an address eBox can send to."""


class ChallengeError(Exception):
    """The code cannot be issued or accepted; subclasses say why."""


class TooManyCodes(ChallengeError):
    def __init__(self, retry_after: timedelta) -> None:
        super().__init__(f"retry after {retry_after}")
        self.retry_after = retry_after


class NoPendingCode(ChallengeError):
    pass


class CodeExpired(ChallengeError):
    pass


class CodeBurnt(ChallengeError):
    """Too many wrong tries: this code is dead, a new one must be asked for."""


class WrongCode(ChallengeError):
    def __init__(self, remaining_attempts: int) -> None:
        super().__init__(f"{remaining_attempts} attempts left")
        self.remaining_attempts = remaining_attempts


@dataclass(frozen=True)
class IssuedCode:
    challenge: EmailChallenge
    code: str


@dataclass(frozen=True)
class ConfirmedEmail:
    old_email: str | None
    new_email: str


def normalise_email(raw: str) -> str:
    """A reasonable check (not the full RFC 5322): dot-atom local part, DNS host name domain."""
    address = (raw or "").strip()
    if len(address) > MAX_EMAIL_LENGTH or address.count("@") != 1:
        raise InvalidEmail(address)
    local, domain = address.split("@")
    if not 1 <= len(local) <= 64 or not _LOCAL_PART.fullmatch(local):
        raise InvalidEmail(address)
    try:
        domain = domain.encode("idna").decode("ascii").lower()
    except UnicodeError as exc:
        raise InvalidEmail(address) from exc
    labels = domain.split(".")
    if len(labels) < 2 or labels[-1].isdigit():
        raise InvalidEmail(address)
    if not all(_DOMAIN_LABEL.fullmatch(label) for label in labels):
        raise InvalidEmail(address)
    normalised = f"{local}@{domain}"
    if len(normalised) > MAX_EMAIL_LENGTH:
        raise InvalidEmail(address)
    return normalised


def accept_conditions(*, citizen: Citizen) -> None:
    if citizen.conditions_accepted_at is None:
        citizen.conditions_accepted_at = utcnow()
        db.session.flush()


def issue_email_challenge(*, citizen: Citizen, email: str) -> IssuedCode:
    """A new code for email; earlier open codes stop working. Raises TooManyCodes."""
    queries.lock_citizen(citizen.id)
    now = utcnow()
    _check_rate_limit(citizen.id, now)
    _invalidate_open_challenges(citizen.id, now)
    code = f"{secrets.randbelow(1_000_000):06d}"
    challenge = EmailChallenge(
        citizen_id=citizen.id,
        email=email,
        code_hash=hash_code(citizen_id=citizen.id, email=email, code=code),
        created_at=now,
        expires_at=now + timedelta(minutes=current_settings().email_code_minutes),
    )
    db.session.add(challenge)
    db.session.flush()
    log.info("e-mail code issued for citizen %s", mask(citizen.national_number))
    return IssuedCode(challenge=challenge, code=code)


def _check_rate_limit(citizen_id: int, now: datetime) -> None:
    issued = queries.challenge_times_since(citizen_id, now - timedelta(hours=1))
    if len(issued) >= CODES_PER_HOUR:
        raise TooManyCodes(issued[-CODES_PER_HOUR] + timedelta(hours=1) - now)
    if issued and now - issued[-1] < RESEND_INTERVAL:
        raise TooManyCodes(issued[-1] + RESEND_INTERVAL - now)


def _invalidate_open_challenges(citizen_id: int, now: datetime) -> None:
    for challenge in queries.live_challenges(citizen_id, now):
        challenge.expires_at = now


def hash_code(*, citizen_id: int, email: str, code: str) -> str:
    """HMAC-SHA256 of the code, bound to the citizen and the address it was sent to."""
    key = current_settings().secret_key.encode()
    message = f"ebox-email-code\x00{citizen_id}\x00{email}\x00{code}".encode()
    return hmac.new(key, message, hashlib.sha256).hexdigest()


def confirm_email(*, citizen: Citizen, code: str) -> ConfirmedEmail:
    """Check the code of the open challenge; on success the address becomes the citizen's.

    Raises NoPendingCode, CodeExpired, CodeBurnt or WrongCode. A wrong try is counted (flushed):
    the caller must commit it even though it answers with an error.
    """
    challenge = queries.latest_open_challenge(citizen.id, for_update=True)
    max_attempts = current_settings().email_code_attempts
    if challenge is None:
        raise NoPendingCode()
    if challenge.expires_at <= utcnow():
        raise CodeExpired()
    if challenge.attempts >= max_attempts:
        raise CodeBurnt()
    expected = hash_code(citizen_id=citizen.id, email=challenge.email, code=code)
    if not hmac.compare_digest(expected, challenge.code_hash):
        return _count_wrong_try(challenge, max_attempts)
    return _confirm(citizen, challenge)


def _count_wrong_try(challenge: EmailChallenge, max_attempts: int) -> ConfirmedEmail:
    challenge.attempts += 1
    db.session.flush()
    if challenge.attempts >= max_attempts:
        raise CodeBurnt()
    raise WrongCode(max_attempts - challenge.attempts)


def _confirm(citizen: Citizen, challenge: EmailChallenge) -> ConfirmedEmail:
    now = utcnow()
    old_email = citizen.email if citizen.email_confirmed_at is not None else None
    challenge.confirmed_at = now
    citizen.email = challenge.email
    citizen.email_confirmed_at = now
    db.session.flush()
    log.info("e-mail address confirmed for citizen %s", mask(citizen.national_number))
    return ConfirmedEmail(old_email=old_email, new_email=challenge.email)


def set_language(*, citizen: Citizen, language: str) -> None:
    if language not in LANGUAGES:
        raise ValueError(f"unknown language {language!r}")
    citizen.language = language
    db.session.flush()


def set_electronic_only(*, citizen: Citizen, is_electronic_only: bool) -> None:
    citizen.is_electronic_only = is_electronic_only
    db.session.flush()


def set_reminders(*, citizen: Citizen, wants_reminders: bool) -> None:
    citizen.wants_reminders = wants_reminders
    db.session.flush()


def send_code_email(*, citizen: Citizen, issued: IssuedCode) -> None:
    """Send the code now (after the commit). Raises MailDeliveryError."""
    minutes = current_settings().email_code_minutes
    mail = render_email(
        "email_code",
        subject=lazy_gettext("Your eBox confirmation code"),
        language=citizen.language,
        code=issued.code,
        minutes=minutes,
        public_url=current_settings().public_url,
    )
    send_email(
        to=issued.challenge.email,
        subject=mail.subject,
        text=mail.text,
        html=mail.html,
        language=citizen.language,
    )


def queue_change_notice(*, citizen: Citizen, change: ConfirmedEmail) -> None:
    """Tell the old address, once committed, that eBox now writes to another one."""
    if change.old_email is None or change.old_email == change.new_email:
        return
    mail = render_email(
        "email_changed",
        subject=lazy_gettext("Your eBox e-mail address was changed"),
        language=citizen.language,
        public_url=current_settings().public_url,
    )
    queue_email(
        to=change.old_email,
        subject=mail.subject,
        text=mail.text,
        html=mail.html,
        language=citizen.language,
    )
