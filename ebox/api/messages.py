"""A sender's messages over REST: publication, status, search, evidence and proofs.

Only the sender's own messages are ever found: another sender's id is answered exactly like one
that does not exist (404 MESSAGE_NOT_FOUND).
"""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

from flask import Response, jsonify
from sqlalchemy import select

from ebox.db_types import utcnow
from ebox.extensions import db
from ebox.mailbox.models import Document
from ebox.senders.models import Sender
from ebox.soap import faults

from .auth import current_sender
from .blueprint import bp
from .problems import ApiProblem


@bp.get("/messages/<message_id>")
def get_message(message_id: str) -> Response:
    sender = current_sender()
    return jsonify(message_status(own_message(sender, message_id), now=utcnow()))


def own_message(sender: Sender, message_id: str) -> Document:
    """The sender's message with this id, or 404: a stranger's looks like a missing one."""
    try:
        document_id = uuid.UUID(message_id)
    except ValueError:
        document_id = None
    document = None
    if document_id is not None:
        document = db.session.scalar(
            select(Document).where(Document.id == document_id, Document.sender_id == sender.id)
        )
    if document is None:
        raise ApiProblem(
            404,
            faults.MESSAGE_NOT_FOUND,
            f"This sender has no message with id {message_id[:64]!r}.",
        )
    return document


def message_status(document: Document, *, now: datetime) -> dict[str, Any]:
    """What a sender may know of its message: never more than SOAP's getMessageStatus tells."""
    deleted_at = document.deleted_at or (
        document.expires_at if document.expires_at <= now else None
    )
    if deleted_at is not None:
        status = "deleted"
    elif document.read_at is not None:
        status = "read"
    else:
        status = "published"
    return {
        "id": str(document.id),
        "reference": {"ticket": document.sender_ticket, "sequence": document.sender_sequence},
        "status": status,
        "registered": document.is_registered,
        "publishedAt": _moment(document.published_at),
        "readAt": _moment(document.read_at),
        "expiresAt": _moment(document.expires_at),
        "deletedAt": _moment(deleted_at),
    }


def _moment(moment: datetime | None) -> str | None:
    return None if moment is None else moment.isoformat(timespec="seconds").replace("+00:00", "Z")
