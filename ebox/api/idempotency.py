"""Idempotency-Keys of publications: a request sent again (a timeout, a crash between sending and
reading the answer) gets the first one's message, never a second message. Flush, never commit.

The key is recorded with one INSERT ... ON CONFLICT DO NOTHING in the publication's transaction,
before the publication: on PostgreSQL a concurrent twin's INSERT waits for that transaction, and
then either finds its row (it committed: the twin answers with its message) or inserts its own
(it rolled back, a refusal: the twin publishes). A refused publication leaves no key behind.
"""

from __future__ import annotations

import functools
import uuid
from datetime import datetime, timedelta
from typing import Any, cast

from sqlalchemy import Table, bindparam, delete, select, tuple_, update
from sqlalchemy.dialects import postgresql, sqlite

from ebox.extensions import db

from .models import IdempotencyKey

KEPT_FOR = timedelta(hours=24)


def claim_key(
    *, sender_id: int, key: str, fingerprint: str, now: datetime
) -> IdempotencyKey | None:
    """Record the key for this request; None if it is new, else the earlier request's record."""
    values = {"sender_id": sender_id, "key": key, "fingerprint": fingerprint, "created_at": now}
    statement = _insert_key(db.session.get_bind().dialect.name)
    if db.session.connection().execute(statement, values).first() is not None:
        return None
    earlier = db.session.scalar(
        select(IdempotencyKey)
        .where(IdempotencyKey.sender_id == sender_id, IdempotencyKey.key == key)
        .execution_options(populate_existing=True)
    )
    if earlier is None:  # the conflicting row was committed, so it is visible now
        raise RuntimeError("an Idempotency-Key conflicted with a row that cannot be found")
    return earlier


@functools.cache
def _insert_key(dialect_name: str) -> Any:
    dialect = postgresql if dialect_name == "postgresql" else sqlite
    table = IdempotencyKey.__table__
    return (
        dialect.insert(table)
        .values(
            sender_id=bindparam("sender_id"),
            key=bindparam("key"),
            fingerprint=bindparam("fingerprint"),
            created_at=bindparam("created_at"),
        )
        .on_conflict_do_nothing(index_elements=["sender_id", "key"])
        .returning(table.c.key)
    )


def attach_document(*, sender_id: int, key: str, document_id: uuid.UUID) -> None:
    """The message the key's request published (or found again)."""
    # The Core connection and a statement built once: the ORM's UPDATE (its evaluation of the
    # session's objects, the statement compiled anew) cost more than the round trip itself.
    values = {"the_sender_id": sender_id, "the_key": key, "the_document_id": document_id}
    db.session.connection().execute(_ATTACH_DOCUMENT, values)


_keys = cast(Table, IdempotencyKey.__table__)
# Parameters named apart from the columns: SQLAlchemy keeps the columns' names for itself.
_ATTACH_DOCUMENT = (
    update(_keys)
    .where(_keys.c.sender_id == bindparam("the_sender_id"), _keys.c.key == bindparam("the_key"))
    .values(document_id=bindparam("the_document_id"))
)


def forget_old_keys(now: datetime, *, batch_size: int) -> int:
    """Delete up to batch_size keys older than a day. Returns how many."""
    oldest = (
        select(IdempotencyKey.sender_id, IdempotencyKey.key)
        .where(IdempotencyKey.created_at < now - KEPT_FOR)
        .order_by(IdempotencyKey.created_at)
        .limit(batch_size)
    )
    rows = [tuple(row) for row in db.session.execute(oldest)]
    if not rows:
        return 0
    db.session.execute(
        delete(IdempotencyKey).where(tuple_(IdempotencyKey.sender_id, IdempotencyKey.key).in_(rows))
    )
    return len(rows)
