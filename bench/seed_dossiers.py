"""Seed many dossiers (hồ sơ) for the issue 19 benchmarks, with COPY.

    uv run python -m bench.seed_dossiers --count 10000000 \\
        [--database-url postgresql+asyncpg://postgres@127.0.0.1:5432/city_bench_dossiers] \\
        [--reset] [--seed N]

Creates (or migrates) the bench database (``python -m app.cli setup``: Alembic to head,
Hanoi's reference data), then one agency per ward's People's Committee (UBND phường,
126) and one per city department (sở), each belonging to its unit, with the code
``bench-<unit code>``. Then ``--count`` dossiers spread over the last two years, written
with ``COPY`` (asyncpg's binary ``copy_records_to_table``, in chunks), in one
transaction whose indexes and foreign keys are dropped first and rebuilt at the end
(what a bulk load does; a crash rolls everything back, indexes included):

- agencies: the city's departments receive 30 % of the dossiers, the wards the rest;
- procedures (TTHC) from a small list with their allowed working days (1–30);
- received on working days in office hours (10 % online at any hour); the due date
  (NgayHenTra) is the close of the N-th working day after the day of receipt, on the
  city's calendar (``app/core/calendar.py``: Vietnam's holidays, Tết included);
- 8 % had more documents requested (the due date moved by 3–10 working days, a row in
  ``dossier_supplements``);
- 85 % are finished within the time allowed, the rest late (0–150 % over); a dossier
  whose finish lies in the future is still open (received, processing, more documents
  requested), and marked overdue (``overdue_at``) when its due date has passed, as the
  sweep would; 3 % of the finished are refused, 1.5 % of all withdrawn; a result ready
  for more than three days has mostly been returned; the on-time verdict
  (``finished_on_time``) is taken from the data;
- 35 % fully online (toàn trình); 20 % of the completed/returned rated (60 % satisfied,
  30 % accept, 10 % not satisfied);
- applicants: 85 % persons, whose citizen ID is stored as the accounts' keyed hash
  (``CITIZEN_ID_HASH_KEY``) plus the last 4 digits: half of the dossiers come from a
  pool of 300,000 frequent applicants (≈ 14 dossiers each), the rest from 4 million
  others. The person with index ``i`` has the citizen ID ``citizen_id(i)``, so a bench
  can make a level-2 account for any of them;
- a timeline (``dossier_events``): the upsert that created it and one progress entry
  per status it went through (≈ 3.4 per dossier).

Codes are ``BD`` + 9 digits (``dossier_code(n)``, n from 1): a bench can look any of
them up. ``VACUUM (ANALYZE)`` runs at the end.
"""

from __future__ import annotations

import argparse
import asyncio
import bisect
import hashlib
import hmac
import multiprocessing
import random
import sys
import time
import uuid
from collections.abc import Iterator
from datetime import UTC, date, datetime, timedelta
from typing import Any

import asyncpg
from sqlalchemy.engine import make_url

from app.core.calendar import TIMEZONE, working_calendar
from app.settings import get_settings

DEFAULT_URL = "postgresql+asyncpg://postgres@127.0.0.1:5432/city_bench_dossiers"
AGENCY_PREFIX = "bench-"
CODE_PREFIX = "BD"
CHUNK = 50_000
FREQUENT_APPLICANTS = 300_000
OTHER_APPLICANTS = 4_000_000
SPAN_DAYS = 730

# (MaTTHC, TenTTHC, working days allowed); illustrative codes
WARD_PROCEDURES = (
    ("1.001193", "Đăng ký kết hôn", 5),
    ("1.001612", "Đăng ký khai sinh", 3),
    ("1.000894", "Đăng ký khai tử", 3),
    ("2.000635", "Chứng thực bản sao từ bản chính", 1),
    ("1.004227", "Xác nhận tình trạng hôn nhân", 3),
    ("2.000908", "Đăng ký thường trú", 7),
    ("1.003583", "Cấp giấy phép xây dựng nhà ở riêng lẻ", 15),
    ("1.005193", "Đăng ký hộ kinh doanh", 3),
)
CITY_PROCEDURES = (
    ("2.001610", "Đăng ký thành lập doanh nghiệp", 3),
    ("1.004415", "Cấp giấy chứng nhận quyền sử dụng đất", 30),
    ("1.001757", "Cấp phiếu lý lịch tư pháp", 10),
    ("1.009994", "Cấp giấy phép xây dựng công trình", 20),
    ("2.001822", "Cấp giấy chứng nhận cơ sở đủ điều kiện an toàn thực phẩm", 20),
    ("1.000105", "Cấp đổi giấy phép lái xe", 5),
)
FAMILY = ("Nguyễn", "Trần", "Lê", "Phạm", "Hoàng", "Huỳnh", "Phan", "Vũ", "Võ", "Đặng", "Bùi")
MIDDLE = ("Văn", "Thị", "Hữu", "Đức", "Minh", "Thu", "Ngọc", "Quang", "Thanh", "Xuân")
GIVEN = ("An", "Bình", "Chi", "Dũng", "Hà", "Hải", "Hoa", "Hùng", "Lan", "Long", "Mai", "Nam")
GIVEN += ("Phương", "Quân", "Sơn", "Tâm", "Thảo", "Trang", "Tuấn", "Việt", "Yến", "Khánh")

