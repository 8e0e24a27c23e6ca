"""Liveness and readiness for load balancers and orchestrators."""

from __future__ import annotations

import logging

from flask import Blueprint, current_app, jsonify
from flask.typing import ResponseReturnValue
from sqlalchemy import text

from ebox.extensions import csrf, db

log = logging.getLogger(__name__)
bp = Blueprint("health", __name__)
csrf.exempt(bp)


@bp.get("/healthz")
def healthz() -> ResponseReturnValue:
    """The process answers. Touches nothing else."""
    return jsonify(status="ok")


@bp.get("/readyz")
def readyz() -> ResponseReturnValue:
    """Every dependency this process needs answers: database, document store, Redis if set."""
    checks = {"database": _check_database, "storage": _check_storage}
    if current_app.config["EBOX"].redis_url:
        checks["redis"] = _check_redis
    results = {name: _run(name, check) for name, check in checks.items()}
    healthy = all(result == "ok" for result in results.values())
    return jsonify(
        status="ok" if healthy else "unavailable", checks=results
    ), 200 if healthy else 503


def _run(name: str, check: object) -> str:
    try:
        check()  # type: ignore[operator]
    except Exception as exc:  # a readiness probe reports every failure, whatever its kind
        log.warning("readiness check %s failed: %s", name, exc)
        return "failed"
    return "ok"


def _check_database() -> None:
    db.session.execute(text("SELECT 1"))


def _check_storage() -> None:
    from ebox.storage.services import check_storage

    check_storage()


def _check_redis() -> None:
    from redis import Redis

    Redis.from_url(current_app.config["EBOX"].redis_url, socket_timeout=2).ping()
