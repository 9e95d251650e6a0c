"""The import job's transition table (app/health/lifecycle.py): every edge made through
``transition`` on a real row, every other pair refused, a stale status changes nothing."""

from __future__ import annotations

import itertools
import uuid

import pytest

from app.health import lifecycle
from app.health.models import JOB_STATUSES


async def make_job(app, status: str) -> uuid.UUID:
    job_id = uuid.uuid4()
    async with app.state.engine.connect() as conn:
        raw = await conn.get_raw_connection()
        await raw.driver_connection.execute(
            "INSERT INTO health_import_jobs (id, kind, status, source)"
            " VALUES ($1, 'bulk', $2, 't')",
            job_id,
            status,
        )
    return job_id


async def status_of(app, job_id) -> dict:
    async with app.state.engine.connect() as conn:
        raw = await conn.get_raw_connection()
        row = await raw.driver_connection.fetchrow(
            "SELECT status, started_at, finished_at, failure_code FROM health_import_jobs"
            " WHERE id = $1",
            job_id,
        )
    return dict(row)


async def test_every_edge_is_made_and_written(health):
    app = health
    for (current, target), rule in lifecycle.TRANSITIONS.items():
        for action in rule.actions:
            job_id = await make_job(app, current)
            async with app.state.engine.connect() as conn:
                pg = (await conn.get_raw_connection()).driver_connection
                failure = "health_bulk_timeout" if target == "failed" else None
                assert await lifecycle.transition(pg, job_id, current, target, action, failure)
                # a second run that saw the old status changes nothing
                assert not await lifecycle.transition(pg, job_id, current, target, action)
            row = await status_of(app, job_id)
            assert row["status"] == target
            assert (row["finished_at"] is not None) == (target in lifecycle.FINISHED_STATUSES)
            assert (row["started_at"] is not None) == (current == "queued")
            assert row["failure_code"] == failure


def test_every_other_pair_is_refused():
    refused = 0
    for current, target in itertools.product(JOB_STATUSES, repeat=2):
        if (current, target) in lifecycle.TRANSITIONS:
            continue
        refused += 1
        assert not lifecycle.allows(current, target)
        with pytest.raises(lifecycle.InvalidTransition):
            lifecycle.check(current, target, "start")
    assert refused == len(JOB_STATUSES) ** 2 - len(lifecycle.TRANSITIONS)
    # an edge with an action it does not name
    assert not lifecycle.allows("exporting", "failed", "finish")
    assert lifecycle.sources("failed", "timeout") == ("exporting",)
    assert lifecycle.allowed_from("queued") == ["exporting", "failed", "importing"]
    assert set(lifecycle.UNFINISHED_STATUSES) | set(lifecycle.FINISHED_STATUSES) == set(
        JOB_STATUSES
    )
