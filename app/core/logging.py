"""Structured JSON logs with a request id on every line.

Every record, from the app or from libraries, goes through structlog's JSON renderer.
Logs carry ids, never personal data (no phone numbers, names or tokens).
"""

from __future__ import annotations

import logging
import re
import sys
import time
import uuid
from contextvars import ContextVar
from typing import Any

import msgspec
import structlog
from litestar.types import ASGIApp, Message, Receive, Scope, Send

request_id_var: ContextVar[str | None] = ContextVar("request_id", default=None)
VALID_REQUEST_ID = re.compile(r"^[A-Za-z0-9._-]{8,64}$")


def _add_request_id(
    _: object, __: str, event: structlog.typing.EventDict
) -> structlog.typing.EventDict:
    rid = request_id_var.get()
    if rid and "request_id" not in event:
        event["request_id"] = rid
    return event


_SHARED: list[structlog.typing.Processor] = [
    structlog.contextvars.merge_contextvars,
    structlog.stdlib.add_log_level,
    structlog.stdlib.add_logger_name,
    structlog.processors.TimeStamper(fmt="iso", utc=True),
    _add_request_id,
]


class _JsonFormatter(structlog.stdlib.ProcessorFormatter):
    """structlog's formatter, plus a fast path for the access log's records: their event
    dict is complete (``access_record``) and holds only strings and numbers, so msgspec
    writes it as it stands, the JSON structlog's renderer would write for it."""

    def format(self, record: logging.LogRecord) -> str:
        if record.__dict__.get("_city_access"):
            return _encode_json(record.msg).decode()
        return super().format(record)


_encode_json = msgspec.json.Encoder().encode


def json_formatter() -> logging.Formatter:
    """Renders any log record, from structlog or the standard library, as one JSON line."""
    return _JsonFormatter(
        foreign_pre_chain=[*_SHARED, structlog.stdlib.ExtraAdder()],
        processors=[
            structlog.stdlib.ProcessorFormatter.remove_processors_meta,
            structlog.processors.format_exc_info,
            structlog.processors.JSONRenderer(ensure_ascii=False),
        ],
    )


def configure_logging(level: str = "INFO") -> None:
    shared = _SHARED
    structlog.configure(
        processors=[*shared, structlog.stdlib.ProcessorFormatter.wrap_for_formatter],
        logger_factory=structlog.stdlib.LoggerFactory(),
        wrapper_class=structlog.stdlib.BoundLogger,
        cache_logger_on_first_use=True,
    )
    formatter = json_formatter()
    handler = logging.StreamHandler(sys.stdout)
    handler.setFormatter(formatter)
    root = logging.getLogger()
    for existing in list(root.handlers):
        if getattr(existing, "_city_json", False):
            root.removeHandler(existing)
    handler._city_json = True  # type: ignore[attr-defined]
    root.addHandler(handler)
    root.setLevel(level.upper())
    for noisy in ("httpx", "httpcore", "arq.worker", "granian.access"):
        logging.getLogger(noisy).setLevel(logging.WARNING)


_ACCESS = logging.getLogger("city.access")
_ACCESS_STAMP = structlog.processors.TimeStamper(fmt="iso", utc=True)


def access_record(event: dict[str, Any]) -> logging.LogRecord:
    """The access log's record, as ``access_log.info("request", **event)`` would make it
    through structlog's chain (same keys, same order: the fields, then event, level,
    logger, timestamp, request id), without the chain: no bound logger, no frame walk
    for the caller, no copy of the dict in the formatter (issue 18 item 9: that path
    was ~110 µs of each request)."""
    event["event"] = "request"
    structlog.contextvars.merge_contextvars(None, "info", event)
    event["level"] = "info"
    event["logger"] = "city.access"
    _ACCESS_STAMP(None, "info", event)
    _add_request_id(None, "info", event)
    return _ACCESS.makeRecord(
        "city.access",
        logging.INFO,
        __file__,
        0,
        event,
        (),
        None,
        extra={"_logger": _ACCESS, "_name": "info", "_city_access": True},
    )


class RequestIdMiddleware:
    """Takes X-Request-ID from the caller when it is sane, else makes one; echoes it in
    the response and writes one access-log line per request."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        rid = None
        for name, value in scope["headers"]:
            if name == b"x-request-id":
                candidate = value.decode("latin-1")
                if VALID_REQUEST_ID.match(candidate):
                    rid = candidate
                break
        rid = rid or uuid.uuid4().hex
        scope.setdefault("state", {})["request_id"] = rid
        token = request_id_var.set(rid)
        started = time.perf_counter()
        status = 500

        async def send_with_id(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
                message["headers"] = [*message.get("headers", []), (b"x-request-id", rid.encode())]
            await send(message)

        try:
            await self.app(scope, receive, send_with_id)
        finally:
            path = scope.get("path", "")
            if not path.startswith(("/health", "/metrics")):
                if _ACCESS.isEnabledFor(logging.INFO):
                    _ACCESS.handle(
                        access_record(
                            {
                                "method": scope.get("method"),
                                "path": path,
                                "status": status,
                                "duration_ms": round((time.perf_counter() - started) * 1000, 2),
                            }
                        )
                    )
            request_id_var.reset(token)
