"""Anchors: every ten seconds a writer seals the heads of all chains into the next anchor, whose
hash goes to the application's log once committed; operators check or seal from the command line."""

from __future__ import annotations

import logging
import math
import time
from datetime import timedelta

import pytest
from flask import Flask
from flask.testing import FlaskCliRunner
from sqlalchemy import select, update

from ebox.audit.models import AuditAnchor, AuditChain, AuditEvent
from ebox.audit.services import ANCHOR_EVERY, CHAINS, anchor_clock, seal_anchor
from ebox.db_types import utcnow
from ebox.extensions import db
from tests.audit.audit_helpers import write_events


def anchors() -> list[AuditAnchor]:
    db.session.expire_all()
    return list(db.session.scalars(select(AuditAnchor).order_by(AuditAnchor.id)))


@pytest.mark.usefixtures("anchors_by_hand")
def test_an_anchor_seals_the_head_of_every_chain_even_the_empty_ones(app: Flask) -> None:
    write_events(3, each_committed=False)

    sealed = seal_anchor()
    db.session.commit()

    heads = {
        chain.id: [chain.head_seq, chain.head_hash]
        for chain in db.session.scalars(select(AuditChain))
    }
    assert sealed.heads == {str(chain): head for chain, head in heads.items()}
    assert len(sealed.heads) == CHAINS
    assert sorted(seq for seq, _head in sealed.heads.values())[-1] == 3


@pytest.mark.usefixtures("anchors_by_hand")
def test_a_writer_seals_an_anchor_once_the_latest_is_ten_seconds_old(app: Flask) -> None:
    write_events(1)
    anchor_clock().next_look = math.inf
    seal_anchor(utcnow() - ANCHOR_EVERY - timedelta(seconds=1))
    db.session.commit()
    anchor_clock().next_look = 0

    write_events(1)

    latest = anchors()[-1]
    newest_event = db.session.scalars(select(AuditEvent).order_by(AuditEvent.id.desc())).first()
    assert latest.id == len(anchors()) and latest.id >= 2
    assert newest_event is not None
    assert latest.heads[str(newest_event.chain)] == [newest_event.seq, newest_event.hash]


@pytest.mark.usefixtures("anchors_by_hand")
def test_no_anchor_is_sealed_while_the_latest_is_recent(app: Flask) -> None:
    write_events(1)
    anchor_clock().next_look = math.inf
    seal_anchor(utcnow() - timedelta(seconds=4))
    db.session.commit()
    count = len(anchors())
    anchor_clock().next_look = 0

    write_events(3)

    assert len(anchors()) == count
    # The writers of this process look again only once the latest anchor is ten seconds old.
    assert 4 < anchor_clock().next_look - time.monotonic() <= 6.5


def test_an_anchors_hash_is_logged_once_committed_and_never_when_rolled_back(
    app: Flask, caplog: pytest.LogCaptureFixture, anchors_by_hand: None
) -> None:
    write_events(1)
    caplog.set_level(logging.INFO, logger="ebox.audit.services")

    rolled_back = seal_anchor()
    rolled_back_hash = rolled_back.hash
    assert "audit anchor" not in caplog.text
    db.session.rollback()
    committed = seal_anchor()
    db.session.commit()

    assert rolled_back_hash not in caplog.text
    assert f"audit anchor {committed.id} sealed {CHAINS} chains: {committed.hash}" in caplog.text


@pytest.mark.usefixtures("anchors_by_hand")
def test_audit_verify_reports_an_intact_log_and_its_latest_anchor(
    app: Flask, runner: FlaskCliRunner
) -> None:
    write_events(4)
    sealed = seal_anchor()
    db.session.commit()

    result = runner.invoke(args=["ebox", "audit", "verify", "--anchor", sealed.hash])

    assert result.exit_code == 0, result.output
    assert f"4 events in {CHAINS} chains, 1 anchors" in result.output
    assert f"latest anchor: 1, sealed {sealed.created_at.isoformat(timespec='seconds')}" in (
        result.output
    )
    assert sealed.hash in result.output
    assert "0 events written since are not anchored yet" in result.output
    assert "the log is intact" in result.output


@pytest.mark.usefixtures("anchors_by_hand")
def test_audit_verify_fails_and_names_each_break(app: Flask, runner: FlaskCliRunner) -> None:
    write_events(2)
    event = db.session.scalars(select(AuditEvent)).first()
    assert event is not None
    event_id = event.id
    db.session.execute(update(AuditEvent).where(AuditEvent.id == event_id).values(action="x"))
    db.session.commit()

    result = runner.invoke(args=["ebox", "audit", "verify", "--anchor", "f" * 64])

    assert result.exit_code == 1
    assert f"event {event_id}: its content was changed after it was written" in result.output
    assert f"the anchor {'f' * 64} is not in the log" in result.output
    assert "the log is intact" not in result.output


def test_audit_anchor_seals_one_now_and_prints_its_hash(
    app: Flask, runner: FlaskCliRunner, anchors_by_hand: None
) -> None:
    write_events(1)

    result = runner.invoke(args=["ebox", "audit", "anchor"])

    assert result.exit_code == 0, result.output
    [sealed] = anchors()
    assert result.stdout.strip() == f"anchor {sealed.id}: {sealed.hash}"
