"""The public application form for institutions, and the link that confirms its e-mail address.

The link opens a page with a button rather than confirming at once: mail scanners open the links
of every message they check, and a GET that confirmed would let one confirm an address whose
owner never clicked.
"""

from __future__ import annotations

import math
import uuid
from typing import Any

from flask import Blueprint, abort, make_response, redirect, render_template, request, url_for
from flask.typing import ResponseReturnValue
from flask_babel import get_locale, ngettext
from flask_babel import gettext as _
from werkzeug.wrappers import Response
from wtforms import Field, FieldList

from ebox.applications import queries, rate_limits, services
from ebox.applications.forms import ApplicationForm, ConfirmForm
from ebox.config import current_settings
from ebox.db_types import utcnow

bp = Blueprint("applications", __name__, url_prefix="/apply")


@bp.get("/")
def form() -> ResponseReturnValue:
    return _render_form(ApplicationForm())


@bp.post("/")
def submit() -> ResponseReturnValue:
    form = ApplicationForm()
    if form.add_type.data:
        return _with_another_row(form)
    if not form.validate_on_submit() or form.certificate is None:
        return _render_form(form), 422
    new = _new_application(form)
    try:
        rate_limits.count_submission(
            client_address=request.remote_addr or "", email=new.business_contact_email
        )
    except rate_limits.TooManySubmissions as exc:
        return _too_many(form, exc)
    unconfirmed = services.submit_application(new=new)
    return redirect(url_for("applications.sent", reference=unconfirmed.reference), 303)


@bp.get("/sent/<uuid:reference>")
def sent(reference: uuid.UUID) -> ResponseReturnValue:
    unconfirmed = queries.unconfirmed_by_reference(reference)
    if unconfirmed is None or unconfirmed.confirmed_at is not None:
        return redirect(url_for("applications.submitted", reference=reference), 303)
    page = render_template("applications/sent.html", unconfirmed=unconfirmed, hours=_link_hours())
    return _not_stored(page)


@bp.get("/confirm/<token>")
def confirm_page(token: str) -> ResponseReturnValue:
    state = queries.link_state(queries.unconfirmed_by_token(token), now=utcnow())
    if state != queries.LINK_USABLE:
        return _link_refused(state)
    page = render_template("applications/confirm.html", form=ConfirmForm(), token=token)
    return _not_stored(page)


@bp.post("/confirm/<token>")
def confirm(token: str) -> ResponseReturnValue:
    if not ConfirmForm().validate_on_submit():
        abort(400)
    try:
        application = services.confirm_application(token=token)
    except services.LinkRefused as exc:
        return _link_refused(exc.state)
    return redirect(url_for("applications.submitted", reference=application.reference), 303)


@bp.get("/submitted/<uuid:reference>")
def submitted(reference: uuid.UUID) -> ResponseReturnValue:
    application = queries.find_by_reference(reference) or abort(404)
    return render_template("applications/submitted.html", application=application)


def _too_many(form: ApplicationForm, exc: rate_limits.TooManySubmissions) -> Response:
    """429 with the form as it was typed, what is wrong, and when to try again."""
    if exc.budget == rate_limits.BUDGET_CLIENT:
        why = _("Several applications were sent from your network recently.")
    else:
        why = _("Several applications were sent for this business contact's e-mail address.")
    response = make_response(_render_form(form, refusal=f"{why} {_wait(exc.retry_after)}"), 429)
    response.headers["Retry-After"] = str(exc.retry_after)
    return response


def _wait(seconds: int) -> str:
    minutes = math.ceil(seconds / 60)
    if minutes <= 90:
        return ngettext(
            "Please try again in %(num)d minute.", "Please try again in %(num)d minutes.", minutes
        )
    hours = math.ceil(minutes / 60)
    return ngettext(
        "Please try again in %(num)d hour.", "Please try again in %(num)d hours.", hours
    )


def _link_refused(state: str) -> tuple[str, int]:
    """Why the link does nothing, and what to do instead. An unknown link is a 404; one that was
    used or has expired is gone for good (410)."""
    page = render_template("applications/link_refused.html", state=state, hours=_link_hours())
    return page, 404 if state == queries.LINK_UNKNOWN else 410


def _not_stored(page: str) -> Response:
    """The page of a link or a reference is nobody's to cache."""
    response = make_response(page)
    response.headers["Cache-Control"] = "no-store"
    return response


def _link_hours() -> int:
    return current_settings().application_link_hours


def _with_another_row(form: ApplicationForm) -> ResponseReturnValue:
    """No JavaScript needed: the same form again, with what was typed and one more row."""
    if len(form.message_types.entries) < (form.message_types.max_entries or 0):
        form.message_types.append_entry()
    return _render_form(form)


def _render_form(form: ApplicationForm, **context: Any) -> str:
    return render_template(
        "applications/form.html", form=form, error_summary=error_summary, **context
    )


def error_summary(form: ApplicationForm) -> list[tuple[str, str, str]]:
    """(field id, label, message) for every error, in the order of the page."""
    found: list[tuple[str, str, str]] = []
    for field in form:
        if isinstance(field, FieldList):
            found.extend(_row_errors(field))
        elif field.errors and isinstance(field.errors, list | tuple):
            found.append((field.id, _label_in_context(field), " ".join(map(str, field.errors))))
    return found


def _label_in_context(field: Field) -> str:
    """Say whose name or address it is: "Name" alone is ambiguous in a list."""
    if field.name.startswith("business_contact_"):
        return f"{_('Business contact')}, {field.label.text}"
    if field.name.startswith("technical_contact_"):
        return f"{_('Technical contact')}, {field.label.text}"
    return str(field.label.text)


def _row_errors(rows: FieldList) -> list[tuple[str, str, str]]:
    found = [
        ("message-types", _("Message types"), str(error))
        for error in rows.errors
        if not isinstance(error, dict)
    ]
    for number, row in enumerate(rows.entries, start=1):
        for field in row.form:
            if field.errors:
                label = f"{_('Message type %(number)d', number=number)}, {field.label.text}"
                found.append((field.id, label, " ".join(map(str, field.errors))))
    return found


def _new_application(form: ApplicationForm) -> services.NewApplication:
    assert form.certificate is not None
    return services.NewApplication(
        organisation_name=form.organisation_name.data or "",
        enterprise_number=form.enterprise_number.data or "",
        business_contact_name=form.business_contact_name.data or "",
        business_contact_email=form.business_contact_email.data or "",
        business_contact_phone=form.business_contact_phone.data or "",
        technical_contact_name=form.technical_contact_name.data or "",
        technical_contact_email=form.technical_contact_email.data or "",
        technical_contact_phone=form.technical_contact_phone.data or "",
        public_contact_email=form.public_contact_email.data or "",
        public_contact_phone=form.public_contact_phone.data or "",
        public_contact_url=form.public_contact_url.data or "",
        public_contact_address=form.public_contact_address.data or "",
        use_case=form.use_case.data or "",
        expected_monthly_volume=int(form.expected_monthly_volume.data or 0),
        expected_peak_per_day=int(form.expected_peak_per_day.data or 0),
        message_types=form.filled_message_types(),
        needs_registered_mail=bool(form.needs_registered_mail.data),
        certificate=form.certificate,
        language=str(get_locale() or "nl"),
    )
