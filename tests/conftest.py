"""Test fixtures: a real database built by the real migrations, real services, no mocks.

PostgreSQL is the default (EBOX_TEST_DATABASE_URL names the server; each pytest worker gets a
database of its own, created fresh). EBOX_TEST_DATABASE=sqlite runs the same tests on SQLite.
"""

from __future__ import annotations

import ipaddress
import logging
import os
import socket
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest
from flask import Flask
from flask.testing import FlaskClient, FlaskCliRunner
from flask_migrate import upgrade
from redis import Redis
from sqlalchemy import create_engine, text
from sqlalchemy.engine import make_url

from ebox import create_app
from ebox.config import Settings
from ebox.extensions import db
from tests.evidence.tsa_server import TimestampAuthority
from tests.redis_server import redis_server

POSTGRES_SERVER = os.environ.get(
    "EBOX_TEST_DATABASE_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/postgres"
)


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line("markers", "slow: needs more than a second or an outside process")
    config.addinivalue_line("markers", "postgres_only: relies on PostgreSQL behaviour")
    _resolve_loopback_names_only()


def _resolve_loopback_names_only() -> None:
    """No test asks a DNS server anything: names other than localhost are unknown here.

    Tests feed eBox hostile and random URLs (webhooks, schemathesis); resolving them would send
    queries off this machine. Addresses and localhost resolve as usual, so every server a test
    starts on loopback is reached as before."""
    real_getaddrinfo = socket.getaddrinfo

    def loopback_only(host: object, *args: object, **kwargs: object) -> object:
        name = host.decode() if isinstance(host, bytes) else host
        if isinstance(name, str) and not _is_local_name(name):
            raise socket.gaierror(socket.EAI_NONAME, f"tests resolve no outside name ({name})")
        return real_getaddrinfo(host, *args, **kwargs)  # type: ignore[arg-type]

    socket.getaddrinfo = loopback_only  # type: ignore[assignment]


def _is_local_name(name: str) -> bool:
    if name in ("", "localhost") or name.endswith(".localhost"):
        return True
    try:
        ipaddress.ip_address(name.strip("[]").split("%")[0])
    except ValueError:
        return False
    return True


@pytest.fixture(scope="session")
def database_url(tmp_path_factory: pytest.TempPathFactory, worker_id: str) -> Iterator[str]:
    if os.environ.get("EBOX_TEST_DATABASE") == "sqlite":
        yield f"sqlite:///{tmp_path_factory.mktemp('db') / 'ebox.sqlite3'}"
        return
    name = f"ebox_test_{worker_id}_{os.getpid()}"
    admin = create_engine(POSTGRES_SERVER, isolation_level="AUTOCOMMIT")
    with admin.connect() as connection:
        connection.execute(text(f'DROP DATABASE IF EXISTS "{name}"'))
        connection.execute(text(f'CREATE DATABASE "{name}"'))
    yield make_url(POSTGRES_SERVER).set(database=name).render_as_string(hide_password=False)
    with admin.connect() as connection:
        connection.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
    admin.dispose()


