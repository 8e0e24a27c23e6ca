"""PostgreSQL stopped (fast, or immediate as after a crash) and started again under eBox: a
PostgreSQL of the test's own (tests/postgres_server.py), never the machine's. While it is down a
SOAP request gets SERVICE_UNAVAILABLE, a page 503 and /readyz 503, each with one warning line
and no traceback; once it is back everything answers again, without a restart of eBox."""

from __future__ import annotations

import logging
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from typing import TypeVar

import pytest
from flask import Flask
from flask.testing import FlaskClient
from flask_migrate import upgrade
from lxml import etree
from sqlalchemy import text

from ebox import create_app
from ebox.extensions import db
from ebox.senders.models import Sender
from ebox.soap.xml import SOAP11_NS
from tests.conftest import make_settings
from tests.factories import create_citizen, create_message_type, login
from tests.postgres_server import PostgresServer, postgres_server
from tests.soap.test_ebox_message_requests import EBOX_NS, publication, signed
from tests.soap.wss_helpers import Identity, make_identity, register

pytestmark = pytest.mark.postgres_only

# EBOX_DATABASE_TIMEOUT_SECONDS for these tests: how long a request waits for a frozen server.
FROZEN_BOUND_SECONDS = 1.0


@pytest.fixture(scope="module")
def postgres() -> Iterator[PostgresServer]:
    with postgres_server() as server:
        yield server


@pytest.fixture(scope="module")
def outage_app(
    postgres: PostgresServer, tmp_path_factory: pytest.TempPathFactory, own_redis_url: str
) -> Iterator[Flask]:
    """eBox on the test's own PostgreSQL, its schema made by the migrations."""
    settings = make_settings(
        tmp_path_factory.mktemp("outage-instance"),
        postgres.url,
        redis_url=own_redis_url,
        database_timeout_seconds=FROZEN_BOUND_SECONDS,
    )
    app = create_app(settings, TESTING=True)
    with app.app_context():
        upgrade()
        yield app
        db.session.remove()
        db.engine.dispose()


@pytest.fixture(scope="module")
def identity() -> Identity:
    return make_identity("rsa", name="Outage Back Office")


@pytest.fixture(scope="module")
def client(outage_app: Flask, identity: Identity) -> FlaskClient:
    """A citizen logged in, and a sender who may publish."""
    record = register(identity)
    sender = db.session.get(Sender, record.sender_id)
    assert sender is not None
    create_message_type(sender, code="TAX")
    citizen = create_citizen()
    db.session.commit()
    web = outage_app.test_client()
    web.environ_base["HTTP_ACCEPT_LANGUAGE"] = "en"
    login(web, citizen)
    return web


def soap_answer(client: FlaskClient, identity: Identity) -> tuple[int, str | None]:
    """The HTTP status of a new signed publication and its Fault code (None when accepted).
    Sent as a back office sends it: without the citizen's cookie."""
    assert isinstance(client.application, Flask)
    payload = publication(MessageType="TAX")
    ticket = payload.find(f"{{{EBOX_NS}}}MessageID/{{{EBOX_NS}}}Ticket")
    assert ticket is not None
    ticket.text = f"OUTAGE-{uuid.uuid4().hex[:12]}"
    response = client.application.test_client().post(
        "/soap/EboxMessage/v1",
        data=signed(payload, identity),
        content_type="text/xml; charset=utf-8",
    )
    root = etree.fromstring(response.data)
    code = root.findtext(f"{{{SOAP11_NS}}}Body//{{{EBOX_NS}}}Code")
    if code is not None:
        assert root.findtext(f"{{{SOAP11_NS}}}Body/{{{SOAP11_NS}}}Fault/faultcode") == (
            "soap:Server"
        )
    return response.status_code, code


def warnings_and_errors(caplog: pytest.LogCaptureFixture) -> list[logging.LogRecord]:
    return [record for record in caplog.records if record.levelno >= logging.WARNING]


def assert_one_plain_warning(caplog: pytest.LogCaptureFixture, logger: str) -> None:
    [record] = warnings_and_errors(caplog)
    assert (record.name, record.levelno) == (logger, logging.WARNING)
    assert record.exc_info is None
    assert "\n" not in record.getMessage()
    assert "the database cannot be reached" in record.getMessage() or logger.endswith("checks")
    caplog.clear()


