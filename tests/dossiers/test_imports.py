"""Dossier ingest by file (issue 19 item 2), on the real PostgreSQL, Redis and a real arq
worker: NDJSON and CSV files (native columns and the portal's Vietnamese names) give the
per-line results the ingest gives, duplicates are counted, a malformed line does not stop
the rest, a truncated file's partial last line is refused, an oversized or wrong file is
refused with nothing stored, the lost job is found by the reconciler; the console's JSON
API and pages, and who may use them."""

from __future__ import annotations

import csv
import io
import json
import secrets
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import msgspec
import pytest
from sqlalchemy import func, select, text

from app.core import db
from app.core.calendar import TIMEZONE
from app.core.security import keyed_hash
from app.dossiers import imports, tasks
from app.dossiers.models import Dossier, DossierEvent, DossierImport, DossierImportError
from tests.accounts.factories import sign_in_resident, sign_in_staff
from tests.conftest import STORAGE_DIR, running
from tests.routing.conftest import clock, worker_for  # noqa: F401 (fixtures)
from tests.web.test_pages import browser_for, csrf_of

BASE = "/api/v1/console/dossier-imports"
CITIZEN_ID = "001099012345"


# ---------------------------------------------------------------- set-up


@dataclass
class Place:
    """A unit of our own with an agency under it (and its status-code table)."""

    unit_id: uuid.UUID
    unit_code: str
    agency_id: uuid.UUID
    agency_code: str


async def _sql(app, sql: str, **params: Any) -> Any:
    async with app.state.engine.begin() as conn:
        result = await conn.execute(text(sql), params)
        return result.all() if "RETURNING" in sql else None


async def make_place(app, status_codes: dict[str, str] | None = None) -> Place:
    suffix = secrets.token_hex(4)
    unit_id, agency_id = uuid.uuid4(), uuid.uuid4()
    unit_code, agency_code = f"t-imp-{suffix}", f"AG-IMP-{suffix}".upper()
    await _sql(
        app,
        "INSERT INTO units (id, code, name_vi, name_en, kind) VALUES (:id, :code,"
        " 'Sở thử', 'Test department', 'department')",
        id=unit_id,
        code=unit_code,
    )
    await _sql(
        app,
        "INSERT INTO agencies (id, code, name_vi, name_en, unit_id) VALUES (:id, :code,"
        " 'Sở Tư pháp (thử)', 'Justice (test)', :unit)",
        id=agency_id,
        code=agency_code,
        unit=unit_id,
    )
    for code, status in (status_codes or {}).items():
        await _sql(
            app,
            "INSERT INTO agency_status_codes (agency_id, code, status) VALUES (:a, :c, :s)",
            a=agency_id,
            c=code,
            s=status,
        )
    return Place(unit_id, unit_code, agency_id, agency_code)


@pytest.fixture
async def place(app, client, clock):  # noqa: F811
    return await make_place(app, {"1": "received", "2": "processing", "4": "completed"})


@pytest.fixture
async def manager(app, client, clock, place):  # noqa: F811
    from tests.routing.conftest import staff_now

    return await staff_now(client, app, clock, [("manager", place.unit_code)])


async def run_worker(clock) -> Any:  # noqa: F811
    """A real arq worker (burst) with every job function but, of the crons, only the
    imports' reconciler (at start): other contexts' sweeps are theirs to test."""
    worker = worker_for(clock)
    worker.cron_jobs = [
        job for job in worker.cron_jobs if job.coroutine is tasks.reconcile_dossier_imports
    ]
    try:
        await worker.main()
    finally:
        await worker.close()
    assert worker.jobs_failed == 0
    return worker


# ---------------------------------------------------------------- files


def at(hours_ago: float) -> str:
    """An instant before now (events in the future are refused), ISO 8601 Hanoi time."""
    moment = datetime.now(UTC) - timedelta(hours=hours_ago)
    return moment.astimezone(TIMEZONE).replace(microsecond=0).isoformat()


