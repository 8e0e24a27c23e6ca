"""The trusted-person pages: give someone access, accept an invitation, read for someone, end
a mandate. Each citizen sees and changes only the mandates they granted or hold."""

from __future__ import annotations

import logging
import uuid
from datetime import date, datetime, time

from flask import Blueprint, abort, flash, redirect, render_template, url_for
from flask.typing import ResponseReturnValue
from flask_babel import gettext as _
from flask_babel import lazy_gettext as _l

from ebox.accounts.models import Citizen
from ebox.accounts.sessions import current_citizen, login_required
from ebox.db_types import PLATFORM_TIMEZONE, utcnow
from ebox.mailbox import queries as mailbox_queries
from ebox.mandates import reading, services
from ebox.mandates.forms import CHOSEN_SENDERS, AcceptForm, ConfirmForm, InviteForm
from ebox.mandates.models import Mandate

log = logging.getLogger(__name__)

bp = Blueprint("mandates", __name__, url_prefix="/mandates")

REFUSALS = {
    "self": _l("You cannot give a mandate to yourself."),
    "end": _l("Choose a day after today and within three years."),
    "too_many": _l("You have given as many mandates as eBox allows: end one first."),
    "senders": _l("Choose senders of your own documents."),
    "code": _l(
        "This code is not valid: it may be mistyped, used, expired, or meant for someone else."
    ),
    "not_yours": _l("This mandate is not yours to end."),
}


@bp.app_template_global()
def reading_for() -> Mandate | None:
    return reading.reading_mandate()


@bp.before_app_request
def forget_the_last_requests_mandate() -> None:
    # g outlives a request where an application context is shared (tests, commands).
    reading.forget()


@bp.get("/")
@login_required
def index() -> ResponseReturnValue:
    return _render(invite_form=_invite_form(), accept_form=AcceptForm(formdata=None))


@bp.post("/")
@login_required
def invite() -> ResponseReturnValue:
    form = _invite_form()
    if not form.validate_on_submit():
        return _render(invite_form=form, accept_form=AcceptForm(formdata=None)), 422
    chosen = form.scope.data == CHOSEN_SENDERS
    try:
        invitation = services.invite(
            owner=current_citizen(),
            holder_national_number=form.national_number.data or "",
            sender_ids=list(form.senders.data or []) if chosen else None,
            may_open_registered=bool(form.may_open_registered.data),
            ends_at=_end_of_day(form.ends_on.data),
        )
    except services.MandateRefused as refused:
        flash(str(REFUSALS[refused.reason]), "error")
        return _render(invite_form=form, accept_form=AcceptForm(formdata=None)), 422
    # Shown once, here: only its hash is kept.
    return _render(
        invite_form=_invite_form(formdata=None),
        accept_form=AcceptForm(formdata=None),
        new_code=invitation.code,
        new_mandate=invitation.mandate,
    )


@bp.post("/accept")
@login_required
def accept() -> ResponseReturnValue:
    form = AcceptForm()
    if not form.validate_on_submit():
        return _render(invite_form=_invite_form(formdata=None), accept_form=form), 422
    try:
        mandate = services.accept(holder=current_citizen(), code=form.code.data or "")
    except services.MandateRefused as refused:
        form.code.errors = [str(REFUSALS[refused.reason])]
        return _render(invite_form=_invite_form(formdata=None), accept_form=form), 422
    flash(_("You may now read the eBox of %(name)s.", name=_name(mandate.owner)), "success")
    return redirect(url_for(".index"), 303)


@bp.post("/<uuid:mandate_id>/end")
@login_required
def end(mandate_id: uuid.UUID) -> ResponseReturnValue:
    mandate = _mandate_or_404(mandate_id)
    if not ConfirmForm().validate_on_submit():
        abort(400)
    services.end(mandate=mandate, by=current_citizen())
    if reading.reading_mandate() is mandate:
        reading.stop()
    flash(_("The mandate has ended."), "success")
    return redirect(url_for(".index"), 303)


@bp.post("/<uuid:mandate_id>/read")
@login_required
def read_for(mandate_id: uuid.UUID) -> ResponseReturnValue:
    mandate = services.active_mandate(current_citizen(), mandate_id, utcnow())
    if mandate is None:
        abort(404)
    if not ConfirmForm().validate_on_submit():
        abort(400)
    reading.start(mandate)
    return redirect(url_for("mailbox.inbox"), 303)


@bp.post("/stop-reading")
@login_required
def stop_reading() -> ResponseReturnValue:
    if not ConfirmForm().validate_on_submit():
        abort(400)
    reading.stop()
    return redirect(url_for("mailbox.inbox"), 303)


def _render(**context: object) -> str:
    citizen = current_citizen()
    return render_template(
        "mandates/index.html",
        granted=services.granted_by(citizen),
        held=services.held_by(citizen),
        confirm_form=ConfirmForm(formdata=None),
        now=utcnow(),
        **context,
    )


def _invite_form(**kwargs: object) -> InviteForm:
    senders = mailbox_queries.senders_of(current_citizen(), now=utcnow())
    return InviteForm(senders, **kwargs)


def _mandate_or_404(mandate_id: uuid.UUID) -> Mandate:
    mandate = services.find_for(current_citizen(), mandate_id)
    if mandate is None:
        abort(404)
    return mandate


def _end_of_day(day: date | None) -> datetime:
    """The end of the chosen day in Brussels: a mandate "until 31 March" covers that day."""
    assert day is not None  # the form requires it
    return datetime.combine(day, time(23, 59, 59), tzinfo=PLATFORM_TIMEZONE)


def _name(citizen: Citizen) -> str:
    return f"{citizen.given_name} {citizen.surname}".strip()
