"""Types in CI (issue 18 item 8): `make test` (what `.ci/run` calls) runs ruff and mypy
before pytest, mypy is configured over app/ and workers/ and catches a type error even
inside an unannotated function (check_untyped_defs), and ruff's complexity rule is on."""

from __future__ import annotations

import re
import subprocess
import sys
import tomllib
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def _recipe(target: str) -> list[str]:
    lines = (ROOT / "Makefile").read_text().splitlines()
    start = next(i for i, line in enumerate(lines) if re.match(rf"{target}:", line))
    recipe = []
    for line in lines[start + 1 :]:
        if not line.startswith("\t"):
            break
        recipe.append(line.strip())
    return recipe


def test_make_test_lints_and_type_checks_before_pytest():
    recipe = _recipe("test")
    commands = [next(w for w in ("ruff", "mypy", "pytest") if w in line) for line in recipe]
    assert commands == ["ruff", "mypy", "pytest"]
    assert "ruff check app workers tests bench" in recipe[0]
    assert any("mypy" in line for line in _recipe("lint"))


def test_mypy_and_complexity_configuration():
    config = tomllib.loads((ROOT / "pyproject.toml").read_text())
    mypy = config["tool"]["mypy"]
    assert mypy["files"] == ["app", "workers"]
    assert mypy["check_untyped_defs"] and mypy["warn_unused_ignores"]
    assert "ignore_missing_imports" not in mypy  # only per module, for untyped packages
    assert any("mypy" in dep for dep in config["dependency-groups"]["dev"])
    lint = config["tool"]["ruff"]["lint"]
    assert "C90" in lint["select"]
    assert lint["mccabe"]["max-complexity"] == 15


def test_mypy_with_the_project_settings_fails_on_a_type_error(tmp_path):
    """The configuration mypy reads in CI catches a wrong type in an unannotated function
    and passes the same module once fixed (so the failure is the type, not the set-up)."""
    bad = tmp_path / "bad.py"
    bad.write_text("def total():\n    count: int = 0\n    count = 'many'\n    return count\n")
    good = tmp_path / "good.py"
    good.write_text("def total():\n    count: int = 0\n    count = 2\n    return count\n")

    def mypy(path: Path) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [
                *(sys.executable, "-m", "mypy", "--config-file", str(ROOT / "pyproject.toml")),
                *("--cache-dir", str(tmp_path / "cache"), str(path)),
            ],
            cwd=ROOT,
            capture_output=True,
            text=True,
            timeout=300,
        )

    failed = mypy(bad)
    assert failed.returncode == 1, failed.stdout + failed.stderr
    assert 'incompatible types in assignment (expression has type "str"' in failed.stdout.lower()
    passed = mypy(good)
    assert passed.returncode == 0, passed.stdout + passed.stderr
