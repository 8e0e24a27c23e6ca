"""A throw-away PostgreSQL server for tests that stop, crash or restart it: Debian's own binaries
(initdb, pg_ctl) on a free loopback port, its data in a temporary directory removed afterwards.
The machine's shared server is never touched.

PostgreSQL refuses to run as root: as root, the server runs as the postgres account.
"""

from __future__ import annotations

import glob
import os
import pwd
import shutil
import signal
import subprocess
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import psycopg

from tests.mail.smtp_server import free_port


def _binaries() -> Path:
    found = sorted(
        glob.glob("/usr/lib/postgresql/*/bin/initdb"),
        key=lambda path: int(Path(path).parts[-3]),
    )
    assert found, "PostgreSQL's server binaries are missing: scripts/services installs them"
    return Path(found[-1]).parent


class PostgresServer:
    """One PostgreSQL cluster: start(), stop(mode), and the SQLAlchemy URL of its database."""

    def __init__(self, directory: Path) -> None:
        self.directory = directory
        self.data = directory / "data"
        self.log = directory / "server.log"
        self.port = free_port()
        self.bin = _binaries()
        self._run_as: dict[str, Any] = {}
        if os.geteuid() == 0:
            account = pwd.getpwnam("postgres")
            os.chown(directory, account.pw_uid, account.pw_gid)
            self._run_as = {"user": account.pw_uid, "group": account.pw_gid, "extra_groups": []}

    @property
    def url(self) -> str:
        return f"postgresql+psycopg://postgres@127.0.0.1:{self.port}/postgres"

    def initdb(self) -> None:
        self._pg(
            "initdb",
            "--pgdata",
            str(self.data),
            "--username",
            "postgres",
            "--auth",
            "trust",
            "--encoding",
            "UTF8",
            "--locale",
            "C",
            "--no-sync",
        )

    def start(self) -> None:
        # A throw-away server: no durability asked of the disk, TCP on loopback only.
        options = (
            f"-c listen_addresses=127.0.0.1 -p {self.port} -c unix_socket_directories='' "
            "-c fsync=off -c synchronous_commit=off -c full_page_writes=off"
        )
        self._pg("pg_ctl", "start", "-D", str(self.data), "-l", str(self.log), "-w", "-o", options)
        self._wait_until_it_answers()

    def stop(self, mode: str = "fast") -> None:
        """pg_ctl's modes: smart, fast (clients disconnected), immediate (as after a crash)."""
        self._pg("pg_ctl", "stop", "-D", str(self.data), "-m", mode, "-w")

    def freeze(self) -> None:
        """SIGSTOP the server and its backends: connections are still accepted by the system,
        and nothing answers, as with a stalled disk or host."""
        for pid in self._processes():
            os.kill(pid, signal.SIGSTOP)

    def thaw(self) -> None:
        for pid in self._processes():
            os.kill(pid, signal.SIGCONT)

    def _processes(self) -> list[int]:
        """The postmaster and every process it started."""
        postmaster = int((self.data / "postmaster.pid").read_text().split()[0])
        children = []
        for stat in glob.glob("/proc/[0-9]*/stat"):
            try:
                # pid (comm) state ppid ...: comm may hold spaces, so split after its ")".
                fields = Path(stat).read_text().rsplit(")", 1)[1].split()
            except OSError:
                continue  # the process ended meanwhile
            if int(fields[1]) == postmaster:
                children.append(int(Path(stat).parent.name))
        return [postmaster, *children]

    def is_running(self) -> bool:
        status = subprocess.run(
            [str(self.bin / "pg_ctl"), "status", "-D", str(self.data)],
            capture_output=True,
            check=False,
            **self._run_as,
        )
        return status.returncode == 0

    def _pg(self, program: str, *arguments: str) -> None:
        subprocess.run(
            [str(self.bin / program), *arguments],
            capture_output=True,
            check=True,
            timeout=60,
            **self._run_as,
        )

    def _wait_until_it_answers(self, timeout: float = 30) -> None:
        deadline = time.monotonic() + timeout
        while True:
            try:
                psycopg.connect(
                    f"host=127.0.0.1 port={self.port} user=postgres dbname=postgres",
                    connect_timeout=2,
                ).close()
                return
            except psycopg.OperationalError:
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.05)


@contextmanager
def postgres_server() -> Iterator[PostgresServer]:
    """A new cluster, started; stopped at once and removed when the block ends."""
    # Not under pytest's temporary folder: as root, its folders are closed to the postgres account.
    directory = Path(tempfile.mkdtemp(prefix="ebox-postgres-"))
    server = PostgresServer(directory)
    try:
        server.initdb()
        server.start()
        yield server
    finally:
        if server.data.exists() and server.is_running():
            server.stop("immediate")
        shutil.rmtree(directory, ignore_errors=True)
