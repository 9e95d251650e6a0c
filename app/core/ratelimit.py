"""Rate limits kept in Redis, with the `limits` library (sliding-window counters).

Chosen over a hand-written counter: it is maintained, supports several windows per rule
("3/10minutes;10/day") and reports when a window resets, which becomes Retry-After.
When Redis cannot be reached, limited actions fail closed with 503: sending sign-in
codes without a limit would let anyone flood a phone with SMS. Limits that only shield
the city from floods of its own records (filing, photo uploads) pass ``fail_open=True``:
losing Redis may delay work, never stop a resident filing (DESIGN.md).

Two ways to count: :meth:`RateLimiter.hit` counts every attempt and refuses past the
limit; :meth:`RateLimiter.check` + :meth:`RateLimiter.count` refuse only once enough
*failures* were counted, so people who get it right are never throttled by others.
:meth:`RateLimiter.failures` / :meth:`RateLimiter.record_failure` keep the failure
times themselves (a Redis sorted set per key), for slowing down rather than locking out.

:meth:`RateLimiter.hit` is on hot paths (every public dossier lookup), so it does what
the library's sliding-window counter does, for every window of the rule, in ONE Lua call
(the library makes one per window, each with its own key building and script dispatch):
the same keys, the same arithmetic, windows counted in order up to the first that is
full (issue 19, second pass). Rules are parsed once per distinct string.
"""

from __future__ import annotations

import functools
import logging
import math
import secrets
import time
from collections.abc import Sequence
from typing import Any

from limits import RateLimitItem
from limits import parse_many as _parse_many
from limits.aio.storage import RedisStorage
from limits.aio.strategies import SlidingWindowCounterRateLimiter
from redis.asyncio import Redis

from app.core.errors import ServiceUnavailable, TooManyRequests

log = logging.getLogger("city.ratelimit")

# failure times kept per key at most (a key under attack must not grow without bound)
MAX_FAILURES_KEPT = 1000

# limits' acquire_sliding_window.lua (5.x), looped over the windows of a rule: KEYS are
# (previous, current) per window, ARGV (limit, expiry seconds) per window then the amount.
# Returns 0 when every window took the hit, else the 1-based number of the first window
# that was full (the windows before it have counted the hit, as the library's loop does).
_ACQUIRE_ALL = """
local amount = tonumber(ARGV[#ARGV])
for w = 1, #KEYS / 2 do
    local previous_key = KEYS[2 * w - 1]
    local current_key = KEYS[2 * w]
    local limit = tonumber(ARGV[2 * w - 1])
    local expiry = tonumber(ARGV[2 * w]) * 1000
    if amount > limit then
        return w
    end
    local current_ttl = tonumber(redis.call('pttl', current_key))
    if current_ttl > 0 and current_ttl < expiry then
        redis.call('rename', current_key, previous_key)
        redis.call('set', current_key, 0, 'PX', current_ttl + expiry)
    end
    local previous_count = tonumber(redis.call('get', previous_key)) or 0
    local previous_ttl = tonumber(redis.call('pttl', previous_key)) or 0
    local current_count = tonumber(redis.call('get', current_key)) or 0
    current_ttl = tonumber(redis.call('pttl', current_key)) or 0
    if previous_ttl <= 0 then
        previous_ttl = 0
    end
    if current_ttl <= 0 then
        current_ttl = 0
    end
    local weighted_count = math.floor(previous_count * previous_ttl / expiry) + current_count
    if (weighted_count + amount) > limit then
        return w
    end
    if redis.call('exists', current_key) == 1 then
        redis.call('incrby', current_key, amount)
    else
        redis.call('set', current_key, amount, 'PX', expiry * 2)
    end
end
return 0
"""


@functools.lru_cache(maxsize=256)
def parse_many(rule: str) -> tuple[RateLimitItem, ...]:
    """The windows of a rule ("60/minute;1000/hour"), parsed once per distinct rule."""
    return tuple(_parse_many(rule))


