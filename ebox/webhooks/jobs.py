"""Worker jobs of webhooks. Each takes ids and is safe to run twice (ebox.webhooks.delivery)."""

from __future__ import annotations

import logging
import uuid
from datetime import datetime

from sqlalchemy import or_, select

from ebox.db_types import utcnow
from ebox.events.queries import Position, encode_cursor, events_after
from ebox.extensions import db
from ebox.webhooks.delivery import deliver_pending
from ebox.webhooks.models import WebhookSubscription
from ebox.webhooks.requests import request_delivery

log = logging.getLogger(__name__)


def deliver(subscription_id: str, retry_due: str | None = None) -> int:
    """A subscription's delivery; retry_due (ISO 8601) when it is the retry scheduled for the
    end of a back-off."""
    due = datetime.fromisoformat(retry_due) if retry_due else None
    return deliver_pending(uuid.UUID(subscription_id), retry_due=due)


def deliver_for_sender(sender_id: int) -> int:
    """A sender published: deliver for each of its active subscriptions."""
    subscription_ids = list(
        db.session.scalars(
            select(WebhookSubscription.id).where(
                WebhookSubscription.sender_id == sender_id,
                WebhookSubscription.is_active.is_(True),
            )
        )
    )
    db.session.rollback()
    return sum(deliver_pending(subscription_id) for subscription_id in subscription_ids)


def deliver_due() -> int:
    """Periodic: queue the delivery of every active subscription that has pending events and is
    not backing off, whatever became of the requests made when they were written."""
    now = utcnow()
    subscriptions = db.session.execute(
        select(
            WebhookSubscription.id,
            WebhookSubscription.sender_id,
            WebhookSubscription.position_xid,
            WebhookSubscription.position_id,
            WebhookSubscription.event_types,
        ).where(
            WebhookSubscription.is_active.is_(True),
            or_(
                WebhookSubscription.next_attempt_at.is_(None),
                WebhookSubscription.next_attempt_at <= now,
            ),
        )
    ).all()
    due = [
        str(subscription_id)
        for subscription_id, sender_id, xid, event_id, types in subscriptions
        if events_after(sender_id, encode_cursor(Position(xid, event_id)), 1, types).events
    ]
    db.session.rollback()
    for subscription_id in due:
        request_delivery(subscription_id)
    if due:
        log.info("webhook sweep: %d subscriptions with pending events queued", len(due))
    return len(due)
