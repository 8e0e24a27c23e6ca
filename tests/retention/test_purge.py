"""Deletion at expiry: the content leaves the store (local and S3), the row shrinks to a minimal
record that status queries still answer from, and every step can be run again or resumed."""

from __future__ import annotations

import os
import time
from datetime import timedelta

import pytest
from flask import Flask
from flask.testing import FlaskClient, FlaskCliRunner
from sqlalchemy import update

from ebox.db_types import utcnow
from ebox.evidence.services import chain_of
from ebox.evidence.xml import CLOCK_SKEW
from ebox.extensions import db
from ebox.mailbox.models import Document
from ebox.mailbox.publication import PublicationRefused
from ebox.retention.services import PurgeInTheFuture, purge_expired, remove_orphan_objects
from ebox.storage.services import list_storage_keys, store_content
from tests.factories import create_citizen, create_document, login
from tests.retention.retention_helpers import assert_minimal_record, expired_document
from tests.storage.helpers import local_object_path


def test_an_expired_document_loses_its_content_and_keeps_a_minimal_record(
    client: FlaskClient,
) -> None:
    citizen = create_citizen()
    gone = expired_document(citizen)
    kept = create_document(citizen, title="Still valid")
    key = gone.storage_key

    summary = purge_expired()

    assert (summary.documents, summary.objects_removed) == (1, 1)
    assert key not in set(list_storage_keys())
    assert kept.storage_key in set(list_storage_keys())
    assert_minimal_record(gone)
    db.session.refresh(kept)
    assert kept.deleted_at is None and kept.title == "Still valid"
    login(client, citizen)
    assert client.get(f"/documents/{gone.id}").status_code == 404
    assert "Expired letter" not in client.get("/").get_data(as_text=True)

    assert purge_expired().documents == 0  # a second run finds nothing to do


def test_a_document_is_never_shown_after_its_expiry_even_before_the_purge(
    client: FlaskClient,
) -> None:
    citizen = create_citizen()
    document = expired_document(citizen, title="Past its date")
    login(client, citizen)
    assert client.get(f"/documents/{document.id}/content").status_code == 404
    assert "Past its date" not in client.get("/").get_data(as_text=True)


def test_the_purge_replays_a_past_moment_given_on_the_command_line(
    runner: FlaskCliRunner,
) -> None:
    document = expired_document(create_citizen())
    document.expires_at = utcnow() - timedelta(days=1)
    db.session.commit()
    before_expiry = (utcnow() - timedelta(days=2)).strftime("%Y-%m-%dT%H:%M:%S")
    after_expiry = utcnow() - timedelta(hours=12)

    early = runner.invoke(args=["ebox", "purge", "--now", before_expiry])
    assert "0 expired documents deleted" in early.output
    result = runner.invoke(
        args=["ebox", "purge", "--now", after_expiry.strftime("%Y-%m-%dT%H:%M:%S")]
    )
    assert result.exit_code == 0, result.output
    assert "1 expired documents deleted, 1 stored objects removed" in result.output
    assert_minimal_record(document)
    assert document.deleted_at == after_expiry.replace(microsecond=0)


def test_a_purge_at_a_future_moment_is_refused_and_does_nothing(
    runner: FlaskCliRunner,
) -> None:
    citizen = create_citizen()
    registered = create_document(
        citizen, is_registered=True, expires_at=utcnow() + timedelta(days=2)
    )
    plain = create_document(citizen, expires_at=utcnow() + timedelta(days=2))
    already_expired = expired_document(citizen)
    in_three_days = (utcnow() + timedelta(days=3)).strftime("%Y-%m-%dT%H:%M")

    result = runner.invoke(args=["ebox", "purge", "--now", in_three_days])

    assert result.exit_code == 1
    assert f"--now {in_three_days}:00Z is in the future" in result.output
    assert "nothing was done" in result.output
    db.session.expire_all()
    for document in (registered, plain, already_expired):
        assert document.deleted_at is None and document.title is not None
        assert document.storage_key in set(list_storage_keys())
    assert [item.event for item in chain_of(registered.id)] == [
        "SubmissionAcceptance",
        "ContentConsignment",
    ]
    with pytest.raises(PurgeInTheFuture):
        purge_expired(utcnow() + timedelta(minutes=1))


def test_a_moment_within_the_clock_skew_is_taken_as_now(app: Flask) -> None:
    # A moment typed to the second may lie a little ahead: accepted, but nothing that expires
    # after the real now is deleted.
    moment = utcnow() + CLOCK_SKEW * 0.9
    document = create_document(create_citizen())
    document.expires_at = moment
    db.session.commit()

    assert purge_expired(moment).documents == 0

    db.session.refresh(document)
    assert document.deleted_at is None


def test_a_crash_between_database_and_store_is_finished_by_the_next_run(app: Flask) -> None:
    document = expired_document(create_citizen())
    key = document.storage_key
    # What a worker killed after its first commit leaves: the record reduced and the key
    # erased, the object still in the store, marked by its storage key.
    db.session.execute(
        update(Document)
        .where(Document.id == document.id)
        .values(
            deleted_at=utcnow(),
            title=None,
            body_text=None,
            file_name=None,
            content_key=None,
            content_key_id=None,
        )
    )
    db.session.commit()
    assert local_object_path(app, key).exists()  # type: ignore[arg-type]

    summary = purge_expired()

    assert summary.objects_removed == 1
    assert not local_object_path(app, key).exists()  # type: ignore[arg-type]
    assert_minimal_record(document)


def test_objects_that_no_document_names_are_removed_once_old_enough(app: Flask) -> None:
    citizen = create_citizen()
    named = create_document(citizen).storage_key
    old_orphan = store_content(b"%PDF-1.4 left behind by a crash").storage_key
    new_orphan = store_content(b"%PDF-1.4 a publication still in flight").storage_key
    two_hours_ago = time.time() - 2 * 3600
    os.utime(local_object_path(app, old_orphan), (two_hours_ago, two_hours_ago))

    assert remove_orphan_objects() == 1

    keys = set(list_storage_keys())
    assert old_orphan not in keys
    assert {named, new_orphan} <= keys


def test_a_retry_of_a_deleted_message_is_refused_with_the_reason(app: Flask) -> None:
    document = expired_document(create_citizen())
    purge_expired()
    with pytest.raises(PublicationRefused, match="expired and been deleted") as refused:
        create_document(
            document.recipient_national_number,
            message_type=document.message_type,
            ticket=document.sender_ticket,
            title="Expired letter",
        )
    assert refused.value.code == "DUPLICATE_MESSAGE_ID"
