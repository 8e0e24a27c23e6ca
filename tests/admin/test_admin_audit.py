"""The audit page checks the whole log, chains and anchors, and gives the latest anchor's hash to
keep elsewhere."""

from __future__ import annotations

import math
from collections.abc import Iterator

import pytest
from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy import delete, select

from ebox.audit.models import AuditEvent
from ebox.audit.services import CHAINS, anchor_clock, seal_anchor
from ebox.extensions import db
from tests.admin.admin_helpers import log_in_staff


@pytest.fixture
def anchors_by_hand(app: Flask) -> Iterator[None]:
    clock = anchor_clock()
    saved, clock.next_look = clock.next_look, math.inf
    yield
    clock.next_look = saved


def test_the_check_counts_events_chains_and_anchors_and_shows_the_latest_anchor(
    client: FlaskClient, anchors_by_hand: None
) -> None:
    log_in_staff(client, "support")  # writes staff.added
    sealed_hash = seal_anchor().hash
    db.session.commit()

    page = client.get("/admin/audit?verify=1").get_data(as_text=True)

    assert "The chain is intact" in page
    assert f"1 events in {CHAINS} chains, 1 anchors; 0 events written since" in page
    assert "The latest anchor, number 1, was sealed on" in page
    assert sealed_hash in page


def test_an_anchored_event_removed_is_reported_on_the_page(
    client: FlaskClient, anchors_by_hand: None
) -> None:
    log_in_staff(client, "admin")
    seal_anchor()
    db.session.commit()
    event = db.session.scalars(select(AuditEvent)).one()
    chain, seq = event.chain, event.seq
    db.session.execute(delete(AuditEvent))
    db.session.commit()

    page = client.get("/admin/audit?verify=1").get_data(as_text=True)

    assert "The chain is broken" in page
    assert f"anchor 1: sealed event {seq} of chain {chain}, which is missing" in page
