"""Pulling events from a cursor: in order, nothing missed, nothing twice, even when transactions
commit in another order than they wrote; and kept EVENT_RETENTION."""

from __future__ import annotations

from datetime import timedelta

import pytest
from flask import Flask
from sqlalchemy import Connection, update

from ebox.db_types import utcnow
from ebox.events.models import EVENT_RETENTION, MESSAGE_READ, SenderEvent, new_public_id
from ebox.events.queries import InvalidCursor, Position, encode_cursor, events_after
from ebox.events.services import EVENTS, forget_old_events
from ebox.extensions import db
from ebox.mailbox.models import Document
from tests.events.events_helpers import all_events, settled
from tests.factories import create_citizen, create_document, create_message_type


def _insert_read_event(connection: Connection, document: Document) -> int:
    return int(
        connection.execute(
            EVENTS.insert()
            .values(
                public_id=new_public_id(),
                sender_id=document.sender_id,
                document_id=document.id,
                type=MESSAGE_READ,
                occurred_at=utcnow(),
                data={},
            )
            .returning(EVENTS.c.id)
        ).scalar_one()
    )


@pytest.mark.postgres_only
def test_a_transaction_that_writes_first_and_commits_last_is_not_skipped(app: Flask) -> None:
    document = create_document(create_citizen())
    settled()
    page = events_after(document.sender_id, None, 100)
    assert len(page.events) == 1  # the publication
    cursor = page.next_cursor

    with db.engine.connect() as early, db.engine.connect() as late:
        early_transaction = early.begin()
        early_id = _insert_read_event(early, document)
        with late.begin():
            late_id = _insert_read_event(late, document)
        assert early_id < late_id  # a cursor on ids alone would pass over early_id for good

        # The late one committed, but the early one is still running: it must wait too.
        between = events_after(document.sender_id, cursor, 100)
        assert between.events == []
        assert between.next_cursor == cursor
        early_transaction.commit()

    settled()
    after = events_after(document.sender_id, cursor, 100)
    served = [event.position.id for event in after.events]
    assert served == [early_id, late_id]
    assert events_after(document.sender_id, after.next_cursor, 100).events == []


def test_pages_serve_every_event_once_in_order(app: Flask) -> None:
    citizen = create_citizen()
    message_type = create_message_type()
    other = create_document(citizen)  # another sender's: never served to this one
    for _ in range(23):
        create_document(citizen, message_type=message_type)
    settled()
    served, cursor, pages = [], None, 0
    while True:
        page = events_after(message_type.sender_id, cursor, 5)
        if not page.events:
            assert page.next_cursor == cursor  # an empty page keeps the cursor to poll with
            break
        served += [event.position.id for event in page.events]
        cursor, pages = page.next_cursor, pages + 1
    assert pages == 5
    stored = db.session.scalars(
        db.select(SenderEvent.id)
        .where(SenderEvent.sender_id == message_type.sender_id)
        .order_by(SenderEvent.xid, SenderEvent.id)
    ).all()
    assert served == list(stored) and len(set(served)) == 23
    assert other.sender_id != message_type.sender_id


@pytest.mark.parametrize(
    "cursor",
    [
        "",
        "nonsense",
        "c1.",
        "c1.!!!",
        "c1." + "A" * 80,
        "c1.LTEuMg",
        encode_cursor(Position(1, 2))[:-1] + "*",
    ],
)
def test_a_cursor_not_given_out_is_refused(app: Flask, cursor: str) -> None:
    with pytest.raises(InvalidCursor):
        events_after(1, cursor, 10)


def test_events_older_than_the_retention_go_and_an_old_cursor_still_works(app: Flask) -> None:
    message_type = create_message_type()
    citizen = create_citizen()
    old = [create_document(citizen, message_type=message_type) for _ in range(3)]
    settled()
    cursor_before = events_after(message_type.sender_id, None, 1).next_cursor
    db.session.execute(
        update(SenderEvent).values(occurred_at=utcnow() - EVENT_RETENTION - timedelta(minutes=1))
    )
    db.session.commit()
    recent = create_document(citizen, message_type=message_type)

    assert forget_old_events(batch_size=2) == 3

    events = all_events(message_type.sender_id)
    assert [event.message_id for event in events] == [recent.id]
    resumed = events_after(message_type.sender_id, cursor_before, 10)
    assert [event.message_id for event in resumed.events] == [recent.id]
    assert old[0].id not in {event.message_id for event in resumed.events}
