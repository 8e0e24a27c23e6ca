"""eBox under gunicorn as the README and the operations guide start it: a production start with
unsafe settings stops the whole server with the reasons printed once, the access log never
carries a query string (a citizen's search in titles), and with EBOX_LOG_FORMAT=json every line,
gunicorn's and eBox's, is a JSON object naming the request's id."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest

from tests.mail.smtp_server import free_port

pytestmark = pytest.mark.slow

ROOT = Path(__file__).resolve().parent.parent
GUNICORN = str(Path(sys.executable).with_name("gunicorn"))


def _environment(tmp_path: Path, **variables: str) -> dict[str, str]:
    environment = {k: v for k, v in os.environ.items() if not k.startswith("EBOX_")}
    environment.update(EBOX_INSTANCE_PATH=str(tmp_path), **variables)
    return environment


def _gunicorn(*options: str) -> list[str]:
    return [GUNICORN, *options, "--bind", f"127.0.0.1:{free_port()}", "--workers", "2", "app:app"]


def test_a_refused_production_start_stops_gunicorn_with_the_reasons_printed_once(tmp_path):
    finished = subprocess.run(
        _gunicorn("-c", "python:ebox.gunicorn_conf"),
        cwd=ROOT,
        env=_environment(tmp_path, EBOX_ENV="production"),
        capture_output=True,
        text=True,
        timeout=30,
    )
    assert finished.returncode != 0
    assert finished.stderr.count("EBOX_ENV=production refuses to start") == 1
    assert "EBOX_MASTER_KEY is the embedded default key" in finished.stderr
    assert "Booting worker" not in finished.stderr  # stopped before any worker started


def test_without_the_config_file_gunicorn_still_stops_instead_of_restarting_workers(tmp_path):
    started = time.monotonic()
    finished = subprocess.run(
        _gunicorn(),
        cwd=ROOT,
        env=_environment(tmp_path, EBOX_ENV="production"),
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert finished.returncode != 0
    assert "App failed to load" in finished.stderr  # gunicorn halts on the workers' exit code
    assert finished.stderr.count("refuses to start") <= 2  # at most once per worker
    assert time.monotonic() - started < 30


def test_the_access_log_names_the_path_without_its_query_string(tmp_path):
    port, process = _serving_with_access_log(tmp_path)
    try:
        _wait_for(port)
        with urllib.request.urlopen(
            f"http://127.0.0.1:{port}/auth/login?next=/%3Fq%3DPersonalWord", timeout=10
        ) as answer:
            assert answer.status == 200
    finally:
        process.terminate()
        output, _ = process.communicate(timeout=20)
    assert '"GET /auth/login HTTP/1.1" 200' in output
    assert "PersonalWord" not in output


def _serving_with_access_log(tmp_path: Path, **variables: str) -> tuple[int, subprocess.Popen[str]]:
    """One gunicorn worker in development, its access log and ours on stdout (with stderr)."""
    port = free_port()
    process = subprocess.Popen(
        [
            GUNICORN,
            *("-c", "python:ebox.gunicorn_conf", "--bind", f"127.0.0.1:{port}"),
            *("--workers", "1", "--access-logfile", "-", "app:app"),
        ],
        cwd=ROOT,
        env=_environment(tmp_path, EBOX_ENV="development", **variables),
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    return port, process


def _wait_for(port: int, timeout: float = 20) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.5):
                return
        except OSError:
            time.sleep(0.1)
    raise AssertionError(f"gunicorn did not listen on {port}")


def test_with_json_logs_gunicorn_and_ebox_write_json_lines_that_name_the_request(tmp_path):
    port, process = _serving_with_access_log(tmp_path, EBOX_LOG_FORMAT="json")
    try:
        _wait_for(port)
        asked = urllib.request.Request(
            f"http://127.0.0.1:{port}/auth/login?next=/%3Fq%3DPersonalWord",
            headers={"X-Request-ID": "gunicorn-trace-7"},
        )
        with urllib.request.urlopen(asked, timeout=10) as answer:  # noqa: S310 (http, loopback)
            assert answer.status == 200
            assert answer.headers["X-Request-ID"] == "gunicorn-trace-7"
    finally:
        process.terminate()
        output, _ = process.communicate(timeout=20)
    lines = [json.loads(line) for line in output.splitlines()]  # every line is JSON
    assert "PersonalWord" not in output
    access = [line for line in lines if line.get("event") == "http.access"]
    assert len(access) == 1
    assert access[0]["logger"] == "gunicorn.access"
    assert access[0]["path"] == "/auth/login"
    assert access[0]["status"] == 200
    assert access[0]["method"] == "GET"
    assert access[0]["request_id"] == "gunicorn-trace-7"
    assert isinstance(access[0]["duration_ms"], float)
    completed = [line for line in lines if line.get("event") == "request.completed"]
    assert [line["request_id"] for line in completed] == ["gunicorn-trace-7"]
    assert any(
        line["logger"] == "gunicorn.error" and "Booting worker" in line["message"] for line in lines
    )
