"""A throw-away Redis server for one test process: tests that flush Redis or run workers use it,
so that they never meet another test process's keys and jobs on the machine's shared server.
Fault tests stop, freeze (SIGSTOP) and restart it (RedisServer)."""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from redis import Redis
from redis.exceptions import ConnectionError as RedisConnectionError

from tests.mail.smtp_server import free_port


class RedisServer:
    """redis-server on a loopback port that stays the same across stops and starts; nothing
    is saved, so a restarted server is empty, as one that lost its data."""

    def __init__(self, directory: Path) -> None:
        binary = shutil.which("redis-server")
        assert binary is not None, "redis-server is missing: scripts/services installs it"
        self.binary = binary
        self.directory = directory
        self.port = free_port()
        self.process: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def start(self) -> None:
        options = ["--port", str(self.port), "--bind", "127.0.0.1", "--save", "", "--appendonly"]
        self.process = subprocess.Popen(
            [self.binary, *options, "no", "--dir", str(self.directory)],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        try:
            _wait_for(self.url)
        except BaseException:
            self.stop()
            raise

    def stop(self) -> None:
        if self.process is not None:
            self.thaw()
            self.process.terminate()
            self.process.wait(timeout=10)
            self.process = None

    def freeze(self) -> None:
        """SIGSTOP: the kernel still accepts connections for it, and nothing is ever answered."""
        assert self.process is not None
        os.kill(self.process.pid, signal.SIGSTOP)

    def thaw(self) -> None:
        if self.process is not None:
            os.kill(self.process.pid, signal.SIGCONT)


@contextmanager
def redis_server(directory: Path) -> Iterator[str]:
    """Start redis-server on a free loopback port; yields its URL; stops it afterwards."""
    with redis_process(directory) as server:
        yield server.url


@contextmanager
def redis_process(directory: Path) -> Iterator[RedisServer]:
    """A started RedisServer, stopped when the block ends."""
    server = RedisServer(directory)
    server.start()
    try:
        yield server
    finally:
        server.stop()


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