DOSSIER_COLUMNS = (
    "id code agency_id procedure_code procedure_name field_code applicant_name applicant_kind "
    "applicant_id_hash applicant_id_last4 applicant_phone applicant_email summary "
    "handling_unit_name online status received_at due_at completed_at returned_at closed_at "
    "refused_reason finished_on_time overdue_at fees results result_pickup status_at status_seq "
    "rating rated_at created_at updated_at"
).split()
EVENT_COLUMNS = (
    "dossier_id agency_id event_id at seq kind from_status to_status applied handler content "
    "received_at"
).split()
SUPPLEMENT_COLUMNS = (
    "id dossier_id source_id requested_at needed supply_by old_due_at new_due_at supplied_at"
).split()
TABLES = ("dossiers", "dossier_events", "dossier_supplements")


def dossier_code(n: int) -> str:
    return f"{CODE_PREFIX}{n:09d}"


def citizen_id(i: int) -> str:
    """The 12-digit citizen ID of bench person ``i`` (001: Hanoi's province code)."""
    return f"001{i:09d}"


def check_bench_database(url: str) -> str:
    name = make_url(url).database or ""
    if not name.startswith("city_bench"):
        raise SystemExit(f"refusing to seed {name!r}: use a database named city_bench...")
    return name


class Calendar:
    """Working days over the seeded span as arrays: receipt day and due instants by
    index instead of a holiday lookup per dossier."""

    def __init__(self, first: date, last: date) -> None:
        cal = working_calendar()
        self.days: list[date] = []
        day = first
        while day <= last:
            if cal.is_working_day(day):
                self.days.append(day)
            day += timedelta(days=1)
        self.closes = [cal.close_of(d) for d in self.days]
        self.opens = [cal._at(d, cal.opens) for d in self.days]  # noqa: SLF001

    def receipt_index(self, at: datetime) -> int:
        """Index of the working day a dossier arriving at ``at`` is received on."""
        local = at.astimezone(TIMEZONE)
        i = bisect.bisect_left(self.days, local.date())
        if i < len(self.days) and self.days[i] == local.date() and at >= self.closes[i]:
            i += 1
        return min(i, len(self.days) - 1)

    def due(self, index: int, working_days: int) -> datetime:
        return self.closes[min(index + working_days, len(self.closes) - 1)]


