"""A sender's webhook subscriptions: made, listed and deleted by the sender (REST API),
re-enabled by staff. Flushes, never commits.

The secret is made here, shown once (create_subscription's answer) and kept wrapped by the
current master key; only the delivery unwraps it (secret_of).
"""

from __future__ import annotations

import base64
import os
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from urllib.parse import urlsplit

from sqlalchemy import func, select

from ebox import transactions
from ebox.audit.services import Actor, record_event
from ebox.config import Settings
from ebox.events.models import EVENT_TYPES
from ebox.events.queries import current_position
from ebox.extensions import db
from ebox.senders.models import Sender
from ebox.storage.crypto import unwrap_data_key, wrap_data_key
from ebox.webhooks.addresses import RefusedAddress, check_url
from ebox.webhooks.models import MAX_SUBSCRIPTIONS_PER_SENDER, WebhookSubscription
from ebox.webhooks.requests import forget_cached_senders, request_delivery

SECRET_PREFIX = "whsec_"  # noqa: S105 - the format's prefix, not a secret
SECRET_BYTES = 32

# Why a subscription is refused: the REST API answers each with this code.
WEBHOOK_URL_REFUSED = "WEBHOOK_URL_REFUSED"
UNKNOWN_EVENT_TYPE = "UNKNOWN_EVENT_TYPE"
TOO_MANY_WEBHOOKS = "TOO_MANY_WEBHOOKS"


class WebhookRefused(ValueError):
    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code
        self.message = message


@dataclass(frozen=True)
class NewSubscription:
    subscription: WebhookSubscription
    secret: str  # `whsec_` + base64: shown to the sender this once, never again


def create_subscription(
    *,
    sender: Sender,
    url: str,
    event_types: Sequence[str] | None,
    settings: Settings,
    actor: Actor,
) -> NewSubscription:
    types = _checked_types(event_types)
    try:
        check_url(url, settings)
    except RefusedAddress as error:
        raise WebhookRefused(WEBHOOK_URL_REFUSED, str(error)) from None
    if _count(sender.id) >= MAX_SUBSCRIPTIONS_PER_SENDER:
        raise WebhookRefused(
            TOO_MANY_WEBHOOKS,
            f"A sender may have at most {MAX_SUBSCRIPTIONS_PER_SENDER} webhook subscriptions.",
        )
    secret = os.urandom(SECRET_BYTES)
    subscription = WebhookSubscription(
        id=uuid.uuid4(),
        sender_id=sender.id,
        url=url,
        event_types=types,
        secret_wrapped=wrap_data_key(secret, master_key=settings.current_master_key),
        secret_key_id=settings.master_key_id,
        is_active=True,
        failures=0,
        position_xid=0,
        position_id=0,
    )
    # It starts with what happens from now on, not with the past week's events.
    _start_now(subscription)
    db.session.add(subscription)
    db.session.flush()
    record_event(
        actor,
        "webhook.created",
        "webhook_subscription",
        subscription.id,
        {"sender_id": sender.id, "host": _host(url), "event_types": types},
    )
    transactions.after_commit(forget_cached_senders)
    return NewSubscription(subscription, SECRET_PREFIX + base64.b64encode(secret).decode())


def subscriptions_of(sender_id: int) -> list[WebhookSubscription]:
    return list(
        db.session.scalars(
            select(WebhookSubscription)
            .where(WebhookSubscription.sender_id == sender_id)
            .order_by(WebhookSubscription.created_at, WebhookSubscription.id)
        )
    )


def find_subscription(sender_id: int, subscription_id: uuid.UUID) -> WebhookSubscription | None:
    """The sender's subscription with this id; None for another sender's, as for none."""
    return db.session.scalars(
        select(WebhookSubscription).where(
            WebhookSubscription.id == subscription_id,
            WebhookSubscription.sender_id == sender_id,
        )
    ).first()


def delete_subscription(*, subscription: WebhookSubscription, actor: Actor) -> None:
    record_event(
        actor,
        "webhook.deleted",
        "webhook_subscription",
        subscription.id,
        {"sender_id": subscription.sender_id, "host": _host(subscription.url)},
    )
    db.session.delete(subscription)
    db.session.flush()
    transactions.after_commit(forget_cached_senders)


def reenable_subscription(*, subscription: WebhookSubscription, actor: Actor) -> None:
    """Staff turn a disabled subscription on again: deliveries resume where they stopped (the
    events of the last EVENT_RETENTION that are still kept)."""
    subscription.is_active = True
    subscription.disabled_at = None
    subscription.disabled_reason = None
    subscription.failures = 0
    subscription.failing_since = None
    subscription.next_attempt_at = None
    db.session.flush()
    record_event(
        actor,
        "webhook.reenabled",
        "webhook_subscription",
        subscription.id,
        {"sender_id": subscription.sender_id},
    )
    subscription_id = str(subscription.id)
    transactions.after_commit(forget_cached_senders)
    transactions.after_commit(lambda: request_delivery(subscription_id))


def secret_of(subscription: WebhookSubscription, settings: Settings) -> bytes:
    """The subscription's secret, unwrapped with the master key that wrapped it."""
    master_key = settings.master_key_ring()[subscription.secret_key_id]
    return unwrap_data_key(
        subscription.secret_wrapped,
        master_key=master_key,
        master_key_id=subscription.secret_key_id,
    )


def _start_now(subscription: WebhookSubscription) -> None:
    position = current_position(subscription.sender_id)
    subscription.position_xid, subscription.position_id = position.xid, position.id


def _checked_types(event_types: Sequence[str] | None) -> list[str] | None:
    if event_types is None:
        return None
    unknown = [each for each in event_types if each not in EVENT_TYPES]
    if unknown or not event_types:
        raise WebhookRefused(
            UNKNOWN_EVENT_TYPE,
            "The event types must be a non-empty list of: " + ", ".join(EVENT_TYPES) + ".",
        )
    return sorted(set(event_types))


def _count(sender_id: int) -> int:
    return int(
        db.session.scalar(
            select(func.count(WebhookSubscription.id)).where(
                WebhookSubscription.sender_id == sender_id
            )
        )
        or 0
    )


def _host(url: str) -> str:
    return urlsplit(url).hostname or ""
