"""Dossier ingest by file (issue 19 item 2): an agency that can only export gives us an
NDJSON or CSV file of its events, uploaded by its staff in the console or handed to the
admin CLI (``python -m app.cli dossier-import``).

**The formats.** NDJSON: one native event per line, exactly the object a signed batch
carries (``app/dossiers/formats.py``). CSV (RFC 4180, read with Python's ``csv`` module,
UTF-8 with or without a BOM): a header row, then one event per row; columns are named
after the native fields, nested ones flattened with dots (``dossier.procedure_code``,
``dossier.applicant.citizen_id``); ``seq`` is a number, ``dossier.online`` true/false/1/0,
``dossier.fees`` and ``dossier.results`` a JSON array in the cell; an empty cell is a
field not given. The national portal's field names are accepted as column names
(``PORTAL_COLUMNS``: ``MaHoSo``, ``MaTTHC``, ``TenTTHC``, ``MaLinhVuc``, ``ChuHoSo``,
``LoaiDoiTuong`` 1/2, ``TrichYeuHoSo``, ``NgayTiepNhan``, ``NgayHenTra``, ``NgayTra``,
``TrangThaiHoSo``, ``HinhThuc`` 1: fully online, ``DonViXuLy``, ``NguoiXuLy``,
``ThoiDiemXuLy``, ``NoiDungXuLy`` …); a row without ``type`` is an upsert when it carries
dossier fields, else progress; without ``at``, its ``NgayTra`` or ``NgayTiepNhan``;
without ``id``, a hash of the row (the same row twice is a duplicate, as the portal's
items are). Each line goes through the ingest's parsers and ``ingest.apply_events``, so
its result is the one the same event pushed in a signed batch would get.

**Storage and the row.** The file is checked as it is copied to a temporary file
(size under ``DOSSIER_IMPORT_MAX_BYTES``, UTF-8, a known CSV header; bounded memory),
then stored through the project's storage before the ``dossier_imports`` row commits; a
rolled-back transaction deletes the object (``jobs.after_rollback``).

**The run.** ``run_import`` reads the stored object a block at a time from
``bytes_done`` and applies ``DOSSIER_IMPORT_CHUNK_LINES`` records per transaction; that
one transaction also writes the chunk's refused lines to ``dossier_import_errors`` and
advances ``bytes_done``/``lines_done`` and the counts, under the row's lock. A crash or
``kill -9`` loses at most the chunk in flight, which the next run applies from the last
committed offset (and event ids are idempotent per agency anyway). A job works for
``DOSSIER_IMPORT_JOB_SECONDS`` and hands the rest to the next job (``job_id`` names the
job by the import and its progress, so a double enqueue is one job); the reconciler
re-enqueues an unfinished import whose last chunk committed longer ago than
``RECONCILE_AFTER_SECONDS``.

**Stored files are purged** (``purge_finished_files``, ``delete_orphaned_files``, the
daily cron ``tasks.purge_dossier_import_files``): an import's file is deleted
``DOSSIER_IMPORT_FILE_RETENTION_DAYS`` after the import finished (done or failed; the row,
its counts and refused lines stay, ``file_purged_at`` says when), and a stored file under
``dossier-imports/`` that no import row names (an upload whose transaction rolled back
and whose delete was lost, a crash between the store and the row), written more than a
day ago, is deleted — as the photos' orphan purge (``app/complaints/tasks.py``).

**Bounded attempts.** Each run counts itself in ``attempts`` (committed before it works);
a committed chunk sets it back to 0 (progress). A run that raises records the
exception's type in ``last_error`` (not its message, which could quote a line) and
re-raises; a killed worker records nothing. A run that finds ``attempts`` already at
``DOSSIER_IMPORT_MAX_ATTEMPTS`` marks the import failed (``import_attempts_exhausted``,
on the console's imports page) instead of trying again, and logs
``dossier_import_failed``; the reconciler re-enqueues unfinished imports only, so it
stops there. A crash after some progress is the resumable case above: the count starts
again from the last committed chunk. A line is a physical line (NDJSON) or a CSV record (a quoted
field may span lines); its number is the physical line it starts on. A last line cut
short (no newline, and not a whole event) is refused as ``import_line_truncated``; the
rest of the file is imported.
"""

from __future__ import annotations

import asyncio
import base64
import codecs
import csv
import hashlib
import io
import logging
import os
import tempfile
import time
import uuid
from collections.abc import AsyncIterator, Callable, Iterator
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import IO, Any, Literal

import msgspec
from sqlalchemy import select, text, update
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from app import policy
from app.core import audit, db, i18n, jobs
from app.core.errors import (
    AppError,
    BadRequest,
    FieldError,
    Forbidden,
    NotFound,
    PayloadTooLarge,
    Unprocessable,
)
from app.core.storage import Storage, StorageNotFound
from app.dossiers import formats, ingest
from app.dossiers.models import Agency, DossierImport, DossierImportError
from app.settings import Settings

log = logging.getLogger("city.dossiers")

JOB = "import_dossier_file"
FORMATS = ("ndjson", "csv")
UNFINISHED = ("queued", "running")
OBJECT_PREFIX = "dossier-imports"
EXTENSIONS = {".ndjson": "ndjson", ".jsonl": "ndjson", ".csv": "csv"}
MEDIA_TYPES = {
    "application/x-ndjson": "ndjson",
    "application/ndjson": "ndjson",
    "application/jsonl": "ndjson",
    "application/x-jsonlines": "ndjson",
    "text/csv": "csv",
    "application/csv": "csv",
}
# types that say nothing about the content (a browser's guess): the file name decides
GENERIC_MEDIA_TYPES = ("", "application/octet-stream", "text/plain")
STORED_TYPES = {"ndjson": "application/x-ndjson", "csv": "text/csv"}
BLOCK_BYTES = 256 * 1024  # bytes per read from the store
MAX_RECORD_BYTES = 1 << 20  # a longer line is refused alone (import_line_too_long)
MAX_HEADER_BYTES = 64 * 1024
COPY_BLOCK = 1 << 20
BOM = b"\xef\xbb\xbf"
SPOOL_BYTES = 1 << 20  # an upload bigger than this is spooled to a temporary file


