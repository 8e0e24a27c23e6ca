"""Liveness and readiness for load balancers and orchestrators."""

from __future__ import annotations

from flask import Blueprint, jsonify
from flask.typing import ResponseReturnValue

from ebox.extensions import csrf
from ebox.health.checks import CHECKS, run_checks

bp = Blueprint("health", __name__)
csrf.exempt(bp)


@bp.get("/healthz")
def healthz() -> ResponseReturnValue:
    """The process answers. Touches nothing else."""
    return jsonify(status="ok")


@bp.get("/readyz")
def readyz() -> ResponseReturnValue:
    """Every dependency this process needs answers: database, document store and Redis (the
    configured one, or the embedded one the worker starts)."""
    results = run_checks(CHECKS)
    healthy = all(results.values())
    checks = {name: "ok" if ok else "failed" for name, ok in results.items()}
    return jsonify(status="ok" if healthy else "unavailable", checks=checks), (
        200 if healthy else 503
    )
