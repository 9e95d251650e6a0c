"""The admin CLI's dossier import (issue 19 item 2): ``python -m app.cli dossier-import
--agency CODE FILE`` run as a process against the test database and store, as an admin
would on their machine: the file is stored and imported inline, the counts and refused
lines printed, the import listed like any other; a file refused outright stores nothing
and exits 2."""

from __future__ import annotations

import asyncio
import os
import secrets
import sys
from pathlib import Path

from sqlalchemy import func, select

from app.core.audit import AuditEntry
from app.dossiers.models import DossierImport
from tests.dossiers.test_imports import (
    csv_bytes,
    error_lines,
    import_row,
    make_place,
    scenario,
    statuses,
    stored_objects,
)
from tests.routing.conftest import clock  # noqa: F401 (fixtures)

ROOT = Path(__file__).resolve().parents[2]


async def cli(*args: str) -> tuple[int, str, str]:
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "app.cli",
        *args,
        cwd=ROOT,
        env={**os.environ, "PYTHONPATH": str(ROOT)},
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    out, err = await asyncio.wait_for(process.communicate(), 180)
    assert process.returncode is not None
    return process.returncode, out.decode(), err.decode()


async def test_the_cli_imports_a_file_inline_and_prints_what_was_refused(
    app,
    client,
    clock,
    tmp_path,  # noqa: F811
):
    place = await make_place(app)
    s = scenario(f"L{secrets.token_hex(3)}", 30)
    path = tmp_path / "so-tu-phap.ndjson"
    path.write_bytes(s.body)
    code, out, err = await cli(
        "dossier-import", "--agency", place.agency_code, "--show-errors", "3", str(path)
    )
    assert code == 0, err
    first = out.splitlines()[0]
    import_id = first.split()[1].rstrip(":")
    assert first == (
        f"import {import_id}: done; lines {len(s.lines)}, accepted {s.count('accepted')}, "
        f"duplicates {s.count('duplicate')}, refused {s.count('refused')}"
    )
    refusals = list(s.refusals().items())
    printed = [line for line in out.splitlines() if line.startswith("line ")]
    assert [p.split(":")[0] for p in printed] == [f"line {n}" for n, _ in refusals[:3]]
    assert all(c in p for p, (_, c) in zip(printed, refusals, strict=False))
    assert f"... and {len(refusals) - 3} more refused lines" in out
    row = await import_row(app, import_id)
    assert (row.status, row.created_by, row.file_name) == ("done", None, "so-tu-phap.ndjson")
    assert await error_lines(app, import_id) == s.refusals()
    assert await statuses(app, s.codes) == s.final
    async with app.state.sessionmaker() as session:
        audited = await session.scalar(
            select(AuditEntry).where(
                AuditEntry.action == "dossier_import.created",
                AuditEntry.object_id == import_id,
            )
        )
    assert audited is not None and audited.actor_kind == "system"
    assert audited.details["agency"] == place.agency_code


async def test_the_cli_refuses_a_bad_file_and_stores_nothing(app, client, clock, tmp_path):  # noqa: F811
    place = await make_place(app)
    path = tmp_path / "export.csv"
    path.write_bytes(csv_bytes(["MaHoSo", "Cot La"], [["A-1", "x"]]))
    before = stored_objects()
    code, out, err = await cli("dossier-import", "--agency", place.agency_code, str(path))
    assert code == 2
    assert "import_csv_columns_unknown" in err and "Cot La" in err
    code, _, err = await cli("dossier-import", "--agency", "NO-SUCH", str(path))
    assert code == 2 and "import_agency_unknown" in err
    code, _, err = await cli("dossier-import", "--agency", place.agency_code, str(tmp_path / "no"))
    assert code == 2 and "no file" in err
    assert stored_objects() == before
    async with app.state.sessionmaker() as session:
        made = await session.scalar(
            select(func.count())
            .select_from(DossierImport)
            .where(DossierImport.agency_id == place.agency_id)
        )
    assert made == 0
