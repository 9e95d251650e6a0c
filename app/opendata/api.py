"""Open data's public endpoints (issue 22 item 4): no sign-in, nothing personal."""

from __future__ import annotations

import re
from datetime import date
from typing import Annotated, Literal

from litestar import Controller, Response, get
from litestar.datastructures import State
from litestar.params import FromPath, QueryParameter

from app.core.db import DbSession
from app.core.errors import NotFound
from app.opendata import service
from app.opendata.schemas import OpenDataFileList, OpenReportPage

_FILE = re.compile(r"^(\d{4}-\d{2}-\d{2})\.(csv|geojson)$")
_CACHE = "public, max-age=300"


class OpenDataController(Controller):
    path = "/public/open-data"
    tags = ["open data"]

    @get(
        "/reports",
        summary="Reports as open data: a period of filing days, by category, area, unit",
        description="Keyset pagination (`next_cursor`), JSON or CSV (`format`). No text "
        "anyone wrote, no reporter; positions rounded to OPEN_DATA_POSITION_DECIMALS; the "
        "licence in `meta` (JSON) or the `Link: rel=license` / `X-License` headers (CSV).",
    )
    async def reports(
        self,
        state: State,
        session: DbSession,
        first_day: Annotated[
            date, QueryParameter(name="from", description="First filing day (local)")
        ],
        last_day: Annotated[date, QueryParameter(name="to", description="Last filing day (local)")],
        category: Annotated[str | None, QueryParameter(max_length=40)] = None,
        area: Annotated[str | None, QueryParameter(pattern=r"^[0-9]{1,10}$")] = None,
        unit: Annotated[str | None, QueryParameter(max_length=40)] = None,
        cursor: Annotated[str | None, QueryParameter(max_length=200)] = None,
        limit: Annotated[int, QueryParameter(ge=1, le=service.MAX_PAGE)] = 1000,
        format: Annotated[  # noqa: A002 - the parameter's public name
            Literal["json", "csv"], QueryParameter(description="json (default) or csv")
        ] = "json",
    ) -> Response[OpenReportPage] | Response[bytes]:
        page = await service.query_reports(
            session,
            state.settings,
            await state.reference.current(),
            service.ReportQuery(
                first_day=first_day,
                last_day=last_day,
                category=category,
                area=area,
                unit=unit,
                cursor=cursor,
                limit=limit,
            ),
        )
        headers = {**service.licence_headers(state.settings), "Cache-Control": _CACHE}
        if format == "csv":
            if page.next_cursor:
                headers["X-Next-Cursor"] = page.next_cursor
            return Response(
                service.to_csv(page.items), media_type=service.FORMATS["csv"], headers=headers
            )
        return Response(page, headers=headers)

    @get("/files", summary="The daily files (CSV and GeoJSON) published so far")
    async def files(self, state: State, session: DbSession) -> Response[OpenDataFileList]:
        listing = await service.list_files(session, state.settings)
        return Response(
            listing, headers={**service.licence_headers(state.settings), "Cache-Control": _CACHE}
        )

    @get("/files/{name:str}", summary="One daily file: YYYY-MM-DD.csv or YYYY-MM-DD.geojson")
    async def file(self, state: State, session: DbSession, name: FromPath[str]) -> Response[bytes]:
        match = _FILE.match(name)
        if match is None:
            raise NotFound("open_data_file_not_found")
        try:
            day = date.fromisoformat(match.group(1))
        except ValueError as exc:
            raise NotFound("open_data_file_not_found") from exc
        data, content_type = await service.read_file(session, state.storage, day, match.group(2))
        return Response(
            data,
            media_type=content_type,
            headers={
                **service.licence_headers(state.settings),
                "Cache-Control": "public, max-age=3600",
                "Content-Disposition": f'attachment; filename="reports-{name}"',
            },
        )