class UnsupportedFileType(AppError):
    """Neither NDJSON nor CSV (by the declared format, the name or the media type)."""

    status = 415
    code = "import_type_unsupported"


def job_id(import_id: uuid.UUID, lines_done: int, attempts: int = 0) -> str:
    """The job that takes the import on from ``lines_done`` after ``attempts`` runs
    without progress: the first job, its successors and the reconciler name the same point
    the same way (a double enqueue is one job); a run that crashed there is retried under
    another name (arq keeps a finished job's id for a while)."""
    return f"dossier-import:{import_id}:{lines_done}:{attempts}"


# ---------------------------------------------------------------- CSV columns


class _Column(msgspec.Struct, frozen=True):
    path: tuple[str, ...]  # the native field, e.g. ("dossier", "applicant", "name")
    kind: Literal["str", "int", "bool", "json", "kind", "online"]
    name: str  # as the file's header spells it


def _native_columns() -> dict[str, Literal["str", "int", "bool", "json"]]:
    """Every native field as a dotted column name → how a cell becomes its value, read
    from the ingest's own Struct (``formats.EventIn``), so the two never drift apart."""
    out: dict[str, Literal["str", "int", "bool", "json"]] = {}

    def leaf(t: msgspec.inspect.Type) -> msgspec.inspect.Type:
        while isinstance(t, msgspec.inspect.UnionType):
            rest = [x for x in t.types if not isinstance(x, msgspec.inspect.NoneType)]
            t = rest[0]
        return t

    def walk(struct: msgspec.inspect.StructType, prefix: str) -> None:
        for f in struct.fields:
            t = leaf(f.type)
            name = prefix + f.encode_name
            if isinstance(t, msgspec.inspect.StructType):
                walk(t, name + ".")
            elif isinstance(t, msgspec.inspect.IntType):
                out[name] = "int"
            elif isinstance(t, msgspec.inspect.BoolType):
                out[name] = "bool"
            elif isinstance(t, msgspec.inspect.ListType | msgspec.inspect.DictType):
                out[name] = "json"
            else:
                out[name] = "str"

    info = msgspec.inspect.type_info(formats.EventIn)
    assert isinstance(info, msgspec.inspect.StructType)
    walk(info, "")
    return out


NATIVE_COLUMNS = _native_columns()
# the national portal's names (DOMAIN.md) → the native field; a few need their values
# mapped: LoaiDoiTuong 1/2 → person/business, HinhThuc 1 → fully online
PORTAL_COLUMNS: dict[str, tuple[str, Literal["str", "kind", "online", "json"]]] = {
    "MaHoSo": ("dossier_code", "str"),
    "MaTTHC": ("dossier.procedure_code", "str"),
    "TenTTHC": ("dossier.procedure_name", "str"),
    "MaLinhVuc": ("dossier.field_code", "str"),
    "ChuHoSo": ("dossier.applicant.name", "str"),
    "LoaiDoiTuong": ("dossier.applicant.kind", "kind"),
    "SoDinhDanh": ("dossier.applicant.citizen_id", "str"),
    "SoDienThoai": ("dossier.applicant.phone", "str"),
    "Email": ("dossier.applicant.email", "str"),
    "TrichYeuHoSo": ("dossier.summary", "str"),
    "NgayTiepNhan": ("dossier.received_at", "str"),
    "NgayHenTra": ("dossier.due_at", "str"),
    "NgayTra": ("dossier.returned_at", "str"),
    "TrangThaiHoSo": ("status_code", "str"),
    "HinhThuc": ("dossier.online", "online"),
    "DonViXuLy": ("dossier.handling_unit", "str"),
    "ThongTinTra": ("dossier.result_pickup", "str"),
    "LyDoTuChoi": ("refused_reason", "str"),
    "NgayCapNhat": ("at", "str"),
    "NguoiXuLy": ("handler", "str"),
    "ThoiDiemXuLy": ("at", "str"),
    "NoiDungXuLy": ("content", "str"),
}
_BY_LOWER: dict[str, tuple[str, str]] = {
    **{name.lower(): (name, kind) for name, kind in NATIVE_COLUMNS.items()},
    **{alias.lower(): target for alias, target in PORTAL_COLUMNS.items()},
}
_TRUE = frozenset({"true", "1", "yes", "y", "x"})
_FALSE = frozenset({"false", "0", "no", "n"})


def csv_columns(header: list[str]) -> list[_Column]:
    """The header's columns, each mapped to its native field; raises a 422 naming the
    unknown or repeated columns, or the missing dossier code."""
    columns: list[_Column] = []
    unknown, seen, twice = [], set(), []
    for raw in header:
        name = raw.strip()
        target = _BY_LOWER.get(name.lower())
        if target is None:
            unknown.append(name or "''")
            continue
        dotted, kind = target
        if dotted in seen:
            twice.append(name)
        seen.add(dotted)
        columns.append(_Column(tuple(dotted.split(".")), kind, name))  # type: ignore[arg-type]
    if unknown:
        raise Unprocessable(
            "import_csv_columns_unknown",
            params={"columns": ", ".join(unknown[:20])},
            errors=[FieldError(field="file", message="unknown CSV columns", source="body")],
        )
    if twice:
        raise Unprocessable(
            "import_csv_columns_twice",
            params={"columns": ", ".join(twice[:20])},
            errors=[FieldError(field="file", message="a field named twice", source="body")],
        )
    if "dossier_code" not in seen:
        raise Unprocessable(
            "import_csv_no_code",
            errors=[
                FieldError(field="file", message="no dossier_code/MaHoSo column", source="body")
            ],
        )
    return columns


