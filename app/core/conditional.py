"""Conditional requests and compression for what a client reads (issue 24 items 1, 4).

A route opts in with ``opt=CONDITIONAL``. Its 200 answer then carries a strong ``ETag``
and ``Vary: Accept-Encoding``; a request whose ``If-None-Match`` names that ETag (or
``*``) gets **304 with no body**, with the headers the 200 would carry (ETag,
Cache-Control, Vary, Last-Modified); if the request has no ``If-None-Match``, an
``If-Modified-Since`` not older than the answer's ``Last-Modified`` does the same
(RFC 9110 §13.1.1-13.1.3, §13.2.2).

One place, one order. Litestar puts its compression middleware right around the
handler, inside every app middleware, so a middleware of ours outside it would see the
compressed bytes. This class *is* the compression middleware (``CompressionConfig``'s
``middleware_class``), so for an opted-in route it sees the handler's identity body,
then:

1. the base ETag: one the handler set (reference data: the snapshot's version, no
   hashing), otherwise an XXH3-128 digest of the encoded body (or the route's own rule:
   the live map feed's weak ETag leaves out the instant it was read, ``as_of``);
2. the content coding it will send: br when the client accepts it, else gzip, else
   none, and none below ``minimum_size`` (what Litestar's own middleware does);
3. the ETag of that representation: a strong ETag validates the exact bytes sent, so
   the gzip and br representations get ``-gz`` / ``-br`` suffixes (RFC 9110 §8.8.3),
   and ``If-None-Match`` is compared with the ETag of the representation this request
   would get (weak comparison, §13.1.2): a client that stored the gzip bytes gets its
   304 for as long as it asks for gzip;
4. 304 (never compressed, no body) or the 200, compressed by Litestar's own facades.

A malformed ``If-None-Match`` or another resource's ETag simply does not match: the
normal 200. Routes not opted in go through Litestar's compression unchanged.
``Cache-Control`` is the route's: reference data sets ``public, max-age``; personal
answers get ``no-store`` from ``app.core.headers.SecurityHeadersMiddleware``, which
adds it to the 304 as well and never touches the ETag.
"""

from __future__ import annotations

import base64
import re
from collections.abc import Callable
from email.utils import parsedate_to_datetime
from io import BytesIO
from typing import Any

import xxhash
from litestar import Litestar
from litestar.enums import CompressionEncoding
from litestar.middleware.compression.facade import CompressionFacade
from litestar.middleware.compression.gzip_facade import GzipCompression
from litestar.openapi.spec import OpenAPIHeader, OpenAPIResponse, OpenAPIType, Parameter, Schema
from litestar.routes import HTTPRoute
from litestar.types import HTTPResponseStartEvent, Message, Receive, Scope, Send

from app.core.headers import AcceptedCompressionMiddleware

OPT_KEY = "conditional"
CONDITIONAL: dict[str, Any] = {OPT_KEY: True}  # a route's ``opt``: ETag, 304, compression
NO_COMPRESSION = "no_compression"  # a route's ``opt`` key: never compress its answers

_SUFFIX = {CompressionEncoding.BROTLI: "-br", CompressionEncoding.GZIP: "-gz"}
# headers a 304 keeps (RFC 9110 §15.4.5: those the 200 would carry that describe the
# representation's metadata, not its bytes)
_KEPT_ON_304 = frozenset(
    {b"etag", b"cache-control", b"vary", b"last-modified", b"expires", b"content-location"}
    | {b"date", b"x-request-id"}
)
_ENTITY_TAG = re.compile(r'\s*(W/)?("[\x21\x23-\x7e\x80-\xff]*")\s*(?:,|$)')


def body_etag(body: bytes) -> str:
    """A strong ETag of the exact bytes: XXH3, 128 bits, base64url (22 characters).
    Not a cryptographic hash, and it need not be: an ETag is compared only with the
    ETags of the same resource. 3 µs for a 26 KB page where BLAKE2b took 80-120 µs."""
    digest = xxhash.xxh3_128_digest(body)
    return '"' + base64.urlsafe_b64encode(digest).decode("ascii").rstrip("=") + '"'


def weak_etag_without(field: bytes) -> Callable[[bytes], str]:
    """A route's ETag rule (``opt={OPT_KEY: weak_etag_without(b"as_of")}``) for an
    answer that carries the instant it was read: a *weak* ETag (RFC 9110 §8.8.1) of the
    body without that one top-level string field, so two reads that differ only by it
    are equivalent and revalidate."""
    marker = b'"' + field + b'":"'

    def etag(body: bytes) -> str:
        start = body.rfind(marker)
        if start >= 0:
            end = body.find(b'"', start + len(marker))
            body = body[:start] + body[end + 1 :]
        return "W/" + body_etag(body)

    return etag


