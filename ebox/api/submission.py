"""Reading a publication request: a multipart/form-data body with a `message` part (JSON) and one
`documents` part per document the message lists, in the same order.

The body is read whole within its limit before anything parses it; every part's bytes are taken
as they came (ebox.api.multipart), whether or not the part names a file. Whatever does not
have the documented shape is refused with INVALID_REQUEST naming the field; the publication's own
rules (ebox.mailbox.publication) judge the values.
"""

from __future__ import annotations

import hashlib
import json
import re
from dataclasses import dataclass
from datetime import date
from typing import Any

from flask import request
from werkzeug.exceptions import ClientDisconnected, RequestEntityTooLarge
from werkzeug.http import parse_options_header

from ebox.config import Settings
from ebox.mailbox.content_rules import (
    INVALID_FIELD,
    NOT_A_PDF,
    PDF,
    is_safe_file_name,
)
from ebox.soap import faults

from . import multipart, problems
from .problems import ApiProblem

PUBLISH_PATH = "/api/v1/messages"
# Room for the message part, the part headers and the boundaries beside the documents.
MULTIPART_MARGIN = 1024 * 1024
MAX_BODY_TEXT = 20000
MAX_MESSAGE_TYPE = 50
_MESSAGE_MEMBERS = frozenset(
    {
        "recipient",
        "messageType",
        "language",
        "title",
        "bodyText",
        "expiresOn",
        "registered",
        "reference",
        "documents",
    }
)
_REQUIRED_MEMBERS = ("recipient", "messageType", "language", "title", "reference", "documents")
_SHA256 = re.compile(r"[0-9a-fA-F]{64}")
_DAY = re.compile(r"\d{4}-\d{2}-\d{2}")
_IDEMPOTENCY_KEY = re.compile(r"[\x20-\x7e]{1,255}")


def max_body_bytes(settings: Settings) -> int:
    """The largest publication request read: the largest message and the multipart around it."""
    return settings.max_message_bytes + MULTIPART_MARGIN


@dataclass(frozen=True)
class SubmittedFile:
    file_name: str
    media_type: str
    sha256: bytes  # as the sender declared it; the publication checks it against content
    content: bytes


@dataclass(frozen=True)
class Submission:
    """A publication request of the documented shape (its values not yet judged)."""

    recipient: str
    message_type: str
    language: str
    title: str
    body_text: str | None
    expires_on: date | None
    registered: bool
    ticket: str
    sequence: int | None
    files: list[SubmittedFile]
    fingerprint: str  # what an Idempotency-Key's second use must repeat


def idempotency_key() -> str:
    key = request.headers.get("Idempotency-Key")
    if key is None or not _IDEMPOTENCY_KEY.fullmatch(key):
        raise _invalid(
            "The header Idempotency-Key is required: 1 to 255 printable ASCII characters, "
            "new for each message (a UUID will do)."
        )
    return key


def read_submission(settings: Settings) -> Submission:
    parts = _parts(_body(max_body_bytes(settings)))
    messages = parts.pop("message", [])
    documents = parts.pop("documents", [])
    if parts:
        raise _invalid(f"Unknown part {sorted(parts)[0]!r}: only message and documents.")
    if len(messages) != 1:
        raise _invalid("The body needs exactly one part named message (application/json).")
    message = _json_object(messages[0])
    listed = _documents(message)
    if len(documents) != len(listed):
        raise _invalid(
            f"message.documents lists {len(listed)} document(s) but the body has "
            f"{len(documents)} part(s) named documents; send one per entry, in the same order."
        )
    files = [
        SubmittedFile(name, media_type, bytes.fromhex(sha256), content)
        for (name, media_type, sha256), content in zip(listed, documents, strict=True)
    ]
    _check_main_document(files[0])
    return _submission(message, files)


# --- the body and its parts -------------------------------------------------------------------


def _body(limit: int) -> bytes:
    """The whole body, never more than limit bytes (a chunked one was counted on arrival)."""
    if request.mimetype != "multipart/form-data":
        raise ApiProblem(
            415,
            problems.UNSUPPORTED_MEDIA_TYPE,
            "A publication is multipart/form-data: a message part and its documents parts.",
        )
    too_large = ApiProblem(
        413, faults.REQUEST_TOO_LARGE, f"The request is larger than the {limit} bytes accepted."
    )
    if (request.content_length or 0) > limit:
        raise too_large
    request.max_content_length = limit
    try:
        return request.get_data(cache=False)
    except RequestEntityTooLarge:
        raise too_large from None
    except ClientDisconnected:
        raise _invalid("The request body was not received whole.") from None


def _parts(body: bytes) -> dict[str, list[bytes]]:
    """Each part's bytes by part name, in order; a malformed body is INVALID_REQUEST."""
    _, options = parse_options_header(request.headers.get("Content-Type", ""))
    boundary = options.get("boundary", "")
    if not boundary:
        raise _invalid("The multipart/form-data content type needs a boundary.")
    try:
        return multipart.parts(body, boundary.encode("latin-1", "replace"))
    except multipart.MalformedBody as malformed:
        raise _invalid(f"The multipart/form-data body is malformed: {malformed}") from None


