"""Asking the worker to deliver a sender's new events, once the transaction that wrote them
has committed. Best effort: the periodic sweep (ebox.webhooks.jobs.deliver_due) delivers what a
lost request leaves pending, so nothing here may fail the transaction or the caller.

Publication calls this for every document, so it must cost next to nothing for the many
senders without webhooks: which senders have active subscriptions is read once a minute per
process (and again at once when this process changes a subscription).
"""

from __future__ import annotations

import logging
import math
import time
from datetime import UTC, datetime, timedelta

from flask import current_app, g
from redis.exceptions import RedisError
from sqlalchemy import select

from ebox import transactions
from ebox.extensions import db
from ebox.jobs import queue
from ebox.webhooks.models import WebhookSubscription

log = logging.getLogger(__name__)

_DELIVER = "ebox.webhooks.jobs.deliver"
_CACHE = "ebox.webhooks.senders"
CACHE_SECONDS = 60


def request_deliveries_after_commit(sender_id: int) -> None:
    """Once per sender and transaction, if the sender has an active subscription: enqueue its
    deliveries after the commit."""
    if sender_id not in _senders_with_webhooks():
        return
    pending: set[int] = g.setdefault("_webhook_senders", set())
    if sender_id in pending:
        return
    pending.add(sender_id)

    def request() -> None:
        pending.discard(sender_id)
        request_deliveries(sender_id)

    transactions.after_commit(request)
    transactions.after_rollback(lambda: pending.discard(sender_id))


def request_deliveries(sender_id: int) -> None:
    try:
        queue(fail_fast=True).enqueue(
            "ebox.webhooks.jobs.deliver_for_sender",
            sender_id,
            description=f"webhooks of sender {sender_id}",
        )
    except (RedisError, OSError) as error:
        log.warning(
            "webhooks of sender %s not queued (Redis: %s); the sweep will", sender_id, error
        )


def request_delivery(subscription_id: str, *, after_seconds: float = 0) -> None:
    """Enqueue one subscription's delivery, now or once after_seconds have passed."""
    description = f"webhook {subscription_id}"
    try:
        jobs = queue(fail_fast=True)
        if after_seconds > 0:
            at = datetime.now(UTC) + timedelta(seconds=after_seconds)
            jobs.enqueue_at(_start(at), _DELIVER, subscription_id, description=description)
        else:
            jobs.enqueue(_DELIVER, subscription_id, description=description)
    except (RedisError, OSError) as error:
        log.warning("webhook %s not queued (Redis: %s); the sweep will", subscription_id, error)


def request_retry(subscription_id: str, due: datetime, *, at: datetime | None = None) -> None:
    """Schedule the retry of a subscription backing off until due, to start at due (or at a
    later moment). The job carries due, so that it knows itself for that retry if it starts
    too early (ebox.webhooks.delivery).

    RQ's scheduler keeps whole seconds and starts a job as soon as the second it is filed under
    has begun, up to a second before the moment asked for (_start)."""
    try:
        queue(fail_fast=True).enqueue_at(
            _start(at or due),
            _DELIVER,
            subscription_id,
            due.isoformat(),
            description=f"webhook {subscription_id} retry",
        )
    except (RedisError, OSError) as error:
        log.warning(
            "webhook %s retry not queued (Redis: %s); the sweep will", subscription_id, error
        )


def _start(moment: datetime) -> datetime:
    """When to file a job that must not start before moment: RQ's scheduler keeps whole seconds
    and starts a job as soon as the second it is filed under has begun, so the next one."""
    return datetime.fromtimestamp(math.ceil(moment.timestamp()), UTC)


def forget_cached_senders() -> None:
    current_app.extensions.pop(_CACHE, None)


def _senders_with_webhooks() -> frozenset[int]:
    cached: tuple[float, frozenset[int]] | None = current_app.extensions.get(_CACHE)
    if cached is None or time.monotonic() - cached[0] > CACHE_SECONDS:
        senders = frozenset(
            db.session.scalars(
                select(WebhookSubscription.sender_id)
                .where(WebhookSubscription.is_active.is_(True))
                .distinct()
            )
        )
        cached = (time.monotonic(), senders)
        current_app.extensions[_CACHE] = cached
    return cached[1]
