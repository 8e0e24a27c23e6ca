"""A citizen's devices that receive the daily alert as a push: subscribe, list, remove. The
pushes themselves: ebox.push.sending."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import delete, func, select

from ebox.accounts.queries import describe_user_agent
from ebox.extensions import db
from ebox.push.endpoints import Subscription
from ebox.push.models import PushSubscription

MAX_DEVICES = 10  # subscriptions per citizen


class TooManyDevices(Exception):
    pass


@dataclass(frozen=True)
class PushSection:
    public_key: str  # base64url, the browser's applicationServerKey
    devices: list[Device]


@dataclass(frozen=True)
class Device:
    id: int
    browser: str
    system: str
    created_at: datetime
    last_success_at: datetime | None


def devices(citizen_id: int) -> list[Device]:
    rows = db.session.scalars(
        select(PushSubscription)
        .where(PushSubscription.citizen_id == citizen_id)
        .order_by(PushSubscription.created_at, PushSubscription.id)
    )
    return [
        Device(row.id, row.browser, row.system, row.created_at, row.last_success_at) for row in rows
    ]


def subscribe(*, citizen_id: int, subscription: Subscription, user_agent: str) -> bool:
    """Store the device's subscription; True if it is new. The same endpoint again (the browser
    subscribed anew, or another citizen now uses it) replaces the stored one: a device gets the
    pushes of whoever subscribed on it last."""
    existing = db.session.scalar(
        select(PushSubscription)
        .where(PushSubscription.endpoint == subscription.endpoint)
        .with_for_update()
    )
    if existing is not None and existing.citizen_id != citizen_id:
        db.session.delete(existing)
        db.session.flush()
        existing = None
    if existing is None:
        count = db.session.scalar(
            select(func.count(PushSubscription.id)).where(PushSubscription.citizen_id == citizen_id)
        )
        if (count or 0) >= MAX_DEVICES:
            raise TooManyDevices
    browser, system = describe_user_agent(user_agent)
    row = existing or PushSubscription(citizen_id=citizen_id, endpoint=subscription.endpoint)
    row.p256dh = subscription.p256dh
    row.auth = subscription.auth
    row.browser, row.system = browser, system
    row.failures, row.failing_since, row.last_error = 0, None, None
    db.session.add(row)
    db.session.flush()
    return existing is None


def remove(*, citizen_id: int, subscription_id: int) -> bool:
    """Forget one of the citizen's devices; False if it is not theirs (or not there)."""
    result = db.session.execute(
        delete(PushSubscription).where(
            PushSubscription.id == subscription_id, PushSubscription.citizen_id == citizen_id
        ),
        execution_options={"preserve_rowcount": True},
    )
    return bool(getattr(result, "rowcount", 0))
