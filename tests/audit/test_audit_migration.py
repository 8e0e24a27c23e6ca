"""Migration 0011 on a database of its own: the single chain's events become chain 0 and still
verify; downgrading puts every event back into one chain the single chain's rule verifies, and
refuses a log that does not verify rather than seal it again."""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
from flask import Flask
from flask_migrate import downgrade, upgrade
from sqlalchemy import create_engine, select, text, update
from sqlalchemy.engine import make_url

from ebox import create_app
from ebox.audit.hashing import GENESIS_HASH, legacy_event_hash
from ebox.audit.models import AuditChain, AuditEvent
from ebox.audit.services import seal_anchor, verify_chain
from ebox.db_types import UTCDateTime, utcnow
from ebox.extensions import db
from tests.audit.audit_helpers import write_events
from tests.conftest import POSTGRES_SERVER, make_settings

# audit_events as it was before 0011.
single_chain = sa.table(
    "audit_events",
    sa.column("id", sa.Integer),
    sa.column("occurred_at", UTCDateTime),
    sa.column("actor_type", sa.String),
    sa.column("actor_id", sa.String),
    sa.column("action", sa.String),
    sa.column("subject_type", sa.String),
    sa.column("subject_id", sa.String),
    sa.column("details", sa.JSON),
    sa.column("previous_hash", sa.String),
    sa.column("hash", sa.String),
)


@pytest.fixture
def database_of_its_own(tmp_path: Path) -> Iterator[str]:
    if os.environ.get("EBOX_TEST_DATABASE") == "sqlite":
        yield f"sqlite:///{tmp_path / 'migration.sqlite3'}"
        return
    name = f"ebox_test_migration_{uuid.uuid4().hex[:8]}"
    admin = create_engine(POSTGRES_SERVER, isolation_level="AUTOCOMMIT")
    with admin.connect() as connection:
        connection.execute(text(f'CREATE DATABASE "{name}"'))
    yield make_url(POSTGRES_SERVER).set(database=name).render_as_string(hide_password=False)
    with admin.connect() as connection:
        connection.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
    admin.dispose()


@pytest.fixture
def migrating_app(database_of_its_own: str, instance_path: Path) -> Iterator[Flask]:
    app = create_app(make_settings(instance_path, database_of_its_own), TESTING=True)
    with app.app_context():
        upgrade(revision="0010")
        yield app
        db.session.remove()
        db.engine.dispose()


def write_single_chain(count: int) -> None:
    """Events as the single chain wrote them: each sealed to the one before it by id."""
    previous = GENESIS_HASH
    for number in range(count):
        fields: dict[str, Any] = {
            "occurred_at": utcnow(),
            "actor_type": "operator",
            "actor_id": "cli",
            "action": "staff.added",
            "subject_type": "staff_member",
            "subject_id": str(number),
            "details": {"role": "admin", "number": number},
            "previous_hash": previous,
        }
        fields["hash"] = previous = legacy_event_hash(fields)
        db.session.execute(sa.insert(single_chain).values(fields))
    db.session.commit()


def single_chain_breaks() -> list[int]:
    """The events the single chain's rule finds broken, walking by id."""
    broken, previous = [], GENESIS_HASH
    for row in db.session.execute(select(single_chain).order_by(single_chain.c.id)):
        if row.previous_hash != previous or legacy_event_hash(row._mapping) != row.hash:
            broken.append(row.id)
        previous = row.hash
    db.session.remove()  # no transaction left open for a migration to wait on
    return broken


def migrate(to: str) -> None:
    db.session.remove()
    if to == "0011":
        upgrade(revision=to)
    else:
        downgrade(revision=to)


def test_the_single_chains_events_verify_after_the_migration_and_after_a_downgrade(
    migrating_app: Flask,
) -> None:
    write_single_chain(5)
    assert single_chain_breaks() == []

    migrate("0011")
    chain = db.session.get(AuditChain, 0)
    last = db.session.scalars(select(AuditEvent).order_by(AuditEvent.id.desc())).first()
    assert chain is not None and last is not None
    assert (chain.legacy_events, chain.head_seq, chain.head_hash) == (5, 5, last.hash)
    assert verify_chain() == []

    write_events(4)
    seal_anchor()
    db.session.commit()
    assert verify_chain() == []

    migrate("0010")
    assert db.session.scalar(select(sa.func.count()).select_from(single_chain)) == 9
    assert single_chain_breaks() == []

    migrate("0011")
    assert verify_chain() == []


def test_a_downgrade_refuses_a_log_that_does_not_verify(
    migrating_app: Flask, capfd: pytest.CaptureFixture[str]
) -> None:
    write_single_chain(2)
    migrate("0011")
    write_events(2)
    newest = db.session.scalars(select(AuditEvent.id).order_by(AuditEvent.id.desc())).first()
    db.session.execute(update(AuditEvent).where(AuditEvent.id == newest).values(actor_id="9"))
    db.session.commit()

    with pytest.raises(SystemExit):
        migrate("0010")
    # Alembic's logging configuration writes the refusal to the standard error.
    refusal = f"audit event {newest} does not verify: downgrading would seal it again"
    assert refusal in capfd.readouterr().err

    db.session.remove()
    assert verify_chain() == [f"event {newest}: its content was changed after it was written"]
