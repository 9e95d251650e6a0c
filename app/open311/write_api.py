"""Open311 GeoReport v2, the write side: POST requests with an API key, tokens.

Wired by ``app/open311/api.py``'s controller (a path's methods share one controller)."""

from __future__ import annotations

from litestar import Request, Response
from sqlalchemy.ext.asyncio import AsyncSession

from app.open311.formats import Open311Error


async def post_request(request: Request, session: AsyncSession, fmt: str) -> Response[bytes]:
    raise Open311Error(501, "Filing through Open311 is not available yet")


async def get_token(
    request: Request, session: AsyncSession, token: str, fmt: str
) -> Response[bytes]:
    raise Open311Error(404, f"Unknown token '{token}'")
