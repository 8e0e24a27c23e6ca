"""Errors of the REST API as problem details (RFC 9457, application/problem+json).

Each problem carries, beside the status, a business `code`: the same code a SOAP Fault would
carry for the same refusal (ebox.soap.faults), so that a back office moving from SOAP to REST
keeps its error handling. `detail` says, in English, what was wrong with this request.
"""

from __future__ import annotations

import json
import logging
import re
from typing import Any

from flask import Response, request
from werkzeug.exceptions import HTTPException

from ebox import outages
from ebox.mailbox import content_rules
from ebox.soap import faults

log = logging.getLogger(__name__)

CONTENT_TYPE = "application/problem+json"
TYPE_PREFIX = "urn:ebox:problem:"

# Codes of the REST API alone (the others are the SOAP Faults').
INVALID_REQUEST = "INVALID_REQUEST"  # not JSON, not the documented shape, a missing header
NOT_FOUND = "NOT_FOUND"
METHOD_NOT_ALLOWED = "METHOD_NOT_ALLOWED"
UNSUPPORTED_MEDIA_TYPE = "UNSUPPORTED_MEDIA_TYPE"
TOKEN_MISSING = "TOKEN_MISSING"  # noqa: S105 (a code, not a secret)
TOKEN_INVALID = "TOKEN_INVALID"  # noqa: S105 — unknown, altered or expired: ask for a new one
ASSERTION_INVALID = "ASSERTION_INVALID"  # the client assertion is not a usable signed JWT
AUDIENCE_INVALID = "AUDIENCE_INVALID"
CLIENT_MISMATCH = "CLIENT_MISMATCH"  # iss/sub are not the enterprise number of the key's sender
GRANT_TYPE_UNSUPPORTED = "GRANT_TYPE_UNSUPPORTED"
RATE_LIMITED = "RATE_LIMITED"
IDEMPOTENCY_KEY_REUSED = "IDEMPOTENCY_KEY_REUSED"  # the same key with another request

_TITLES = {
    400: "Bad Request",
    401: "Unauthorized",
    403: "Forbidden",
    404: "Not Found",
    405: "Method Not Allowed",
    409: "Conflict",
    413: "Content Too Large",
    415: "Unsupported Media Type",
    422: "Unprocessable Content",
    429: "Too Many Requests",
    500: "Internal Server Error",
    503: "Service Unavailable",
}


class ApiProblem(Exception):
    """Raised anywhere in the API; the blueprint answers it as a problem. Nothing is committed."""

    def __init__(
        self,
        status: int,
        code: str,
        detail: str,
        *,
        headers: dict[str, str] | None = None,
        extra: dict[str, Any] | None = None,
    ) -> None:
        super().__init__(detail)
        self.status = status
        self.code = code
        self.detail = detail
        self.headers = headers or {}
        self.extra = extra or {}


def from_fault(fault: faults.SoapFault, status: int | None = None) -> ApiProblem:
    """The problem for a refusal the SOAP layer would answer with this Fault."""
    return ApiProblem(status or status_of(fault.code), fault.code, fault.message)


# Business codes that are not 400: the request may be right, the state of things is not.
_STATUS_OF_CODE = {
    faults.SECURITY_HEADER_MISSING: 401,
    faults.SIGNATURE_INVALID: 401,
    faults.SIGNATURE_ALGORITHM_REFUSED: 401,
    faults.TIMESTAMP_INVALID: 401,
    faults.REPLAY: 401,
    faults.CERTIFICATE_UNKNOWN: 401,
    faults.CERTIFICATE_REVOKED: 401,
    faults.CERTIFICATE_EXPIRED: 401,
    faults.SENDER_SUSPENDED: 403,
    faults.REGISTERED_MAIL_NOT_ALLOWED: 403,
    faults.MESSAGE_NOT_FOUND: 404,
    faults.DUPLICATE_MESSAGE_ID: 409,
    faults.DOCUMENT_TOO_LARGE: 413,
    content_rules.MESSAGE_TOO_LARGE: 413,
    faults.REQUEST_TOO_LARGE: 413,
    faults.PROOF_NOT_READY: 409,
    faults.SERVICE_UNAVAILABLE: 503,
    faults.INTERNAL_ERROR: 500,
    TOKEN_MISSING: 401,
    TOKEN_INVALID: 401,
    ASSERTION_INVALID: 401,
    AUDIENCE_INVALID: 401,
    CLIENT_MISMATCH: 401,
    NOT_FOUND: 404,
    METHOD_NOT_ALLOWED: 405,
    UNSUPPORTED_MEDIA_TYPE: 415,
    RATE_LIMITED: 429,
    IDEMPOTENCY_KEY_REUSED: 409,
}


