"""The support staff's pages.

Staff log in like citizens, through the federation; the staff list decides who gets in and with
which role. Anyone else is told the area does not exist (404). Support staff read; admins also
decide applications and manage senders. Every change is a POST answered by a redirect, and is
audited with the staff member who made it, in the same transaction; so is every lookup of a
delivery or of a citizen.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable
from functools import wraps
from typing import Any, TypeVar, cast
from urllib.parse import urlsplit

from flask import Blueprint, abort, flash, g, redirect, render_template, request, url_for
from flask.typing import ResponseReturnValue
from flask_babel import gettext as _

from ebox import transactions
from ebox.admin import queries, services
from ebox.admin.forms import (
    ActionForm,
    CertificateForm,
    CitizenLookupForm,
    DeliveryLookupForm,
    RejectForm,
    RevokeForm,
    SuspendForm,
    SwitchForm,
)
from ebox.admin.models import StaffMember
from ebox.admin.services import active_staff, actor_for
from ebox.applications import queries as application_queries
from ebox.applications import services as applications
from ebox.audit.services import verify_log
from ebox.db_types import utcnow
from ebox.jobs import queue_health
from ebox.senders import services as senders
from ebox.senders.certificates import CertificateRejected
from ebox.senders.models import Sender
from ebox.webhooks import services as webhooks

bp = Blueprint("admin", __name__, url_prefix="/admin")

F = TypeVar("F", bound=Callable[..., Any])


@bp.before_request
def require_staff() -> ResponseReturnValue | None:
    citizen = g.get("citizen")
    if citizen is None:
        wanted = request.full_path if request.query_string else request.path
        return redirect(url_for("accounts.login_page", next=wanted))
    staff = active_staff(citizen.national_number)
    if staff is None:
        abort(404)  # the staff area is not advertised to anyone else
    g.staff = staff
    return None


@bp.app_context_processor
def staff_helpers() -> dict[str, Any]:
    return {"is_staff": _is_staff}


def _is_staff() -> bool:
    """For the header's link to the staff pages: only staff see it."""
    if "is_staff" not in g:
        citizen = g.get("citizen")
        g.is_staff = citizen is not None and active_staff(citizen.national_number) is not None
    return bool(g.is_staff)


def current_staff() -> StaffMember:
    return cast(StaffMember, g.staff)


def admin_only(view: F) -> F:
    """Changes are for the admin role; support staff get 403."""

    @wraps(view)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        if not current_staff().is_admin:
            abort(403)
        return view(*args, **kwargs)

    return cast(F, wrapper)


def _page_number() -> int:
    return request.args.get("page", 1, type=int) or 1


@bp.get("/")
def dashboard() -> ResponseReturnValue:
    return render_template(
        "admin/dashboard.html", counts=queries.dashboard(utcnow()), queue=queue_health()
    )


# --- applications ------------------------------------------------------------------------


@bp.get("/applications")
def applications_list() -> ResponseReturnValue:
    status = request.args.get("status", "pending")
    if status not in (*queries.APPLICATION_STATUSES, "all"):
        status = "pending"
    page = queries.applications_page(status, number=_page_number())
    return render_template("admin/applications.html", page=page, status=status)


@bp.get("/applications/<int:application_id>")
def application_detail(application_id: int) -> ResponseReturnValue:
    return _render_application(application_id, reject_form=RejectForm(formdata=None))


def _render_application(application_id: int, *, reject_form: RejectForm) -> str:
    application = queries.find_application(application_id) or abort(404)
    return render_template(
        "admin/application.html",
        application=application,
        conflicts=queries.conflicts_for(application),
        same_number=application_queries.same_enterprise_number(application.enterprise_number),
        reject_form=reject_form,
        action_form=ActionForm(formdata=None),
    )


@bp.post("/applications/<int:application_id>/approve")
@admin_only
def approve_application(application_id: int) -> ResponseReturnValue:
    if not ActionForm().validate_on_submit():
        abort(400)
    queries.find_application(application_id) or abort(404)
    staff = current_staff()
    try:
        sender = applications.approve_application(
            application_id=application_id, staff=staff, actor=actor_for(staff)
        )
    except (applications.ApplicationRefused, senders.SenderRefused, CertificateRejected) as exc:
        transactions.rollback()
        flash(_("Not approved: %(reason)s", reason=exc.message), "error")
        return redirect(url_for("admin.application_detail", application_id=application_id), 303)
    flash(_("Approved: %(name)s can publish now.", name=sender.name), "success")
    return redirect(url_for("admin.sender_detail", sender_id=sender.id), 303)


