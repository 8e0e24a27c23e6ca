"""Structured logs: JSON lines with their fields, the request id answered in X-Request-ID and put
on every line of the request, and carried by the jobs it queues into a real worker process
(worker.py on a Redis server of this test process, PostgreSQL, the SOAP service on loopback)."""

from __future__ import annotations

import io
import json
import logging
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from flask import Flask
from flask.testing import FlaskClient

from ebox import create_app, national_number
from ebox.config import Settings
from ebox.demo.pdf import make_pdf
from ebox.errors import ConfigError
from ebox.extensions import db
from ebox.log_config import BoundFields, configure_logging, formatter_for
from examples.ebox_client import make_client, send_registered_pdf
from tests.conftest import make_settings
from tests.factories import create_message_type, create_sender
from tests.live_server import live_server
from tests.soap.wss_helpers import make_identity, register

ROOT = Path(__file__).resolve().parent.parent
NUMBER = national_number.make("850730033")


class JsonLines:
    """eBox's JSON handler on the root logger, writing into memory while the test runs."""

    def __init__(self) -> None:
        self.stream = io.StringIO()
        self.handler = logging.StreamHandler(self.stream)
        self.handler.setFormatter(formatter_for("json"))
        self.handler.addFilter(BoundFields())

    def lines(self) -> list[dict[str, Any]]:
        return [json.loads(line) for line in self.stream.getvalue().splitlines()]


@pytest.fixture
def json_lines() -> Iterator[JsonLines]:
    lines = JsonLines()
    root = logging.getLogger()
    level = root.level
    root.setLevel(logging.DEBUG)
    root.addHandler(lines.handler)
    try:
        yield lines
    finally:
        root.removeHandler(lines.handler)
        root.setLevel(level)


def test_production_writes_json_and_development_text_unless_told() -> None:
    assert Settings(env="production").log_format == "json"
    assert Settings(env="development").log_format == "text"
    assert Settings(env="test").log_format == "text"
    assert Settings(env="production", log_format="text").log_format == "text"
    told = Settings.from_environment({"EBOX_LOG_FORMAT": "json"})
    assert told.log_format == "json"
    with pytest.raises(ConfigError, match="EBOX_LOG_FORMAT must be one of json, text"):
        Settings(log_format="xml").check()


def test_a_json_line_carries_its_fields_and_masks_each_value(json_lines: JsonLines) -> None:
    log = logging.getLogger("ebox.test")
    # An escaped newline stands before the number in the encoded line: masked all the same.
    log.warning("for\n%s, at a.person@example.org", NUMBER, extra={"event": "test.event"})
    try:
        raise ValueError(f"bad number {NUMBER}")
    except ValueError:
        log.exception("failed")
    first, second = json_lines.lines()
    assert first["level"] == "WARNING"
    assert first["logger"] == "ebox.test"
    assert first["event"] == "test.event"
    assert first["message"] == "for\n*******" + NUMBER[-4:] + ", at ***@example.org"
    assert first["time"].endswith("Z")
    assert first["time"][:4].isdigit() and first["time"][10] == "T"
    assert "ValueError: bad number *******" + NUMBER[-4:] in second["exc_info"]
    assert NUMBER not in json_lines.stream.getvalue()


@pytest.mark.parametrize(
    "path", ["/auth/login", "/readyz", "/healthz", "/no-such-page", "/soap/EboxMessage/v1"]
)
def test_every_response_answers_the_request_id_found_on_its_lines(
    app: Flask, client: FlaskClient, json_lines: JsonLines, path: str
) -> None:
    answer = client.get(path, headers={"X-Request-ID": "3f2a-Trace.01:b_c"})
    assert answer.headers["X-Request-ID"] == "3f2a-Trace.01:b_c"
    completed = [line for line in json_lines.lines() if line.get("event") == "request.completed"]
    assert len(completed) == 1
    assert completed[0]["request_id"] == "3f2a-Trace.01:b_c"
    assert completed[0]["path"] == path
    assert completed[0]["status"] == answer.status_code
    assert completed[0]["method"] == "GET"
    assert isinstance(completed[0]["duration_ms"], float)


