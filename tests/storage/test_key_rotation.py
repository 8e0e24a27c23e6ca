"""Master key rotation on the real database and the real local store: the documents' keys are
re-wrapped under a new master key batch by batch, a run killed in the middle goes on where it
stopped, the stored objects are never touched, every document still decrypts; afterwards the
old key can be removed, and a service that lacks a key some document needs refuses to start."""

from __future__ import annotations

import hashlib
import os
import re
import signal
import subprocess
import sys
import time
from datetime import timedelta
from pathlib import Path

import pytest
from flask import Flask
from sqlalchemy import func, insert, select

from ebox.config import DEFAULT_MASTER_KEY
from ebox.db_types import utcnow
from ebox.errors import ConfigError
from ebox.extensions import db
from ebox.mailbox.models import Document
from ebox.storage.rotation import check_documents_keys_configured, documents_by_key_id
from ebox.storage.services import MasterKeyError, open_content, store_content
from tests.factories import create_message_type, next_national_number
from tests.mail.smtp_server import free_port
from tests.storage.helpers import changed_settings, random_master_key

ROOT = Path(__file__).resolve().parent.parent.parent
FLASK = str(Path(sys.executable).with_name("flask"))
GUNICORN = str(Path(sys.executable).with_name("gunicorn"))
NEW_KEY = random_master_key()
BOTH_KEYS = {"master_keys": f"k1:{DEFAULT_MASTER_KEY},k2:{NEW_KEY}", "master_key_id": "k2"}
ONLY_NEW_KEY = {"master_keys": f"k2:{NEW_KEY}", "master_key_id": "k2"}


def _store_documents(count: int) -> None:
    """`count` documents under the app's current master key, stored for real, in one insert."""
    message_type = create_message_type()
    db.session.commit()
    rows = []
    for number in range(count):
        stored = store_content(b"statement %d for one citizen" % number)
        rows.append(
            {
                "sender_id": message_type.sender_id,
                "message_type_id": message_type.id,
                "recipient_national_number": next_national_number(),
                "sender_ticket": f"R{number}",
                "title": "Statement",
                "language": "en",
                "media_type": "application/pdf",
                "size_bytes": stored.size_bytes,
                "sha256": stored.sha256,
                "storage_key": stored.storage_key,
                "content_key": stored.content_key,
                "content_key_id": stored.content_key_id,
                "expires_at": utcnow() + timedelta(days=30),
            }
        )
    db.session.execute(insert(Document), rows)
    db.session.commit()


def _every_document_decrypts() -> int:
    documents = db.session.scalars(select(Document)).all()
    for document in documents:
        assert document.storage_key and document.content_key and document.content_key_id
        with open_content(
            storage_key=document.storage_key,
            content_key=document.content_key,
            content_key_id=document.content_key_id,
        ) as content:
            assert hashlib.sha256(content.read()).hexdigest() == document.sha256
    return len(documents)


def _objects_digest(app: Flask) -> str:
    """One digest of every stored object's path and bytes: changes if any object is touched."""
    digest = hashlib.sha256()
    for path in sorted(Path(app.config["EBOX"].storage_path).rglob("*")):
        if path.is_file():
            digest.update(str(path).encode() + path.read_bytes())
    return digest.hexdigest()


def _environment(app: Flask, **variables: str) -> dict[str, str]:
    settings = app.config["EBOX"]
    environment = {k: v for k, v in os.environ.items() if not k.startswith("EBOX_")}
    environment.update(
        EBOX_ENV="test",
        EBOX_INSTANCE_PATH=str(settings.instance_path),
        EBOX_DATABASE_URL=settings.database_url,
        EBOX_STORAGE_PATH=settings.storage_path,
        EBOX_MASTER_KEYS=BOTH_KEYS["master_keys"],
        EBOX_MASTER_KEY_ID="k2",
        PYTHONUNBUFFERED="1",
    )
    environment.update(variables)
    return environment


def _under(key_id: str) -> int:
    db.session.rollback()  # see what other processes committed
    return db.session.scalar(
        select(func.count()).select_from(Document).where(Document.content_key_id == key_id)
    )


@pytest.mark.slow
def test_a_rotation_killed_in_the_middle_goes_on_where_it_stopped(app):
    total = 3000
    _store_documents(total)
    objects_before = _objects_digest(app)
    command = [FLASK, "--app", "app", "ebox", "keys", "rotate", "--to", "k2", "--batch-size"]
    rotate = subprocess.Popen(
        [*command, "100", "--pause", "0.05"],
        cwd=ROOT,
        env=_environment(app),
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        text=True,
    )
    assert rotate.stdout is not None
    progress = [rotate.stdout.readline() for _ in range(5)]
    rotate.send_signal(signal.SIGKILL)
    rotate.wait(timeout=10)
    assert progress[-1].startswith("500 of 3000 keys done")
    halfway = _under("k2")
    assert 500 <= halfway < total  # committed batches stay, the rest is still to do
    assert _under("k1") == total - halfway

    started = time.monotonic()
    finished = subprocess.run(
        [*command, "1000", "--sample", "30"],
        cwd=ROOT,
        env=_environment(app),
        capture_output=True,
        text=True,
        timeout=60,
    )
    elapsed = time.monotonic() - started
    assert finished.returncode == 0, finished.stderr
    # Only what was left is done the second time.
    assert f"{total - halfway} of {total - halfway} keys done" in finished.stdout
    assert (
        f"rotation to 'k2': {total - halfway} document keys and 0 webhook secrets re-wrapped"
        in finished.stdout
    )
    verified = re.search(r"verified (\d+) documents under 'k2': (\d+) decrypt", finished.stdout)
    assert verified and 20 <= int(verified[1]) == int(verified[2])  # random picks may repeat
    assert documents_by_key_id() == {"k2": total}
    assert _objects_digest(app) == objects_before  # no stored object was rewritten
    with changed_settings(app, **ONLY_NEW_KEY):  # the old key removed: everything still reads
        assert _every_document_decrypts() == total
    assert elapsed < 30


