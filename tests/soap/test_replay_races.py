"""PostgreSQL: a replay sent while the original is still being answered. Both transactions are
open; the replay's INSERT of the same key waits for the original's, then finds the key (REPLAY)
if the original committed, or records it (accepted) if the original rolled back. Never a 500."""

from __future__ import annotations

import threading
import time
from collections import Counter
from datetime import timedelta

import pytest
from flask import Flask
from sqlalchemy import text

from ebox.db_types import utcnow
from ebox.extensions import db
from ebox.senders.models import Sender
from ebox.soap.faults import SoapFault
from ebox.soap.wssecurity import authenticate
from ebox.soap.xml import parse_envelope
from tests.factories import create_message_type
from tests.live_server import LiveServer
from tests.soap.test_ebox_message_requests import fault_of, post, publication, signed
from tests.soap.wss_helpers import Identity, register, signed_request

pytestmark = pytest.mark.postgres_only

LIFETIME = timedelta(minutes=10)


def _authenticate(raw: bytes) -> None:
    envelope = parse_envelope(raw, max_bytes=1_000_000)
    authenticate(envelope, now=utcnow(), max_timestamp_lifetime=LIFETIME)


def _a_transaction_waits_on_a_lock(timeout: float = 10) -> bool:
    """Whether another session of this database is blocked on a lock, within timeout."""
    query = text(
        "SELECT count(*) FROM pg_stat_activity "
        "WHERE datname = current_database() AND wait_event_type = 'Lock'"
    )
    deadline = time.monotonic() + timeout
    with db.engine.connect() as connection:
        while time.monotonic() < deadline:
            if connection.execute(query).scalar_one():
                return True
            connection.rollback()
            time.sleep(0.02)
    return False


def replay_during_the_original(app: Flask, raw: bytes, original_ends: str) -> tuple[bool, str]:
    """(whether the replay waited for the original, the replay's outcome) when the original
    ends with original_ends ("commit" or "rollback") while the replay is waiting."""
    original_in = threading.Event()
    results: dict[str, object] = {}

    def original() -> None:
        with app.app_context():
            _authenticate(raw)
            original_in.set()
            results["waited"] = _a_transaction_waits_on_a_lock()
            if original_ends == "commit":
                db.session.commit()
            else:
                db.session.rollback()

    def replay() -> None:
        with app.app_context():
            original_in.wait(10)
            try:
                _authenticate(raw)
                db.session.commit()
                results["replay"] = "accepted"
            except SoapFault as fault:
                db.session.rollback()
                results["replay"] = fault.code

    threads = [threading.Thread(target=original), threading.Thread(target=replay)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(30)
    return bool(results["waited"]), str(results["replay"])


def test_a_replay_waiting_for_an_original_that_commits_is_a_replay(
    app: Flask, identity: Identity
) -> None:
    register(identity)
    db.session.commit()

    waited, outcome = replay_during_the_original(app, signed_request(identity), "commit")

    assert waited
    assert outcome == "REPLAY"


def test_a_replay_waiting_for_an_original_that_rolls_back_is_the_first(
    app: Flask, identity: Identity
) -> None:
    register(identity)
    db.session.commit()

    waited, outcome = replay_during_the_original(app, signed_request(identity), "rollback")

    assert waited
    assert outcome == "accepted"


def test_the_same_publication_posted_eight_times_at_once_is_accepted_once(
    app: Flask, soap_server: LiveServer, identity: Identity
) -> None:
    sender = db.session.get(Sender, register(identity).sender_id)
    assert sender is not None
    create_message_type(sender, code="TAX")
    db.session.commit()
    raw = signed(publication(MessageType="TAX"), identity)
    start = threading.Barrier(8)
    answers: list[str] = []

    def send() -> None:
        start.wait(10)
        response = post(soap_server, raw)
        answers.append("OK" if response.status_code == 200 else fault_of(response)[1])

    threads = [threading.Thread(target=send) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)

    assert Counter(answers) == {"OK": 1, "REPLAY": 7}
