"""Writing the audit log. record_event() is the only way an event is written.

The log is a few hash chains side by side (ebox.audit.models, decision 0016). A writer appends to
a chain no other transaction holds: on PostgreSQL it locks a free chain's row (FOR UPDATE SKIP
LOCKED) and keeps it until its commit, so writers wait for each other only when every chain is
taken at once. SQLite has a single writer, so everything goes to chain 0 there.

Every ANCHOR_EVERY, the first writer to notice seals the heads of all chains into the next anchor,
in the transaction of its event; the anchor's hash is logged once committed, a copy outside the
database.
"""

from __future__ import annotations

import logging
import secrets
import time
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, cast

from flask import current_app
from sqlalchemy import Table, bindparam, func, insert, select, update
from sqlalchemy import event as sqlalchemy_event
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import Session, make_transient_to_detached

from ebox.audit.hashing import GENESIS_HASH, anchor_hash, event_hash
from ebox.audit.models import AuditAnchor, AuditChain, AuditEvent
from ebox.audit.verification import verify_chain, verify_log
from ebox.db_types import utcnow
from ebox.extensions import db

__all__ = [
    "ANCHOR_EVERY",
    "CHAINS",
    "GENESIS_HASH",
    "OPERATOR",
    "SYSTEM",
    "Actor",
    "record_event",
    "seal_anchor",
    "verify_chain",
    "verify_log",
]

log = logging.getLogger(__name__)

# Chains a fresh log is opened with: how many transactions may append at the same moment.
CHAINS = 16
ANCHOR_EVERY = timedelta(seconds=10)
# Any constant: it names the PostgreSQL advisory lock that lets one writer at a time anchor.
_ANCHOR_LOCK = 0x0EB0A0D2
# session.info keys: the chain this transaction appends to, the anchors it sealed.
_HELD_CHAIN = "ebox.audit.chain"
_SEALED = "ebox.audit.sealed"


@dataclass(frozen=True)
class Actor:
    type: str  # staff | operator | sender | citizen | system
    id: str


OPERATOR = Actor("operator", "cli")
SYSTEM = Actor("system", "ebox")


def record_event(
    actor: Actor,
    action: str,
    subject_type: str,
    subject_id: object,
    details: dict[str, Any] | None = None,
) -> AuditEvent:
    """Append an event to a chain, in the caller's transaction. Never commits.

    The chain stays locked until the commit (on PostgreSQL), but only that chain: call this
    late in a transaction all the same, so that a chain is not held for long.
    """
    chain = _take_chain()
    values: dict[str, Any] = {
        "occurred_at": utcnow(),
        "actor_type": actor.type,
        "actor_id": actor.id,
        "action": action,
        "subject_type": subject_type,
        "subject_id": str(subject_id),
        "details": details or {},
        "chain": chain.id,
        "seq": chain.head_seq + 1,
        "previous_hash": chain.head_hash,
    }
    values["hash"] = event_hash(values)
    event = _append(values)
    _anchor_if_due(event.occurred_at)
    return event


def seal_anchor(now: datetime | None = None) -> AuditAnchor:
    """Seal the heads of every chain into a new anchor, in the caller's transaction. Flushes.

    Waits for a writer that is anchoring at the same moment; record_event() anchors by itself
    when one is due, so call this only to seal the log's current state on purpose.
    """
    if _is_postgresql():
        db.session.execute(select(func.pg_advisory_xact_lock(_ANCHOR_LOCK)))
    return _write_anchor(now or utcnow(), _latest_anchor())


def _is_postgresql() -> bool:
    return db.engine.dialect.name == "postgresql"


# --- writing --------------------------------------------------------------------------
# Every publication writes an event: its statements are built once, and run on the Core
# connection of the session's transaction (half the cost of going through the ORM session).

_events = cast(Table, AuditEvent.__table__)
_chains = cast(Table, AuditChain.__table__)
_HEAD = (_chains.c.id, _chains.c.head_seq, _chains.c.head_hash)
# A chain no other transaction holds; the one this transaction holds (the hint) first. The
# lock, not the hint, makes it safe: a row locked elsewhere is skipped, and a locked row is
# read as it is now (never an older version).
_FREE_CHAIN = (
    select(*_HEAD)
    .order_by((_chains.c.id == bindparam("hint")).desc(), func.random())
    .limit(1)
    .with_for_update(skip_locked=True)
)
_CHAIN = select(*_HEAD).where(_chains.c.id == bindparam("chain_id")).with_for_update()
_MOVE_HEAD = (
    update(_chains)
    .where(_chains.c.id == bindparam("head_of"))
    .values(head_seq=bindparam("new_seq"), head_hash=bindparam("new_hash"))
)
_INSERT_EVENT = insert(_events).returning(_events.c.id)
# PostgreSQL moves the head in the same statement: one round trip per event.
_INSERT_EVENT_MOVING_HEAD = _INSERT_EVENT.add_cte(_MOVE_HEAD.cte("moved_head"))


@dataclass(frozen=True)
class _Head:
    id: int
    head_seq: int
    head_hash: str


