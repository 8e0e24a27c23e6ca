"""Delivering a subscription's events: in order, at least once, one subscription at a time.

deliver_pending() takes the subscription's pending events (ebox.events.queries, from its
position, of its types) and sends them one by one; after each 2xx the position moves past the
event and is committed, so a crash sends at most that one event again. The first failure
stops the run: the error is recorded and the subscription backs off (30 s doubling up to an
hour, with jitter), then a retry job is scheduled; one failing without a break for
DISABLE_AFTER is disabled, with the reason staff see.

On PostgreSQL, events are served once every older transaction has ended (decision 0028): a
run that finds none to send while some of the last minute are held back so comes again a
second later, rather than leave them to the sweep.

Only the retry delivers at the end of a back-off (the sweep too, within a minute): any other
run finds the subscription not due and stops. So the retry must not be lost on the way. RQ's
scheduler may start it a little early (whole seconds, the clocks of two hosts): then it is
scheduled again for the end of the back-off. It may find another run holding the lock (one
that started just before the back-off ended and found nothing due): then it comes again a
second later. Either way only while the back-off it was made for is the subscription's
current one; a newer failure has scheduled its own retry.

One worker at a time per subscription: a Redis lock (SET NX with an expiry, renewed before each
event), not a database row lock. A row lock would keep a transaction, and so a transaction id,
open during every HTTP call; the events of all senders are served only once every older
transaction has ended (decision 0028), so that would hold them all back for as long as a slow
receiver takes. The lock expires by itself if its worker dies. Its position moves only from
where this run found it (compare and set), so even a lock lost mid-run cannot reorder events.
"""

from __future__ import annotations

import logging
import random
import uuid
from dataclasses import dataclass
from datetime import datetime, timedelta

from redis import Redis
from redis.exceptions import LockError
from redis.lock import Lock
from rq.job import get_current_job
from sqlalchemy import update

from ebox import metrics, transactions
from ebox.config import Settings, current_settings
from ebox.db_types import utcnow
from ebox.events.queries import (
    Event,
    Position,
    encode_cursor,
    event_json,
    events_after,
    held_back,
)
from ebox.extensions import db
from ebox.redis_connection import redis_for_app
from ebox.webhooks.models import WebhookSubscription
from ebox.webhooks.requests import request_delivery, request_retry
from ebox.webhooks.sending import send
from ebox.webhooks.services import secret_of

log = logging.getLogger(__name__)

DISABLE_AFTER = timedelta(hours=24)
MAX_BACKOFF_SECONDS = 3600
PAGE = 100
MAX_PER_RUN = 1000  # then a new job goes on, so one busy subscription does not hold a worker
LOCK_SECONDS = 60  # more than one delivery can take; renewed before each
# Events held back longer than the sweep's period are the sweep's to deliver.
HELD_BACK_WATCHED = timedelta(minutes=1)
HELD_BACK_AGAIN_SECONDS = 1


@dataclass(frozen=True)
class Pending:
    url: str
    secret: bytes
    position: Position
    events: list[Event]
    held_back: bool = False  # none to send now, some soon (PostgreSQL)


@dataclass(frozen=True)
class BackingOff:
    until: datetime


def deliver_pending(
    subscription_id: uuid.UUID,
    *,
    now: datetime | None = None,
    retry_due: datetime | None = None,
) -> int:
    """Send the subscription's pending events; returns how many were delivered. Does nothing
    while another worker delivers for it, or while it backs off after a failure. retry_due:
    this run is the retry scheduled for the end of the back-off until then."""
    redis = _redis()
    lock = redis.lock(f"ebox:webhook:{subscription_id}", timeout=LOCK_SECONDS)
    if not lock.acquire(blocking=False):
        if retry_due is not None and _backing_off_until(subscription_id) == retry_due:
            at = max(retry_due, utcnow()) + timedelta(seconds=1)
            request_retry(str(subscription_id), retry_due, at=at)
            return 0
        if not _ask_the_holder_to_go_on(redis, subscription_id, lock):
            return 0
    try:
        return _deliver_locked(subscription_id, lock, now, retry_due)
    finally:
        finish_run(redis, subscription_id, lock)


def _again_key(subscription_id: uuid.UUID) -> str:
    return f"ebox:webhook:{subscription_id}:again"


def _ask_the_holder_to_go_on(redis: Redis, subscription_id: uuid.UUID, lock: Lock) -> bool:
    """Another run holds the subscription: leave it a note that new events came, which it reads
    once it has let go (finish_run), then try the lock once more in case it let go meanwhile.
    Without the note, a run that had already looked for events last would leave this one's
    event to the sweep, a minute later. True when the lock was taken after all."""
    redis.set(_again_key(subscription_id), "1", ex=LOCK_SECONDS * 2)
    return bool(lock.acquire(blocking=False))


def finish_run(redis: Redis, subscription_id: uuid.UUID, lock: Lock) -> None:
    """Let go of the subscription, then honour a note left meanwhile: one more run is queued."""
    if lock.owned():
        lock.release()
    if redis.getdel(_again_key(subscription_id)):
        request_delivery(str(subscription_id))


