"""The rate limiter's one-call hit over every window of a rule (issue 19, second pass)
keeps the `limits` library's keys and counting: what it counts the library reads back,
the windows before a full one have counted, and the full one refuses with Retry-After."""

from __future__ import annotations

import uuid

import pytest
from limits import parse_many as library_parse_many
from limits.aio.strategies import SlidingWindowCounterRateLimiter

from app.core.errors import ServiceUnavailable, TooManyRequests
from app.core.ratelimit import RateLimiter, parse_many


@pytest.fixture
async def limiter(settings):
    limiter = RateLimiter(settings.redis_url, prefix=f"{settings.redis_prefix}-rlw")
    yield limiter
    if limiter._redis is not None:
        await limiter._redis.aclose()


async def test_hits_are_counted_where_the_library_reads_them(limiter):
    who = uuid.uuid4().hex
    for _ in range(3):
        await limiter.hit("5/minute;10/hour", "w", who)
    assert await limiter.used("5/minute;10/hour", "w", who) == 3
    library = SlidingWindowCounterRateLimiter(limiter._storage)
    minute, hour = library_parse_many("5/minute;10/hour")
    assert (await library.get_window_stats(minute, "w", who)).remaining == 2
    assert (await library.get_window_stats(hour, "w", who)).remaining == 7
    # and what the library counts, hit() sees: 2 more fill the minute
    await library.hit(minute, "w", who)
    await library.hit(minute, "w", who)
    with pytest.raises(TooManyRequests) as refused:
        await limiter.hit("5/minute;10/hour", "w", who)
    assert 1 <= refused.value.retry_after <= 60


async def test_the_windows_before_a_full_one_have_counted(limiter):
    who = uuid.uuid4().hex
    for _ in range(2):
        await limiter.hit("100/minute;2/hour", "w", who)
    with pytest.raises(TooManyRequests) as refused:
        await limiter.hit("100/minute;2/hour", "w", who)
    assert refused.value.retry_after > 60  # the hour is the full window
    library = SlidingWindowCounterRateLimiter(limiter._storage)
    minute, hour = library_parse_many("100/minute;2/hour")
    assert (await library.get_window_stats(minute, "w", who)).remaining == 97
    assert (await library.get_window_stats(hour, "w", who)).remaining == 0
    await limiter.clear("100/minute;2/hour", "w", who)
    await limiter.hit("100/minute;2/hour", "w", who)  # cleared: counts again


def test_rules_are_parsed_once():
    assert parse_many("60/minute;1000/hour") is parse_many("60/minute;1000/hour")
    assert [i.amount for i in parse_many("60/minute;1000/hour")] == [60, 1000]


async def test_redis_unreachable_fails_closed_unless_told_to_fail_open():
    limiter = RateLimiter("redis://127.0.0.1:1/0", prefix="unreachable")  # nothing listens
    try:
        with pytest.raises(ServiceUnavailable):
            await limiter.hit("5/minute;10/hour", "w", "someone")
        await limiter.hit("5/minute;10/hour", "w", "someone", fail_open=True)  # no limit
    finally:
        if limiter._redis is not None:
            await limiter._redis.aclose()
