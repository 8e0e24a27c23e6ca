"""The /api/v1 blueprint and what every call goes through.

Before the view: the bearer token is checked (ebox.api.auth), then the sender's rate limit. The
token endpoint and the OpenAPI document are the only open doors. A refusal is answered as a
problem (ebox.api.problems); an authenticated sender's refusal is audited in a transaction of its
own, as SOAP's are. The view's own work commits with the request (ebox.web).
"""

from __future__ import annotations

import logging

from flask import Blueprint, Response, g, request
from limits import RateLimitItemPerMinute

from ebox import metrics, outages, rate_limits, transactions
from ebox.audit.services import Actor, record_event
from ebox.config import current_settings
from ebox.extensions import csrf
from ebox.request_log import note_sender
from ebox.soap import faults

from . import problems
from .auth import authenticate_call
from .problems import ApiProblem

log = logging.getLogger(__name__)

bp = Blueprint("api", __name__, url_prefix="/api/v1")
# Back offices send tokens, not cookies: there is no session for a forged request to ride on.
csrf.exempt(bp)

OPEN_ENDPOINTS = frozenset({"api.token", "api.openapi"})
RATE_LIMIT_PREFIX = "ebox-api"
# Audit actions of refused calls: a refused publication as on SOAP, any other refusal apart.
PUBLICATION_ENDPOINTS = frozenset({"api.publish_message"})


@bp.before_request
def authenticate() -> None:
    if request.endpoint in OPEN_ENDPOINTS:
        return
    sender = authenticate_call()
    note_sender(sender.id)
    take_from_budget(sender.id)


def take_from_budget(sender_id: int) -> None:
    """One call from the sender's budget per minute, or 429 with the seconds to wait."""
    limit = RateLimitItemPerMinute(current_settings().api_requests_per_minute)
    retry_after = rate_limits.take(limit, str(sender_id), key_prefix=RATE_LIMIT_PREFIX)
    if retry_after is not None:
        raise ApiProblem(
            429,
            problems.RATE_LIMITED,
            f"This sender made more than {limit.amount} calls in a minute; "
            f"try again in {retry_after} s.",
            headers={"Retry-After": str(retry_after)},
        )


@bp.errorhandler(ApiProblem)
def answer_problem(problem: ApiProblem) -> Response:
    transactions.rollback()
    _count(problem.code)
    _audit_refusal(problem)
    return problems.response(problem)


@bp.after_request
def count_and_close(response: Response) -> Response:
    if response.status_code < 400:
        _count("ok")
    # Answers name a sender's messages: no cache on the way may keep them.
    response.headers["Cache-Control"] = "no-store"
    return response


def _count(result: str) -> None:
    metrics.count_api(request.endpoint or "unknown", result)


def _audit_refusal(problem: ApiProblem) -> None:
    """A refusal of a known sender is audited, in a transaction of its own (the call's own work
    was rolled back). Not the rate limit's: auditing each refused call would let a sender that
    is over its budget write to the audit chain at any rate."""
    sender_id = g.get("api_sender_id")
    if sender_id is None or problem.code == problems.RATE_LIMITED:
        return
    publishes = request.endpoint in PUBLICATION_ENDPOINTS
    try:
        record_event(
            Actor("sender", str(sender_id)),
            faults.PUBLICATION_REFUSED if publishes else faults.REQUEST_REFUSED,
            "sender",
            sender_id,
            {"code": problem.code, "operation": f"{request.method} {request.path}"[:200]},
        )
        transactions.commit()
    except Exception as error:
        transactions.rollback()
        down = outages.unavailable(error)
        if down is None:
            log.exception("could not audit a refused API call of sender %s", sender_id)
        else:
            log.warning(
                "could not audit a refused API call of sender %s: %s cannot be reached",
                sender_id,
                down,
            )


# The views: imported last, as they attach their routes to bp.
from . import citizens, events, evidence, messages, publication, views  # noqa: E402, F401
