"""The pieces under the dossier file import (issue 19 item 2), on both storage backends
(local disk, and S3 through the real minio client against moto's server): a file stored
from a stream and read back a range at a time, removed when its transaction rolls back;
the reader's records (NDJSON lines, CSV records with quoted line breaks, a BOM, CRLF, a
cut last line, an over-long line) whatever the block size, resumable from any record's
end; the upload's checks; the catalogue has every text the pages use."""

from __future__ import annotations

import io
import re
import uuid
from pathlib import Path

import pytest

from app.core import db, i18n
from app.core.errors import PayloadTooLarge, Unprocessable
from app.core.storage import Storage, StorageNotFound
from app.dossiers import imports
from tests.core.test_storage import s3_endpoint, storage  # noqa: F401 (fixtures)

ROOT = Path(__file__).resolve().parents[2]


def key() -> str:
    return f"dossier-imports/2026/12/{uuid.uuid4()}.ndjson"


async def records(
    store: Storage,
    k: str,
    *,
    csv: bool,
    block: int,
    offset: int = 0,
    line: int = 0,
    max_record: int = 1 << 20,
) -> list[imports.Record]:
    reader = imports.RecordReader(
        store, k, offset, line, csv_records=csv, block=block, max_record=max_record
    )
    out = []
    while (record := await reader.next()) is not None:
        out.append(record)
    return out


async def test_a_file_stored_from_a_stream_reads_back_by_ranges(storage: Storage) -> None:  # noqa: F811
    data = bytes(range(256)) * 5000  # 1.28 MB: S3 parts, several reads
    k = key()
    await storage.put_file(k, io.BytesIO(data), len(data), "application/x-ndjson")
    assert await storage.read_range(k, 0, 10) == data[:10]
    assert await storage.read_range(k, 1_000_000, 70_000) == data[1_000_000:1_070_000]
    assert await storage.read_range(k, len(data) - 5, 100) == data[-5:]  # short at the end
    assert await storage.read_range(k, len(data), 100) == b""  # past it
    with pytest.raises(StorageNotFound):
        await storage.read_range(key(), 0, 10)
    await storage.delete(k)


async def test_a_stored_file_goes_when_its_transaction_rolls_back(app, storage: Storage) -> None:  # noqa: F811
    k = key()
    with pytest.raises(RuntimeError, match="boom"):
        async with db.transaction(app.state.sessionmaker, None):
            await storage.put_file(k, io.BytesIO(b"{}\n"), 3, "application/x-ndjson")
            assert await storage.read_range(k, 0, 3) == b"{}\n"
            raise RuntimeError("boom")
    with pytest.raises(StorageNotFound):
        await storage.read_range(k, 0, 3)


NDJSON = (
    b"\xef\xbb\xbf"  # a BOM, not part of the first line
    + b'{"id": "a"}\r\n'  # CRLF
    + b"\n"  # blank
    + b'{"id": "b", "text": "\xc3\xa1\xc3\xa0"}\n'
    + b'{"id": "c", "cut'  # no newline: the file's last bytes
)


@pytest.mark.parametrize("block", [1, 3, 7, 64, 1 << 18])
async def test_ndjson_lines_whatever_the_block_size(storage: Storage, block: int) -> None:  # noqa: F811
    k = key()
    await storage.put_file(k, io.BytesIO(NDJSON), len(NDJSON), "application/x-ndjson")
    got = await records(storage, k, csv=False, block=block)
    assert [(r.line, r.data, r.terminated) for r in got] == [
        (1, b'{"id": "a"}', True),
        (2, b"", True),
        (3, '{"id": "b", "text": "áà"}'.encode(), True),
        (4, b'{"id": "c", "cut', False),
    ]
    # resumed after any record, the rest is the same
    reader = imports.RecordReader(storage, k, 0, 0, csv_records=False, block=block)
    first = await reader.next()
    assert first is not None and first.line == 1
    rest = await records(storage, k, csv=False, block=block, offset=reader.offset, line=reader.line)
    assert [(r.line, r.data) for r in rest] == [(r.line, r.data) for r in got[1:]]


