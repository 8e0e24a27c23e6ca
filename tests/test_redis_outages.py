"""Redis stopped, frozen (SIGSTOP) and restarted under a live server: a redis-server of the test's
own, never the machine's. Nothing waits on Redis longer than EBOX_REDIS_TIMEOUT_SECONDS, a
publication does not need it, a replay is refused even after Redis lost everything, and RQ's
worker still waits for jobs longer than that timeout."""

from __future__ import annotations

import logging
import os
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import requests
import zeep
from flask import Flask
from flask.testing import FlaskClient
from redis import Redis
from rq import Queue
from rq.job import Job, JobStatus
from sqlalchemy import select
from werkzeug.test import TestResponse

from ebox import create_app
from ebox.db_types import utcnow
from ebox.extensions import db
from ebox.jobs import QUEUE
from ebox.senders.models import Sender
from ebox.soap.models import SeenRequest
from examples.ebox_client import make_client, publish_pdf, send_registered_pdf
from tests.applications.application_helpers import (
    forget_application_limits,
    post_application,
    valid_form,
)
from tests.conftest import make_settings
from tests.factories import create_message_type, next_national_number
from tests.live_server import LiveServer, live_server
from tests.redis_server import RedisServer, redis_process
from tests.soap.test_ebox_message_requests import PDF, fault_of, post, publication, signed
from tests.soap.wss_helpers import Identity, make_identity, register
from tests.storage.helpers import changed_settings

ROOT = Path(__file__).resolve().parent.parent
ANSWER_WITHIN = 2.0  # seconds, with EBOX_REDIS_TIMEOUT_SECONDS at its default of 1


@pytest.fixture(scope="module")
def redis_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RedisServer]:
    with redis_process(tmp_path_factory.mktemp("redis-outages")) as server:
        yield server


@pytest.fixture
def redis(redis_server: RedisServer) -> Iterator[RedisServer]:
    """The test's Redis, running and empty at the start; running again at the end."""
    Redis.from_url(redis_server.url).flushdb()
    yield redis_server
    redis_server.thaw()
    if redis_server.process is None:
        redis_server.start()


@pytest.fixture(scope="module")
def server(
    _migrated_app: Flask, instance_path: Path, database_url: str, redis_server: RedisServer
) -> Iterator[LiveServer]:
    settings = make_settings(instance_path, database_url, redis_url=redis_server.url)
    served = create_app(settings, TESTING=True)
    with live_server(served) as running:
        settings.public_url = running.url
        yield running


@pytest.fixture
def sender(app: Flask, identity: Identity) -> Sender:
    found = db.session.get(Sender, register(identity).sender_id)
    assert found is not None
    found.may_send_registered = True
    create_message_type(found, code="TAX")
    db.session.commit()
    return found


@pytest.fixture(scope="module")
def identity() -> Identity:
    return make_identity("ec", name="Outage Back Office")


def client_of(server: LiveServer, service: str, identity: Identity) -> zeep.Client:
    return make_client(f"{server.url}/soap/{service}/v1?wsdl", identity.key_pem, identity.cert_pem)


def timed(call: object, *args: object, **kwargs: object) -> tuple[object, float]:
    started = time.monotonic()
    result = call(*args, **kwargs)  # type: ignore[operator]
    return result, time.monotonic() - started


def warnings_and_errors(caplog: pytest.LogCaptureFixture) -> list[logging.LogRecord]:
    return [record for record in caplog.records if record.levelno >= logging.WARNING]


def message(number: int) -> dict[str, object]:
    return {
        "recipient": next_national_number(),
        "message_type": "TAX",
        "title": f"Letter {number}",
        "pdf": PDF,
        "file_name": "letter.pdf",
        "ticket": f"OUTAGE-{number}",
    }


def test_with_redis_frozen_readyz_and_publications_are_answered_within_two_seconds(
    app: Flask,
    server: LiveServer,
    redis: RedisServer,
    sender: Sender,
    identity: Identity,
    caplog: pytest.LogCaptureFixture,
) -> None:
    publisher = client_of(server, "EboxMessage", identity)
    registered = client_of(server, "RegisteredMail", identity)
    assert requests.get(f"{server.url}/readyz", timeout=10).status_code == 200
    send_registered_pdf(registered, **message(0))  # the seal and the clients warmed up
    caplog.set_level(logging.INFO)

    redis.freeze()
    try:
        ready, ready_took = timed(requests.get, f"{server.url}/readyz", timeout=10)
        published, published_took = timed(publish_pdf, publisher, **message(1))
        sent, sent_took = timed(send_registered_pdf, registered, **message(2))
    finally:
        redis.thaw()

    assert isinstance(ready, requests.Response)
    assert ready.status_code == 503
    assert ready.json()["checks"] == {"database": "ok", "storage": "ok", "redis": "failed"}
    assert ready_took < ANSWER_WITHIN
    # Publishing needs no Redis; registered mail queues its proof after the commit, gives up
    # after the timeout (1 s), and leaves the proof to the periodic sweep.
    assert published.EboxMessageId and published_took < ANSWER_WITHIN  # type: ignore[attr-defined]
    assert sent.EboxMessageId and sent_took < ANSWER_WITHIN  # type: ignore[attr-defined]
    logged = warnings_and_errors(caplog)
    assert [record.name for record in logged] == ["ebox.health.checks", "ebox.evidence.services"]
    assert all(record.exc_info is None and "\n" not in record.getMessage() for record in logged)
    # Thawed, Redis answers again.
    assert requests.get(f"{server.url}/readyz", timeout=10).status_code == 200