class Generator:
    def __init__(self, rng: random.Random, now: datetime, agencies: list[dict], key: bytes) -> None:
        self.rng = rng
        self.now = now
        self.key = key
        self.start = now - timedelta(days=SPAN_DAYS)
        self.cal = Calendar(self.start.date() - timedelta(days=10), now.date() + timedelta(400))
        self.first_index = self.cal.receipt_index(self.start)
        self.last_index = self.cal.receipt_index(now)
        self.city = [a for a in agencies if a["city"]]
        self.wards = [a for a in agencies if not a["city"]]
        self.events = 0

    def applicant(self) -> tuple[int, str]:
        rng = self.rng
        if rng.random() < 0.5:
            i = rng.randrange(FREQUENT_APPLICANTS)
        else:
            i = FREQUENT_APPLICANTS + rng.randrange(OTHER_APPLICANTS)
        name = f"{FAMILY[i % 11]} {MIDDLE[(i // 11) % 10]} {GIVEN[(i // 110) % 22]}"
        return i, name

    def received(self) -> datetime:
        rng = self.rng
        if rng.random() < 0.1:  # online, any hour
            return self.start + timedelta(seconds=rng.random() * SPAN_DAYS * 86400)
        index = rng.randint(self.first_index, self.last_index)
        opens = self.cal.opens[index]
        at = opens + timedelta(seconds=rng.random() * 9 * 3600)
        return min(at, self.now - timedelta(minutes=1))

    def dossier(self, n: int) -> tuple[tuple, list[tuple], tuple | None]:  # noqa: C901, PLR0915
        rng = self.rng
        now = self.now
        city = rng.random() < 0.3
        agency = rng.choice(self.city if city else self.wards)
        procedure_code, procedure_name, allowed = rng.choice(
            CITY_PROCEDURES if city else WARD_PROCEDURES
        )
        dossier_id = uuid.UUID(int=rng.getrandbits(128), version=4)
        code = dossier_code(n)
        received = self.received()
        index = self.cal.receipt_index(received)
        due = self.cal.due(index, allowed)
        supplement = None
        supplement_at = supplied_at = None
        if rng.random() < 0.08:
            supplement_at = received + timedelta(hours=4 + rng.random() * 48)
            old_due = due
            due = self.cal.due(index, allowed + rng.randint(3, 10))
            supplied_at = supplement_at + timedelta(hours=4 + rng.random() * 96)
            supplement = (old_due, due)
        # working days taken, as a share of those allowed
        share = rng.uniform(0.2, 1.0) if rng.random() < 0.85 else rng.uniform(1.0, 2.5)
        finish = received + (due - received) * share
        withdrawn = rng.random() < 0.015
        refused = not withdrawn and rng.random() < 0.03
        status: str
        completed_at = returned_at = closed_at = None
        on_time = overdue_at = None
        rating = rated_at = None
        refused_reason = None
        if withdrawn:
            status, closed_at = "withdrawn", received + (min(finish, now) - received) * rng.random()
        elif finish <= now:
            on_time = finish <= due
            if refused:
                status, closed_at = "refused", finish
                refused_reason = "Hồ sơ không đủ điều kiện theo quy định."
            else:
                completed_at = finish
                returned_at = finish + timedelta(hours=rng.random() * 96)
                if returned_at <= now and (now - finish > timedelta(days=3) or rng.random() < 0.5):
                    status, closed_at = "returned", returned_at
                else:
                    status, returned_at = "completed", None
                if rng.random() < 0.2:
                    r = rng.random()
                    rating = "satisfied" if r < 0.6 else "accept" if r < 0.9 else "not_satisfied"
                    rated_at = min(
                        now, (returned_at or finish) + timedelta(hours=rng.random() * 48)
                    )
        else:
            if supplement_at is not None and supplement_at <= now < supplied_at:  # type: ignore[operator]
                status = "supplement_requested"
            else:
                status = "received" if now - received < timedelta(hours=8) else "processing"
            if due <= now:
                overdue_at = due + timedelta(minutes=1)
        person = rng.random() < 0.85
        if person:
            i, name = self.applicant()
            cid = citizen_id(i)
            id_hash: bytes | None = hmac.new(self.key, cid.encode(), hashlib.sha256).digest()
            last4: str | None = cid[-4:]
            kind = "person"
        else:
            name = f"Công ty TNHH {GIVEN[n % 22]} {FAMILY[n % 11]} {n % 997}"
            id_hash = last4 = None
            kind = "business"
        phone = f"09{rng.randrange(10**8):08d}"
        email = f"nguoi{n}@example.vn" if rng.random() < 0.2 else None
        online = rng.random() < 0.35
        # the timeline: created, then every status it went through
        steps: list[tuple[datetime, str | None, str, str]] = [
            (received, None, "received", "upsert")
        ]
        if status != "received":
            # before whatever came next
            nxt = min(t for t in (supplement_at, completed_at, closed_at, now) if t is not None)
            processing_at = min(received + timedelta(minutes=30 + rng.random() * 240), nxt)
            processing_at = received + (processing_at - received) / 2
            steps.append((processing_at, "received", "processing", "progress"))
        if supplement_at is not None and supplement_at <= now:
            steps.append((supplement_at, "processing", "supplement_requested", "progress"))
            if supplied_at <= now:  # type: ignore[operator]
                steps.append((supplied_at, "supplement_requested", "processing", "progress"))  # type: ignore[arg-type]
        if completed_at is not None:
            steps.append((completed_at, "processing", "completed", "progress"))
        if returned_at is not None:
            steps.append((returned_at, "completed", "returned", "progress"))
        if status in ("refused", "withdrawn"):
            steps.append((closed_at, "processing", status, "progress"))  # type: ignore[arg-type]
        steps.sort(key=lambda s: s[0])
        last_at = steps[-1][0]
        agency_id = agency["id"]
        events = [
            (
                dossier_id,
                agency_id,
                f"{code}:{k}",
                at,
                k,
                kind_,
                from_status,
                to_status,
                True,
                "Cán bộ một cửa" if k else None,
                "Tiếp nhận hồ sơ" if not k else None,
                at,
            )
            for k, (at, from_status, to_status, kind_) in enumerate(steps)
        ]
        self.events += len(events)
        row = (
            dossier_id,
            code,
            agency_id,
            procedure_code,
            procedure_name,
            None,
            name,
            kind,
            id_hash,
            last4,
            phone,
            email,
            f"{procedure_name} - {name}",
            agency["name"],
            online,
            status,
            received,
            due,
            completed_at,
            returned_at,
            closed_at,
            refused_reason,
            on_time,
            overdue_at,
            "[]",
            "[]",
            "Bộ phận một cửa" if status in ("completed", "returned") else None,
            last_at,
            len(steps) - 1,
            rating,
            rated_at,
            received,
            max(last_at, rated_at or last_at),
        )
        supplement_row = None
        if supplement is not None and supplement_at is not None and supplement_at <= now:
            supplement_row = (
                uuid.UUID(int=rng.getrandbits(128), version=4),
                dossier_id,
                f"{code}:supplement",
                supplement_at,
                "Bổ sung bản sao giấy tờ tùy thân có chứng thực",
                supplement_at + timedelta(days=5),
                supplement[0],
                supplement[1],
                supplied_at if supplied_at and supplied_at <= now else None,
            )
        return row, events, supplement_row