def _parse_header(data: bytes) -> list[str]:
    text = data.decode("utf-8").removeprefix("\ufeff")
    try:
        return next(csv.reader(io.StringIO(text, newline=""), strict=True))
    except (csv.Error, StopIteration):
        raise Unprocessable(
            "import_csv_header_unreadable",
            errors=[FieldError(field="file", message="the header row", source="body")],
        ) from None


def _problem(
    code: str, event_id: str | None = None, column: str | None = None
) -> formats.EventProblem:
    return formats.EventProblem(event_id, code, column)


def _cell(column: _Column, value: str) -> Any:
    """A cell's value as the native field wants it; ValueError if it cannot be."""
    if column.kind == "str":
        return value
    if column.kind == "int":
        return int(value)
    if column.kind == "json":
        return msgspec.json.decode(value)
    if column.kind == "kind":  # LoaiDoiTuong
        return {"1": "person", "2": "business"}.get(value, value)
    lowered = value.lower()
    if column.kind == "online":  # HinhThuc: 1 fully online, anything else not
        return lowered in _TRUE
    if lowered in _TRUE:
        return True
    if lowered in _FALSE:
        return False
    raise ValueError(value)


def row_to_event(columns: list[_Column], row: list[str]) -> dict[str, Any] | formats.EventProblem:
    """A CSV row → the native event object (or the problem of the cell that is not what
    its column wants)."""
    obj: dict[str, Any] = {}
    for column, raw in zip(columns, row, strict=True):
        value = raw.strip()
        if not value:
            continue
        try:
            converted = _cell(column, value)
        except (ValueError, msgspec.DecodeError):
            return _problem("event_field_invalid", None, column.name)
        target = obj
        for part in column.path[:-1]:
            target = target.setdefault(part, {})
        target[column.path[-1]] = converted
    dossier = obj.get("dossier")
    obj.setdefault("type", "dossier.upsert" if dossier else "dossier.progress")
    if "at" not in obj and isinstance(dossier, dict):
        at = dossier.get("returned_at") or dossier.get("received_at")
        if at:
            obj["at"] = at
    if "id" not in obj:
        obj["id"] = formats.portal_item_id(obj)
    return obj


def _column_of(columns: list[_Column], field_path: str | None) -> str | None:
    """The file's name for the field a problem names (its portal name if the file used
    that), by the longest matching prefix."""
    if not field_path:
        return field_path
    parts = tuple(field_path.split("."))
    best: _Column | None = None
    for column in columns:
        if parts[: len(column.path)] == column.path and (
            best is None or len(column.path) > len(best.path)
        ):
            best = column
    if best is None:
        return field_path
    rest = parts[len(best.path) :]
    return ".".join((best.name, *rest))


# ---------------------------------------------------------------- reading a stored file


@dataclass(slots=True)
class Record:
    line: int  # the physical line it starts on (1-based)
    lines: int  # physical lines it spans
    data: bytes  # without its newline
    terminated: bool  # False: the file's last bytes, with no newline after them
    too_long: bool = False


class RecordReader:
    """The records of a stored object from a byte offset, a block at a time: physical
    lines (NDJSON), or CSV records (a newline inside a quoted field continues the record:
    the quotes counted so far are odd). Holds at most a block and one record."""

    def __init__(
        self,
        storage: Storage,
        key: str,
        offset: int,
        line: int,
        *,
        csv_records: bool,
        block: int = BLOCK_BYTES,
        max_record: int = MAX_RECORD_BYTES,
    ) -> None:
        self.storage, self.key = storage, key
        self.offset = offset  # bytes consumed: every record handed out ends here
        self.line = line  # physical lines consumed
        self.csv_records = csv_records
        self.block, self.max_record = block, max_record
        self._buf = bytearray()
        self._pos = 0  # start of the unconsumed bytes in _buf
        self._eof = False
        self._at_start = offset == 0

    async def _fill(self) -> bool:
        if self._eof:
            return False
        if self._pos:
            del self._buf[: self._pos]
            self._pos = 0
        data = await self.storage.read_range(self.key, self.offset + len(self._buf), self.block)
        if not data:
            self._eof = True
            return False
        self._buf += data
        if self._at_start and len(self._buf) >= len(BOM):
            self._at_start = False
            if self._buf.startswith(BOM):
                del self._buf[: len(BOM)]
                self.offset += len(BOM)
        return True

    def _take(self, end: int, terminated: bool, too_long: bool = False) -> Record:
        """The record from the read position to ``end`` (its newline, if any, at ``end``)."""
        data = bytes(self._buf[self._pos : end])
        consumed = end - self._pos + (1 if terminated else 0)
        self._pos += consumed
        self.offset += consumed
        if data.endswith(b"\r"):
            data = data[:-1]
        lines = data.count(b"\n") + 1
        record = Record(self.line + 1, lines, b"" if too_long else data, terminated, too_long)
        self.line += lines
        return record

    async def next(self) -> Record | None:
        """The next record, or None at the end of the object."""
        scanned = 0  # bytes after the read position already searched (a fill compacts)
        quotes = 0
        while True:
            start = self._pos + scanned
            newline = self._buf.find(b"\n", start)
            if newline == -1:
                end = len(self._buf)
                if self.csv_records:
                    quotes += self._buf.count(b'"', start, end)
                scanned = end - self._pos
                if scanned > self.max_record:
                    return await self._skip_long()
                if not await self._fill():
                    if scanned == 0:
                        return None
                    return self._take(len(self._buf), terminated=False)
                continue
            if self.csv_records:
                quotes += self._buf.count(b'"', start, newline)
                if quotes % 2:  # inside a quoted field: the record goes on
                    scanned = newline + 1 - self._pos
                    continue
            return self._take(newline, terminated=True)

    async def _skip_long(self) -> Record:
        """A record longer than ``max_record``: dropped up to its next newline (counted
        lines stay right), refused alone by the caller."""
        start_line = self.line + 1
        lines = 0
        while True:
            newline = self._buf.find(b"\n", self._pos)
            if newline != -1:
                lines += self._buf.count(b"\n", self._pos, newline) + 1
                consumed = newline + 1 - self._pos
                self._pos = newline + 1
                self.offset += consumed
                self.line += lines
                return Record(start_line, lines, b"", True, too_long=True)
            lines += self._buf.count(b"\n", self._pos)
            self.offset += len(self._buf) - self._pos
            self._pos = len(self._buf)
            if not await self._fill():
                self.line += lines + 1
                return Record(start_line, lines + 1, b"", False, too_long=True)


