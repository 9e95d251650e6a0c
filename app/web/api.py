"""The console's pages. Each page calls the same services as the console's JSON API
(app/console, app/complaints/handling.py, app/routing, app/stats, app/accounts) with the
signed-in staff member's Principal, so the guards are the same; forms post back here
with a CSRF token and are answered by a redirect to the page (POST → 303 → GET)."""

from __future__ import annotations

import re
import uuid
from datetime import date
from typing import Annotated, Any
from urllib.parse import urlencode, urlsplit

from litestar import Controller, Request, Response, get, post
from litestar.datastructures import Cookie, State
from litestar.enums import RequestEncodingType
from litestar.params import Body, FromPath, FromQuery, PathParameter, QueryParameter
from litestar.response import Redirect, Template
from sqlalchemy import select

from app import policy
from app.accounts import service as accounts
from app.complaints import abuse, handling
from app.complaints import service as complaints
from app.complaints.models import Report, ReportEvent
from app.console import service as console
from app.console.schemas import (
    ExtensionDecisionIn,
    ExtensionRequestIn,
    MergeIn,
    MessageIn,
    RejectIn,
    ResolveIn,
)
from app.core import db, i18n
from app.core.client_address import client_ip
from app.core.db import DbSession
from app.core.errors import (
    AppError,
    BadRequest,
    FieldError,
    Forbidden,
    NotFound,
    Unprocessable,
    input_error,
)
from app.dossiers import index_read
from app.notifications import service as notifications
from app.routing import service as routing
from app.routing.schemas import ExtensionIn, TransferIn
from app.stats import service as stats
from app.web import forms, texts
from app.web.session import (
    LANG_COOKIE,
    PRE_SESSION_COOKIE,
    SESSION_COOKIE,
    ConsoleUser,
    check_csrf,
    csrf_token,
    current_user,
    new_pre_session,
    sign_in,
)

MAX_RESOLUTION_UPLOAD = 60_000_000  # a few phone photos in one form
# ids in paths and forms are bigint columns: a larger number is a 400 at the edge
RowId = Annotated[int, PathParameter(ge=1, le=notifications.MAX_ID)]


def _origin(url: str) -> str | None:
    """scheme://host[:port] of a URL (a tile template's {s}/{z}... in the host become *),
    or None when it names no host."""
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.netloc:
        return None
    host = re.sub(r"\{[^}]*\}", "*", parts.netloc.rsplit("@", 1)[-1])
    return f"{parts.scheme}://{host}"


def content_security_policy(settings: Any) -> str:
    """The console pages' CSP: scripts and styles only from our own files (the templates
    have no inline script, style or event handler), images from us, the photo store and
    the tile server, no framing, forms posting only back to us."""
    images = ["'self'", "data:"]
    store = (
        f"{'https' if settings.s3_secure else 'http'}://{settings.s3_endpoint}"
        if settings.s3_endpoint
        else _origin(settings.public_base_url)
    )
    for origin in (store, _origin(settings.console_tile_url or "")):
        if origin and origin not in images:
            images.append(origin)
    return "; ".join(
        [
            "default-src 'self'",
            "script-src 'self'",
            "style-src 'self'",
            f"img-src {' '.join(images)}",
            "connect-src 'self'",
            "object-src 'none'",
            "frame-ancestors 'none'",
            "form-action 'self'",
            "base-uri 'none'",
        ]
    )


def language(request: Request) -> str:
    return "en" if request.cookies.get(LANG_COOKIE) == "en" else "vi"


def _int_or_none(raw: str | None) -> int | None:
    try:
        return int(raw) if raw is not None else None
    except ValueError:
        return None


def _safe_next(raw: str | None) -> str:
    """Only a path inside the console: never an open redirect."""
    if raw and raw.startswith("/console") and not raw.startswith("//") and "\\" not in raw:
        return raw
    return "/console/queue"


def _secure(state: State) -> bool:
    return state.settings.public_base_url.startswith("https://")


def render(
    request: Request,
    name: str,
    user: ConsoleUser | None,
    status_code: int = 200,
    **context: Any,
) -> Template:
    lang = language(request)
    settings = request.app.state.settings
    scope_state = request.scope.get("state", {})
    snapshot, actor = scope_state.get("reference"), scope_state.get("actor") if user else None
    base = {
        "lang": lang,
        "t": lambda key, **params: texts.text(key, lang, **params),
        "status_name": lambda key: texts.pick("status", key, lang),
        "kind_name": lambda key: texts.pick("kind", key, lang),
        "event_name": lambda key: texts.pick("event", key, lang),
        "rating_name": lambda key: texts.pick("rating", key, lang),
        # an audit action's name; the code itself for one the catalogue does not name yet
        "audit_name": lambda key: (
            i18n.text(f"audit.{key}", lang) if i18n.has(f"audit.{key}") else key
        ),
        "local": lambda value: i18n.format_datetime(value, lang),
        "local_day": lambda value: i18n.format_day(value, lang),
        "photo_geotag_far_meters": settings.photo_geotag_far_meters,
        # names people read instead of codes (issue 17 item 16): the reference snapshot
        # the request took when it loaded the user
        **_namers(snapshot, lang),
        "user": user,
        "csrf": csrf_token(settings, str(user.principal.sid)) if user else context.pop("csrf", ""),
        # a refused form's page answers its action's URL: links name the page's own
        "path": scope_state.get("page_path", request.url.path),
        "query": "" if "page_path" in scope_state else request.url.query,
        "is_city": bool(actor and policy.may_dispatch(actor)),
        "own_unit_codes": _own_unit_codes(actor, snapshot),
        # the unit pages the navigation offers: only those the policy lets this actor open
        "manage_codes": _manage_codes(actor, snapshot),
        # the dossier pages (issue 19): imports for whoever may load an agency's files,
        # the agencies' lateness for every staff member (the page shows their scope)
        "nav_dossier_imports": bool(actor and policy.dossier_import_scope(actor) != frozenset()),
        "nav_dossier_supervision": bool(actor and actor.is_staff),
        # suspended accounts and their appeals (issue 22 item 6): admins
        "nav_suspensions": bool(actor and policy.may_suspend_account(actor, None)),
        # errors in place and confirmations (issue 23 items 2-3): the refused form's state
        # (templates/_form.html), and what the action before the redirect did
        "fs": scope_state.get("form_state", forms.NO_FORM),
        "confirmation": scope_state.get("confirmation"),
    }
    return Template(template_name=name, context={**base, **context}, status_code=status_code)


