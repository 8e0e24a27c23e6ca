"""A throw-away Redis server for one test process: tests that flush Redis or run workers use it,
so that they never meet another test process's keys and jobs on the machine's shared server."""

from __future__ import annotations

import shutil
import subprocess
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from redis import Redis
from redis.exceptions import ConnectionError as RedisConnectionError

from tests.mail.smtp_server import free_port


@contextmanager
def redis_server(directory: Path) -> Iterator[str]:
    """Start redis-server on a free loopback port; yields its URL; stops it afterwards."""
    binary = shutil.which("redis-server")
    assert binary is not None, "redis-server is missing: scripts/services installs it"
    port = free_port()
    options = ["--port", str(port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no"]
    process = subprocess.Popen(
        [binary, *options, "--dir", str(directory)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    url = f"redis://127.0.0.1:{port}/0"
    try:
        _wait_for(url)
        yield url
    finally:
        process.terminate()
        process.wait(timeout=10)


def _wait_for(url: str, timeout: float = 10) -> None:
    deadline = time.monotonic() + timeout
    client = Redis.from_url(url, socket_connect_timeout=0.5)
    while True:
        try:
            client.ping()
            return
        except RedisConnectionError:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.05)
        finally:
            client.close()
