"""The console's second-factor pages (issue 22 item 3), over app/accounts/totp.py.

After a right password, the sign-in form (app/web/api.py) hands a challenge over in an
HttpOnly cookie of its own (``city_console_2fa``, path /console, as long as the
challenge lives) and sends the browser on:

- ``/console/two-factor``: the code page (a code from the app, or a recovery code);
- ``/console/two-factor/enrol``: enrolment, for an account whose role requires a second
  factor it has not set up (only this page opens with that challenge), and for a
  signed-in staff member who sets one up by choice (from ``/console/two-factor/settings``).

Forms on the challenge's pages carry a CSRF token bound to the challenge; the signed-in
pages', the session's. Errors are shown in place, next to the field, named by its label.
Every page here shows secrets or codes: ``Cache-Control: no-store``.
"""

from __future__ import annotations

import html
import re
import uuid
from typing import Annotated, Any
from urllib.parse import urlencode

from litestar import Controller, Request, Response, get, post
from litestar.datastructures import CacheControlHeader, Cookie, State
from litestar.params import FromPath, FromQuery
from litestar.response import Redirect, Template

from app.accounts import totp
from app.accounts.models import User
from app.accounts.totp_schemas import SecondFactorChallenge
from app.core import i18n
from app.core.client_address import client_ip
from app.core.db import DbSession
from app.core.errors import AppError, FieldError
from app.web import forms, texts
from app.web.api import (
    UrlEncoded,
    _actor,
    _pre_cookie,
    _refuse_nul,
    _safe_next,
    _secure,
    _user,
    form_page,
    language,
    refused,
    render,
)
from app.web.forms import CsrfForm
from app.web.session import (
    PRE_SESSION_COOKIE,
    SESSION_COOKIE,
    check_csrf,
    csrf_token,
    new_pre_session,
)

CHALLENGE_COOKIE = "city_console_2fa"
CODE_PAGE = "/console/two-factor"
ENROL_PAGE = "/console/two-factor/enrol"
SETTINGS_PAGE = "/console/two-factor/settings"
_SIX_DIGITS = re.compile(r"^\d{6}$")
# the challenge is gone or spent: sign in again (the password page says why)
_START_AGAIN = {"second_factor_challenge_invalid", "second_factor_challenge_expired"}


class CodeForm(CsrfForm):
    """The code page's two forms: a code from the app, or a recovery code."""

    code: str = ""
    recovery_code: str = ""
    next: str = ""


class EnrolForm(CsrfForm):
    code: str = ""
    next: str = ""


class ResetForm(CsrfForm):
    back: str = ""


def challenge_redirect(state: State, challenge: SecondFactorChallenge, target: str) -> Redirect:
    """After a right password: to the code page (or enrolment) with the challenge in its
    cookie; the sign-in form's pre-session cookie is spent."""
    page = CODE_PAGE if challenge.status == "second_factor_required" else ENROL_PAGE
    response = Redirect(f"{page}?{urlencode({'next': target})}", status_code=303)
    response.cookies.append(
        Cookie(
            key=CHALLENGE_COOKIE,
            value=challenge.challenge_token,
            path="/console",
            httponly=True,
            secure=_secure(state),
            samesite="lax",
            max_age=challenge.expires_in,
        )
    )
    response.cookies.append(Cookie(key=PRE_SESSION_COOKIE, value="", path="/console", max_age=0))
    return response


def _binding(token: str) -> str:
    return "2fa:" + token


def _signed_in(response: Response, state: State, token: str) -> Response:
    """The console session's cookie (as the password-only sign-in sets it); the
    challenge's cookie goes."""
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
    response.cookies.append(Cookie(key=CHALLENGE_COOKIE, value="", path="/console", max_age=0))
    return response


def _error(request: Request, exc: AppError, field: str = "code") -> str:
    """The reason, as the page shows it beside the field; the form's state for the error
    summary at the top of the page (issue 23 item 2: focused on load, so read out). The
    code itself is never sent back."""
    if field:
        named = AppError(exc.code, params=exc.params)
        named.errors = [FieldError(field=field, message=exc.code, source="body")]
        refused(request, "two_factor", {}, named)
    return i18n.translate(exc.code, language(request), exc.params)


async def _undo(session: DbSession, exc: AppError) -> None:
    """A refused form is answered with its page, not raised: what the refusal must keep (a
    counted failure's audit row) is committed, anything else rolled back."""
    if not exc.keep_writes:
        await session.rollback()


def _login_again(request: Request, state: State, target: str, exc: AppError) -> Template:
    """The sign-in page with the reason (an expired or spent challenge), in the summary."""
    request.scope.setdefault("state", {})["form_state"] = forms.FormState(
        key="login", message=_error(request, exc, field="")
    )
    nonce = new_pre_session()
    page = render(
        request,
        "login.html",
        None,
        status_code=exc.status,
        csrf=csrf_token(state.settings, "pre:" + nonce),
        next=target,
    )
    page.cookies.append(_pre_cookie(state, nonce))
    page.cookies.append(Cookie(key=CHALLENGE_COOKIE, value="", path="/console", max_age=0))
    return page


