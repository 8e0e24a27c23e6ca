"""Checking the whole log finds every change, removal or reordering of events, whether made
naively or with every hash recomputed, as long as an anchor or a witnessed anchor covers it."""

from __future__ import annotations

import pytest
from flask import Flask
from sqlalchemy import delete, select, update

from ebox.audit.models import AuditAnchor, AuditChain, AuditEvent
from ebox.audit.services import seal_anchor, verify_chain, verify_log
from ebox.db_types import utcnow
from ebox.extensions import db
from tests.audit.audit_helpers import events_of, reseal_anchor, reseal_chain_from, write_events

pytestmark = pytest.mark.usefixtures("anchors_by_hand")


def one_chain_of(count: int) -> int:
    """count events in one chain (one transaction); its number."""
    write_events(count, each_committed=False)
    return db.session.scalars(select(AuditEvent.chain)).first() or 0


def anchor() -> str:
    sealed = seal_anchor()
    db.session.commit()
    return sealed.hash


def test_an_intact_log_verifies_and_says_what_it_checked(app: Flask) -> None:
    chain = one_chain_of(5)
    latest = anchor()
    write_events(3)

    report = verify_log()

    assert report.is_intact and report.problems == []
    assert (report.events, report.anchors, report.unanchored_events) == (8, 1, 3)
    assert report.chains >= 1 and chain in {event.chain for event in events_of(chain)}
    assert report.latest_anchor is not None and report.latest_anchor.hash == latest


def test_an_event_changed_after_it_was_written_is_found(app: Flask) -> None:
    chain = one_chain_of(3)
    second = events_of(chain)[1].id
    db.session.execute(update(AuditEvent).where(AuditEvent.id == second).values(actor_id="9"))
    db.session.commit()

    assert verify_chain() == [f"event {second}: its content was changed after it was written"]


def test_an_event_removed_from_the_middle_of_its_chain_is_found(app: Flask) -> None:
    chain = one_chain_of(4)
    second, third = (event.id for event in events_of(chain)[1:3])
    db.session.execute(delete(AuditEvent).where(AuditEvent.id == second))
    db.session.commit()

    problems = verify_chain()

    assert f"chain {chain}: events 2 to 2 are missing (before event {third})" in problems
    assert f"event {third}: does not follow the event before it" in problems


def test_events_removed_from_the_end_of_a_chain_are_found_by_its_head(app: Flask) -> None:
    chain = one_chain_of(4)
    db.session.execute(delete(AuditEvent).where(AuditEvent.chain == chain, AuditEvent.seq > 2))
    db.session.commit()

    [problem] = verify_chain()
    assert problem.startswith(f"chain {chain}: its head is event 4 of the chain, but its last")


def test_a_chain_cut_short_with_its_head_moved_back_is_found_by_the_anchor(app: Flask) -> None:
    chain = one_chain_of(5)
    anchor()
    third = events_of(chain)[2]
    db.session.execute(delete(AuditEvent).where(AuditEvent.chain == chain, AuditEvent.seq > 3))
    db.session.execute(
        update(AuditChain).where(AuditChain.id == chain).values(head_seq=3, head_hash=third.hash)
    )
    db.session.commit()

    assert verify_chain() == [f"anchor 1: sealed event 5 of chain {chain}, which is missing"]


def test_a_chain_rewritten_with_every_hash_recomputed_is_found_by_the_anchor(app: Flask) -> None:
    chain = one_chain_of(5)
    anchor()
    second = events_of(chain)[1]
    db.session.execute(
        update(AuditEvent).where(AuditEvent.id == second.id).values(details={"number": 99})
    )
    reseal_chain_from(chain, 2)

    assert verify_chain() == [f"anchor 1: event 5 of chain {chain} is not the one it sealed"]


def test_events_swapped_in_their_chain_are_found(app: Flask) -> None:
    chain = one_chain_of(4)
    second, third = (event.id for event in events_of(chain)[1:3])
    for event_id, seq in ((second, -1), (third, 2), (second, 3)):
        db.session.execute(update(AuditEvent).where(AuditEvent.id == event_id).values(seq=seq))
    db.session.commit()

    problems = verify_chain()

    assert f"event {third}: does not follow the event before it" in problems
    assert f"event {third}: its content was changed after it was written" in problems


def test_an_event_moved_to_the_end_of_another_chain_is_found(app: Flask) -> None:
    chain = one_chain_of(3)
    last = events_of(chain)[-1]
    other = (chain + 1) % 16
    head = db.session.get(AuditChain, other)
    assert head is not None
    db.session.execute(
        update(AuditEvent)
        .where(AuditEvent.id == last.id)
        .values(chain=other, seq=head.head_seq + 1, previous_hash=head.head_hash)
    )
    db.session.execute(
        update(AuditChain).where(AuditChain.id == other).values(head_seq=1, head_hash=last.hash)
    )
    db.session.commit()

    assert f"event {last.id}: its content was changed after it was written" in verify_chain()


def test_a_changed_or_removed_anchor_is_found(app: Flask) -> None:
    one_chain_of(2)
    anchor()
    write_events(1)
    anchor()
    db.session.execute(update(AuditAnchor).where(AuditAnchor.id == 2).values(created_at=utcnow()))
    db.session.commit()
    assert verify_chain() == ["anchor 2: its content was changed after it was written"]

    db.session.execute(delete(AuditAnchor).where(AuditAnchor.id == 1))
    db.session.commit()
    problems = verify_chain()
    assert "anchors 1 to 1 are missing" in problems
    assert "anchor 2: does not follow the anchor before it" in problems


def test_anchors_resealed_to_drop_a_chain_or_take_it_back_are_found(app: Flask) -> None:
    chain = one_chain_of(3)
    anchor()
    heads = db.session.get(AuditAnchor, 1).heads  # type: ignore[union-attr]
    write_events(1)
    anchor()
    dropped = {number: head for number, head in heads.items() if number != str(chain)}
    reseal_anchor(2, heads=dropped)
    assert "anchor 2: leaves out chain" in " ".join(verify_chain())

    taken_back = dict(heads, **{str(chain): [1, events_of(chain)[0].hash]})
    reseal_anchor(2, heads=taken_back)
    assert f"anchor 2: chain {chain} went back from event 3 to 1" in verify_chain()


def test_a_chain_removed_with_its_events_is_found_by_the_anchors(app: Flask) -> None:
    chain = one_chain_of(2)
    anchor()
    db.session.execute(delete(AuditEvent).where(AuditEvent.chain == chain))
    db.session.execute(delete(AuditChain).where(AuditChain.id == chain))
    db.session.commit()

    assert verify_chain() == [
        f"anchor 1: sealed chain {chain}, which no longer exists",
        f"anchor 1: sealed event 2 of chain {chain}, which is missing",
    ]


def test_a_witnessed_anchor_shows_a_log_rewritten_whole(app: Flask) -> None:
    one_chain_of(2)
    witnessed = anchor()
    assert verify_log(witnessed_anchors=[witnessed]).is_intact

    # Everything recomputed, the anchor included: only the copy kept outside can tell.
    reseal_anchor(1, created_at=utcnow())
    assert verify_chain() == []
    [problem] = verify_log(witnessed_anchors=[witnessed]).problems
    assert problem.startswith(f"the anchor {witnessed} is not in the log")
