"""The pushes of the daily alert, one per device of each citizen whose alert was sent.

The push of an alert goes out after its e-mail is recorded as sent (ebox.alerts.services): the
delivery goes sending -> sent once, in the transaction of the process that sent the e-mail,
and only that process then pushes it, so a push goes out at most once per delivery and never
for an alert that was not sent. A worker killed between the two sends no push for that day;
the e-mail has gone, which is what counts.

A push never fails or delays the e-mail beyond its own short wait: the window's outcomes are
committed first, the pushes of a window go out in parallel with a short time-out, and every
error is counted on its subscription instead of raised. A push service that answers 404 or 410
says the subscription is gone: it is dropped. Other failures are counted; a subscription that
has kept failing for DROP_AFTER is dropped too.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import timedelta
from typing import Any
from urllib.parse import urlsplit

import requests
from py_vapid import Vapid02
from pywebpush import WebPushException, webpush
from sqlalchemy import delete, func, select, update

from ebox import transactions
from ebox.alerts.models import AlertDelivery
from ebox.alerts.queries import Alert
from ebox.config import Settings
from ebox.db_types import utcnow
from ebox.extensions import db
from ebox.push import keys
from ebox.push.endpoints import endpoint_refusal
from ebox.push.messages import push_payload
from ebox.push.models import PushSubscription

log = logging.getLogger(__name__)

TIMEOUT_SECONDS = 5.0  # to connect, then to read the answer
TTL_SECONDS = 24 * 3600  # a device offline longer gets the next day's push instead
PARALLEL = 8  # pushes in flight at once, per sending worker
DROP_AFTER = timedelta(days=3)  # of failures without a success in between
GONE = (404, 410)


@dataclass
class PushOutcome:
    sent: int = 0
    dropped: int = 0
    failed: int = 0
    refused: int = 0  # endpoint no longer allowed (EBOX_PUSH_SERVICES changed): not sent

    def add(self, other: PushOutcome) -> None:
        self.sent += other.sent
        self.dropped += other.dropped
        self.failed += other.failed
        self.refused += other.refused


@dataclass(frozen=True)
class _Push:
    subscription_id: int
    endpoint: str
    p256dh: str
    auth: str
    payload: bytes


@dataclass(frozen=True)
class _Answer:
    subscription_id: int
    host: str
    status: int | None  # None: no answer (time-out, connection refused)
    error: str


def push_alerts(alerts: Iterable[Alert], settings: Settings) -> PushOutcome:
    """One push per subscription of each sent alert's citizen, then their outcomes in one
    transaction. Never raises: the alerts' e-mails are sent and recorded already."""
    outcome = PushOutcome()
    by_delivery = {alert.delivery_id: alert for alert in alerts}
    if not by_delivery or not settings.push_enabled:
        return outcome
    try:
        pushes = _pushes(by_delivery, settings, outcome)
        if pushes:
            answers = _send_all(pushes, settings)
            _record(answers, outcome)
            transactions.commit()
    except Exception:
        transactions.rollback()
        log.exception("pushes of %d alerts failed; their e-mails were sent", len(by_delivery))
        return outcome
    if pushes:
        log.info(
            "pushes of %d alerts: %d sent, %d subscriptions dropped, %d failed, %d refused",
            len(by_delivery),
            outcome.sent,
            outcome.dropped,
            outcome.failed,
            outcome.refused,
        )
    return outcome