def _namers(snapshot: Any, lang: str) -> dict[str, Any]:
    """category_name / unit_name / area_name for templates: the name in the reader's
    language, the code only when the snapshot does not know it."""

    def category(code: str | None) -> str:
        ref = snapshot.categories.get(code) if snapshot and code else None
        return ref.name(lang) if ref else (code or "—")

    def unit(code: str | None) -> str:
        ref = snapshot.units_by_code.get(code) if snapshot and code else None
        return ref.name(lang) if ref else (code or "—")

    def area(code: str | None) -> str:
        ref = snapshot.areas.get(code) if snapshot and code else None
        return ref.name if ref else (code or "—")

    return {"category_name": category, "unit_name": unit, "area_name": area}


async def _user(request: Request, state: State, session: DbSession) -> ConsoleUser:
    """The signed-in staff member; the request's actor (app/policy.py) is built once here
    from their current roles, for the page and its forms."""
    scope_state = request.scope.setdefault("state", {})
    scope_state["reference"] = await state.reference.current()
    now = state.clock.now()
    user = await current_user(session, state.settings, request.cookies.get(SESSION_COOKIE), now)
    scope_state["actor"] = await policy.actor_for(
        user.principal, state.reference, now, client_ip(request)
    )
    if request.method == "GET" and (
        "done" in request.query_params or "routed" in request.query_params
    ):
        scope_state["confirmation"] = await _confirmation(request, session, scope_state["actor"])
    return user


def _actor(request: Request) -> policy.Actor:
    return request.scope["state"]["actor"]


def _own_unit_codes(actor: policy.Actor | None, snapshot: Any) -> list[str]:
    """The units where the actor holds a role, for the navigation."""
    if actor is None or snapshot is None:
        return []
    return sorted(snapshot.units[u].code for u in actor.own_units if u in snapshot.units)


def _manage_codes(actor: policy.Actor | None, snapshot: Any) -> set[str]:
    if actor is None or snapshot is None:
        return set()
    return {
        snapshot.units[u].code
        for u in actor.own_units
        if u in snapshot.units and policy.may_manage_unit(actor, u)
    }


async def _refuse_nul(request: Request) -> None:
    """The pages' before-request hook: in a posted form, text with U+0000 (which
    PostgreSQL cannot store) is a 400 here, for every form, before Litestar decodes it into
    the handler's Struct and before any of it reaches a query. Litestar keeps the parsed
    form in the request's scope, and the decoding reads that same form (so a form posted
    url-encoded or as multipart decodes the same way)."""
    if request.method != "POST":
        return None
    form = await request.form()
    for key, value in form.multi_items():
        if isinstance(value, str) and "\x00" in value:
            field = key.replace("\x00", "") or "form"
            raise BadRequest(
                "form_invalid",
                params={"fields": field},
                errors=[FieldError(field=field, message="contains U+0000 (NUL)", source="body")],
            )
    return None


def _form_int(raw: str, name: str) -> int | None:
    """An optional id from a form: empty is None; anything but 1..2^63-1 is a 400."""
    if raw == "":
        return None
    try:
        value = int(raw)
    except ValueError:
        value = 0
    if not 1 <= value <= notifications.MAX_ID:
        raise BadRequest(
            "form_invalid",
            params={"fields": name},
            errors=[FieldError(field=name, message="an id from 1 to 2^63-1", source="body")],
        )
    return value


async def _signed_form(
    request: Request, state: State, session: DbSession, form: forms.SignedForm
) -> ConsoleUser:
    """The signed-in staff member who posted ``form`` with their own CSRF token."""
    user = await _user(request, state, session)
    check_csrf(state.settings, str(user.principal.sid), form.csrf)
    return user


def _done(
    report_id: uuid.UUID, form: forms.SignedForm, done: str, back: str = "", **ids: str
) -> Redirect:
    """After an action: back to the report (or the console page the form names, or
    ``back``), with what was done and the ids the confirmation names (issue 23 item 3:
    the next page writes the text, the URL carries no text). ``done`` comes last."""
    back = getattr(form, "back", "") or back
    target = _safe_next(back) if back else f"/console/reports/{report_id}"
    if back and not target.startswith(f"/console/reports/{report_id}"):
        ids = {"done_report": str(report_id), **ids}
    joiner = "&" if "?" in target else "?"
    return Redirect(f"{target}{joiner}{urlencode({**ids, 'done': done})}", status_code=303)


# ---- confirmations (issue 23 item 3): the action's code and ids travel through the
# redirect; the page names the report and the unit from the database and the reference
# snapshot, never from text in the URL, in an element focused on load (console.js)

CONFIRMATIONS = {
    "accepted": "console.confirm.accepted",
    "reply": "console.confirm.reply",
    "note": "console.confirm.note",
    "info_request": "console.confirm.info_request",
    "transferred": "console.confirm.transferred",
    "extended": "console.confirm.extended",
    "extension_requested": "console.confirm.extension_requested",
    "extension_approved": "console.confirm.extension_approved",
    "extension_declined": "console.confirm.extension_declined",
    "resolved": "console.confirm.resolved",
    "rejected": "console.confirm.rejected",
    "merged": "console.confirm.merged",
    "hidden": "console.confirm.hidden",
    "hidden_photo": "console.confirm.hidden_photo",
    "template_sent": "console.confirm.template_sent",
    "flagged": "console.confirm.flagged",
    "unflagged": "console.confirm.unflagged",
    "saved": "console.confirm.template_saved",
    "deleted": "console.confirm.template_deleted",
    "second_factor_reset": "console.two_factor_reset_done",
    "redacted": "console.redaction.done",
    "suspended": "console.moderation.done_suspended",
    "lifted": "console.moderation.done_lifted",
    "uploaded": "dossier_import.uploaded",
}


