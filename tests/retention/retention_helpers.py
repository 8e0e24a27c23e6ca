"""Expired documents, and what is left of them after the purge."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from ebox.db_types import utcnow
from ebox.extensions import db
from ebox.mailbox.models import Document
from tests.factories import create_document


def expired_document(citizen: Any, title: str = "Expired letter") -> Document:
    document = create_document(citizen, title=title)
    document.expires_at = utcnow() - timedelta(minutes=1)
    db.session.commit()
    return document


def expire(*documents: Document) -> None:
    """Bring the documents' expiry to a minute ago: the purge runs now, never in the future."""
    for document in documents:
        document.expires_at = utcnow() - timedelta(minutes=1)
    db.session.commit()


def assert_minimal_record(document: Document) -> None:
    db.session.refresh(document)
    assert document.deleted_at is not None
    assert (document.title, document.body_text, document.file_name) == (None, None, None)
    assert (document.content_key, document.content_key_id, document.storage_key) == (
        None,
        None,
        None,
    )
    # What status queries need stays: who, to whom, which message, when.
    assert document.sender_ticket and document.recipient_national_number
    assert document.published_at and document.expires_at
