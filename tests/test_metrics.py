"""/metrics: answered to internal addresses only (404 to anyone else, as /admin), labelled by
route and outcome, never by path, with what the database and Redis hold read at each scrape;
the multiprocess directory keeps the files of running processes when gunicorn starts."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest
from flask import Flask
from flask.testing import FlaskClient

from ebox import create_app, metrics
from ebox.config import Settings
from ebox.errors import ConfigError
from tests.conftest import make_settings
from tests.factories import create_citizen, create_document, login
from tests.metrics_helpers import sample_value, scrape


def test_metrics_are_answered_on_loopback_and_404_from_outside(client: FlaskClient) -> None:
    exposed = scrape(client)
    assert "# TYPE ebox_publications_total counter" in exposed
    assert "# TYPE ebox_request_duration_seconds histogram" in exposed
    for outside in ("203.0.113.7", "2001:db8::1", "not-an-address"):
        answer = client.get("/metrics", environ_base={"REMOTE_ADDR": outside})
        assert answer.status_code == 404
        assert b"ebox_" not in answer.data


def test_behind_a_trusted_proxy_the_forwarded_client_decides(
    instance_path: Path, database_url: str, _migrated_app: Flask
) -> None:
    served = create_app(make_settings(instance_path, database_url, trusted_proxies=1))
    with served.test_client() as client:
        outside = client.get("/metrics", headers={"X-Forwarded-For": "198.51.100.4"})
        inside = client.get("/metrics", headers={"X-Forwarded-For": "10.1.2.3"})
    assert (outside.status_code, inside.status_code) == (404, 200)


def test_the_networks_setting_is_checked_and_narrows_access(
    instance_path: Path, database_url: str, _migrated_app: Flask
) -> None:
    with pytest.raises(ConfigError, match="EBOX_METRICS_NETWORKS"):
        Settings.from_environment({"EBOX_METRICS_NETWORKS": "10.0.0.0/8,intranet"})
    settings = Settings.from_environment({"EBOX_METRICS_NETWORKS": "10.0.0.0/8, 192.0.2.1"})
    assert settings.metrics_networks == ("10.0.0.0/8", "192.0.2.1")
    served = create_app(
        make_settings(instance_path, database_url, metrics_networks=("10.0.0.0/8",))
    )
    with served.test_client() as client:
        assert client.get("/metrics").status_code == 404  # loopback is no longer allowed
        assert client.get("/metrics", environ_base={"REMOTE_ADDR": "10.9.9.9"}).status_code == 200


def test_pages_are_timed_by_route_name_never_by_path(client: FlaskClient) -> None:
    citizen = create_citizen()
    document = create_document(citizen, title="Secret medical results")
    login(client, citizen)
    before = scrape(client)
    assert client.get("/").status_code == 200
    assert client.get(f"/documents/{document.id}").status_code == 200
    exposed = scrape(client)

    for route in ("mailbox.inbox", "mailbox.document"):
        sample = f'ebox_request_duration_seconds_count{{route="{route}"}}'
        assert sample_value(exposed, sample) == sample_value(before, sample) + 1
    responses = 'ebox_http_responses_total{route="mailbox.document",status_class="2xx"}'
    assert sample_value(exposed, responses) == sample_value(before, responses) + 1
    for private in (str(document.id), "Secret medical", citizen.national_number, "/documents"):
        assert private not in exposed
    labels = set(re.findall(r'(\w+)="', exposed))
    assert labels <= {
        "route",
        "status_class",
        "operation",
        "endpoint",
        "result",
        "outcome",
        "state",
    } | {
        "source",
        "le",
        "quantile",
        "implementation",
        "major",
        "minor",
        "patchlevel",
        "version",
        "generation",
    }


def test_a_refused_login_is_counted_by_outcome(client: FlaskClient) -> None:
    sample = 'ebox_logins_total{outcome="refused"}'
    before = sample_value(scrape(client), sample)
    assert client.post("/auth/saml/acs", data={"SAMLResponse": "x"}).status_code == 400
    assert sample_value(scrape(client), sample) == before + 1


def test_database_and_queue_are_read_at_scrape_time(client: FlaskClient) -> None:
    exposed = scrape(client)
    assert sample_value(exposed, 'ebox_metrics_source_up{source="database"}') == 1
    assert 'ebox_alert_deliveries{state="planned"}' in exposed
    assert sample_value(exposed, "ebox_proofs_overdue") == 0
    assert "ebox_database_connections_in_use" in exposed


def test_an_unreachable_redis_is_reported_as_down_not_as_an_error(
    instance_path: Path, database_url: str, _migrated_app: Flask
) -> None:
    # A port nothing listens on: the connection is refused at once.
    settings = make_settings(instance_path, database_url, redis_url="redis://127.0.0.1:9/0")
    served = create_app(settings)
    with served.test_client() as client:
        exposed = scrape(client)
    assert sample_value(exposed, 'ebox_metrics_source_up{source="redis"}') == 0
    assert "ebox_queue_jobs_waiting" not in exposed


def test_gunicorn_start_keeps_the_files_of_running_processes(tmp_path: Path) -> None:
    directory = tmp_path / "metrics"
    directory.mkdir()
    ended = subprocess.run(
        [sys.executable, "-c", "import os; print(os.getpid())"],
        text=True,
        capture_output=True,
        check=True,
    )
    dead_pid = int(ended.stdout)
    running = directory / f"counter_{os.getpid()}.db"
    dead = directory / f"counter_{dead_pid}.db"
    dead_live_gauge = directory / f"gauge_livesum_{dead_pid}.db"
    for path in (running, dead, dead_live_gauge):
        path.write_bytes(b"")

    assert metrics.clean_directory(directory) == 2
    assert sorted(directory.iterdir()) == [running]