async def _confirmation(request: Request, session: DbSession, actor: policy.Actor) -> str | None:
    """The text of ``?done=`` (and the dispatch page's ``?routed=``) for this page."""
    query, lang = request.query_params, language(request)
    routed = _int_or_none(query.get("routed"))
    if routed is not None and request.url.path == "/console/dispatch":
        return texts.text("routed_n", lang, n=routed)
    done = query.get("done") or ""
    key = CONFIRMATIONS.get(done)
    if key is None:
        return texts.text("done", lang) if query.get("done") else None
    if key.startswith("console.confirm.") and done not in ("saved", "deleted"):
        report_id = request.path_params.get("report_id") or _uuid_or_none(query.get("done_report"))
        row = (
            (
                await session.execute(
                    select(Report.code, Report.unit_id).where(Report.id == report_id)
                )
            ).first()
            if report_id
            else None
        )
        if row is None or not (
            policy.may_see_report(actor, row.unit_id)
            or await _acted_on(session, report_id, actor)  # e.g. transferred it away
        ):
            return texts.text("done", lang)
        snapshot = request.scope["state"]["reference"]
        unit = snapshot.units_by_code.get(query.get("done_unit") or "")
        if key == "console.confirm.transferred" and unit is None:
            key = "console.confirm.transferred_away"
        return i18n.text(key, lang, code=row.code, unit=unit.name(lang) if unit else "")
    return i18n.text(key, lang)


async def _acted_on(session: DbSession, report_id: Any, actor: policy.Actor) -> bool:
    user_id = actor.principal.user_id if actor.principal else None
    found = await session.scalar(
        select(ReportEvent.id)
        .where(ReportEvent.report_id == report_id, ReportEvent.actor_id == user_id)
        .limit(1)
    )
    return found is not None


def _uuid_or_none(raw: str | None) -> uuid.UUID | None:
    try:
        return uuid.UUID(raw) if raw else None
    except ValueError:
        return None


async def _message(
    request: Request,
    state: State,
    session: DbSession,
    report_id: uuid.UUID,
    form: forms.MessageForm,
    kind: str,
) -> Redirect:
    """reply, note, info_request"""
    await _signed_form(request, state, session, form)
    cmd = forms.command(form, MessageIn)
    await handling.add_message(session, _actor(request), report_id, cmd, kind=kind)
    return _done(report_id, form, kind)


def refused(request: Request, key: str, values: dict[str, Any], error: AppError) -> None:
    """For a handler that answers its refused form itself (its write in a transaction of
    its own, the page read with the request's): the form's state that ``render`` shows,
    as ``page_error_handler`` makes it for the others (issue 23 item 2)."""
    kept = {
        name: [str(v) for v in (value if isinstance(value, list) else [value])]
        for name, value in values.items()
    }
    params = {name: found[0] for name, found in kept.items() if found}
    params.update({name: str(value) for name, value in request.path_params.items()})
    request.scope.setdefault("state", {})["form_state"] = forms.failed(
        key, kept, params, language(request), error=error
    )


def form_page(page: str, form: str) -> dict[str, str]:
    """A form handler's ``opt``: the page its form is on (a name in ``PAGES``) and the
    form's key there (``forms.FORMS``), so that a refused form comes back on that page
    with what was typed (issue 23 item 2, ``page_error_handler``)."""
    return {"form_page": page, "form_key": form}


# the body of a page's form, decoded by Litestar into the handler's Struct
UrlEncoded = Body(media_type=RequestEncodingType.URL_ENCODED)
Multipart = Body(media_type=RequestEncodingType.MULTI_PART)


# ---------------------------------------------------------------- pages


