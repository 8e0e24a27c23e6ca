"""Housekeeping of the SOAP layer, run on the schedule in ebox/schedule.py."""

from __future__ import annotations

import logging

from ebox import transactions
from ebox.db_types import utcnow
from ebox.soap import services

log = logging.getLogger(__name__)


def forget_expired_requests() -> int:
    """Drop the replay guard's record of signed requests that can no longer be replayed."""
    forgotten = services.forget_expired_requests(utcnow())
    transactions.commit()
    log.debug("%d expired replay keys forgotten", forgotten)
    return forgotten
