"""The installable portal (web app manifest, service worker) and a citizen's push devices.

The service worker handles pushes and clicks on their notifications, nothing else: it has no
fetch handler and opens no cache, so nothing of a citizen's mailbox is ever kept by it.
"""

from __future__ import annotations

from pathlib import Path

from flask import (
    Blueprint,
    Response,
    abort,
    current_app,
    flash,
    jsonify,
    redirect,
    request,
    send_from_directory,
    url_for,
)
from flask.typing import ResponseReturnValue
from flask_babel import gettext as _

from ebox.accounts.models import MAX_USER_AGENT_LENGTH
from ebox.accounts.sessions import current_citizen, login_required
from ebox.config import current_settings
from ebox.push import services
from ebox.push.endpoints import InvalidSubscription, parse_subscription

bp = Blueprint("push", __name__)

THEME_COLOUR = "#16325c"  # the header's, --colour-header in static/css/ebox.css
BACKGROUND_COLOUR = "#f4f6f9"  # --colour-background
MAX_SUBSCRIPTION_BYTES = 4096


@bp.get("/manifest.webmanifest")
def manifest() -> ResponseReturnValue:
    icon = lambda name: url_for("static", filename=f"img/{name}")  # noqa: E731
    response = jsonify(
        {
            "id": "/",
            "name": "eBox",
            "short_name": "eBox",
            "start_url": url_for("mailbox.inbox"),
            "scope": "/",
            "display": "standalone",
            "theme_color": THEME_COLOUR,
            "background_color": BACKGROUND_COLOUR,
            "icons": [
                {"src": icon("icon-192.png"), "sizes": "192x192", "type": "image/png"},
                {"src": icon("icon-512.png"), "sizes": "512x512", "type": "image/png"},
                {"src": icon("logo.svg"), "sizes": "any", "type": "image/svg+xml"},
            ],
        }
    )
    response.mimetype = "application/manifest+json"
    response.headers["Cache-Control"] = "public, max-age=86400"
    return response


@bp.get("/sw.js")
def service_worker() -> ResponseReturnValue:
    """Served from the root so that its scope is the whole portal."""
    folder = Path(current_app.root_path).parent / "static" / "js"
    response: Response = send_from_directory(folder, "service-worker.js", max_age=0)
    response.mimetype = "text/javascript"
    response.headers["Cache-Control"] = "no-cache"  # a new version is seen at the next visit
    return response


@bp.post("/profile/push/subscriptions")
@login_required
def subscribe() -> ResponseReturnValue:
    """A device's subscription, as PushSubscription.toJSON() gives it (JSON, with the CSRF token
    in X-CSRFToken). 201 when new, 200 when it replaced the device's earlier one."""
    settings = current_settings()
    if not settings.push_enabled:
        abort(404)
    if (request.content_length or 0) > MAX_SUBSCRIPTION_BYTES:
        return _refused(400, _("This subscription cannot be read."))
    data = request.get_json(silent=True)
    if data is None:
        return _refused(400, _("This subscription cannot be read."))
    try:
        subscription = parse_subscription(data, settings)
    except InvalidSubscription as problem:
        current_app.logger.info("push subscription refused: %s", problem)
        return _refused(422, _("This device's push service cannot be used by eBox."))
    user_agent = request.headers.get("User-Agent", "")[:MAX_USER_AGENT_LENGTH]
    try:
        new = services.subscribe(
            citizen_id=current_citizen().id, subscription=subscription, user_agent=user_agent
        )
    except services.TooManyDevices:
        return _refused(
            422,
            _(
                "Notifications are on for %(num)d devices already: remove one first.",
                num=services.MAX_DEVICES,
            ),
        )
    return jsonify({"saved": True}), 201 if new else 200


@bp.post("/profile/push/subscriptions/<int:subscription_id>/remove")
@login_required
def remove(subscription_id: int) -> ResponseReturnValue:
    """A plain form: works without JavaScript. Another citizen's device is a 404."""
    if not services.remove(citizen_id=current_citizen().id, subscription_id=subscription_id):
        abort(404)
    flash(_("That device will no longer receive notifications from eBox."), "success")
    return redirect(url_for("profile.show", _anchor="push-title"), 303)


def _refused(status: int, message: str) -> ResponseReturnValue:
    return jsonify({"error": message}), status
