"""Every request gets an id: the client's `X-Request-ID` when it is a plain token, else a new
one. It is answered in the response's `X-Request-ID`, put on every log line of the request
(and of the jobs it queues: ebox/jobs.py), and the request ends with one line that says how
long it took."""

from __future__ import annotations

import logging
import time

from flask import Flask, Response, g, request

from ebox import metrics
from ebox.log_config import (
    add_log_fields,
    new_request_id,
    pop_log_fields,
    push_log_fields,
    sane_request_id,
)

log = logging.getLogger("ebox.request")

HEADER = "X-Request-ID"
# What gunicorn's access log reads back from the request's environ (ebox/gunicorn_conf.py).
ENVIRON_REQUEST_ID = "ebox.request_id"
ENVIRON_SENDER_ID = "ebox.sender_id"
# Load balancers ask these every few seconds: their lines are DEBUG while they answer well.
_PROBES = ("/healthz", "/readyz")


def start_request() -> None:
    request_id = sane_request_id(request.headers.get(HEADER)) or new_request_id()
    g.request_id = request_id
    g.request_started = time.perf_counter()
    g.log_fields_token = push_log_fields(request_id=request_id)
    request.environ[ENVIRON_REQUEST_ID] = request_id


def note_sender(sender_id: int) -> None:
    """The SOAP sender whose signature was accepted: named on the rest of the request's lines."""
    add_log_fields(sender_id=sender_id)
    request.environ[ENVIRON_SENDER_ID] = sender_id


def finish_request(response: Response) -> Response:
    """Runs after every other after_request hook (it is registered first), so that it also
    marks the response one of them put in place (a 503 for an outage)."""
    request_id = g.get("request_id")
    if request_id is None:  # start_request did not run: an error before any hook
        request_id = new_request_id()
        request.environ[ENVIRON_REQUEST_ID] = request_id
    response.headers[HEADER] = request_id
    started = g.get("request_started")
    duration_ms = round((time.perf_counter() - started) * 1000, 1) if started else None
    if started:
        # By route (the endpoint's name), never by path: a path can name a document.
        metrics.observe_request(
            metrics.route_of_request(), time.perf_counter() - started, response.status_code
        )
    quiet = request.path in _PROBES and response.status_code < 400
    # The path without its query string: a citizen's search words never reach a log.
    log.log(
        logging.DEBUG if quiet else logging.INFO,
        "%s %s %s",
        request.method,
        request.path,
        response.status_code,
        extra={
            "event": "request.completed",
            "method": request.method,
            "path": request.path,
            "status": response.status_code,
            "duration_ms": duration_ms,
        },
    )
    return response


def end_request(_error: BaseException | None) -> None:
    token = g.pop("log_fields_token", None)
    if token is not None:
        pop_log_fields(token)
    g.pop("request_id", None)
    g.pop("request_started", None)


def init_app(app: Flask) -> None:
    """Before every other hook: the first before_request runs first, the first after_request
    last."""
    app.before_request(start_request)
    app.after_request(finish_request)
    app.teardown_request(end_request)
