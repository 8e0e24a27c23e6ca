"""Outages of the servers eBox depends on (PostgreSQL, Redis), told apart from its own errors.

A request that meets one is answered "try again later" (HTTP 503, or the SOAP Fault
SERVICE_UNAVAILABLE) with one warning line naming what cannot be reached, never a traceback:
a traceback would tell an operator nothing more, and hundreds of them would hide the rest.
"""

from __future__ import annotations

import logging
import sqlite3

import psycopg
from flask import request
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import TimeoutError as RedisTimeoutError
from sqlalchemy import exc as sqlalchemy_errors

DATABASE = "the database"
REDIS = "Redis"


def unavailable(error: BaseException) -> str | None:
    """What cannot be reached when error (or what caused it) is an outage; None otherwise."""
    seen: set[int] = set()
    current: BaseException | None = error
    while current is not None and id(current) not in seen:
        seen.add(id(current))
        if _is_database_outage(current):
            return DATABASE
        if isinstance(current, (RedisConnectionError, RedisTimeoutError)):
            return REDIS
        current = current.__cause__ or current.__context__
    return None


def _is_database_outage(error: BaseException) -> bool:
    if isinstance(error, sqlalchemy_errors.TimeoutError):  # no connection free in the pool
        return True
    if not isinstance(error, sqlalchemy_errors.DBAPIError):
        return False
    if error.connection_invalidated:
        return True
    # PostgreSQL: the connection failed or broke, or the server is shutting down, out of
    # resources or cancelled the statement. Its other errors (constraints, syntax) are ours.
    if isinstance(error.orig, psycopg.OperationalError):
        return True
    # SQLite: another process holds the write lock for longer than the busy timeout.
    return isinstance(error.orig, sqlite3.OperationalError) and "locked" in str(error.orig)


def describe(error: BaseException) -> str:
    """The error's kind and first line, for the one log line: never a statement's values
    (the engine hides them) nor a traceback."""
    first_line = str(error).strip().splitlines()[0] if str(error).strip() else ""
    return f"{type(error).__name__}: {first_line}" if first_line else type(error).__name__


def warn_request_answered_unavailable(log: logging.Logger, down: str, error: BaseException) -> None:
    """The one warning line, in the answering layer's log, of a request answered 503 because
    down cannot be reached."""
    log.warning(
        "%s %s answered 503: %s cannot be reached (%s)",
        request.method,
        request.path,
        down,
        describe(error),
    )