def _append(values: dict[str, Any]) -> AuditEvent:
    """Insert the event and make it its chain's head; the event as if loaded, in the session."""
    head = {"head_of": values["chain"], "new_seq": values["seq"], "new_hash": values["hash"]}
    connection = db.session.connection()
    if _is_postgresql():
        event_id = connection.execute(_INSERT_EVENT_MOVING_HEAD, values | head).scalar_one()
    else:
        connection.execute(_MOVE_HEAD, head)
        event_id = connection.execute(_INSERT_EVENT, values).scalar_one()
    event = AuditEvent(id=event_id, **values)
    make_transient_to_detached(event)
    db.session.add(event)
    return event


def _take_chain() -> _Head:
    """A chain this transaction holds, with its current head."""
    chain = _free_chain() if _is_postgresql() else _chain(0)
    if chain is None:
        chain = _wait_for_a_chain()
    db.session.info[_HELD_CHAIN] = chain.id
    return chain


def _free_chain() -> _Head | None:
    hint = db.session.info.get(_HELD_CHAIN, -1)
    row = db.session.connection().execute(_FREE_CHAIN, {"hint": hint}).first()
    return None if row is None else _Head(*row)


def _wait_for_a_chain() -> _Head:
    """Every chain is taken (or none exists yet): wait for one, opening the chains if needed."""
    ids = list(db.session.scalars(select(_chains.c.id)))
    if not ids:
        _open_chains()
        ids = list(range(CHAINS))
    chain = _chain(secrets.choice(ids))
    assert chain is not None  # chains are never removed
    return chain


def _chain(chain_id: int) -> _Head | None:
    row = db.session.execute(_CHAIN, {"chain_id": chain_id}).first()
    if row is None and not _is_postgresql():
        _open_chains()
        row = db.session.execute(_CHAIN, {"chain_id": chain_id}).first()
    return None if row is None else _Head(*row)


def _open_chains() -> None:
    """Create the chains of an empty log; a concurrent writer may just have done so."""
    rows = [
        {"id": number, "head_seq": 0, "head_hash": GENESIS_HASH, "legacy_events": 0}
        for number in range(CHAINS)
    ]
    dialect_insert = postgresql.insert if _is_postgresql() else sqlite.insert
    db.session.execute(dialect_insert(_chains).values(rows).on_conflict_do_nothing())


# --- anchors ----------------------------------------------------------------------------


def _anchor_if_due(now: datetime) -> None:
    """Seal an anchor if the latest is ANCHOR_EVERY old, looking at most that often per process.

    A writer that finds another anchoring goes on without waiting: the other one seals.
    """
    state = anchor_clock()
    if time.monotonic() < state.next_look:
        return
    state.next_look = time.monotonic() + ANCHOR_EVERY.total_seconds()
    if _is_postgresql() and not db.session.scalar(
        select(func.pg_try_advisory_xact_lock(_ANCHOR_LOCK))
    ):
        return
    latest = _latest_anchor()
    if latest is not None and now - latest.created_at < ANCHOR_EVERY:
        state.next_look -= (now - latest.created_at).total_seconds()
        return
    _write_anchor(now, latest)


@dataclass
class AnchorClock:
    """When the writers of this process next look whether an anchor is due (one per app)."""

    next_look: float = 0.0  # time.monotonic() before which none looks


def anchor_clock() -> AnchorClock:
    clock: AnchorClock = current_app.extensions.setdefault("ebox.audit", AnchorClock())
    return clock


def _latest_anchor() -> AuditAnchor | None:
    return db.session.scalars(select(AuditAnchor).order_by(AuditAnchor.id.desc()).limit(1)).first()


def _write_anchor(now: datetime, latest: AuditAnchor | None) -> AuditAnchor:
    chains = db.session.execute(
        select(AuditChain.id, AuditChain.head_seq, AuditChain.head_hash).order_by(AuditChain.id)
    )
    anchor = AuditAnchor(
        id=latest.id + 1 if latest else 1,
        created_at=now,
        heads={str(row.id): [row.head_seq, row.head_hash] for row in chains},
        previous_hash=latest.hash if latest else GENESIS_HASH,
    )
    anchor.hash = anchor_hash(
        {
            "id": anchor.id,
            "created_at": anchor.created_at,
            "heads": anchor.heads,
            "previous_hash": anchor.previous_hash,
        }
    )
    db.session.add(anchor)
    db.session.flush()
    db.session.info.setdefault(_SEALED, []).append((anchor.id, len(anchor.heads), anchor.hash))
    return anchor


@sqlalchemy_event.listens_for(Session, "after_commit")
def _log_sealed_anchors(session: Session) -> None:
    """Once committed, each anchor's hash goes to the log: a witness the database cannot edit."""
    for number, chains, sealed_hash in session.info.pop(_SEALED, ()):
        log.info("audit anchor %d sealed %d chains: %s", number, chains, sealed_hash)
    session.info.pop(_HELD_CHAIN, None)


@sqlalchemy_event.listens_for(Session, "after_soft_rollback")
def _forget_transaction(session: Session, previous_transaction: Any) -> None:
    if previous_transaction.parent is None:
        session.info.pop(_SEALED, None)
        session.info.pop(_HELD_CHAIN, None)