def test_with_redis_frozen_an_application_form_is_answered_within_two_seconds(
    app: Flask, client: FlaskClient, redis: RedisServer
) -> None:
    """The form's limits are counted in Redis; frozen, it counts in the process after 1 s."""
    with changed_settings(app, redis_url=redis.url):
        forget_application_limits(app)
        redis.freeze()
        try:
            answer, took = timed(post_application, client, valid_form())
        finally:
            redis.thaw()
            forget_application_limits(app)

    assert isinstance(answer, TestResponse) and answer.status_code == 303
    assert took < ANSWER_WITHIN


def test_with_redis_stopped_a_publication_is_accepted_and_readyz_fails_at_once(
    app: Flask, server: LiveServer, redis: RedisServer, sender: Sender, identity: Identity
) -> None:
    publisher = client_of(server, "EboxMessage", identity)
    redis.stop()

    ready, ready_took = timed(requests.get, f"{server.url}/readyz", timeout=10)
    published, published_took = timed(publish_pdf, publisher, **message(3))

    assert isinstance(ready, requests.Response) and ready.status_code == 503
    assert ready_took < ANSWER_WITHIN
    assert published.EboxMessageId and published_took < ANSWER_WITHIN  # type: ignore[attr-defined]


def test_a_signed_request_is_refused_again_after_redis_lost_its_data(
    app: Flask, server: LiveServer, redis: RedisServer, sender: Sender, identity: Identity
) -> None:
    raw = signed(publication(MessageType="TAX"), identity)
    assert post(server, raw).status_code == 200

    redis.stop()
    redis.start()  # empty: nothing was saved
    assert Redis.from_url(redis.url).dbsize() == 0
    again = post(server, raw)
    redis.stop()  # and with no Redis at all
    once_more = post(server, raw)

    assert fault_of(again)[:2] == ("soap:Client", "REPLAY")
    assert fault_of(once_more)[:2] == ("soap:Client", "REPLAY")


@pytest.mark.slow
def test_the_worker_waits_for_jobs_longer_than_the_redis_timeout(
    app: Flask, database_url: str, redis: RedisServer, tmp_path: Path
) -> None:
    """RQ's worker blocks on Redis for minutes waiting for a job (BLPOP): its connection must
    wait that long, though every other client gives up after EBOX_REDIS_TIMEOUT_SECONDS."""
    db.session.add(SeenRequest(key="0" * 64, expires_at=utcnow()))
    db.session.commit()
    environment = {k: v for k, v in os.environ.items() if not k.startswith("EBOX_")}
    environment.update(
        EBOX_ENV="test",
        EBOX_DATABASE_URL=database_url,
        EBOX_REDIS_URL=redis.url,
        EBOX_REDIS_TIMEOUT_SECONDS="0.5",
        EBOX_INSTANCE_PATH=str(tmp_path / "instance"),
    )
    log_path = tmp_path / "worker.log"
    with log_path.open("wb") as log:
        worker = subprocess.Popen(
            [sys.executable, str(ROOT / "worker.py")],
            cwd=ROOT,
            env=environment,
            stdout=log,
            stderr=subprocess.STDOUT,
        )
    try:
        jobs = Queue(QUEUE, connection=Redis.from_url(redis.url))
        _wait_until(lambda: jobs.scheduled_job_registry.count > 0, "the worker to start")
        time.sleep(2)  # idle, blocked on Redis, four times the timeout
        assert worker.poll() is None, log_path.read_text()
        job = jobs.enqueue("ebox.soap.jobs.forget_expired_requests")
        _wait_until(lambda: job.get_status(refresh=True) == JobStatus.FINISHED, "the job")
    finally:
        worker.terminate()
        worker.wait(timeout=30)
    assert Job.fetch(job.id, connection=jobs.connection).return_value() == 1
    db.session.expire_all()
    assert db.session.scalars(select(SeenRequest)).all() == []
    assert "Redis connection timeout" not in log_path.read_text()


def _wait_until(condition: object, what: str, timeout: float = 30) -> None:
    deadline = time.monotonic() + timeout
    while not condition():  # type: ignore[operator]
        assert time.monotonic() < deadline, f"waited {timeout} s for {what}"
        time.sleep(0.05)
