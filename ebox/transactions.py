"""One transaction per request or job step, and work that must wait for its commit.

Views and services never commit: services only flush. The request commits once when the
response is good and rolls back otherwise (see ebox.web); a job commits through commit() here,
between its steps where its correctness needs it (decision 0008). Side effects that must not
happen for a rolled-back change, such as sending an e-mail, are registered with after_commit().
"""

from __future__ import annotations

import logging
from collections.abc import Callable

from flask import g

from ebox.extensions import db

log = logging.getLogger(__name__)


def after_commit(callback: Callable[[], None]) -> None:
    """Run callback once the current transaction has committed; drop it on rollback."""
    g.setdefault("_after_commit", []).append(callback)


def after_rollback(callback: Callable[[], None]) -> None:
    """Run callback if the current transaction rolls back (undo work outside the database)."""
    g.setdefault("_after_rollback", []).append(callback)


def _run(callbacks: list[Callable[[], None]]) -> None:
    for callback in callbacks:
        try:
            callback()
        except Exception:
            log.exception("transaction callback %r failed", callback)


def commit() -> None:
    """Commit the session, then run what waited for it. Callbacks failing do not undo the commit."""
    try:
        db.session.commit()
    except Exception:
        rollback()
        raise
    g.pop("_after_rollback", None)
    _run(g.pop("_after_commit", []))


def rollback() -> None:
    db.session.rollback()
    g.pop("_after_commit", None)
    _run(g.pop("_after_rollback", []))