CSV = (
    b"id,dossier.summary,dossier_code\r\n"
    b'e1,"two\r\nlines, and ""quotes""",A-1\r\n'
    b"e2,plain,A-2\n"
    b'e3,"three\n\nlines",A-3\r\n'
    b'e4,"cut in a quoted fie'
)


@pytest.mark.parametrize("block", [1, 5, 16, 1 << 18])
async def test_csv_records_span_lines_inside_quotes(storage: Storage, block: int) -> None:  # noqa: F811
    k = key()
    await storage.put_file(k, io.BytesIO(CSV), len(CSV), "text/csv")
    got = await records(storage, k, csv=True, block=block)
    assert [(r.line, r.lines, r.terminated) for r in got] == [
        (1, 1, True),
        (2, 2, True),
        (4, 1, True),
        (5, 3, True),
        (8, 1, False),
    ]
    columns = imports.csv_columns(["id", "dossier.summary", "dossier_code"])
    parsed = imports.parse_records(got[1:], columns, "k" * 32)
    codes = [getattr(p, "code", None) for _, p in parsed]
    # the rows are whole (the ingest then refuses them for what they lack, not for CSV)
    assert codes[:3] == ["event_field_missing"] * 3
    assert codes[3] == "import_line_truncated"


async def test_an_overlong_line_is_skipped_alone(storage: Storage) -> None:  # noqa: F811
    data = b'{"id": "a"}\n' + b"x" * 300 + b"\n" + b'{"id": "b"}\n' + b"y" * 300
    k = key()
    await storage.put_file(k, io.BytesIO(data), len(data), "application/x-ndjson")
    got = await records(storage, k, csv=False, block=32, max_record=100)
    assert [(r.line, r.too_long, r.data) for r in got] == [
        (1, False, b'{"id": "a"}'),
        (2, True, b""),
        (3, False, b'{"id": "b"}'),
        (4, True, b""),
    ]
    parsed = imports.parse_records(got, None, "k" * 32)
    codes = {line: getattr(p, "code", None) for line, p in parsed}
    assert codes == {
        1: "event_field_missing",
        2: "import_line_too_long",
        3: "event_field_missing",
        4: "import_line_too_long",
    }


def test_the_uploads_checks() -> None:
    ok = imports.check_file(io.BytesIO(b'\xef\xbb\xbf{"id": 1}\n'), "ndjson", 100)
    assert ok.size == 13 and len(ok.sha256) == 32 and ok.columns is None
    with pytest.raises(PayloadTooLarge) as too_large:
        imports.check_file(io.BytesIO(b"{}" * 60), "ndjson", 100)
    assert too_large.value.code == "import_too_large"
    with pytest.raises(Unprocessable) as latin:
        imports.check_file(io.BytesIO(b'{"a": 1}\n{"a": 2}\n{"b": "\xe9"}\n'), "ndjson", 1000)
    assert latin.value.code == "import_not_utf8" and latin.value.params == {"line": 3}
    # a multi-byte character cut by the end of the file is the last line's problem
    cut = imports.check_file(io.BytesIO('{"a": 1}\n{"b": "á'.encode()[:-1]), "ndjson", 1000)
    assert cut.size == 17
    header = imports.check_file(
        io.BytesIO(b"MaHoSo,ChuHoSo,dossier.online\r\nA,B,1\r\n"), "csv", 1000
    )
    assert [c.name for c in header.columns or []] == ["MaHoSo", "ChuHoSo", "dossier.online"]
    with pytest.raises(Unprocessable) as no_code:
        imports.check_file(io.BytesIO(b"ChuHoSo\r\nB\r\n"), "csv", 1000)
    assert no_code.value.code == "import_csv_no_code"
    assert imports.file_format(None, "a.JSONL", None) == "ndjson"
    assert imports.file_format(None, None, "text/csv; charset=utf-8") == "csv"
    assert imports.file_format("csv", "a.ndjson", None) == "csv"


