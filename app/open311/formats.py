"""GeoReport v2's two formats and its error shape.

Every resource is named with its format as a suffix (``services.xml``,
``requests/PA-2026-00001.json``): ``resource_format`` splits it. Answers are a list of
objects (or one object: a service definition, the discovery document) rendered as JSON
or as the specification's XML, where a list is a root element holding one element per
item and a nested list (``attributes``, ``values``, ``endpoints``, ``formats``) holds
its items under the singular name. Errors are the specification's list of
``code`` + ``description`` in the format asked for (JSON when it cannot be told).
"""

from __future__ import annotations

import logging
import re
from collections.abc import Mapping
from typing import Any

import msgspec
import msgspec.inspect
from litestar import Request, Response
from litestar.exceptions import HTTPException
from litestar.types import ExceptionHandlersMap

from app.core.errors import EXCEPTION_HANDLERS as APP_HANDLERS
from app.core.errors import AppError, input_error

log = logging.getLogger("city.open311")
FORMATS = ("json", "xml")
# Litestar adds "; charset=utf-8" to a text/* type itself
MEDIA_TYPES = {"json": "application/json; charset=utf-8", "xml": "text/xml"}
# a nested list's element and its items' (the specification's names)
LIST_ITEMS = {
    "attributes": "attribute",
    "values": "value",
    "endpoints": "endpoint",
    "formats": "format",
}
# characters XML 1.0 cannot carry, even escaped: dropped from text
_NOT_XML = "".join(map(chr, [*range(0x09), 0x0B, 0x0C, *range(0x0E, 0x20), 0xFFFE, 0xFFFF]))
_CANNOT_CARRY = re.compile(f"[{re.escape(_NOT_XML)}]")
_NEEDS_ESCAPE = re.compile(f"[&<>{re.escape(_NOT_XML)}]")


def _escaped(value: str) -> str:
    """``&``, ``<``, ``>`` escaped and what XML cannot carry dropped. Most texts need
    nothing (one search); str.replace is C's speed, where str.translate with a table
    walks a long text at ~30 us (a signed photo URL: 22 ms on a page of 1,000)."""
    if _NEEDS_ESCAPE.search(value) is None:
        return value
    if "&" in value:
        value = value.replace("&", "&amp;")
    if "<" in value:
        value = value.replace("<", "&lt;")
    if ">" in value:
        value = value.replace(">", "&gt;")
    return _CANNOT_CARRY.sub("", value)


class Open311Error(Exception):
    """An error as GeoReport v2 states it: an HTTP status, a numeric ``code`` (the status
    unless told) and a ``description`` in plain words (never personal data)."""

    def __init__(self, status: int, description: str, code: int | None = None) -> None:
        self.status = status
        self.code = status if code is None else code
        self.description = description
        super().__init__(description)


def resource_format(name: str, resource: str) -> str:
    """``services.json`` → ``json`` for the resource ``services``; a missing or unknown
    suffix, or another resource's name, is a 404 in the spec's error shape."""
    base, dot, fmt = name.rpartition(".")
    if not dot or base != resource or fmt not in FORMATS:
        raise Open311Error(404, f"Unknown resource '{name}': use {resource}.json or {resource}.xml")
    return fmt


def split_id(name: str) -> tuple[str, str]:
    """``PA-2026-00001.xml`` → (``PA-2026-00001``, ``xml``)."""
    ident, dot, fmt = name.rpartition(".")
    if not dot or not ident or fmt not in FORMATS:
        raise Open311Error(404, f"Unknown resource '{name}': add .json or .xml")
    return ident, fmt


def _text(value: Any) -> str:
    if value is None:
        return ""
    if value is True:
        return "true"
    if value is False:
        return "false"
    if isinstance(value, str):
        return _escaped(value)
    return str(value)  # a number: nothing to escape


def _element(tag: str, value: Any, out: list[str]) -> None:
    if isinstance(value, str):
        out.append(f"<{tag}>{_escaped(value)}</{tag}>")
    elif isinstance(value, Mapping):
        out.append(f"<{tag}>")
        for key, inner in value.items():
            _element(key, inner, out)
        out.append(f"</{tag}>")
    elif isinstance(value, list | tuple):
        item = LIST_ITEMS.get(tag, "item")
        out.append(f"<{tag}>")
        for inner in value:
            _element(item, inner, out)
        out.append(f"</{tag}>")
    elif value is None:
        out.append(f"<{tag}/>")
    else:
        out.append(f"<{tag}>{_text(value)}</{tag}>")


def to_xml(root: str, item: str | None, data: Any) -> bytes:
    """``<root><item>…</item>…</root>`` for a list, ``<root>…</root>`` for one object;
    items are mappings or msgspec Structs (their fields in order)."""
    out = ['<?xml version="1.0" encoding="utf-8"?>']
    if isinstance(data, list) and data and isinstance(data[0], msgspec.Struct):
        out.append(f"<{root}>")
        _struct_rows(item or "item", data, out)
        out.append(f"</{root}>")
        return "".join(out).encode()
    data = msgspec.to_builtins(data) if not _plain(data) else data
    if isinstance(data, Mapping):
        _element(root, data, out)
    else:
        out.append(f"<{root}>")
        for row in data:
            _element(item or "item", row, out)
        out.append(f"</{root}>")
    return "".join(out).encode()