# ---------------------------------------------------------------- lines → events


def _parse_ndjson(record: Record, id_key: str) -> formats.ParsedEvent | formats.EventProblem | None:
    data = record.data.strip()
    if record.too_long:
        return _problem("import_line_too_long")
    if not data:
        return None  # a blank line: nothing to apply, nothing to report
    try:
        return formats.parse_native(data, id_key=id_key)
    except formats.EventRefused as refused:
        if not record.terminated and refused.problem.code == "event_not_json":
            return _problem("import_line_truncated", refused.problem.id)
        return refused.problem


def _parse_csv(
    record: Record, columns: list[_Column], id_key: str
) -> formats.ParsedEvent | formats.EventProblem | None:
    if record.too_long:
        return _problem("import_line_too_long")
    try:
        text = record.data.decode("utf-8")
    except UnicodeDecodeError:
        return _problem(
            "import_line_truncated" if not record.terminated else "import_line_not_utf8"
        )
    if not text.strip():
        return None
    if not record.terminated and text.count('"') % 2:
        return _problem("import_line_truncated")  # cut inside a quoted field
    try:
        rows = list(csv.reader(io.StringIO(text, newline=""), strict=True))
    except csv.Error:
        return _problem("import_csv_row_malformed")
    if len(rows) != 1 or len(rows[0]) != len(columns):
        if not record.terminated:
            return _problem("import_line_truncated")
        return formats.EventProblem(
            None,
            "import_csv_row_columns",
            None,
            {"expected": len(columns), "found": len(rows[0]) if rows else 0},
        )
    obj = row_to_event(columns, rows[0])
    if isinstance(obj, formats.EventProblem):
        return obj
    try:
        return formats.parse_native(obj, id_key=id_key)
    except formats.EventRefused as refused:
        problem = refused.problem
        if not record.terminated:
            return _problem("import_line_truncated", problem.id)
        return formats.EventProblem(
            problem.id, problem.code, _column_of(columns, problem.field), problem.params
        )


def parse_records(
    records: list[Record], columns: list[_Column] | None, id_key: str
) -> list[tuple[int, formats.ParsedEvent | formats.EventProblem]]:
    """Each record's line number and its event or problem (blank lines left out)."""
    out: list[tuple[int, formats.ParsedEvent | formats.EventProblem]] = []
    for record in records:
        if columns is None:
            parsed = _parse_ndjson(record, id_key)
        else:
            parsed = _parse_csv(record, columns, id_key)
        if parsed is not None:
            out.append((record.line, parsed))
    return out


# ---------------------------------------------------------------- the upload


@dataclass(slots=True)
class Checked:
    size: int
    sha256: bytes
    columns: list[_Column] | None  # CSV: the header's columns


def file_format(declared: str | None, file_name: str | None, media_type: str | None) -> str:
    """ndjson or csv: as declared, else by the file's extension, else by its media type;
    anything else is a 415."""
    if declared:
        if declared not in FORMATS:
            raise _unsupported()
        return declared
    extension = os.path.splitext(file_name or "")[1].lower()
    if extension in EXTENSIONS:
        return EXTENSIONS[extension]
    media = (media_type or "").split(";")[0].strip().lower()
    if media in MEDIA_TYPES:
        return MEDIA_TYPES[media]
    raise _unsupported()


def _unsupported() -> UnsupportedFileType:
    return UnsupportedFileType(
        errors=[
            FieldError(
                field="file", message="NDJSON (.ndjson, .jsonl) or CSV (.csv)", source="body"
            )
        ],
    )


def check_file(source: IO[bytes], fmt: str, max_bytes: int) -> Checked:
    """Read the upload once, a block at a time: its size (over ``max_bytes``: 413), its
    SHA-256, UTF-8 throughout (a sequence cut by the file's end is left to the last
    line's check), something in it; CSV: a header of known columns; NDJSON: the first
    line an object. Rewinds the file."""
    source.seek(0)
    digest = hashlib.sha256()
    decoder = codecs.getincrementaldecoder("utf-8")("strict")
    size = newlines = 0
    head = bytearray()
    blank = True
    while block := source.read(COPY_BLOCK):
        size += len(block)
        if size > max_bytes:
            raise _too_large(max_bytes)
        digest.update(block)
        try:
            decoder.decode(block)
        except UnicodeDecodeError as exc:
            line = newlines + exc.object[: exc.start].count(b"\n") + 1
            raise Unprocessable(
                "import_not_utf8",
                params={"line": line},
                errors=[
                    FieldError(field="file", message=f"not UTF-8 (line {line})", source="body")
                ],
            ) from None
        newlines += block.count(b"\n")
        if len(head) < MAX_HEADER_BYTES:
            head += block[: MAX_HEADER_BYTES - len(head)]
        if blank and block.replace(BOM, b"").strip():
            blank = False
    source.seek(0)
    if blank:
        raise Unprocessable(
            "import_empty", errors=[FieldError(field="file", message="empty", source="body")]
        )
    columns = None
    body = bytes(head).removeprefix(BOM)
    if fmt == "csv":
        end = _record_end(body)
        if end is None and len(head) >= MAX_HEADER_BYTES:
            raise Unprocessable(
                "import_csv_header_unreadable",
                errors=[FieldError(field="file", message="the header row", source="body")],
            )
        columns = csv_columns(_parse_header(body[:end] if end is not None else body))
    elif not body.lstrip().startswith(b"{"):
        raise Unprocessable(
            "import_ndjson_not_objects",
            errors=[FieldError(field="file", message="line 1 is not a JSON object", source="body")],
        )
    return Checked(size, digest.digest(), columns)