def upsert(code: str, event_id: str, hours_ago: float = 48, **dossier: Any) -> dict[str, Any]:
    fields = {
        "procedure_code": "1.001234",
        "procedure_name": "Cấp phiếu lý lịch tư pháp",
        "applicant": {"name": "Nguyễn Văn An", "kind": "person", "citizen_id": CITIZEN_ID},
        "received_at": at(hours_ago),
        "online": True,
    }
    fields.update(dossier)
    return {
        "id": event_id,
        "type": "dossier.upsert",
        "dossier_code": code,
        "at": at(hours_ago),
        "dossier": fields,
    }


def progress(code: str, event_id: str, status: str, hours_ago: float = 24) -> dict[str, Any]:
    return {
        "id": event_id,
        "type": "dossier.progress",
        "dossier_code": code,
        "at": at(hours_ago),
        "status": status,
        "handler": "Trần Thị Bình",
        "content": "Chuyển phòng chuyên môn",
    }


@dataclass
class Scenario:
    lines: list[bytes]
    expected: dict[int, str]  # line number → "accepted" | "duplicate" | refusal code
    codes: list[str]  # the dossiers it creates
    final: dict[str, str]  # code → status after the file

    @property
    def body(self) -> bytes:
        return b"".join(line + b"\n" for line in self.lines)

    def count(self, outcome: str) -> int:
        if outcome == "refused":
            return sum(1 for v in self.expected.values() if v not in ("accepted", "duplicate"))
        return sum(1 for v in self.expected.values() if v == outcome)

    def refusals(self) -> dict[int, str]:
        return {n: v for n, v in self.expected.items() if v not in ("accepted", "duplicate")}


def scenario(prefix: str, dossiers: int) -> Scenario:
    """NDJSON lines with what each must give: per dossier an upsert and a move to
    processing; every 7th dossier's upsert sent again (a duplicate), every 10th asks for
    an impossible move, every 13th is followed by a line that is not JSON, every 17th by
    an upsert with a malformed date, one blank line in the middle (skipped)."""
    lines: list[bytes] = []
    expected: dict[int, str] = {}
    final: dict[str, str] = {}

    def add(obj: Any, outcome: str | None) -> None:
        lines.append(obj if isinstance(obj, bytes) else json.dumps(obj).encode())
        if outcome is not None:
            expected[len(lines)] = outcome

    codes = []
    for i in range(dossiers):
        code = f"{prefix}-{i:05d}"
        codes.append(code)
        first = upsert(code, f"{prefix}-u-{i}")
        add(first, "accepted")
        add(progress(code, f"{prefix}-p-{i}", "processing"), "accepted")
        final[code] = "processing"
        if i % 7 == 3:
            add(first, "duplicate")
        if i % 10 == 5:  # processing → returned is not an edge
            add(
                progress(code, f"{prefix}-r-{i}", "returned", hours_ago=12),
                "event_transition_invalid",
            )
        if i % 13 == 6:
            add(b'{"id": "broken", "type": ', "event_not_json")
        if i % 17 == 8:
            add(
                upsert(f"{prefix}-x-{i}", f"{prefix}-x-{i}", received_at="31/12/2026"),
                "event_date_invalid",
            )
        if i == dossiers // 2:
            add(b"   ", None)  # a blank line: nothing to apply, nothing to report
    return Scenario(lines, expected, codes, final)


async def upload(client, headers, agency: str, body: bytes, **params: Any):
    media = params.pop("media", "application/x-ndjson")
    return await client.post(
        BASE,
        params={"agency": agency, **params},
        content=body,
        headers={**headers, "content-type": media},
    )


async def import_row(app, import_id) -> DossierImport:
    async with app.state.sessionmaker() as s:
        row = await s.get(DossierImport, uuid.UUID(str(import_id)))
        assert row is not None
        return row


async def error_lines(app, import_id) -> dict[int, str]:
    async with app.state.sessionmaker() as s:
        rows = await s.execute(
            select(DossierImportError.line, DossierImportError.code)
            .where(DossierImportError.import_id == uuid.UUID(str(import_id)))
            .order_by(DossierImportError.line)
        )
        return dict(rows.all())


async def statuses(app, codes: list[str]) -> dict[str, str]:
    async with app.state.sessionmaker() as s:
        rows = await s.execute(select(Dossier.code, Dossier.status).where(Dossier.code.in_(codes)))
        return dict(rows.all())


async def event_count(app, agency_id: uuid.UUID) -> int:
    async with app.state.sessionmaker() as s:
        return await s.scalar(
            select(func.count())
            .select_from(DossierEvent)
            .where(DossierEvent.agency_id == agency_id)
        )