def variant_etag(base: str, encoding: str | None) -> str:
    """The ETag of the ``encoding`` representation of what ``base`` validates."""
    if encoding is None:
        return base
    weak = base.startswith("W/")
    opaque = base[2:] if weak else base
    return ("W/" if weak else "") + opaque[:-1] + _SUFFIX[CompressionEncoding(encoding)] + '"'


def parse_if_none_match(value: str) -> tuple[bool, frozenset[str]] | None:
    """``(is_star, opaque tags)``, or ``None`` for a malformed header (then ignored)."""
    value = value.strip()
    if value == "*":
        return True, frozenset()
    tags: set[str] = set()
    position = 0
    while position < len(value):
        if value[position] in ", \t":
            position += 1
            continue
        match = _ENTITY_TAG.match(value, position)
        if match is None:
            return None
        tags.add(match.group(2))
        position = match.end()
    return (False, frozenset(tags)) if tags else None


def none_match(header: str, etag: str) -> bool:
    """True when ``If-None-Match: header`` matches ``etag`` (weak comparison)."""
    parsed = parse_if_none_match(header)
    if parsed is None:
        return False
    star, tags = parsed
    return star or (etag[2:] if etag.startswith("W/") else etag) in tags


def accepted_coding(accept_encoding: str, brotli: bool) -> str | None:
    """br if accepted (and configured), else gzip if accepted, else none; ``q=0`` refuses."""
    accepted: dict[str, float] = {}
    for item in accept_encoding.split(","):
        coding, _, params = item.partition(";")
        q = 1.0
        for param in params.split(";"):
            name, _, number = param.partition("=")
            if name.strip().lower() == "q":
                try:
                    q = float(number)
                except ValueError:
                    q = 0.0
        accepted[coding.strip().lower()] = q
    if brotli and accepted.get("br", 0) > 0:
        return CompressionEncoding.BROTLI.value
    gzip_q = accepted.get("gzip", accepted.get("x-gzip", 0))
    if gzip_q > 0 or ("gzip" not in accepted and accepted.get("*", 0) > 0):
        return CompressionEncoding.GZIP.value
    return None


def _not_modified_since(since: str, last_modified: str) -> bool:
    try:
        return parsedate_to_datetime(last_modified) <= parsedate_to_datetime(since)
    except (TypeError, ValueError, IndexError):
        return False  # a malformed date is ignored (RFC 9110 §13.1.3)


def _request_headers(scope: Scope) -> dict[bytes, str]:
    wanted = (b"if-none-match", b"if-modified-since", b"accept-encoding")
    found: dict[bytes, str] = {}
    for name, value in scope["headers"]:
        if name in wanted:
            text = value.decode("latin-1")
            found[name] = f"{found[name]}, {text}" if name in found else text
    return found


def _with_vary(headers: list[tuple[bytes, bytes]]) -> list[tuple[bytes, bytes]]:
    out: list[tuple[bytes, bytes]] = []
    merged = False
    for name, value in headers:
        if name.lower() == b"vary" and not merged:
            if b"accept-encoding" not in value.lower():
                value = value + b", Accept-Encoding"
            merged = True
        out.append((name, value))
    if not merged:
        out.append((b"vary", b"Accept-Encoding"))
    return out


