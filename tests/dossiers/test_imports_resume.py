"""Dossier file imports survive a worker killed mid-file (issue 19 item 2): a real arq
worker process is killed with SIGKILL while a chunk is half-applied; the import resumes
from the last committed chunk (nothing of the killed chunk is kept, nothing committed is
applied again) and ends exactly as the same file imported without interruption. And the
events' ids are idempotent on their own: a chunk applied a second time changes nothing."""

from __future__ import annotations

import asyncio
import os
import secrets
import signal
import subprocess
import sys
import uuid
from datetime import timedelta
from pathlib import Path
from typing import Any

from sqlalchemy import func, select, text, update

from app.core import db
from app.dossiers import imports
from app.dossiers.models import Dossier, DossierEvent, DossierImport, DossierImportError
from tests.dossiers.test_imports import (
    error_lines,
    event_count,
    import_row,
    make_place,
    run_worker,
    scenario,
    statuses,
    upload,
)
from tests.routing.conftest import clock, staff_now  # noqa: F401 (fixtures)

ROOT = Path(__file__).resolve().parents[2]
WAITING_ON_ERRORS = text(
    "SELECT count(*) FROM pg_stat_activity WHERE wait_event_type = 'Lock'"
    " AND query ILIKE '%INSERT INTO dossier_import_errors%' AND datname = current_database()"
)


async def final_state(app, import_id: str, prefix: str) -> dict[str, Any]:
    """What an import leaves, with the file's own prefix taken out of the codes."""
    row = await import_row(app, import_id)
    async with app.state.sessionmaker() as s:
        errors = (
            await s.execute(
                select(
                    DossierImportError.line,
                    DossierImportError.code,
                    DossierImportError.detail,
                    DossierImportError.params,
                )
                .where(DossierImportError.import_id == row.id)
                .order_by(DossierImportError.line)
            )
        ).all()
        dossiers = (
            await s.execute(
                select(
                    Dossier.code,
                    Dossier.status,
                    Dossier.received_at,
                    Dossier.status_at,
                    Dossier.applicant_id_last4,
                    func.count(DossierEvent.id),
                )
                .join(DossierEvent, DossierEvent.dossier_id == Dossier.id)
                .where(Dossier.agency_id == row.agency_id)
                .group_by(Dossier.id)
            )
        ).all()
    return {
        "row": (
            row.status,
            row.size_bytes,
            row.bytes_done,
            row.lines_done,
            row.accepted,
            row.duplicates,
            row.refused,
        ),
        "errors": [tuple(e) for e in errors],
        "dossiers": sorted((d[0].replace(prefix, "*"), *d[1:]) for d in dossiers),
    }


