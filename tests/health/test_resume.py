"""kill -9 of the real arq worker in the middle of an import (issue 20 item 3): the run
resumes from the last committed batch, and the job ends as the same files imported
without interruption: every line counted once, each error reported once."""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
from datetime import timedelta
from pathlib import Path

from sqlalchemy import text

from app import policy
from app.core import db
from app.core.clock import FixedClock
from app.health import service
from tests.health.conftest import generate, import_paths, job_errors, job_row
from tests.workers.test_worker import burst_worker

ROOT = Path(__file__).resolve().parents[2]
BATCH = 100


async def snapshot(app) -> list[tuple]:
    async with app.state.engine.connect() as conn:
        rows = await conn.execute(
            text(
                "SELECT r.resource_type, r.source_id, p.source_id, r.content_hash"
                " FROM health_resources r JOIN health_patients p ON p.id = r.patient_id"
                " ORDER BY 1, 2"
            )
        )
        return [tuple(r) for r in rows]


async def cursor_of(app, job_id, name: str) -> tuple[int, bool]:
    async with app.state.engine.connect() as conn:
        row = (
            await conn.execute(
                text("SELECT line, done FROM health_import_files WHERE job_id = :j AND name = :n"),
                {"j": job_id, "n": name},
            )
        ).one()
    return row.line, row.done


async def test_a_worker_killed_mid_import_resumes_from_the_last_committed_batch(
    health, data_dir, settings
):
    app = health
    generated = generate(data_dir, settings, count=12, seed=13)
    observations = generated.files["Observation"].read_text().splitlines()
    assert len(observations) > 3 * BATCH
    defect = 2 * BATCH + 50  # in the third batch of the Observation file
    observations[defect - 1] = '{"resourceType": "Observation", "id": '  # cut short
    generated.files["Observation"].write_text("\n".join(observations) + "\n")
    total = sum(generated.counts.values())

    # hold the errors table: the batch with the defect blocks half-written
    locker = await app.state.engine.connect()
    await locker.execute(text("LOCK TABLE health_import_errors IN SHARE MODE"))
    async with db.transaction(app.state.sessionmaker, app.state.redis) as session:
        job_id = await service.create_file_job(
            session, policy.system_actor(app.state.clock.now()), [str(data_dir)]
        )
    env = {
        **os.environ,
        "PYTHONPATH": str(ROOT),
        "HEALTH_IMPORT_BATCH_LINES": str(BATCH),
        "WORKER_JOB_TIMEOUT_SECONDS": "1",  # arq hands a dead worker's job on ~11 s later
    }
    worker = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "workers",
        cwd=ROOT,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
    )
    try:
        waiting = 0
        for _ in range(900):  # up to 90 s for the worker to start and reach the defect
            async with app.state.engine.connect() as probe:
                waiting = await probe.scalar(
                    text(
                        "SELECT count(*) FROM pg_stat_activity WHERE wait_event_type = 'Lock'"
                        " AND query LIKE '%health_import_errors%'"
                        " AND datname = current_database()"
                    )
                )
            if waiting:
                break
            await asyncio.sleep(0.1)
        assert waiting, "the worker never reached the batch with the defect"
        os.killpg(worker.pid, signal.SIGKILL)  # kill -9, mid-transaction
        await asyncio.wait_for(worker.wait(), 10)
    finally:
        if worker.returncode is None:
            os.killpg(worker.pid, signal.SIGKILL)
        await locker.rollback()
        await locker.close()

    # what the killed run left: whole batches and the cursor after the last of them
    line, done = await cursor_of(app, job_id, "Observation.ndjson")
    assert (line, done) == (2 * BATCH, False)
    killed = await job_row(app, job_id)
    assert killed["status"] == "importing" and killed["errors"] == 0
    assert await job_errors(app, job_id) == []

    # later: the reconciler sees the job has stopped moving and a run resumes it
    later = FixedClock(app.state.clock.now() + timedelta(minutes=10))
    resumed = burst_worker({"clock": later})
    try:
        await resumed.main()
    finally:
        await resumed.close()
    job = await job_row(app, job_id)
    assert job["status"] == "succeeded", job
    assert job["runs"] >= 2
    assert (job["lines"], job["imported"], job["errors"]) == (total, total - 1, 1)
    assert await job_errors(app, job_id) == [
        ("Observation.ndjson", defect, "health_line_malformed", None)
    ]
    assert await cursor_of(app, job_id, "Observation.ndjson") == (len(observations), True)

    # the same as the files imported in one go
    after_kill = await snapshot(app)
    async with app.state.engine.begin() as conn:
        await conn.execute(text("TRUNCATE health_patients, health_parties CASCADE"))
    clean = await import_paths(app, [data_dir])
    assert await snapshot(app) == after_kill
    again = await job_row(app, clean)
    assert (again["lines"], again["imported"], again["errors"]) == (total, total - 1, 1)
