"""Events go into chains that writers append to side by side: each event is the next of its
chain, sealed to the one before it, and a writer waits only when every chain is taken."""

from __future__ import annotations

import threading
from collections.abc import Iterator

import pytest
from flask import Flask
from sqlalchemy import func, select, text
from sqlalchemy.exc import OperationalError
from sqlalchemy.orm import Session

from ebox.audit.hashing import GENESIS_HASH, event_hash
from ebox.audit.models import AuditChain, AuditEvent
from ebox.audit.services import CHAINS, record_event, verify_chain
from ebox.extensions import db
from tests.audit.audit_helpers import ACTOR, events_of, used_chains, write_events


def test_each_event_is_the_next_of_its_chain_and_sealed_to_the_one_before(app: Flask) -> None:
    write_events(12)

    for chain in used_chains():
        events = events_of(chain)
        assert [event.seq for event in events] == list(range(1, len(events) + 1))
        previous = GENESIS_HASH
        for event in events:
            assert event.previous_hash == previous
            assert event.hash == event_hash(_fields(event))
            previous = event.hash
        head = db.session.get(AuditChain, chain)
        assert head is not None and (head.head_seq, head.head_hash) == (events[-1].seq, previous)
    assert verify_chain() == []


def test_the_events_of_one_transaction_go_to_one_chain(app: Flask) -> None:
    write_events(5, each_committed=False)

    [chain] = used_chains()
    assert [event.seq for event in events_of(chain)] == [1, 2, 3, 4, 5]
    assert verify_chain() == []


def test_a_fresh_log_opens_its_chains_at_the_first_event(app: Flask) -> None:
    assert db.session.scalars(select(AuditChain)).first() is None  # emptied between tests

    write_events(1)

    chains = db.session.scalars(select(AuditChain).order_by(AuditChain.id)).all()
    assert [chain.id for chain in chains] == list(range(CHAINS))


def test_sqlite_writes_every_event_to_chain_0(app: Flask) -> None:
    if db.engine.dialect.name != "sqlite":
        pytest.skip("SQLite's single writer needs one chain")
    write_events(6)
    assert used_chains() == [0]


# PostgreSQL: writers side by side


@pytest.fixture
def other_session(app: Flask) -> Iterator[Session]:
    """A second transaction, as another web worker would hold, on its own connection."""
    with Session(db.engine) as session:
        yield session
        session.rollback()


@pytest.mark.postgres_only
def test_a_writer_does_not_wait_for_a_chain_another_transaction_holds(
    app: Flask, other_session: Session
) -> None:
    write_events(1)  # opens the chains
    held = other_session.execute(
        text("SELECT id FROM audit_chains WHERE id = 0 FOR UPDATE")
    ).scalar_one()
    db.session.execute(text("SET LOCAL lock_timeout = '2s'"))

    record_event(ACTOR, "test.event", "thing", "side by side")
    db.session.commit()

    newest = db.session.scalars(select(AuditEvent).order_by(AuditEvent.id.desc())).first()
    assert newest is not None and newest.chain != held
    other_session.rollback()
    assert verify_chain() == []


@pytest.mark.postgres_only
def test_a_writer_waits_when_every_chain_is_taken_and_never_forks_one(
    app: Flask, other_session: Session
) -> None:
    write_events(1)
    other_session.execute(text("SELECT id FROM audit_chains FOR UPDATE")).all()
    db.session.execute(text("SET LOCAL lock_timeout = '300ms'"))

    with pytest.raises(OperationalError, match="lock timeout"):
        record_event(ACTOR, "test.event", "thing", "every chain taken")
    db.session.rollback()
    other_session.rollback()

    record_event(ACTOR, "test.event", "thing", "after")
    db.session.commit()
    assert verify_chain() == []


@pytest.mark.postgres_only
def test_concurrent_writers_fill_several_chains_and_the_log_verifies(app: Flask) -> None:
    write_events(1)
    writers, events_each = 6, 15
    errors: list[BaseException] = []
    ready = threading.Barrier(writers)

    def write() -> None:
        try:
            with app.app_context():
                ready.wait()
                for number in range(events_each):
                    record_event(ACTOR, "test.event", "thing", number)
                    # Held a moment, as a publication holds it until its commit.
                    db.session.execute(text("SELECT pg_sleep(0.002)"))
                    db.session.commit()
        except BaseException as error:  # reported below, in the test's thread
            errors.append(error)

    threads = [threading.Thread(target=write) for _ in range(writers)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()

    assert errors == []
    assert db.session.scalar(select(func.count(AuditEvent.id))) == 1 + writers * events_each
    assert len(used_chains()) > 1
    assert verify_chain() == []


def _fields(event: AuditEvent) -> dict[str, object]:
    return {
        "occurred_at": event.occurred_at,
        "actor_type": event.actor_type,
        "actor_id": event.actor_id,
        "action": event.action,
        "subject_type": event.subject_type,
        "subject_id": event.subject_id,
        "details": event.details,
        "chain": event.chain,
        "seq": event.seq,
        "previous_hash": event.previous_hash,
    }
