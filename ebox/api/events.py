"""A sender's events over REST: pulled in order from a cursor, and its webhook subscriptions.

Another sender's subscription id is answered exactly like one that does not exist (404).
"""

from __future__ import annotations

import uuid
from typing import Any

from flask import Response, jsonify, request, url_for

from ebox.audit.services import Actor
from ebox.config import current_settings
from ebox.events.queries import MAX_PAGE, InvalidCursor, event_json, events_after, json_time
from ebox.webhooks import services as webhooks
from ebox.webhooks.models import WebhookSubscription

from .auth import current_sender
from .blueprint import bp
from .problems import INVALID_REQUEST, ApiProblem, json_body

INVALID_CURSOR = "INVALID_CURSOR"
WEBHOOK_NOT_FOUND = "WEBHOOK_NOT_FOUND"
DEFAULT_PAGE = 100
_REFUSAL_STATUS = {webhooks.TOO_MANY_WEBHOOKS: 409}


@bp.get("/events")
def list_events() -> Response:
    sender = current_sender()
    limit = _limit(request.args.get("limit"))
    try:
        page = events_after(sender.id, request.args.get("after"), limit)
    except InvalidCursor as error:
        raise ApiProblem(400, INVALID_CURSOR, str(error)) from None
    return jsonify(
        {"events": [event_json(event) for event in page.events], "next": page.next_cursor}
    )


@bp.get("/webhooks")
def list_webhooks() -> Response:
    sender = current_sender()
    return jsonify(
        {"webhooks": [_webhook_json(each) for each in webhooks.subscriptions_of(sender.id)]}
    )


@bp.post("/webhooks")
def create_webhook() -> tuple[Response, int, dict[str, str]]:
    sender = current_sender()
    url, event_types = _webhook_request(json_body())
    try:
        created = webhooks.create_subscription(
            sender=sender,
            url=url,
            event_types=event_types,
            settings=current_settings(),
            actor=Actor("sender", str(sender.id)),
        )
    except webhooks.WebhookRefused as refusal:
        status = _REFUSAL_STATUS.get(refusal.code, 400)
        raise ApiProblem(status, refusal.code, refusal.message) from None
    body = _webhook_json(created.subscription) | {"secret": created.secret}
    location = url_for("api.get_webhook", webhook_id=created.subscription.id)
    return jsonify(body), 201, {"Location": location}


@bp.get("/webhooks/<webhook_id>")
def get_webhook(webhook_id: str) -> Response:
    return jsonify(_webhook_json(_own_webhook(webhook_id)))


@bp.delete("/webhooks/<webhook_id>")
def delete_webhook(webhook_id: str) -> tuple[str, int]:
    subscription = _own_webhook(webhook_id)
    webhooks.delete_subscription(
        subscription=subscription, actor=Actor("sender", str(current_sender().id))
    )
    return "", 204


def _limit(raw: str | None) -> int:
    if raw is None:
        return DEFAULT_PAGE
    if not raw.isdigit() or not 1 <= int(raw) <= MAX_PAGE:
        raise ApiProblem(400, INVALID_REQUEST, f"limit must be an integer from 1 to {MAX_PAGE}.")
    return int(raw)


def _webhook_request(body: Any) -> tuple[str, list[str] | None]:
    if not isinstance(body, dict) or set(body) - {"url", "eventTypes"}:
        raise ApiProblem(
            400, INVALID_REQUEST, "The body must be an object with url and eventTypes."
        )
    url, types = body.get("url"), body.get("eventTypes")
    if not isinstance(url, str):
        raise ApiProblem(400, INVALID_REQUEST, "url must be a string.")
    if types is not None and not (
        isinstance(types, list) and all(isinstance(each, str) for each in types)
    ):
        raise ApiProblem(400, INVALID_REQUEST, "eventTypes must be a list of strings, or null.")
    return url, types


def _own_webhook(webhook_id: str) -> WebhookSubscription:
    try:
        subscription_id = uuid.UUID(webhook_id)
    except ValueError:
        subscription_id = None
    found = None
    if subscription_id is not None:
        found = webhooks.find_subscription(current_sender().id, subscription_id)
    if found is None:
        raise ApiProblem(
            404, WEBHOOK_NOT_FOUND, f"This sender has no webhook with id {webhook_id[:64]!r}."
        )
    return found


def _webhook_json(subscription: WebhookSubscription) -> dict[str, Any]:
    def moment(value: Any) -> str | None:
        return None if value is None else json_time(value)

    return {
        "id": str(subscription.id),
        "url": subscription.url,
        "eventTypes": subscription.event_types,
        "active": subscription.is_active,
        "createdAt": json_time(subscription.created_at),
        "lastDeliveryAt": moment(subscription.last_delivery_at),
        "failingSince": moment(subscription.failing_since),
        "lastError": subscription.last_error,
        "disabledAt": moment(subscription.disabled_at),
        "disabledReason": subscription.disabled_reason,
    }
