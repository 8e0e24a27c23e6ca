"""Attachments hold data keys like documents: the rotation re-wraps them, the start-up check
and `ebox keys verify` know them, and the stored objects are never touched."""

from __future__ import annotations

import hashlib

import pytest
from flask import Flask
from sqlalchemy import select

from ebox.errors import ConfigError
from ebox.extensions import db
from ebox.mailbox.models import Attachment
from ebox.mailbox.publication import SubmittedAttachment
from ebox.storage.rotation import check_documents_keys_configured, rotate, verify_sample
from ebox.storage.services import open_content
from tests.factories import create_citizen, create_document, make_png
from tests.storage.helpers import changed_settings
from tests.storage.test_key_rotation import BOTH_KEYS, ONLY_NEW_KEY, _objects_digest

NOTES = b"Read me first.\n"


def attachments_decrypt() -> list[str]:
    """Each attachment's content, checked against its SHA-256; returns their master key ids."""
    key_ids = []
    for row in db.session.scalars(select(Attachment)):
        assert row.storage_key and row.content_key and row.content_key_id
        with open_content(
            storage_key=row.storage_key,
            content_key=row.content_key,
            content_key_id=row.content_key_id,
        ) as content:
            assert hashlib.sha256(content.read()).hexdigest() == row.sha256
        key_ids.append(row.content_key_id)
    return key_ids


def test_a_rotation_rewraps_attachments_keys_without_touching_their_objects(
    app: Flask,
) -> None:
    attachments = [
        SubmittedAttachment("plan.png", "image/png", make_png()),
        SubmittedAttachment("notes.txt", "text/plain", NOTES),
    ]
    create_document(create_citizen(), attachments=attachments)  # under k1, the default key
    objects = _objects_digest(app)
    with changed_settings(app, **ONLY_NEW_KEY) as only_new:
        with pytest.raises(ConfigError, match="master key 'k1'"):
            check_documents_keys_configured(only_new)

    with changed_settings(app, **BOTH_KEYS):
        assert verify_sample("k1").checked == 3  # the document and both attachments
        state = rotate("k2", batch_size=1)
    assert (state.total, state.rewrapped, state.failures) == (3, 3, [])
    assert _objects_digest(app) == objects

    db.session.expire_all()
    with changed_settings(app, **ONLY_NEW_KEY) as only_new:
        check_documents_keys_configured(only_new)
        assert attachments_decrypt() == ["k2", "k2"]
        report = verify_sample("k2")
    assert (report.checked, report.failures) == (3, [])


def test_keys_verify_reports_an_attachment_that_does_not_decrypt(app: Flask) -> None:
    document = create_document(
        create_citizen(), attachments=[SubmittedAttachment("n.txt", "text/plain", NOTES)]
    )
    [attachment] = document.attachments
    other = db.session.get(Attachment, attachment.id)
    assert other is not None
    other.sha256 = "0" * 64  # the recorded digest no longer matches what decrypts
    db.session.commit()

    report = verify_sample("k1")
    assert report.checked == 2
    assert [failure.document_id for failure in report.failures] == [attachment.id]
