"""Helpers for the browser tests: where Chromium and axe-core are, and the axe check.

Chromium is Debian's (/usr/bin/chromium) and axe-core is locked in tests/web/js; both are
installed by scripts/bootstrap.sh. A missing one fails the test (never a skip)."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import pytest

ROOT = Path(__file__).resolve().parents[2]
CHROMIUM = Path(os.environ.get("CHROMIUM_PATH", "/usr/bin/chromium"))
AXE_JS = ROOT / "tests" / "web" / "js" / "node_modules" / "axe-core" / "axe.min.js"
BOOTSTRAP = "run scripts/bootstrap.sh (it installs Debian's chromium, playwright and axe-core)"

# WCAG 2.0 and 2.1, levels A and AA
AXE_TAGS = ("wcag2a", "wcag2aa", "wcag21a", "wcag21aa")

_RUN_AXE = """async (tags) => {
  const result = await axe.run(document, {
    runOnly: {type: 'tag', values: tags},
    resultTypes: ['violations'],
  });
  return result.violations.map((v) => ({
    id: v.id,
    impact: v.impact,
    help: v.help,
    helpUrl: v.helpUrl,
    nodes: v.nodes.map((n) => ({target: n.target, html: n.html, summary: n.failureSummary})),
  }));
}"""


def require_chromium() -> Path:
    if not os.access(CHROMIUM, os.X_OK):
        pytest.fail(f"no Chromium at {CHROMIUM}: {BOOTSTRAP}", pytrace=False)
    return CHROMIUM


async def axe_violations(
    page, impacts: tuple[str, ...] = ("serious", "critical")
) -> list[dict[str, Any]]:
    """Runs axe-core on the page's current document with the WCAG 2.0/2.1 A and AA rules
    and returns the violations of the given impacts, each as
    {id, impact, help, helpUrl, nodes: [{target, html, summary}]}."""
    if not AXE_JS.is_file():
        pytest.fail(f"axe-core is not installed ({AXE_JS} is missing): {BOOTSTRAP}", pytrace=False)
    # evaluated through the DevTools protocol, so a page's Content-Security-Policy does not
    # block it (a <script> tag would be)
    if not await page.evaluate("typeof window.axe === 'object'"):
        await page.evaluate(AXE_JS.read_text(encoding="utf-8"))
    violations = await page.evaluate(_RUN_AXE, list(AXE_TAGS))
    return [v for v in violations if v["impact"] in impacts]


def describe_violations(violations: list[dict[str, Any]]) -> str:
    """Readable text of axe violations, for an assertion message."""
    lines = []
    for v in violations:
        lines.append(f"[{v['impact']}] {v['id']}: {v['help']} ({v['helpUrl']})")
        for node in v["nodes"]:
            lines.append(f"    at {' '.join(map(str, node['target']))}: {node['html'][:200]}")
            if node.get("summary"):
                lines.extend(f"      {s}" for s in node["summary"].splitlines())
    return "\n".join(lines)


async def assert_accessible(page, impacts: tuple[str, ...] = ("serious", "critical")) -> None:
    """Fails with a readable list when axe finds violations of these impacts."""
    violations = await axe_violations(page, impacts)
    assert not violations, f"axe found on {page.url}:\n{describe_violations(violations)}"
