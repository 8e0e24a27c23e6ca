"""Reading a sender's events in order from a cursor, and their JSON form.

The cursor is the position (xid, id) of the last event served, encoded as an opaque string. On
PostgreSQL only events of transactions older than every transaction still running are served
(decision 0028): a transaction that commits late may have written rows with smaller ids than
rows already served, but never a smaller xid than the oldest transaction still running, so
whatever it wrote sorts after the cursor. A long transaction delays events; it never loses one.
"""

from __future__ import annotations

import base64
import binascii
import uuid
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import BigInteger, ColumnElement, Text, cast, func, select, tuple_

from ebox.events.models import MESSAGE_EXPIRY_WARNING_SENT, MESSAGE_PUBLISHED, SenderEvent
from ebox.extensions import db
from ebox.mailbox.models import Document

MAX_PAGE = 500
_CURSOR_PREFIX = "c1."


class InvalidCursor(ValueError):
    """A cursor this service did not give out (or damaged on the way)."""


@dataclass(frozen=True)
class Position:
    xid: int
    id: int


START = Position(0, 0)


@dataclass(frozen=True)
class Event:
    position: Position
    public_id: str
    type: str
    occurred_at: datetime
    message_id: uuid.UUID
    ticket: str
    sequence: int | None
    expires_at: datetime
    data: dict[str, Any]


@dataclass(frozen=True)
class EventPage:
    events: list[Event]
    next_cursor: str  # where the next page starts: the last event's position, or the same


def encode_cursor(position: Position) -> str:
    raw = f"{position.xid}.{position.id}".encode("ascii")
    return _CURSOR_PREFIX + base64.urlsafe_b64encode(raw).decode("ascii").rstrip("=")


def decode_cursor(cursor: str | None) -> Position:
    """The position a cursor names; None is the start. InvalidCursor for anything else."""
    if cursor is None:
        return START
    if not cursor.startswith(_CURSOR_PREFIX) or len(cursor) > 60:
        raise InvalidCursor("The cursor is not one this service gave out.")
    body = cursor[len(_CURSOR_PREFIX) :]
    try:
        raw = base64.urlsafe_b64decode(body + "=" * (-len(body) % 4)).decode("ascii")
        xid, event_id = (int(part) for part in raw.split("."))
    except (binascii.Error, UnicodeDecodeError, ValueError):
        raise InvalidCursor("The cursor is not one this service gave out.") from None
    if xid < 0 or event_id < 0:
        raise InvalidCursor("The cursor is not one this service gave out.")
    return Position(xid, event_id)


def events_after(
    sender_id: int,
    cursor: str | None,
    limit: int,
    types: Iterable[str] | None = None,
) -> EventPage:
    """The sender's events after cursor, oldest first, at most limit (1 to MAX_PAGE).

    types: only events of these types (None: all). InvalidCursor for a cursor not ours."""
    position = decode_cursor(cursor)
    rows = db.session.execute(_page_query(sender_id, position, limit, types)).all()
    events = [_event(row) for row in rows]
    last = events[-1].position if events else position
    return EventPage(events=events, next_cursor=encode_cursor(last))


def held_back(
    sender_id: int, position: Position, types: Iterable[str] | None, since: datetime
) -> bool:
    """Whether the sender has events after position, occurred since then, that are not served
    yet because an older transaction still runs (PostgreSQL; SQLite serves them at once)."""
    if db.engine.dialect.name != "postgresql":
        return False
    events = SenderEvent
    query = select(events.id).where(
        events.sender_id == sender_id,
        tuple_(events.xid, events.id) > tuple_(position.xid, position.id),
        events.xid >= _oldest_running_transaction(),
        events.occurred_at >= since,
    )
    if types is not None:
        query = query.where(events.type.in_(list(types)))
    return db.session.scalar(query.limit(1)) is not None


def current_position(sender_id: int) -> Position:
    """Where a new reader starts so as to get what happens from now on: after every event
    served already. On PostgreSQL that is before the events of transactions still running
    (and of some just committed: at least once, rather than lose one)."""
    if db.engine.dialect.name == "postgresql":
        return Position(int(db.session.scalar(select(_oldest_running_transaction())) or 0), 0)
    latest = db.session.scalar(
        select(func.max(SenderEvent.id)).where(SenderEvent.sender_id == sender_id)
    )
    return Position(0, int(latest or 0))


def _page_query(sender_id: int, position: Position, limit: int, types: Iterable[str] | None) -> Any:
    if not 1 <= limit <= MAX_PAGE:
        raise ValueError(f"limit must be between 1 and {MAX_PAGE}")
    events = SenderEvent
    query = (
        select(
            events.xid,
            events.id,
            events.public_id,
            events.type,
            events.occurred_at,
            events.document_id,
            Document.sender_ticket,
            Document.sender_sequence,
            Document.expires_at,
            events.data,
        )
        .join(Document, Document.id == events.document_id)
        .where(
            events.sender_id == sender_id,
            tuple_(events.xid, events.id) > tuple_(position.xid, position.id),
        )
        .order_by(events.xid, events.id)
        .limit(limit)
    )
    if types is not None:
        query = query.where(events.type.in_(list(types)))
    if db.engine.dialect.name == "postgresql":
        query = query.where(events.xid < _oldest_running_transaction())
    return query


def _oldest_running_transaction() -> ColumnElement[int]:
    """The id of the oldest transaction still running (or the next one, if none is)."""
    xmin = func.pg_snapshot_xmin(func.pg_current_snapshot())
    return cast(cast(xmin, Text), BigInteger)


def _event(row: Any) -> Event:
    xid, event_id, public_id, type_, occurred_at, message_id, ticket, sequence, expires, data = row
    return Event(
        position=Position(int(xid), int(event_id)),
        public_id=public_id,
        type=type_,
        occurred_at=occurred_at,
        message_id=message_id,
        ticket=ticket,
        sequence=sequence,
        expires_at=expires,
        data=dict(data or {}),
    )


def event_json(event: Event) -> dict[str, Any]:
    """The event as pull clients and webhook receivers get it (the same JSON for both)."""
    data = dict(event.data)
    if event.type in (MESSAGE_PUBLISHED, MESSAGE_EXPIRY_WARNING_SENT):
        data["expiresAt"] = json_time(event.expires_at)
    return {
        "id": event.public_id,
        "type": event.type,
        "time": json_time(event.occurred_at),
        "messageId": str(event.message_id),
        "reference": {"ticket": event.ticket, "sequence": event.sequence},
        "data": data,
    }


def json_time(moment: datetime) -> str:
    """RFC 3339 in UTC to the second, as `2026-12-02T10:00:00Z`."""
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