def status_of(code: str) -> int:
    return _STATUS_OF_CODE.get(code, 400)


def response(problem: ApiProblem) -> Response:
    body: dict[str, Any] = {
        "type": TYPE_PREFIX + problem.code,
        "title": _TITLES.get(problem.status, "Error"),
        "status": problem.status,
        "detail": problem.detail,
        "code": problem.code,
        "instance": request.path,
    }
    body.update(problem.extra)
    answer = Response(json.dumps(body), status=problem.status, content_type=CONTENT_TYPE)
    for name, value in problem.headers.items():
        answer.headers[name] = value
    if problem.status == 401 and "WWW-Authenticate" not in answer.headers:
        answer.headers["WWW-Authenticate"] = 'Bearer realm="ebox"'
    return answer


def json_body(*, max_bytes: int = 256 * 1024) -> Any:
    """The request's JSON document, or a 400/415 problem saying why it cannot be read."""
    if not request.mimetype or request.mimetype != "application/json":
        raise ApiProblem(415, UNSUPPORTED_MEDIA_TYPE, "The request body must be application/json.")
    data = request.get_data(cache=True)
    if len(data) > max_bytes:
        raise ApiProblem(
            413, faults.REQUEST_TOO_LARGE, f"The body is larger than {max_bytes} bytes."
        )
    try:
        body = json.loads(data)
    except (ValueError, UnicodeDecodeError, RecursionError):  # too deep: [[[[...
        raise ApiProblem(400, INVALID_REQUEST, "The request body is not valid JSON.") from None
    refuse_unstorable_text(body, "The request body")
    return body


# A NUL character, or half of a UTF-16 surrogate pair (json.loads joins whole pairs).
_UNSTORABLE = re.compile("[\x00\ud800-\udfff]")


def refuse_unstorable_text(value: Any, what: str) -> None:
    """400 if value holds text no database column can keep: PostgreSQL refuses NUL characters,
    and half a surrogate pair is no UTF-8 at all. Refused here rather than answered with a 500
    where the text meets the database."""
    if _has_unstorable_text(value):
        raise ApiProblem(
            400,
            INVALID_REQUEST,
            f"{what} has text with a NUL character or half a surrogate pair.",
        )


def _has_unstorable_text(value: Any) -> bool:
    if isinstance(value, str):
        return _UNSTORABLE.search(value) is not None
    if isinstance(value, list):
        return any(_has_unstorable_text(item) for item in value)
    if isinstance(value, dict):
        return any(_has_unstorable_text(k) or _has_unstorable_text(v) for k, v in value.items())
    return False


# --- errors met outside the API's own code (routing, the body's size, outages) ------------


def is_api_request() -> bool:
    return request.path.startswith("/api/")


_HTTP_CODES = {
    404: (NOT_FOUND, "There is no such endpoint; see /api/v1/openapi.json."),
    405: (METHOD_NOT_ALLOWED, "This endpoint does not take this method."),
    413: (faults.REQUEST_TOO_LARGE, "The request body is larger than accepted."),
    415: (UNSUPPORTED_MEDIA_TYPE, "The request body's content type is not accepted here."),
}


def for_http_error(error: HTTPException) -> Response:
    """An HTTP error werkzeug raised (no route, wrong method, body too large) as a problem."""
    status = error.code or 500
    code, detail = _HTTP_CODES.get(status, (INVALID_REQUEST, error.description or "Bad request."))
    answer = response(ApiProblem(status, code, detail))
    if status == 405 and error.get_response().headers.get("Allow"):
        answer.headers["Allow"] = error.get_response().headers["Allow"]
    return answer


def for_unexpected_error(down: str | None, error: Exception) -> Response:
    if down is not None:
        return unavailable(down, error)
    log.exception("unhandled error on %s %s", request.method, request.path)
    return response(
        ApiProblem(500, faults.INTERNAL_ERROR, "An internal error occurred; try again later.")
    )


def unavailable(down: str, error: Exception) -> Response:
    """503 SERVICE_UNAVAILABLE for an outage of the database or Redis: one warning line."""
    outages.warn_request_answered_unavailable(log, down, error)
    return response(
        ApiProblem(
            503,
            faults.SERVICE_UNAVAILABLE,
            "The service is temporarily unavailable; nothing was done. Try again later.",
            headers={"Retry-After": "30"},
        )
    )
