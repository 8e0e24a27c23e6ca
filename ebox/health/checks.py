"""Whether each dependency answers: for /readyz and for the SOAP healthCheck operation."""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable

from sqlalchemy import text

from ebox import outages
from ebox.extensions import db
from ebox.redis_connection import redis_for_app
from ebox.storage.services import check_storage

log = logging.getLogger(__name__)


def _check_database() -> None:
    db.session.execute(text("SELECT 1"))


def _check_redis() -> None:
    redis_for_app(fail_fast=True).ping()


CHECKS: dict[str, Callable[[], None]] = {
    "database": _check_database,
    "storage": check_storage,
    "redis": _check_redis,
}


def run_checks(names: Iterable[str]) -> dict[str, bool]:
    """Run the named checks; each is True when its dependency answered."""
    return {name: _passes(name, CHECKS[name]) for name in names}


def _passes(name: str, check: Callable[[], None]) -> bool:
    try:
        check()
    except Exception as exc:  # a health check reports every failure, whatever its kind
        log.warning("health check %s failed: %s", name, outages.describe(exc))
        return False
    return True
