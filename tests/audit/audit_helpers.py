"""Writing audit events the way the services do, and tampering with them the way someone with
write access to the database could."""

from __future__ import annotations

from typing import Any

from sqlalchemy import select, update

from ebox.audit.hashing import anchor_hash, event_hash
from ebox.audit.models import AuditAnchor, AuditChain, AuditEvent
from ebox.audit.services import Actor, record_event
from ebox.extensions import db

ACTOR = Actor("staff", "7")


def write_events(count: int, *, each_committed: bool = True) -> None:
    for number in range(count):
        record_event(ACTOR, "test.event", "thing", number, {"number": number})
        if each_committed:
            db.session.commit()
    db.session.commit()


def events_of(chain: int) -> list[AuditEvent]:
    db.session.expire_all()
    return list(
        db.session.scalars(
            select(AuditEvent).where(AuditEvent.chain == chain).order_by(AuditEvent.seq)
        )
    )


def used_chains() -> list[int]:
    db.session.expire_all()
    return sorted(set(db.session.scalars(select(AuditEvent.chain))))


def reseal_chain_from(chain: int, seq: int) -> None:
    """Recompute the hashes of a chain from seq on and move its head: what an attacker who
    knows the rule does after changing an event, so that the chain alone looks intact."""
    previous = None
    for event in events_of(chain):
        if event.seq < seq:
            previous = event.hash
            continue
        if previous is not None:
            event.previous_hash = previous
        event.hash = event_hash(_fields(event))
        previous = event.hash
        db.session.flush()
    last = events_of(chain)[-1]
    db.session.execute(
        update(AuditChain)
        .where(AuditChain.id == chain)
        .values(head_seq=last.seq, head_hash=last.hash)
    )
    db.session.commit()


def reseal_anchor(anchor_id: int, **changes: Any) -> None:
    """Change an anchor and recompute its hash (the anchors after it are left as they were)."""
    anchor = db.session.get(AuditAnchor, anchor_id)
    assert anchor is not None
    for name, value in changes.items():
        setattr(anchor, name, value)
    anchor.hash = anchor_hash(
        {
            "id": anchor.id,
            "created_at": anchor.created_at,
            "heads": anchor.heads,
            "previous_hash": anchor.previous_hash,
        }
    )
    db.session.commit()


def _fields(event: AuditEvent) -> dict[str, Any]:
    return {
        name: getattr(event, name)
        for name in (
            "occurred_at",
            "actor_type",
            "actor_id",
            "action",
            "subject_type",
            "subject_id",
            "details",
            "chain",
            "seq",
            "previous_hash",
        )
    }
