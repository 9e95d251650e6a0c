"""``python -m app.cli health-import PATH...``: the admin's command, run as a process on
the test database: third-party files imported, the counts and the first errors printed,
the exit code saying how it went."""

from __future__ import annotations

import asyncio
import os
import sys
from pathlib import Path

from tests.health.conftest import generate, write_ndjson

ROOT = Path(__file__).resolve().parents[2]


async def cli(*args: str) -> tuple[int, str, str]:
    process = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "app.cli", "health-import", *args,
        cwd=ROOT, env={**os.environ, "PYTHONPATH": str(ROOT), "LOG_LEVEL": "WARNING"},
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
    )  # fmt: skip
    out, err = await asyncio.wait_for(process.communicate(), 120)
    return process.returncode, out.decode(), err.decode()


async def test_the_cli_imports_and_reports(health, data_dir, settings):
    generated = generate(data_dir, settings, count=2, seed=4)
    write_ndjson(data_dir / "zz-defects.ndjson", ['{"resourceType": "Basic", "id": "b"}', "{"])
    code, out, err = await cli(str(data_dir), "--show", "5")
    total = sum(generated.counts.values())
    assert code == 0, err
    assert out.splitlines()[0] == (
        f"succeeded: {total + 2} lines, {total} imported, 0 unchanged, 1 skipped,"
        f" 0 duplicates, 1 errors, " + out.splitlines()[0].rsplit(", ", 1)[1]
    )
    assert out.splitlines()[1] == (
        "  zz-defects.ndjson:2: The line is not valid JSON (malformed or cut short)."
    )
    assert "health import job" in err
    code, out, err = await cli(str(data_dir / "missing.ndjson"))
    assert code == 2 and "No file or directory" in err
    (data_dir / "notes.txt").write_text("x")
    code, out, err = await cli(str(data_dir / "notes.txt"))
    assert code == 2 and "Unknown format" in err
