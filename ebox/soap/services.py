"""Writes of the SOAP layer: the replay guard's record of signed requests. Flush, never commit."""

from __future__ import annotations

import functools
from datetime import datetime
from typing import Any

from sqlalchemy import bindparam, delete
from sqlalchemy.dialects import postgresql, sqlite

from ebox.extensions import db
from ebox.soap.models import SeenRequest


def remember_request(key: str, *, expires_at: datetime) -> bool:
    """Record a signed request's replay key in the current transaction; False if it is there.

    One INSERT ... ON CONFLICT DO NOTHING decides, never a read before the write. When another
    transaction holds the same key uncommitted (a replay sent while the original is still being
    answered), PostgreSQL makes this INSERT wait for it: if it commits, the key is there and
    this is a replay; if it rolls back, this request is the first. A row past expires_at still
    counts: its request can no longer pass the Timestamp check anyway, and the purge deletes it.
    """
    # Every signed request runs this: the statement is built once, and runs on the Core
    # connection of the session's transaction.
    statement = _insert_key(db.session.get_bind().dialect.name)
    values = {"key": key, "expires_at": expires_at}
    return db.session.connection().execute(statement, values).first() is not None


@functools.cache
def _insert_key(dialect_name: str) -> Any:
    dialect = postgresql if dialect_name == "postgresql" else sqlite
    return (
        dialect.insert(SeenRequest)
        .values(key=bindparam("key"), expires_at=bindparam("expires_at"))
        .on_conflict_do_nothing(index_elements=[SeenRequest.key])
        .returning(SeenRequest.key)
    )


def forget_expired_requests(now: datetime) -> int:
    """Delete the keys of requests that could no longer be accepted anyway. Returns how many."""
    result = db.session.execute(delete(SeenRequest).where(SeenRequest.expires_at < now))
    return int(getattr(result, "rowcount", 0) or 0)
