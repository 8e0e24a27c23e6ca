"""Housekeeping of applications, run on the schedule in ebox/schedule.py."""

from __future__ import annotations

import logging

from ebox import transactions
from ebox.applications import services
from ebox.db_types import utcnow

log = logging.getLogger(__name__)


def forget_unconfirmed_applications() -> int:
    """Delete the forms whose confirmation link has expired, with the names, addresses and
    certificate they hold (a confirmed one is only a marker by then). Safe to run twice."""
    forgotten = services.forget_unconfirmed_applications(now=utcnow())
    transactions.commit()
    if forgotten:
        log.info("%d unconfirmed applications forgotten", forgotten)
    return forgotten