def _json_object(data: bytes) -> dict[str, Any]:
    try:
        message = json.loads(data)
    except (ValueError, UnicodeDecodeError, RecursionError):  # too deep: [[[[...
        raise _invalid("The message part is not valid JSON.") from None
    if not isinstance(message, dict):
        raise _invalid("The message part must be a JSON object.")
    problems.refuse_unstorable_text(message, "The message part")
    unknown = sorted(set(message) - _MESSAGE_MEMBERS)
    if unknown:
        raise _invalid(f"message has an unknown member {unknown[0]!r}.")
    missing = [member for member in _REQUIRED_MEMBERS if member not in message]
    if missing:
        raise _invalid(f"message.{missing[0]} is required.")
    return message


def _documents(message: dict[str, Any]) -> list[tuple[str, str, str]]:
    listed = message["documents"]
    # More than 11 is the publication's TOO_MANY_ATTACHMENTS; the body's limit bounds them.
    if not isinstance(listed, list) or not listed:
        raise _invalid(
            "message.documents must be an array: the main PDF, then at most 10 attachments."
        )
    return [_document(entry, f"message.documents[{i}]") for i, entry in enumerate(listed)]


def _document(entry: object, where: str) -> tuple[str, str, str]:
    if not isinstance(entry, dict) or set(entry) != {"fileName", "mediaType", "sha256"}:
        raise _invalid(f"{where} must be an object with fileName, mediaType and sha256 only.")
    name, media_type, sha256 = entry["fileName"], entry["mediaType"], entry["sha256"]
    if not isinstance(name, str) or not isinstance(media_type, str):
        raise _invalid(f"{where}.fileName and {where}.mediaType must be strings.")
    if not isinstance(sha256, str) or not _SHA256.fullmatch(sha256):
        raise _invalid(f"{where}.sha256 must be the SHA-256 of the part in 64 hex digits.")
    return name, media_type, sha256.lower()


def _check_main_document(main: SubmittedFile) -> None:
    if main.media_type.split(";")[0].strip().lower() != PDF:
        raise ApiProblem(
            400, NOT_A_PDF, "message.documents[0], the main document, must be application/pdf."
        )
    if not is_safe_file_name(main.file_name):
        raise ApiProblem(
            400,
            INVALID_FIELD,
            "message.documents[0].fileName must have 1 to 255 characters, without a path "
            "separator or a control character.",
        )


# --- the message's fields ---------------------------------------------------------------------


def _submission(message: dict[str, Any], files: list[SubmittedFile]) -> Submission:
    ticket, sequence = _reference(message["reference"])
    fields = {
        "recipient": _string(message, "recipient"),
        "messageType": _string(message, "messageType", MAX_MESSAGE_TYPE),
        "language": _string(message, "language"),
        "title": _string(message, "title"),
        "bodyText": _optional_string(message, "bodyText"),
        "expiresOn": _optional_string(message, "expiresOn"),
        "registered": message.get("registered", False),
        "reference": {"ticket": ticket, "sequence": sequence},
    }
    if not isinstance(fields["registered"], bool):
        raise _invalid("message.registered must be true or false.")
    body_text = fields["bodyText"]
    if body_text is not None and len(body_text) > MAX_BODY_TEXT:
        raise ApiProblem(400, INVALID_FIELD, "message.bodyText may have at most 20000 characters.")
    return Submission(
        recipient=fields["recipient"],
        message_type=fields["messageType"],
        language=fields["language"],
        title=fields["title"],
        body_text=body_text or None,
        expires_on=_day(fields["expiresOn"]),
        registered=fields["registered"],
        ticket=ticket,
        sequence=sequence,
        files=files,
        fingerprint=_fingerprint(fields, files),
    )


def _string(message: dict[str, Any], member: str, max_length: int | None = None) -> str:
    value = message[member]
    if not isinstance(value, str) or (max_length is not None and len(value) > max_length):
        bound = "" if max_length is None else f" of at most {max_length} characters"
        raise _invalid(f"message.{member} must be a string{bound}.")
    return value


def _optional_string(message: dict[str, Any], member: str) -> str | None:
    if message.get(member) is None:
        return None
    return _string(message, member)


def _reference(reference: object) -> tuple[str, int | None]:
    if not isinstance(reference, dict) or not {"ticket"} <= set(reference) <= {
        "ticket",
        "sequence",
    }:
        raise _invalid("message.reference must be an object with ticket and optional sequence.")
    ticket, sequence = reference["ticket"], reference.get("sequence")
    if not isinstance(ticket, str):
        raise _invalid("message.reference.ticket must be a string.")
    if sequence is not None and (not isinstance(sequence, int) or isinstance(sequence, bool)):
        raise _invalid("message.reference.sequence must be an integer or null.")
    return ticket, sequence


def _day(value: str | None) -> date | None:
    if value is None:
        return None
    try:
        if not _DAY.fullmatch(value):
            raise ValueError(value)
        return date.fromisoformat(value)
    except ValueError:
        raise _invalid("message.expiresOn must be a date, YYYY-MM-DD.") from None


def _fingerprint(fields: dict[str, Any], files: list[SubmittedFile]) -> str:
    """SHA-256 over the message as understood (defaults filled in, members sorted) and each
    document's name, type and the SHA-256 of the bytes received."""
    canonical = {
        **fields,
        "documents": [
            [file.file_name, file.media_type, hashlib.sha256(file.content).hexdigest()]
            for file in files
        ],
    }
    encoded = json.dumps(canonical, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    return hashlib.sha256(encoded.encode()).hexdigest()


def _invalid(detail: str) -> ApiProblem:
    return ApiProblem(400, problems.INVALID_REQUEST, detail)
