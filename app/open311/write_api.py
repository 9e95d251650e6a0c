"""Open311 GeoReport v2, the write side: POST requests with an API key, tokens."""

from __future__ import annotations

from litestar import Controller


class Open311WriteController(Controller):
    path = "/"
