"""Open311 GeoReport v2 under ``/open311/v2``: one controller, every resource named with
its format suffix (``services.json``). The read side is here; POST requests and tokens
are ``app/open311/write_api.py``'s (one controller, since a path's methods must share it).

Read answers carry no personal data: discovery and services may be cached five minutes,
requests and updates a minute, by anyone (``Cache-Control: public``).
"""

from __future__ import annotations

from litestar import Controller, Request, Response, get, post
from litestar.datastructures import State
from litestar.params import FromPath

from app.core.conditional import CONDITIONAL
from app.core.db import DbSession
from app.open311 import service, write_api
from app.open311.formats import Open311Error, render, resource_format, split_id

# how long browsers and proxies may keep an answer (seconds)
REFERENCE_MAX_AGE = 300  # discovery, services, service definitions
REQUESTS_MAX_AGE = 60  # requests and updates
_READS = ("discovery", "services", "requests", "servicerequestupdates")


def _params(request: Request) -> dict[str, str | None]:
    """The query's parameters; one given several times reads as its comma list."""
    query = request.query_params
    return {key: ",".join(query.getall(key)) for key in query}


def _headers(max_age: int, by_language: bool = False) -> dict[str, str]:
    headers = {"Cache-Control": f"public, max-age={max_age}"}
    if by_language:
        headers["Vary"] = "Accept-Language"
    return headers


def _checked(request: Request, state: State) -> tuple[dict[str, str | None], str]:
    """The parameters, once ``jurisdiction_id`` is known to be ours, and the locale."""
    params = _params(request)
    service.check_jurisdiction(
        params.get("jurisdiction_id"), state.settings.open311_jurisdiction_id
    )
    locale = service.locale_of(params.get("locale"), request.headers.get("accept-language"))
    return params, locale


def _base_url(request: Request, state: State) -> str:
    configured = state.settings.open311_base_url
    if configured:
        return configured.rstrip("/")
    return f"{request.base_url}".rstrip("/") + "/open311/v2"


class Open311Controller(Controller):
    path = "/"
    tags = ["open311"]

    @get("/{name:str}", cache=False, opt=CONDITIONAL)
    async def resource(
        self, request: Request, state: State, name: FromPath[str]
    ) -> Response[bytes]:
        """GET discovery / services / requests / servicerequestupdates .{json|xml}."""
        base = name.rpartition(".")[0]
        if base not in _READS:
            raise Open311Error(404, f"Unknown resource '{name}'")
        fmt = resource_format(name, base)
        params, locale = _checked(request, state)
        if base == "discovery":
            document = service.discovery(
                _base_url(request, state), state.settings.open311_contact_email, locale
            )
            return render(
                fmt, "discovery", None, document, headers=_headers(REFERENCE_MAX_AGE, True)
            )
        if base == "services":
            services = await service.services(state.engine, state.reference, locale)
            return render(
                fmt, "services", "service", services, headers=_headers(REFERENCE_MAX_AGE, True)
            )
        now = state.clock.now()
        if base == "requests":
            query = service.requests_query(params, now)
            found = await service.requests(
                state.engine, state.reference, state.storage, query, locale
            )
            return render(
                fmt, "service_requests", "request", found, headers=_headers(REQUESTS_MAX_AGE, True)
            )
        updates = await service.updates(state.engine, state.storage, params, now)
        return render(
            fmt,
            "service_requests_updates",
            "request_update",
            updates,
            headers=_headers(REQUESTS_MAX_AGE),
        )

    @get("/services/{name:str}", cache=False, opt=CONDITIONAL)
    async def service_definition(
        self, request: Request, state: State, name: FromPath[str]
    ) -> Response[bytes]:
        """GET services/{service_code}.{json|xml}: the questions a category asks."""
        code, fmt = split_id(name)
        _, locale = _checked(request, state)
        definition = await service.service_definition(state.engine, state.reference, code, locale)
        return render(
            fmt, "service_definition", None, definition, headers=_headers(REFERENCE_MAX_AGE, True)
        )

    @get("/requests/{name:str}", cache=False, opt=CONDITIONAL)
    async def request(self, request: Request, state: State, name: FromPath[str]) -> Response[bytes]:
        """GET requests/{service_request_id}.{json|xml}: an array of one."""
        ident, fmt = split_id(name)
        _, locale = _checked(request, state)
        found = await service.request(state.engine, state.reference, state.storage, ident, locale)
        return render(
            fmt, "service_requests", "request", found, headers=_headers(REQUESTS_MAX_AGE, True)
        )

    @get(["/services", "/requests", "/tokens"], cache=False, include_in_schema=False)
    async def no_format(self, request: Request) -> Response[bytes]:
        """A resource named without its format (``/requests``): the spec's 404, not the
        app's (a path with a handler below it would otherwise not reach this router)."""
        raise Open311Error(404, f"Unknown resource '{request.url.path}': add .json or .xml")

    @post("/{name:str}", status_code=200)
    async def post_request(
        self, request: Request, session: DbSession, name: FromPath[str]
    ) -> Response[bytes]:
        """POST requests.{json|xml}: a third-party app files a report with its api_key."""
        return await write_api.post_request(request, session, resource_format(name, "requests"))

    @get("/tokens/{name:str}", cache=False)
    async def token(
        self, request: Request, session: DbSession, name: FromPath[str]
    ) -> Response[bytes]:
        """GET tokens/{token}.{json|xml}: the service_request_id a token stands for."""
        token, fmt = split_id(name)
        return await write_api.get_token(request, session, token, fmt)
