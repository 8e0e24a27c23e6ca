"""What the alerts say, read when they are sent: one query for a whole window of deliveries.

The statements of the sending path are written on the tables (SQLAlchemy Core): they run once
per window of a hundred deliveries, and the ORM's own work per statement would cost more than
PostgreSQL's.
"""

from __future__ import annotations

import itertools
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date, datetime
from typing import Any, cast

from sqlalchemy import (
    ColumnElement,
    Integer,
    Table,
    and_,
    any_,
    bindparam,
    case,
    exists,
    func,
    or_,
    select,
)
from sqlalchemy.dialects.postgresql import ARRAY

from ebox.accounts.models import Citizen
from ebox.alerts.models import AlertDelivery
from ebox.db_types import PLATFORM_TIMEZONE
from ebox.extensions import db
from ebox.mailbox.models import Document
from ebox.senders.models import MessageType, Sender

DELIVERIES = cast(Table, AlertDelivery.__table__)
CITIZENS = cast(Table, Citizen.__table__)
DOCUMENTS = cast(Table, Document.__table__)
SENDERS = cast(Table, Sender.__table__)
MESSAGE_TYPES = cast(Table, MessageType.__table__)
LATER = DELIVERIES.alias("later")


@dataclass(frozen=True)
class Recipient:
    email: str
    language: str
    given_name: str


@dataclass(frozen=True)
class News:
    new: tuple[tuple[str, int], ...]  # (sender name, documents) published since the last alert
    expiring: tuple[tuple[str, int], ...]  # (sender name, documents) soon deleted unread
    first_deletion: date | None
    # (sender name, documents) still unread EBOX_REMINDER_DAYS after they arrived
    reminders: tuple[tuple[str, int], ...] = ()


@dataclass(frozen=True)
class Alert:
    delivery_id: int
    recipient: Recipient
    news: News


def alerts_to_send(delivery_ids: list[int], now: datetime) -> list[Alert]:
    """The deliveries' news by sender, read now: a document read meanwhile is no news. Left
    out: a delivery with nothing left to tell, whose citizen has no address any more, or that
    is superseded (a later day's alert of the citizen exists, or the news was announced)."""
    deliveries, citizens, documents = DELIVERIES.c, CITIZENS.c, DOCUMENTS.c
    is_new = and_(
        documents.published_at > deliveries.news_after,
        documents.published_at <= deliveries.cutoff_at,
    )
    is_expiring = and_(
        documents.expires_at > deliveries.expiry_after,
        documents.expires_at <= deliveries.expiry_until,
    )
    is_reminder = reminded(
        documents.published_at,
        MESSAGE_TYPES.c.sends_reminders,
        deliveries.reminder_after,
        deliveries.reminder_until,
    )
    recipient = (deliveries.id, citizens.email, citizens.language, citizens.given_name)
    rows = db.session.execute(
        select(
            *recipient,
            SENDERS.c.name,
            func.sum(case((is_new, 1), else_=0)),
            func.sum(case((is_expiring, 1), else_=0)),
            func.min(case((is_expiring, documents.expires_at))),
            func.sum(case((and_(is_reminder, ~is_new, ~is_expiring), 1), else_=0)),
        )
        .join_from(DELIVERIES, CITIZENS, citizens.id == deliveries.citizen_id)
        .join(DOCUMENTS, documents.recipient_national_number == citizens.national_number)
        .join(SENDERS, SENDERS.c.id == documents.sender_id)
        .join(MESSAGE_TYPES, MESSAGE_TYPES.c.id == documents.message_type_id)
        .where(
            among(deliveries.id, delivery_ids),
            citizens.email.is_not(None),
            ~newer_alert(),
            ~already_announced(),
            still_news(now),
            is_new | is_expiring | is_reminder,
        )
        .group_by(*recipient, SENDERS.c.name)
        .order_by(deliveries.id, SENDERS.c.name)
    ).all()
    return [
        _alert(delivery_id, list(senders))
        for delivery_id, senders in itertools.groupby(rows, key=lambda row: row[0])
    ]


def _alert(delivery_id: int, rows: list[Sequence[Any]]) -> Alert:
    _, email, language, given_name = rows[0][:4]
    firsts = [row[7] for row in rows if row[7] is not None]
    return Alert(
        delivery_id=delivery_id,
        recipient=Recipient(email=email, language=language, given_name=given_name or ""),
        news=News(
            new=tuple((row[4], int(row[5])) for row in rows if row[5]),
            expiring=tuple((row[4], int(row[6])) for row in rows if row[6]),
            first_deletion=min(firsts).astimezone(PLATFORM_TIMEZONE).date() if firsts else None,
            reminders=tuple((row[4], int(row[8])) for row in rows if row[8]),
        ),
    )


def reminded(
    published_at: Any, sends_reminders: Any, after: Any, until: Any
) -> ColumnElement[bool]:
    """A document a reminder names: published in the delivery's reminder window (empty, or
    NULL before reminders existed, names nothing), of a message type that sends reminders.
    The caller leaves out what the alert names as new or as soon deleted already."""
    return and_(sends_reminders.is_(True), published_at > after, published_at <= until)


def newer_alert() -> ColumnElement[bool]:
    """The delivery's citizen has a delivery of a later day: that alert tells the same news."""
    return exists().where(
        LATER.c.citizen_id == DELIVERIES.c.citizen_id, LATER.c.day > DELIVERIES.c.day
    )


def already_announced() -> ColumnElement[bool]:
    """The citizen's watermarks (citizens joined) are past the delivery's windows already."""
    citizens, deliveries = CITIZENS.c, DELIVERIES.c
    return and_(
        citizens.alerted_news_until.is_not(None),
        citizens.alerted_expiry_until.is_not(None),
        citizens.alerted_news_until >= deliveries.cutoff_at,
        citizens.alerted_expiry_until >= deliveries.expiry_until,
        or_(
            deliveries.reminder_until.is_(None),
            citizens.alerted_reminder_until >= deliveries.reminder_until,
        ),
    )


def still_news(now: datetime) -> ColumnElement[bool]:
    """A document the citizen can still be told about: unread, not hidden, not gone."""
    documents = DOCUMENTS.c
    return and_(
        documents.read_at.is_(None),
        documents.hidden_at.is_(None),
        documents.deleted_at.is_(None),
        documents.expires_at > now,
    )


def among(column: ColumnElement[int], ids: list[int]) -> ColumnElement[bool]:
    """column IN ids. On PostgreSQL as one array parameter (= ANY): the statement's text is the
    same whatever the ids, so the driver prepares it once and the server plans it once."""
    if db.engine.dialect.name == "postgresql":
        return column == any_(bindparam(None, ids, type_=ARRAY(Integer)))
    return column.in_(ids)