def _record_end(data: bytes) -> int | None:
    """Where the first CSV record of ``data`` ends (its newline), or None."""
    start = quotes = 0
    while (newline := data.find(b"\n", start)) != -1:
        quotes += data.count(b'"', start, newline)
        if quotes % 2 == 0:
            return newline
        start = newline + 1
    return None


def _clean_name(name: str | None) -> str | None:
    """The file's own name (no folders, no control characters), for the lists."""
    if not name:
        return None
    base = name.replace("\\", "/").rsplit("/", 1)[-1]
    base = "".join(ch for ch in base if ch.isprintable())[:200].strip()
    return base or None


@dataclass(slots=True)
class Upload:
    """A file as the edge received it: a binary file at its start (spooled to disk when
    large), its name and media type as given, and the format if the sender named it."""

    source: IO[bytes]
    file_name: str | None = None
    media_type: str | None = None
    declared_format: str | None = None


def spooled() -> tempfile.SpooledTemporaryFile[bytes]:
    """Where an edge writes an upload as it arrives (memory up to 1 MiB, then disk)."""
    return tempfile.SpooledTemporaryFile(max_size=SPOOL_BYTES, mode="w+b")


class AgencyRef(msgspec.Struct, frozen=True):
    """The agency an import is for (plain values: they outlive the session's state)."""

    id: uuid.UUID
    code: str
    unit_id: uuid.UUID
    name_vi: str = ""
    name_en: str = ""

    def name(self, lang: str) -> str:
        return self.name_en if lang == "en" else self.name_vi


async def agencies_for(session: AsyncSession, actor: policy.Actor) -> list[AgencyRef]:
    """The active agencies the actor may import for (the upload form's choices)."""
    query = (
        select(Agency.id, Agency.code, Agency.unit_id, Agency.name_vi, Agency.name_en)
        .where(Agency.active)
        .order_by(Agency.code)
    )
    scope = policy.dossier_import_scope(actor)
    if scope is not None:
        if not scope:
            return []
        query = query.where(Agency.unit_id.in_(scope))
    return [AgencyRef(*row) for row in (await session.execute(query)).all()]


async def agency_for_import(
    session: AsyncSession, actor: policy.Actor, agency_code: str
) -> AgencyRef:
    """The agency a file is for, if the actor may import for it (asked before the body
    is read: a refused upload stores nothing)."""
    agency = await session.scalar(select(Agency).where(Agency.code == agency_code))
    if agency is None:
        raise NotFound(
            "import_agency_unknown",
            errors=[FieldError(field="agency", message="no agency with this code")],
        )
    if not policy.may_import_for_agency(actor, agency.unit_id):
        raise Forbidden("import_not_your_agency")
    if not agency.active:
        raise Unprocessable(
            "import_agency_inactive",
            errors=[FieldError(field="agency", message="the agency is not active")],
        )
    return AgencyRef(agency.id, agency.code, agency.unit_id, agency.name_vi, agency.name_en)


async def receive(
    chunks: AsyncIterator[bytes], max_bytes: int, declared_length: int | None = None
) -> tempfile.SpooledTemporaryFile[bytes]:
    """A body as it arrives, into a spooled file (memory up to 1 MiB, then disk), refused
    with a 413 as soon as it is over ``max_bytes`` (or says it will be)."""
    if declared_length is not None and declared_length > max_bytes:
        raise _too_large(max_bytes)
    target = spooled()
    size = 0
    try:
        async for chunk in chunks:
            size += len(chunk)
            if size > max_bytes:
                raise _too_large(max_bytes)
            target.write(chunk)
    except BaseException:
        target.close()
        raise
    target.seek(0)
    return target


def _too_large(max_bytes: int) -> PayloadTooLarge:
    return PayloadTooLarge(
        "import_too_large",
        params={"max_bytes": max_bytes},
        errors=[FieldError(field="file", message=f"over {max_bytes} bytes", source="body")],
    )


async def create_import(
    session: AsyncSession,
    settings: Settings,
    storage: Storage,
    actor: policy.Actor,
    agency: AgencyRef,
    upload: Upload,
    now: datetime,
) -> ImportOut:
    """Check the file, store it, write the import's row and enqueue its job (after the
    commit). Whatever is refused, nothing is stored and no row is written; a rollback
    after the object was stored deletes it."""
    if not policy.may_import_for_agency(actor, agency.unit_id):
        raise Forbidden("import_not_your_agency")
    fmt = file_format(upload.declared_format, upload.file_name, upload.media_type)
    checked = await asyncio.to_thread(
        check_file, upload.source, fmt, settings.dossier_import_max_bytes
    )
    import_id = uuid.uuid4()
    key = f"{OBJECT_PREFIX}/{now:%Y/%m}/{import_id}.{fmt}"
    await storage.put_file(key, upload.source, checked.size, STORED_TYPES[fmt])
    row = DossierImport(
        id=import_id,
        agency_id=agency.id,
        created_by=actor.user_id if actor.is_staff else None,
        file_format=fmt,
        object_key=key,
        size_bytes=checked.size,
        sha256=checked.sha256,
        status="queued",
        created_at=now,
        progressed_at=now,
        file_name=_clean_name(upload.file_name),
    )
    session.add(row)
    await session.flush()
    await audit.record(
        session,
        actor_id=actor.user_id,
        actor_kind="staff" if actor.is_staff else "system",
        action="dossier_import.created",
        object_type="dossier_import",
        object_id=str(import_id),
        ip=actor.ip,
        details={"agency": agency.code, "format": fmt, "size_bytes": checked.size},
    )
    jobs.enqueue(JOB, str(import_id), job_id=job_id(import_id, 0))
    return _out(row, agency.code)


# ---------------------------------------------------------------- the run


