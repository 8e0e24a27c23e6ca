"""How many applications the public form takes: per client address and per e-mail address.

Each application that passes the form's checks takes one from two budgets: its client address's
(per hour; an IPv6 address counts with its /64 network, which one subscriber usually holds
whole) and its business contact address's (per day: each application sends that address a
confirmation e-mail). There is no budget per enterprise number, nor one for everybody together:
a stranger could spend either for the real applicant.

Counts live in eBox's Redis (EBOX_REDIS_URL, or the embedded one), so that every web process and
node shares them, under HMACs of the addresses, so that Redis holds none. When Redis cannot be
reached the form stays open and each process counts on its own, in memory, until Redis answers
again (docs/decisions/0013).
"""

from __future__ import annotations

import hashlib
import hmac
import ipaddress
import logging
import math
import time
from dataclasses import dataclass, field

from flask import current_app
from limits import RateLimitItem, RateLimitItemPerDay, RateLimitItemPerHour
from limits.storage import MemoryStorage, RedisStorage
from limits.strategies import MovingWindowRateLimiter
from redis.exceptions import RedisError

from ebox.config import Settings, current_settings
from ebox.redis_connection import redis_for_app

log = logging.getLogger(__name__)

# current_app.extensions[EXTENSION]: the limiters of the application, by Redis it counts in.
EXTENSION = "ebox.applications.rate_limits"
KEY_PREFIX = "ebox-applications"
# After a failure Redis is tried again this much later, not on every request.
REDIS_RETRY_SECONDS = 30.0
BUDGET_CLIENT = "client"
BUDGET_EMAIL = "email"


class TooManySubmissions(Exception):
    def __init__(self, *, budget: str, retry_after: int) -> None:
        super().__init__(f"the {budget} budget is spent for {retry_after} s")
        self.budget = budget  # BUDGET_CLIENT or BUDGET_EMAIL
        self.retry_after = retry_after  # seconds


@dataclass
class _Limiters:
    shared: MovingWindowRateLimiter
    local: MovingWindowRateLimiter = field(
        default_factory=lambda: MovingWindowRateLimiter(MemoryStorage())
    )
    shared_down_until: float = 0.0


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
    """None when taken; otherwise the seconds until the budget has room again."""
    limiters = _limiters()
    if time.monotonic() >= limiters.shared_down_until:
        try:
            return _take_from(limiters.shared, limit, identifiers)
        except (RedisError, OSError) as error:
            limiters.shared_down_until = time.monotonic() + REDIS_RETRY_SECONDS
            log.warning(
                "application limits: Redis cannot be reached (%s); this process counts alone",
                type(error).__name__,
            )
    return _take_from(limiters.local, limit, identifiers)


def _take_from(
    limiter: MovingWindowRateLimiter, limit: RateLimitItem, identifiers: tuple[str, ...]
) -> int | None:
    if limiter.hit(limit, *identifiers):
        return None
    reset_at = limiter.get_window_stats(limit, *identifiers).reset_time
    return max(1, math.ceil(reset_at - time.time()))


def _limiters() -> _Limiters:
    """The application's limiters, made on first use, for the Redis its settings name."""
    settings = current_settings()
    made: dict[str, _Limiters] = current_app.extensions.setdefault(EXTENSION, {})
    key = f"{settings.redis_url}:{settings.instance_path}"
    if key not in made:
        # No retries and a short connect timeout: a form must not wait for a Redis that is down.
        pool = redis_for_app(fail_fast=True).connection_pool
        storage = RedisStorage("redis://", connection_pool=pool, key_prefix=KEY_PREFIX)
        made.setdefault(key, _Limiters(shared=MovingWindowRateLimiter(storage)))
    return made[key]