class ConsolePages(Controller):
    path = "/console"
    include_in_schema = False
    before_request = staticmethod(_refuse_nul)

    @get("/", name="console.home")
    async def home(self) -> Redirect:
        return Redirect("/console/queue", status_code=303)

    @get("/login")
    async def login_form(
        self, request: Request, state: State, session: DbSession, next: FromQuery[str | None] = None
    ) -> Template | Redirect:
        try:
            await _user(request, state, session)
            return Redirect(_safe_next(next), status_code=303)
        except AppError:
            pass
        nonce = new_pre_session()
        page = render(
            request,
            "login.html",
            None,
            csrf=csrf_token(state.settings, "pre:" + nonce),
            next=_safe_next(next),
            error=None,
        )
        page.cookies.append(_pre_cookie(state, nonce))
        return page

    @post("/login", opt=form_page("login", "login"))
    async def login(
        self,
        request: Request,
        state: State,
        session: DbSession,
        data: Annotated[forms.LoginForm, UrlEncoded],
    ) -> Response:
        nonce = request.cookies.get(PRE_SESSION_COOKIE)
        check_csrf(state.settings, "pre:" + nonce if nonce else None, data.csrf)
        email, password = data.email, data.password
        target = _safe_next(data.next)
        try:
            token = await sign_in(
                session,
                state.settings,
                state.limiter,
                email,
                password,
                client_ip(request),
                state.clock.now(),
                request.headers.get("user-agent"),
            )
        except AppError as exc:
            # the same form again, with the reason beside the email (issue 23 item 2: the
            # summary is focused, so it is read out) and the email as typed; nothing was
            # written before the check
            if not exc.errors:
                exc.errors = [FieldError(field="email", message=exc.code, source="body")]
            request.scope.setdefault("state", {})["form_state"] = forms.failed(
                "login", {"email": [email]}, {}, language(request), error=exc
            )
            page = await login_again(request, state, session)
            page.status_code = exc.status
            if exc.retry_after is not None:
                page.headers["Retry-After"] = str(exc.retry_after)
            return page
        # ---- staff second factor (issue 22 item 3): a code (or enrolment) comes first
        if not isinstance(token, str):
            from app.web.two_factor import challenge_redirect  # builds on this module

            return challenge_redirect(state, token, target)
        # ---- end staff second factor
        response = Redirect(target, status_code=303)
        response.cookies.append(
            Cookie(
                key=SESSION_COOKIE,
                value=token,
                path="/console",
                httponly=True,
                secure=_secure(state),
                samesite="lax",
                max_age=state.settings.console_session_hours * 3600,
            )
        )
        response.cookies.append(
            Cookie(key=PRE_SESSION_COOKIE, value="", path="/console", max_age=0)
        )
        return response

    @post("/logout")
    async def logout(
        self,
        request: Request,
        state: State,
        session: DbSession,
        data: Annotated[forms.CsrfForm, UrlEncoded],
    ) -> Redirect:
        user = await _signed_form(request, state, session, data)
        await accounts.logout(
            session, state.settings, state.redis, user.principal, state.clock.now()
        )
        response = Redirect("/console/login", status_code=303)
        response.cookies.append(Cookie(key=SESSION_COOKIE, value="", path="/console", max_age=0))
        return response

    @get("/lang")
    async def switch_language(
        self,
        state: State,
        to: Annotated[str, QueryParameter(pattern="^(vi|en)$")],
        next: FromQuery[str | None] = None,
    ) -> Redirect:
        response = Redirect(_safe_next(next), status_code=303)
        response.cookies.append(
            Cookie(
                key=LANG_COOKIE,
                value=to,
                path="/console",
                samesite="lax",
                secure=_secure(state),
                max_age=365 * 86400,
            )
        )
        return response

    @get("/queue")
    async def queue(
        self,
        request: Request,
        state: State,
        session: DbSession,
        unit: Annotated[str | None, QueryParameter(max_length=40)] = None,
        status: Annotated[
            str | None, QueryParameter(pattern="^(submitted|assigned|in_progress|reopened)?$")
        ] = None,
        category: Annotated[str | None, QueryParameter(max_length=40)] = None,
        overdue: FromQuery[bool | None] = None,
        due_soon: FromQuery[bool] = False,
        cursor: Annotated[str | None, QueryParameter(max_length=200)] = None,
    ) -> Template:
        user = await _user(request, state, session)
        return await queue_page(
            request,
            state,
            session,
            user,
            unit=unit,
            status=status,
            category=category,
            overdue=overdue,
            due_soon=due_soon,
            cursor=cursor,
        )

    @get("/map")
    async def map_page(self, request: Request, state: State, session: DbSession) -> Template:
        user = await _user(request, state, session)
        page = await console.queue(session, state.deadlines.calendar, _actor(request), limit=200)
        return render(
            request,
            "map.html",
            user,
            page=page,
            tile_url=state.settings.console_tile_url,
        )

    @get("/map.geojson")
    async def map_data(
        self,
        request: Request,
        state: State,
        session: DbSession,
        bbox: Annotated[str, QueryParameter(max_length=120)],
        zoom: Annotated[int, QueryParameter(ge=0, le=22)] = 12,
    ) -> Response:
        await _user(request, state, session)
        try:
            box = tuple(float(v) for v in bbox.split(","))
            if len(box) != 4 or not (
                -180 <= box[0] < box[2] <= 180 and -90 <= box[1] < box[3] <= 90
            ):
                raise ValueError(bbox)
        except ValueError as exc:
            raise Unprocessable(
                "form_invalid",
                params={"fields": "bbox"},
                errors=[
                    FieldError(
                        field="bbox", message="min_lon,min_lat,max_lon,max_lat", source="query"
                    )
                ],
            ) from exc
        data = await console.queue_map(session, _actor(request), box, zoom)
        return Response(data, media_type="application/geo+json")

    @get("/map/areas.geojson")
    async def area_outlines(self, request: Request, state: State, session: DbSession) -> Response:
        """Ward outlines, simplified (~50 m), as the console maps' base layer: the maps
        stay readable with no tile server."""
        await _user(request, state, session)
        data = await console.area_outlines(session)
        return Response(
            data,
            media_type="application/geo+json",
            headers={"Cache-Control": "private, max-age=3600"},
        )

    @get("/dispatch")
    async def dispatch(self, request: Request, state: State, session: DbSession) -> Template:
        return await dispatch_page(request, state, session)

    @post("/dispatch/route", opt=form_page("dispatch", "route_now"))
    async def route_now(
        self,
        request: Request,
        state: State,
        session: DbSession,
        data: Annotated[forms.CsrfForm, UrlEncoded],
    ) -> Redirect:
        """The router run by hand (workers down or behind); dispatchers and admins."""
        await _signed_form(request, state, session, data)
        routed = await routing.route_now(session, state.deadlines, _actor(request))
        return Redirect(f"/console/dispatch?routed={len(routed)}", status_code=303)

    @get("/reports/{report_id:uuid}")
    async def report(
        self, request: Request, state: State, session: DbSession, report_id: FromPath[uuid.UUID]
    ) -> Template:
        return await report_page(request, state, session)

    # ---- one handler per form acting on a report; each posts back to the report page

    @post("/reports/{report_id:uuid}/accept", opt=form_page("report", "accept"))
    async def accept(
        self,
        request: Request,
        state: State,
        session: DbSession,
        report_id: FromPath[uuid.UUID],
        data: Annotated[forms.AcceptForm, UrlEncoded],
    ) -> Redirect:
        await _signed_form(request, state, session, data)
        await handling.accept(session, _actor(request), report_id)
        return _done(report_id, data, "accepted")

    @post("/reports/{report_id:uuid}/reply", opt=form_page("report", "reply"))
    async def reply(
        self,
        request: Request,
        state: State,
        session: DbSession,
        report_id: FromPath[uuid.UUID],
        data: Annotated[forms.MessageForm, UrlEncoded],
    ) -> Redirect:
        return await _message(request, state, session, report_id, data, "reply")

    @post("/reports/{report_id:uuid}/note", opt=form_page("report", "note"))
    async def note(
        self,
        request: Request,
        state: State,
        session: DbSession,
        report_id: FromPath[uuid.UUID],
        data: Annotated[forms.MessageForm, UrlEncoded],
    ) -> Redirect:
        return await _message(request, state, session, report_id, data, "note")

    @post("/reports/{report_id:uuid}/info_request", opt=form_page("report", "info_request"))
    async def info_request(
        self,
        request: Request,
        state: State,
        session: DbSession,
        report_id: FromPath[uuid.UUID],
        data: Annotated[forms.MessageForm, UrlEncoded],
    ) -> Redirect:
        return await _message(request, state, session, report_id, data, "info_request")

    @post("/reports/{report_id:uuid}/{action:str}")
    async def unknown_action(self, report_id: FromPath[uuid.UUID], action: FromPath[str]) -> None:
        """A path no form posts to (the actions above are matched first)."""
        raise NotFound("action_unknown")

    @post("/reports/{report_id:uuid}/transfer", opt=form_page("report", "transfer"))
    async def transfer(
        self,
        request: Request,
        state: State,
        session: DbSession,
        report_id: FromPath[uuid.UUID],
        data: Annotated[forms.TransferForm, UrlEncoded],
    ) -> Redirect:
        await _signed_form(request, state, session, data)
        cmd = forms.command(data, TransferIn)
        unit = await routing.transfer(session, state.settings, _actor(request), report_id, cmd)
        # sent out of their units: the queue, since the report's page is no longer theirs
        away = "" if policy.may_see_report(_actor(request), unit.id) else "/console/queue"
        return _done(report_id, data, "transferred", back=away, done_unit=unit.code)

    @post("/reports/{report_id:uuid}/extension", opt=form_page("report", "extension"))
    async def extension(
        self,
        request: Request,
        state: State,
        session: DbSession,
        report_id: FromPath[uuid.UUID],
        data: Annotated[forms.ExtensionForm, UrlEncoded],
    ) -> Redirect:
        await _signed_form(request, state, session, data)
        cmd = forms.command(data, ExtensionIn)
        await routing.grant_extension(session, state.deadlines, _actor(request), report_id, cmd)
        return _done(report_id, data, "extended")

    @post(
        "/reports/{report_id:uuid}/extension_request", opt=form_page("report", "extension_request")
    )
    async def extension_request(
        self,
        request: Request,
        state: State,
        session: DbSession,
        report_id: FromPath[uuid.UUID],
        data: Annotated[forms.ExtensionRequestForm, UrlEncoded],
    ) -> Redirect:
        await _signed_form(request, state, session, data)
        cmd = forms.command(data, ExtensionRequestIn)
        await routing.request_extension(session, state.deadlines, _actor(request), report_id, cmd)
        return _done(report_id, data, "extension_requested")

    @post(
        "/reports/{report_id:uuid}/extension_decision",
        opt=form_page("report", "extension_decision"),
    )
    async def extension_decision(
        self,
        request: Request,
        state: State,
        session: DbSession,
        report_id: FromPath[uuid.UUID],
        data: Annotated[forms.ExtensionDecisionForm, UrlEncoded],
    ) -> Redirect:
        await _signed_form(request, state, session, data)
        cmd = ExtensionDecisionIn(approve=data.decision == "approve", note=data.note or None)
        await routing.decide_extension(session, state.deadlines, _actor(request), report_id, cmd)
        return _done(report_id, data, "extension_approved" if cmd.approve else "extension_declined")

    @post(
        "/reports/{report_id:uuid}/resolve",
        request_max_body_size=MAX_RESOLUTION_UPLOAD,
        opt=form_page("report", "resolve"),
    )
    async def resolve(
        self,
        request: Request,
        state: State,
        session: DbSession,
        report_id: FromPath[uuid.UUID],
        data: Annotated[forms.ResolveForm, Multipart],
    ) -> Redirect:
        user = await _signed_form(request, state, session, data)
        photo_ids = []
        files = [f for f in data.photos if f.filename]
        for upload in files[: state.settings.photos_per_report + 1]:
            photo = await complaints.upload_photo(
                session,
                state.settings,
                state.storage,
                user.principal.user_id,
                await upload.read(),
                state.clock.now(),
            )
            photo_ids.append(photo.id)
        cmd = ResolveIn(answer=data.answer, photo_ids=photo_ids)
        await handling.resolve(
            session, state.settings, state.deadlines.calendar, _actor(request), report_id, cmd
        )
        return _done(report_id, data, "resolved")

    @post("/reports/{report_id:uuid}/reject", opt=form_page("report", "reject"))
    async def reject(
        self,
        request: Request,
        state: State,
        session: DbSession,
        report_id: FromPath[uuid.UUID],
        data: Annotated[forms.RejectForm, UrlEncoded],
    ) -> Redirect:
        await _signed_form(request, state, session, data)
        await handling.reject(session, _actor(request), report_id, forms.command(data, RejectIn))
        return _done(report_id, data, "rejected")

    @post("/reports/{report_id:uuid}/merge", opt=form_page("report", "merge"))
    async def merge(
        self,
        request: Request,
        state: State,
        session: DbSession,
        report_id: FromPath[uuid.UUID],
        data: Annotated[forms.MergeForm, UrlEncoded],
    ) -> Redirect:
        await _signed_form(request, state, session, data)
        cmd = forms.command(data, MergeIn)
        await handling.merge_duplicate(session, _actor(request), report_id, cmd)
        return _done(report_id, data, "merged")

    @post("/reports/{report_id:uuid}/hide_text", opt=form_page("report", "hide_text"))
    async def hide_text(
        self,
        request: Request,
        state: State,
        session: DbSession,
        report_id: FromPath[uuid.UUID],
        data: Annotated[forms.RejectForm, UrlEncoded],
    ) -> Redirect:
        await _signed_form(request, state, session, data)
        await complaints.hide_text(session, _actor(request), report_id, data.reason)
        return _done(report_id, data, "hidden")

    @post("/reports/{report_id:uuid}/hide_photo", opt=form_page("report", "hide_photo-{photo_id}"))
    async def hide_photo(
        self,
        request: Request,
        state: State,
        session: DbSession,
        report_id: FromPath[uuid.UUID],
        data: Annotated[forms.HidePhotoForm, UrlEncoded],
    ) -> Redirect:
        await _signed_form(request, state, session, data)
        await complaints.hide_photo(session, _actor(request), data.photo_id, data.reason)
        return _done(report_id, data, "hidden_photo")

    @get("/inbox")
    async def inbox(
        self,
        request: Request,
        state: State,
        session: DbSession,
        cursor: Annotated[str | None, QueryParameter(max_length=30)] = None,
    ) -> Template:
        """The staff member's notifications (new report, reminder, overdue, escalated,
        extension requested), newest first."""
        user = await _user(request, state, session)
        page = await notifications.list_notifications(
            session, user.principal.user_id, cursor=cursor, limit=50
        )
        return render(request, "inbox.html", user, page=page)

    @post("/inbox/{notification_id:int}/open")
    async def open_notification(
        self,
        request: Request,
        state: State,
        session: DbSession,
        notification_id: RowId,
        data: Annotated[forms.CsrfForm, UrlEncoded],
    ) -> Redirect:
        """Marks it read and goes where it points (a console page, else the inbox)."""
        user = await _signed_form(request, state, session, data)
        row = await notifications.mark_read(
            session, user.principal.user_id, notification_id, state.clock.now()
        )
        return Redirect(_safe_next(row.link) if row.link else "/console/inbox", status_code=303)

    @post("/inbox/read-all")
    async def read_all(
        self,
        request: Request,
        state: State,
        session: DbSession,
        data: Annotated[forms.ReadAllForm, UrlEncoded],
    ) -> Redirect:
        user = await _signed_form(request, state, session, data)
        up_to = _form_int(data.up_to_id, "up_to_id")
        await notifications.mark_all_read(session, user.principal.user_id, state.clock.now(), up_to)
        return Redirect("/console/inbox", status_code=303)

    @get("/units/{code:str}/index")
    async def service_index(
        self, request: Request, state: State, session: DbSession, code: FromPath[str]
    ) -> Template:
        user = await _user(request, state, session)
        trend = await stats.unit_index_for_staff(session, _actor(request), code)
        # the agencies under the unit, same periods (issue 19 second pass, item 7)
        lang = language(request)
        return render(
            request,
            "index.html",
            user,
            trend=trend,
            comments=await stats.recent_rating_comments(session, code),
            agency_tables=await index_read.unit_agency_tables(
                session, _actor(request), request.scope["state"]["reference"], code
            ),
            agency_text=lambda key, **params: i18n.text(f"dossier_index.{key}", lang, **params),
        )

    @get("/units/{code:str}/staff")
    async def unit_staff(
        self, request: Request, state: State, session: DbSession, code: FromPath[str]
    ) -> Template:
        return await staff_page(request, state, session, code)

    @get("/units/{code:str}/audit")
    async def unit_audit(
        self,
        request: Request,
        state: State,
        session: DbSession,
        code: FromPath[str],
        before_id: Annotated[int | None, QueryParameter(ge=1, le=2**63 - 1)] = None,
    ) -> Template:
        user = await _user(request, state, session)
        actor = _actor(request)
        entries = await accounts.unit_audit_trail(
            session, actor, code, before_id, 100, client_ip(request)
        )
        members = {
            m.id: m.full_name or m.email
            for m in await accounts.unit_staff(session, actor, code, None)
        }
        return render(
            request,
            "audit.html",
            user,
            unit_code=code,
            entries=entries,
            members=members,
            older=entries[-1].id if len(entries) == 100 else None,
        )


