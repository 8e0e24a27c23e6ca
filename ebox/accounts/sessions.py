"""Citizens' web sessions: the signed cookie holds a session id, the database holds the rest.

Because the state lives server-side, logout, the idle timeout, the absolute lifetime and the
citizen ending a session from the profile page end it for good: a copied cookie stops working
with them.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable
from datetime import timedelta
from functools import wraps
from typing import TYPE_CHECKING, Any, TypeVar, cast

from flask import g, redirect, request, session, url_for

from ebox.accounts.models import MAX_IP_LENGTH, MAX_USER_AGENT_LENGTH, Citizen, WebSession
from ebox.config import current_settings
from ebox.db_types import utcnow
from ebox.extensions import db

if TYPE_CHECKING:
    from ebox.accounts.saml import VerifiedLogin

# last_seen_at is written at most this often, to spare the database a write per click.
_TOUCH_EVERY = timedelta(seconds=30)

F = TypeVar("F", bound=Callable[..., Any])


def start_session(citizen: Citizen, login: VerifiedLogin | None = None) -> WebSession:
    """Log citizen in: a fresh session id (never reuse one from before login), remembering how
    the identity provider authenticated them."""
    language = session.get("language")
    session.clear()
    if language:
        # A language chosen before logging in is a preference, not a session secret.
        session["language"] = language
    web_session = WebSession(
        citizen_id=citizen.id,
        user_agent=request.user_agent.string[:MAX_USER_AGENT_LENGTH] or None,
        ip_address=(request.remote_addr or "")[:MAX_IP_LENGTH] or None,
    )
    if login is not None:
        web_session.identity_provider = login.identity_provider
        web_session.authn_context = login.authn_context
        web_session.authenticated_at = login.authenticated_at
        web_session.assertion_id = login.assertion_id
    db.session.add(web_session)
    db.session.flush()
    session["sid"] = str(web_session.id)
    session.permanent = False
    return web_session


def end_session() -> None:
    web_session = g.get("web_session")
    if web_session is not None and web_session.ended_at is None:
        web_session.ended_at = utcnow()
    language = session.get("language")
    session.clear()
    if language:
        session["language"] = language  # the login page keeps speaking the citizen's language
    g.citizen = None
    g.web_session = None


def load_session() -> None:
    """Before each request: find the citizen of a live session, end one idle or too old."""
    g.citizen = None
    g.web_session = None
    g.session_expired = False
    web_session = _session_of_cookie()
    if web_session is None or web_session.ended_at is not None:
        if session.get("sid") is not None:
            session.clear()
        return
    now = utcnow()
    if not web_session.is_open(now, idle=idle_limit(), lifetime=lifetime_limit()):
        web_session.ended_at = now
        session.clear()
        g.session_expired = True
        return
    if now - web_session.last_seen_at > _TOUCH_EVERY:
        web_session.last_seen_at = now
    g.web_session = web_session
    g.citizen = db.session.get(Citizen, web_session.citizen_id)


def _session_of_cookie() -> WebSession | None:
    """The session the cookie names. The cookie is signed, but what it holds is only trusted
    to be a session id if it reads as one: anything else means no session (a new login)."""
    raw_id = session.get("sid")
    if not isinstance(raw_id, str):
        return None
    try:
        return db.session.get(WebSession, uuid.UUID(raw_id))
    except ValueError:
        return None


def idle_limit() -> timedelta:
    return timedelta(minutes=current_settings().session_idle_minutes)


def lifetime_limit() -> timedelta:
    return timedelta(hours=current_settings().session_max_hours)


def current_citizen() -> Citizen:
    """The logged-in citizen; only call behind @login_required."""
    return cast(Citizen, g.citizen)


def login_required(view: F) -> F:
    """Send anonymous visitors to the login page and unfinished first visits to onboarding."""

    @wraps(view)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        citizen = g.get("citizen")
        if citizen is None:
            wanted = request.full_path if request.query_string else request.path
            return redirect(url_for("accounts.login_page", next=wanted))
        if not citizen.is_activated and not getattr(view, "allowed_before_activation", False):
            return redirect(url_for("profile.onboarding"))
        return view(*args, **kwargs)

    return cast(F, wrapper)


def allowed_before_activation(view: F) -> F:
    """Mark a view a citizen may use before finishing the first visit (conditions, e-mail)."""
    view.allowed_before_activation = True  # type: ignore[attr-defined]
    return view