@dataclass(slots=True)
class _RunState:
    """What one run keeps between its chunks: the reader (positioned where the last
    committed chunk ended) and the CSV header's columns."""

    reader: RecordReader | None = None
    columns: list[_Column] | None = None
    lines_done: int = 0
    eof: bool = False


class _AgencyRef(msgspec.Struct, frozen=True):
    id: uuid.UUID  # what ingest.apply_events reads of the agency


class RunResult(msgspec.Struct):
    import_id: str
    status: str  # done | failed | running (handed to the next job) | busy | missing
    chunks: int
    lines_done: int


async def _read_header(storage: Storage, key: str) -> tuple[list[_Column], int, int]:
    """The CSV header's columns, and the offset and line count after it."""
    reader = RecordReader(storage, key, 0, 0, csv_records=True, max_record=MAX_HEADER_BYTES)
    record = await reader.next()
    if record is None or record.too_long:
        raise Unprocessable("import_csv_header_unreadable")
    return csv_columns(_parse_header(record.data)), reader.offset, reader.line


def _counts(
    parsed: list[tuple[int, formats.ParsedEvent | formats.EventProblem]],
    results: list[ingest.EventResult],
    import_id: uuid.UUID,
) -> tuple[int, int, int, list[dict[str, Any]]]:
    accepted = duplicates = refused = 0
    errors: list[dict[str, Any]] = []
    for (line, _), result in zip(parsed, results, strict=True):
        outcome = result.result
        if outcome == "duplicate":
            duplicates += 1
        elif outcome == "refused":
            refused += 1
            errors.append(
                {
                    "import_id": import_id,
                    "line": line,
                    "code": (result.code or "import_line_refused")[:60],
                    "detail": _detail(result),
                    "params": result.params or None,
                }
            )
        else:  # applied | recorded: the event is in the dossier's timeline
            accepted += 1
    return accepted, duplicates, refused, errors


def _detail(result: ingest.EventResult) -> str | None:
    """What names the fault without quoting the value: a field, or the file's column."""
    return result.field[:200] if result.field else None


async def _step(
    session: AsyncSession,
    storage: Storage,
    settings: Settings,
    now: datetime,
    import_id: uuid.UUID,
    state: _RunState,
) -> str:
    """One chunk in the caller's transaction: "more", or how the run ends."""
    row = await session.scalar(
        select(DossierImport).where(DossierImport.id == import_id).with_for_update(skip_locked=True)
    )
    if row is None:  # another run holds it (it goes on), or no such import
        held = await session.scalar(
            select(DossierImport.status).where(DossierImport.id == import_id)
        )
        return "busy" if held is not None else "missing"
    if row.status not in UNFINISHED:
        return row.status
    if row.status == "queued":
        row.status, row.started_at = "running", now
    try:
        if row.file_format == "csv" and state.columns is None:
            state.columns, header_end, header_lines = await _read_header(storage, row.object_key)
            if row.bytes_done == 0:
                row.bytes_done, row.lines_done = header_end, header_lines
        reader = state.reader
        if reader is None or reader.offset != row.bytes_done or reader.line != row.lines_done:
            reader = state.reader = RecordReader(
                storage,
                row.object_key,
                row.bytes_done,
                row.lines_done,
                csv_records=row.file_format == "csv",
            )
        records: list[Record] = []
        while len(records) < settings.dossier_import_chunk_lines:
            record = await reader.next()
            if record is None:
                state.eof = True
                break
            records.append(record)
    except StorageNotFound:
        return _fail(row, now, "import_file_missing")
    except Unprocessable as exc:  # a header the upload's check would have refused
        return _fail(row, now, exc.code)
    parsed = await asyncio.to_thread(
        parse_records, records, state.columns, settings.citizen_id_hash_key
    )
    agency = _AgencyRef(row.agency_id)
    events = [p for _, p in parsed]
    results = await ingest.apply_events(session, agency, events, now) if events else []
    accepted, duplicates, refused, errors = _counts(parsed, results, row.id)
    if errors:
        await session.execute(insert(DossierImportError).values(errors).on_conflict_do_nothing())
    row.bytes_done, row.lines_done = reader.offset, reader.line
    row.attempts = 0  # progress: the runs that crashed before it no longer count
    row.accepted += accepted
    row.duplicates += duplicates
    row.refused += refused
    row.progressed_at = now
    state.lines_done = row.lines_done
    if state.eof:
        row.status, row.finished_at = "done", now
        return "done"
    return "more"


# ---------------------------------------------------------------- stored files purged

PURGE_BATCH = 500  # rows marked (and their files deleted) per transaction
ORPHAN_MIN_AGE = timedelta(days=1)  # an upload's file is younger until its row commits

_EXPIRED_FILES = text(
    """
    UPDATE dossier_imports SET file_purged_at = :now
     WHERE id IN (SELECT id FROM dossier_imports
                   WHERE status IN ('done', 'failed') AND file_purged_at IS NULL
                     AND finished_at < :cutoff
                   ORDER BY finished_at LIMIT :limit FOR UPDATE SKIP LOCKED)
    RETURNING object_key
    """
)


async def purge_finished_files(
    session: AsyncSession,
    storage: Storage,
    now: datetime,
    retention_days: int,
    limit: int = PURGE_BATCH,
) -> int:
    """Up to ``limit`` imports finished more than ``retention_days`` ago: their stored
    files deleted and ``file_purged_at`` set (the partial index of files kept finds them).
    The rows are marked in the caller's transaction and the objects deleted before it
    commits: a failure leaves the rows unmarked for the next run (deleting a missing
    object again is harmless). Returns how many."""
    keys = list(
        await session.scalars(
            _EXPIRED_FILES,
            {"now": now, "cutoff": now - timedelta(days=retention_days), "limit": limit},
        )
    )
    if keys:
        await storage.delete_many(keys)
    return len(keys)