@bp.post("/applications/<int:application_id>/reject")
@admin_only
def reject_application(application_id: int) -> ResponseReturnValue:
    queries.find_application(application_id) or abort(404)
    form = RejectForm()
    if not form.validate_on_submit():
        return _render_application(application_id, reject_form=form), 422
    staff = current_staff()
    try:
        applications.reject_application(
            application_id=application_id,
            staff=staff,
            reason=form.reason.data or "",
            actor=actor_for(staff),
        )
    except applications.ApplicationRefused as exc:
        transactions.rollback()
        flash(exc.message, "error")
    else:
        flash(_("Rejected; the applicant is told why by e-mail."), "success")
    return redirect(url_for("admin.application_detail", application_id=application_id), 303)


# --- senders -----------------------------------------------------------------------------


@bp.get("/senders")
def senders_list() -> ResponseReturnValue:
    page = queries.senders_page(number=_page_number())
    return render_template("admin/senders.html", page=page, now=utcnow())


@bp.get("/senders/<int:sender_id>")
def sender_detail(sender_id: int) -> ResponseReturnValue:
    return _render_sender(sender_id)


def _render_sender(sender_id: int, **forms: Any) -> str:
    sender = queries.find_sender(sender_id) or abort(404)
    context: dict[str, Any] = {
        "certificate_form": CertificateForm(formdata=None),
        "revoke_form": RevokeForm(formdata=None),
        "suspend_form": SuspendForm(formdata=None),
        "action_form": ActionForm(formdata=None),
        "revoke_errors_for": None,
        "webhooks": webhooks.subscriptions_of(sender.id),
    }
    context.update(forms)
    return render_template("admin/sender.html", sender=sender, now=utcnow(), **context)


def _sender_or_404(sender_id: int) -> Sender:
    return queries.find_sender(sender_id) or abort(404)


def _back_to_sender(sender_id: int) -> ResponseReturnValue:
    return redirect(url_for("admin.sender_detail", sender_id=sender_id), 303)


@bp.post("/senders/<int:sender_id>/certificates")
@admin_only
def add_certificate(sender_id: int) -> ResponseReturnValue:
    sender = _sender_or_404(sender_id)
    form = CertificateForm()
    if not form.validate_on_submit() or form.certificate is None:
        return _render_sender(sender_id, certificate_form=form), 422
    try:
        senders.add_certificate(
            sender=sender, certificate=form.certificate, actor=actor_for(current_staff())
        )
    except senders.SenderRefused as exc:
        transactions.rollback()
        form.certificate_pem.errors = [exc.message]
        return _render_sender(sender_id, certificate_form=form), 422
    flash(_("Certificate added. The sender may sign with it now."), "success")
    return _back_to_sender(sender_id)


@bp.post("/senders/<int:sender_id>/certificates/<int:certificate_id>/revoke")
@admin_only
def revoke_certificate(sender_id: int, certificate_id: int) -> ResponseReturnValue:
    certificate = queries.find_certificate(sender_id, certificate_id) or abort(404)
    form = RevokeForm()
    if not form.validate_on_submit():
        return _render_sender(sender_id, revoke_form=form, revoke_errors_for=certificate_id), 422
    try:
        senders.revoke_certificate(
            certificate=certificate,
            reason=form.reason.data or "",
            actor=actor_for(current_staff()),
        )
    except senders.SenderRefused as exc:
        transactions.rollback()
        flash(exc.message, "error")
    else:
        flash(_("Certificate revoked: requests signed with it are refused from now on."), "success")
    return _back_to_sender(sender_id)


@bp.post("/senders/<int:sender_id>/suspend")
@admin_only
def suspend_sender(sender_id: int) -> ResponseReturnValue:
    sender = _sender_or_404(sender_id)
    form = SuspendForm()
    if not form.validate_on_submit():
        return _render_sender(sender_id, suspend_form=form), 422
    return _change_sender(
        sender_id,
        lambda: senders.suspend_sender(
            sender=sender, reason=form.reason.data or "", actor=actor_for(current_staff())
        ),
        _("Suspended: every request of this sender is refused until it is reactivated."),
    )


@bp.post("/senders/<int:sender_id>/reactivate")
@admin_only
def reactivate_sender(sender_id: int) -> ResponseReturnValue:
    sender = _sender_or_404(sender_id)
    if not ActionForm().validate_on_submit():
        abort(400)
    return _change_sender(
        sender_id,
        lambda: senders.reactivate_sender(sender=sender, actor=actor_for(current_staff())),
        _("Reactivated: this sender may publish again."),
    )


