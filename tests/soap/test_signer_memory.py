"""Who signs with a certificate is remembered for a few seconds: a revocation or suspension made
in this process takes effect at once, one made in another process within REMEMBERED_FOR, and a
refusal is never remembered."""

from __future__ import annotations

import hashlib
from collections.abc import Iterator
from datetime import datetime, timedelta

import pytest
from flask import Flask
from sqlalchemy import event, update

from ebox.audit.services import OPERATOR
from ebox.db_types import utcnow
from ebox.extensions import db
from ebox.senders import services as senders
from ebox.senders.directory import REMEMBERED_FOR
from ebox.senders.models import Sender, SenderCertificate
from ebox.soap import faults
from ebox.soap.faults import SoapFault
from ebox.soap.wssecurity import authenticate
from ebox.soap.xml import parse_envelope
from tests.factories import create_sender
from tests.soap.wss_helpers import Identity, make_identity, register, signed_request

LIFETIME = timedelta(minutes=10)


@pytest.fixture(scope="module")
def signer() -> Identity:
    return make_identity("ec", name="Remembered Back Office")


def outcome(identity: Identity, now: datetime) -> str:
    """The answer to a fresh request signed now. Its transaction ends with it, as a request's
    does: it holds the request's replay key, and SQLite would lock out other writers."""
    envelope = parse_envelope(signed_request(identity, created=now), max_bytes=1_000_000)
    try:
        authenticate(envelope, now=now, max_timestamp_lifetime=LIFETIME)
    except SoapFault as fault:
        return fault.code
    finally:
        db.session.rollback()
    return "accepted"


def elsewhere(statement: object) -> None:
    """A change made by another process: its own connection, nothing this process's sessions
    could notice."""
    with db.engine.begin() as connection:
        connection.execute(statement)  # type: ignore[call-overload]


@pytest.fixture
def certificate_queries(app: Flask) -> Iterator[list[str]]:
    seen: list[str] = []

    def count(_conn: object, _cursor: object, statement: str, *_args: object) -> None:
        if "FROM sender_certificates" in statement:
            seen.append(statement)

    event.listen(db.engine, "before_cursor_execute", count)
    yield seen
    event.remove(db.engine, "before_cursor_execute", count)


def test_a_certificate_is_looked_up_once_then_remembered(
    app: Flask, signer: Identity, certificate_queries: list[str]
) -> None:
    register(signer)
    now = utcnow()
    assert [outcome(signer, now + timedelta(seconds=s)) for s in (0, 1, 2)] == ["accepted"] * 3
    assert len(certificate_queries) == 1


def test_a_revocation_made_in_this_process_takes_effect_at_once(
    app: Flask, signer: Identity
) -> None:
    record = register(signer)
    now = utcnow()
    assert outcome(signer, now) == "accepted"

    senders.revoke_certificate(certificate=record, reason="Key leaked", actor=OPERATOR)
    db.session.commit()

    assert outcome(signer, now) == faults.CERTIFICATE_REVOKED


def test_a_suspension_made_in_this_process_takes_effect_at_once(
    app: Flask, signer: Identity
) -> None:
    record = register(signer)
    now = utcnow()
    assert outcome(signer, now) == "accepted"

    senders.suspend_sender(sender=record.sender, reason="Unpaid", actor=OPERATOR)
    db.session.commit()

    assert outcome(signer, now) == faults.SENDER_SUSPENDED


def test_a_revocation_made_in_another_process_takes_effect_within_five_seconds(
    app: Flask, signer: Identity
) -> None:
    record = register(signer)
    looked_up_at = utcnow()
    assert outcome(signer, looked_up_at) == "accepted"

    elsewhere(
        update(SenderCertificate)
        .where(SenderCertificate.id == record.id)
        .values(revoked_at=looked_up_at)
    )

    assert timedelta(seconds=5) == REMEMBERED_FOR
    almost = looked_up_at + REMEMBERED_FOR - timedelta(milliseconds=1)
    assert outcome(signer, almost) == "accepted"  # still remembered, at most this long
    assert outcome(signer, looked_up_at + REMEMBERED_FOR) == faults.CERTIFICATE_REVOKED


def test_a_suspension_made_in_another_process_takes_effect_within_five_seconds(
    app: Flask, signer: Identity
) -> None:
    record = register(signer)
    looked_up_at = utcnow()
    assert outcome(signer, looked_up_at) == "accepted"

    elsewhere(update(Sender).where(Sender.id == record.sender_id).values(is_active=False))

    assert outcome(signer, looked_up_at + REMEMBERED_FOR) == faults.SENDER_SUSPENDED


def test_a_clock_gone_back_does_not_keep_an_answer_longer(app: Flask, signer: Identity) -> None:
    record = register(signer)
    looked_up_at = utcnow()
    assert outcome(signer, looked_up_at) == "accepted"
    elsewhere(
        update(SenderCertificate)
        .where(SenderCertificate.id == record.id)
        .values(revoked_at=looked_up_at)
    )

    assert outcome(signer, looked_up_at - timedelta(seconds=1)) == faults.CERTIFICATE_REVOKED


def test_a_refusal_is_never_remembered(app: Flask, signer: Identity) -> None:
    now = utcnow()
    assert outcome(signer, now) == faults.CERTIFICATE_UNKNOWN
    sender = create_sender(is_active=False)
    db.session.commit()
    elsewhere(
        SenderCertificate.__table__.insert().values(  # type: ignore[attr-defined]
            sender_id=sender.id,
            fingerprint_sha256=_fingerprint(signer),
            pem=signer.cert_pem.decode(),
            subject="CN=Remembered Back Office",
            not_before=now - timedelta(days=1),
            not_after=now + timedelta(days=1),
            added_at=now,
            revocation_reason="",
        )
    )
    assert outcome(signer, now) == faults.SENDER_SUSPENDED

    elsewhere(update(Sender).where(Sender.id == sender.id).values(is_active=True))

    assert outcome(signer, now) == "accepted"


def _fingerprint(identity: Identity) -> str:
    return hashlib.sha256(identity.cert_der).hexdigest()
