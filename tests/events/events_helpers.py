"""Reading every event of a sender, as a pull client does.

On PostgreSQL events are served once every older transaction has ended, and transaction ids
are the whole server's: the test databases of others running on the same server hold events
back for as long as their transactions last. settled() waits for that, briefly.
"""

from __future__ import annotations

import time

from sqlalchemy import func, select, text

from ebox.events.models import SenderEvent
from ebox.events.queries import Event, events_after
from ebox.extensions import db


def all_events(sender_id: int, page_size: int = 500) -> list[Event]:
    """Every event served to the sender, page after page from the start."""
    settled()
    events: list[Event] = []
    cursor = None
    while True:
        page = events_after(sender_id, cursor, page_size)
        events += page.events
        if not page.events:
            return events
        cursor = page.next_cursor


def types_of(sender_id: int) -> list[str]:
    return [event.type for event in all_events(sender_id)]


def stored_types() -> list[str]:
    return list(db.session.scalars(select(SenderEvent.type).order_by(SenderEvent.id)))


def settled(timeout: float = 20.0) -> None:
    """Wait until every event written so far can be served (PostgreSQL; at once on SQLite)."""
    if db.engine.dialect.name != "postgresql":
        return
    newest = db.session.scalar(select(func.max(SenderEvent.xid)))
    deadline = time.monotonic() + timeout
    while newest is not None and _oldest_running() <= newest:
        assert time.monotonic() < deadline, "a transaction of this server stays open"
        time.sleep(0.02)


def _oldest_running() -> int:
    return int(
        db.session.scalar(text("SELECT pg_snapshot_xmin(pg_current_snapshot())::text::bigint"))
    )
