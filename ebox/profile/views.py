"""The citizen's first visit (conditions, e-mail) and profile (e-mail, language, electronic only).

Every step is a plain form post answered by a redirect (post/redirect/get); a form with errors is
shown again with 422 (429 when codes are asked for too often).
"""

from __future__ import annotations

import math
import uuid
from typing import Any

from flask import (
    Blueprint,
    abort,
    flash,
    g,
    redirect,
    render_template,
    session,
    url_for,
)
from flask.typing import ResponseReturnValue
from flask_babel import gettext as _
from flask_babel import ngettext, refresh

from ebox import transactions
from ebox.accounts import queries as accounts_queries
from ebox.accounts import services as accounts
from ebox.accounts.models import Citizen
from ebox.accounts.sessions import (
    allowed_before_activation,
    current_citizen,
    idle_limit,
    lifetime_limit,
    login_required,
)
from ebox.config import current_settings
from ebox.db_types import utcnow
from ebox.mail.smtp import MailDeliveryError
from ebox.profile import queries, services
from ebox.profile.forms import (
    CodeForm,
    ConditionsForm,
    ElectronicOnlyForm,
    EmailForm,
    LanguageForm,
    RemindersForm,
    ResendForm,
)
from ebox.push import keys as push_keys
from ebox.push.services import PushSection, devices

bp = Blueprint("profile", __name__, url_prefix="/profile")


def _max_attempts() -> int:
    return int(current_settings().email_code_attempts)


def _code_minutes() -> int:
    return int(current_settings().email_code_minutes)


@bp.get("/welcome")
@login_required
@allowed_before_activation
def onboarding() -> ResponseReturnValue:
    citizen = current_citizen()
    if citizen.is_activated:
        return redirect(url_for("mailbox.inbox"))
    return _render_email_page(citizen)


@bp.post("/welcome/conditions")
@login_required
@allowed_before_activation
def accept_conditions() -> ResponseReturnValue:
    citizen = current_citizen()
    form = ConditionsForm()
    if not form.validate_on_submit():
        return _render_email_page(citizen, step="conditions", conditions_form=form), 422
    services.accept_conditions(citizen=citizen)
    return redirect(url_for("profile.onboarding"), 303)


@bp.get("/email")
@login_required
def change_email() -> ResponseReturnValue:
    return _render_email_page(current_citizen())


@bp.post("/email")
@login_required
@allowed_before_activation
def request_code() -> ResponseReturnValue:
    citizen = current_citizen()
    if citizen.conditions_accepted_at is None:
        return redirect(url_for("profile.onboarding"), 303)
    form = EmailForm()
    if not form.validate_on_submit():
        return _render_email_page(citizen, step="email", email_form=form), 422
    return _issue_and_send(citizen, form.email.data or "", form=form)


@bp.post("/email/resend")
@login_required
@allowed_before_activation
def resend_code() -> ResponseReturnValue:
    citizen = current_citizen()
    latest = queries.latest_open_challenge(citizen.id)
    if not ResendForm().validate_on_submit() or latest is None:
        return redirect(_email_page_url(citizen), 303)
    return _issue_and_send(citizen, latest.email, form=None)


@bp.post("/email/confirm")
@login_required
@allowed_before_activation
def confirm_email() -> ResponseReturnValue:
    citizen = current_citizen()
    form = CodeForm()
    if not form.validate_on_submit():
        return _render_email_page(citizen, step="code", code_form=form), 422
    was_activated = citizen.is_activated
    try:
        change = services.confirm_email(citizen=citizen, code=form.code.data or "")
    except services.NoPendingCode:
        flash(_("There is no code to confirm. Ask for a new one."), "error")
        return redirect(_email_page_url(citizen), 303)
    except services.ChallengeError as exc:
        transactions.commit()  # a wrong try counts even though the answer is an error
        form.code.errors = [_code_error(exc)]
        return _render_email_page(citizen, step="code", code_form=form), 422
    services.queue_change_notice(citizen=citizen, change=change)
    flash(_("Your e-mail address %(email)s is confirmed.", email=change.new_email), "success")
    if was_activated:
        return redirect(url_for("profile.show"), 303)
    return redirect(url_for("mailbox.inbox"), 303)


@bp.get("/")
@login_required
def show() -> ResponseReturnValue:
    citizen = current_citizen()
    return render_template(
        "profile/show.html",
        profile=queries.profile_summary(citizen, max_attempts=_max_attempts()),
        electronic_only_form=ElectronicOnlyForm(
            formdata=None, is_electronic_only=citizen.is_electronic_only
        ),
        reminders_form=RemindersForm(formdata=None, wants_reminders=citizen.wants_reminders),
        reminder_days=current_settings().reminder_days,
        sessions=_open_sessions(),
        push=_push_section(citizen),
        session_idle_minutes=current_settings().session_idle_minutes,
        session_max_hours=current_settings().session_max_hours,
    )


def _push_section(citizen: Citizen) -> PushSection | None:
    """The devices that receive the daily alert as a push, and the key to subscribe one."""
    settings = current_settings()
    if not settings.push_enabled:
        return None
    return PushSection(public_key=push_keys.public_key(settings), devices=devices(citizen.id))


def _open_sessions() -> list[accounts_queries.OpenSession]:
    return accounts_queries.open_sessions(
        current_citizen().id,
        current_id=g.web_session.id,
        now=utcnow(),
        idle=idle_limit(),
        lifetime=lifetime_limit(),
    )