@pytest.mark.parametrize("mode", ["fast", "immediate"])
def test_while_the_database_is_down_every_answer_says_try_again_with_one_log_line(
    outage_app: Flask,
    postgres: PostgresServer,
    client: FlaskClient,
    identity: Identity,
    caplog: pytest.LogCaptureFixture,
    mode: str,
) -> None:
    assert soap_answer(client, identity) == (200, None)
    assert client.get("/").status_code == 200
    caplog.set_level(logging.INFO)

    postgres.stop(mode)
    try:
        assert soap_answer(client, identity) == (500, "SERVICE_UNAVAILABLE")
        assert_one_plain_warning(caplog, "ebox.soap.views")

        page = client.get("/")
        assert page.status_code == 503
        assert "eBox is temporarily unavailable" in page.get_data(as_text=True)
        assert_one_plain_warning(caplog, "ebox.web")

        ready = outage_app.test_client().get("/readyz")  # a load balancer's probe
        assert ready.status_code == 503
        assert ready.get_json()["checks"]["database"] == "failed"
        assert_one_plain_warning(caplog, "ebox.health.checks")
    finally:
        postgres.start()

    # Back: the pool's dead connections are replaced, nothing to restart.
    assert soap_answer(client, identity) == (200, None)
    assert client.get("/").status_code == 200
    assert outage_app.test_client().get("/readyz").status_code == 200
    assert warnings_and_errors(caplog) == []


Answer = TypeVar("Answer")


def timed(call: Callable[[], Answer], at_most: float = 60) -> tuple[Answer, float]:
    """call's answer and how long it took, called in a thread so that a call that never
    returns fails the test after at_most seconds instead of hanging it."""
    answers: list[tuple[Answer, float]] = []

    def run() -> None:
        started = time.monotonic()
        answer = call()
        answers.append((answer, time.monotonic() - started))

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    thread.join(at_most)
    assert answers, f"no answer within {at_most} s"
    return answers[0]


def test_while_the_database_is_frozen_every_answer_says_try_again_within_the_bound(
    outage_app: Flask,
    postgres: PostgresServer,
    client: FlaskClient,
    identity: Identity,
    caplog: pytest.LogCaptureFixture,
) -> None:
    assert soap_answer(client, identity) == (200, None)
    assert client.get("/").status_code == 200
    caplog.set_level(logging.INFO)
    # One wait for a pooled connection's ping, or libpq's connect_timeout (at least 2 s) for a
    # new connection; never both in one request, and never gunicorn's 30 s.
    most = max(2.0, FROZEN_BOUND_SECONDS) + 1.0

    postgres.freeze()
    try:
        answer, seconds = timed(lambda: soap_answer(client, identity), 2 * most)
        assert answer == (500, "SERVICE_UNAVAILABLE")
        assert seconds < most
        assert_one_plain_warning(caplog, "ebox.soap.views")

        for _ in range(2):  # the pooled connections are replaced by new ones, just as bounded
            page, seconds = timed(lambda: client.get("/"), 2 * most)
            assert page.status_code == 503
            assert "eBox is temporarily unavailable" in page.get_data(as_text=True)
            assert seconds < most
            assert_one_plain_warning(caplog, "ebox.web")

        ready, seconds = timed(lambda: outage_app.test_client().get("/readyz"), 2 * most)
        assert ready.status_code == 503
        assert ready.get_json()["checks"]["database"] == "failed"
        assert seconds < most
        assert_one_plain_warning(caplog, "ebox.health.checks")
    finally:
        postgres.thaw()

    assert soap_answer(client, identity) == (200, None)
    assert client.get("/").status_code == 200
    assert outage_app.test_client().get("/readyz").status_code == 200
    assert warnings_and_errors(caplog) == []


def test_outside_requests_a_statement_may_wait_longer_than_the_bound(outage_app: Flask) -> None:
    """Jobs and commands (a purge batch, a migration) may rightly take longer than a page. In a
    thread of its own, as in a worker or a command (the test's requests share one application
    context, whose end, where the bound is lifted, they never reach)."""
    longer = FROZEN_BOUND_SECONDS + 0.5

    def statement() -> None:
        with outage_app.app_context():
            db.session.execute(text("SELECT pg_sleep(:s)"), {"s": longer}).all()
            db.session.rollback()

    _, seconds = timed(statement)
    assert seconds >= longer