def _with_retry_after(page: Template, exc: AppError) -> Template:
    if exc.retry_after is not None:
        page.headers["Retry-After"] = str(exc.retry_after)
    return page


class TwoFactorPages(Controller):
    path = "/console/two-factor"
    include_in_schema = False
    before_request = staticmethod(_refuse_nul)
    cache_control = CacheControlHeader(no_store=True)

    # ---- the code page, after the password

    @get("/")
    async def code_page(
        self, request: Request, state: State, session: DbSession, next: FromQuery[str | None] = None
    ) -> Template | Redirect:
        target = _safe_next(next)
        token = request.cookies.get(CHALLENGE_COOKIE)
        if not token:
            return Redirect("/console/login?" + urlencode({"next": target}), status_code=303)
        try:
            await totp.open_challenge(session, state.settings, token, "verify", state.clock.now())
        except AppError as exc:
            return _login_again(request, state, target, exc)
        return self._code_form(request, state, token, target)

    def _code_form(
        self,
        request: Request,
        state: State,
        token: str,
        target: str,
        *,
        status_code: int = 200,
        error: str | None = None,
        field: str | None = None,
    ) -> Template:
        return render(
            request,
            "two_factor_code.html",
            None,
            status_code=status_code,
            csrf=csrf_token(state.settings, _binding(token)),
            next=target,
            error=error,
            field=field,
        )

    @post("/")
    async def verify(
        self,
        request: Request,
        state: State,
        session: DbSession,
        data: Annotated[CodeForm, UrlEncoded],
    ) -> Response:
        target = _safe_next(data.next)
        token = request.cookies.get(CHALLENGE_COOKIE)
        check_csrf(state.settings, _binding(token) if token else None, data.csrf)
        assert token is not None  # the CSRF check refuses a form without the cookie
        field = "recovery_code" if data.recovery_code and not data.code else "code"
        code = data.code.strip() or None
        recovery = (data.recovery_code.strip() or None) if field == "recovery_code" else None
        try:
            if field == "code" and not (code and _SIX_DIGITS.match(code)):
                raise _CodeFormat()
            pair = await totp.sign_in(
                session,
                state.settings,
                state.limiter,
                token,
                code if field == "code" else None,
                recovery,
                state.clock.now(),
                client_ip(request),
                request.headers.get("user-agent"),
            )
        except AppError as exc:
            await _undo(session, exc)
            if exc.code in _START_AGAIN:
                return _login_again(request, state, target, exc)
            page = self._code_form(
                request,
                state,
                token,
                target,
                status_code=exc.status,
                error=_error(request, exc, field),
                field=field,
            )
            return _with_retry_after(page, exc)
        return _signed_in(Redirect(target, status_code=303), state, pair.refresh_token)

    # ---- enrolment: from a challenge (the role requires it) or signed in (by choice)

    @get("/enrol")
    async def enrol_page(
        self, request: Request, state: State, session: DbSession, next: FromQuery[str | None] = None
    ) -> Template | Redirect:
        target = _safe_next(next)
        token = request.cookies.get(CHALLENGE_COOKIE)
        now = state.clock.now()
        if token:
            try:
                enrolment = await totp.enrolment_for_challenge(
                    session, state.settings, token, now, keep_pending=True
                )
            except AppError as exc:
                return _login_again(request, state, target, exc)
            return self._enrol_form(request, None, enrolment, target, token=token)
        user = await _user(request, state, session)  # not signed in: to the sign-in page
        account = await session.get(User, user.principal.user_id)
        assert account is not None  # _user found it active
        if (await totp.status(session, state.settings, account.id)).active:
            return Redirect(SETTINGS_PAGE, status_code=303)  # an admin resets it first
        enrolment = await totp.begin_enrolment(session, state.settings, account, keep_pending=True)
        return self._enrol_form(request, user, enrolment, SETTINGS_PAGE)

    def _enrol_form(
        self,
        request: Request,
        user: Any,
        enrolment: Any,
        target: str,
        *,
        token: str | None = None,
        status_code: int = 200,
        error: str | None = None,
    ) -> Template:
        settings = request.app.state.settings
        secret = enrolment.secret
        # the form's CSRF token: the challenge's, or (signed in) the session's from render
        csrf = {"csrf": csrf_token(settings, _binding(token))} if token else {}
        return render(
            request,
            "two_factor_enrol.html",
            user,
            status_code=status_code,
            **csrf,
            next=target,
            # the QR code's accessible name in the reader's language (the API's: the issuer)
            qr_svg=re.sub(
                r"<title>[^<]*</title>",
                "<title>"
                + html.escape(texts.text("two_factor_qr_title", language(request)))
                + "</title>",
                enrolment.qr_svg,
                count=1,
            ),
            secret_groups=[secret[i : i + 4] for i in range(0, len(secret), 4)],
            error=error,
            required=token is not None,
        )

    @post("/enrol")
    async def confirm(
        self,
        request: Request,
        state: State,
        session: DbSession,
        data: Annotated[EnrolForm, UrlEncoded],
    ) -> Response:
        target = _safe_next(data.next)
        token = request.cookies.get(CHALLENGE_COOKIE)
        now = state.clock.now()
        ip = client_ip(request)
        user = None
        if token:
            check_csrf(state.settings, _binding(token), data.csrf)
        else:
            user = await _user(request, state, session)
            check_csrf(state.settings, str(user.principal.sid), data.csrf)
            target = SETTINGS_PAGE
        code = data.code.strip()
        try:
            if not _SIX_DIGITS.match(code):
                raise _CodeFormat()
            if token:
                enrolled = await totp.confirm_for_challenge(
                    session, state.settings, token, code, now, ip, request.headers.get("user-agent")
                )
                page = render(
                    request,
                    "two_factor_recovery.html",
                    None,
                    codes=enrolled.recovery_codes,
                    next=target,
                    enrolled=True,
                )
                return _signed_in(page, state, enrolled.tokens.refresh_token)
            assert user is not None
            codes = await totp.confirm_enrolment(
                session, state.settings, user.principal.user_id, code, now, ip
            )
        except AppError as exc:
            await _undo(session, exc)
            if exc.code in _START_AGAIN:
                return _login_again(request, state, target, exc)
            message = _error(request, exc)
            if token:
                try:
                    enrolment = await totp.enrolment_for_challenge(
                        session, state.settings, token, now, keep_pending=True
                    )
                except AppError as gone:
                    return _login_again(request, state, target, gone)
            else:
                assert user is not None
                account = await session.get(User, user.principal.user_id)
                assert account is not None
                enrolment = await totp.begin_enrolment(
                    session, state.settings, account, keep_pending=True
                )
            return self._enrol_form(
                request,
                user,
                enrolment,
                target,
                token=token,
                status_code=exc.status,
                error=message,
            )
        return render(
            request,
            "two_factor_recovery.html",
            user,
            codes=codes.recovery_codes,
            next=SETTINGS_PAGE,
            enrolled=True,
        )

    # ---- a signed-in staff member's own second factor

    @get("/settings")
    async def settings_page(self, request: Request, state: State, session: DbSession) -> Template:
        user = await _user(request, state, session)
        current = await totp.status(session, state.settings, user.principal.user_id)
        return render(request, "two_factor_settings.html", user, status=current, error=None)

    @post("/recovery-codes")
    async def regenerate(
        self,
        request: Request,
        state: State,
        session: DbSession,
        data: Annotated[EnrolForm, UrlEncoded],
    ) -> Template:
        user = await _user(request, state, session)
        check_csrf(state.settings, str(user.principal.sid), data.csrf)
        user_id = user.principal.user_id
        code = data.code.strip()
        try:
            if not _SIX_DIGITS.match(code):
                raise _CodeFormat()
            codes = await totp.regenerate_recovery_codes(
                session,
                state.settings,
                state.limiter,
                user_id,
                code,
                state.clock.now(),
                client_ip(request),
            )
        except AppError as exc:
            await _undo(session, exc)
            current = await totp.status(session, state.settings, user_id)
            page = render(
                request,
                "two_factor_settings.html",
                user,
                status_code=exc.status,
                status=current,
                error=_error(request, exc),
            )
            return _with_retry_after(page, exc)
        return render(
            request,
            "two_factor_recovery.html",
            user,
            codes=codes.recovery_codes,
            next=SETTINGS_PAGE,
            enrolled=False,
        )


class _CodeFormat(AppError):
    """A code that is not six digits, refused before anything is looked up."""

    status = 422
    code = "second_factor_code_format"


class SecondFactorResetPages(Controller):
    """The staff page's reset button (app/web/templates/staff.html): admins only."""

    path = "/console/staff"
    include_in_schema = False
    before_request = staticmethod(_refuse_nul)

    @post("/{user_id:uuid}/second-factor/reset", opt=form_page("staff", "second_factor_reset"))
    async def reset(
        self,
        request: Request,
        state: State,
        session: DbSession,
        user_id: FromPath[uuid.UUID],
        data: Annotated[ResetForm, UrlEncoded],
    ) -> Redirect:
        user = await _user(request, state, session)
        check_csrf(state.settings, str(user.principal.sid), data.csrf)
        await totp.reset(session, state.settings, state.redis, _actor(request), user_id)
        back = _safe_next(data.back)
        joiner = "&" if "?" in back else "?"
        return Redirect(f"{back}{joiner}done=second_factor_reset", status_code=303)
