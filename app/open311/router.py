"""The GeoReport v2 root, ``/open311/v2``: its own router, its own error format."""

from __future__ import annotations

from typing import Any

from litestar import Router

from app.open311.api import Open311Controller
from app.open311.formats import EXCEPTION_HANDLERS


def open311_router(dependencies: dict[str, Any]) -> Router:
    return Router(
        path="/open311/v2",
        route_handlers=[Open311Controller],
        dependencies=dependencies,
        exception_handlers=EXCEPTION_HANDLERS,
    )
