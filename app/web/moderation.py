"""The console's moderation pages (issue 22 items 5 and 6): admins suspend resident
accounts, read their appeals and lift suspensions; staff flag a report abusive (hidden
from the public) or unflag it from the report page. Each form posts to a handler that
only builds the actor and the command and calls the same service as the JSON API
(app/accounts/suspension.py, app/complaints/abuse.py), so the denials are the same."""

from __future__ import annotations

import uuid
from datetime import date, datetime, time
from typing import Annotated, Any

import msgspec
from litestar import Controller, Request, get, post
from litestar.datastructures import State
from litestar.params import FromPath, QueryParameter
from litestar.response import Redirect, Template

from app.accounts import suspension
from app.accounts.suspension import REASON_MAX, SuspendIn
from app.complaints import abuse, redaction
from app.core import i18n
from app.core.calendar import TIMEZONE
from app.core.db import DbSession
from app.core.errors import AppError, BadRequest, FieldError, Forbidden
from app.policy import may_suspend_account
from app.web.api import (
    PAGES,
    UrlEncoded,
    _actor,
    _refuse_nul,
    _safe_next,
    _signed_form,
    _user,
    form_page,
    language,
    render,
)
from app.web.forms import CsrfForm


class SuspendForm(CsrfForm, kw_only=True):
    phone: Annotated[str, msgspec.Meta(min_length=9, max_length=20)]
    reason: Annotated[str, msgspec.Meta(min_length=3, max_length=REASON_MAX)]
    until: str = ""  # a day (YYYY-MM-DD): suspended through that day, Hanoi time; empty: open


class FlagForm(CsrfForm, kw_only=True):
    reason_code: str
    back: str = ""


class BackForm(CsrfForm):
    back: str = ""


def _until(raw: str) -> datetime | None:
    """Through the given day in Hanoi: the suspension ends at that day's last instant
    there (read as "until 23:59 31/12")."""
    if raw == "":
        return None
    try:
        day = date.fromisoformat(raw)
    except ValueError:
        raise BadRequest(
            "suspension_until_invalid",
            errors=[FieldError(field="until", message="a date YYYY-MM-DD", source="body")],
        ) from None
    return datetime.combine(day, time(23, 59, 59, 999_999), tzinfo=TIMEZONE)


def _reason_names(request: Request) -> dict[str, Any]:
    lang = language(request)
    return {
        "abuse_reason_name": lambda code: i18n.text(f"abuse_reason.{code}", lang),
        "abuse_reason_codes": abuse.REASON_CODES,
    }


def _back(form: Any, fallback: str, done: str) -> Redirect:
    target = _safe_next(form.back) if getattr(form, "back", "") else fallback
    joiner = "&" if "?" in target else "?"
    return Redirect(f"{target}{joiner}done={done}", status_code=303)


class ModerationPages(Controller):
    path = "/console/moderation"
    include_in_schema = False
    before_request = staticmethod(_refuse_nul)

    # ---- suspensions (admins)

    @get("/suspensions", name="console.suspensions")
    async def suspensions(
        self,
        request: Request,
        state: State,
        session: DbSession,
        appealed: Annotated[bool, QueryParameter()] = False,
    ) -> Template:
        return await suspensions_page(request, state, session, appealed)

    @post("/suspensions", opt=form_page("suspensions", "suspend"))
    async def suspend(
        self,
        request: Request,
        state: State,
        session: DbSession,
        data: Annotated[SuspendForm, UrlEncoded],
    ) -> Redirect:
        await _signed_form(request, state, session, data)
        actor = _actor(request)
        if not may_suspend_account(actor, None):
            raise Forbidden("suspension_not_allowed")
        user_id = await suspension.resident_id_by_phone(session, data.phone)
        command = SuspendIn(reason=data.reason, until=_until(data.until))
        await suspension.suspend(session, actor, user_id, command)
        return Redirect("/console/moderation/suspensions?done=suspended", status_code=303)

    @post("/suspensions/{suspension_id:uuid}/lift", opt=form_page("suspensions", "lift"))
    async def lift(
        self,
        request: Request,
        state: State,
        session: DbSession,
        suspension_id: FromPath[uuid.UUID],
        data: Annotated[BackForm, UrlEncoded],
    ) -> Redirect:
        await _signed_form(request, state, session, data)
        await suspension.lift(session, _actor(request), suspension_id)
        return _back(data, "/console/moderation/suspensions", "lifted")

    # ---- photo redaction

    @get("/photos/{photo_id:uuid}/redact")
    async def redaction_form(
        self, request: Request, state: State, session: DbSession, photo_id: FromPath[uuid.UUID]
    ) -> Template:
        return await redaction_page(request, state, session)

    @post("/photos/{photo_id:uuid}/redact", opt=form_page("redact", "redact"))
    async def redact(
        self,
        request: Request,
        state: State,
        session: DbSession,
        photo_id: FromPath[uuid.UUID],
        data: Annotated[RedactForm, UrlEncoded],
    ) -> Redirect:
        await _signed_form(request, state, session, data)
        command = redaction.RedactIn(rectangles=rectangles_of(data))
        try:
            await redaction.redact(
                session, state.storage, state.settings, _actor(request), photo_id, command
            )
        except AppError as exc:
            _rows_named(exc, data)
            raise
        return Redirect(
            f"/console/moderation/photos/{photo_id}/redact?done=redacted", status_code=303
        )

    @get("/photos/{photo_id:uuid}/original")
    async def original(
        self, request: Request, state: State, session: DbSession, photo_id: FromPath[uuid.UUID]
    ) -> Redirect:
        """The unredacted copy: a redirect to its short-lived signed URL (audited)."""
        await _user(request, state, session)
        found = await redaction.original(session, state.storage, _actor(request), photo_id)
        return Redirect(found.url, status_code=303)

    # ---- abuse flags (from the report page)

    @post("/reports/{report_id:uuid}/flag", opt=form_page("report", "flag"))
    async def flag(
        self,
        request: Request,
        state: State,
        session: DbSession,
        report_id: FromPath[uuid.UUID],
        data: Annotated[FlagForm, UrlEncoded],
    ) -> Redirect:
        await _signed_form(request, state, session, data)
        await abuse.flag(session, _actor(request), report_id, data.reason_code)
        return _back(data, f"/console/reports/{report_id}", "flagged")

    @post("/reports/{report_id:uuid}/unflag", opt=form_page("report", "unflag"))
    async def unflag(
        self,
        request: Request,
        state: State,
        session: DbSession,
        report_id: FromPath[uuid.UUID],
        data: Annotated[BackForm, UrlEncoded],
    ) -> Redirect:
        await _signed_form(request, state, session, data)
        await abuse.unflag(session, _actor(request), report_id)
        return _back(data, f"/console/reports/{report_id}", "unflagged")