def stored_objects() -> list[Path]:
    root = Path(STORAGE_DIR) / imports.OBJECT_PREFIX
    return [p for p in root.rglob("*") if p.is_file()] if root.exists() else []


async def assert_results(app, import_id, s: Scenario) -> DossierImport:
    row = await import_row(app, import_id)
    assert row.status == "done", (row.status, row.failure)
    assert (row.accepted, row.duplicates, row.refused) == (
        s.count("accepted"),
        s.count("duplicate"),
        s.count("refused"),
    )
    assert row.lines_done == len(s.lines)
    assert row.bytes_done == row.size_bytes
    assert await error_lines(app, import_id) == s.refusals()
    return row


# ---------------------------------------------------------------- NDJSON


async def test_an_ndjson_file_is_imported_with_a_result_per_line(
    app,
    client,
    clock,
    place,
    manager,  # noqa: F811
):
    s = scenario(f"N{secrets.token_hex(3)}", 40)
    r = await upload(client, manager["headers"], place.agency_code, s.body, name="export.ndjson")
    assert r.status_code == 201, r.text
    created = r.json()
    assert created["status"] == "queued" and created["file_format"] == "ndjson"
    assert created["size_bytes"] == len(s.body)
    await run_worker(clock)
    row = await assert_results(app, created["id"], s)
    assert row.file_name == "export.ndjson" and row.started_at and row.finished_at
    assert await statuses(app, s.codes) == s.final
    # every accepted event is one timeline entry; nothing else was written
    assert await event_count(app, place.agency_id) == s.count("accepted")
    # the citizen ID is kept only as the accounts' keyed hash and its last four digits
    async with app.state.sessionmaker() as session:
        d = await session.scalar(select(Dossier).where(Dossier.code == s.codes[0]))
        assert d.applicant_id_hash == keyed_hash(app.state.settings.citizen_id_hash_key, CITIZEN_ID)
        assert d.applicant_id_last4 == "2345"
    # the JSON twin: counts, duration and the refused lines, paginated by line number
    one = await client.get(
        f"{BASE}/{created['id']}", params={"limit": 3}, headers=manager["headers"]
    )
    assert one.status_code == 200, one.text
    body = one.json()
    assert body["item"]["accepted"] == s.count("accepted")
    assert body["item"]["duration_seconds"] is not None
    refusals = list(s.refusals().items())
    assert [(e["line"], e["code"]) for e in body["errors"]] == refusals[:3]
    assert all(e["message"] for e in body["errors"])
    seen = [(e["line"], e["code"]) for e in body["errors"]]
    while body["next_after_line"] is not None:
        body = (
            await client.get(
                f"{BASE}/{created['id']}",
                params={"limit": 3, "after_line": body["next_after_line"]},
                headers=manager["headers"],
            )
        ).json()
        seen += [(e["line"], e["code"]) for e in body["errors"]]
    assert seen == refusals
    listed = await client.get(BASE, headers=manager["headers"])
    assert [i["id"] for i in listed.json()["items"]] == [created["id"]]


async def test_the_same_file_twice_is_all_duplicates_and_changes_nothing(
    app,
    client,
    clock,
    place,
    manager,  # noqa: F811
):
    s = scenario(f"D{secrets.token_hex(3)}", 15)
    first = await upload(client, manager["headers"], place.agency_code, s.body)
    await run_worker(clock)
    await assert_results(app, first.json()["id"], s)
    events = await event_count(app, place.agency_id)
    again = await upload(client, manager["headers"], place.agency_code, s.body)
    await run_worker(clock)
    row = await import_row(app, again.json()["id"])
    assert row.status == "done"
    # every event already applied is a duplicate now; refused ones are refused again
    assert (row.accepted, row.duplicates, row.refused) == (
        0,
        s.count("accepted") + s.count("duplicate"),
        s.count("refused"),
    )
    assert await error_lines(app, again.json()["id"]) == s.refusals()
    assert await event_count(app, place.agency_id) == events
    assert await statuses(app, s.codes) == s.final


