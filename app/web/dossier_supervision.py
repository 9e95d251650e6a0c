"""The console's page for the city's supervisors (issue 19 item 7): agencies ranked by
lateness beside their figures in the agency index, and each agency's overdue dossiers,
50 at a time. The same service functions as the JSON twin (app/dossiers/index_api.py)
with the same Actor, so the denials are the same: the city-wide roles see every agency,
other staff their units' agencies, residents nothing. Read-only pages: no form posts
(the period is a GET form), so no CSRF token is needed; the CSP, the framing and
referrer headers and the error pages come from the pages' router (app/main.py)."""

from __future__ import annotations

from typing import Annotated, Any

from litestar import Controller, Request, get
from litestar.datastructures import State
from litestar.params import FromPath, QueryParameter
from litestar.response import Template

from app.core import i18n
from app.core.db import DbSession
from app.dossiers import index
from app.stats.service import ALL
from app.web.api import _actor, _refuse_nul, _user, language, render

PREFIX = "dossier_index."  # the catalogue's section for these pages


def _texts(request: Request) -> dict[str, Any]:
    lang = language(request)

    def dt(key: str, **params: Any) -> str:
        return i18n.text(PREFIX + key, lang, **params)

    def dossier_status(code: str) -> str:
        key = f"dossier_status.{code}"
        return i18n.text(key, lang) if i18n.has(key) else code

    return {"dt": dt, "dossier_status": dossier_status}


class DossierSupervisionPages(Controller):
    path = "/console/dossiers/supervision"
    include_in_schema = False
    before_request = staticmethod(_refuse_nul)

    @get("/", name="console.dossier_supervision")
    async def ranking(
        self,
        request: Request,
        state: State,
        session: DbSession,
        period: Annotated[str, QueryParameter(max_length=16)] = ALL,
    ) -> Template:
        user = await _user(request, state, session)
        ranked = await index.ranking(session, _actor(request), period)
        return render(
            request,
            "dossier_supervision/ranking.html",
            user,
            ranking=ranked,
            **_texts(request),
        )

    @get("/{code:str}")
    async def overdue(
        self,
        request: Request,
        state: State,
        session: DbSession,
        code: FromPath[str],
        cursor: Annotated[str | None, QueryParameter(max_length=200)] = None,
    ) -> Template:
        user = await _user(request, state, session)
        actor = _actor(request)
        page = await index.overdue_dossiers(session, actor, state.deadlines.calendar, code, cursor)
        trend = await index.agency_trend(session, actor, code)
        return render(
            request,
            "dossier_supervision/agency.html",
            user,
            page=page,
            trend=trend,
            first_page=cursor is None,
            **_texts(request),
        )
