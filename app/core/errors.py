"""Domain errors carry their HTTP status and a stable machine code; one handler renders
every error as RFC 9457 application/problem+json in the caller's language."""

from __future__ import annotations

import logging
import re
import traceback
import uuid
from typing import Any

import msgspec
from litestar import MediaType, Request, Response
from litestar.exceptions import (
    HTTPException,
    NotAuthorizedException,
    PermissionDeniedException,
    ValidationException,
)
from litestar.types import ExceptionHandlersMap
from sqlalchemy.exc import DBAPIError

from app.core import i18n
from app.core.logging import VALID_REQUEST_ID as _VALID_ID

log = logging.getLogger("city.errors")
PROBLEM_JSON = "application/problem+json"


class FieldError(msgspec.Struct, omit_defaults=True):
    field: str
    message: str
    source: str | None = None


class Problem(msgspec.Struct, omit_defaults=True):
    """RFC 9457 problem details, plus a stable ``code`` and optional field errors."""

    type: str
    title: str
    status: int
    code: str
    detail: str
    instance: str | None = None
    request_id: str | None = None
    errors: list[FieldError] | None = None
    allowed: list[str] | None = None
    retry_after: int | None = None
    # an RFC 9457 extension member: the places an ambiguous address may mean (issue 22)
    candidates: list[Any] | None = None


class AppError(Exception):
    """A domain error. ``keep_writes`` tells the transaction boundary to commit what the
    request wrote before failing (a counted failed attempt, a revoked token family)."""

    status: int = 400
    code: str = "bad_request"
    keep_writes: bool = False

    def __init__(
        self,
        code: str | None = None,
        *,
        params: dict[str, Any] | None = None,
        errors: list[FieldError] | None = None,
        allowed: list[str] | None = None,
        retry_after: int | None = None,
        keep_writes: bool = False,
        candidates: list[Any] | None = None,
    ) -> None:
        self.keep_writes = keep_writes
        self.candidates = candidates
        if code is not None:
            self.code = code
        self.params = params or {}
        self.errors = errors
        self.allowed = allowed
        self.retry_after = retry_after
        super().__init__(self.code)


class BadRequest(AppError):
    status = 400


class Unauthenticated(AppError):
    status = 401
    code = "unauthenticated"


class Forbidden(AppError):
    status = 403
    code = "forbidden"


class NotFound(AppError):
    status = 404
    code = "not_found"


class Conflict(AppError):
    status = 409
    code = "conflict"


class Gone(AppError):
    status = 410
    code = "gone"


class PayloadTooLarge(AppError):
    status = 413
    code = "payload_too_large"


class Unprocessable(AppError):
    status = 422
    code = "validation_failed"


class TooManyRequests(AppError):
    status = 429
    code = "rate_limited"


class ServiceUnavailable(AppError):
    status = 503
    code = "service_unavailable"


_TITLES = {
    400: "Bad Request",
    401: "Unauthorized",
    403: "Forbidden",
    404: "Not Found",
    405: "Method Not Allowed",
    409: "Conflict",
    410: "Gone",
    412: "Precondition Failed",
    413: "Content Too Large",
    415: "Unsupported Media Type",
    422: "Unprocessable Content",
    429: "Too Many Requests",
    460: "Checksum Mismatch",  # tus 1.0 checksum extension
    500: "Internal Server Error",
    503: "Service Unavailable",
}


def _problem_response(request: Request, problem: Problem) -> Response[Problem]:
    headers: dict[str, str] = {
        "Content-Language": i18n.negotiate(request.headers.get("accept-language"))
    }
    if "problem_request_id" in request.scope.get("state", {}):
        # routing errors (404/405) happen before the middleware that sets the id
        headers["X-Request-ID"] = problem.request_id or ""
    if problem.retry_after is not None:
        headers["Retry-After"] = str(problem.retry_after)
    return Response(problem, status_code=problem.status, media_type=PROBLEM_JSON, headers=headers)


def _request_id(request: Request) -> str:
    state = request.scope.setdefault("state", {})
    rid = state.get("request_id")
    if rid is None:
        header = request.headers.get("x-request-id", "")
        rid = header if _VALID_ID.match(header) else uuid.uuid4().hex
        state["problem_request_id"] = rid
    return rid


def build_problem(
    request: Request,
    status: int,
    code: str,
    *,
    params: dict[str, Any] | None = None,
    errors: list[FieldError] | None = None,
    allowed: list[str] | None = None,
    retry_after: int | None = None,
    candidates: list[Any] | None = None,
) -> Problem:
    locale = i18n.negotiate(request.headers.get("accept-language"))
    return Problem(
        type=f"urn:city-app:problem:{code}",
        title=_TITLES.get(status, "Error"),
        status=status,
        code=code,
        # a code the catalogue lacked would read as its status's generic text (a test
        # proves every raised code is in the catalogue)
        detail=i18n.translate(
            code, locale, params, fallback=_HTTP_CODES.get(status, "internal_error")
        ),
        instance=request.url.path,
        request_id=_request_id(request),
        errors=errors,
        allowed=allowed,
        retry_after=retry_after,
        candidates=candidates,
    )


def app_error_handler(request: Request, exc: AppError) -> Response[Problem]:
    return _problem_response(
        request,
        build_problem(
            request,
            exc.status,
            exc.code,
            params=exc.params,
            errors=exc.errors,
            allowed=exc.allowed,
            retry_after=exc.retry_after,
            candidates=exc.candidates,
        ),
    )