@pytest.fixture(scope="session")
def instance_path(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("instance")


def make_settings(instance_path: Path, database_url: str, **changes: object) -> Settings:
    """Test settings: the embedded defaults, a test database, and a broker that fails loudly."""
    settings = Settings(
        env="test",
        instance_path=instance_path,
        database_url=database_url,
        storage_path=str(instance_path / "documents"),
        public_url="http://localhost",
        saml_sp_entity_id="http://localhost/auth/saml/metadata",
    )
    for name, value in changes.items():
        setattr(settings, name, value)
    return settings


@pytest.fixture(scope="session")
def _migrated_app(instance_path: Path, database_url: str) -> Flask:
    app = create_app(make_settings(instance_path, database_url), TESTING=True)
    with app.app_context():
        upgrade()
    return app


@pytest.fixture
def app(_migrated_app: Flask) -> Iterator[Flask]:
    """The application, with an application context and empty tables."""
    with _migrated_app.app_context():
        yield _migrated_app
        db.session.rollback()
        _empty_all_tables()
        db.session.remove()


def _empty_all_tables() -> None:
    tables = [table.name for table in db.metadata.sorted_tables]
    if db.engine.dialect.name == "postgresql":
        db.session.execute(text(f"TRUNCATE {', '.join(tables)} RESTART IDENTITY CASCADE"))
    else:
        for table in reversed(db.metadata.sorted_tables):
            db.session.execute(table.delete())
    db.session.commit()


@pytest.fixture
def client(app: Flask) -> FlaskClient:
    # Tests assert English text; the service's own default language is Dutch.
    test_client = app.test_client()
    test_client.environ_base["HTTP_ACCEPT_LANGUAGE"] = "en"
    return test_client


@pytest.fixture
def runner(app: Flask) -> FlaskCliRunner:
    return app.test_cli_runner()


@pytest.fixture
def unique() -> str:
    return uuid.uuid4().hex[:8]


@pytest.fixture(scope="session")
def own_redis_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """A Redis server of this test process alone: tests may flush it and run workers on it."""
    with redis_server(tmp_path_factory.mktemp("redis")) as url:
        yield url


@pytest.fixture
def empty_redis_url(own_redis_url: str) -> Iterator[str]:
    """own_redis_url emptied before and after the test: flushing it touches no one else."""
    connection = Redis.from_url(own_redis_url)
    connection.flushdb()
    try:
        yield own_redis_url
    finally:
        connection.flushdb()
        connection.close()


@pytest.fixture(scope="session")
def tsa(tmp_path_factory: pytest.TempPathFactory) -> Iterator[TimestampAuthority]:
    """A real RFC 3161 timestamp authority (OpenSSL) on loopback, for the session: `.url` to post
    queries to, `.ca_pem_path` the root to trust, `.cert_pem_path` its signing certificate."""
    with TimestampAuthority(tmp_path_factory.mktemp("tsa")) as authority:
        yield authority


@pytest.fixture
def webhook_settings(app: Flask, empty_redis_url: str) -> Iterator[Settings]:
    """Loopback receivers allowed, short time-outs and waits, and a Redis of this test."""
    with settings_changed(
        app.config["EBOX"], redis_url=empty_redis_url, **FAST_WEBHOOKS
    ) as settings:
        yield settings


# Loopback receivers allowed (outside production only), a one-second time-out and back-off.
FAST_WEBHOOKS = {
    "webhook_allow_loopback": True,
    "webhook_timeout_seconds": 1,
    "webhook_retry_base_seconds": 1,
}


@contextmanager
def settings_changed(settings: Settings, **changes: object) -> Iterator[Settings]:
    """These settings changed in place (an app, or a served one, reads them at each use), and
    put back afterwards."""
    previous = {name: getattr(settings, name) for name in changes}
    for name, value in changes.items():
        setattr(settings, name, value)
    try:
        yield settings
    finally:
        for name, value in previous.items():
            setattr(settings, name, value)


# The tests' own peers log what they send and receive: the SMTP server the mail goes to, and
# an institution's SOAP client. Everything else in the process is eBox or a library it runs.
LOG_PEERS = ("mail.log", "zeep", "urllib3")


class _KeepEverything(logging.Handler):
    def __init__(self) -> None:
        super().__init__(level=logging.DEBUG)
        self.records: list[logging.LogRecord] = []

    def emit(self, record: logging.LogRecord) -> None:
        if not record.name.startswith(LOG_PEERS):
            self.records.append(record)


@pytest.fixture
def every_log_record() -> Iterator[list[logging.LogRecord]]:
    """Every record of every logger but the peers', at every level, while the test runs: what
    the privacy tests search for national numbers, names, titles and content."""
    handler = _KeepEverything()
    root = logging.getLogger()
    loggers = [logging.getLogger(name) for name in logging.root.manager.loggerDict]
    disabled = {logger.name: logger.disabled for logger in loggers}
    for logger in loggers:
        logger.disabled = False
    level = root.level
    root.setLevel(logging.DEBUG)
    root.addHandler(handler)
    try:
        yield handler.records
    finally:
        root.removeHandler(handler)
        root.setLevel(level)
        for logger in loggers:
            logger.disabled = disabled[logger.name]
