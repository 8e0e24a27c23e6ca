"""What every page shares: the transaction boundary, security headers, htmx, errors, language."""

from __future__ import annotations

import logging
from datetime import datetime
from typing import Any

from flask import Flask, Response, g, render_template, request, session
from flask_babel import format_date, format_time, get_locale
from flask_babel import gettext as _
from werkzeug.exceptions import HTTPException

from ebox import national_number, outages, transactions
from ebox.api import problems as api_problems
from ebox.config import LANGUAGES
from ebox.extensions import htmx

log = logging.getLogger(__name__)

# No inline script or style anywhere: htmx is configured by a meta tag, not by inline code.
CONTENT_SECURITY_POLICY = (
    "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
    "object-src 'self'; frame-src 'self'; frame-ancestors 'self'; base-uri 'none'; "
    "form-action 'self'"
)


def is_htmx() -> bool:
    """True for a request made by htmx, which wants a fragment rather than the page. Restoring
    a page missing from htmx's history cache wants the whole page."""
    return bool(htmx) and not htmx.history_restore_request


def render_page_or_fragment(page_template: str, fragment_template: str, **context: Any) -> str:
    """Same URL, two answers: the whole page, or (for htmx) only the fragment the page includes."""
    return render_template(fragment_template if is_htmx() else page_template, **context)


def select_language() -> str:
    """Session choice, then the citizen's stored preference, then the browser's, then Dutch."""
    chosen = session.get("language")
    if chosen in LANGUAGES:
        return str(chosen)
    citizen = g.get("citizen")
    if citizen is not None and citizen.language in LANGUAGES:
        return str(citizen.language)
    return request.accept_languages.best_match(LANGUAGES) or "nl"


def set_security_headers(response: Response) -> Response:
    headers = response.headers
    headers.setdefault("Content-Security-Policy", CONTENT_SECURITY_POLICY)
    headers.setdefault("X-Content-Type-Options", "nosniff")
    headers.setdefault("X-Frame-Options", "SAMEORIGIN")
    headers.setdefault("Referrer-Policy", "same-origin")
    headers.setdefault("Permissions-Policy", "camera=(), microphone=(), geolocation=()")
    headers.setdefault("Cross-Origin-Opener-Policy", "same-origin")
    if request.is_secure:
        headers.setdefault("Strict-Transport-Security", "max-age=63072000; includeSubDomains")
    if g.get("citizen") is not None or request.path.startswith("/documents"):
        # Personal pages are never cached, not by the browser nor by a proxy.
        headers["Cache-Control"] = "no-store"
    headers.add("Vary", "HX-Request")
    return response


def commit_or_rollback(response: Response) -> Response:
    """The one transaction boundary of a request: commit a good answer, roll back the rest.

    A commit that fails because the database went away answers 503 instead of the response.
    """
    if response.status_code >= 400:
        transactions.rollback()
        return response
    try:
        transactions.commit()
    except Exception as error:
        down = outages.unavailable(error)
        if down is None:
            raise
        if api_problems.is_api_request():
            return api_problems.unavailable(down, error)
        page, code = render_unavailable(down, error)
        return Response(page, code, mimetype="text/html")
    return response


def render_error(error: HTTPException) -> tuple[str, int] | Response:
    transactions.rollback()
    if api_problems.is_api_request():
        return api_problems.for_http_error(error)
    messages = {
        400: _("The request could not be understood."),
        403: _("You may not do this."),
        404: _("This page does not exist, or it is not yours."),
        405: _("This page cannot be used that way."),
        413: _("What you sent is too large."),
        429: _("Too many attempts. Please wait a moment and try again."),
        503: _("eBox is temporarily unavailable. Please try again in a few minutes."),
    }
    code = error.code or 500
    message = messages.get(code, _("Something went wrong on our side. Please try again later."))
    return render_template("error.html", code=code, message=message), code


def render_unexpected_error(error: Exception) -> tuple[str, int] | Response:
    transactions.rollback()
    down = outages.unavailable(error)
    if api_problems.is_api_request():
        return api_problems.for_unexpected_error(down, error)
    if down is not None:
        return render_unavailable(down, error)
    log.exception("unhandled error on %s %s", request.method, request.path)
    message = _("Something went wrong on our side. Please try again later.")
    return render_template("error.html", code=500, message=message), 500


def render_unavailable(down: str, error: Exception) -> tuple[str, int]:
    """503 for an outage of the database or Redis: one warning line, no traceback. The page
    names no one: whoever is logged in cannot be looked up while the database is away."""
    outages.warn_request_answered_unavailable(log, down, error)
    g.pop("citizen", None)
    g.pop("web_session", None)
    g.is_staff = False
    message = _("eBox is temporarily unavailable. Please try again in a few minutes.")
    return render_template("error.html", code=503, message=message), 503


def template_helpers() -> dict[str, Any]:
    return {"current_language": lambda: str(get_locale() or "nl")}


def to_the_minute(moment: datetime) -> str:
    """A moment in the citizen's language and time zone without its seconds ("2 déc. 2026,
    11:54"): the seconds tell a citizen nothing and cost a line on a phone."""
    locale = get_locale()
    pattern = str(locale.datetime_formats["medium"]) if locale else "{1}, {0}"
    day, time = format_date(moment, "medium"), format_time(moment, "short")
    return pattern.replace("{1}", day).replace("{0}", time)


def init_app(app: Flask) -> None:
    app.context_processor(template_helpers)
    app.add_template_filter(to_the_minute, "to_the_minute")
    app.add_template_filter(national_number.printed, "national_number")
    app.after_request(set_security_headers)
    app.after_request(commit_or_rollback)
    app.register_error_handler(HTTPException, render_error)
    app.register_error_handler(Exception, render_unexpected_error)
