"""A real Prometheus (Debian's `prometheus`) scrapes eBox under gunicorn, and the values come
back through its HTTP API: a publication counted by whichever of two gunicorn workers took it,
and a purge counted by the RQ worker in the same metrics directory. The example alert rules
pass `promtool check rules`."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import time
import urllib.parse
import urllib.request
from pathlib import Path

import pytest
from flask import Flask
from redis import Redis
from rq import Queue

from ebox.demo.pdf import make_pdf
from ebox.extensions import db
from ebox.jobs import QUEUE
from examples.ebox_client import make_client, publish_pdf
from tests.factories import (
    create_citizen,
    create_message_type,
    create_sender,
    next_national_number,
)
from tests.mail.smtp_server import free_port
from tests.retention.retention_helpers import expired_document
from tests.soap.wss_helpers import make_identity, register

ROOT = Path(__file__).resolve().parent.parent
GUNICORN = str(Path(sys.executable).with_name("gunicorn"))
PROMETHEUS = shutil.which("prometheus")
PROMTOOL = shutil.which("promtool")
RULES = ROOT / "docs" / "monitoring" / "ebox-alerts.yml"


def _wait_for_http(url: str, timeout: float = 30) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            with urllib.request.urlopen(url, timeout=2):  # noqa: S310 (http, loopback)
                return
        except OSError:
            time.sleep(0.2)
    raise AssertionError(f"nothing answered {url}")


def _query(prometheus_url: str, expression: str) -> float | None:
    """The value of a scalar-valued query, or None while it has no sample."""
    address = f"{prometheus_url}/api/v1/query?" + urllib.parse.urlencode({"query": expression})
    with urllib.request.urlopen(address, timeout=5) as answer:  # noqa: S310 (http, loopback)
        body = json.load(answer)
    assert body["status"] == "success", body
    result = body["data"]["result"]
    return float(result[0]["value"][1]) if result else None


def _eventually(prometheus_url: str, expression: str, wanted: float, timeout: float = 30) -> None:
    deadline = time.monotonic() + timeout
    seen = None
    while time.monotonic() < deadline:
        seen = _query(prometheus_url, expression)
        if seen == wanted:
            return
        time.sleep(0.5)
    raise AssertionError(f"{expression} is {seen}, not {wanted}")


@pytest.mark.skipif(PROMETHEUS is None, reason="Debian's prometheus is not installed")
def test_prometheus_scrapes_the_web_and_worker_counts_under_gunicorn(
    app: Flask, instance_path: Path, database_url: str, empty_redis_url: str, tmp_path: Path
) -> None:
    sender = create_sender()
    create_message_type(sender, code="TAX")
    identity = make_identity("rsa")
    register(identity, sender)
    expired = expired_document(create_citizen())
    db.session.commit()
    Queue(QUEUE, connection=Redis.from_url(empty_redis_url)).enqueue(
        "ebox.retention.jobs.purge_expired_documents"
    )
    assert expired.id is not None

    port = free_port()
    environment = {k: v for k, v in os.environ.items() if not k.startswith("EBOX_")}
    environment.update(
        EBOX_ENV="test",
        EBOX_DATABASE_URL=database_url,
        EBOX_REDIS_URL=empty_redis_url,
        EBOX_INSTANCE_PATH=str(instance_path),
        EBOX_PUBLIC_URL=f"http://127.0.0.1:{port}",
    )
    (tmp_path / "prometheus.yml").write_text(
        "global:\n"
        "  scrape_interval: 1s\n"
        "scrape_configs:\n"
        "  - job_name: ebox\n"
        "    metrics_path: /metrics\n"
        "    static_configs:\n"
        f"      - targets: ['127.0.0.1:{port}']\n"
    )
    prometheus_port = free_port()
    prometheus_url = f"http://127.0.0.1:{prometheus_port}"
    processes = [
        subprocess.Popen(
            [
                GUNICORN,
                "-c",
                "python:ebox.gunicorn_conf",
                "--bind",
                f"127.0.0.1:{port}",
                "--workers",
                "2",
                "app:app",
            ],
            cwd=ROOT,
            env=environment,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
            text=True,
        ),
        subprocess.Popen(
            [
                str(PROMETHEUS),
                f"--config.file={tmp_path / 'prometheus.yml'}",
                f"--storage.tsdb.path={tmp_path / 'data'}",
                f"--web.listen-address=127.0.0.1:{prometheus_port}",
            ],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        ),
    ]
    try:
        _wait_for_http(f"http://127.0.0.1:{port}/healthz")
        _wait_for_http(f"{prometheus_url}/-/ready")
        client = make_client(
            f"http://127.0.0.1:{port}/soap/EboxMessage/v1?wsdl", identity.key_pem, identity.cert_pem
        )
        publish_pdf(
            client,
            recipient=next_national_number(),
            message_type="TAX",
            title="Your tax assessment",
            pdf=make_pdf("Assessment", ["Dear citizen"]),
            file_name="assessment.pdf",
            ticket="METRICS-1",
            language="en",
        )
        worker = subprocess.run(
            [sys.executable, str(ROOT / "worker.py"), "--burst"],
            cwd=ROOT,
            env=environment,
            capture_output=True,
            text=True,
            timeout=120,
        )
        assert worker.returncode == 0, worker.stderr[-3000:]

        _eventually(
            prometheus_url,
            'sum(ebox_publications_total{operation="publishEboxMessage",result="ok"})',
            1,
        )
        _eventually(prometheus_url, "sum(ebox_purge_documents_deleted_total)", 1)
        _eventually(prometheus_url, 'ebox_metrics_source_up{source="redis"}', 1)
        _eventually(prometheus_url, 'ebox_metrics_source_up{source="database"}', 1)
        soap_latency = _query(
            prometheus_url,
            'sum(ebox_request_duration_seconds_count{route="soap.EboxMessage"})',
        )
        assert soap_latency is not None and soap_latency >= 1
        # What Prometheus stored never names a citizen, a title or a document.
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=5) as answer:
            exposed = answer.read().decode()
        for private in ("assessment", "METRICS-1", str(expired.id), "/soap/"):
            assert private not in exposed
    finally:
        for process in processes:
            process.terminate()
        for process in processes:
            process.wait(timeout=20)
        with app.app_context():
            db.engine.dispose()


@pytest.mark.skipif(PROMTOOL is None, reason="promtool (Debian's prometheus) is not installed")
def test_the_example_alert_rules_pass_promtool() -> None:
    checked = subprocess.run(
        [str(PROMTOOL), "check", "rules", str(RULES)], capture_output=True, text=True, timeout=60
    )
    assert checked.returncode == 0, checked.stdout + checked.stderr
    assert "SUCCESS: 5 rules found" in checked.stdout
