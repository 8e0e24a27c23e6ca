"""A sender's messages over REST: status, search, and what a message's answer says.

Only the sender's own messages are ever found: another sender's id is answered exactly like one
that does not exist (404 MESSAGE_NOT_FOUND). Publication is ebox.api.publication's, evidence
and proofs ebox.api.evidence's.
"""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

from flask import Response, jsonify
from sqlalchemy import select

from ebox.db_types import utcnow
from ebox.evidence.services import event_chains
from ebox.extensions import db
from ebox.mailbox.models import Document
from ebox.mailbox.sender_messages import MessageQuery, match, own_documents
from ebox.senders.models import Sender
from ebox.soap import faults

from . import problems
from .auth import current_sender
from .blueprint import bp
from .problems import ApiProblem, json_body

MAX_SEARCH_QUERIES = 250


@bp.get("/messages/<message_id>")
def get_message(message_id: str) -> Response:
    sender = current_sender()
    return jsonify(message_details(own_message(sender, message_id), now=utcnow()))


@bp.post("/messages:search")
def search_messages() -> Response:
    """Up to 250 of the sender's messages by id or by reference, answered in the order asked."""
    asked = _search_request(json_body())
    documents = own_documents(current_sender(), [query for _, query in asked])
    now = utcnow()
    answers = []
    for echo, query in asked:
        document = match(query, documents)
        answers.append(
            {
                "query": echo,
                "found": document is not None,
                "message": None if document is None else message_status(document, now=now),
            }
        )
    return jsonify(messages=answers)


def own_message(sender: Sender, message_id: str) -> Document:
    """The sender's message with this id, or 404: a stranger's looks like a missing one."""
    document_id = _uuid(message_id)
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
    deleted_at = _deleted_at(document, now)
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
        "publishedAt": moment(document.published_at),
        "readAt": moment(document.read_at),
        "expiresAt": moment(document.expires_at),
        "deletedAt": moment(deleted_at),
    }


def message_details(document: Document, *, now: datetime) -> dict[str, Any]:
    """The status, the documents (none once deleted) and a registered message's evidence."""
    details = message_status(document, now=now)
    details["documents"] = [] if details["status"] == "deleted" else _documents(document)
    chain = event_chains([document.id]).get(document.id, []) if document.is_registered else []
    details["evidence"] = [
        {"id": str(item.id), "type": item.event, "at": moment(item.event_at)} for item in chain
    ]
    return details


def _documents(document: Document) -> list[dict[str, Any]]:
    main = (document.file_name, document.media_type, document.size_bytes, document.sha256)
    files = [main] + [
        (item.file_name, item.media_type, item.size_bytes, item.sha256)
        for item in document.attachments
    ]
    return [
        {"fileName": name, "mediaType": media_type, "sizeBytes": size, "sha256": sha256}
        for name, media_type, size, sha256 in files
    ]


def _deleted_at(document: Document, now: datetime) -> datetime | None:
    return document.deleted_at or (document.expires_at if document.expires_at <= now else None)


def moment(value: datetime | None) -> str | None:
    return None if value is None else value.isoformat(timespec="seconds").replace("+00:00", "Z")


def _uuid(value: str) -> uuid.UUID | None:
    try:
        return uuid.UUID(value)
    except ValueError:
        return None


# --- the search request -------------------------------------------------------------------


def _search_request(body: object) -> list[tuple[dict[str, Any], MessageQuery]]:
    if not isinstance(body, dict) or not set(body) <= {"ids", "references"}:
        raise _invalid("The body must be an object with ids and/or references only.")
    ids, references = body.get("ids", []), body.get("references", [])
    if not isinstance(ids, list) or not isinstance(references, list):
        raise _invalid("ids and references must be arrays.")
    if len(ids) + len(references) > MAX_SEARCH_QUERIES:
        raise ApiProblem(
            400,
            faults.TOO_MANY_IDS,
            f"At most {MAX_SEARCH_QUERIES} ids and references in all; split the search.",
        )
    asked = [_by_id(value, f"ids[{i}]") for i, value in enumerate(ids)]
    asked += [_by_reference(value, f"references[{i}]") for i, value in enumerate(references)]
    return asked


def _by_id(value: object, where: str) -> tuple[dict[str, Any], MessageQuery]:
    if not isinstance(value, str):
        raise _invalid(f"{where} must be a string.")
    # Not an id eBox gives: asked for, but not found.
    return {"id": value}, MessageQuery(_uuid(value) or uuid.UUID(int=0), None, None)


def _by_reference(value: object, where: str) -> tuple[dict[str, Any], MessageQuery]:
    if not isinstance(value, dict) or not {"ticket"} <= set(value) <= {"ticket", "sequence"}:
        raise _invalid(f"{where} must be an object with ticket and optional sequence.")
    ticket, sequence = value["ticket"], value.get("sequence")
    if not isinstance(ticket, str) or not 1 <= len(ticket) <= 25:
        raise _invalid(f"{where}.ticket must be a string of 1 to 25 characters.")
    if sequence is not None and (
        not isinstance(sequence, int) or isinstance(sequence, bool) or not 0 <= sequence <= 99999
    ):
        raise _invalid(f"{where}.sequence must be an integer from 0 to 99999, or null.")
    echo = {"reference": {"ticket": ticket, "sequence": sequence}}
    return echo, MessageQuery(None, ticket, sequence)


def _invalid(detail: str) -> ApiProblem:
    return ApiProblem(400, problems.INVALID_REQUEST, detail)
