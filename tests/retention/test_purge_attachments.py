"""The purge deletes a message's attachments with its document: names and keys first, then the
objects and the rows, and a run killed in between is finished by the next one; the orphan pass
never takes an attachment's object for an orphan."""

from __future__ import annotations

import os
import time

from flask import Flask
from sqlalchemy import func, select, update

from ebox.db_types import utcnow
from ebox.extensions import db
from ebox.mailbox.models import Attachment
from ebox.mailbox.publication import SubmittedAttachment
from ebox.retention.services import (
    _reduce_to_minimal_records,
    purge_expired,
    remove_orphan_objects,
)
from ebox.storage.services import list_storage_keys
from tests.factories import create_citizen, create_document, make_png
from tests.retention.retention_helpers import assert_minimal_record, expire
from tests.storage.helpers import local_object_path


def with_two_attachments(citizen, title: str = "Decision with a plan"):
    attachments = [
        SubmittedAttachment("plan.png", "image/png", make_png()),
        SubmittedAttachment("notes.txt", "text/plain", b"Read me first.\n"),
    ]
    return create_document(citizen, title=title, attachments=attachments)


def attachment_keys(document) -> list[str]:
    return list(
        db.session.scalars(
            select(Attachment.storage_key).where(Attachment.document_id == document.id)
        )
    )


def test_the_purge_removes_the_attachments_objects_and_rows_with_the_document(
    app: Flask,
) -> None:
    citizen = create_citizen()
    gone, kept = with_two_attachments(citizen), with_two_attachments(citizen, "Still valid")
    gone_keys = [gone.storage_key, *attachment_keys(gone)]
    expire(gone)

    summary = purge_expired()

    assert (summary.documents, summary.objects_removed) == (1, 3)
    stored = set(list_storage_keys())
    assert not stored & set(gone_keys)
    assert {kept.storage_key, *attachment_keys(kept)} <= stored
    assert attachment_keys(gone) == [] and len(attachment_keys(kept)) == 2
    assert_minimal_record(gone)


def test_a_run_killed_after_the_first_step_has_erased_names_and_keys_and_is_finished(
    app: Flask,
) -> None:
    document = with_two_attachments(create_citizen())
    keys = attachment_keys(document)
    expire(document)
    # What a worker killed after its first commit leaves.
    _reduce_to_minimal_records([document.id], utcnow())
    db.session.commit()
    names_and_keys = db.session.execute(
        select(Attachment.file_name, Attachment.content_key, Attachment.content_key_id).where(
            Attachment.document_id == document.id
        )
    ).all()
    assert names_and_keys == [(None, None, None)] * 2
    assert all(local_object_path(app, key).exists() for key in keys)

    assert purge_expired().objects_removed == 3
    assert not any(local_object_path(app, key).exists() for key in keys)
    assert db.session.scalar(select(func.count()).select_from(Attachment)) == 0


def test_the_orphan_pass_keeps_attachments_objects(app: Flask) -> None:
    document = with_two_attachments(create_citizen())
    keys = attachment_keys(document)
    two_hours_ago = time.time() - 2 * 3600
    for key in keys:
        os.utime(local_object_path(app, key), (two_hours_ago, two_hours_ago))

    assert remove_orphan_objects() == 0
    assert set(keys) <= set(list_storage_keys())

    # Once no row names it, an old attachment object is an orphan like any other.
    db.session.execute(update(Attachment).values(storage_key=None))
    db.session.commit()
    assert remove_orphan_objects() == 2
