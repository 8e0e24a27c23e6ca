"""A bound on how long a request waits for PostgreSQL.

A stopped PostgreSQL refuses connections at once, but a frozen one (a stalled disk or host, a
process stopped by SIGSTOP) accepts them and never answers: the operating system acknowledges
what is sent, so neither TCP keepalives nor `tcp_user_timeout` ever fire, and a server-side
`statement_timeout` needs a server that runs. Without a bound of our own every web worker would
wait until gunicorn's timeout kills it, and the next request would wait the same way.

So while a request is answered, every wait on a PostgreSQL connection (a statement, the pool's
ping, a commit, the rollback when the request ends) gives up after
`EBOX_DATABASE_TIMEOUT_SECONDS`; the connection, in an unknown state, is closed and the pool
replaces it, and the request is answered as any database outage is (503 / SERVICE_UNAVAILABLE,
see ebox/outages.py). Connecting is bounded by libpq's `connect_timeout`, everywhere. Jobs and
commands are not bounded: a purge batch or a migration may rightly take longer, and the worker
has RQ's job timeout.
"""

from __future__ import annotations

import math
from contextvars import ContextVar
from functools import partial
from typing import Any

import psycopg
from flask import Flask
from psycopg.errors import _WaitTimeout  # the only sign psycopg gives of its own wait timeout
from sqlalchemy import event
from sqlalchemy.engine import Engine

from ebox.extensions import db


class _Bound:
    """The bound of the request being answered, and whether PostgreSQL already missed it."""

    def __init__(self, seconds: float) -> None:
        self.seconds = seconds
        self.missed = False


# Set for the time a request is answered, None outside requests.
_current_bound: ContextVar[_Bound | None] = ContextVar("database_wait_bound", default=None)


class DatabaseNotAnswering(psycopg.OperationalError):
    """PostgreSQL did not answer within the bound; the connection was closed."""


class BoundedConnection(psycopg.Connection[Any]):
    """A psycopg connection whose waits end at the current bound, when there is one."""

    def wait(self, gen: Any, interval: float = 0.1, timeout: float | None = None) -> Any:
        bound = _current_bound.get()
        if bound is None or timeout is not None:  # psycopg's own timed waits keep theirs
            return super().wait(gen, interval, timeout)
        try:
            return super().wait(gen, interval, bound.seconds)
        except _WaitTimeout:
            # Half a statement may be on its way: the connection cannot be used again.
            self.pgconn.finish()
            bound.missed = True
            raise DatabaseNotAnswering(
                f"PostgreSQL did not answer within {bound.seconds:g} s"
            ) from None


def init_app(app: Flask, seconds: float) -> None:
    """Bound the waits of app's requests on PostgreSQL. Call before db.init_app: teardown
    functions run in reverse order, so the bound is lifted only after the session's rollback."""

    def bound_the_waits() -> None:
        _current_bound.set(_Bound(seconds))

    def lift_the_bound(_error: BaseException | None) -> None:
        _current_bound.set(None)

    app.before_request(bound_the_waits)
    app.teardown_appcontext(lift_the_bound)


def use_bounded_connections(app: Flask, seconds: float) -> None:
    """Make app's PostgreSQL engines connect with BoundedConnection and libpq's connect_timeout
    (whole seconds, at least 2, as libpq counts them)."""
    with app.app_context():
        engines = [engine for engine in db.engines.values() if _is_postgresql(engine)]
    connect_timeout = max(2, math.ceil(seconds))
    for engine in engines:
        event.listen(engine, "do_connect", partial(_connect, connect_timeout))


def _connect(timeout: int, _dialect: Any, _record: Any, cargs: Any, cparams: Any) -> Any:
    bound = _current_bound.get()
    if bound is not None and bound.missed:
        # The pool pings, finds the connection closed and connects again: one wait is enough.
        raise DatabaseNotAnswering(f"PostgreSQL did not answer within {bound.seconds:g} s")
    cparams.setdefault("connect_timeout", timeout)
    return BoundedConnection.connect(*cargs, **cparams)


def _is_postgresql(engine: Engine) -> bool:
    return engine.dialect.name == "postgresql"