async def queue_page(
    request: Request,
    state: State,
    session: DbSession,
    user: ConsoleUser,
    *,
    unit: str | None = None,
    status: str | None = None,
    category: str | None = None,
    overdue: bool | None = None,
    due_soon: bool = False,
    cursor: str | None = None,
    status_code: int = 200,
    **extra: Any,
) -> Template:
    """The queue page (its filters, counts and page of reports, the bulk form); the bulk
    form's answer (issue 22 item 2) passes its results or its refusal as ``extra``."""
    from app.web import response_templates  # the bulk form's choices (issue 22 item 2)

    actor = _actor(request)
    page = await console.queue(
        session,
        state.deadlines.calendar,
        actor,
        unit_code=unit or None,
        status=status or None,
        category=category or None,
        overdue=overdue,
        due_soon=due_soon,
        cursor=cursor,
        limit=50,
    )
    filters = {
        "unit": unit or "",
        "status": status or "",
        "category": category or "",
        "overdue": "" if overdue is None else str(overdue).lower(),
        "due_soon": "true" if due_soon else "",
    }
    keep = {k: v for k, v in filters.items() if v}
    return render(
        request,
        "queue.html",
        user,
        status_code=status_code,
        page=page,
        filters=filters,
        units=await console.units_visible(session, actor),
        categories=_categories(request),
        filter_link=lambda **change: (
            "/console/queue?" + urlencode({k: v for k, v in {**keep, **change}.items() if v})
        ),
        next_link="/console/queue?" + urlencode({**keep, "cursor": page.next_cursor})
        if page.next_cursor
        else None,
        **await response_templates.queue_context(request, session),
        **extra,
    )


