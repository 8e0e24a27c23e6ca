"""Recording events, each in the transaction of the change it reports. Flushes, never commits.

record_event() writes one row with one prepared INSERT (publication runs it for every document);
record_events_from() writes one row per document a SELECT names, in one INSERT ... SELECT, for
the changes made to many documents at once (the daily alert, the purge).
"""

from __future__ import annotations

import logging
import uuid
from datetime import datetime
from typing import Any, cast

from sqlalchemy import (
    JSON,
    ColumnElement,
    Delete,
    Select,
    String,
    Table,
    delete,
    insert,
    literal,
    literal_column,
    select,
)

from ebox import transactions
from ebox.db_types import UTCDateTime, utcnow
from ebox.events.models import EVENT_RETENTION, EVENT_TYPES, SenderEvent, new_public_id
from ebox.extensions import db

log = logging.getLogger(__name__)

EVENTS = cast(Table, SenderEvent.__table__)
_INSERT_EVENT = insert(EVENTS)
FORGET_BATCH = 5000


def record_event(
    *,
    sender_id: int,
    document_id: uuid.UUID,
    type: str,
    at: datetime,
    data: dict[str, Any] | None = None,
) -> None:
    """One event, in the caller's transaction: through the session's Core connection, as
    publication stores its document (the ORM's unit of work would cost more than the row)."""
    _check_type(type)
    db.session.connection().execute(
        _INSERT_EVENT,
        {
            "public_id": new_public_id(),
            "sender_id": sender_id,
            "document_id": document_id,
            "type": type,
            "occurred_at": at,
            "data": data or {},
        },
    )


def record_events_from(
    documents: Select[Any, Any],
    *,
    type: str,
    at: datetime,
    data: dict[str, Any] | None = None,
) -> int:
    """One event per row of documents, a SELECT of (sender_id, document id): one statement,
    however many rows. Returns how many were written."""
    _check_type(type)
    rows = documents.subquery()
    sender_id, document_id = rows.c
    statement = EVENTS.insert().from_select(
        ["public_id", "sender_id", "document_id", "type", "occurred_at", "data"],
        select(
            _random_public_id(),
            sender_id,
            document_id,
            literal(type),
            literal(at, UTCDateTime()),
            literal(data or {}, JSON()),
        ),
    )
    result = db.session.execute(statement, execution_options={"preserve_rowcount": True})
    return max(int(getattr(result, "rowcount", 0) or 0), 0)


def forget_old_events(now: datetime | None = None, *, batch_size: int = FORGET_BATCH) -> int:
    """Delete the events older than EVENT_RETENTION, batch by batch, each batch committed.

    A cursor pointing before them stays valid: its next page starts at the oldest event left."""
    before = (now or utcnow()) - EVENT_RETENTION
    forgotten = 0
    while True:
        oldest = (
            select(SenderEvent.id)
            .where(SenderEvent.occurred_at < before)
            .order_by(SenderEvent.occurred_at)
            .limit(batch_size)
        )
        statement: Delete = delete(SenderEvent).where(SenderEvent.id.in_(oldest))
        result = db.session.execute(statement, execution_options={"preserve_rowcount": True})
        transactions.commit()
        deleted = max(int(getattr(result, "rowcount", 0) or 0), 0)
        forgotten += deleted
        if deleted < batch_size:
            break
    if forgotten:
        log.info("events: %d older than %d days deleted", forgotten, EVENT_RETENTION.days)
    return forgotten


def _random_public_id() -> ColumnElement[str]:
    """new_public_id(), computed by the database for each row of an INSERT ... SELECT."""
    if db.engine.dialect.name == "postgresql":
        return literal_column("'evt_' || replace(gen_random_uuid()::text, '-', '')", String)
    return literal_column("'evt_' || lower(hex(randomblob(16)))", String)


def _check_type(type: str) -> None:
    if type not in EVENT_TYPES:
        raise ValueError(f"unknown event type {type!r}")