class ConditionalCompressionMiddleware(AcceptedCompressionMiddleware):
    """Litestar's compression, plus ETag/304 for the routes that opted in (see above)."""

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        handler = scope.get("route_handler")
        rule = handler.opt.get(OPT_KEY) if handler is not None else None
        if rule and scope.get("method") == "GET":
            etag_of = rule if callable(rule) else body_etag
            await self.app(scope, receive, self._conditional_send(scope, send, etag_of))
            return
        await self._compress_if_accepted(scope, receive, send)

    def _compress(self, body: bytes, coding: str) -> bytes:
        buffer = BytesIO()
        facade: CompressionFacade
        if coding == CompressionEncoding.GZIP:
            facade = GzipCompression(buffer=buffer, compression_encoding=coding, config=self.config)
        else:
            facade = self.config.compression_facade(
                buffer=buffer, compression_encoding=coding, config=self.config
            )
        facade.write(body)
        facade.close()
        return buffer.getvalue()

    def _conditional_send(self, scope: Scope, send: Send, etag_of: Callable[[bytes], str]) -> Send:
        asked = _request_headers(scope)
        brotli = self.config.compression_facade.encoding == CompressionEncoding.BROTLI
        start: HTTPResponseStartEvent | None = None

        async def conditional_send(message: Message) -> None:
            nonlocal start
            if message["type"] == "http.response.start":
                start = message
                return
            if start is None or message["type"] != "http.response.body":
                await send(message)
                return
            pending, start = start, None
            if pending["status"] != 200 or message.get("more_body"):
                await send(pending)  # errors and streams: as they are, uncompressed
                await send(message)
                return
            body: bytes = message.get("body", b"")
            base: str | None = None
            last_modified: str | None = None
            headers: list[tuple[bytes, bytes]] = []
            for name, value in pending.get("headers") or ():
                lowered = name.lower()
                if lowered == b"etag":
                    base = value.decode("latin-1")
                    continue
                if lowered == b"last-modified":
                    last_modified = value.decode("latin-1")
                headers.append((name, value))
            coding = (
                accepted_coding(asked.get(b"accept-encoding", ""), brotli)
                if len(body) >= self.config.minimum_size
                else None
            )
            etag = variant_etag(base or etag_of(body), coding)
            headers = _with_vary(headers)
            headers.append((b"etag", etag.encode("latin-1")))
            if b"if-none-match" in asked:
                unchanged = none_match(asked[b"if-none-match"], etag)
            elif b"if-modified-since" in asked and last_modified is not None:
                unchanged = _not_modified_since(asked[b"if-modified-since"], last_modified)
            else:
                unchanged = False
            if unchanged:
                kept = [(n, v) for n, v in headers if n.lower() in _KEPT_ON_304]
                await send({"type": "http.response.start", "status": 304, "headers": kept})
                await send({"type": "http.response.body", "body": b"", "more_body": False})
                return
            if coding is not None:
                body = self._compress(body, coding)
                headers = [
                    (n, v)
                    for n, v in headers
                    if n.lower() not in (b"content-length", b"content-encoding")
                ]
                headers.append((b"content-encoding", coding.encode("latin-1")))
                headers.append((b"content-length", str(len(body)).encode("latin-1")))
            await send({"type": "http.response.start", "status": 200, "headers": headers})
            await send({"type": "http.response.body", "body": body, "more_body": False})

        return conditional_send


# ---------------------------------------------------------------------------- OpenAPI

_TEXT = Schema(type=OpenAPIType.STRING)


def document_conditional(app: Litestar) -> None:
    """Say in the OpenAPI document what an opted-in GET does: the ``If-None-Match``
    header it reads, the ``ETag`` (and ``Vary``) its 200 carries, and its 304."""
    document = app.openapi_schema
    paths = document.paths or {}
    not_modified = OpenAPIResponse(
        description="Not Modified: `If-None-Match` names this representation's ETag (or "
        "`*`), or, without it, `If-Modified-Since` is not older than `Last-Modified`. "
        "No body; the ETag, Cache-Control and Vary a 200 would carry.",
        headers={"ETag": OpenAPIHeader(schema=_TEXT)},
    )
    if_none_match = Parameter(
        name="If-None-Match",
        param_in="header",
        schema=_TEXT,
        description="The ETag of the copy you hold (the app keeps its own): 304 if unchanged. "
        "Each content coding has its own ETag (suffix -gz, -br).",
    )
    for route in app.routes:
        if not isinstance(route, HTTPRoute):
            continue
        handler = route.route_handler_map.get("GET", (None,))[0]
        path = paths.get(route.path_format)
        if handler is None or path is None or path.get is None:
            continue
        if not handler.opt.get(OPT_KEY):
            continue
        operation = path.get
        responses = operation.responses or {}
        for code, response in responses.items():
            if code.startswith("2") and isinstance(response, OpenAPIResponse):
                response.headers = {
                    **(response.headers or {}),
                    "ETag": OpenAPIHeader(
                        schema=_TEXT, description="Strong validator of this representation"
                    ),
                    "Vary": OpenAPIHeader(schema=_TEXT),
                }
        responses["304"] = not_modified
        operation.responses = responses
        parameters = list(operation.parameters or [])
        if not any(getattr(p, "name", "").lower() == "if-none-match" for p in parameters):
            parameters.append(if_none_match)
        operation.parameters = parameters
