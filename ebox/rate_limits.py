"""Budgets counted in eBox's Redis, shared by every web process and node: a moving window per
key. When Redis cannot be reached each process counts on its own, in memory, until Redis answers
again: a limit stays a limit, only looser, and nothing waits for a Redis that is down
(decision 0013). Used by the applications form (per client, per e-mail address) and the REST API
(per sender).
"""

from __future__ import annotations

import logging
import math
import time
from dataclasses import dataclass, field

from flask import current_app
from limits import RateLimitItem
from limits.storage import MemoryStorage, RedisStorage
from limits.strategies import MovingWindowRateLimiter
from redis.exceptions import RedisError

from ebox.config import current_settings
from ebox.redis_connection import redis_for_app

log = logging.getLogger(__name__)

# current_app.extensions[EXTENSION]: the limiters of the application, by Redis and key prefix.
EXTENSION = "ebox.rate_limits"
# After a failure Redis is tried again this much later, not on every request.
REDIS_RETRY_SECONDS = 30.0


@dataclass
class _Limiters:
    shared: MovingWindowRateLimiter
    local: MovingWindowRateLimiter = field(
        default_factory=lambda: MovingWindowRateLimiter(MemoryStorage())
    )
    shared_down_until: float = 0.0


def take(limit: RateLimitItem, *identifiers: str, key_prefix: str) -> int | None:
    """Take one from the budget; None when taken, else the seconds until it has room again."""
    limiters = _limiters(key_prefix)
    if time.monotonic() >= limiters.shared_down_until:
        try:
            return _take_from(limiters.shared, limit, identifiers)
        except (RedisError, OSError) as error:
            limiters.shared_down_until = time.monotonic() + REDIS_RETRY_SECONDS
            log.warning(
                "%s limits: Redis cannot be reached (%s); this process counts alone",
                key_prefix,
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


def _limiters(key_prefix: str) -> _Limiters:
    """The application's limiters, made on first use, for the Redis its settings name."""
    settings = current_settings()
    made: dict[str, _Limiters] = current_app.extensions.setdefault(EXTENSION, {})
    key = f"{settings.redis_url}:{settings.instance_path}:{key_prefix}"
    if key not in made:
        # No retries and a short connect timeout: a request must not wait for a Redis that is down.
        pool = redis_for_app(fail_fast=True).connection_pool
        storage = RedisStorage("redis://", connection_pool=pool, key_prefix=key_prefix)
        made.setdefault(key, _Limiters(shared=MovingWindowRateLimiter(storage)))
    return made[key]