def _deliver_locked(
    subscription_id: uuid.UUID, lock: Lock, now: datetime | None, retry_due: datetime | None
) -> int:
    settings = current_settings()
    delivered = 0
    while delivered < MAX_PER_RUN:
        pending = _pending(subscription_id, now or utcnow(), settings)
        transactions.rollback()  # no transaction stays open while a receiver answers
        if isinstance(pending, BackingOff):
            if retry_due is not None and pending.until == retry_due:  # started early
                request_retry(str(subscription_id), retry_due)
            return delivered
        if pending is None or not pending.events:
            if pending is not None and pending.held_back:
                request_delivery(str(subscription_id), after_seconds=HELD_BACK_AGAIN_SECONDS)
            return delivered
        position = pending.position
        for event in pending.events:
            if not _still_ours(lock):
                return delivered
            error = send(pending.url, pending.secret, event_json(event), settings)
            if error:
                record_failure(subscription_id, error, now=now or utcnow(), settings=settings)
                return delivered
            metrics.count_webhook_delivery("ok")
            if not _advance(subscription_id, position, event.position, now or utcnow()):
                return delivered  # someone else moved it: they deliver from there
            position = event.position
            delivered += 1
    request_delivery(str(subscription_id))
    return delivered


def _still_ours(lock: Lock) -> bool:
    """Renew the lock for the next delivery; False if it expired and another run took it."""
    try:
        lock.reacquire()
    except LockError:
        log.warning("webhook lock %s lost; the run that holds it now goes on", lock.name)
        return False
    return True


def _pending(
    subscription_id: uuid.UUID, now: datetime, settings: Settings
) -> Pending | BackingOff | None:
    subscription = db.session.get(WebhookSubscription, subscription_id)
    if subscription is None or not subscription.is_active:
        return None
    # The retry scheduled for then will come; a request in between must not hammer a receiver.
    if subscription.next_attempt_at is not None and subscription.next_attempt_at > now:
        return BackingOff(subscription.next_attempt_at)
    position = Position(subscription.position_xid, subscription.position_id)
    sender, types = subscription.sender_id, subscription.event_types
    page = events_after(sender, encode_cursor(position), PAGE, types)
    secret = secret_of(subscription, settings)
    if page.events:
        return Pending(subscription.url, secret, position, page.events)
    waiting = held_back(sender, position, types, now - HELD_BACK_WATCHED)
    return Pending(subscription.url, secret, position, [], held_back=waiting)


def _backing_off_until(subscription_id: uuid.UUID) -> datetime | None:
    subscription = db.session.get(WebhookSubscription, subscription_id)
    until = subscription.next_attempt_at if subscription and subscription.is_active else None
    transactions.rollback()
    return until


def _advance(subscription_id: uuid.UUID, old: Position, new: Position, now: datetime) -> bool:
    subscriptions = WebhookSubscription
    moved = db.session.execute(
        update(subscriptions)
        .where(
            subscriptions.id == subscription_id,
            subscriptions.position_xid == old.xid,
            subscriptions.position_id == old.id,
        )
        .values(
            position_xid=new.xid,
            position_id=new.id,
            last_delivery_at=now,
            failures=0,
            failing_since=None,
            next_attempt_at=None,
        )
        .execution_options(synchronize_session=False)
    )
    transactions.commit()
    return int(getattr(moved, "rowcount", 0) or 0) == 1


def record_failure(
    subscription_id: uuid.UUID, error: str, *, now: datetime, settings: Settings
) -> None:
    """Note the failure; back off and schedule a retry, or disable after DISABLE_AFTER."""
    subscription = db.session.get(WebhookSubscription, subscription_id)
    if subscription is None:
        return
    subscription.failures += 1
    subscription.failing_since = subscription.failing_since or now
    subscription.last_error = error[:300]
    if now - subscription.failing_since >= DISABLE_AFTER:
        _disable(subscription, now)
        transactions.after_commit(lambda: metrics.count_webhook_delivery("disabled"))
    else:
        transactions.after_commit(lambda: metrics.count_webhook_delivery("failed"))
        delay = backoff_seconds(subscription.failures, settings.webhook_retry_base_seconds)
        due = now + timedelta(seconds=delay)
        subscription.next_attempt_at = due
        transactions.after_commit(lambda: request_retry(str(subscription_id), due))
        log.info("webhook %s failed (%s); next try in %.0f s", subscription_id, error, delay)
    transactions.commit()


def backoff_seconds(failures: int, base: float) -> float:
    """base, doubling with each failure in a row, at most an hour; the last quarter random, so
    that receivers that came back are not called by every subscription at once."""
    delay = min(base * 2 ** max(failures - 1, 0), MAX_BACKOFF_SECONDS)
    return delay * random.uniform(0.75, 1.0)  # noqa: S311 - spreading, not secrecy


def _disable(subscription: WebhookSubscription, now: datetime) -> None:
    since = subscription.failing_since or now
    subscription.is_active = False
    subscription.disabled_at = now
    subscription.next_attempt_at = None
    subscription.disabled_reason = (
        f"Every delivery failed since {since:%Y-%m-%d %H:%M} UTC "
        f"({subscription.failures} tries); last error: {subscription.last_error}"
    )[:400]
    log.warning(
        "webhook %s of sender %s disabled: failing since %s",
        subscription.id,
        subscription.sender_id,
        since.isoformat(),
    )


def _redis() -> Redis:
    job = get_current_job()
    return job.connection if job is not None else redis_for_app()
