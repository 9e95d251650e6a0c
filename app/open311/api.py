"""Open311 GeoReport v2, the read side: discovery, services, requests, updates."""

from __future__ import annotations

from litestar import Controller


class Open311ReadController(Controller):
    path = "/"