@bp.post("/sessions/<uuid:session_id>/end")
@login_required
def end_session_elsewhere(session_id: uuid.UUID) -> ResponseReturnValue:
    """End one of the citizen's other sessions; another citizen's session id is a 404."""
    if session_id == g.web_session.id:
        abort(400)  # this browser's own session ends by logging out
    if not accounts.end_sessions(citizen_id=current_citizen().id, session_ids=[session_id]):
        abort(404)
    flash(_("That session has ended: it can no longer open your eBox."), "success")
    return redirect(url_for("profile.show", _anchor="sessions-title"), 303)


@bp.post("/sessions/end-others")
@login_required
def end_other_sessions() -> ResponseReturnValue:
    others = [open_session.id for open_session in _open_sessions() if not open_session.is_current]
    if others:
        accounts.end_sessions(citizen_id=current_citizen().id, session_ids=others)
    flash(_("Your other sessions have ended."), "success")
    return redirect(url_for("profile.show", _anchor="sessions-title"), 303)


@bp.post("/reminders")
@login_required
def set_reminders() -> ResponseReturnValue:
    form = RemindersForm()
    if not form.validate_on_submit():
        abort(400)
    choice = bool(form.wants_reminders.data)
    services.set_reminders(citizen=current_citizen(), wants_reminders=choice)
    if choice:
        flash(_("The daily e-mail will remind you of documents you have not opened."), "success")
    else:
        flash(_("The daily e-mail will no longer remind you of documents."), "success")
    return redirect(url_for("profile.show"), 303)


@bp.post("/electronic-only")
@login_required
def set_electronic_only() -> ResponseReturnValue:
    form = ElectronicOnlyForm()
    if not form.validate_on_submit():
        abort(400)
    choice = bool(form.is_electronic_only.data)
    services.set_electronic_only(citizen=current_citizen(), is_electronic_only=choice)
    if choice:
        flash(_("You now receive these documents only electronically, in eBox."), "success")
    else:
        flash(_("You no longer chose to receive these documents only electronically."), "success")
    return redirect(url_for("profile.show"), 303)


@bp.post("/language")
def set_language() -> ResponseReturnValue:
    """The language switcher of every page; also for visitors who are not logged in."""
    form = LanguageForm()
    if not form.validate_on_submit():
        abort(400)
    language = str(form.language.data)
    session["language"] = language
    citizen: Citizen | None = g.get("citizen")
    if citizen is not None:
        services.set_language(citizen=citizen, language=language)
    refresh()  # the locale of this request was already chosen; later messages use the new one
    return redirect(form.safe_next() or url_for("mailbox.inbox"), 303)


def _issue_and_send(citizen: Citizen, email: str, *, form: EmailForm | None) -> ResponseReturnValue:
    try:
        issued = services.issue_email_challenge(citizen=citizen, email=email)
    except services.TooManyCodes as exc:
        form = form or EmailForm(formdata=None, email=email)
        form.email.errors = [_wait_message(exc)]
        return _render_email_page(citizen, step="email", email_form=form), 429
    transactions.commit()  # the code must exist before it is sent
    try:
        services.send_code_email(citizen=citizen, issued=issued)
    except MailDeliveryError:
        issued.challenge.expires_at = issued.challenge.created_at  # never arrived: not usable
        transactions.commit()
        message = _(
            "We could not send the e-mail to %(email)s. "
            "Check the address and try again in a minute.",
            email=email,
        )
        flash(message, "error")
        return redirect(_email_page_url(citizen), 303)
    message = _(
        "We sent a 6-digit code to %(email)s. It is valid for %(minutes)d minutes.",
        email=email,
        minutes=_code_minutes(),
    )
    flash(message, "success")
    return redirect(_email_page_url(citizen), 303)


def _wait_message(exc: services.TooManyCodes) -> str:
    minutes = max(1, math.ceil(exc.retry_after.total_seconds() / 60))
    return ngettext(
        "You asked for a code very recently. Please wait %(num)d minute before asking again.",
        "You asked for several codes. Please wait %(num)d minutes before asking again.",
        minutes,
    )


def _code_error(exc: services.ChallengeError) -> str:
    if isinstance(exc, services.WrongCode):
        return ngettext(
            "This code is not right. You can try %(num)d more time.",
            "This code is not right. You can try %(num)d more times.",
            exc.remaining_attempts,
        )
    if isinstance(exc, services.CodeExpired):
        return _("This code has expired. Ask for a new code.")
    return _("Too many wrong codes: this code no longer works. Ask for a new code.")


def _email_page_url(citizen: Citizen) -> str:
    return url_for("profile.change_email" if citizen.is_activated else "profile.onboarding")


def _render_email_page(citizen: Citizen, *, step: str | None = None, **forms: Any) -> str:
    """The onboarding page (first visit) or the change-of-address page, at the right step."""
    pending = queries.pending_challenge(citizen.id, max_attempts=_max_attempts())
    latest = queries.latest_open_challenge(citizen.id)
    if step is None:
        step = _current_step(citizen, pending_email=pending.email if pending else None)
    context = {
        "citizen": citizen,
        "step": step,
        "pending_email": pending.email if pending else (latest.email if latest else None),
        "conditions_form": ConditionsForm(formdata=None),
        "email_form": EmailForm(formdata=None, email=latest.email if latest else None),
        "code_form": CodeForm(formdata=None),
        "resend_form": ResendForm(formdata=None),
        "code_minutes": _code_minutes(),
    }
    context.update(forms)
    template = "profile/email.html" if citizen.is_activated else "profile/onboarding.html"
    return render_template(template, **context)


def _current_step(citizen: Citizen, *, pending_email: str | None) -> str:
    if citizen.conditions_accepted_at is None:
        return "conditions"
    return "code" if pending_email else "email"
