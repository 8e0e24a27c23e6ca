"""Writing and checking the audit log. record_event() is the only way an event is written."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

from sqlalchemy import select, text

from ebox.audit.models import AuditEvent
from ebox.db_types import utcnow
from ebox.extensions import db

GENESIS_HASH = "0" * 64
# Any constant: it names the PostgreSQL advisory lock that serialises writers of the chain.
_CHAIN_LOCK = 0x0EB0A0D1
_CHUNK = 1000


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
    """Append an event to the chain, in the caller's transaction. Flushes, never commits.

    Writers take turns (a transaction-scoped lock on PostgreSQL; SQLite has one writer anyway),
    so call this late in a transaction: the lock is held until commit.
    """
    if db.engine.dialect.name == "postgresql":
        db.session.execute(text("SELECT pg_advisory_xact_lock(:key)"), {"key": _CHAIN_LOCK})
    last = db.session.scalars(select(AuditEvent.hash).order_by(AuditEvent.id.desc()).limit(1))
    event = AuditEvent(
        occurred_at=utcnow(),
        actor_type=actor.type,
        actor_id=actor.id,
        action=action,
        subject_type=subject_type,
        subject_id=str(subject_id),
        details=details or {},
        previous_hash=last.first() or GENESIS_HASH,
    )
    event.hash = event_hash(event)
    db.session.add(event)
    db.session.flush()
    return event


def event_hash(event: AuditEvent) -> str:
    fields = {
        "occurred_at": event.occurred_at.isoformat(timespec="microseconds"),
        "actor_type": event.actor_type,
        "actor_id": event.actor_id,
        "action": event.action,
        "subject_type": event.subject_type,
        "subject_id": event.subject_id,
        "details": event.details,
        "previous_hash": event.previous_hash,
    }
    canonical = json.dumps(fields, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    return hashlib.sha256(canonical.encode()).hexdigest()


def verify_chain() -> list[str]:
    """Every break in the chain, as sentences; empty when the log is intact."""
    problems = []
    previous = GENESIS_HASH
    for event in _all_events():
        if event.previous_hash != previous:
            problems.append(f"event {event.id}: does not follow the event before it")
        if event_hash(event) != event.hash:
            problems.append(f"event {event.id}: its content was changed after it was written")
        previous = event.hash
    return problems


def _all_events() -> Iterator[AuditEvent]:
    last_id = 0
    while True:
        chunk = db.session.scalars(
            select(AuditEvent).where(AuditEvent.id > last_id).order_by(AuditEvent.id).limit(_CHUNK)
        ).all()
        if not chunk:
            return
        yield from chunk
        last_id = chunk[-1].id
        db.session.expunge_all()