_MISSING = re.compile(r"Missing required (\w+) parameter '([^']+)'")


def _source(raw: Any) -> str | None:
    if not raw:
        return None
    text = str(getattr(raw, "value", raw))
    return text.removeprefix("ParamType.").lower()


def _field_errors(extra: Any, detail: str | None) -> list[FieldError]:
    errors: list[FieldError] = []
    if isinstance(extra, list):
        for item in extra:
            if isinstance(item, dict):
                errors.append(
                    FieldError(
                        field=str(item.get("key") or "body"),
                        message=str(item.get("message", "invalid")),
                        source=_source(item.get("source")),
                    )
                )
    if not errors and detail:
        missing = _MISSING.search(detail)
        if missing:
            errors.append(FieldError(field=missing[2], message="required", source=missing[1]))
        else:
            # Litestar's message for a body it could not decode; no request data echoed
            errors.append(FieldError(field="body", message=detail.split(" for path ")[0][:200]))
    return errors


_HTTP_CODES = {
    400: "bad_request",
    401: "unauthenticated",
    403: "forbidden",
    404: "not_found",
    405: "method_not_allowed",
    413: "payload_too_large",
    415: "unsupported_media_type",
    429: "rate_limited",
}


def http_exception_handler(request: Request, exc: HTTPException) -> Response[Problem]:
    if isinstance(exc, ValidationException):
        errors = _field_errors(exc.extra, str(exc.detail) if exc.detail else None)
        problem = build_problem(request, 400, "validation_failed", errors=errors)
        return _problem_response(request, problem)
    status = exc.status_code
    if isinstance(exc, NotAuthorizedException):
        status = 401
    elif isinstance(exc, PermissionDeniedException):
        status = 403
    if status >= 500:
        return internal_error_handler(request, exc)
    code = _HTTP_CODES.get(status, "bad_request")
    problem = build_problem(request, status, code)
    response = _problem_response(request, problem)
    if exc.headers:
        response.headers.update(exc.headers)
    return response


def _database_error_fields(exc: DBAPIError) -> dict[str, Any]:
    """What a failed statement's log line may say: the statement, the error's class,
    SQLSTATE, constraint and table, and where it was raised. Not the values (the engine
    hides them) and not PostgreSQL's message or DETAIL, which quote them ("Key
    (phone)=(+8491...) already exists")."""
    cause = exc.orig.__cause__ if exc.orig is not None else None
    return {
        "error": type(cause or exc.orig or exc).__name__,
        "sqlstate": getattr(exc.orig, "sqlstate", None),
        "constraint": getattr(cause, "constraint_name", None),
        "table": getattr(cause, "table_name", None),
        "statement": (exc.statement or "")[:2000],
        "traceback": "".join(traceback.format_tb(exc.__traceback__)),
    }


def internal_error_handler(request: Request, exc: Exception) -> Response[Problem]:
    if isinstance(exc, DBAPIError):
        log.error("unhandled_error", extra=_database_error_fields(exc))
    else:
        log.exception("unhandled_error", exc_info=exc)
    return _problem_response(request, build_problem(request, 500, "internal_error"))


# SQLSTATE 22021 (character_not_in_repertoire): the request carried text PostgreSQL cannot
# store, i.e. U+0000. Any string input can reach a query, so it is caught here, once.
_UNSTORABLE_TEXT = "22021"
# asyncpg's own DataError (SQLSTATE 22000) when a Python value does not fit the query
# argument's type before it is even sent, e.g. an integer beyond int64 for a bigint
_ARGUMENT_DOES_NOT_FIT = "invalid input for query argument"


def input_error(exc: BaseException) -> AppError | None:
    """The 400 that an exception only bad input causes stands for, or None.

    One place for what no handler should ever answer with a 500: a body that is not
    UTF-8, JSON nested deeper than the decoder's recursion limit, text with U+0000 and
    a number beyond its column's range reaching a query. The messages never echo the
    input (it may be anything, and logs and answers carry no user text)."""
    message: str | None = None
    field = "body"
    if isinstance(exc, UnicodeDecodeError):
        message = "not valid UTF-8"
    elif isinstance(exc, RecursionError) and "deserializing" in str(exc):
        message = "nested too deeply"  # msgspec's depth guard
    elif isinstance(exc, DBAPIError):
        orig = exc.orig
        if getattr(orig, "sqlstate", None) == _UNSTORABLE_TEXT:
            field, message = "request", "text must not contain U+0000 (NUL)"
        elif getattr(orig, "sqlstate", None) == "22000" and _ARGUMENT_DOES_NOT_FIT in str(orig):
            field, message = "request", "a number is out of range"
    if message is None:
        return None
    return BadRequest("validation_failed", errors=[FieldError(field=field, message=message)])


def bad_input_handler(request: Request, exc: Exception) -> Response[Problem]:
    """Exceptions that bad input may cause: a 400 problem when :func:`input_error`
    recognises it, else what it is, a 500."""
    error = input_error(exc)
    if error is None:
        return internal_error_handler(request, exc)
    return app_error_handler(request, error)


EXCEPTION_HANDLERS: ExceptionHandlersMap = {
    AppError: app_error_handler,
    HTTPException: http_exception_handler,
    DBAPIError: bad_input_handler,
    UnicodeDecodeError: bad_input_handler,
    RecursionError: bad_input_handler,
    Exception: internal_error_handler,
}

__all__ = ["MediaType"]
