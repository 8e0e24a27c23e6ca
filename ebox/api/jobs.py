"""Housekeeping of the REST API, run on the schedule in ebox/schedule.py."""

from __future__ import annotations

import logging

from ebox import transactions
from ebox.db_types import utcnow

from . import idempotency

log = logging.getLogger(__name__)

BATCH_SIZE = 1000


def forget_old_idempotency_keys() -> int:
    """Delete the Idempotency-Keys older than a day, batch by batch (each its own commit, so a
    long backlog never holds one long transaction). Safe to run twice. Returns how many."""
    now = utcnow()
    forgotten = 0
    while True:
        deleted = idempotency.forget_old_keys(now, batch_size=BATCH_SIZE)
        transactions.commit()
        forgotten += deleted
        if deleted < BATCH_SIZE:
            break
    log.debug("%d old Idempotency-Keys forgotten", forgotten)
    return forgotten
