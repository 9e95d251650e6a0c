"""Enqueue after commit, on the machine's real Redis: a committed transaction sends its
jobs, a rolled-back one sends none, and a Redis outage never loses the database write."""

from __future__ import annotations

import uuid

import pytest
from arq.connections import ArqRedis
from redis.asyncio import ConnectionPool
from sqlalchemy import select, text

from app.core import db, jobs
from app.core.errors import BadRequest


@pytest.fixture
async def queue(settings):
    name = f"{settings.redis_prefix}:testqueue:{uuid.uuid4().hex[:6]}"
    redis = ArqRedis(
        pool_or_conn=ConnectionPool.from_url(settings.redis_url), default_queue_name=name
    )
    yield redis, name
    await redis.delete(name)
    await redis.aclose()


async def queued_ids(redis: ArqRedis, name: str) -> list[str]:
    prefix = f"{name}:"
    return sorted(j.decode().removeprefix(prefix) for j in await redis.zrange(name, 0, -1))


async def note(session, marker: str) -> None:
    await session.execute(
        text("INSERT INTO audit_log (actor_kind, action, object_id) VALUES ('system', 't', :m)"),
        {"m": marker},
    )


async def committed_marker(app, marker: str) -> bool:
    async with app.state.sessionmaker() as s:
        from app.core.audit import AuditEntry

        found = await s.scalar(select(AuditEntry.id).where(AuditEntry.object_id == marker))
        return found is not None


async def test_jobs_are_sent_only_after_commit(app, client, queue):
    redis, name = queue
    marker = uuid.uuid4().hex
    async with db.transaction(app.state.sessionmaker, redis) as session:
        await note(session, marker)
        jobs.enqueue("some_job", marker, job_id=f"some_job:{marker}")
        # nothing is in Redis while the transaction is open
        assert await queued_ids(redis, name) == []
    assert await queued_ids(redis, name) == [f"some_job:{marker}"]
    assert await committed_marker(app, marker)


async def test_a_double_enqueue_is_one_job(app, client, queue):
    redis, name = queue
    for _ in range(2):
        async with db.transaction(app.state.sessionmaker, redis):
            jobs.enqueue("some_job", "x", job_id="some_job:x")
    assert await queued_ids(redis, name) == ["some_job:x"]


async def test_rollback_drops_jobs_and_callbacks(app, client, queue):
    redis, name = queue
    marker = uuid.uuid4().hex
    called: list[str] = []

    async def callback() -> None:
        called.append("ran")

    with pytest.raises(RuntimeError):
        async with db.transaction(app.state.sessionmaker, redis) as session:
            await note(session, marker)
            jobs.enqueue("some_job", marker, job_id=f"some_job:{marker}")
            jobs.after_commit(callback)
            raise RuntimeError("crash mid-request")
    assert await queued_ids(redis, name) == []
    assert called == []
    assert not await committed_marker(app, marker)


async def test_domain_error_with_keep_writes_commits_then_raises(app, client, queue):
    redis, name = queue
    marker = uuid.uuid4().hex
    with pytest.raises(BadRequest):
        async with db.transaction(app.state.sessionmaker, redis) as session:
            await note(session, marker)
            jobs.enqueue("some_job", marker, job_id=f"some_job:{marker}")
            raise BadRequest("otp_invalid", keep_writes=True)
    assert await committed_marker(app, marker)
    assert await queued_ids(redis, name) == [f"some_job:{marker}"]


async def test_redis_down_never_loses_the_committed_write(app, client):
    dead = ArqRedis(
        pool_or_conn=ConnectionPool.from_url("redis://127.0.0.1:1/0", socket_connect_timeout=1)
    )
    marker = uuid.uuid4().hex
    async with db.transaction(app.state.sessionmaker, dead) as session:
        await note(session, marker)
        jobs.enqueue("some_job", marker, job_id=f"some_job:{marker}")
    assert await committed_marker(app, marker)
    await dead.aclose()


async def test_enqueue_outside_a_boundary_is_a_programming_error():
    import asyncio

    async def orphan() -> None:
        jobs.enqueue("some_job", job_id="x")

    # a fresh task has a fresh context: no boundary is open there
    with pytest.raises(RuntimeError):
        await asyncio.create_task(orphan(), context=__import__("contextvars").Context())


async def test_an_enqueue_after_a_boundary_ended_raises_instead_of_joining_its_list(
    app, client, queue
):
    """Before: begin() left its list in the contextvar, so an enqueue after the commit
    silently joined a list already sent (and the job was never sent)."""
    redis, name = queue
    async with db.transaction(app.state.sessionmaker, redis) as session:
        await note(session, uuid.uuid4().hex)
        jobs.enqueue("some_job", "first", job_id="some_job:first")
    assert jobs.current() is None
    with pytest.raises(RuntimeError, match="outside a transaction boundary"):
        jobs.enqueue("some_job", "late", job_id="some_job:late")
    with pytest.raises(RuntimeError):
        jobs.after_commit(lambda: None)  # type: ignore[arg-type,return-value]
    # a rolled-back boundary ends too
    with pytest.raises(ZeroDivisionError):
        async with db.transaction(app.state.sessionmaker, redis):
            1 / 0  # noqa: B018
    with pytest.raises(RuntimeError):
        jobs.enqueue("some_job", "late", job_id="some_job:late")
    assert await queued_ids(redis, name) == ["some_job:first"]


async def test_successive_boundaries_never_share_a_list(app, client, queue):
    redis, name = queue
    seen = []
    for n in range(2):
        async with db.transaction(app.state.sessionmaker, redis):
            jobs.enqueue("some_job", n, job_id=f"some_job:{n}")
            seen.append([job.job_id for job in jobs.current().jobs])
    assert seen == [["some_job:0"], ["some_job:1"]]
    assert await queued_ids(redis, name) == ["some_job:0", "some_job:1"]


async def test_nested_boundaries_each_flush_their_own_jobs(app, client, queue):
    redis, name = queue
    outer_marker, inner_marker = uuid.uuid4().hex, uuid.uuid4().hex
    async with db.transaction(app.state.sessionmaker, redis) as outer:
        await note(outer, outer_marker)
        jobs.enqueue("some_job", "outer-1", job_id="some_job:outer-1")
        async with db.transaction(app.state.sessionmaker, redis) as inner:
            await note(inner, inner_marker)
            jobs.enqueue("some_job", "inner", job_id="some_job:inner")
        # the inner one committed and sent its own job only
        assert await queued_ids(redis, name) == ["some_job:inner"]
        # and handed the outer boundary back: this joins the outer list
        jobs.enqueue("some_job", "outer-2", job_id="some_job:outer-2")
        assert [job.job_id for job in jobs.current().jobs] == [
            "some_job:outer-1",
            "some_job:outer-2",
        ]
    assert await queued_ids(redis, name) == [
        "some_job:inner",
        "some_job:outer-1",
        "some_job:outer-2",
    ]
    assert jobs.current() is None