async def test_a_file_cut_mid_line_refuses_the_partial_line_and_imports_the_rest(
    app,
    client,
    clock,
    place,
    manager,  # noqa: F811
):
    s = scenario(f"T{secrets.token_hex(3)}", 6)
    last = s.lines[-1]
    cut = s.body[: -(len(last) // 2 + 1)]  # the last line loses its second half and newline
    r = await upload(client, manager["headers"], place.agency_code, cut)
    assert r.status_code == 201, r.text
    await run_worker(clock)
    row = await import_row(app, r.json()["id"])
    assert row.status == "done" and row.bytes_done == len(cut)
    errors = await error_lines(app, r.json()["id"])
    assert errors[len(s.lines)] == "import_line_truncated"
    expected = {n: v for n, v in s.refusals().items() if n != len(s.lines)}
    assert {n: v for n, v in errors.items() if n != len(s.lines)} == expected
    assert row.accepted == sum(
        1 for n, v in s.expected.items() if v == "accepted" and n != len(s.lines)
    )


# ---------------------------------------------------------------- CSV


NATIVE_HEADER = [
    "id",
    "type",
    "dossier_code",
    "at",
    "seq",
    "status",
    "dossier.procedure_code",
    "dossier.procedure_name",
    "dossier.applicant.name",
    "dossier.applicant.kind",
    "dossier.applicant.citizen_id",
    "dossier.received_at",
    "dossier.online",
    "dossier.fees",
    "dossier.summary",
    "content",
]


def csv_bytes(header: list[str], rows: list[list[Any]], *, bom: bool = False) -> bytes:
    out = io.StringIO(newline="")
    writer = csv.writer(out, lineterminator="\r\n")
    writer.writerow(header)
    writer.writerows(rows)
    data = out.getvalue().encode()
    return (b"\xef\xbb\xbf" if bom else b"") + data


async def test_a_csv_file_with_native_columns(app, client, clock, place, manager):  # noqa: F811
    p = f"C{secrets.token_hex(3)}"
    fees = json.dumps([{"name": "Lệ phí", "amount": 200000, "paid": True}], ensure_ascii=False)
    rows = [
        # a summary with a comma, quotes and a line break inside its quoted cell
        [
            f"{p}-1",
            "dossier.upsert",
            f"{p}-A",
            at(30),
            0,
            "",
            "1.001234",
            "Cấp phiếu",
            "Lê Thị Cúc",
            "person",
            CITIZEN_ID,
            at(30),
            "true",
            fees,
            'Xin cấp "gấp",\nlần 2',
            "",
        ],
        [
            f"{p}-2",
            "dossier.progress",
            f"{p}-A",
            at(20),
            1,
            "processing",
            "",
            "",
            "",
            "",
            "",
            "",
            "",
            "",
            "",
            "Thụ lý",
        ],
        [
            f"{p}-1",
            "dossier.upsert",
            f"{p}-A",
            at(30),
            0,
            "",
            "1.001234",
            "Cấp phiếu",
            "Lê Thị Cúc",
            "person",
            CITIZEN_ID,
            at(30),
            "true",
            fees,
            "",
            "",
        ],  # duplicate id
        [
            f"{p}-3",
            "dossier.upsert",
            f"{p}-B",
            at(30),
            "two",
            "",
            "1.001234",
            "Cấp phiếu",
            "Lê Thị Cúc",
            "person",
            "",
            at(30),
            "",
            "",
            "",
            "",
        ],  # seq is not a number
        [
            f"{p}-4",
            "dossier.upsert",
            f"{p}-C",
            at(30),
            0,
            "",
            "1.001234",
            "Cấp phiếu",
            "Lê Thị Cúc",
            "alien",
            "",
            at(30),
            "",
            "",
            "",
            "",
        ],  # not a kind of applicant
        [
            f"{p}-5",
            "dossier.upsert",
            f"{p}-D",
            at(30),
            0,
            "",
            "1.001234",
            "Cấp phiếu",
            "Lê Thị Cúc",
            "business",
            "",
            at(30),
            "0",
            "",
            "",
            "",
        ],
        [f"{p}-6", "dossier.progress", f"{p}-D", at(10)],  # too few columns
    ]
    body = csv_bytes(NATIVE_HEADER, rows, bom=True)
    r = await upload(client, manager["headers"], place.agency_code, body, media="text/csv")
    assert r.status_code == 201, r.text
    assert r.json()["file_format"] == "csv"
    await run_worker(clock)
    row = await import_row(app, r.json()["id"])
    assert row.status == "done"
    # the header is line 1; the first row spans lines 2-3 (a line break in a quoted cell)
    assert await error_lines(app, r.json()["id"]) == {
        6: "event_field_invalid",
        7: "event_field_invalid",
        9: "import_csv_row_columns",
    }
    assert (row.accepted, row.duplicates, row.refused) == (3, 1, 3)
    async with app.state.sessionmaker() as s:
        fields = dict(
            (
                await s.execute(
                    select(DossierImportError.line, DossierImportError.detail).where(
                        DossierImportError.import_id == row.id
                    )
                )
            ).all()
        )
        a = await s.scalar(select(Dossier).where(Dossier.code == f"{p}-A"))
        d = await s.scalar(select(Dossier).where(Dossier.code == f"{p}-D"))
    assert fields[6] == "seq" and fields[7] == "dossier.applicant.kind"
    assert a.status == "processing" and a.summary == 'Xin cấp "gấp",\nlần 2'
    assert a.fees == [{"name": "Lệ phí", "amount": 200000, "paid": True}]
    assert a.online is True and d.online is False and d.applicant_kind == "business"
    assert lines_of(row) == 9


def lines_of(row: DossierImport) -> int:
    return row.lines_done


PORTAL_HEADER = [
    "MaHoSo",
    "MaTTHC",
    "TenTTHC",
    "MaLinhVuc",
    "ChuHoSo",
    "LoaiDoiTuong",
    "TrichYeuHoSo",
    "NgayTiepNhan",
    "NgayHenTra",
    "NgayTra",
    "TrangThaiHoSo",
    "HinhThuc",
    "DonViXuLy",
    "NguoiXuLy",
    "ThoiDiemXuLy",
    "NoiDungXuLy",
]


def compact(hours_ago: float) -> str:
    """The portal's yyyyMMddHHmmss, Hanoi time."""
    moment = datetime.now(UTC) - timedelta(hours=hours_ago)
    return moment.astimezone(TIMEZONE).strftime("%Y%m%d%H%M%S")


async def test_a_csv_file_with_the_portals_column_names(app, client, clock, place, manager):  # noqa: F811
    p = f"P{secrets.token_hex(3)}"
    rows = [
        # a dossier synced (no id, no type, no at: a hash, an upsert, its receipt time)
        [
            f"{p}-1",
            "1.004",
            "Đăng ký khai sinh",
            "HT",
            "Phạm Văn Dũng",
            "1",
            "Khai sinh",
            compact(50),
            compact(-48),
            "",
            "1",
            "1",
            "Phòng Tư pháp",
            "",
            "",
            "",
        ],
        # its progress: status code 2 (processing) through the agency's table
        [
            f"{p}-1",
            "",
            "",
            "",
            "",
            "",
            "",
            "",
            "",
            "",
            "2",
            "",
            "",
            "Cán bộ A",
            compact(40),
            "Thẩm định",
        ],
        # the same synced row again: the same hash, a duplicate
        [
            f"{p}-1",
            "1.004",
            "Đăng ký khai sinh",
            "HT",
            "Phạm Văn Dũng",
            "1",
            "Khai sinh",
            compact(50),
            compact(-48),
            "",
            "1",
            "1",
            "Phòng Tư pháp",
            "",
            "",
            "",
        ],
        # a business, not fully online, completed (code 4)
        [
            f"{p}-2",
            "1.005",
            "Cấp giấy phép",
            "KD",
            "Công ty TNHH Hòa Bình",
            "2",
            "",
            compact(30),
            "",
            "",
            "4",
            "0",
            "",
            "",
            "",
            "",
        ],
        # a status code the agency's table lacks
        [
            f"{p}-3",
            "1.005",
            "Cấp giấy phép",
            "KD",
            "Công ty TNHH An",
            "2",
            "",
            compact(30),
            "",
            "",
            "99",
            "0",
            "",
            "",
            "",
            "",
        ],
        # a date that is no date
        [
            f"{p}-4",
            "1.005",
            "Cấp giấy phép",
            "KD",
            "Công ty TNHH An",
            "2",
            "",
            "2026-13-45",
            "",
            "",
            "1",
            "0",
            "",
            "",
            "",
            "",
        ],
    ]
    body = csv_bytes(PORTAL_HEADER, rows)
    r = await upload(
        client,
        manager["headers"],
        place.agency_code,
        body,
        name="dongbo.csv",
        media="application/octet-stream",
    )
    assert r.status_code == 201, r.text
    await run_worker(clock)
    row = await import_row(app, r.json()["id"])
    assert row.status == "done"
    assert await error_lines(app, r.json()["id"]) == {
        6: "event_status_code_unknown",
        7: "event_date_invalid",
    }
    assert (row.accepted, row.duplicates, row.refused) == (3, 1, 2)
    async with app.state.sessionmaker() as s:
        details = dict(
            (
                await s.execute(
                    select(DossierImportError.line, DossierImportError.detail).where(
                        DossierImportError.import_id == row.id
                    )
                )
            ).all()
        )
        one = await s.scalar(select(Dossier).where(Dossier.code == f"{p}-1"))
        two = await s.scalar(select(Dossier).where(Dossier.code == f"{p}-2"))
    assert details[7] == "NgayTiepNhan"  # the file's own name for the field
    assert (one.status, one.online, one.applicant_kind) == ("processing", True, "person")
    assert one.procedure_name == "Đăng ký khai sinh" and one.handling_unit_name == "Phòng Tư pháp"
    assert (two.status, two.online, two.applicant_kind) == ("completed", False, "business")


# ---------------------------------------------------------------- bad files


async def test_an_oversized_file_is_refused_with_nothing_stored(
    app, client, clock, settings, place
):  # noqa: F811
    small = msgspec.structs.replace(settings, dossier_import_max_bytes=2_000)
    from app.main import create_app

    limited = create_app(small)
    limited.state.clock = clock
    before = stored_objects()
    async with running(limited) as http:
        staff = await sign_in_staff(http, limited, [("manager", place.unit_code)])
        body = scenario(f"O{secrets.token_hex(3)}", 10).body
        assert len(body) > 2_000
        r = await upload(http, staff["headers"], place.agency_code, body)
        assert r.status_code == 413, r.text
        assert r.headers["content-type"].startswith("application/problem+json")
        assert r.json()["code"] == "import_too_large"

        # streamed without a length (chunked): refused as it arrives
        async def chunks():
            for start in range(0, len(body), 500):
                yield body[start : start + 500]

        r = await http.post(
            BASE,
            params={"agency": place.agency_code},
            content=chunks(),
            headers={**staff["headers"], "content-type": "application/x-ndjson"},
        )
        assert r.status_code == 413 and r.json()["code"] == "import_too_large"
        # the page: the upload form again, the reason in place, the same status
        browser = await browser_for(limited, [("manager", place.unit_code)])
        page = await browser.http.get("/console/dossier-imports")
        r = await browser.http.post(
            "/console/dossier-imports",
            data={"csrf": csrf_of(page.text), "agency": place.agency_code},
            files={"file": ("big.ndjson", body, "application/x-ndjson")},
        )
        assert r.status_code == 413
        # in place (issue 23): the summary and the message beside the file field
        assert 'class="error-summary"' in r.text and "2.000" in r.text  # vi writes the limit so
        assert 'action="/console/dossier-imports"' in r.text
    async with app.state.sessionmaker() as s:
        rows = await s.scalar(
            select(func.count())
            .select_from(DossierImport)
            .where(DossierImport.agency_id == place.agency_id)
        )
    assert rows == 0
    assert stored_objects() == before


async def test_wrong_type_not_utf8_and_unknown_columns_are_refused(
    app,
    client,
    clock,
    place,
    manager,  # noqa: F811
):
    h = manager["headers"]
    r = await upload(client, h, place.agency_code, b'{"a": 1}\n', media="application/pdf")
    assert r.status_code == 415 and r.json()["code"] == "import_type_unsupported"
    r = await upload(client, h, place.agency_code, b"%PDF-1.7\n", name="x.ndjson")
    assert r.status_code == 422 and r.json()["code"] == "import_ndjson_not_objects"
    latin1 = '{"id": "é"}\n'.encode("latin-1")
    r = await upload(client, h, place.agency_code, b'{"id": 1}\n' + latin1)
    assert r.status_code == 422 and r.json()["code"] == "import_not_utf8"
    assert "2" in r.json()["detail"]  # the line
    r = await upload(client, h, place.agency_code, b"", name="x.ndjson")
    assert r.status_code == 422 and r.json()["code"] == "import_empty"
    bad_header = csv_bytes(["MaHoSo", "Foo", "dossier.nope"], [["X-1", "a", "b"]])
    r = await upload(client, h, place.agency_code, bad_header, media="text/csv")
    assert r.status_code == 422 and r.json()["code"] == "import_csv_columns_unknown"
    assert "Foo" in r.json()["detail"] and "dossier.nope" in r.json()["detail"]
    twice = csv_bytes(["MaHoSo", "dossier_code"], [["X-1", "X-1"]])
    r = await upload(client, h, place.agency_code, twice, media="text/csv")
    assert r.status_code == 422 and r.json()["code"] == "import_csv_columns_twice"
    r = await upload(client, h, "NO-SUCH-AGENCY", b'{"id": 1}\n')
    assert r.status_code == 404 and r.json()["code"] == "import_agency_unknown"
    async with app.state.sessionmaker() as s:
        assert not await s.scalar(
            select(func.count())
            .select_from(DossierImport)
            .where(DossierImport.agency_id == place.agency_id)
        )


# ---------------------------------------------------------------- who may


async def test_only_the_agencys_managers_and_admins_may_import_and_see(
    app,
    client,
    clock,
    place,
    manager,
    caplog,  # noqa: F811
):
    from tests.routing.conftest import resident_now, staff_now

    other = await make_place(app)
    s = scenario(f"W{secrets.token_hex(3)}", 3)
    mine = await upload(client, manager["headers"], place.agency_code, s.body)
    assert mine.status_code == 201
    import_id = mine.json()["id"]
    outsider = await staff_now(client, app, clock, [("manager", other.unit_code)])
    officer = await staff_now(client, app, clock, [("officer", place.unit_code)])
    admin = await staff_now(client, app, clock, [("admin", None)])
    resident = await resident_now(client, caplog, clock)
    for who, code in ((outsider, "import_not_your_agency"), (officer, "import_not_your_agency")):
        r = await upload(client, who["headers"], place.agency_code, s.body)
        assert r.status_code == 403 and r.json()["code"] == code
        r = await client.get(f"{BASE}/{import_id}", headers=who["headers"])
        assert r.status_code == 403 and r.json()["code"] == "import_not_yours"
        assert (await client.get(BASE, headers=who["headers"])).json()["items"] == []
    r = await upload(client, resident["headers"], place.agency_code, s.body)
    assert r.status_code == 403 and r.json()["code"] == "staff_only"
    assert (await client.get(f"{BASE}/{import_id}", headers=resident["headers"])).status_code == 403
    assert (await client.post(BASE, params={"agency": place.agency_code})).status_code == 401
    # the admin sees every agency's, and may import for any
    listed = (await client.get(BASE, headers=admin["headers"], params={"limit": 200})).json()
    assert import_id in [i["id"] for i in listed["items"]]
    r = await upload(client, admin["headers"], other.agency_code, s.body)
    assert r.status_code == 201
    # the pages refuse the same way
    browser = await browser_for(app, [("manager", other.unit_code)])
    page = await browser.http.get(f"/console/dossier-imports/{import_id}")
    assert page.status_code == 403 and "text/html" in page.headers["content-type"]
    form = await browser.http.get("/console/dossier-imports")
    r = await browser.http.post(
        "/console/dossier-imports",
        data={"csrf": csrf_of(form.text), "agency": place.agency_code},
        files={"file": ("x.ndjson", s.body, "application/x-ndjson")},
    )
    assert r.status_code == 403 and "text/html" in r.headers["content-type"]
    # nothing of the refused uploads was written: the manager's and the admin's only
    async with app.state.sessionmaker() as session:
        made = await session.scalar(select(func.count()).select_from(DossierImport))
    assert made == 2
    await run_worker(clock)


# ---------------------------------------------------------------- the pages


async def test_the_pages_upload_list_and_show_the_refused_lines(app, client, clock, place):  # noqa: F811
    browser = await browser_for(app, [("manager", place.unit_code)])
    page = await browser.http.get("/console/dossier-imports")
    assert page.status_code == 200
    assert place.agency_code in page.text
    assert "Content-Security-Policy" in page.headers
    # a file the service refuses: the form again, the reason beside it
    r = await browser.http.post(
        "/console/dossier-imports",
        data={"csrf": csrf_of(page.text), "agency": place.agency_code},
        files={"file": ("x.csv", csv_bytes(["MaHoSo", "Foo"], [["A", "b"]]), "text/csv")},
    )
    assert r.status_code == 422
    assert 'class="error-summary"' in r.text and "Foo" in r.text
    assert 'aria-invalid="true"' in r.text
    # no file chosen
    r = await browser.http.post(
        "/console/dossier-imports",
        data={"csrf": csrf_of(page.text), "agency": place.agency_code},
        files={"file": ("", b"", "application/octet-stream")},
    )
    assert r.status_code == 422 and 'id="file-error"' in r.text
    # without the CSRF token: refused
    s = scenario(f"G{secrets.token_hex(3)}", 8)
    r = await browser.http.post(
        "/console/dossier-imports",
        data={"csrf": "forged", "agency": place.agency_code},
        files={"file": ("e.ndjson", s.body, "application/x-ndjson")},
    )
    assert r.status_code == 403
    r = await browser.http.post(
        "/console/dossier-imports",
        data={"csrf": csrf_of(page.text), "agency": place.agency_code},
        files={"file": ("export.ndjson", s.body, "application/x-ndjson")},
    )
    assert r.status_code == 303, r.text
    detail_path = r.headers["location"].split("?")[0]
    await run_worker(clock)
    detail = await browser.http.get(detail_path)
    assert detail.status_code == 200
    for line in s.refusals():
        assert f'<th scope="row">{line}</th>' in detail.text
    listing = await browser.http.get("/console/dossier-imports")
    assert "export.ndjson" in listing.text and detail_path in listing.text


# ---------------------------------------------------------------- the reconciler


async def test_an_import_whose_job_was_lost_is_run_by_the_reconciler(
    app,
    client,
    clock,
    place,
    manager,  # noqa: F811
):
    s = scenario(f"R{secrets.token_hex(3)}", 5)
    r = await upload(client, manager["headers"], place.agency_code, s.body)
    import_id = r.json()["id"]
    # Redis lost the job: the queue and the job's key are gone
    redis = app.state.redis
    queue = app.state.settings.queue_name
    for job in await redis.queued_jobs(queue_name=queue):
        await redis.zrem(queue, job.job_id)
        await redis.delete(f"arq:job:{job.job_id}")
    await run_worker(clock)  # too early: the import's row is younger than a minute
    assert (await import_row(app, import_id)).status == "queued"
    clock.advance(timedelta(seconds=61))
    await run_worker(clock)
    await assert_results(app, import_id, s)


async def test_a_job_out_of_time_hands_the_rest_to_its_successor(
    app,
    client,
    clock,
    place,
    manager,  # noqa: F811
):
    s = scenario(f"H{secrets.token_hex(3)}", 10)
    r = await upload(client, manager["headers"], place.agency_code, s.body)
    import_id = uuid.UUID(r.json()["id"])
    redis = app.state.redis
    queue = app.state.settings.queue_name
    for job in await redis.queued_jobs(queue_name=queue):  # the upload's job: run by hand
        await redis.zrem(queue, job.job_id)
        await redis.delete(f"arq:job:{job.job_id}")
    small = msgspec.structs.replace(app.state.settings, dossier_import_chunk_lines=7)
    result = await imports.run_import(
        app.state.sessionmaker,
        redis,
        app.state.storage,
        small,
        clock.now,
        import_id,
        budget_seconds=0,  # out of time after its first chunk
    )
    assert (result.status, result.chunks) == ("running", 1)
    row = await import_row(app, import_id)
    assert row.status == "running" and row.lines_done == result.lines_done >= 7
    successor = imports.job_id(import_id, row.lines_done)
    queued = [job.job_id for job in await redis.queued_jobs(queue_name=queue)]
    assert queued == [f"{queue}:{successor}"]
    await run_worker(clock)
    await assert_results(app, import_id, s)
