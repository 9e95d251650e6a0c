"""The console's JSON API for dossier file imports (issue 19 item 2): an agency's staff
upload an NDJSON or CSV export and follow it; the twins of the pages in
``app/web/dossier_imports.py``. Who may: ``policy.may_import_for_agency``."""

from __future__ import annotations

import uuid
from typing import Annotated, Literal

from litestar import Controller, Request, get, post
from litestar.datastructures import State
from litestar.params import FromPath, FromQuery, QueryParameter
from litestar.status_codes import HTTP_201_CREATED

from app.core import i18n
from app.core.auth import require_staff
from app.core.db import DbSession
from app.dossiers import imports
from app.policy import actor_of

BEARER: list[dict[str, list[str]]] = [{"bearer": []}]  # OpenAPI security requirement


class DossierImportController(Controller):
    path = "/console/dossier-imports"
    tags = ["dossiers"]
    guards = [require_staff]
    security = BEARER

    @post(
        "/",
        status_code=HTTP_201_CREATED,
        summary="Upload an agency's NDJSON or CSV file of dossier events",
        description=(
            "The body is the file itself (`Content-Type: application/x-ndjson` or "
            "`text/csv`, UTF-8, a BOM allowed; up to DOSSIER_IMPORT_MAX_BYTES, else 413). "
            "NDJSON: one native event per line, the objects a signed batch carries. CSV: a "
            "header row naming the native fields (nested ones with dots, e.g. "
            "`dossier.applicant.citizen_id`) or the national portal's names (`MaHoSo`, "
            "`MaTTHC`, `NgayTiepNhan` …), one event per row. The file is stored and applied "
            "by a worker, a chunk of lines per transaction; follow it at "
            "`GET /console/dossier-imports/{id}`. Managers of the agency's unit (or above) "
            "and admins."
        ),
        request_max_body_size=None,  # bounded by the setting as it streams (413)
    )
    async def upload(
        self,
        request: Request,
        state: State,
        session: DbSession,
        agency: Annotated[str, QueryParameter(min_length=1, max_length=40)],
        format: FromQuery[Literal["ndjson", "csv"] | None] = None,
        name: Annotated[str | None, QueryParameter(max_length=255)] = None,
    ) -> imports.ImportOut:
        actor = await actor_of(request)
        target = await imports.agency_for_import(session, actor, agency)
        # the upload may take minutes: no database connection is held while it arrives
        await session.rollback()
        length = request.headers.get("content-length")
        source = await imports.receive(
            request.stream(),
            state.settings.dossier_import_max_bytes,
            int(length) if length and length.isdigit() else None,
        )
        with source:
            upload = imports.Upload(
                source, name, request.headers.get("content-type"), declared_format=format
            )
            return await imports.create_import(
                session, state.settings, state.storage, actor, target, upload, state.clock.now()
            )

    @get("/", summary="Dossier imports of my agencies (admins: all), newest first")
    async def list_imports(
        self,
        request: Request,
        state: State,
        session: DbSession,
        agency: Annotated[str | None, QueryParameter(max_length=40)] = None,
        cursor: Annotated[str | None, QueryParameter(max_length=200)] = None,
        limit: Annotated[int, QueryParameter(ge=1, le=200)] = 50,
    ) -> imports.ImportPage:
        return await imports.list_imports(
            session,
            await actor_of(request),
            state.clock.now(),
            agency_code=agency,
            cursor=cursor,
            limit=limit,
        )

    @get(
        "/{import_id:uuid}",
        summary="One import: its counts, duration and refused lines (by line number)",
    )
    async def detail(
        self,
        request: Request,
        state: State,
        session: DbSession,
        import_id: FromPath[uuid.UUID],
        after_line: Annotated[int, QueryParameter(ge=0, le=2**31 - 1)] = 0,
        limit: Annotated[int, QueryParameter(ge=1, le=500)] = 100,
    ) -> imports.ImportDetail:
        return await imports.import_detail(
            session,
            await actor_of(request),
            import_id,
            state.clock.now(),
            locale=i18n.negotiate(request.headers.get("accept-language")),
            after_line=after_line,
            limit=limit,
        )