class _Nested(Exception):
    """A field holds a list or an object: the row goes the general way."""


def _scalar_text(value: Any) -> str:
    kind = type(value)
    if kind is str:
        return _escaped(value)
    if value is None:
        return ""  # <tag></tag>: the same empty element as <tag/>
    if kind is bool:
        return "true" if value else "false"
    if kind is int or kind is float:
        return repr(value)
    raise _Nested


_KINDS: dict[Any, tuple[str, ...]] = {}


def _column_kinds(struct_type: Any) -> tuple[str, ...]:
    """Each field of a Struct type as the XML writer treats its column: ``text`` (str,
    or None as empty), ``number`` (a float or int that is never None), ``other``."""
    known = _KINDS.get(struct_type)
    if known is not None:
        return known
    described = msgspec.inspect.type_info(struct_type)
    assert isinstance(described, msgspec.inspect.StructType)
    kinds = []
    for field in described.fields:
        info = field.type
        options = info.types if isinstance(info, msgspec.inspect.UnionType) else (info,)
        names = {type(option).__name__ for option in options}
        if names <= {"StrType", "NoneType"} and "StrType" in names:
            kinds.append("text")
        elif names and names <= {"FloatType", "IntType"}:
            kinds.append("number")
        else:
            kinds.append("other")
    known = _KINDS[struct_type] = tuple(kinds)
    return known


def _column_texts(kind: str, values: tuple[Any, ...]) -> list[str]:
    """One field of every row as XML text, a column at a time: one search over a text
    column decides whether any of its texts needs escaping (most columns: none), and
    numbers are written by msgspec as the JSON answer writes them."""
    if kind == "text":
        texts = ["" if v is None else v for v in values]
        if _NEEDS_ESCAPE.search("".join(texts)) is not None:
            texts = [_escaped(t) for t in texts]
        return texts
    if kind == "number":
        return msgspec.json.encode(values)[1:-1].decode().split(",")
    return [_scalar_text(v) for v in values]  # booleans; a list or object raises _Nested


def _struct_rows(item: str, rows: list[Any], out: list[str]) -> None:
    """A list of one Struct type, field by field a column at a time, then one template
    per row (a page of 1,000 requests is 17,000 elements: this is where an XML answer's
    time goes); rows with a nested list or object go element by element."""
    struct_type = type(rows[0])
    fields = struct_type.__struct_fields__
    template = f"<{item}>" + "".join(f"<{f}>%s</{f}>" for f in fields) + f"</{item}>"
    columns = zip(*map(msgspec.structs.astuple, rows), strict=True)
    try:
        texts = [
            _column_texts(kind, column)
            for kind, column in zip(_column_kinds(struct_type), columns, strict=True)
        ]
    except _Nested:
        for row in rows:
            _element(item, msgspec.to_builtins(row), out)
        return
    out.extend(template % row for row in zip(*texts, strict=True))


def _plain(data: Any) -> bool:
    if isinstance(data, Mapping):
        return True
    return isinstance(data, list | tuple) and all(isinstance(row, Mapping) for row in data)


def render(
    fmt: str,
    root: str,
    item: str | None,
    data: Any,
    *,
    status: int = 200,
    headers: dict[str, str] | None = None,
) -> Response[bytes]:
    """The answer in ``fmt``: JSON as the data is, XML under ``root``/``item``. ``data``
    is a list of objects or one object, each a mapping or a msgspec Struct."""
    body = msgspec.json.encode(data) if fmt == "json" else to_xml(root, item, data)
    return Response(body, status_code=status, media_type=MEDIA_TYPES[fmt], headers=headers)


def error_response(fmt: str, status: int, errors: list[tuple[int, str]]) -> Response[bytes]:
    rows = [{"code": code, "description": description} for code, description in errors]
    return render(fmt, "errors", "error", rows, status=status)


def _format_of(request: Request) -> str:
    """The format the caller asked for, from the path's suffix (``.xml``); JSON otherwise."""
    return "xml" if request.url.path.endswith(".xml") else "json"


def open311_error_handler(request: Request, exc: Exception) -> Response[bytes]:
    """Every error under ``/open311/v2`` in the specification's shape: ours, the app's
    domain errors (a rate limit, Redis down) and the framework's (a bad parameter)."""
    fmt = _format_of(request)
    if isinstance(exc, Open311Error):
        return error_response(fmt, exc.status, [(exc.code, exc.description)])
    app_error = exc if isinstance(exc, AppError) else input_error(exc)
    if app_error is not None:
        headers = {}
        if app_error.retry_after is not None:
            headers["Retry-After"] = str(app_error.retry_after)
        fields = ", ".join(e.field for e in app_error.errors or [])
        description = app_error.code.replace("_", " ") + (f": {fields}" if fields else "")
        response = error_response(fmt, app_error.status, [(app_error.status, description)])
        response.headers.update(headers)
        return response
    if isinstance(exc, HTTPException):
        return error_response(fmt, exc.status_code, [(exc.status_code, str(exc.detail))])
    log.exception("open311: unhandled error on %s", request.url.path)
    return error_response(fmt, 500, [(500, "Internal error; try again later")])


# every kind the app's handlers know (a layer's handler for a kind wins over the app's)
EXCEPTION_HANDLERS: ExceptionHandlersMap = {
    kind: open311_error_handler for kind in (*APP_HANDLERS, Open311Error)
}
