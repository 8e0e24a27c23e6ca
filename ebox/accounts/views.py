"""Citizen login through the SAML federation, and logout."""

from __future__ import annotations

import logging
from typing import Any
from urllib.parse import urlsplit

from flask import (
    Blueprint,
    Response,
    current_app,
    flash,
    g,
    make_response,
    redirect,
    render_template,
    request,
    session,
    url_for,
)
from flask.typing import ResponseReturnValue
from flask_babel import gettext as _
from flask_babel import lazy_gettext as _l
from itsdangerous import BadSignature, URLSafeTimedSerializer
from werkzeug.wrappers import Response as BaseResponse

from ebox import metrics
from ebox.accounts import saml, services
from ebox.accounts.sessions import end_session, start_session
from ebox.config import LANGUAGES, current_settings
from ebox.extensions import csrf

log = logging.getLogger(__name__)

bp = Blueprint("accounts", __name__, url_prefix="/auth")

# The pending login lives in a cookie of its own, not in the session cookie: an identity
# provider on another site posts to the ACS cross-site, and the session cookie is SameSite=Lax.
PENDING_COOKIE = "ebox_saml_login"
PENDING_MAX_AGE = 10 * 60
MESSAGE_NO_PENDING = _l(
    "Your login took too long or was started in another window. Please log in again."
)


@bp.get("/login")
def login_page() -> ResponseReturnValue:
    next_path = safe_next(request.args.get("next"))
    if g.get("citizen") is not None:
        return redirect(next_path or url_for("mailbox.inbox"))
    settings = current_settings()
    return render_template(
        "accounts/login.html", next_path=next_path, is_demo_idp=settings.uses_demo_idp
    )


@bp.get("/saml/start")
def saml_start() -> ResponseReturnValue:
    next_path = safe_next(request.args.get("next")) or ""
    url, request_id = saml.start_login(relay_state=next_path or "/")
    response = redirect(url)
    _set_pending_login(response, {"id": request_id, "next": next_path})
    return response


@bp.post("/saml/acs")
@csrf.exempt  # the identity provider posts here; InResponseTo ties the post to our request
def acs() -> ResponseReturnValue:
    pending = _pending_login()
    try:
        if pending is None:
            raise saml.LoginRefused("no pending login request", MESSAGE_NO_PENDING, 400)
        verified = saml.verify_response(
            saml_response=request.form.get("SAMLResponse", ""), request_id=pending["id"]
        )
        _accept(verified)
    except saml.LoginRefused as refusal:
        metrics.count_login("refused")
        return _refuse(refusal)
    metrics.count_login("accepted")
    response = redirect(safe_next(pending.get("next")) or url_for("mailbox.inbox"))
    _clear_pending_login(response)
    return response


@bp.get("/saml/metadata")
def saml_metadata() -> ResponseReturnValue:
    return Response(saml.sp_metadata_xml(), mimetype="application/samlmetadata+xml")


@bp.post("/logout")
def logout() -> ResponseReturnValue:
    end_session()
    flash(_("You are logged out."), "success")
    return redirect(url_for("accounts.login_page"))


def _accept(verified: saml.VerifiedLogin) -> None:
    try:
        services.remember_assertion(
            assertion_id=verified.assertion_id, expires_at=verified.expires_at
        )
    except services.AssertionReplayed:
        message = _l("This login was already used. Please log in again.")
        raise saml.LoginRefused("assertion replayed", message) from None
    chosen_language = session.get("language")
    citizen = services.record_login(
        national_number=verified.national_number,
        given_name=verified.given_name,
        surname=verified.surname,
        language=verified.language,
        chosen_language=chosen_language,
    )
    start_session(citizen, verified)
    if chosen_language in LANGUAGES:  # keep the language picked before login, drop the rest
        session["language"] = chosen_language
    log.info("citizen %s logged in", citizen.id)


def _refuse(refusal: saml.LoginRefused) -> ResponseReturnValue:
    log.warning("SAML login refused: %s", refusal.reason)
    page = render_template("accounts/refused.html", message=refusal.message)
    response = make_response(page, refusal.status)
    _clear_pending_login(response)
    return response


def safe_next(raw: Any) -> str | None:
    """A local path to go to after login, or None: never another site (open redirect)."""
    if not isinstance(raw, str) or not raw.startswith("/") or raw.startswith("//"):
        return None
    if "\\" in raw or any(ord(char) < 0x21 or ord(char) == 0x7F for char in raw):
        return None
    parts = urlsplit(raw)
    if parts.scheme or parts.netloc:
        return None
    return raw


# --- the pending login cookie ----------------------------------------------------------


def _serializer() -> URLSafeTimedSerializer:
    return URLSafeTimedSerializer(current_app.config["SECRET_KEY"], salt="ebox.saml.pending")


def _set_pending_login(response: BaseResponse, pending: dict[str, str]) -> None:
    secure: bool = current_settings().cookie_secure
    response.set_cookie(
        PENDING_COOKIE,
        _serializer().dumps(pending),
        max_age=PENDING_MAX_AGE,
        path=url_for("accounts.acs"),
        secure=secure,
        httponly=True,
        # A browser sends a SameSite=None cookie only over TLS; without TLS (a laptop with
        # the demo IdP, same site) Lax is enough.
        samesite="None" if secure else "Lax",
    )


def _pending_login() -> dict[str, str] | None:
    raw = request.cookies.get(PENDING_COOKIE)
    if not raw:
        return None
    try:
        pending = _serializer().loads(raw, max_age=PENDING_MAX_AGE)
    except BadSignature:
        return None
    if not isinstance(pending, dict) or not isinstance(pending.get("id"), str):
        return None
    return pending


def _clear_pending_login(response: BaseResponse) -> None:
    secure: bool = current_settings().cookie_secure
    response.delete_cookie(
        PENDING_COOKIE,
        path=url_for("accounts.acs"),
        secure=secure,
        httponly=True,
        samesite="None" if secure else "Lax",
    )