async def test_a_worker_killed_mid_file_resumes_from_the_last_committed_chunk(
    app,
    client,
    clock,  # noqa: F811
):
    tag = secrets.token_hex(3)
    first, second = await make_place(app), await make_place(app)
    admin = await staff_now(client, app, clock, [("admin", None)])
    # the same file twice over (codes and ids apart): one imported without interruption
    whole = scenario(f"KA{tag}", 300)
    killed = scenario(f"KB{tag}", 300)
    assert len(whole.body) == len(killed.body)
    r = await upload(client, admin["headers"], first.agency_code, whole.body)
    await run_worker(clock)
    expected = await final_state(app, r.json()["id"], f"KA{tag}")
    assert expected["row"][0] == "done"

    r = await upload(client, admin["headers"], second.agency_code, killed.body)
    assert r.status_code == 201, r.text
    import_id = r.json()["id"]
    # Hold the errors table: the worker's first chunk stops before its commit. Then
    # queue a second holder behind the worker, and let the first go: the first chunk
    # commits, the second holder takes the table, the second chunk stops half-applied.
    first_hold = await app.state.engine.connect()
    second_hold = await app.state.engine.connect()
    await first_hold.begin()
    await first_hold.execute(text("LOCK TABLE dossier_import_errors IN ACCESS EXCLUSIVE MODE"))
    env = {
        **os.environ,
        "PYTHONPATH": str(ROOT),
        "WORKER_JOB_TIMEOUT_SECONDS": "2",  # arq retries a dead worker's job 12 s later
        "DOSSIER_IMPORT_CHUNK_LINES": "100",
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
        await wait_for(app, WAITING_ON_ERRORS, "the worker never reached its first chunk's errors")
        await second_hold.begin()
        queued = asyncio.create_task(
            second_hold.execute(text("LOCK TABLE dossier_import_errors IN ACCESS EXCLUSIVE MODE"))
        )
        await asyncio.sleep(0.5)  # the second holder's request is queued behind the worker's
        await first_hold.commit()
        await asyncio.wait_for(queued, 30)  # the first chunk committed, the table is held
        await wait_for(app, WAITING_ON_ERRORS, "the worker never reached its second chunk")
        committed = await import_row(app, import_id)
        assert committed.status == "running"
        assert 0 < committed.lines_done < len(killed.lines)
        os.killpg(worker.pid, signal.SIGKILL)  # kill -9, the second chunk half-applied
        await asyncio.wait_for(worker.wait(), 10)
    finally:
        if worker.returncode is None:
            os.killpg(worker.pid, signal.SIGKILL)
        await second_hold.rollback()
        await second_hold.close()
        await first_hold.close()

    # what is committed is the first chunk, whole, and nothing of the second
    row = await import_row(app, import_id)
    assert (row.status, row.lines_done, row.bytes_done) == (
        "running",
        committed.lines_done,
        committed.bytes_done,
    )
    assert await event_count(app, second.agency_id) == row.accepted
    assert set(await error_lines(app, import_id)) <= set(range(1, row.lines_done + 1))

    # a minute on, the reconciler gives the import a job from where it stands; the
    # killed job, retried by arq once its lease lapses, finds it done (the crons the
    # killed process had queued are other contexts' and are taken off the queue)
    await drop_queued_crons(app)
    clock.advance(timedelta(minutes=5))
    worker_run = await run_worker(clock)
    assert worker_run.jobs_complete >= 2
    got = await final_state(app, import_id, f"KB{tag}")
    assert got == {**expected, "dossiers": got["dossiers"]}
    assert got["dossiers"] == expected["dossiers"]


async def drop_queued_crons(app) -> None:
    redis = app.state.redis
    queue = app.state.settings.queue_name
    for job in await redis.queued_jobs(queue_name=queue):
        if "cron:" in job.function and job.job_id:
            await redis.zrem(queue, job.job_id)
            await redis.delete(f"arq:job:{job.job_id}")


async def wait_for(app, query, message: str, seconds: float = 120) -> None:
    """Until ``query`` counts something (the worker process takes a while to start)."""
    for _ in range(int(seconds * 10)):
        async with app.state.engine.connect() as probe:
            if await probe.scalar(query):
                return
        await asyncio.sleep(0.1)
    raise AssertionError(message)


async def test_a_chunk_applied_twice_changes_nothing(app, client, clock):  # noqa: F811
    """Were a chunk's progress lost after its events committed, running it again would
    find every event id already seen: duplicates, not a second application."""
    place = await make_place(app)
    admin = await staff_now(client, app, clock, [("admin", None)])
    s = scenario(f"I{secrets.token_hex(3)}", 40)
    r = await upload(client, admin["headers"], place.agency_code, s.body)
    import_id = uuid.UUID(r.json()["id"])
    await run_worker(clock)
    before = await import_row(app, import_id)
    events = await event_count(app, place.agency_id)
    states = await statuses(app, s.codes)
    async with db.transaction(app.state.sessionmaker, None) as session:
        await session.execute(
            update(DossierImport)
            .where(DossierImport.id == import_id)
            .values(status="running", bytes_done=0, lines_done=0, accepted=0, duplicates=0)
            .values(refused=0, finished_at=None)
        )
        await session.execute(
            DossierImportError.__table__.delete().where(DossierImportError.import_id == import_id)
        )
    result = await imports.run_import(
        app.state.sessionmaker,
        None,
        app.state.storage,
        app.state.settings,
        clock.now,
        import_id,
    )
    assert result.status == "done"
    again = await import_row(app, import_id)
    assert (again.accepted, again.duplicates, again.refused) == (
        0,
        before.accepted + before.duplicates,
        before.refused,
    )
    assert await error_lines(app, import_id) == s.refusals()
    assert await event_count(app, place.agency_id) == events
    assert await statuses(app, s.codes) == states