def test_csv_rows_become_native_events() -> None:
    columns = imports.csv_columns(
        ["MaHoSo", "LoaiDoiTuong", "HinhThuc", "NgayTiepNhan", "seq", "dossier.fees", "TenTTHC"]
    )
    event = imports.row_to_event(
        columns, ["A-1", "2", "1", "20261125100000", "3", '[{"name": "Phí", "amount": 5}]', "X"]
    )
    assert isinstance(event, dict)
    assert event["dossier_code"] == "A-1" and event["seq"] == 3
    assert event["type"] == "dossier.upsert" and event["at"] == "20261125100000"
    assert event["dossier"]["applicant"] == {"kind": "business"}
    assert event["dossier"]["online"] is True and event["dossier"]["fees"][0]["amount"] == 5
    assert event["id"].startswith("sha256:")
    # the same row, the same id; another row, another
    assert (
        imports.row_to_event(columns, ["A-1", "2", "1", "20261125100000", "3", "", "X"])["id"]
        != event["id"]
    )
    bad = imports.row_to_event(columns, ["A-1", "", "", "", "three", "", ""])
    assert not isinstance(bad, dict) and (bad.code, bad.field) == ("event_field_invalid", "seq")


def test_every_text_the_import_pages_use_is_in_the_catalogue() -> None:
    catalogue = i18n.load()
    keys = set()
    for page in (ROOT / "app" / "web" / "templates" / "dossier_imports").glob("*.html"):
        keys |= {"dossier_import." + k for k in re.findall(r"\btr\(\s*'([^']+)'", page.read_text())}
    keys |= {f"dossier_import.status.{s}" for s in ("queued", "running", "done", "failed")}
    keys |= {"dossier_import.megabytes", "import_file_missing", "import_failed"}
    source = (ROOT / "app" / "dossiers" / "imports.py").read_text()
    not_texts = {"import_detail", "import_dossier_file", "import_id"}  # names, not codes
    keys |= set(re.findall(r'"(import_[a-z_0-9]+)"', source)) - not_texts
    assert len(keys) > 40
    missing = sorted(k for k in keys if k not in catalogue)
    assert not missing, missing


async def test_an_import_runs_on_either_store(app, storage: Storage) -> None:  # noqa: F811
    """The service end to end (no HTTP) on local disk and on S3: stored, then read back
    a range at a time and applied, in chunks smaller than the file."""
    import msgspec

    from app import policy
    from tests.dossiers.test_imports import error_lines, import_row, make_place, scenario

    place = await make_place(app)
    s = scenario(f"S{uuid.uuid4().hex[:6]}", 12)
    settings = msgspec.structs.replace(app.state.settings, dossier_import_chunk_lines=9)
    actor = policy.system_actor(app.state.clock.now())
    async with db.transaction(app.state.sessionmaker, None) as session:
        agency = await imports.agency_for_import(session, actor, place.agency_code)
        created = await imports.create_import(
            session,
            settings,
            storage,
            actor,
            agency,
            imports.Upload(io.BytesIO(s.body), "x.ndjson"),
            app.state.clock.now(),
        )
    stored_key = (await import_row(app, created.id)).object_key
    assert await storage.read_range(stored_key, 0, 5) == s.body[:5]
    result = await imports.run_import(
        app.state.sessionmaker, None, storage, settings, app.state.clock.now, created.id
    )
    assert result.status == "done" and result.chunks == -(-len(s.lines) // 9)
    row = await import_row(app, created.id)
    assert (row.accepted, row.duplicates, row.refused) == (
        s.count("accepted"),
        s.count("duplicate"),
        s.count("refused"),
    )
    assert await error_lines(app, created.id) == s.refusals()