async def report_page(request: Request, state: State, session: DbSession) -> Template:
    """A report with its actions' forms (a refused one as typed, from ``render``)."""
    user = await _user(request, state, session)
    report_id = request.path_params["report_id"]
    detail = await console.report_for_staff(session, state.storage, _actor(request), report_id)
    from app.web import (
        moderation,  # the abuse flag's state and form (issue 22 item 6)
        response_templates,  # the template picker (issue 22 item 1)
    )

    return render(
        request,
        "report.html",
        user,
        r=detail,
        **await response_templates.report_context(request, state, session, detail),
        abuse_flag=await abuse.flag_of(session, report_id),
        **moderation.report_page_context(request),
        units=_transfer_targets(request, detail.unit_code),
        tile_url=state.settings.console_tile_url,
    )


async def dispatch_page(request: Request, state: State, session: DbSession) -> Template:
    """Reports waiting at a dispatcher unit (a transfer form per row) and those no rule
    routed yet."""
    user = await _user(request, state, session)
    actor = _actor(request)
    if not policy.may_dispatch(actor):
        raise Forbidden("role_required", params={"roles": "dispatcher, admin"})
    snapshot = request.scope["state"]["reference"]
    dispatcher_codes = [u.code for u in snapshot.units.values() if u.kind == "dispatcher"]
    calendar = state.deadlines.calendar
    waiting = [
        await console.queue(session, calendar, actor, unit_code=code, limit=100)
        for code in dispatcher_codes
    ]
    unrouted = await console.queue(session, calendar, actor, status="submitted", limit=100)
    return render(
        request,
        "dispatch.html",
        user,
        waiting=[item for page in waiting for item in page.items],
        unrouted=[i for i in unrouted.items if i.unit_code is None],
        units=[u for u in await console.units_visible(session, actor) if u.kind != "dispatcher"],
    )