@pytest.mark.parametrize(
    "hostile",
    [
        "x" * 65,
        "abc\ninjected line",
        'abc" "level": "CRITICAL',
        "abc'def",
        "85.07.30-033.28",
        "a.person@example.org",
        "",
        "-starts-with-a-dash",
    ],
)
def test_a_request_id_that_is_not_a_plain_token_is_replaced(
    app: Flask, client: FlaskClient, json_lines: JsonLines, hostile: str
) -> None:
    answer = client.get("/auth/login", environ_overrides={"HTTP_X_REQUEST_ID": hostile})
    given = answer.headers["X-Request-ID"]
    assert given != hostile
    assert len(given) == 32 and all(c in "0123456789abcdef" for c in given)
    lines = json_lines.lines()
    assert lines and all(line["request_id"] == given for line in lines)


def test_two_requests_get_two_ids_and_nothing_outlives_its_request(
    app: Flask, client: FlaskClient, json_lines: JsonLines
) -> None:
    first = client.get("/healthz").headers["X-Request-ID"]
    second = client.get("/healthz").headers["X-Request-ID"]
    assert first != second
    logging.getLogger("ebox.test").warning("after the requests")
    assert "request_id" not in json_lines.lines()[-1]


@pytest.mark.slow
def test_a_job_queued_by_a_request_logs_with_its_id_in_the_worker(
    app: Flask,
    instance_path: Path,
    database_url: str,
    empty_redis_url: str,
    json_lines: JsonLines,
    tmp_path: Path,
) -> None:
    sender = create_sender(may_send_registered=True)
    create_message_type(sender, code="NOTICE")
    identity = make_identity("rsa")
    register(identity, sender)
    settings = make_settings(instance_path, database_url, redis_url=empty_redis_url)
    served = create_app(settings, TESTING=True)
    with live_server(served) as server:
        settings.public_url = server.url
        client = make_client(
            f"{server.url}/soap/RegisteredMail/v1?wsdl", identity.key_pem, identity.cert_pem
        )
        client.transport.session.headers["X-Request-ID"] = "publish-trace-0001"
        send_registered_pdf(
            client,
            recipient=NUMBER,
            message_type="NOTICE",
            title="Notice",
            pdf=make_pdf("Notice", ["Dear citizen"]),
            file_name="notice.pdf",
            ticket="TRACE-1",
        )
    with served.app_context():
        db.engine.dispose()

    # The request's own lines name it and, once its signature was checked, its sender.
    soap_lines = [
        line
        for line in json_lines.lines()
        if line.get("request_id") == "publish-trace-0001"
        and line.get("event") == "request.completed"
    ]
    assert [line["status"] for line in soap_lines] == [200]
    assert soap_lines[0]["sender_id"] == sender.id

    environment = {k: v for k, v in os.environ.items() if not k.startswith("EBOX_")}
    environment.update(
        EBOX_ENV="test",
        EBOX_LOG_FORMAT="json",
        EBOX_DATABASE_URL=database_url,
        EBOX_REDIS_URL=empty_redis_url,
        EBOX_INSTANCE_PATH=str(instance_path),
        EBOX_PUBLIC_URL=settings.public_url,
    )
    finished = subprocess.run(
        [sys.executable, str(ROOT / "worker.py"), "--burst"],
        cwd=ROOT,
        env=environment,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert finished.returncode == 0, finished.stderr[-3000:]
    lines = [json.loads(line) for line in finished.stderr.splitlines()]  # every line is JSON
    traced = [line for line in lines if line.get("request_id") == "publish-trace-0001"]
    assert any("Job OK" in line["message"] for line in traced), finished.stderr[-3000:]
    assert all(line["job_id"] for line in traced)
    assert all(line["time"].endswith("Z") and line["level"] and line["logger"] for line in lines)


def test_a_log_configured_on_a_stream_closed_since_goes_to_the_process_stderr(
    capfd: pytest.CaptureFixture[str],
) -> None:
    """A command runner swaps sys.stderr while an application is made, then closes it. Only
    eBox's handler on the root for this test: others (a test runner's) are not ours to judge."""
    root = logging.getLogger()
    others, real_stderr = list(root.handlers), sys.stderr
    swapped = io.StringIO()
    root.handlers[:] = []
    sys.stderr = swapped
    try:
        configure_logging("text")
        sys.stderr = real_stderr
        swapped.close()
        logging.getLogger("ebox.test").warning("after the runner closed its stream")
        captured = capfd.readouterr()
    finally:
        sys.stderr = real_stderr
        root.handlers[:] = others
    assert "after the runner closed its stream" in captured.err
    assert "Logging error" not in captured.err
