"""Open311 GeoReport v2 under ``/open311/v2``: one controller, every resource named with
its format suffix (``services.json``). The read side is here; POST requests and tokens
are ``app/open311/write_api.py``'s (one controller, since a path's methods must share it).
"""

from __future__ import annotations

from litestar import Controller, Request, Response, get, post
from litestar.params import FromPath

from app.core.db import DbSession
from app.open311 import write_api
from app.open311.formats import Open311Error, resource_format, split_id


class Open311Controller(Controller):
    path = "/"
    tags = ["open311"]

    @get("/{name:str}", cache=False)
    async def resource(
        self, request: Request, session: DbSession, name: FromPath[str]
    ) -> Response[bytes]:
        """GET discovery / services / requests / servicerequestupdates .{json|xml}."""
        raise Open311Error(404, f"Unknown resource '{name}'")

    @post("/{name:str}", status_code=200)
    async def post_request(
        self, request: Request, session: DbSession, name: FromPath[str]
    ) -> Response[bytes]:
        """POST requests.{json|xml}: a third-party app files a report with its api_key."""
        return await write_api.post_request(request, session, resource_format(name, "requests"))

    @get("/tokens/{name:str}", cache=False)
    async def token(
        self, request: Request, session: DbSession, name: FromPath[str]
    ) -> Response[bytes]:
        """GET tokens/{token}.{json|xml}: the service_request_id a token stands for."""
        token, fmt = split_id(name)
        return await write_api.get_token(request, session, token, fmt)
