"""Stored import files purged (issue 19, second pass): the daily job, run by the real arq
worker, deletes the files of imports finished more than DOSSIER_IMPORT_FILE_RETENTION_DAYS
ago (done or failed; the rows, counts and refused lines stay, ``file_purged_at`` set) and
stored import files no import names once they are a day old; nothing else. A second run
finds nothing to do."""

from __future__ import annotations

import os
import secrets
import time
import uuid
from datetime import timedelta
from pathlib import Path

from sqlalchemy import text

from tests.conftest import STORAGE_DIR
from tests.dossiers.test_imports import (  # noqa: F401 (fixtures)
    BASE,
    error_lines,
    import_row,
    place,
    run_worker,
    scenario,
    upload,
)
from tests.routing.conftest import clock, staff_now  # noqa: F401 (fixtures)

JOB = "purge_dossier_import_files"


def stored(key: str) -> Path:
    return Path(STORAGE_DIR, key)


def written_days_ago(path: Path, days: float) -> None:
    moment = time.time() - days * 86400
    os.utime(path, (moment, moment))


def stray(name: str, days: float) -> str:
    """A file in the import store that no import names, written ``days`` ago."""
    key = f"dossier-imports/2026/01/{name}.ndjson"
    path = stored(key)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(b'{"id": "x"}\n')
    written_days_ago(path, days)
    return key


async def finished_days_ago(app, import_id: str, days: int, now, status: str = "done") -> None:
    async with app.state.engine.begin() as conn:
        await conn.execute(
            text("UPDATE dossier_imports SET finished_at = :at, status = :s WHERE id = :i"),
            {"at": now - timedelta(days=days), "s": status, "i": uuid.UUID(import_id)},
        )


async def test_the_daily_job_deletes_expired_and_orphaned_files_only(
    app,
    client,
    clock,  # noqa: F811
    place,  # noqa: F811
    settings,
):
    admin = await staff_now(client, app, clock, [("admin", None)])
    ids = []
    for _ in range(3):
        r = await upload(
            client,
            admin["headers"],
            place.agency_code,
            scenario("PG" + secrets.token_hex(3), 12).body,
        )
        assert r.status_code == 201, r.text
        ids.append(r.json()["id"])
    await run_worker(clock)
    old, recent, failed = ids
    keys = {i: (await import_row(app, i)).object_key for i in ids}
    refused_before = await error_lines(app, old)
    assert refused_before  # the scenario refuses some lines: they must stay
    now = clock.now()
    days = settings.dossier_import_file_retention_days
    await finished_days_ago(app, old, days + 1, now)
    await finished_days_ago(app, recent, days - 1, now)
    await finished_days_ago(app, failed, days + 3, now, status="failed")
    for key in keys.values():  # old on disk too: only the rows decide for named files
        written_days_ago(stored(key), 60)
    orphan, fresh_orphan = stray(f"orphan-{uuid.uuid4()}", 2), stray(f"new-{uuid.uuid4()}", 0.5)

    await app.state.redis.enqueue_job(JOB)
    await run_worker(clock)

    assert not stored(keys[old]).exists() and not stored(keys[failed]).exists()
    assert stored(keys[recent]).exists()
    assert not stored(orphan).exists()
    assert stored(fresh_orphan).exists()  # an upload whose row may not be committed yet
    for i, purged in ((old, True), (failed, True), (recent, False)):
        row = await import_row(app, i)
        assert (row.file_purged_at == now) is purged, i
    # the import's record stays: counts and refused lines
    row = await import_row(app, old)
    assert (row.status, row.accepted > 0) == ("done", True)
    assert await error_lines(app, old) == refused_before
    r = await client.get(f"{BASE}/{old}", headers=admin["headers"])
    assert r.json()["item"]["file_purged_at"] is not None

    # again: nothing more to do, nothing else touched
    await app.state.redis.enqueue_job(JOB)
    await run_worker(clock)
    assert stored(keys[recent]).exists() and stored(fresh_orphan).exists()
    assert (await import_row(app, old)).file_purged_at == now
    stored(fresh_orphan).unlink()
