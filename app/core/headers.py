"""Response headers every answer gets from one place (issue 17 item 9).

- ``Cache-Control: no-store`` on every response to a request that carried credentials
  (a bearer token, or the console's session cookie): what it answers is someone's own
  data (``/me``, ``/me/export``, their reports and notifications, console pages), and
  no shared or browser cache may keep it. A handler that set its own ``Cache-Control``
  (static files, the ward outlines) keeps it.
- ``Strict-Transport-Security`` when the request came over HTTPS: the ASGI scope's
  scheme, or, behind a proxy named in TRUSTED_PROXIES that terminated TLS, its
  ``X-Forwarded-Proto`` (``app.core.client_address.forwarded_https``).
"""

from __future__ import annotations

from collections.abc import Iterable

from litestar.config.compression import CompressionConfig
from litestar.enums import CompressionEncoding
from litestar.middleware.compression import CompressionMiddleware
from litestar.types import ASGIApp, Message, Receive, Scope, Send

from app.core.client_address import forwarded_https

SESSION_COOKIE_NAMES = (b"city_console=",)  # app.web.session.SESSION_COOKIE
HSTS = b"max-age=31536000; includeSubDomains"  # a year, the usual floor for preload lists
NO_STORE = b"no-store"


def _carries_credentials(headers: Iterable[tuple[bytes, bytes]]) -> bool:
    for name, value in headers:
        if name == b"authorization":
            return True
        if name == b"cookie" and any(c in value for c in SESSION_COOKIE_NAMES):
            return True
    return False


def _https_at_trusted_proxy(scope: Scope) -> bool:
    trusted = scope["app"].state.settings.trusted_proxies
    if not trusted:
        return False
    client = scope.get("client")
    protos = [v.decode("latin-1") for n, v in scope["headers"] if n == b"x-forwarded-proto"]
    return forwarded_https(client[0] if client else None, protos, trusted)


class SecurityHeadersMiddleware:
    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        private = _carries_credentials(scope["headers"])
        https = scope.get("scheme") == "https" or _https_at_trusted_proxy(scope)
        if not (private or https):
            await self.app(scope, receive, send)
            return

        async def send_with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers = list(message.get("headers", []))
                names = {name.lower() for name, _ in headers}
                if private and b"cache-control" not in names:
                    headers.append((b"cache-control", NO_STORE))
                if https and b"strict-transport-security" not in names:
                    headers.append((b"strict-transport-security", HSTS))
                message["headers"] = headers
            await send(message)

        await self.app(scope, receive, send_with_headers)


class AcceptedCompressionMiddleware(CompressionMiddleware):
    """Litestar's compression, entered only when the request's ``Accept-Encoding`` names
    an encoding it would use (the configured one, or gzip as the fallback). Litestar's
    own test builds a ``Headers`` from the whole scope for every request (~20 µs); most
    API calls from a bench or a server-side client send no ``Accept-Encoding``, and a
    small body is never compressed anyway (issue 18 item 9)."""

    def __init__(self, app: ASGIApp, config: CompressionConfig) -> None:
        super().__init__(app, config)
        names = {config.compression_facade.encoding}
        if config.gzip_fallback:
            names.add(CompressionEncoding.GZIP)
        self._encodings = tuple(str(getattr(n, "value", n)).encode("latin-1") for n in names)
        self._next = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        await self._compress_if_accepted(scope, receive, send)

    async def _compress_if_accepted(self, scope: Scope, receive: Receive, send: Send) -> None:
        # (a subclass calls this: Litestar wraps every subclass's __call__ in its
        # exclusion test, which super().__call__ would run a second time)
        for name, value in scope["headers"]:
            if name == b"accept-encoding":  # the first one, as Headers.get reads it
                if any(encoding in value for encoding in self._encodings):
                    await super().__call__(scope, receive, send)
                    return
                break
        await self._next(scope, receive, send)