async def _ensure_agencies(conn: asyncpg.Connection) -> list[dict]:
    await conn.execute(
        """
        INSERT INTO agencies (id, code, name_vi, name_en, unit_id)
        SELECT gen_random_uuid(), $1 || u.code, u.name_vi, coalesce(u.name_en, u.name_vi), u.id
          FROM units u WHERE u.kind IN ('ward_committee', 'department')
        ON CONFLICT (code) DO NOTHING
        """,
        AGENCY_PREFIX,
    )
    rows = await conn.fetch(
        """
        SELECT a.id, a.code, a.name_vi, u.kind FROM agencies a JOIN units u ON u.id = a.unit_id
         WHERE a.code LIKE $1 ORDER BY a.code
        """,
        AGENCY_PREFIX + "%",
    )
    return [
        {"id": r["id"], "code": r["code"], "name": r["name_vi"], "city": r["kind"] == "department"}
        for r in rows
    ]


async def _drop_indexes(conn: asyncpg.Connection) -> list[str]:
    """Drop the dossier tables' indexes and constraints (except NOT NULL/CHECK), and the
    foreign keys pointing at ``dossiers``; returns the statements that rebuild them."""
    rebuild: list[str] = []
    constraints = await conn.fetch(
        """
        SELECT c.conname, c.conrelid::regclass::text AS tbl, pg_get_constraintdef(c.oid) AS def,
               c.contype::text AS contype
          FROM pg_constraint c
         WHERE c.contype IN ('p', 'u', 'f')
           AND (c.conrelid::regclass::text = ANY($1::text[])
                OR c.confrelid = 'dossiers'::regclass)
         ORDER BY c.contype <> 'f', c.conname
        """,
        list(TABLES),
    )
    for c in constraints:
        await conn.execute(f'ALTER TABLE {c["tbl"]} DROP CONSTRAINT "{c["conname"]}"')
    indexes = await conn.fetch(
        "SELECT indexname, indexdef FROM pg_indexes WHERE tablename = ANY($1::text[])",
        list(TABLES),
    )
    for i in indexes:
        await conn.execute(f'DROP INDEX "{i["indexname"]}"')
    # primary keys and unique constraints first, then indexes, then foreign keys
    rebuild += [
        f'ALTER TABLE {c["tbl"]} ADD CONSTRAINT "{c["conname"]}" {c["def"]}'
        for c in constraints
        if c["contype"] != "f"
    ]
    rebuild += [i["indexdef"] for i in indexes]
    rebuild += [
        f'ALTER TABLE {c["tbl"]} ADD CONSTRAINT "{c["conname"]}" {c["def"]}'
        for c in constraints
        if c["contype"] == "f"
    ]
    return rebuild


_worker: Generator | None = None


def _start_worker(now: datetime, agencies: list[dict], key: bytes) -> None:
    global _worker  # noqa: PLW0603 (one generator per worker process)
    _worker = Generator(random.Random(0), now, agencies, key)


