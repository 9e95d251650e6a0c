"""Issue 17 item 17: no Litestar 3 deprecation in our handlers' signatures, and the test
run refuses a handler written the old way (no filterwarnings ignore lets it through)."""

from __future__ import annotations

import warnings

import msgspec
import pytest
from litestar import Litestar, post

from app.main import create_app
from bench.floor import create_app as create_floor_app


def test_our_apps_declare_every_parameter_and_body_the_litestar_3_way():
    for build in (create_app, create_floor_app):
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            build()
        deprecations = [
            str(w.message) for w in caught if issubclass(w.category, DeprecationWarning)
        ]
        assert deprecations == [], (build.__module__, deprecations)


class _Body(msgspec.Struct):
    text: str


@post("/old-style")
async def _old_style(data: _Body, unit: str | None = None) -> None:
    """A body without its marker, a query parameter by inference: Litestar 2.25 warns."""


def test_a_handler_written_the_old_way_fails_the_run():
    # no catch_warnings here: the run's own filters (pyproject's filterwarnings) apply
    with pytest.raises(DeprecationWarning, match="declared without a body marker|inferred"):
        Litestar(route_handlers=[_old_style])