async def staff_page(
    request: Request, state: State, session: DbSession, code: str | None = None
) -> Template:
    """A unit's staff, with the second factor's reset button (issue 22 item 3). A refused
    reset comes back here: its form's ``back`` names the page (``BACK_PAGES``)."""
    user = await _user(request, state, session)
    actor = _actor(request)
    code = code or str(request.scope["state"]["page_params"]["code"])
    members = await accounts.unit_staff(session, actor, code, client_ip(request))
    from app.accounts import totp

    return render(
        request,
        "staff.html",
        user,
        unit_code=code,
        members=members,
        second_factor=await totp.active_for(session, [m.id for m in members]),
        may_reset_second_factor=lambda member_id: policy.may_reset_second_factor(actor, member_id),
    )


async def queue_again(request: Request, state: State, session: DbSession) -> Template:
    """The queue (unfiltered) with the bulk form as it was posted."""
    return await queue_page(request, state, session, await _user(request, state, session))


async def login_again(request: Request, state: State, session: DbSession) -> Template:
    """The sign-in form again, with a fresh token (and pre-session cookie)."""
    form = await request.form()
    nonce = new_pre_session()
    page = render(
        request,
        "login.html",
        None,
        csrf=csrf_token(state.settings, "pre:" + nonce),
        next=_safe_next(form.get("next") if isinstance(form.get("next"), str) else None),
    )
    page.cookies.append(_pre_cookie(state, nonce))
    return page


# the pages a refused form comes back on (``form_page``): how to build it, and its path
# (``{name}``: a path parameter), which the page's own links use (the language switch
# goes to the page, not to the form's action); the other page modules add theirs
PAGES: dict[str, tuple[Any, str]] = {
    "report": (report_page, "/console/reports/{report_id}"),
    "dispatch": (dispatch_page, "/console/dispatch"),
    "queue": (queue_again, "/console/queue"),
    "login": (login_again, "/console/login"),
    "staff": (staff_page, "/console/units/{code}/staff"),
}
# a form posted from another page than its own (``back``, a path matching the pattern):
# that page, and the form's key there (the dispatch page has a transfer form per report)
BACK_PAGES: dict[str, tuple[str, str]] = {
    "/console/dispatch": ("dispatch", "assign-{report_id}"),
    "/console/units/(?P<code>[^/]+)/staff": ("staff", "second_factor_reset"),
}


def _pre_cookie(state: State, nonce: str) -> Cookie:
    return Cookie(
        key=PRE_SESSION_COOKIE,
        value=nonce,
        path="/console",
        httponly=True,
        secure=_secure(state),
        samesite="lax",
        max_age=3600,
    )


def _categories(request: Request) -> list[Any]:
    """Active categories from the process's reference snapshot (ordered by code)."""
    snapshot = request.scope["state"]["reference"]
    return [c for c in snapshot.categories.values() if c.active]


def _transfer_targets(request: Request, current: str | None) -> list[Any]:
    """Every other unit, by kind then code, from the reference snapshot."""
    snapshot = request.scope["state"]["reference"]
    units = [u for u in snapshot.units.values() if u.code != (current or "")]
    return sorted(units, key=lambda u: (u.kind, u.code))


# ---------------------------------------------------------------- errors as pages


def _invalid_fields(exc: Any) -> tuple[int, list[str]]:
    """The status and field names of Litestar's ValidationException, from its structured
    errors (``extra``: ``{"key", "message", "source"}``, one per bad value). A posted form's
    fields are a 422, as an invalid command is; a value in the query or path a 400. The key
    ``data`` is the form as a whole (a field missing, an unknown one): "form"."""
    items = [e for e in exc.extra if isinstance(e, dict)] if isinstance(exc.extra, list) else []
    body = [e for e in items if str(getattr(e.get("source"), "value", e.get("source"))) == "body"]
    keys = [str(e.get("key") or "data") for e in body or items]
    fields = list(dict.fromkeys("form" if key == "data" else key for key in keys))
    return (422 if body else 400), fields or ["query"]


