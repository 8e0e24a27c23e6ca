"""Reads of the accounts domain: a citizen's open web sessions, as the profile page lists them."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import select

from ebox.accounts.models import WebSession
from ebox.extensions import db

# (token in the User-Agent header, name shown), first match wins: order matters, since Edge and
# Opera also say Chrome, and Chrome also says Safari.
_BROWSERS = (
    ("Edg/", "Edge"),
    ("OPR/", "Opera"),
    ("Firefox/", "Firefox"),
    ("FxiOS/", "Firefox"),
    ("SamsungBrowser/", "Samsung Internet"),
    ("CriOS/", "Chrome"),
    ("Chrome/", "Chrome"),
    ("Safari/", "Safari"),
)
_SYSTEMS = (
    ("Android", "Android"),
    ("iPhone", "iOS"),
    ("iPad", "iPadOS"),
    ("Windows", "Windows"),
    ("Mac OS X", "macOS"),
    ("CrOS", "ChromeOS"),
    ("Linux", "Linux"),
)


@dataclass(frozen=True)
class OpenSession:
    id: uuid.UUID
    created_at: datetime
    last_seen_at: datetime
    browser: str  # "Firefox", or "" when the browser did not say
    system: str  # "Android", or ""
    ip_address: str | None
    is_current: bool


def open_sessions(
    citizen_id: int, *, current_id: uuid.UUID, now: datetime, idle: timedelta, lifetime: timedelta
) -> list[OpenSession]:
    """The citizen's sessions that still let a browser in, the most recently used first."""
    rows = db.session.scalars(
        select(WebSession)
        .where(
            WebSession.citizen_id == citizen_id,
            WebSession.ended_at.is_(None),
            WebSession.last_seen_at > now - idle,
            WebSession.created_at > now - lifetime,
        )
        .order_by(WebSession.last_seen_at.desc(), WebSession.created_at.desc())
    )
    return [_open_session(row, current_id) for row in rows]


def _open_session(row: WebSession, current_id: uuid.UUID) -> OpenSession:
    user_agent = row.user_agent or ""
    return OpenSession(
        id=row.id,
        created_at=row.created_at,
        last_seen_at=row.last_seen_at,
        browser=_first_match(_BROWSERS, user_agent),
        system=_first_match(_SYSTEMS, user_agent),
        ip_address=row.ip_address,
        is_current=row.id == current_id,
    )


def describe_user_agent(user_agent: str) -> tuple[str, str]:
    """(browser, system) named in a User-Agent header, each "" when it does not say."""
    return _first_match(_BROWSERS, user_agent), _first_match(_SYSTEMS, user_agent)


def _first_match(table: tuple[tuple[str, str], ...], user_agent: str) -> str:
    return next((name for token, name in table if token in user_agent), "")
