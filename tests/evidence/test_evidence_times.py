"""An evidence never states an event later than its own sealing: the platform refuses to seal
one, before signing anything or asking the timestamp authority, and nothing of it is kept."""

from __future__ import annotations

from datetime import timedelta

import pytest
from flask import Flask

from ebox.db_types import utcnow
from ebox.evidence.services import chain_of, platform_seal, record_evidence
from ebox.evidence.xml import CLOCK_SKEW, CONTENT_HANDOVER, EventAfterSealing, build_and_seal
from ebox.extensions import db
from ebox.mailbox.services import confirm_receipt
from tests.evidence.samples import sample_facts
from tests.evidence.tsa_server import unreachable_url
from tests.factories import create_citizen, create_document


def test_an_event_after_its_sealing_is_refused_before_the_timestamp_authority_is_asked(
    app: Flask,
) -> None:
    now = utcnow()
    future = sample_facts(event_time=now + timedelta(hours=1), sealing_time=now)

    # An unreachable authority would raise TimestampError: the refusal comes first.
    with pytest.raises(EventAfterSealing, match=r"EventTime .* is after its sealing time"):
        build_and_seal(future, platform_seal(), tsa_url=unreachable_url())


def test_an_event_stated_after_an_earlier_sealing_time_is_refused(app: Flask) -> None:
    sealed_at = utcnow() - timedelta(days=1)
    facts = sample_facts(event_time=sealed_at + timedelta(minutes=5), sealing_time=sealed_at)

    with pytest.raises(EventAfterSealing):
        build_and_seal(facts, platform_seal())


def test_an_event_a_moment_before_its_sealing_or_within_the_clock_skew_is_sealed(
    app: Flask,
) -> None:
    now = utcnow()
    # An opening: read_at taken microseconds before the seal.
    build_and_seal(
        sample_facts(event_time=now, sealing_time=now + timedelta(microseconds=3)), platform_seal()
    )
    # The clock stepped back a little between the event and its sealing.
    past = now - timedelta(hours=1)
    build_and_seal(sample_facts(event_time=past + CLOCK_SKEW, sealing_time=past), platform_seal())


def test_a_future_event_leaves_the_chain_as_it_was(app: Flask) -> None:
    document = create_document(create_citizen(), is_registered=True)

    with pytest.raises(EventAfterSealing):
        record_evidence(document, CONTENT_HANDOVER, at=utcnow() + timedelta(days=30))
    db.session.rollback()

    assert [item.event for item in chain_of(document.id)] == [
        "SubmissionAcceptance",
        "ContentConsignment",
    ]
    assert confirm_receipt(document=document) is True  # the real opening still comes next
    db.session.commit()
    assert [item.position for item in chain_of(document.id)] == [1, 2, 3]
