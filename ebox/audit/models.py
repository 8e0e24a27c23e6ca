"""Audit events in hash chains that writers append to side by side, and the anchors that seal
every chain's head together (decision 0016)."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import JSON, BigInteger, Index, SmallInteger, String
from sqlalchemy.orm import Mapped, mapped_column

from ebox.db_types import UTCDateTime, utcnow
from ebox.extensions import Model


class AuditEvent(Model):
    """Who did what to what, and when. Never document content, titles or bodies.

    Each event is the seq-th of its chain. `hash` covers its fields (the chain and seq among
    them) and the hash of the event before it in the same chain, so that changing, removing or
    moving an event breaks every hash after it (see ebox.audit.verification).
    """

    __tablename__ = "audit_events"
    __table_args__ = (Index("uq_audit_events_chain_seq", "chain", "seq", unique=True),)

    id: Mapped[int] = mapped_column(primary_key=True)
    occurred_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow, index=True)
    # staff | operator | sender | citizen | system
    actor_type: Mapped[str] = mapped_column(String(20))
    actor_id: Mapped[str] = mapped_column(String(100))
    action: Mapped[str] = mapped_column(String(60), index=True)
    subject_type: Mapped[str] = mapped_column(String(40))
    subject_id: Mapped[str] = mapped_column(String(100))
    details: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    chain: Mapped[int] = mapped_column(SmallInteger)
    seq: Mapped[int] = mapped_column(BigInteger)
    previous_hash: Mapped[str] = mapped_column(String(64))
    hash: Mapped[str] = mapped_column(String(64), unique=True)


class AuditChain(Model):
    """One chain of the log and its head: the seq and hash of its last event (0 and the genesis
    hash while it has none). A writer locks the row while it appends, so that writers of other
    chains never wait for it.

    The events written before the chains existed are the first `legacy_events` of chain 0,
    sealed by the single chain's rule (their hash covers neither chain nor seq).
    """

    __tablename__ = "audit_chains"

    id: Mapped[int] = mapped_column(SmallInteger, primary_key=True, autoincrement=False)
    head_seq: Mapped[int] = mapped_column(BigInteger)
    head_hash: Mapped[str] = mapped_column(String(64))
    legacy_events: Mapped[int] = mapped_column(BigInteger, default=0)


class AuditAnchor(Model):
    """The heads of every chain at one moment, chained to the anchor before it.

    `heads` maps each chain (its number, as text) to [seq, hash] of its head. Once anchored, no
    event up to those heads can be changed, removed or reordered without breaking this anchor or
    its chain; `hash` is logged when the anchor is written, so a copy lives outside the database.
    """

    __tablename__ = "audit_anchors"

    id: Mapped[int] = mapped_column(primary_key=True, autoincrement=False)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)
    heads: Mapped[dict[str, list[Any]]] = mapped_column(JSON)
    previous_hash: Mapped[str] = mapped_column(String(64))
    hash: Mapped[str] = mapped_column(String(64), unique=True)
