"""A message's attachments: the files a sender adds after the main document (decision 0027).

ebox.mailbox.publication checks them with the message, before anything is stored, and stores
them once the message's row is in; a refusal stores nothing. Each is encrypted under its own
key like a document's content, and its stored object goes if the transaction rolls back.
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, cast

from sqlalchemy import Table, insert
from sqlalchemy.orm.attributes import set_committed_value

from ebox.config import Settings
from ebox.extensions import db
from ebox.mailbox.content_rules import (
    ATTACHMENT_MEDIA_TYPES,
    ATTACHMENT_TYPE_REFUSED,
    DOCUMENT_TOO_LARGE,
    INVALID_FIELD,
    MESSAGE_TOO_LARGE,
    TOO_MANY_ATTACHMENTS,
    Digest,
    PublicationRefused,
    check_digest,
    is_of_media_type,
    is_safe_file_name,
    sha256_hex,
)
from ebox.mailbox.models import Attachment, Document
from ebox.storage.services import StoredContent, delete_content, store_content
from ebox.transactions import after_rollback

MAX_ATTACHMENTS = 10
_attachments = cast(Table, Attachment.__table__)


@dataclass(frozen=True)
class SubmittedAttachment:
    """One attachment as a sender submits it; digest, when given, is checked like the main
    document's."""

    file_name: str
    media_type: str
    content: bytes
    digest: Digest | None = None


@dataclass(frozen=True)
class CheckedAttachment:
    """An attachment that passed every rule: its normalised media type and SHA-256 (hex)."""

    file_name: str
    media_type: str
    content: bytes
    sha256: str

    @property
    def identity(self) -> tuple[str | None, str, str]:
        """What a retry of the same MessageID must repeat."""
        return (self.file_name, self.media_type, self.sha256)


def check_attachments(
    attachments: Sequence[SubmittedAttachment], *, main_size: int, settings: Settings
) -> list[CheckedAttachment]:
    """Every rule on the attachments, the cheapest first, raising PublicationRefused."""
    if len(attachments) > MAX_ATTACHMENTS:
        raise PublicationRefused(
            TOO_MANY_ATTACHMENTS, f"A message has at most {MAX_ATTACHMENTS} attachments."
        )
    total = main_size + sum(len(attachment.content) for attachment in attachments)
    if total > settings.max_message_bytes:
        raise PublicationRefused(
            MESSAGE_TOO_LARGE,
            f"The documents of a message may total at most {settings.max_message_bytes} bytes.",
        )
    return [
        _checked(attachment, position, settings)
        for position, attachment in enumerate(attachments, start=1)
    ]


def _checked(
    attachment: SubmittedAttachment, position: int, settings: Settings
) -> CheckedAttachment:
    what = f"attachment {position}"
    if not is_safe_file_name(attachment.file_name):
        raise PublicationRefused(
            INVALID_FIELD,
            f"The file name of {what} must have 1 to 255 characters, without a path separator "
            "or a control character.",
        )
    if len(attachment.content) > settings.max_document_bytes:
        raise PublicationRefused(
            DOCUMENT_TOO_LARGE,
            f"{what.capitalize()} is larger than the {settings.max_document_bytes} bytes accepted.",
        )
    if attachment.digest is not None:
        check_digest(attachment.content, attachment.digest, what=what)
    media_type = normalised_media_type(attachment.media_type)
    if media_type not in ATTACHMENT_MEDIA_TYPES:
        raise PublicationRefused(
            ATTACHMENT_TYPE_REFUSED,
            f"The type of {what} must be one of {', '.join(ATTACHMENT_MEDIA_TYPES)}.",
        )
    if not is_of_media_type(attachment.content, media_type):
        raise PublicationRefused(
            ATTACHMENT_TYPE_REFUSED, f"The content of {what} is not {media_type}."
        )
    sha256 = sha256_hex(attachment.content, attachment.digest)
    return CheckedAttachment(attachment.file_name, media_type, attachment.content, sha256)


def normalised_media_type(media_type: str) -> str:
    """The type without its parameters, in lower case: "text/csv; charset=utf-8" is text/csv."""
    return media_type.split(";", 1)[0].strip().lower()


def store_attachments(document: Document, checked: Sequence[CheckedAttachment]) -> None:
    """Store each attachment encrypted and record it with the new document. Flushes."""
    rows = [
        _attachment_values(document.id, position, attachment)
        for position, attachment in enumerate(checked, start=1)
    ]
    if rows:
        db.session.execute(insert(_attachments), rows)
    # The document knows its attachments without asking the database again (the evidence
    # sealed next reads them).
    set_committed_value(document, "attachments", [Attachment(**row) for row in rows])


def same_attachments(document: Document, checked: Sequence[CheckedAttachment]) -> bool:
    """A retry names the same attachments, in the same order, with the same content."""
    existing = [(row.file_name, row.media_type, row.sha256) for row in document.attachments]
    return existing == [attachment.identity for attachment in checked]


def store_for_transaction(data: bytes) -> StoredContent:
    """Store content encrypted; if the transaction does not commit, the object goes too."""
    stored = store_content(data)
    after_rollback(lambda: delete_content(stored.storage_key))
    return stored


def _attachment_values(
    document_id: uuid.UUID, position: int, attachment: CheckedAttachment
) -> dict[str, Any]:
    stored = store_for_transaction(attachment.content)
    return {
        "id": uuid.uuid4(),
        "document_id": document_id,
        "position": position,
        "file_name": attachment.file_name,
        "media_type": attachment.media_type,
        "size_bytes": stored.size_bytes,
        "sha256": stored.sha256,
        "storage_key": stored.storage_key,
        "content_key": stored.content_key,
        "content_key_id": stored.content_key_id,
    }
