"""The backup and restore drill of docs/operations.md at small scale: documents published through
the real code path (one registered, opened, with its evidence and proof), a pg_dump of the
database and a copy of the storage directory, restored into an empty throw-away PostgreSQL and a
new directory; an application pointed at the copy passes `ebox restore-check` and shows the
citizen the same inbox. Without the storage copy, or with an audit event changed, it fails."""

from __future__ import annotations

import shutil
import subprocess
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest
from flask import Flask
from sqlalchemy import create_engine, func, select, text
from sqlalchemy.engine import make_url

from ebox import create_app
from ebox.accounts.models import Citizen
from ebox.admin.services import add_staff
from ebox.audit.models import AuditEvent
from ebox.audit.services import OPERATOR, seal_anchor
from ebox.evidence.jobs import make_proof
from ebox.extensions import db
from ebox.mailbox.models import Document
from tests.conftest import make_settings
from tests.evidence.verify_helpers import opened_registered_document
from tests.factories import create_document, login, next_national_number
from tests.mailbox.mailbox_helpers import inbox, titles_on
from tests.postgres_server import PostgresServer, postgres_server
from tests.storage.helpers import changed_settings

pytestmark = [pytest.mark.postgres_only, pytest.mark.slow]


def _timed(durations: dict[str, float], step: str, command: list[str]) -> None:
    started = time.monotonic()
    subprocess.run(command, check=True, capture_output=True, timeout=120)
    durations[step] = time.monotonic() - started


@contextmanager
def _drill(app: Flask, tmp_path: Path, *, copy_storage: bool = True) -> Iterator[Flask]:
    """Back up the test database and its storage directory the documented way, restore both
    onto an empty PostgreSQL and a new directory, and yield an application on the copy."""
    if db.engine.dialect.name != "postgresql":
        pytest.skip("the drill restores a PostgreSQL dump")
    source = make_url(app.config["EBOX"].database_url)
    dump = tmp_path / "ebox.dump"
    durations: dict[str, float] = {}
    with postgres_server() as server:
        _timed(
            durations,
            "pg_dump",
            [
                str(server.bin / "pg_dump"),
                "--host=127.0.0.1",
                f"--port={source.port or 5432}",
                "--username=postgres",
                "--format=custom",
                f"--file={dump}",
                str(source.database),
            ],
        )
        restored_documents = tmp_path / "restored-documents"
        started = time.monotonic()
        if copy_storage:
            shutil.copytree(app.config["EBOX"].storage_path, restored_documents)
        else:
            restored_documents.mkdir()
        durations["storage copy"] = time.monotonic() - started
        url = _empty_database(server)
        _timed(
            durations,
            "pg_restore",
            [
                str(server.bin / "pg_restore"),
                "--host=127.0.0.1",
                f"--port={server.port}",
                "--username=postgres",
                "--dbname=ebox",
                "--no-owner",
                "--exit-on-error",
                str(dump),
            ],
        )
        print(", ".join(f"{step} {seconds:.2f} s" for step, seconds in durations.items()))
        restored = create_app(
            make_settings(Path(app.instance_path), url, storage_path=str(restored_documents)),
            TESTING=True,
        )
        try:
            yield restored
        finally:
            with restored.app_context():
                db.session.remove()
                db.engine.dispose()


def _empty_database(server: PostgresServer) -> str:
    admin = create_engine(server.url, isolation_level="AUTOCOMMIT")
    with admin.connect() as connection:
        connection.execute(text("CREATE DATABASE ebox"))
    admin.dispose()
    return make_url(server.url).set(database="ebox").render_as_string(hide_password=False)


def _publish(app: Flask) -> tuple[Citizen, list[str], str]:
    """A citizen with three documents, one of them registered mail opened with its proof;
    the anchor sealed before the backup, as the procedure says. Returns the citizen, the titles
    of their inbox and the anchor's hash."""
    registered = opened_registered_document()
    citizen = db.session.scalars(
        select(Citizen).where(Citizen.national_number == registered.recipient_national_number)
    ).one()
    assert make_proof(str(registered.id)) is not None
    for title in ("Tax assessment 2025", "Parking permit"):
        create_document(citizen, title=title)
    # Staff changes are audited: the log holds events from before the backup.
    add_staff(raw_number=next_national_number(), role="support", actor=OPERATOR)
    add_staff(raw_number=next_national_number(), role="admin", actor=OPERATOR)
    anchor = seal_anchor()
    db.session.commit()
    client = app.test_client()
    client.environ_base["HTTP_ACCEPT_LANGUAGE"] = "en"
    login(client, citizen)
    titles = titles_on(inbox(client))
    assert sorted(titles) == ["Formal notice", "Parking permit", "Tax assessment 2025"]
    return citizen, titles, anchor.hash


def _restore_check(restored: Flask, *args: str) -> tuple[int, str]:
    with restored.app_context():
        started = time.monotonic()
        result = restored.test_cli_runner().invoke(args=["ebox", "restore-check", *args])
        print(f"restore-check {time.monotonic() - started:.2f} s")
        if result.exception and not isinstance(result.exception, SystemExit):
            raise result.exception
        return result.exit_code, result.output


def test_a_restored_copy_passes_the_checks_and_shows_the_same_inbox(
    app: Flask, tmp_path: Path
) -> None:
    with changed_settings(app, storage_path=str(tmp_path / "documents")):
        citizen, titles, anchor = _publish(app)
        events = db.session.scalar(select(func.count()).select_from(AuditEvent))
        assert events

        with _drill(app, tmp_path) as restored:
            code, output = _restore_check(restored, "--anchor", anchor)
            print(output)
            assert code == 0, output
            assert "OK   audit log" in output
            assert f"{events} events" in output
            assert "OK   registered mail: 1 documents' latest proof and evidence verified" in output
            assert "OK   documents: 3 of 3 sampled documents (of 3) decrypt" in output
            assert output.rstrip().endswith("restore check passed")

            with restored.app_context():
                client = restored.test_client()
                client.environ_base["HTTP_ACCEPT_LANGUAGE"] = "en"
                login(client, db.session.merge(citizen))
                assert titles_on(inbox(client)) == titles
                for document in db.session.scalars(select(Document)):
                    response = client.get(f"/documents/{document.id}/content")
                    assert response.status_code == 200, document.title


def test_without_the_storage_copy_or_with_an_audit_event_changed_the_check_fails(
    app: Flask, tmp_path: Path
) -> None:
    with changed_settings(app, storage_path=str(tmp_path / "documents")):
        _, _, anchor = _publish(app)

        with _drill(app, tmp_path, copy_storage=False) as restored:
            code, output = _restore_check(restored, "--anchor", anchor)
            assert code == 1, output
            assert "FAIL documents: 0 of 3 sampled documents (of 3) decrypt" in output
            assert "OK   audit log" in output
            assert "restore check FAILED: documents" in output

            with restored.app_context():
                event = db.session.scalars(select(AuditEvent).order_by(AuditEvent.id)).first()
                assert event is not None
                db.session.execute(
                    text("UPDATE audit_events SET actor_id = 'someone else' WHERE id = :id"),
                    {"id": event.id},
                )
                db.session.commit()
            code, output = _restore_check(restored, "--anchor", anchor)
            assert code == 1, output
            assert "FAIL audit log" in output
            assert "restore check FAILED: audit log, documents" in output