def _pushes(by_delivery: dict[int, Alert], settings: Settings, outcome: PushOutcome) -> list[_Push]:
    rows = db.session.execute(
        select(
            AlertDelivery.id,
            PushSubscription.id,
            PushSubscription.endpoint,
            PushSubscription.p256dh,
            PushSubscription.auth,
        )
        .join(PushSubscription, PushSubscription.citizen_id == AlertDelivery.citizen_id)
        .where(AlertDelivery.id.in_(list(by_delivery)))
        .order_by(PushSubscription.id)
    ).all()
    payloads: dict[tuple[object, ...], bytes] = {}
    pushes = []
    for delivery_id, subscription_id, endpoint, p256dh, auth in rows:
        if endpoint_refusal(endpoint, settings):  # the allow-list may have changed since
            outcome.refused += 1
            continue
        alert = by_delivery[delivery_id]
        key = (alert.recipient.language, alert.news)
        if key not in payloads:
            payloads[key] = push_payload(alert.news, alert.recipient.language)
        pushes.append(_Push(subscription_id, endpoint, p256dh, auth, payloads[key]))
    return pushes


def _send_all(pushes: list[_Push], settings: Settings) -> list[_Answer]:
    signer = Vapid02(private_key=keys.private_key(settings))
    subject = settings.push_vapid_subject
    with ThreadPoolExecutor(max_workers=min(PARALLEL, len(pushes))) as pool:
        return list(pool.map(lambda push: _send(push, signer, subject), pushes))


class _NoRedirects(requests.Session):
    """A push goes to the endpoint checked, never where an answer redirects it."""

    def request(self, *args: Any, **kwargs: Any) -> requests.Response:
        kwargs["allow_redirects"] = False
        return super().request(*args, **kwargs)


def _send(push: _Push, signer: Vapid02, subject: str) -> _Answer:
    host = urlsplit(push.endpoint).hostname or ""
    try:
        with _NoRedirects() as session:
            webpush(
                subscription_info={
                    "endpoint": push.endpoint,
                    "keys": {"p256dh": push.p256dh, "auth": push.auth},
                },
                data=push.payload.decode("utf-8"),
                vapid_private_key=signer,
                vapid_claims={"sub": subject},
                content_encoding="aes128gcm",
                timeout=TIMEOUT_SECONDS,
                ttl=TTL_SECONDS,
                headers={"Urgency": "normal"},
                requests_session=session,
            )
    except WebPushException as error:
        status = error.response.status_code if error.response is not None else None
        return _Answer(push.subscription_id, host, status, f"push service answered {status}")
    except (requests.RequestException, OSError) as error:
        return _Answer(push.subscription_id, host, None, type(error).__name__)
    return _Answer(push.subscription_id, host, 201, "")


def _record(answers: list[_Answer], outcome: PushOutcome) -> None:
    now = utcnow()
    subscriptions = PushSubscription.__table__.c
    succeeded = [answer.subscription_id for answer in answers if not answer.error]
    gone = [answer.subscription_id for answer in answers if answer.status in GONE]
    if succeeded:
        db.session.execute(
            update(PushSubscription)
            .where(subscriptions.id.in_(succeeded))
            .values(last_success_at=now, failures=0, failing_since=None, last_error=None)
        )
    if gone:
        db.session.execute(delete(PushSubscription).where(subscriptions.id.in_(gone)))
    failing = [answer for answer in answers if answer.error and answer.status not in GONE]
    for answer in failing:
        log.warning("push to %s failed: %s", answer.host, answer.error)
        db.session.execute(
            update(PushSubscription)
            .where(subscriptions.id == answer.subscription_id)
            .values(
                failures=subscriptions.failures + 1,
                failing_since=func.coalesce(subscriptions.failing_since, now),
                last_error=answer.error[:200],
            )
        )
    stale = db.session.execute(
        delete(PushSubscription).where(
            subscriptions.id.in_([answer.subscription_id for answer in failing]),
            subscriptions.failing_since < now - DROP_AFTER,
        ),
        execution_options={"preserve_rowcount": True},
    )
    for answer in answers:
        if answer.status in GONE:
            log.info("push subscription at %s is gone (%s): dropped", answer.host, answer.status)
    outcome.sent += len(succeeded)
    outcome.dropped += len(gone) + int(getattr(stale, "rowcount", 0) or 0)
    outcome.failed += len(failing)
