"""Dossier file imports bounded in attempts (issue 19, second pass): an import whose run
keeps crashing (here a trigger raises on every event of its agency: a poison chunk) is
retried by the real arq worker and the reconciler at most DOSSIER_IMPORT_MAX_ATTEMPTS
times, each crash's exception type recorded; then it is failed with the reason, shown on
the console's imports page and in its JSON, logged, and no longer re-enqueued. A run that
commits a chunk starts the count again (a crash after progress resumes as before)."""

from __future__ import annotations

import logging
import secrets
import uuid
from contextlib import asynccontextmanager
from datetime import timedelta
from typing import Any

from sqlalchemy import text

from app.dossiers import tasks
from tests.dossiers.test_imports import (  # noqa: F401 (fixtures)
    BASE,
    import_row,
    place,
    scenario,
    upload,
)
from tests.routing.conftest import clock, staff_now, worker_for  # noqa: F401 (fixtures)
from tests.web.test_pages import browser_for


async def run_burst(clock) -> Any:  # noqa: F811
    """A real arq worker until the queue is empty, with the imports' reconciler as its
    only cron (at start); failed jobs are counted, not refused."""
    worker = worker_for(clock)
    worker.cron_jobs = [
        job for job in worker.cron_jobs if job.coroutine is tasks.reconcile_dossier_imports
    ]
    try:
        await worker.main()
    finally:
        await worker.close()
    return worker


@asynccontextmanager
async def poisoned(app, agency_id: uuid.UUID):
    """Every event of this agency raises in PostgreSQL while inside."""
    name = f"test_poison_{secrets.token_hex(4)}"
    async with app.state.engine.begin() as conn:
        await conn.execute(
            text(
                f"CREATE FUNCTION {name}() RETURNS trigger LANGUAGE plpgsql AS"
                " $$ BEGIN RAISE EXCEPTION 'poisoned chunk'; END $$"
            )
        )
        await conn.execute(
            text(
                f"CREATE TRIGGER {name} BEFORE INSERT ON dossier_events FOR EACH ROW"
                f" WHEN (NEW.agency_id = '{agency_id}') EXECUTE FUNCTION {name}()"
            )
        )
    try:
        yield
    finally:
        async with app.state.engine.begin() as conn:
            await conn.execute(text(f"DROP TRIGGER {name} ON dossier_events"))
            await conn.execute(text(f"DROP FUNCTION {name}()"))


def runs_of(caplog, import_id: str) -> list[logging.LogRecord]:
    return [
        r
        for r in caplog.records
        if r.getMessage() == "dossier_import_run" and getattr(r, "import_id", None) == import_id
    ]


async def test_an_import_that_keeps_crashing_fails_after_the_max_attempts(
    app,
    client,
    clock,  # noqa: F811
    place,  # noqa: F811
    settings,
    caplog,
):
    caplog.set_level(logging.INFO)
    admin = await staff_now(client, app, clock, [("admin", None)])
    most = settings.dossier_import_max_attempts
    async with poisoned(app, place.agency_id):
        r = await upload(
            client,
            admin["headers"],
            place.agency_code,
            scenario("PX" + secrets.token_hex(3), 3).body,
        )
        assert r.status_code == 201, r.text
        import_id = r.json()["id"]
        for attempt in range(1, most + 1):
            worker = await run_burst(clock)
            assert worker.jobs_failed == 1  # the run raised: arq records the failure
            row = await import_row(app, import_id)
            assert (row.status, row.attempts, row.last_error) == ("queued", attempt, "RaiseError")
            assert row.lines_done == 0  # nothing of the poisoned chunk was kept
            # the reconciler gives it another job once it has been idle long enough
            clock.advance(timedelta(seconds=settings.reconcile_after_seconds + 1))
        # the next run finds the attempts used up: failed, with the reason
        worker = await run_burst(clock)
        assert worker.jobs_failed == 0
    row = await import_row(app, import_id)
    assert (row.status, row.failure, row.attempts, row.last_error) == (
        "failed",
        "import_attempts_exhausted",
        most,
        "RaiseError",
    )
    assert row.finished_at == clock.now()
    [failed] = [r for r in caplog.records if r.getMessage() == "dossier_import_failed"]
    assert (failed.import_id, failed.reason, failed.attempts) == (
        import_id,
        "import_attempts_exhausted",
        most,
    )
    # the reconciler leaves it alone from now on
    caplog.clear()
    clock.advance(timedelta(minutes=10))
    await run_burst(clock)
    assert runs_of(caplog, import_id) == []
    assert (await import_row(app, import_id)).status == "failed"

    # the console: the JSON and the page say why
    r = await client.get(f"{BASE}/{import_id}", headers=admin["headers"])
    item = r.json()["item"]
    assert (item["status"], item["failure"], item["attempts"], item["last_error"]) == (
        "failed",
        "import_attempts_exhausted",
        most,
        "RaiseError",
    )
    browser = await browser_for(app, [("admin", None)])
    page = await browser.http.get(f"/console/dossier-imports/{import_id}")
    assert page.status_code == 200
    assert "đã chạy lại nhiều lần mà không tiến thêm được" in page.text


async def test_progress_starts_the_count_again(
    app,
    client,
    clock,  # noqa: F811
    place,  # noqa: F811
    settings,
):
    admin = await staff_now(client, app, clock, [("admin", None)])
    async with poisoned(app, place.agency_id):
        r = await upload(
            client,
            admin["headers"],
            place.agency_code,
            scenario("PY" + secrets.token_hex(3), 3).body,
        )
        import_id = r.json()["id"]
        for _ in range(2):
            assert (await run_burst(clock)).jobs_failed == 1
            clock.advance(timedelta(seconds=settings.reconcile_after_seconds + 1))
    assert (await import_row(app, import_id)).attempts == 2
    # the cause is gone: the next run applies the file, the count back at 0
    worker = await run_burst(clock)
    assert worker.jobs_failed == 0
    row = await import_row(app, import_id)
    assert (row.status, row.attempts, row.failure) == ("done", 0, None)
    assert row.accepted > 0
    assert row.last_error == "RaiseError"  # the last crash stays on record