def _chunk(job: tuple[int, int, int]) -> tuple[list, list, list]:
    """Rows for dossiers ``start`` .. ``end - 1``; the random stream is seeded per chunk,
    so the result does not depend on which process made it."""
    start, end, seed_value = job
    gen = _worker
    assert gen is not None
    gen.rng.seed(seed_value * 1_000_003 + start)
    rows, events, supplements = [], [], []
    for n in range(start, end):
        row, evs, sup = gen.dossier(n)
        rows.append(row)
        events.extend(evs)
        if sup is not None:
            supplements.append(sup)
    return rows, events, supplements


def _chunks(
    now: datetime, agencies: list[dict], key: bytes, count: int, seed_value: int
) -> Iterator[tuple[list, list, list]]:
    """Chunks made by one other process while this one copies the previous chunk."""
    jobs = [(s, min(count + 1, s + CHUNK), seed_value) for s in range(1, count + 1, CHUNK)]
    context = multiprocessing.get_context("spawn")
    with context.Pool(1, initializer=_start_worker, initargs=(now, agencies, key)) as pool:
        pending = [pool.apply_async(_chunk, (job,)) for job in jobs[:2]]
        for job in jobs[2:] + [None]:  # at most two chunks ahead (memory)
            result = pending.pop(0).get()
            if job is not None:
                pending.append(pool.apply_async(_chunk, (job,)))
            yield result
        for rest in pending:
            yield rest.get()


async def seed(url: str, count: int, reset: bool, seed_value: int) -> dict[str, Any]:
    settings = get_settings()
    dsn = make_url(url).set(drivername="postgresql").render_as_string(hide_password=False)
    conn = await asyncpg.connect(dsn)
    stats: dict[str, Any] = {}
    try:
        await conn.execute("SET synchronous_commit = off; SET maintenance_work_mem = '1GB'")
        async with conn.transaction():
            if reset:
                await conn.execute("TRUNCATE dossiers CASCADE")
            have = await conn.fetchval(
                "SELECT count(*) FROM dossiers WHERE code LIKE $1", CODE_PREFIX + "%"
            )
            if have:
                raise SystemExit(f"{have} bench dossiers are there already: --reset to redo")
            agencies = await _ensure_agencies(conn)
            now = datetime.now(UTC).replace(microsecond=0)
            key = settings.citizen_id_hash_key.encode()
            t0 = time.perf_counter()
            rebuild = await _drop_indexes(conn)
            supplements_total = events_total = 0
            for k, (rows, events, supplements) in enumerate(
                _chunks(now, agencies, key, count, seed_value)
            ):
                await conn.copy_records_to_table("dossiers", records=rows, columns=DOSSIER_COLUMNS)
                await conn.copy_records_to_table(
                    "dossier_events", records=events, columns=EVENT_COLUMNS
                )
                if supplements:
                    await conn.copy_records_to_table(
                        "dossier_supplements", records=supplements, columns=SUPPLEMENT_COLUMNS
                    )
                supplements_total += len(supplements)
                events_total += len(events)
                done = (k + 1) * CHUNK
                if done % 1_000_000 == 0 or done >= count:
                    print(
                        f"  {min(done, count):,} dossiers, {events_total:,} events "
                        f"({time.perf_counter() - t0:.0f} s)",
                        flush=True,
                    )
            t1 = time.perf_counter()
            for statement in rebuild:
                await conn.execute(statement)
            t2 = time.perf_counter()
        stats = {
            "agencies": len(agencies),
            "dossiers": count,
            "events": events_total,
            "supplements": supplements_total,
            "copy_s": round(t1 - t0, 1),
            "indexes_s": round(t2 - t1, 1),
        }
        t3 = time.perf_counter()
        await conn.execute("VACUUM (ANALYZE) dossiers, dossier_events, dossier_supplements")
        stats["vacuum_s"] = round(time.perf_counter() - t3, 1)
    finally:
        await conn.close()
    return stats


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(
        prog="python -m bench.seed_dossiers", description=__doc__.split("\n\n")[0]
    )
    ap.add_argument("--count", type=int, default=10_000_000, help="dossiers to write")
    ap.add_argument("--database-url", default=DEFAULT_URL)
    ap.add_argument("--reset", action="store_true", help="delete every dossier first")
    ap.add_argument("--seed", type=int, default=20261205, help="random seed (reproducible)")
    ap.add_argument("--no-setup", action="store_true", help="skip app.cli setup")
    args = ap.parse_args(argv)
    check_bench_database(args.database_url)
    if not args.no_setup:
        from bench.routing import setup_database

        setup_database(args.database_url)
    started = time.perf_counter()
    stats = asyncio.run(seed(args.database_url, args.count, args.reset, args.seed))
    print(stats)
    print(f"total {time.perf_counter() - started:.0f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
