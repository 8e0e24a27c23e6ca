"""What the benchmarks share: a throw-away PostgreSQL database and a free loopback port."""

from __future__ import annotations

import argparse
import contextlib
import socket
import time
from collections.abc import Iterator

from sqlalchemy import create_engine, text
from sqlalchemy.engine import make_url


def add_database_options(parser: argparse.ArgumentParser, name: str) -> None:
    """--database-server, --database (default name) and --keep-database, for fresh_database()."""
    parser.add_argument(
        "--database-server", default="postgresql+psycopg://postgres@127.0.0.1:5432/postgres"
    )
    parser.add_argument("--database", default=name)
    parser.add_argument("--keep-database", action="store_true")


@contextlib.contextmanager
def fresh_database(server_url: str, name: str, *, keep: bool = False) -> Iterator[str]:
    """A new, empty database on the server, dropped when the block ends (unless keep)."""
    admin = create_engine(server_url, isolation_level="AUTOCOMMIT")
    with admin.connect() as connection:
        connection.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        connection.execute(text(f'CREATE DATABASE "{name}"'))
    try:
        yield make_url(server_url).set(database=name).render_as_string(hide_password=False)
    finally:
        if keep:
            print(f"database {name} kept")
        else:
            with admin.connect() as connection:
                connection.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def settle(url: str) -> None:
    """What a production database has after the fact: statistics, a visibility map, and no
    checkpoint of the load pending during the measurement."""
    engine = create_engine(url, isolation_level="AUTOCOMMIT")
    started = time.perf_counter()
    with engine.connect() as connection:
        connection.execute(text("VACUUM (ANALYZE)"))
        connection.execute(text("CHECKPOINT"))
    engine.dispose()
    print(f"  VACUUM ANALYZE + CHECKPOINT in {time.perf_counter() - started:.0f} s")
