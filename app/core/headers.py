"""Response headers every answer gets from one place (issue 17 item 9).

- ``Cache-Control: no-store`` on every response to a request that carried credentials
  (a bearer token, or the console's session cookie): what it answers is someone's own
  data (``/me``, ``/me/export``, their reports and notifications, console pages), and
  no shared or browser cache may keep it. A handler that set its own ``Cache-Control``
  (static files, the ward outlines) keeps it.
- ``Strict-Transport-Security`` when the request came over HTTPS. The scheme is the ASGI
  scope's: behind a proxy that terminates TLS it is https only once the trusted-proxy
  handling (TRUSTED_PROXIES) has set it from X-Forwarded-Proto.
"""

from __future__ import annotations

from litestar.types import ASGIApp, Message, Receive, Scope, Send

SESSION_COOKIE_NAMES = (b"city_console=",)  # app.web.session.SESSION_COOKIE
HSTS = b"max-age=31536000; includeSubDomains"  # a year, the usual floor for preload lists
NO_STORE = b"no-store"


def _carries_credentials(headers: list[tuple[bytes, bytes]]) -> bool:
    for name, value in headers:
        if name == b"authorization":
            return True
        if name == b"cookie" and any(c in value for c in SESSION_COOKIE_NAMES):
            return True
    return False


class SecurityHeadersMiddleware:
    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        private = _carries_credentials(scope["headers"])
        https = scope.get("scheme") == "https"
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
