"""The open doors of the API: the token endpoint and the OpenAPI document."""

from __future__ import annotations

import json

from flask import Response, jsonify, request

from ebox.audit.services import Actor, record_event
from ebox.config import current_settings
from ebox.db_types import utcnow

from . import problems, tokens
from .auth import authenticate_client
from .blueprint import bp, take_from_budget
from .openapi import document
from .problems import ApiProblem

MAX_TOKEN_REQUEST_BYTES = 32 * 1024


@bp.post("/token")
def token() -> Response:
    """Client credentials with private_key_jwt: a signed assertion in, an access token out."""
    if request.mimetype != "application/x-www-form-urlencoded":
        raise ApiProblem(
            415,
            problems.UNSUPPORTED_MEDIA_TYPE,
            "The token request must be application/x-www-form-urlencoded (RFC 6749 §4.4).",
        )
    if (request.content_length or 0) > MAX_TOKEN_REQUEST_BYTES:
        raise ApiProblem(413, "REQUEST_TOO_LARGE", "The token request is larger than 32 kB.")
    now = utcnow()
    client = authenticate_client(request.form.to_dict(), now=now)
    sender = client.sender
    take_from_budget(sender.id)
    value, lifetime = tokens.issue(
        current_settings(),
        sender_id=sender.id,
        certificate_sha256=client.signer.certificate.fingerprint_sha256,
        now=now,
    )
    record_event(
        Actor("sender", str(sender.id)),
        "api.token_issued",
        "sender",
        sender.id,
        {"certificate": client.signer.certificate.fingerprint_sha256[:16]},
    )
    answer = jsonify(access_token=value, token_type="Bearer", expires_in=lifetime)  # noqa: S106
    answer.headers["Pragma"] = "no-cache"
    return answer


@bp.get("/openapi.json")
def openapi() -> Response:
    body = json.dumps(document(current_settings().public_url), indent=1)
    return Response(body, content_type="application/json")
