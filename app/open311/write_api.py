"""Open311 GeoReport v2, the write side: POST requests with an API key, tokens.

Wired by ``app/open311/api.py``'s controller (a path's methods share one controller).
A missing, unknown or revoked ``api_key`` is a 403; each key is rate-limited
(``OPEN311_KEY_RATE``, a 429 in the spec's shape); every problem with the form is a 400
naming the parameter; an unknown service or jurisdiction a 404. Nothing is written
unless the report is filed (the request's one transaction).
"""

from __future__ import annotations

from litestar import Request, Response
from sqlalchemy.ext.asyncio import AsyncSession

from app.core.client_address import client_ip
from app.open311 import filing, keys
from app.open311.formats import Open311Error, render
from app.open311.service import check_jurisdiction, locale_of


async def post_request(request: Request, session: AsyncSession, fmt: str) -> Response[bytes]:
    state = request.app.state
    settings, now = state.settings, state.clock.now()
    form = await request.form()
    api_key = form.get("api_key") or request.query_params.get("api_key")
    if not isinstance(api_key, str) or not api_key.strip():
        raise Open311Error(403, "api_key is required to create a service request")
    key = await keys.key_in_use(session, api_key.strip(), now)
    if key is None:
        raise Open311Error(403, "Invalid api_key received: unknown or revoked")
    await state.limiter.hit(settings.open311_key_rate, "open311-key", str(key.id))
    jurisdiction = form.get("jurisdiction_id")
    check_jurisdiction(
        jurisdiction if isinstance(jurisdiction, str) else None, settings.open311_jurisdiction_id
    )
    parsed = filing.parse_filing(form)
    filed = await filing.file(session, settings, key, parsed, now, client_ip(request))
    raw_locale = form.get("locale")
    locale = locale_of(
        raw_locale if isinstance(raw_locale, str) else None, request.headers.get("accept-language")
    )
    row = {
        "service_request_id": filed.code,
        "token": str(filed.report_id),
        "service_notice": filing.service_notice(filed, locale),
        "account_id": filed.account_id,
    }
    return render(fmt, "service_requests", "request", [row], headers={"Cache-Control": "no-store"})


async def get_token(
    request: Request, session: AsyncSession, token: str, fmt: str
) -> Response[bytes]:
    check_jurisdiction(
        request.query_params.get("jurisdiction_id"),
        request.app.state.settings.open311_jurisdiction_id,
    )
    code = await filing.request_of_token(session, token)
    if code is None:
        raise Open311Error(404, f"token '{token[:100]}' not found")
    return render(
        fmt, "service_requests", "request", [{"service_request_id": code, "token": token}]
    )
