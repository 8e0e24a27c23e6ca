"""The README's Run command, as a newcomer starts it: web, worker and demo data come up without a
warning, and the demo's registered letters get their proofs at once, not at the next sweep."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import time
import urllib.request
from pathlib import Path

import pytest

from tests.mail.smtp_server import free_port

pytestmark = pytest.mark.slow

ROOT = Path(__file__).resolve().parent.parent


def test_the_first_start_is_clean_and_the_demo_proofs_are_made_at_once(tmp_path):
    port = free_port()
    environment = {k: v for k, v in os.environ.items() if not k.startswith("EBOX_")}
    environment.update(EBOX_INSTANCE_PATH=str(tmp_path / "instance"), EBOX_PORT=str(port))
    log = tmp_path / "run.log"
    with log.open("w") as output:
        process = subprocess.Popen(
            ["scripts/run"],
            cwd=ROOT,
            env=environment,
            stdout=output,
            stderr=subprocess.STDOUT,
            start_new_session=True,  # the script's worker and gunicorn stop with it
        )
    try:
        _wait_until_ready(port)
        _wait_for(lambda: log.read_text().count("proof of delivery") >= 3 * 2)
        # What the start printed, before the stop below adds its own lines.
        lines = log.read_text().splitlines()
    finally:
        os.killpg(process.pid, signal.SIGINT)
        process.wait(timeout=30)
    ebox_lines = [line for line in lines if " ebox" in line or " rq." in line]
    assert ebox_lines, lines[-20:]
    problems = [line for line in ebox_lines if " WARNING " in line or " ERROR " in line]
    assert problems == []
    assert not any("Traceback" in line for line in lines)


def _wait_until_ready(port: int, timeout: float = 120) -> None:
    def ready() -> bool:
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{port}/readyz", timeout=2) as answer:
                return bool(json.load(answer)["status"] == "ok")
        except OSError:
            return False

    _wait_for(ready, timeout)


def _wait_for(condition, timeout: float = 60) -> None:  # type: ignore[no-untyped-def]
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError("timed out")
        time.sleep(0.5)
