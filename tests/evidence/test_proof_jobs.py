"""Proofs are asked of the worker after each evidence, and a lost request is made up for."""

from __future__ import annotations

import logging
from datetime import timedelta

import pytest
from flask import Flask
from sqlalchemy import update

from ebox import transactions
from ebox.db_types import utcnow
from ebox.evidence.jobs import SWEEP_WINDOW, make_missing_proofs, make_proof
from ebox.evidence.models import Evidence
from ebox.evidence.services import chain_of, forget_expired_evidence, latest_proof
from ebox.extensions import db
from ebox.mailbox.models import Document
from ebox.mailbox.services import confirm_receipt
from tests.factories import create_citizen, create_document


@pytest.fixture
def redis_down(app: Flask) -> object:
    settings = app.config["EBOX"]
    previous = settings.redis_url
    settings.redis_url = "redis://127.0.0.1:1/0"  # nothing listens there
    yield
    settings.redis_url = previous


def test_with_redis_down_the_event_is_kept_and_the_sweep_makes_the_proof(
    app: Flask, redis_down: object, caplog: pytest.LogCaptureFixture
) -> None:
    document = create_document(create_citizen(), is_registered=True, commit=False)
    with caplog.at_level(logging.WARNING, logger="ebox.evidence.jobs"):
        transactions.commit()
    assert "the periodic sweep will make it" in caplog.text
    assert latest_proof(document.id) is None

    assert make_missing_proofs() == 1
    proof = latest_proof(document.id)
    assert proof is not None and (proof.version, proof.evidence_count) == (1, 2)
    assert make_missing_proofs() == 0  # up to date: nothing to make

    confirm_receipt(document=document)
    transactions.commit()
    assert make_missing_proofs() == 1
    proof = latest_proof(document.id)
    assert proof is not None and (proof.version, proof.evidence_count) == (2, 3)


def test_the_sweep_looks_only_at_recent_evidence(app: Flask, redis_down: object) -> None:
    document = create_document(create_citizen(), is_registered=True)
    db.session.execute(
        update(Evidence)
        .where(Evidence.document_id == document.id)
        .values(recorded_at=utcnow() - SWEEP_WINDOW - timedelta(minutes=1))
    )
    db.session.commit()

    assert make_missing_proofs() == 0
    assert latest_proof(document.id) is None


def test_evidence_and_proofs_go_message_by_message_after_their_retention(app: Flask) -> None:
    old = create_document(create_citizen(), is_registered=True)
    recent = create_document(create_citizen(), is_registered=True)
    for document in (old, recent):
        make_proof(str(document.id))
    # The old message's whole chain is past retention; the recent one has one link that is not.
    db.session.execute(
        update(Evidence).where(Evidence.document_id == old.id).values(keep_until=utcnow())
    )
    db.session.execute(
        update(Evidence)
        .where(Evidence.document_id == recent.id, Evidence.position == 1)
        .values(keep_until=utcnow())
    )
    db.session.commit()

    assert forget_expired_evidence(utcnow() + timedelta(seconds=1)) == 1

    assert chain_of(old.id) == [] and latest_proof(old.id) is None
    assert len(chain_of(recent.id)) == 2 and latest_proof(recent.id) is not None
    assert db.session.get(Document, old.id) is not None  # the minimal record stays