def test_status_counts_the_documents_of_each_master_key(app):
    _store_documents(3)
    with changed_settings(app, **BOTH_KEYS):
        _store_documents(2)
        shown = app.test_cli_runner().invoke(args=["ebox", "keys", "status"])
    assert shown.exit_code == 0, shown.output
    assert "master key 'k1': 3 documents (configured)" in shown.output
    assert "master key 'k2': 2 documents (configured, wraps new documents)" in shown.output
    with changed_settings(app, **ONLY_NEW_KEY):
        shown = app.test_cli_runner().invoke(args=["ebox", "keys", "status"])
    assert shown.exit_code == 1
    assert "master key 'k1': 3 documents (NOT CONFIGURED: eBox refuses to start)" in shown.output


def test_after_a_rotation_the_old_key_can_be_removed_and_the_service_starts_and_reads(app):
    _store_documents(25)
    with changed_settings(app, **ONLY_NEW_KEY) as only_new:
        with pytest.raises(ConfigError, match="wrapped by master key 'k1', which is not config"):
            check_documents_keys_configured(only_new)
        with pytest.raises(MasterKeyError, match="master key 'k1', which is not configured"):
            _every_document_decrypts()
    with changed_settings(app, **BOTH_KEYS):
        rotated = app.test_cli_runner().invoke(
            args=["ebox", "keys", "rotate", "--to", "k2", "--batch-size", "7"]
        )
        assert rotated.exit_code == 0, rotated.output
        assert (
            "rotation to 'k2': 25 document keys and 0 webhook secrets re-wrapped" in rotated.output
        )
        shown = app.test_cli_runner().invoke(args=["ebox", "keys", "status"])
        assert "master key 'k1': 0 documents (configured, no document needs it" in shown.output
    with changed_settings(app, **ONLY_NEW_KEY) as only_new:
        check_documents_keys_configured(only_new)  # starts
        assert _every_document_decrypts() == 25
        again = app.test_cli_runner().invoke(args=["ebox", "keys", "rotate", "--to", "k2"])
        assert again.exit_code == 0
        assert "rotation to 'k2': 0 document keys and 0 webhook secrets re-wrapped" in again.output


def test_a_key_that_does_not_unwrap_is_reported_by_document_id_and_the_others_rotate(app):
    _store_documents(5)
    damaged = db.session.scalars(select(Document).order_by(Document.id)).first()
    assert damaged is not None and damaged.content_key is not None
    damaged.content_key = bytes([damaged.content_key[0] ^ 1]) + damaged.content_key[1:]
    db.session.commit()
    with changed_settings(app, **BOTH_KEYS):
        rotated = app.test_cli_runner().invoke(args=["ebox", "keys", "rotate", "--to", "k2"])
    assert rotated.exit_code == 1
    assert f"document {damaged.id} could not be unwrapped" in rotated.output
    assert "4 document keys and 0 webhook secrets re-wrapped" in rotated.output
    assert documents_by_key_id() == {"k1": 1, "k2": 4}


def test_rotating_to_a_key_that_is_not_configured_changes_nothing(app):
    _store_documents(2)
    refused = app.test_cli_runner().invoke(args=["ebox", "keys", "rotate", "--to", "k9"])
    assert refused.exit_code == 1
    assert "'k9' is not a configured master key" in refused.output
    assert documents_by_key_id() == {"k1": 2}


def test_the_check_at_start_passes_on_an_empty_database_and_an_unreachable_one(app, tmp_path):
    check_documents_keys_configured(app.config["EBOX"])
    with changed_settings(app, database_url=f"sqlite:///{tmp_path}/none.sqlite3") as fresh:
        check_documents_keys_configured(fresh)  # no documents table yet (before migrations)
    with changed_settings(
        app, database_url=f"postgresql+psycopg://postgres@127.0.0.1:{free_port()}/none"
    ) as down:
        check_documents_keys_configured(down)  # /readyz reports the database; no refusal


@pytest.mark.slow
def test_gunicorn_refuses_to_start_while_documents_need_a_missing_key_saying_so_once(app):
    _store_documents(2)
    finished = subprocess.run(
        [
            GUNICORN,
            "-c",
            "python:ebox.gunicorn_conf",
            "--bind",
            f"127.0.0.1:{free_port()}",
            "app:app",
        ],
        cwd=ROOT,
        env=_environment(app, EBOX_MASTER_KEYS=ONLY_NEW_KEY["master_keys"]),
        capture_output=True,
        text=True,
        timeout=30,
    )
    assert finished.returncode != 0
    assert finished.stderr.count("wrapped by master key 'k1', which is not configured") == 1
    assert "Booting worker" not in finished.stderr


@pytest.mark.slow
def test_the_worker_refuses_to_start_while_documents_need_a_missing_key(app):
    _store_documents(2)
    finished = subprocess.run(
        [sys.executable, "worker.py", "--burst"],
        cwd=ROOT,
        env=_environment(app, EBOX_MASTER_KEYS=ONLY_NEW_KEY["master_keys"]),
        capture_output=True,
        text=True,
        timeout=30,
    )
    assert finished.returncode != 0
    assert (
        "eBox cannot start: documents or webhook secrets are still wrapped by master key 'k1'"
        in finished.stderr
    )
    assert "Traceback" not in finished.stderr
