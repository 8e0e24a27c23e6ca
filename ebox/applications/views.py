"""The public application form for institutions."""

from __future__ import annotations

import uuid
from typing import Any

from flask import Blueprint, abort, redirect, render_template, url_for
from flask.typing import ResponseReturnValue
from flask_babel import get_locale
from flask_babel import gettext as _
from wtforms import Field, FieldList

from ebox.applications import services
from ebox.applications.forms import ApplicationForm

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
    try:
        application = services.submit_application(_new_application(form))
    except services.TooManyApplications as exc:
        return _render_form(form, refusal=exc.message), 429
    return redirect(url_for("applications.submitted", reference=application.reference), 303)


@bp.get("/submitted/<uuid:reference>")
def submitted(reference: uuid.UUID) -> ResponseReturnValue:
    application = services.find_by_reference(reference) or abort(404)
    return render_template("applications/submitted.html", application=application)


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