def page_error_handler(request: Request, exc: Exception) -> Response:
    """Domain errors on a page: a readable page in the console's language with the same
    status code as the JSON API would give; an expired session goes to sign-in."""
    from app.web.session import SignInRequired

    if isinstance(exc, SignInRequired):
        target = request.url.path + (f"?{request.url.query}" if request.url.query else "")
        if request.method != "GET":
            target = "/console/queue"
        return Redirect("/console/login?" + urlencode({"next": target}), status_code=303)
    lang = language(request)
    exc = input_error(exc) or exc
    decoding: list[dict[str, Any]] | None = None
    if isinstance(exc, AppError):
        status, message = exc.status, i18n.translate(exc.code, lang, exc.params)
        fields = [e.field for e in exc.errors or []]
    else:
        from litestar.exceptions import HTTPException, ValidationException

        if isinstance(exc, ValidationException):
            status, fields = _invalid_fields(exc)
            message = i18n.translate("form_invalid", lang, {"fields": ", ".join(fields)})
            extra = exc.extra if isinstance(exc.extra, list) else []
            decoding = [e for e in extra if isinstance(e, dict)] if status == 422 else None
        elif isinstance(exc, HTTPException):
            status, message, fields = exc.status_code, str(exc.detail), []
        else:
            from app.core.errors import internal_error_handler

            return internal_error_handler(request, exc)
    back = request.headers.get("referer") or ""
    back_path = "/" + back.split("/", 3)[3] if back.count("/") >= 3 else ""
    page = render(
        request,
        "error.html",
        None,
        status_code=status,
        message=message,
        fields=fields,
        back=_safe_next(back_path),
    )
    _layer_headers(request, page)
    if _in_place(request, exc, status, decoding):
        return FormAgain(page, exc if isinstance(exc, AppError) else None, decoding)
    return page


def _layer_headers(request: Request, page: Response[Any]) -> None:
    """The console's response headers (CSP, no framing: ``app.main``), which Litestar adds
    to a handler's answer but not to an exception handler's."""
    handler = request.scope.get("route_handler")
    resolve = getattr(handler, "resolve_response_headers", None)
    for header in resolve() if resolve else ():
        if header.value is not None and header.name not in page.headers:
            page.headers[header.name] = header.value


def _in_place(
    request: Request, exc: Exception, status: int, decoding: list[dict[str, Any]] | None
) -> bool:
    """Whether a refused form comes back on its page (issue 23 item 2): a form posted to
    a handler that names its page, refused for its values (a field Litestar could not
    decode, a domain error) or by a rule (not allowed, a conflict). Not a forged form (the
    CSRF check's 403 is the error page, as before), not a body too large to read."""
    from app.web.session import CsrfFailed

    handler = request.scope.get("route_handler")
    opt = getattr(handler, "opt", None) or {}
    if request.method != "POST" or "form_page" not in opt or isinstance(exc, CsrfFailed):
        return False
    if not 400 <= status < 500 or status in (401, 413):
        return False
    return isinstance(exc, AppError) or decoding is not None


class FormAgain(Response[Any]):
    """The answer to a refused form: its page again, rendered with a database session of
    its own (the request's was rolled back), with ``forms.FormState`` in the request's
    state for ``render``. Exception handlers are synchronous in Litestar, so the page is
    built when the answer is sent; if it cannot be (the report is gone, not visible),
    the error page ``fallback`` is the answer, as before."""

    def __init__(
        self,
        fallback: Template,
        error: AppError | None,
        decoding: list[dict[str, Any]] | None,
    ) -> None:
        super().__init__(content=None, status_code=fallback.status_code)
        self.fallback, self.error, self.decoding = fallback, error, decoding

    def to_asgi_response(self, app: Any, request: Request, **kwargs: Any) -> Any:
        async def send_page(scope: Any, receive: Any, send: Any) -> None:
            page = await self.page(request)
            await page.to_asgi_response(app, request, **kwargs)(scope, receive, send)

        return send_page

    async def page(self, request: Request) -> Response[Any]:
        opt = request.scope["route_handler"].opt
        values: dict[str, list[str]] = {}
        try:
            posted = await request.form()  # parsed once per request: this reads it again
            for name in dict.fromkeys(posted.keys()):
                values[name] = [v for v in posted.getall(name) if isinstance(v, str)]
        except Exception:  # a body that could not be read: the page without values
            values = {}
        page_name, key = opt["form_page"], opt["form_key"]
        params = {name: found[0] for name, found in values.items() if found}
        params.update({name: str(value) for name, value in request.path_params.items()})
        back = (values.get("back") or [""])[0].split("?", 1)[0]
        for pattern, (name, form) in BACK_PAGES.items():
            if back and (found := re.fullmatch(pattern, back)):
                page_name, key = name, form
                params.update(found.groupdict())
        state = request.app.state
        scope_state = request.scope.setdefault("state", {})
        scope_state["page_params"] = params
        scope_state["form_state"] = forms.failed(
            key, values, params, language(request), decoding=self.decoding, error=self.error
        )
        build, path = PAGES[page_name]
        scope_state["page_path"] = forms.form_key(path, params)
        try:
            async with db.transaction(state.sessionmaker, state.redis) as session:
                page: Response[Any] = await build(request, state, session)
        except Exception:
            scope_state.pop("form_state", None)
            scope_state.pop("page_path", None)
            return self.fallback
        page.status_code = self.status_code
        _layer_headers(request, page)
        if self.error is not None and self.error.retry_after is not None:
            page.headers["Retry-After"] = str(self.error.retry_after)
        return page


def date_input(value: date | None) -> str:
    return value.isoformat() if value else ""
