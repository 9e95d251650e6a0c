"""The console's pages for dossier file imports (issue 19 item 2): an agency's staff
upload an NDJSON or CSV export and see their imports with counts, duration and the
refused lines; admins see every agency's. The same services and policy as the JSON API
(``app/dossiers/imports_api.py``); pages, CSRF, CSP and error pages as in
``app/web/api.py``. A file the service refuses (too large, not NDJSON/CSV, not UTF-8,
unknown CSV columns …) is answered with the upload page again, the reason shown beside
the form, with the error's status code; nothing is stored."""

from __future__ import annotations

import uuid
from typing import Annotated, Any
from urllib.parse import urlencode

from litestar import Controller, Request, get, post
from litestar.datastructures import State, UploadFile
from litestar.params import FromPath, QueryParameter
from litestar.response import Redirect, Template

from app.core import db, i18n
from app.core.db import DbSession
from app.core.errors import AppError, FieldError, Unprocessable
from app.dossiers import imports
from app.settings import get_settings
from app.web import forms
from app.web.api import (
    PAGES,
    Multipart,
    _actor,
    _refuse_nul,
    _signed_form,
    _user,
    form_page,
    language,
    refused,
    render,
)
from app.web.session import ConsoleUser

PREFIX = "dossier_import."
# Litestar's hard cap on the form's body, fixed when the routes are made; the setting
# (which the service checks, answering in place) is the limit that counts
FORM_CAP = get_settings().dossier_import_max_bytes + 1_048_576


class ImportForm(forms.CsrfForm, kw_only=True):
    """multipart/form-data: the agency, the file, and its format if its name does not say."""

    agency: str = ""
    format: str = ""
    # an UploadFile; a browser sends an empty string when no file was chosen (msgspec
    # takes no union of a custom type with str), so the handler checks which it got
    file: Any = None


def _texts(lang: str) -> dict[str, Any]:
    """``tr('key')`` in these templates is the catalogue's ``dossier_import.key``."""
    return {
        "tr": lambda key, **params: i18n.text(PREFIX + key, lang, **params),
        "import_status": lambda code: i18n.text(f"{PREFIX}status.{code}", lang),
        "failure_text": lambda code: (
            i18n.translate(code, lang, fallback="import_failed") if code else ""
        ),
        "megabytes": lambda n: i18n.text(PREFIX + "megabytes", lang, size=round(n / 1e6, 1)),
    }


async def _list_page(
    request: Request,
    state: State,
    session: DbSession,
    user: ConsoleUser,
    *,
    agency: str | None = None,
    cursor: str | None = None,
    status_code: int = 200,
    error: str | None = None,
    error_fields: list[str] | None = None,
    chosen: str = "",
) -> Template:
    actor = _actor(request)
    now = state.clock.now()
    page = await imports.list_imports(
        session, actor, now, agency_code=agency or None, cursor=cursor, limit=50
    )
    keep = {"agency": agency} if agency else {}
    return render(
        request,
        "dossier_imports/list.html",
        user,
        status_code=status_code,
        page=page,
        agencies=await imports.agencies_for(session, actor),
        error=error,
        error_fields=error_fields or [],
        chosen=chosen or agency or "",
        max_bytes=state.settings.dossier_import_max_bytes,
        next_link="/console/dossier-imports?" + urlencode({**keep, "cursor": page.next_cursor})
        if page.next_cursor
        else None,
        **_texts(language(request)),
    )


async def _list_again(request: Request, state: State, session: DbSession) -> Template:
    """The list with the upload form as it was refused (issue 23 item 2)."""
    return await _list_page(request, state, session, await _user(request, state, session))


PAGES["dossier_imports"] = (_list_again, "/console/dossier-imports")


class DossierImportPages(Controller):
    path = "/console/dossier-imports"
    include_in_schema = False
    before_request = staticmethod(_refuse_nul)

    @get("/")
    async def list_page(
        self,
        request: Request,
        state: State,
        session: DbSession,
        agency: Annotated[str | None, QueryParameter(max_length=40)] = None,
        cursor: Annotated[str | None, QueryParameter(max_length=200)] = None,
    ) -> Template:
        user = await _user(request, state, session)
        return await _list_page(request, state, session, user, agency=agency, cursor=cursor)

    @post("/", request_max_body_size=FORM_CAP, opt=form_page("dossier_imports", "dossier_import"))
    async def upload(
        self,
        request: Request,
        state: State,
        session: DbSession,
        data: Annotated[ImportForm, Multipart],
    ) -> Template | Redirect:
        user = await _signed_form(request, state, session, data)
        actor = _actor(request)
        try:
            # a boundary of its own: a refused file rolls back (and its stored object
            # goes) while the page still lists the imports with this request's session
            async with db.transaction(state.sessionmaker, state.redis) as inner:
                target = await imports.agency_for_import(inner, actor, data.agency)
                if not isinstance(data.file, UploadFile) or not data.file.filename:
                    raise Unprocessable(
                        "import_no_file",
                        errors=[FieldError(field="file", message="no file", source="body")],
                    )
                upload = imports.Upload(
                    data.file.file,
                    data.file.filename,
                    data.file.content_type,
                    declared_format=data.format or None,
                )
                created = await imports.create_import(
                    inner, state.settings, state.storage, actor, target, upload, state.clock.now()
                )
        except AppError as exc:
            if exc.status in (401, 403):
                raise  # a denial is the 403 page, as everywhere in the console
            message = i18n.translate(exc.code, language(request), exc.params)
            values = {"agency": data.agency, "format": data.format}
            if not exc.errors:  # what the service refuses is the file's content
                exc.errors = [FieldError(field="file", message=exc.code, source="body")]
            refused(request, "dossier_import", values, exc)  # in place (issue 23 item 2)
            return await _list_page(
                request,
                state,
                session,
                user,
                status_code=exc.status,
                error=message,
                error_fields=[e.field for e in exc.errors or []],
                chosen=data.agency,
            )
        finally:
            if isinstance(data.file, UploadFile):
                await data.file.close()
        return Redirect(f"/console/dossier-imports/{created.id}?done=uploaded", status_code=303)

    @get("/{import_id:uuid}")
    async def detail_page(
        self,
        request: Request,
        state: State,
        session: DbSession,
        import_id: FromPath[uuid.UUID],
        after_line: Annotated[int, QueryParameter(ge=0, le=2**31 - 1)] = 0,
    ) -> Template:
        user = await _user(request, state, session)
        lang = language(request)
        detail = await imports.import_detail(
            session,
            _actor(request),
            import_id,
            state.clock.now(),
            locale=lang,
            after_line=after_line,
            limit=100,
        )
        return render(
            request,
            "dossier_imports/detail.html",
            user,
            d=detail,
            done=request.query_params.get("done"),
            **_texts(lang),
        )