async def delete_orphaned_files(
    session: AsyncSession, storage: Storage, now: datetime, min_age: timedelta = ORPHAN_MIN_AGE
) -> int:
    """Delete stored import files that no ``dossier_imports`` row names, written more than
    ``min_age`` ago: one look-up (the unique index on ``object_key``) per page of keys.
    Returns how many were deleted."""
    deleted = 0
    async for keys in storage.iter_older_than(OBJECT_PREFIX + "/", now - min_age):
        named = set(
            await session.scalars(
                select(DossierImport.object_key).where(DossierImport.object_key.in_(keys))
            )
        )
        orphans = [key for key in keys if key not in named]
        if orphans:
            await storage.delete_many(orphans)
            deleted += len(orphans)
    return deleted


def _fail(row: DossierImport, now: datetime, code: str) -> str:
    row.status, row.failure, row.finished_at, row.progressed_at = "failed", code, now, now
    log.warning(
        "dossier_import_failed",
        extra={
            "import_id": str(row.id),
            "reason": code,
            "attempts": row.attempts,
            "last_error": row.last_error,
        },
    )
    return "failed"


async def _begin(
    session: AsyncSession, now: datetime, import_id: uuid.UUID, max_attempts: int
) -> tuple[str, int, int]:
    """Count a run as an attempt (its own transaction, committed before the work), or
    end the import when the attempts without progress are used up. Returns "go" (or how
    the run ends: busy, missing, done, failed), the lines done and the attempts so far."""
    row = await session.scalar(
        select(DossierImport).where(DossierImport.id == import_id).with_for_update(skip_locked=True)
    )
    if row is None:
        held = await session.scalar(
            select(DossierImport.status).where(DossierImport.id == import_id)
        )
        return ("busy" if held is not None else "missing"), 0, 0
    if row.status not in UNFINISHED:
        return row.status, row.lines_done, row.attempts
    if row.attempts >= max_attempts:
        return _fail(row, now, "import_attempts_exhausted"), row.lines_done, row.attempts
    row.attempts += 1
    return "go", row.lines_done, row.attempts


async def _record_crash(
    sessionmaker: async_sessionmaker[AsyncSession],
    redis: jobs.Redis | None,
    import_id: uuid.UUID,
    error: BaseException,
) -> None:
    """The crashed run's exception type on the row (its own transaction: the run's
    rolled back). Never raises: the run's own exception is what the caller re-raises."""
    try:
        async with db.transaction(sessionmaker, redis) as session:
            await session.execute(
                update(DossierImport)
                .where(DossierImport.id == import_id)
                .values(last_error=type(error).__name__[:200])
            )
    except Exception:
        log.exception("dossier_import_crash_not_recorded", extra={"import_id": str(import_id)})


async def run_import(
    sessionmaker: async_sessionmaker[AsyncSession],
    redis: jobs.Redis | None,
    storage: Storage,
    settings: Settings,
    now: Callable[[], datetime],
    import_id: uuid.UUID,
    *,
    budget_seconds: float | None = None,
) -> RunResult:
    """Apply the import from where it stands, a chunk per transaction, until the file
    ends or ``budget_seconds`` have passed; then the rest goes to the next job (enqueued
    after a commit, named by the progress). ``budget_seconds=None``: to the end (the CLI).
    Counts itself as an attempt first; see "Bounded attempts" in the module's docstring."""
    async with db.transaction(sessionmaker, redis) as session:
        begun, lines_done, _ = await _begin(
            session, now(), import_id, settings.dossier_import_max_attempts
        )
    if begun != "go":
        return RunResult(str(import_id), begun, 0, lines_done)
    try:
        return await _run(sessionmaker, redis, storage, settings, now, import_id, budget_seconds)
    except Exception as exc:
        await _record_crash(sessionmaker, redis, import_id, exc)
        raise


async def _run(
    sessionmaker: async_sessionmaker[AsyncSession],
    redis: jobs.Redis | None,
    storage: Storage,
    settings: Settings,
    now: Callable[[], datetime],
    import_id: uuid.UUID,
    budget_seconds: float | None,
) -> RunResult:
    started = time.monotonic()
    state = _RunState()
    chunks = 0
    while True:
        if budget_seconds is not None and chunks and time.monotonic() - started >= budget_seconds:
            async with db.transaction(sessionmaker, redis):
                jobs.enqueue(JOB, str(import_id), job_id=job_id(import_id, state.lines_done))
            return RunResult(str(import_id), "running", chunks, state.lines_done)
        async with db.transaction(sessionmaker, redis) as session:
            outcome = await _step(session, storage, settings, now(), import_id, state)
        chunks += 1
        if outcome != "more":
            return RunResult(str(import_id), outcome, chunks, state.lines_done)


async def reconcile(session: AsyncSession, now: datetime, after_seconds: int) -> int:
    """Enqueue a job for every unfinished import whose last chunk committed more than
    ``after_seconds`` ago (its job was lost with Redis, or its worker died, or its run
    crashed): named by its progress and attempts, so one that is still queued is not
    queued twice. A failed import (attempts used up) is not unfinished. Returns how many."""
    rows = (
        await session.execute(
            select(DossierImport.id, DossierImport.lines_done, DossierImport.attempts).where(
                DossierImport.status.in_(UNFINISHED),
                DossierImport.progressed_at < now - timedelta(seconds=after_seconds),
            )
        )
    ).all()
    for import_id, lines_done, attempts in rows:
        jobs.enqueue(JOB, str(import_id), job_id=job_id(import_id, lines_done, attempts))
    return len(rows)


# ---------------------------------------------------------------- views


class ImportOut(msgspec.Struct):
    """An import as the console lists it."""

    id: uuid.UUID
    agency_code: str
    file_name: str | None
    file_format: str
    size_bytes: int
    status: str  # queued | running | done | failed
    bytes_done: int
    lines_done: int
    accepted: int
    duplicates: int
    refused: int
    failure: str | None
    created_at: datetime
    started_at: datetime | None
    finished_at: datetime | None
    duration_seconds: float | None  # from its first chunk to its end (or now, if running)
    # runs started since the last committed chunk, and the exception type of the last
    # one that crashed (DOSSIER_IMPORT_MAX_ATTEMPTS: then failed, import_attempts_exhausted)
    attempts: int = 0
    last_error: str | None = None
    # when the stored file was deleted (DOSSIER_IMPORT_FILE_RETENTION_DAYS after the end)
    file_purged_at: datetime | None = None