class RateLimiter:
    def __init__(self, redis_url: str, prefix: str = "city-rl") -> None:
        uri = redis_url.replace("redis://", "async+redis://", 1)
        self._storage = RedisStorage(
            uri, implementation="redispy", key_prefix=prefix, wrap_exceptions=True
        )
        self._limiter = SlidingWindowCounterRateLimiter(self._storage)
        self._redis_url = redis_url
        self._redis: Redis | None = None
        self._prefix = prefix
        self._acquire_all: Any = None

    async def hit(self, rule: str, *identifiers: str, fail_open: bool = False) -> None:
        """Count one attempt against every window of ``rule``; 429 when any is full.
        Redis unreachable: 503, or with ``fail_open`` a logged warning and no limit."""
        items = parse_many(rule)
        try:
            keys: list[str] = []
            args: list[int] = []
            for item in items:
                # the library's keys: "<prefix>:{<key_for>}/-1" and "<prefix>:{<key_for>}"
                current = f"{self._prefix}:{{{item.key_for(*identifiers)}}}"
                keys += (f"{current}/-1", current)
                args += (item.amount, item.get_expiry())
            if self._acquire_all is None:
                self._acquire_all = self._client().register_script(_ACQUIRE_ALL)
            full = int(await self._acquire_all(keys=keys, args=[*args, 1]))
            if full:
                raise await self._too_many(items[full - 1], identifiers)
        except TooManyRequests:
            raise
        except Exception as exc:
            if fail_open:
                log.warning("rate_limit_skipped", extra={"error": type(exc).__name__})
                return
            raise ServiceUnavailable("rate_limiter_unavailable") from exc

    async def check(self, rule: str, *identifiers: str) -> None:
        """429 when any window of ``rule`` is already full; counts nothing."""
        try:
            for item in parse_many(rule):
                if not await self._limiter.test(item, *identifiers):
                    raise await self._too_many(item, identifiers)
        except TooManyRequests:
            raise
        except Exception as exc:
            raise ServiceUnavailable("rate_limiter_unavailable") from exc

    async def count(self, rule: str, *identifiers: str) -> None:
        """Count one event (a failure) in every window of ``rule``, refusing nothing."""
        try:
            for item in parse_many(rule):
                await self._limiter.hit(item, *identifiers)
        except Exception as exc:
            raise ServiceUnavailable("rate_limiter_unavailable") from exc

    async def used(self, rule: str, *identifiers: str) -> int:
        """How much of the fullest window of ``rule`` is used."""
        used = 0
        try:
            for item in parse_many(rule):
                stats = await self._limiter.get_window_stats(item, *identifiers)
                used = max(used, item.amount - stats.remaining)
        except Exception as exc:
            raise ServiceUnavailable("rate_limiter_unavailable") from exc
        return used

    async def _too_many(self, item, identifiers: Sequence[str]) -> TooManyRequests:  # noqa: ANN001
        stats = await self._limiter.get_window_stats(item, *identifiers)
        retry_after = max(1, math.ceil(stats.reset_time - time.time()))
        return TooManyRequests(params={"retry_after": retry_after}, retry_after=retry_after)

    async def clear(self, rule: str, *identifiers: str) -> None:
        for item in parse_many(rule):
            await self._limiter.clear(item, *identifiers)

    # ------------------------------------------------------------ failure times

    def _client(self) -> Redis:
        if self._redis is None:
            self._redis = Redis.from_url(
                self._redis_url, socket_connect_timeout=2, socket_timeout=5
            )
        return self._redis

    def _failure_key(self, *identifiers: str) -> str:
        return f"{self._prefix}:failures:" + "/".join(identifiers)

    async def failures(
        self, keys: Sequence[Sequence[str]], now: float, window_seconds: int
    ) -> list[tuple[int, float | None]]:
        """For each key: how many failures within the window, and when the last one was;
        one round trip."""
        try:
            async with self._client().pipeline(transaction=False) as pipe:
                for identifiers in keys:
                    key = self._failure_key(*identifiers)
                    pipe.zremrangebyscore(key, "-inf", now - window_seconds)
                    pipe.zcard(key)
                    pipe.zrange(key, -1, -1, withscores=True)
                results = await pipe.execute()
        except Exception as exc:
            raise ServiceUnavailable("rate_limiter_unavailable") from exc
        return [
            (results[i + 1], results[i + 2][0][1] if results[i + 2] else None)
            for i in range(0, len(results), 3)
        ]

    async def record_failure(
        self, keys: Sequence[Sequence[str]], now: float, window_seconds: int
    ) -> None:
        member = f"{now}:{secrets.token_hex(4)}"
        try:
            async with self._client().pipeline(transaction=False) as pipe:
                for identifiers in keys:
                    key = self._failure_key(*identifiers)
                    pipe.zadd(key, {member: now})
                    pipe.zremrangebyrank(key, 0, -MAX_FAILURES_KEPT - 1)
                    pipe.expire(key, window_seconds)
                await pipe.execute()
        except Exception as exc:
            raise ServiceUnavailable("rate_limiter_unavailable") from exc
