"""Browser tests: the real API served by granian in a process of its own, driven by
Debian's Chromium through Playwright (async API, in the session's event loop like every
other test here).

- ``live_server`` (session): base URL of the API started as ``scripts/run.sh`` starts it,
  on a free loopback port, with this test run's settings (its database, Redis prefix,
  storage folder, secrets: tests/conftest.py puts them in the environment).
- ``browser`` (session): headless /usr/bin/chromium.
- ``context`` / ``page`` (per test): a fresh context (no cookies, no storage) whose
  relative URLs resolve against ``live_server``; a failing test leaves a screenshot.
- ``screenshot`` (per test): ``await screenshot("name")`` saves the page as PNG into
  $WEB_SCREENSHOTS_DIR/<test> when that variable is set, else into the test's tmp_path.

Chromium, playwright or axe-core missing is a failure telling to run scripts/bootstrap.sh.
"""

from __future__ import annotations

import os
import re
import sys
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from pathlib import Path

import pytest

from tests.live import live_server as start_live_server
from tests.web.browser import BOOTSTRAP, require_chromium

# Playwright waits this long (ms) for an element or a navigation before failing
TIMEOUT_MS = 10_000
CHROMIUM_ARGS = ["--disable-gpu", "--disable-quic", "--disable-sync"]
_SCREENSHOT_DIR = pytest.StashKey[Path]()
_CALL_REPORT = pytest.StashKey[pytest.TestReport]()


@pytest.fixture(scope="session")
def live_server(database: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """Base URL (http://127.0.0.1:PORT) of the API in a granian process of its own
    (tests/live.py) on a free port; its output goes to granian.log in the session's
    temporary folder."""
    with start_live_server(None, tmp_path_factory.mktemp("web")) as base_url:
        yield base_url


@pytest.fixture(scope="session")
async def browser() -> AsyncIterator:
    """Headless Chromium (Debian's /usr/bin/chromium), one for the session."""
    chromium = require_chromium()
    try:
        from playwright.async_api import async_playwright
    except ImportError:
        pytest.fail(f"the playwright package is not installed: {BOOTSTRAP}", pytrace=False)
    async with async_playwright() as playwright:
        browser = await playwright.chromium.launch(
            executable_path=chromium, headless=True, args=CHROMIUM_ARGS
        )
        try:
            yield browser
        finally:
            await browser.close()


@pytest.fixture
def screenshot_dir(request: pytest.FixtureRequest, tmp_path: Path) -> Path:
    """Where this test's screenshots go: $WEB_SCREENSHOTS_DIR/<test name>, or tmp_path."""
    root = os.environ.get("WEB_SCREENSHOTS_DIR")
    if not root:
        return tmp_path
    folder = Path(root) / re.sub(r"[^\w.-]+", "_", request.node.nodeid)
    folder.mkdir(parents=True, exist_ok=True)
    return folder


@pytest.fixture
async def context(browser, live_server: str) -> AsyncIterator:
    """A fresh browser context per test; page.goto("/web/...") is relative to the API."""
    context = await browser.new_context(base_url=live_server)
    context.set_default_timeout(TIMEOUT_MS)
    try:
        yield context
    finally:
        await context.close()


@pytest.fixture
async def page(context, request: pytest.FixtureRequest, screenshot_dir: Path) -> AsyncIterator:
    page = await context.new_page()
    request.node.stash[_SCREENSHOT_DIR] = screenshot_dir
    yield page
    report = request.node.stash.get(_CALL_REPORT, None)
    if report is not None and report.failed and not page.is_closed():
        try:
            await page.screenshot(path=screenshot_dir / "failure.png", full_page=True)
        except Exception as error:  # the test's failure matters more than this one
            print(f"no failure screenshot: {error}", file=sys.stderr)


@pytest.fixture
def screenshot(page, screenshot_dir: Path) -> Callable[[str], Awaitable[Path]]:
    """``path = await screenshot("signed-in")``: the whole page as PNG."""

    async def take(name: str) -> Path:
        path = screenshot_dir / f"{name}.png"
        await page.screenshot(path=path, full_page=True)
        return path

    return take


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo):
    """Keeps the call's report for the page fixture (screenshot on failure) and names the
    screenshot's path in the failure's output."""
    report = yield
    if report.when == "call":
        item.stash[_CALL_REPORT] = report
        folder = item.stash.get(_SCREENSHOT_DIR, None)
        if report.failed and folder is not None:
            report.sections.append(("browser", f"screenshot: {folder / 'failure.png'}"))
    return report