class ImportPage(msgspec.Struct):
    items: list[ImportOut]
    next_cursor: str | None = None


class LineError(msgspec.Struct):
    line: int
    code: str
    message: str  # the code's text in the reader's language
    field: str | None = None


class ImportDetail(msgspec.Struct):
    """An import with a page of its refused lines (by line number)."""

    item: ImportOut
    errors: list[LineError]
    next_after_line: int | None = None


def _out(row: DossierImport, agency_code: str, now: datetime | None = None) -> ImportOut:
    end = row.finished_at or (now if row.status == "running" else None)
    duration = (end - row.started_at).total_seconds() if end and row.started_at else None
    return ImportOut(
        id=row.id,
        agency_code=agency_code,
        file_name=row.file_name,
        file_format=row.file_format,
        size_bytes=row.size_bytes,
        status=row.status,
        bytes_done=row.bytes_done,
        lines_done=row.lines_done,
        accepted=row.accepted,
        duplicates=row.duplicates,
        refused=row.refused,
        failure=row.failure,
        created_at=row.created_at,
        started_at=row.started_at,
        finished_at=row.finished_at,
        duration_seconds=duration,
        attempts=row.attempts,
        last_error=row.last_error,
        file_purged_at=row.file_purged_at,
    )


def _encode_cursor(created_at: datetime, import_id: uuid.UUID) -> str:
    raw = f"{created_at.isoformat()}|{import_id}".encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def _decode_cursor(cursor: str) -> tuple[datetime, uuid.UUID]:
    try:
        raw = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)).decode()
        stamp, _, rid = raw.partition("|")
        return datetime.fromisoformat(stamp), uuid.UUID(rid)
    except (ValueError, UnicodeDecodeError) as exc:
        raise BadRequest(
            "cursor_invalid",
            errors=[FieldError(field="cursor", message="malformed", source="query")],
        ) from exc


async def list_imports(
    session: AsyncSession,
    actor: policy.Actor,
    now: datetime,
    *,
    agency_code: str | None = None,
    cursor: str | None = None,
    limit: int = 50,
) -> ImportPage:
    """The imports of the agencies the actor may import for (admins: all), newest first."""
    query = (
        select(DossierImport, Agency.code)
        .join(Agency, Agency.id == DossierImport.agency_id)
        .order_by(DossierImport.created_at.desc(), DossierImport.id.desc())
        .limit(limit + 1)
    )
    scope = policy.dossier_import_scope(actor)
    if scope is not None:
        query = query.where(Agency.unit_id.in_(scope))
    if agency_code:
        query = query.where(Agency.code == agency_code)
    if cursor:
        at, last = _decode_cursor(cursor)
        query = query.where(
            (DossierImport.created_at < at)
            | ((DossierImport.created_at == at) & (DossierImport.id < last))
        )
    rows = (await session.execute(query)).all()
    items = [_out(row, code, now) for row, code in rows[:limit]]
    next_cursor = None
    if len(rows) > limit:
        last_row = rows[limit - 1][0]
        next_cursor = _encode_cursor(last_row.created_at, last_row.id)
    return ImportPage(items=items, next_cursor=next_cursor)


def line_message(code: str, field: str | None, params: dict[str, Any] | None, locale: str) -> str:
    """A refused line's reason in the reader's language (the catalogue's text of its
    code, naming the field or column)."""
    values = {"field": field or "—", **(params or {})}
    return i18n.translate(code, locale, values, fallback="import_line_refused")


async def import_detail(
    session: AsyncSession,
    actor: policy.Actor,
    import_id: uuid.UUID,
    now: datetime,
    *,
    locale: str = "vi",
    after_line: int = 0,
    limit: int = 100,
) -> ImportDetail:
    found = (
        await session.execute(
            select(DossierImport, Agency.code, Agency.unit_id)
            .join(Agency, Agency.id == DossierImport.agency_id)
            .where(DossierImport.id == import_id)
        )
    ).first()
    if found is None:
        raise NotFound("import_not_found")
    row, code, unit_id = found
    if not policy.may_import_for_agency(actor, unit_id):
        raise Forbidden("import_not_yours")
    lines = (
        await session.execute(
            select(
                DossierImportError.line,
                DossierImportError.code,
                DossierImportError.detail,
                DossierImportError.params,
            )
            .where(DossierImportError.import_id == import_id, DossierImportError.line > after_line)
            .order_by(DossierImportError.line)
            .limit(limit + 1)
        )
    ).all()
    errors = [
        LineError(line=n, code=c, message=line_message(c, d, p, locale), field=d)
        for n, c, d, p in lines[:limit]
    ]
    return ImportDetail(
        item=_out(row, code, now),
        errors=errors,
        next_after_line=errors[-1].line if len(lines) > limit else None,
    )


def iter_error_lines(detail: ImportDetail) -> Iterator[str]:
    """The refused lines as the CLI prints them."""
    for error in detail.errors:
        where = f" ({error.field})" if error.field else ""
        yield f"line {error.line}: {error.code}{where}"


__all__ = [
    "FORMATS",
    "JOB",
    "AgencyRef",
    "Checked",
    "ImportDetail",
    "ImportOut",
    "ImportPage",
    "LineError",
    "Record",
    "RecordReader",
    "RunResult",
    "Upload",
    "agencies_for",
    "agency_for_import",
    "check_file",
    "create_import",
    "csv_columns",
    "file_format",
    "import_detail",
    "iter_error_lines",
    "job_id",
    "line_message",
    "list_imports",
    "parse_records",
    "receive",
    "reconcile",
    "row_to_event",
    "run_import",
    "spooled",
]
