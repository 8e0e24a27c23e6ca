"""Checking the whole audit log: every chain, every anchor, and that they agree (decision 0016).

A chain is intact when its events are numbered 1, 2, 3… without a gap, each names the hash of
the one before it, each hash matches its content, and its last event is the head its row names.
The anchors form a chain of their own, checked the same way; every head an anchor sealed must be
the event of that chain at that place, no chain may go back from one anchor to the next, and no
chain an anchor sealed may disappear. Together: an event an anchor covers cannot be changed,
removed or reordered without the check saying so.

Everything is read in chunks, in the order of the (chain, seq) index, so memory does not grow
with the log.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from sqlalchemy import select, tuple_

from ebox.audit.hashing import GENESIS_HASH, anchor_hash, event_hash, legacy_event_hash
from ebox.audit.models import AuditAnchor, AuditChain, AuditEvent
from ebox.extensions import db

_CHUNK = 1000
# Beyond this many, problems are counted rather than listed.
MAX_PROBLEMS = 100


@dataclass(frozen=True)
class _Chain:
    id: int
    head_seq: int
    head_hash: str
    legacy_events: int


@dataclass(frozen=True)
class AnchorSeen:
    id: int
    created_at: datetime
    hash: str


@dataclass
class LogReport:
    """What a check of the whole log found: problems as sentences, and what was checked."""

    problems: list[str] = field(default_factory=list)
    more_problems: int = 0
    chains: int = 0
    events: int = 0
    anchors: int = 0
    latest_anchor: AnchorSeen | None = None
    # Events after the latest anchor's heads: sealed to their chains, not yet anchored.
    unanchored_events: int = 0

    @property
    def is_intact(self) -> bool:
        return not self.problems

    def add(self, problem: str) -> None:
        if len(self.problems) < MAX_PROBLEMS:
            self.problems.append(problem)
        else:
            self.more_problems += 1

    def all_problems(self) -> list[str]:
        more = [f"… and {self.more_problems} more problems"] if self.more_problems else []
        return self.problems + more


def verify_chain() -> list[str]:
    """Every break in the log, as sentences; empty when the log is intact."""
    return verify_log().all_problems()


def verify_log(witnessed_anchors: Sequence[str] = ()) -> LogReport:
    """Check every chain and anchor. witnessed_anchors: anchor hashes kept outside the database
    (from the log, or an earlier check), each of which must still be an intact anchor of it.

    Empties the session as it goes (the log may be far larger than memory).
    """
    report = LogReport()
    chains = {
        row.id: _Chain(row.id, row.head_seq, row.head_hash, row.legacy_events)
        for row in db.session.execute(
            select(
                AuditChain.id, AuditChain.head_seq, AuditChain.head_hash, AuditChain.legacy_events
            )
        )
    }
    report.chains = len(chains)
    for chain in sorted(chains.values(), key=lambda row: row.id):
        _check_chain(chain, report)
    _check_events_outside_chains(chains, report)
    anchored = _check_anchors(chains, report)
    _check_witnesses(witnessed_anchors, report)
    report.unanchored_events = sum(
        max(chain.head_seq - anchored.get(chain.id, 0), 0) for chain in chains.values()
    )
    db.session.expunge_all()
    return report


# --- chains -----------------------------------------------------------------------------


def _check_chain(chain: _Chain, report: LogReport) -> None:
    previous_hash, expected_seq, last_seq = GENESIS_HASH, 1, 0
    for event in _events_of(chain.id):
        if event.seq != expected_seq:
            report.add(
                f"chain {chain.id}: events {expected_seq} to {event.seq - 1} are missing "
                f"(before event {event.id})"
            )
        if event.previous_hash != previous_hash:
            report.add(f"event {event.id}: does not follow the event before it")
        sealed = legacy_event_hash if event.seq <= chain.legacy_events else event_hash
        if sealed(event._mapping) != event.hash:
            report.add(f"event {event.id}: its content was changed after it was written")
        previous_hash, expected_seq, last_seq = event.hash, event.seq + 1, event.seq
        report.events += 1
    if (last_seq, previous_hash) != (chain.head_seq, chain.head_hash):
        report.add(
            f"chain {chain.id}: its head is event {chain.head_seq} of the chain, but its last "
            f"event is {last_seq}: events were removed from its end, or its head was changed"
        )


def _events_of(chain_id: int) -> Iterator[Any]:
    columns = AuditEvent.__table__.c
    table = AuditEvent.__table__
    last_seq = 0
    while True:
        chunk = db.session.execute(
            select(table)
            .where(columns.chain == chain_id, columns.seq > last_seq)
            .order_by(columns.seq)
            .limit(_CHUNK)
        ).all()
        if not chunk:
            return
        yield from chunk
        last_seq = chunk[-1].seq


def _check_events_outside_chains(chains: dict[int, _Chain], report: LogReport) -> None:
    strays = db.session.scalars(
        select(AuditEvent.id)
        .where(AuditEvent.chain.not_in(list(chains)))
        .order_by(AuditEvent.id)
        .limit(MAX_PROBLEMS)
    )
    for event_id in strays:
        report.add(f"event {event_id}: belongs to no chain of the log")


# --- anchors ----------------------------------------------------------------------------


def _check_anchors(chains: dict[int, _Chain], report: LogReport) -> dict[int, int]:
    """Check the anchors' own chain and what each sealed; the last anchored seq of each chain."""
    previous_hash, expected_id = GENESIS_HASH, 1
    anchored: dict[int, int] = {}
    for chunk in _anchor_chunks():
        sealed: dict[tuple[int, int, str], int] = {}
        for anchor in chunk:
            if anchor.id != expected_id:
                report.add(f"anchors {expected_id} to {anchor.id - 1} are missing")
            if anchor.previous_hash != previous_hash:
                report.add(f"anchor {anchor.id}: does not follow the anchor before it")
            if anchor_hash(anchor._mapping) != anchor.hash:
                report.add(f"anchor {anchor.id}: its content was changed after it was written")
            _check_heads(anchor, chains, anchored, sealed, report)
            previous_hash, expected_id = anchor.hash, anchor.id + 1
            report.anchors += 1
            report.latest_anchor = AnchorSeen(anchor.id, anchor.created_at, anchor.hash)
        _check_sealed_events(sealed, report)
    return anchored


