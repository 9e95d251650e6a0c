"""What a browser asks of any site: ``/favicon.ico`` (the console's pages and /docs link it
too), served from the committed static files so nothing comes from another host."""

from __future__ import annotations

from pathlib import Path

from litestar import get
from litestar.datastructures import CacheControlHeader
from litestar.response import File

STATIC_DIR = Path(__file__).resolve().parents[1] / "web" / "static"
FAVICON = STATIC_DIR / "favicon.ico"
FAVICON_LINK = '<link rel="icon" type="image/x-icon" href="/favicon.ico">'


@get(
    "/favicon.ico",
    include_in_schema=False,
    cache_control=CacheControlHeader(max_age=86400, public=True),
)
async def favicon() -> File:
    return File(path=FAVICON, media_type="image/x-icon", content_disposition_type="inline")
