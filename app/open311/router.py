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
        # GeoReport v2 is its own standard: its discovery document (discovery.{json,xml})
        # names it and its formats; it is not part of this API's openapi.json
        include_in_schema=False,
    )