def _anchor_chunks() -> Iterator[list[Any]]:
    columns = AuditAnchor.__table__.c
    table = AuditAnchor.__table__
    last_id = 0
    while True:
        chunk = db.session.execute(
            select(table).where(columns.id > last_id).order_by(columns.id).limit(_CHUNK)
        ).all()
        if not chunk:
            return
        yield list(chunk)
        last_id = chunk[-1].id


def _check_heads(
    anchor: Any,
    chains: dict[int, _Chain],
    anchored: dict[int, int],
    sealed: dict[tuple[int, int, str], int],
    report: LogReport,
) -> None:
    """What one anchor sealed: chains that still exist, never going back, none left out."""
    heads = {int(chain): (int(seq), str(head)) for chain, (seq, head) in anchor.heads.items()}
    for chain_id in anchored.keys() - heads.keys():
        report.add(f"anchor {anchor.id}: leaves out chain {chain_id}, which anchors before sealed")
    for chain_id, (seq, head) in sorted(heads.items()):
        if chain_id not in chains:
            report.add(f"anchor {anchor.id}: sealed chain {chain_id}, which no longer exists")
        if seq < anchored.get(chain_id, 0):
            report.add(
                f"anchor {anchor.id}: chain {chain_id} went back from event "
                f"{anchored[chain_id]} to {seq}"
            )
        anchored[chain_id] = max(seq, anchored.get(chain_id, 0))
        if seq == 0:
            if head != GENESIS_HASH:
                report.add(f"anchor {anchor.id}: sealed chain {chain_id} empty with a hash")
        else:
            sealed.setdefault((chain_id, seq, head), anchor.id)


def _check_sealed_events(sealed: dict[tuple[int, int, str], int], report: LogReport) -> None:
    """Each event the anchors sealed is still there, at its place, with the hash they sealed."""
    claims = list(sealed.items())
    for start in range(0, len(claims), _CHUNK):
        batch = claims[start : start + _CHUNK]
        places = {(chain_id, seq) for (chain_id, seq, _head), _anchor in batch}
        found = {
            (row.chain, row.seq): row.hash
            for row in db.session.execute(
                select(AuditEvent.chain, AuditEvent.seq, AuditEvent.hash).where(
                    tuple_(AuditEvent.chain, AuditEvent.seq).in_(places)
                )
            )
        }
        for (chain_id, seq, head), anchor_id in batch:
            if (chain_id, seq) not in found:
                report.add(
                    f"anchor {anchor_id}: sealed event {seq} of chain {chain_id}, which is missing"
                )
            elif found[chain_id, seq] != head:
                report.add(
                    f"anchor {anchor_id}: event {seq} of chain {chain_id} is not the one it sealed"
                )


def _check_witnesses(witnessed: Sequence[str], report: LogReport) -> None:
    if not witnessed:
        return
    present = set(
        db.session.scalars(select(AuditAnchor.hash).where(AuditAnchor.hash.in_(witnessed)))
    )
    for anchor in witnessed:
        if anchor not in present:
            report.add(
                f"the anchor {anchor} is not in the log: the log was rewritten since it was "
                "sealed, or the hash is mistyped"
            )