# ---- photo redaction (issue 22 item 5): a script-free form of numeric fields

REDACTION_ROWS = 5  # rectangles the form offers at once (the JSON API takes up to 20)


class RedactForm(CsrfForm, kw_only=True):
    x1: str = ""
    y1: str = ""
    w1: str = ""
    h1: str = ""
    x2: str = ""
    y2: str = ""
    w2: str = ""
    h2: str = ""
    x3: str = ""
    y3: str = ""
    w3: str = ""
    h3: str = ""
    x4: str = ""
    y4: str = ""
    w4: str = ""
    h4: str = ""
    x5: str = ""
    y5: str = ""
    w5: str = ""
    h5: str = ""
    back: str = ""


def rectangles_of(form: RedactForm) -> list[redaction.Rectangle]:
    """The rows filled in; a row half filled or not in whole pixels is a 400 naming it."""
    found = []
    for row in range(1, REDACTION_ROWS + 1):
        values = [getattr(form, f"{c}{row}").strip() for c in "xywh"]
        if not any(values):
            continue
        try:
            x, y, w, h = (int(v) for v in values)
        except ValueError:
            raise BadRequest(
                "redaction_rectangle_invalid",
                params={"index": row},
                errors=[
                    FieldError(field=f"rectangle{row}", message="four whole numbers", source="body")
                ],
            ) from None
        found.append(redaction.Rectangle(x=x, y=y, width=w, height=h))
    return found


def _rows_named(exc: AppError, form: RedactForm) -> None:
    """The service names a rectangle by its place in the list (``rectangles[1]``); the
    page by the form's row it came from (``rectangle3``), for the error in place."""
    rows = [
        row
        for row in range(1, REDACTION_ROWS + 1)
        if any(getattr(form, f"{c}{row}").strip() for c in "xywh")
    ]
    for error in exc.errors or []:
        if error.field.startswith("rectangles[") and error.field.endswith("]"):
            index = int(error.field[len("rectangles[") : -1])
            if 0 <= index < len(rows):
                error.field = f"rectangle{rows[index]}"


async def suspensions_page(
    request: Request, state: State, session: DbSession, appealed: bool = False
) -> Template:
    user = await _user(request, state, session)
    actor = _actor(request)
    if not may_suspend_account(actor, None):
        raise Forbidden("suspension_not_allowed")
    rows = await suspension.list_for_admins(session, actor, appealed_only=appealed)
    return render(request, "moderation/suspensions.html", user, suspensions=rows, appealed=appealed)


async def redaction_page(request: Request, state: State, session: DbSession) -> Template:
    user = await _user(request, state, session)
    photo_id = request.path_params["photo_id"]
    photo = await redaction.page(session, state.storage, _actor(request), photo_id)
    return render(
        request, "moderation/redact.html", user, photo=photo, rows=range(1, REDACTION_ROWS + 1)
    )


PAGES["suspensions"] = (suspensions_page, "/console/moderation/suspensions")
PAGES["redact"] = (redaction_page, "/console/moderation/photos/{photo_id}/redact")


def report_page_context(request: Request) -> dict[str, Any]:
    """What the report page needs to show and offer the abuse flag."""
    return _reason_names(request)