@bp.post("/senders/<int:sender_id>/registered")
@admin_only
def set_registered_right(sender_id: int) -> ResponseReturnValue:
    sender = _sender_or_404(sender_id)
    form = SwitchForm()
    if not form.validate_on_submit():
        abort(400)
    allow = form.allow.data == "yes"
    senders.set_registered_right(
        sender=sender, may_send_registered=allow, actor=actor_for(current_staff())
    )
    if allow:
        flash(_("This sender may now send registered mail."), "success")
    else:
        flash(_("This sender may no longer send registered mail."), "success")
    return _back_to_sender(sender_id)


@bp.post("/senders/<int:sender_id>/message-types/<int:message_type_id>/reminders")
@admin_only
def set_message_type_reminders(sender_id: int, message_type_id: int) -> ResponseReturnValue:
    sender = _sender_or_404(sender_id)
    message_type = next((t for t in sender.message_types if t.id == message_type_id), None)
    form = SwitchForm()
    if message_type is None:
        abort(404)
    if not form.validate_on_submit():
        abort(400)
    senders.set_reminders(
        message_type=message_type,
        sends_reminders=form.allow.data == "yes",
        actor=actor_for(current_staff()),
    )
    flash(_("Reminders of message type %(code)s saved.", code=message_type.code), "success")
    return _back_to_sender(sender_id)


@bp.app_template_filter("url_host")
def url_host(url: str) -> str:
    """Staff see where a sender's webhook goes, not its path (which may carry a token)."""
    return urlsplit(url).hostname or ""


@bp.post("/senders/<int:sender_id>/webhooks/<uuid:webhook_id>/enable")
@admin_only
def reenable_webhook(sender_id: int, webhook_id: uuid.UUID) -> ResponseReturnValue:
    subscription = webhooks.find_subscription(sender_id, webhook_id) or abort(404)
    if not ActionForm().validate_on_submit():
        abort(400)
    webhooks.reenable_subscription(subscription=subscription, actor=actor_for(current_staff()))
    flash(_("Webhook turned on again: its pending events are delivered now."), "success")
    return _back_to_sender(sender_id)


def _change_sender(sender_id: int, change: Callable[[], None], done: str) -> ResponseReturnValue:
    try:
        change()
    except senders.SenderRefused as exc:
        transactions.rollback()
        flash(exc.message, "error")
    else:
        flash(done, "success")
    return _back_to_sender(sender_id)


# --- lookups and audit -------------------------------------------------------------------


@bp.get("/delivery")
def delivery() -> ResponseReturnValue:
    form = DeliveryLookupForm(request.args)
    form.sender_id.choices = [(0, "—"), *queries.all_senders()]
    results = _look_up_delivery(form) if form.wants_lookup() and form.validate() else None
    return render_template("admin/delivery.html", form=form, results=results, now=utcnow())


def _look_up_delivery(form: DeliveryLookupForm) -> list[queries.DeliveryStatus]:
    actor = actor_for(current_staff())
    if form.document_id is not None:
        return services.look_up_delivery_by_id(document_id=form.document_id, actor=actor)
    return services.look_up_delivery_by_ticket(
        sender_id=form.sender_id.data or 0,
        ticket=form.ticket.data or "",
        sequence=form.sequence.data,
        actor=actor,
    )


@bp.get("/citizen")
def citizen_lookup() -> ResponseReturnValue:
    return render_template("admin/citizen.html", form=CitizenLookupForm(formdata=None))


@bp.post("/citizen")
def look_up_citizen() -> ResponseReturnValue:
    """Answered with the result itself, never a redirect that would put the number in a URL."""
    form = CitizenLookupForm()
    if not form.validate_on_submit():
        return render_template("admin/citizen.html", form=form), 422
    overview = services.look_up_citizen(
        national_number=form.number,
        reason=form.reason.data or "",
        actor=actor_for(current_staff()),
    )
    # A fresh form: the next lookup needs a reason of its own.
    blank = CitizenLookupForm(formdata=None)
    return render_template("admin/citizen.html", form=blank, overview=overview)


@bp.get("/audit")
def audit() -> ResponseReturnValue:
    # Checked before the page is read: verify_log() empties the session as it goes.
    report = verify_log() if request.args.get("verify") else None
    page = queries.audit_page(number=_page_number())
    return render_template("admin/audit.html", page=page, report=report)
