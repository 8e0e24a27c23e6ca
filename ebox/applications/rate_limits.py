"""How many applications the public form takes: per client address and per e-mail address.

Each application that passes the form's checks takes one from two budgets: its client address's
(per hour; an IPv6 address counts with its /64 network, which one subscriber usually holds
whole) and its business contact address's (per day: each application sends that address a
confirmation e-mail). There is no budget per enterprise number, nor one for everybody together:
a stranger could spend either for the real applicant.

Counts live in eBox's Redis (EBOX_REDIS_URL, or the embedded one), so that every web process and
node shares them, under HMACs of the addresses, so that Redis holds none. When Redis cannot be
reached the form stays open and each process counts on its own, in memory, until Redis answers
again (ebox.rate_limits, decision 0013).
"""

from __future__ import annotations

import hashlib
import hmac
import ipaddress

from limits import RateLimitItem, RateLimitItemPerDay, RateLimitItemPerHour

from ebox import rate_limits
from ebox.config import Settings, current_settings

KEY_PREFIX = "ebox-applications"
BUDGET_CLIENT = "client"
BUDGET_EMAIL = "email"


class TooManySubmissions(Exception):
    def __init__(self, *, budget: str, retry_after: int) -> None:
        super().__init__(f"the {budget} budget is spent for {retry_after} s")
        self.budget = budget  # BUDGET_CLIENT or BUDGET_EMAIL
        self.retry_after = retry_after  # seconds


def count_submission(*, client_address: str, email: str) -> None:
    """Take one application from the client's budget, then from the e-mail address's.

    Raises TooManySubmissions for the first budget that is spent, and then takes nothing from
    the other: someone refused for their own client address spends nothing of the budget of an
    e-mail address they typed."""
    settings = current_settings()
    budgets: list[tuple[str, RateLimitItem, str]] = [
        (
            BUDGET_CLIENT,
            RateLimitItemPerHour(settings.applications_per_client_hour),
            _keyed(client_network(client_address), settings),
        ),
        (
            BUDGET_EMAIL,
            RateLimitItemPerDay(settings.applications_per_email_day),
            _keyed(email.lower(), settings),
        ),
    ]
    for budget, limit, key in budgets:
        retry_after = _take(limit, budget, key)
        if retry_after is not None:
            raise TooManySubmissions(budget=budget, retry_after=retry_after)


def client_network(address: str) -> str:
    """What one client is: its IPv4 address, or the /64 network of its IPv6 address."""
    try:
        parsed = ipaddress.ip_address(address)
    except ValueError:
        return address  # not an address (a test client, a misconfigured proxy): count it as is
    if isinstance(parsed, ipaddress.IPv6Address):
        if parsed.ipv4_mapped is not None:
            return str(parsed.ipv4_mapped)
        return str(ipaddress.IPv6Network(f"{parsed}/64", strict=False))
    return str(parsed)


def _keyed(value: str, settings: Settings) -> str:
    return hmac.new(settings.secret_key.encode(), value.encode(), hashlib.sha256).hexdigest()[:32]


def _take(limit: RateLimitItem, *identifiers: str) -> int | None:
    return rate_limits.take(limit, *identifiers, key_prefix=KEY_PREFIX)
