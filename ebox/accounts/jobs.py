"""Account housekeeping run on the schedule in ebox/schedule.py."""

from __future__ import annotations

from ebox import transactions
from ebox.accounts.services import forget_expired_assertions as forget
from ebox.db_types import utcnow


def forget_expired_assertions() -> int:
    """Drop the replay guard's record of SAML assertions that can no longer be replayed."""
    forgotten = forget(utcnow())
    transactions.commit()
    return forgotten
