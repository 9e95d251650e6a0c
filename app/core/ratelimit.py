"""Rate limits kept in Redis, with the `limits` library (sliding-window counters).

Chosen over a hand-written counter: it is maintained, supports several windows per rule
("3/10minutes;10/day") and reports when a window resets, which becomes Retry-After.
When Redis cannot be reached, limited actions fail closed with 503: sending sign-in
codes without a limit would let anyone flood a phone with SMS.
"""

from __future__ import annotations

import math
import time

from limits import parse_many
from limits.aio.storage import RedisStorage
from limits.aio.strategies import SlidingWindowCounterRateLimiter

from app.core.errors import ServiceUnavailable, TooManyRequests


class RateLimiter:
    def __init__(self, redis_url: str, prefix: str = "city-rl") -> None:
        uri = redis_url.replace("redis://", "async+redis://", 1)
        self._storage = RedisStorage(
            uri, implementation="redispy", key_prefix=prefix, wrap_exceptions=True
        )
        self._limiter = SlidingWindowCounterRateLimiter(self._storage)

    async def hit(self, rule: str, *identifiers: str) -> None:
        """Count one attempt against every window of ``rule``; 429 when any is full."""
        try:
            for item in parse_many(rule):
                if not await self._limiter.hit(item, *identifiers):
                    stats = await self._limiter.get_window_stats(item, *identifiers)
                    retry_after = max(1, math.ceil(stats.reset_time - time.time()))
                    raise TooManyRequests(
                        params={"retry_after": retry_after}, retry_after=retry_after
                    )
        except TooManyRequests:
            raise
        except Exception as exc:
            raise ServiceUnavailable("rate_limiter_unavailable") from exc

    async def clear(self, rule: str, *identifiers: str) -> None:
        for item in parse_many(rule):
            await self._limiter.clear(item, *identifiers)
