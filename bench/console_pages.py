"""The web console's pages under load: a unit's queue and the report detail page.

    export UV_PYTHON_DOWNLOADS=never
    # seed city_bench_console, measure 3 rounds, EXPLAIN the pages' queries, drop it
    flock /tmp/bench.lock uv run python -m bench.console_pages run --explain --try-index
    # keep the database for more runs / profiling, then drop it yourself
    flock /tmp/bench.lock uv run python -m bench.console_pages run --keep
    flock /tmp/bench.lock uv run --with pyinstrument python -m bench.console_pages profile \\
        --path /console/queue
    uv run python -m bench.console_pages explain      # EXPLAIN (ANALYZE, BUFFERS) only
    uv run python -m bench.console_pages drop

Targets (issue 6): the queue page (``GET /console/queue``) of a unit with 10,000 open
items p95 < 150 ms server-side; the report page (``GET /console/reports/{id}``) p95 <
100 ms.

**Data** (``seed``, also run by ``run`` when the database lacks it): a dedicated database
(default ``city_bench_console``; the name must start with ``city_bench``), created and
migrated by ``python -m app.cli setup`` (Alembic to head, Hanoi's reference data) as the
other benches do, then in one transaction:

- ``--open`` (10,000) open reports of ONE ward committee (``--unit``, default
  ``ubnd-00070``, Hoàn Kiếm), points inside its ward: assigned 55 %, in progress 40 %,
  reopened 5 %; ``due_at`` uniform over [now − 3 days, now + 32 days] (so ~9 % are
  overdue, ``overdue_at`` set), reminders and escalation instants as routing sets them;
- ``--background`` (200,000) reports of every area (density as ``bench.seed_reports``:
  urban wards denser, falling off from the centre), status mix of that module over two
  years (open ones over the last 60 days), routed to their ward committee (80 %) or a
  city department / utility; none of them is an open item of the measured unit, which
  does own its share of the closed history;
- all inserted in one ``INSERT … SELECT`` ordered by ``created_at``, so a unit's open
  items are spread over the heap as in production (not one contiguous block);
- a timeline for every report (filed, routed, accepted; for the unit's items also an
  internal note on half and the overdue mark) and one or two photo rows for the unit's
  items (one for half of the rest): ~0.45 M events, ~0.12 M photos;
- 200 residents (the reporters) and one officer of the unit (``--email``, password
  ``bench.console_pages.PASSWORD``) created with ``accounts.service.create_staff``;
- ``VACUUM (ANALYZE)``.

**Measurement** (``run``): the framework floor (``bench.floor``) and the app
(``app.main:create_app``) are served by granian with the harness's flags
(``bench.run.GRANIAN_FLAGS``: one worker), both pinned to the last CPU, the load generator
to the others, as ``bench.run`` does. The officer signs in through the form (GET
``/console/login`` for the CSRF token and the pre-session cookie, POST the form, keep
the ``city_console`` cookie). Pages: the queue's first page, ``?overdue=true``, the 5th
page (the ``next`` link followed four times) and the detail pages of 100 different
reports of the unit (rotated). Every request sends the cookie and
``Accept-Encoding: gzip`` (what a browser sends; the app gzips responses ≥ 1 KiB).
Per round and page:

1. sequential: one keep-alive connection, ``--warmup-requests`` discarded, then
   ``--requests`` (500) requests; client latency p50/p95/p99, **server-side** latency
   from the app's JSON access log (``duration_ms``, from the request-id middleware to
   the last body byte handed to granian), server CPU µs per request;
2. open loop at each ``--rates`` (20 and 40 req/s; bench.loadgen's python engine, latency
   from when each request was due): latency at a given load, client and server-side;
3. wrk at each ``--connections`` (16 and 64), ``--duration`` s after ``--warmup`` s,
   interleaved with the same wrk load on ``/floor-db`` (alternating which runs first),
   like ``bench.run``: req/s, latency, ratio to the floor, server CPU µs/req; and the
   server-side durations of the app's requests from the log (queueing included).

Medians of ``--rounds`` (3). Everything goes to
``bench/results/console-pages-<timestamp>.json``, granian's output (the access log) to
``…-logs/``. ``--explain`` then serves the app in-process and prints EXPLAIN (ANALYZE,
BUFFERS) of every statement each page runs (captured from SQLAlchemy, run with the same
parameters); ``--try-index`` repeats those on ``reports`` with a suggested index, and a
keyset rewrite of the cursor condition with its index, each created in a transaction
that is rolled back. ``profile`` (needs ``uv run --with pyinstrument``) profiles N in-process
requests of one page. The database is dropped at the end of ``run`` unless ``--keep``.
"""

from __future__ import annotations

import argparse
import asyncio
import datetime as dt
import html
import http.client
import json
import math
import os
import re
import shutil
import statistics
import sys
import time
import uuid
from pathlib import Path
from urllib.parse import urlsplit

from sqlalchemy import text
from sqlalchemy.engine import make_url
from sqlalchemy.ext.asyncio import AsyncEngine, create_async_engine

from bench.routing import check_bench_database, drop_database, setup_database
from bench.seed_reports import CATEGORY_WEIGHTS, CENTRE, KIND_MIX, OPEN_STATUSES, STATUS_MIX

ROOT = Path(__file__).resolve().parent.parent
RESULTS = Path(__file__).resolve().parent / "results"
DEFAULT_DB = "postgresql+asyncpg://postgres@127.0.0.1:5432/city_bench_console"
NS = uuid.UUID("3b0e3c2a-6a4f-4d0e-9a57-c0a501e0be4c")  # uuid5 namespace of bench rows
N_RESIDENTS = 200
EMAIL = "bench-officer@city.test"
PASSWORD = "bench-console-password-2026"
TARGET_PREFIX = "CONS"  # + 7 digits: the measured unit's open items
BACKGROUND_PREFIX = "CBG"  # + 8 digits: everyone else (real codes are XXXX-XXXX)
TARGET_STATUSES = ("assigned",) * 11 + ("in_progress",) * 8 + ("reopened",)  # 55/40/5 %
DESCRIPTIONS = (
    "Ổ gà lớn giữa đường, xe máy dễ ngã khi trời mưa, đề nghị phường sớm vá lại mặt đường.",
    "Rác thải sinh hoạt tập kết sai giờ ở đầu ngõ, bốc mùi và tràn ra lòng đường.",
    "Đèn chiếu sáng công cộng trước số nhà này không sáng đã ba đêm liền.",
    "Cống thoát nước bị tắc, mỗi lần mưa to nước ngập đến bậc cửa các nhà trong ngõ.",
    "Công trình xây dựng để vật liệu lấn chiếm vỉa hè, người đi bộ phải xuống lòng đường.",
    "Cây xanh nghiêng sát đường dây điện, có nguy cơ đổ khi có gió lớn.",
)


def resident_ids() -> list[uuid.UUID]:
    return [uuid.uuid5(NS, f"resident-{i}") for i in range(N_RESIDENTS)]


def _expand(mix) -> list[str]:
    return [value for value, weight in mix for _ in range(weight)]


def med(xs) -> float:
    xs = [x for x in xs if x is not None and not (isinstance(x, float) and math.isnan(x))]
    return statistics.median(xs) if xs else float("nan")


def pct(sorted_values: list[float], p: float) -> float:
    """Nearest rank, as bench.loadgen."""
    if not sorted_values:
        return float("nan")
    k = max(0, min(len(sorted_values) - 1, math.ceil(p / 100 * len(sorted_values)) - 1))
    return sorted_values[k]


def fmt(x, digits: int = 0) -> str:
    if x is None or (isinstance(x, float) and math.isnan(x)):
        return "-"
    return f"{x:,.{digits}f}"


def no_nan(obj):
    if isinstance(obj, float) and math.isnan(obj):
        return None
    if isinstance(obj, dict):
        return {str(k): no_nan(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [no_nan(v) for v in obj]
    return obj


# ----------------------------------------------------------------------------- seeding

SEED_SQL = text(
    """
WITH p AS (
    SELECT CAST(:unit_id AS uuid) AS unit_id,
           CAST(:area AS text) AS area,
           CAST(:statuses AS text[]) AS statuses,
           CAST(:target_statuses AS text[]) AS target_statuses,
           CAST(:open_statuses AS text[]) AS open_statuses,
           CAST(:kinds AS text[]) AS kinds,
           CAST(:categories AS text[]) AS categories,
           CAST(:descriptions AS text[]) AS descriptions,
           CAST(:reporters AS uuid[]) AS reporters,
           CAST(:city_units AS uuid[]) AS city_units,
           ST_SetSRID(ST_MakePoint(CAST(:centre_lon AS float8), CAST(:centre_lat AS float8)),
                      4326)::geography AS centre
),
-- the measured unit's open items, inside its ward
t0 AS (
    SELECT d.geom AS location, p.area AS area_code, random() AS r_status, random() AS r_kind,
           random() AS r_cat, random() AS r_due, random() AS r_age, random() AS r_rep,
           random() AS r_desc, random() AS r_sup
      FROM p JOIN areas a ON a.code = p.area
     CROSS JOIN LATERAL ST_Dump(ST_GeneratePoints(a.geom, CAST(:open AS int),
                                                  CAST(:seed AS int))) d
),
t1 AS (
    SELECT t0.*, p.unit_id,
           p.target_statuses[1 + floor(r_status * cardinality(p.target_statuses))::int]
               AS status,
           now() + (r_due * 35 - 3) * interval '1 day' AS due
      FROM t0, p
),
target AS (
    SELECT 'T' AS src, location, area_code, status, unit_id, r_kind, r_cat, r_rep, r_desc,
           r_sup, due,
           least(due - (12 + 6 * r_age) * interval '1 day',
                 now() - (1 + 70 * r_age) * interval '1 hour') AS created,
           interval '4 days' AS escalate_after
      FROM t1
),
-- everyone else: points per area by surface x density, as bench.seed_reports
area_weights AS (
    SELECT a.code, a.geom,
           ST_Area(a.geom::geography) / 1e6
             * CASE WHEN a.kind = 'ward' THEN 1.0 ELSE 0.2 END
             * exp(-ST_Distance(ST_PointOnSurface(a.geom)::geography, p.centre) / 7000.0) AS w
      FROM areas a, p
),
shares AS (
    SELECT code, geom, floor(CAST(:background AS int) * w / sum(w) OVER ())::int AS base,
           row_number() OVER (ORDER BY w DESC) AS rank
      FROM area_weights
),
sized AS (
    SELECT code, geom,
           (base + CASE WHEN rank = 1 THEN CAST(:background AS int) - sum(base) OVER ()
                        ELSE 0 END)::int AS n
      FROM shares
),
b0 AS (
    SELECT s.code AS area_code, d.geom AS location, random() AS r_status, random() AS r_kind,
           random() AS r_cat, random() AS r_age, random() AS r_rep, random() AS r_desc,
           random() AS r_sup, random() AS r_unit, random() AS r_city, random() AS r_took
      FROM sized s
     CROSS JOIN LATERAL ST_Dump(ST_GeneratePoints(s.geom, s.n, CAST(:seed AS int) + 1)) d
     WHERE s.n > 0
),
b1 AS (
    SELECT b0.*, p.statuses[1 + floor(r_status * cardinality(p.statuses))::int] AS status
      FROM b0, p
),
b2 AS (
    SELECT b1.*,
           now() - CASE WHEN b1.status = ANY(p.open_statuses) THEN r_age * interval '60 days'
                        ELSE r_age * interval '730 days' END AS created,
           w.id AS ward_unit,
           p.city_units[1 + floor(r_city * cardinality(p.city_units))::int] AS city_unit,
           b1.status = ANY(p.open_statuses) AS is_open
      FROM b1 CROSS JOIN p
      LEFT JOIN units w ON w.kind = 'ward_committee' AND w.area_code = b1.area_code
),
background AS (
    SELECT 'B' AS src, location, area_code, status,
           CASE WHEN status = 'submitted' THEN NULL
                WHEN r_unit < 0.8 AND ward_unit IS NOT NULL
                     AND NOT (ward_unit = p.unit_id AND is_open) THEN ward_unit
                ELSE city_unit END AS unit_id,
           r_kind, r_cat, r_rep, r_desc, r_sup,
           CASE WHEN status = 'submitted' THEN NULL
                ELSE created + (10 + 10 * r_took) * interval '1 day' END AS due,
           created, interval '3 days' AS escalate_after
      FROM b2, p
),
all_rows AS (
    SELECT * FROM target UNION ALL SELECT * FROM background
),
numbered AS (
    SELECT r.*, row_number() OVER (PARTITION BY src ORDER BY created) AS n FROM all_rows r
)
INSERT INTO reports (id, code, kind, status, category_code, description, address_text, location,
                     area_code, reporter_id, hide_identity, unit_id, routed_at, due_at,
                     remind_at, reminded_at, overdue_at, escalate_at, escalated_at,
                     supporters_count, reopen_count, created_at, updated_at, resolved_at,
                     closed_at)
SELECT gen_random_uuid(),
       CASE WHEN x.src = 'T' THEN :target_prefix || lpad(x.n::text, 7, '0')
            ELSE :background_prefix || lpad(x.n::text, 8, '0') END,
       p.kinds[1 + floor(x.r_kind * cardinality(p.kinds))::int],
       x.status,
       p.categories[1 + floor(x.r_cat * cardinality(p.categories))::int],
       p.descriptions[1 + floor(x.r_desc * cardinality(p.descriptions))::int],
       'Số ' || (1 + floor(x.r_desc * 200))::int || ', phường ' || x.area_code,
       x.location, x.area_code,
       p.reporters[1 + floor(x.r_rep * cardinality(p.reporters))::int],
       x.r_sup < 0.1,
       x.unit_id,
       CASE WHEN x.unit_id IS NOT NULL THEN x.created + interval '1 minute' END,
       x.due,
       x.due - interval '60 hours',
       CASE WHEN x.due - interval '60 hours' <= now() THEN x.due - interval '60 hours' END,
       CASE WHEN x.due <= now() AND x.status = ANY(p.open_statuses) THEN x.due END,
       x.due + x.escalate_after,
       CASE WHEN x.src = 'B' AND x.due + x.escalate_after <= now()
                 AND x.status = ANY(p.open_statuses) THEN x.due + x.escalate_after END,
       floor(x.r_sup * x.r_sup * 12)::int,
       CASE WHEN x.status = 'reopened' THEN 1 ELSE 0 END,
       x.created,
       least(now(), x.created + interval '2 hours'),
       CASE WHEN x.status IN ('resolved', 'closed')
            THEN least(now(), x.created + x.r_cat * interval '15 days') END,
       CASE WHEN x.status = 'closed'
            THEN least(now(), x.created + x.r_cat * interval '20 days') END
  FROM numbered x, p
 ORDER BY x.created
"""
)

# the timeline, in time order (the table grows that way in production)
EVENTS_SQL = text(
    """
INSERT INTO report_events (report_id, at, kind, from_status, to_status, actor_id, actor_kind,
                           public, body, unit_id)
SELECT * FROM (
    SELECT id, created_at, 'transition', NULL, 'submitted', reporter_id, 'resident', true,
           NULL, CAST(NULL AS uuid)
      FROM reports
    UNION ALL
    SELECT id, routed_at, 'transition', 'submitted', 'assigned', NULL, 'system', true, NULL,
           unit_id
      FROM reports WHERE routed_at IS NOT NULL
    UNION ALL
    SELECT id, routed_at + interval '3 hours', 'transition', 'assigned', 'in_progress',
           CAST(:officer AS uuid), 'staff', true, NULL, NULL
      FROM reports
     WHERE routed_at IS NOT NULL AND status NOT IN ('assigned', 'submitted', 'rejected')
    UNION ALL
    SELECT id, routed_at + interval '5 hours', 'note', NULL, NULL, CAST(:officer AS uuid),
           'staff', false, 'Đã liên hệ tổ dân phố, hẹn kiểm tra hiện trường trong tuần.', NULL
      FROM reports WHERE code LIKE :target_like AND random() < 0.5
    UNION ALL
    SELECT id, overdue_at, 'overdue', NULL, NULL, NULL, 'system', true, NULL, unit_id
      FROM reports WHERE code LIKE :target_like AND overdue_at IS NOT NULL
) e
ORDER BY 2
"""
)

PHOTOS_SQL = text(
    """
INSERT INTO report_photos (id, owner_id, report_id, position, display_key, thumb_key, width,
                           height, source_format, sha256, taken_at, geotag, created_at)
SELECT gen_random_uuid(), r.reporter_id, r.id, g.pos,
       'photos/bench/' || r.id || '/' || g.pos || '/display.jpg',
       'photos/bench/' || r.id || '/' || g.pos || '/thumb.jpg',
       2048, 1536, 'jpeg', sha256(convert_to(r.id::text || g.pos, 'UTF8')),
       r.created_at - interval '10 minutes', r.location, r.created_at
  FROM reports r
 CROSS JOIN LATERAL generate_series(
       0, CASE WHEN r.code LIKE :target_like THEN (random() < 0.5)::int
               WHEN random() < 0.5 THEN 0 ELSE -1 END) AS g(pos)
 ORDER BY r.created_at
"""
)


async def seeded(engine: AsyncEngine) -> dict | None:
    async with engine.connect() as conn:
        exists = await conn.scalar(text("SELECT to_regclass('bench_console_state') IS NOT NULL"))
        if not exists:
            return None
        row = (await conn.execute(text("SELECT * FROM bench_console_state"))).mappings().first()
        return dict(row) if row else None


async def seed(args: argparse.Namespace) -> dict:
    """Create, migrate and load the database (idempotent), then the bench rows once."""
    from app.accounts import service as accounts
    from app.core import db

    t0 = time.perf_counter()
    setup_database(args.database_url)
    engine = create_async_engine(args.database_url)
    try:
        state = await seeded(engine)
        if state:
            if (state["unit_code"], state["open"], state["background"]) != (
                args.unit,
                args.open,
                args.background,
            ):
                raise SystemExit(
                    f"the database holds another seed ({state}); drop it first "
                    "(python -m bench.console_pages drop)"
                )
            print(f"== database already seeded: {state}", flush=True)
            return state
        async with engine.begin() as conn:
            unit = (
                await conn.execute(
                    text("SELECT id, area_code, kind FROM units WHERE code = :c"),
                    {"c": args.unit},
                )
            ).first()
            if unit is None or unit.kind != "ward_committee" or not unit.area_code:
                raise SystemExit(f"{args.unit} is not a ward committee with an area")
            city_units = list(
                await conn.scalars(
                    text(
                        "SELECT id FROM units WHERE kind IN ('department', 'utility') ORDER BY code"
                    )
                )
            )
            categories = list(
                await conn.scalars(text("SELECT code FROM categories WHERE active ORDER BY code"))
            )
            await conn.execute(
                text(
                    "INSERT INTO users (id, kind, identity_level) "
                    "SELECT id, 'resident', 1 FROM unnest(CAST(:ids AS uuid[])) AS id "
                    "ON CONFLICT (id) DO NOTHING"
                ),
                {"ids": resident_ids()},
            )
            await conn.execute(text("SELECT setseed(0.42)"))
            t1 = time.perf_counter()
            inserted = (
                await conn.execute(
                    SEED_SQL,
                    {
                        "unit_id": unit.id,
                        "area": unit.area_code,
                        "statuses": _expand(STATUS_MIX),
                        "target_statuses": list(TARGET_STATUSES),
                        "open_statuses": list(OPEN_STATUSES),
                        "kinds": _expand(KIND_MIX),
                        "categories": [
                            c for c in categories for _ in range(CATEGORY_WEIGHTS.get(c, 1))
                        ],
                        "descriptions": list(DESCRIPTIONS),
                        "reporters": resident_ids(),
                        "city_units": city_units,
                        "centre_lon": CENTRE[0],
                        "centre_lat": CENTRE[1],
                        "open": args.open,
                        "background": args.background,
                        "seed": 20261206,
                        "target_prefix": TARGET_PREFIX,
                        "background_prefix": BACKGROUND_PREFIX,
                    },
                )
            ).rowcount
            t2 = time.perf_counter()
        # the officer, through the accounts service (argon2id hash, staff_roles row)
        sessionmaker = db.make_sessionmaker(engine)
        async with sessionmaker() as session:
            officer = await accounts.create_staff(
                session, args.email, "Cán bộ thử tải", PASSWORD, [("officer", args.unit)]
            )
            officer_id = officer.id
            await session.commit()
        async with engine.begin() as conn:
            like = {"target_like": TARGET_PREFIX + "%"}
            events = (await conn.execute(EVENTS_SQL, {"officer": officer_id, **like})).rowcount
            photos = (await conn.execute(PHOTOS_SQL, like)).rowcount
            await conn.execute(
                text(
                    "CREATE TABLE bench_console_state (unit_code text, open int, background int, "
                    "reports int, events int, photos int, officer_id uuid, seeded_at timestamptz)"
                )
            )
            await conn.execute(
                text("INSERT INTO bench_console_state VALUES (:u, :o, :b, :r, :e, :p, :id, now())"),
                {
                    "u": args.unit,
                    "o": args.open,
                    "b": args.background,
                    "r": inserted,
                    "e": events,
                    "p": photos,
                    "id": officer_id,
                },
            )
        t3 = time.perf_counter()
        async with engine.connect() as conn:
            await conn.execution_options(isolation_level="AUTOCOMMIT")
            await conn.execute(text("VACUUM (ANALYZE)"))
            check = (
                await conn.execute(
                    text(
                        "SELECT count(*) FILTER (WHERE r.status IN "
                        "('submitted','assigned','in_progress','reopened')), "
                        "count(*) FILTER (WHERE r.overdue_at IS NOT NULL AND r.status IN "
                        "('submitted','assigned','in_progress','reopened')), count(*) "
                        "FROM reports r JOIN units u ON u.id = r.unit_id WHERE u.code = :c"
                    ),
                    {"c": args.unit},
                )
            ).one()
            sizes = (
                await conn.execute(
                    text(
                        "SELECT pg_size_pretty(pg_total_relation_size('reports')), "
                        "pg_size_pretty(pg_total_relation_size('report_events')), "
                        "pg_size_pretty(pg_database_size(current_database()))"
                    )
                )
            ).one()
        t4 = time.perf_counter()
        print(
            f"== seeded {inserted:,} reports in {t2 - t1:.1f} s, {events:,} events and "
            f"{photos:,} photos in {t3 - t2:.1f} s, VACUUM ANALYZE {t4 - t3:.1f} s "
            f"(total with setup {t4 - t0:.1f} s); unit {args.unit}: {check[0]:,} open "
            f"({check[1]:,} overdue), {check[2]:,} in all; sizes: reports {sizes[0]}, "
            f"events {sizes[1]}, database {sizes[2]}",
            flush=True,
        )
        return await seeded(engine) or {}
    finally:
        await engine.dispose()


# ----------------------------------------------------------------------------- the pages


def sign_in(base_url: str, email: str) -> str:
    """The officer signs in through the form; returns the ``city_console`` cookie value."""
    import httpx

    with httpx.Client(base_url=base_url, follow_redirects=False, timeout=30) as client:
        form = client.get("/console/login")
        form.raise_for_status()
        m = re.search(r'name="csrf" value="([^"]+)"', form.text)
        if not m:
            raise RuntimeError("no CSRF token on /console/login")
        pre = form.cookies.get("city_console_pre")
        if not pre:
            raise RuntimeError("no city_console_pre cookie from /console/login")
        done = client.post(
            "/console/login",
            data={"csrf": html.unescape(m.group(1)), "email": email, "password": PASSWORD,
                  "next": "/console/queue"},
            headers={"Cookie": f"city_console_pre={pre}"},
        )  # fmt: skip
        if done.status_code != 303:
            raise RuntimeError(f"sign-in answered {done.status_code}: {done.text[:500]}")
        for raw in done.headers.get_list("set-cookie"):
            name, _, rest = raw.partition("=")
            if name.strip() == "city_console":
                value = rest.split(";", 1)[0].strip().strip('"')
                if value:
                    return value
        raise RuntimeError("sign-in set no city_console cookie")


def next_link(page_html: str) -> str | None:
    hrefs = re.findall(r'href="(/console/queue\?[^"]*cursor=[^"]*)"', page_html)
    return html.unescape(hrefs[-1]) if hrefs else None


def discover(base_url: str, cookie: str, detail_ids: list[str]) -> dict[str, dict]:
    """The measured pages: name -> {"paths": [...], "prefix": access-log path prefix}."""
    import httpx

    headers = {"Cookie": f"city_console={cookie}"}
    with httpx.Client(base_url=base_url, headers=headers, timeout=60) as client:
        first = client.get("/console/queue")
        if first.status_code != 200 or "<table" not in first.text:
            raise RuntimeError(f"queue page: {first.status_code} {first.text[:300]}")
        link, pages = "/console/queue", 1
        page = first
        while pages < 5:
            link = next_link(page.text)
            if not link:
                raise RuntimeError(f"no next link on page {pages}")
            page = client.get(link)
            page.raise_for_status()
            pages += 1
        overdue = client.get("/console/queue?overdue=true")
        overdue.raise_for_status()
        detail = client.get(f"/console/reports/{detail_ids[0]}")
        if detail.status_code != 200:
            raise RuntimeError(f"report page: {detail.status_code} {detail.text[:300]}")
        rows = len(re.findall(r"<tr", first.text)) - 1
        print(
            f"   queue page: {len(first.content):,} bytes, {rows} rows; report page: "
            f"{len(detail.content):,} bytes; page 5 = {link[:60]}…",
            flush=True,
        )
    return {
        "queue_first": {"paths": ["/console/queue"], "prefix": "/console/queue"},
        "queue_overdue": {"paths": ["/console/queue?overdue=true"], "prefix": "/console/queue"},
        "queue_page5": {"paths": [link], "prefix": "/console/queue"},
        "report_detail": {
            "paths": [f"/console/reports/{i}" for i in detail_ids],
            "prefix": "/console/reports/",
        },
    }


async def pick_detail_ids(url: str, unit: str, n: int) -> list[str]:
    engine = create_async_engine(url)
    try:
        async with engine.connect() as conn:
            return [
                str(i)
                for i in await conn.scalars(
                    text(
                        "SELECT r.id FROM reports r JOIN units u ON u.id = r.unit_id "
                        "WHERE u.code = :c AND r.code LIKE :like ORDER BY md5(r.code) LIMIT :n"
                    ),
                    {"c": unit, "like": TARGET_PREFIX + "%", "n": n},
                )
            ]
    finally:
        await engine.dispose()


# ----------------------------------------------------------------------------- measuring


def git_state() -> dict:
    """The commit measured, and the files of the app changed in the work tree (the
    servers load the work tree)."""
    import subprocess

    def git(*a: str) -> str:
        out = subprocess.run(["git", *a], cwd=ROOT, capture_output=True, text=True, check=False)
        return out.stdout

    status = git("status", "--porcelain", "app", "migrations")
    dirty = [ln[3:] for ln in status.splitlines() if ln.strip()]
    return {"head": git("log", "-1", "--format=%h %s").strip()[:100], "dirty": dirty}


class AccessLog:
    """The app's JSON access log (granian's stdout): durations of the lines written
    between two offsets."""

    def __init__(self, path: Path):
        self.path = path

    def offset(self) -> int:
        try:
            return self.path.stat().st_size
        except OSError:
            return 0

    def durations(self, start: int, prefix: str, wait: float = 0.3) -> list[float]:
        time.sleep(wait)  # the last lines of the window
        out = []
        with open(self.path, "rb") as f:
            f.seek(start)
            for line in f:
                if b'"duration_ms"' not in line:
                    continue
                try:
                    rec = json.loads(line)
                except ValueError:
                    continue
                if rec.get("status") == 200 and str(rec.get("path", "")).startswith(prefix):
                    out.append(float(rec["duration_ms"]))
        return sorted(out)


def cpu_meter(server_pid: int, database: str | None):
    """bench.run's CpuMeter; with the PostgreSQL backends of the bench database counted
    apart (``db_cpu_s``) where the harness can do that."""
    from bench.run import CpuMeter

    try:
        return CpuMeter(server_pid, database)
    except TypeError:  # a harness without the database meter
        return CpuMeter(server_pid)


def per_req_us(seconds: float | None, n: int) -> float:
    if seconds is None or n <= 0 or (isinstance(seconds, float) and math.isnan(seconds)):
        return float("nan")
    return seconds / n * 1e6


def lat_summary(sorted_ms: list[float]) -> dict:
    return {
        "n": len(sorted_ms),
        "p50": pct(sorted_ms, 50),
        "p95": pct(sorted_ms, 95),
        "p99": pct(sorted_ms, 99),
        "max": sorted_ms[-1] if sorted_ms else float("nan"),
    }


def sequential(
    port: int, paths: list[str], headers: dict, n: int, warm: int, server_pid: int,
    log: AccessLog | None, prefix: str, database: str | None,
) -> dict:  # fmt: skip
    """One keep-alive connection, one request at a time."""
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=60)

    def get(path: str) -> int:
        conn.request("GET", path, headers=headers)
        resp = conn.getresponse()
        resp.read()
        return resp.status

    for i in range(warm):
        get(paths[i % len(paths)])
    start = log.offset() if log else 0
    lat, errors = [], 0
    with cpu_meter(server_pid, database) as meter:
        t_all = time.perf_counter()
        for i in range(n):
            t = time.perf_counter()
            status = get(paths[i % len(paths)])
            lat.append((time.perf_counter() - t) * 1000)
            errors += status != 200
        wall = time.perf_counter() - t_all
    conn.close()
    res = {
        "requests": n,
        "errors": errors,
        "rps": n / wall,
        "client_ms": lat_summary(sorted(lat)),
        "server_us_per_req": per_req_us(meter.result["server_cpu_s"], n),
        "db_us_per_req": per_req_us(meter.result.get("db_cpu_s"), n),
        "others_cores": meter.result["others_cores"],
    }
    if log:
        res["server_ms"] = lat_summary(log.durations(start, prefix))
    return res


def load_run(
    spec, engine: str, wrk_path, cpus, warmup: float, server_pid: int, log, prefix,
    database: str | None,
) -> dict:  # fmt: skip
    """One measured run (wrk: closed loop; python: open loop at spec.rate) after its
    own warmup, with the server's CPU and the server-side durations of the window."""
    from bench import loadgen

    if warmup > 0:
        loadgen.run_load(spec.with_(duration=warmup), engine=engine, wrk_path=wrk_path, cpus=cpus)
    start = log.offset() if log else 0
    with cpu_meter(server_pid, database) as meter:
        res = loadgen.run_load(spec, engine=engine, wrk_path=wrk_path, cpus=cpus)
    res["cpu"] = meter.result
    res["cpu"]["server_us_per_req"] = per_req_us(meter.result["server_cpu_s"], res["requests"])
    res["cpu"]["db_us_per_req"] = per_req_us(meter.result.get("db_cpu_s"), res["requests"])
    if log:
        res["server_ms"] = lat_summary(log.durations(start, prefix))
    return res


def measure(args: argparse.Namespace, state: dict) -> dict:
    from bench import loadgen
    from bench.loadgen import LoadSpec
    from bench.run import GRANIAN_FLAGS, Server, cpu_busy, cpu_model, version

    env = {
        "DATABASE_URL": args.database_url,
        "REDIS_URL": args.redis_url,
        "REDIS_PREFIX": args.redis_prefix,
        "LOG_LEVEL": "INFO",  # the access log is the server-side clock
        "PYTHONUNBUFFERED": "1",  # so the log lines reach the file as they happen
    }
    os.environ.update(env)  # granian (app and floor) inherits the environment

    cpus = sorted(os.sched_getaffinity(0))
    server_cpus = loadgen_cpus = None
    if not args.no_pin and shutil.which("taskset") and len(cpus) >= 2:
        server_cpus, loadgen_cpus = [cpus[-1]], cpus[:-1]
        pin_note = f"servers on CPU {server_cpus}, load generator on CPU {loadgen_cpus}"
    else:
        pin_note = "no pinning"
    wrk_threads = len(loadgen_cpus) if loadgen_cpus else 1
    wrk_path = loadgen.ensure_wrk(install=not args.no_install)
    if not wrk_path:
        raise SystemExit("wrk is needed (Debian package wrk)")

    stamp = dt.datetime.now().strftime("%Y%m%d-%H%M%S")
    RESULTS.mkdir(parents=True, exist_ok=True)
    log_dir = RESULTS / f"console-pages-{stamp}-logs"
    log_dir.mkdir(exist_ok=True)
    busy = cpu_busy(1.0)
    meta = {
        "started": dt.datetime.now().astimezone().isoformat(timespec="seconds"),
        "nproc": os.cpu_count(),
        "cpu_model": cpu_model(),
        "cpu_busy_before_pct": round(busy, 1),
        "loadavg": os.getloadavg(),
        "pinning": pin_note,
        "granian_flags": GRANIAN_FLAGS,
        "versions": {p: version(p) for p in ("litestar", "granian", "sqlalchemy", "jinja2")},
        "wrk": loadgen.wrk_version(wrk_path),
        "seed": {k: str(v) for k, v in state.items()},
        "args": {k: v for k, v in vars(args).items() if k != "func"},
        "git": git_state(),
    }
    print(
        f"== console pages {meta['started']}  nproc {meta['nproc']}  {meta['cpu_model']}\n"
        f"   {pin_note}; granian {' '.join(GRANIAN_FLAGS)}; {meta['wrk']}\n"
        f"   code: {meta['git']['head']}"
        + (f" + uncommitted {' '.join(meta['git']['dirty'])}" if meta["git"]["dirty"] else "")
        + "\n"
        f"   CPU busy before start: {busy:.0f}%  loadavg "
        + " ".join(f"{x:.2f}" for x in meta["loadavg"])
        + ("   <-- busy machine: expect noise" if busy > 15 else ""),
        flush=True,
    )

    detail_ids = asyncio.run(pick_detail_ids(args.database_url, args.unit, 100))
    database = make_url(args.database_url).database
    servers: list = []
    try:
        floor = Server(
            "floor", "bench.floor:app", factory=False, cpus=server_cpus, extra=[],
            ready_path="/floor", log_dir=log_dir,
        )  # fmt: skip
        servers.append(floor)
        floor.start()
        app = Server(
            "app", "app.main:create_app", factory=True, cpus=server_cpus, extra=[],
            ready_path="/health/live", log_dir=log_dir,
        )  # fmt: skip
        servers.append(app)
        app.start()
        meta["app_cmd"], meta["floor_cmd"] = app.cmd, floor.cmd
        print(f"   app: {' '.join(app.cmd)}", flush=True)
        log = AccessLog(app.log_path)
        cookie = sign_in(app.url, args.email)
        pages = discover(app.url, cookie, detail_ids)
        if loadgen_cpus:  # the sequential client runs here: keep it off the servers' CPU
            os.sched_setaffinity(0, loadgen_cpus)
        headers = {"Cookie": f"city_console={cookie}", "Accept-Encoding": "gzip"}
        port = urlsplit(app.url).port
        floor_port = urlsplit(floor.url).port

        rounds: list[dict] = []
        for rnd in range(args.rounds):
            this: dict = {"round": rnd + 1, "pages": {}, "floor_seq": None}
            this["floor_seq"] = sequential(
                floor_port, ["/floor-db"], {}, args.requests, args.warmup_requests,
                floor.proc.pid, None, "", database,
            )  # fmt: skip
            fs = this["floor_seq"]["client_ms"]
            print(
                f"round {rnd + 1}/{args.rounds} floor-db sequential p50/p95/p99 "
                f"{fs['p50']:.2f}/{fs['p95']:.2f}/{fs['p99']:.2f} ms",
                flush=True,
            )
            for i, (name, page) in enumerate(pages.items()):
                res: dict = {}
                res["sequential"] = sequential(
                    port, page["paths"], headers, args.requests, args.warmup_requests,
                    app.proc.pid, log, page["prefix"], database,
                )  # fmt: skip
                s = res["sequential"]
                print(
                    f"round {rnd + 1}/{args.rounds} {name:<14} sequential: client p50/p95/p99 "
                    f"{s['client_ms']['p50']:.1f}/{s['client_ms']['p95']:.1f}/"
                    f"{s['client_ms']['p99']:.1f} ms, server {s['server_ms']['p50']:.1f}/"
                    f"{s['server_ms']['p95']:.1f}/{s['server_ms']['p99']:.1f} ms "
                    f"(n={s['server_ms']['n']}), CPU µs/req app {s['server_us_per_req']:,.0f} "
                    f"PostgreSQL {fmt(s['db_us_per_req'])}, errors {s['errors']}",
                    flush=True,
                )
                many = len(page["paths"]) > 1
                page_spec = LoadSpec(
                    url=app.url,
                    path="/console/reports/{{rid}}" if many else page["paths"][0],
                    headers=headers,
                    values={"rid": detail_ids} if many else {},
                    duration=args.duration,
                    timeout=30.0,
                    threads=wrk_threads,
                    expect=[200],
                )
                for rate in args.rates:
                    # open loop: latency at a given load, from when each request was due
                    r = load_run(
                        page_spec.with_(rate=rate, concurrency=64), "python", wrk_path,
                        loadgen_cpus, args.warmup, app.proc.pid, log, page["prefix"], database,
                    )  # fmt: skip
                    res[f"r{rate:g}"] = r
                    print(
                        f"round {rnd + 1}/{args.rounds} {name:<14} {rate:g}/s fixed: "
                        f"{r['ok_rps']:,.1f} req/s p50/p95/p99 {r['latency_ms']['p50']:.1f}/"
                        f"{r['latency_ms']['p95']:.1f}/{r['latency_ms']['p99']:.1f} ms "
                        f"(server p95 {r['server_ms']['p95']:.1f}), err {r['error_count']}, "
                        f"generator lag p99 {r.get('sched_lag_ms_p99', 0):.1f} ms",
                        flush=True,
                    )
                for c in args.connections:
                    spec = page_spec.with_(concurrency=c)
                    floor_spec = LoadSpec(
                        url=floor.url, path="/floor-db", concurrency=c, duration=args.duration,
                        timeout=30.0, threads=wrk_threads, force_dynamic=spec.dynamic,
                    )  # fmt: skip
                    order = [("floor", floor_spec), ("page", spec)]
                    if (rnd + i) % 2:
                        order.reverse()
                    got = {}
                    for kind, sp in order:
                        srv = floor if kind == "floor" else app
                        got[kind] = load_run(
                            sp, "wrk", wrk_path, loadgen_cpus, args.warmup, srv.proc.pid,
                            log if kind == "page" else None, page["prefix"], database,
                        )  # fmt: skip
                        for s_ in servers:
                            if not s_.alive():
                                raise RuntimeError(f"{s_.name} died:\n{s_.log_tail()}")
                    res[f"c{c}"] = got
                    p, f = got["page"], got["floor"]
                    print(
                        f"round {rnd + 1}/{args.rounds} {name:<14} c{c:<3} {p['ok_rps']:7,.0f} "
                        f"req/s p50/p95/p99 {p['latency_ms']['p50']:.0f}/"
                        f"{p['latency_ms']['p95']:.0f}/{p['latency_ms']['p99']:.0f} ms "
                        f"(server p95 {p['server_ms']['p95']:.0f}), CPU µs/req app "
                        f"{p['cpu']['server_us_per_req']:,.0f} PostgreSQL "
                        f"{fmt(p['cpu']['db_us_per_req'])}, err {p['error_count']} "
                        f"| floor-db {f['ok_rps']:7,.0f} req/s "
                        f"p99 {f['latency_ms']['p99']:.1f} ms, "
                        f"{f['cpu']['server_us_per_req']:,.0f} µs/req; others "
                        f"{p['cpu']['others_cores']:.2f} cores",
                        flush=True,
                    )
                this["pages"][name] = res
            rounds.append(this)
    finally:
        for s_ in reversed(servers):
            s_.stop()

    summary = summarize(rounds, list(pages), args.connections, args.rates)
    meta["finished"] = dt.datetime.now().astimezone().isoformat(timespec="seconds")
    meta["cpu_busy_after_pct"] = round(cpu_busy(0.5), 1)
    out = RESULTS / f"console-pages-{stamp}.json"
    out.write_text(
        json.dumps(no_nan({"meta": meta, "summary": summary, "rounds": rounds}), indent=2,
                   default=str)
    )  # fmt: skip
    print_summary(summary, args)
    print(f"\nresults: {out.relative_to(ROOT)}   logs: {log_dir.relative_to(ROOT)}")
    return summary


def summarize(
    rounds: list[dict], names: list[str], connections: list[int], rates: list[float]
) -> dict:
    out: dict = {
        "floor_seq_ms": {
            k: med(r["floor_seq"]["client_ms"][k] for r in rounds) for k in ("p50", "p95", "p99")
        }
    }
    for name in names:
        per = [r["pages"][name] for r in rounds]
        row: dict = {
            "seq_client_ms": {
                k: med(p["sequential"]["client_ms"][k] for p in per)
                for k in ("p50", "p95", "p99", "max")
            },
            "seq_server_ms": {
                k: med(p["sequential"]["server_ms"][k] for p in per)
                for k in ("p50", "p95", "p99", "max")
            },
            "seq_us_per_req": med(p["sequential"]["server_us_per_req"] for p in per),
            "seq_db_us_per_req": med(p["sequential"].get("db_us_per_req") for p in per),
            "seq_errors": sum(p["sequential"]["errors"] for p in per),
        }
        for c in connections:
            pages = [p[f"c{c}"]["page"] for p in per]
            floors = [p[f"c{c}"]["floor"] for p in per]
            rps = [x["ok_rps"] for x in pages]
            frps = med(x["ok_rps"] for x in floors)
            row[f"c{c}"] = {
                "rps": med(rps),
                "rps_spread_pct": 100 * (max(rps) - min(rps)) / med(rps) if med(rps) else 0,
                "floor_rps": frps,
                "ratio": med(rps) / frps if frps else float("nan"),
                "ratio_per_round": [
                    a["ok_rps"] / b["ok_rps"] if b["ok_rps"] else float("nan")
                    for a, b in zip(pages, floors, strict=True)
                ],
                "ms": {k: med(x["latency_ms"][k] for x in pages) for k in ("p50", "p95", "p99")},
                "server_ms": {k: med(x["server_ms"][k] for x in pages) for k in ("p50", "p95")},
                "floor_p99_ms": med(x["latency_ms"]["p99"] for x in floors),
                "us_per_req": med(x["cpu"]["server_us_per_req"] for x in pages),
                "floor_us_per_req": med(x["cpu"]["server_us_per_req"] for x in floors),
                "db_us_per_req": med(x["cpu"].get("db_us_per_req") for x in pages),
                "floor_db_us_per_req": med(x["cpu"].get("db_us_per_req") for x in floors),
                "others_cores": med(x["cpu"]["others_cores"] for x in pages),
                "errors": sum(x["error_count"] for x in pages),
            }
        for rate in rates:
            runs = [p[f"r{rate:g}"] for p in per]
            row[f"r{rate:g}"] = {
                "rps": med(x["ok_rps"] for x in runs),
                "ms": {k: med(x["latency_ms"][k] for x in runs) for k in ("p50", "p95", "p99")},
                "server_ms": {
                    k: med(x["server_ms"][k] for x in runs) for k in ("p50", "p95", "p99")
                },
                "lag_ms_p99": med(x.get("sched_lag_ms_p99") for x in runs),
                "errors": sum(x["error_count"] for x in runs),
            }
        out[name] = row
    return out


TARGETS = {"queue_first": 150, "queue_overdue": 150, "queue_page5": 150, "report_detail": 100}


def print_summary(summary: dict, args: argparse.Namespace) -> None:
    fs = summary["floor_seq_ms"]
    print(
        f"\nMedians of {args.rounds} rounds. floor-db sequential p50/p95/p99 "
        f"{fs['p50']:.2f}/{fs['p95']:.2f}/{fs['p99']:.2f} ms"
    )
    print(
        "\n| page | sequential client p50 / p95 / p99 ms | **server-side** p50 / p95 / p99 ms "
        "| CPU µs/req app / PostgreSQL | target p95 | met |"
    )
    print("| --- | ---: | ---: | ---: | ---: | --- |")
    for name, target in TARGETS.items():
        row = summary[name]
        c, s = row["seq_client_ms"], row["seq_server_ms"]
        print(
            f"| `{name}` | {fmt(c['p50'], 1)} / {fmt(c['p95'], 1)} / {fmt(c['p99'], 1)} | "
            f"{fmt(s['p50'], 1)} / **{fmt(s['p95'], 1)}** / {fmt(s['p99'], 1)} | "
            f"{fmt(row['seq_us_per_req'])} / {fmt(row['seq_db_us_per_req'])} | < {target} | "
            f"{'yes' if s['p95'] < target else 'NO'} |"
        )
    if args.rates:
        print(
            "\n| page | fixed rate | client p50 / p95 / p99 ms | **server-side** p50 / p95 / "
            "p99 ms | target p95 | met |"
        )
        print("| --- | ---: | ---: | ---: | ---: | --- |")
        for name, target in TARGETS.items():
            for rate in args.rates:
                w = summary[name][f"r{rate:g}"]
                c, s = w["ms"], w["server_ms"]
                print(
                    f"| `{name}` | {rate:g}/s | {fmt(c['p50'], 1)} / {fmt(c['p95'], 1)} / "
                    f"{fmt(c['p99'], 1)} | {fmt(s['p50'], 1)} / **{fmt(s['p95'], 1)}** / "
                    f"{fmt(s['p99'], 1)} | < {target} | {'yes' if s['p95'] < target else 'NO'} |"
                    + (f" errors {w['errors']}" if w["errors"] else "")
                )
    print(
        "\n| page | conn | req/s (±%) | floor-db req/s | ratio | p50 / p95 / p99 ms | "
        "server-side p50 / p95 ms | CPU µs/req app (floor) | PostgreSQL µs/req | others cores |"
    )
    print("| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |")
    for name in TARGETS:
        for c in args.connections:
            w = summary[name][f"c{c}"]
            print(
                f"| `{name}` | {c} | {fmt(w['rps'])} (±{fmt(w['rps_spread_pct'])}) | "
                f"{fmt(w['floor_rps'])} | {fmt(w['ratio'], 3)} | {fmt(w['ms']['p50'])} / "
                f"{fmt(w['ms']['p95'])} / {fmt(w['ms']['p99'])} | {fmt(w['server_ms']['p50'])} / "
                f"{fmt(w['server_ms']['p95'])} | {fmt(w['us_per_req'])} "
                f"({fmt(w['floor_us_per_req'])}) | {fmt(w['db_us_per_req'])} | "
                f"{fmt(w['others_cores'], 2)} |" + (f" errors {w['errors']}" if w["errors"] else "")
            )
    print(
        "\nserver-side = duration_ms of the app's access log (RequestIdMiddleware: whole "
        "request in the app,\nqueueing in the event loop included); CPU µs/req = process "
        "CPU time per response (bench.run.CpuMeter);\nPostgreSQL = the backends connected "
        "to the bench database (when the harness meters them)."
    )


# ----------------------------------------------------------------------------- in process


async def in_process(args: argparse.Namespace):
    """The app with its lifespan, served in this process over httpx's ASGI transport
    (as tests/conftest.py does), and the officer's cookie."""
    import contextlib

    import httpx

    os.environ.update(
        DATABASE_URL=args.database_url, REDIS_URL=args.redis_url, REDIS_PREFIX=args.redis_prefix,
        LOG_LEVEL="WARNING",
    )  # fmt: skip
    from app.main import create_app
    from app.settings import get_settings

    get_settings.cache_clear()  # the environment above, whatever was read before
    application = create_app()
    stack = contextlib.AsyncExitStack()
    await stack.enter_async_context(application.lifespan())
    client = await stack.enter_async_context(
        httpx.AsyncClient(
            transport=httpx.ASGITransport(app=application), base_url="http://bench.local"
        )
    )
    form = await client.get("/console/login")
    csrf = re.search(r'name="csrf" value="([^"]+)"', form.text).group(1)
    done = await client.post(
        "/console/login",
        data={"csrf": html.unescape(csrf), "email": args.email, "password": PASSWORD},
        headers={"Cookie": f"city_console_pre={form.cookies.get('city_console_pre')}"},
    )
    if done.status_code != 303:
        raise RuntimeError(f"sign-in: {done.status_code}")
    cookie = done.cookies.get("city_console")
    return application, client, {"Cookie": f"city_console={cookie}"}, stack


# --try-index: indexes created for one EXPLAIN in a transaction that is rolled back (a
# suggestion to measure, not a migration). 1: what the queue's statements as written can
# use; 2: with a keyset on coalesce(due_at, 'infinity') (KEYSET_PAGE, a rewrite of the
# cursor condition, since the OR of the current one is no index condition).
OPEN_SQL = "status IN ('submitted', 'assigned', 'in_progress', 'reopened')"
TRY_INDEXES = (
    f"CREATE INDEX bench_try_queue ON reports (unit_id, due_at, id) "
    f"INCLUDE (status, overdue_at) WHERE {OPEN_SQL}",
    f"CREATE INDEX bench_try_queue_keyset ON reports "
    f"(unit_id, (coalesce(due_at, 'infinity'::timestamptz)), id) "
    f"INCLUDE (status, overdue_at, due_at) WHERE {OPEN_SQL}",
)
KEYSET_PAGE = f"""
SELECT r.*, u.code FROM reports r LEFT JOIN units u ON u.id = r.unit_id
 WHERE r.{OPEN_SQL} AND r.unit_id = $1
   AND (coalesce(r.due_at, 'infinity'::timestamptz), r.id) > ($2, $3)
 ORDER BY coalesce(r.due_at, 'infinity'::timestamptz), r.id LIMIT 51
"""


async def explain(args: argparse.Namespace) -> None:
    """EXPLAIN (ANALYZE, BUFFERS) of every statement the pages run; with --try-index,
    the statements on ``reports`` again with the suggested indexes (rolled back)."""
    from sqlalchemy import event

    application, client, headers, stack = await in_process(args)
    try:
        detail_id = (await pick_detail_ids(args.database_url, args.unit, 1))[0]
        first = await client.get("/console/queue", headers=headers)
        link = "/console/queue"
        page = first
        for _ in range(4):
            link = next_link(page.text)
            page = await client.get(link, headers=headers)
        paths = {
            "queue_first": "/console/queue",
            "queue_overdue": "/console/queue?overdue=true",
            "queue_page5": link,
            "report_detail": f"/console/reports/{detail_id}",
        }
        captured: list[tuple[str, object]] = []

        def grab(conn, cursor, statement, parameters, context, executemany):
            captured.append((statement, parameters))

        engine: AsyncEngine = application.state.engine

        async def plan_of(conn, statement: str, params, index: str | None = None) -> list[str]:
            if index:
                await conn.exec_driver_sql(index)
                await conn.exec_driver_sql("ANALYZE reports")
            rows = await conn.exec_driver_sql("EXPLAIN (ANALYZE, BUFFERS) " + statement, params)
            lines = [r[0] for r in rows]
            await conn.rollback()
            return lines

        for name, path in paths.items():
            await client.get(path, headers=headers)  # warm
            captured.clear()
            event.listen(engine.sync_engine, "before_cursor_execute", grab)
            t = time.perf_counter()
            resp = await client.get(path, headers=headers)
            took = (time.perf_counter() - t) * 1000
            event.remove(engine.sync_engine, "before_cursor_execute", grab)
            print(f"\n######## {name}: GET {path[:90]} -> {resp.status_code} in {took:.1f} ms "
                  f"in process; {len(captured)} statements")  # fmt: skip
            async with engine.connect() as conn:
                for n, (statement, params) in enumerate(list(captured), 1):
                    if not statement.lstrip().upper().startswith("SELECT"):
                        print(f"\n-- [{n}] (not a SELECT) {statement[:200]}")
                        continue
                    lines = await plan_of(conn, statement, params)
                    short = " ".join(statement.split())
                    print(f"\n-- [{n}] {short[:600]}{'…' if len(short) > 600 else ''}")
                    print(f"-- params: {str(params)[:300]}")
                    print("\n".join("   " + ln for ln in lines))
                    if args.try_index and "FROM reports" in statement and "unit_id" in statement:
                        tried = await plan_of(conn, statement, params, TRY_INDEXES[0])
                        print(f"-- with {TRY_INDEXES[0]}:")
                        print("\n".join("   " + ln for ln in tried))
                if args.try_index and name == "queue_page5":
                    from app.console.service import _decode

                    due, last_id = _decode(link.split("cursor=", 1)[1].split("&")[0])
                    unit_id = await conn.scalar(
                        text("SELECT id FROM units WHERE code = :c"), {"c": args.unit}
                    )
                    await conn.rollback()
                    for index in (None, TRY_INDEXES[1]):
                        lines = await plan_of(conn, KEYSET_PAGE, (unit_id, due, last_id), index)
                        print(f"\n-- keyset rewrite of page 5{' with ' + index if index else ''}:")
                        print(" ".join(KEYSET_PAGE.split()))
                        print("\n".join("   " + ln for ln in lines))
                await conn.rollback()
    finally:
        await stack.aclose()


async def profile(args: argparse.Namespace) -> None:
    try:
        from pyinstrument import Profiler
    except ImportError as exc:
        raise SystemExit("run with: uv run --with pyinstrument python -m bench.console_pages "
                         "profile") from exc  # fmt: skip
    application, client, headers, stack = await in_process(args)
    headers = {**headers, "Accept-Encoding": "gzip"}
    try:
        path = args.path
        if "{id}" in path:
            path = path.replace("{id}", (await pick_detail_ids(args.database_url, args.unit, 1))[0])
        for _ in range(20):
            await client.get(path, headers=headers)
        lat = []
        profiler = Profiler(interval=0.0005, async_mode="enabled")
        profiler.start()
        for _ in range(args.requests):
            t = time.perf_counter()
            r = await client.get(path, headers=headers)
            lat.append((time.perf_counter() - t) * 1000)
            if r.status_code != 200:
                raise RuntimeError(f"{path}: {r.status_code}")
        profiler.stop()
        lat.sort()
        print(
            f"GET {path}: {args.requests} requests in process, p50 {pct(lat, 50):.1f} ms, "
            f"p95 {pct(lat, 95):.1f} ms"
        )
        print(profiler.output_text(unicode=True, color=False, show_all=False))
        RESULTS.mkdir(parents=True, exist_ok=True)
        stamp = dt.datetime.now().strftime("%Y%m%d-%H%M%S")
        out = RESULTS / f"console-pages-profile-{stamp}.html"
        out.write_text(profiler.output_html())
        print(f"profile: {out.relative_to(ROOT)}")
    finally:
        await stack.aclose()


# ----------------------------------------------------------------------------- main


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(
        prog="python -m bench.console_pages", description=__doc__.split("\n\n")[0]
    )
    ap.add_argument("command", choices=("run", "seed", "explain", "profile", "drop"))
    ap.add_argument(
        "--database-url",
        default=os.environ.get("BENCH_CONSOLE_DATABASE_URL", DEFAULT_DB),
        help="a bench database (default: %(default)s)",
    )
    ap.add_argument("--redis-url", default=os.environ.get("REDIS_URL", "redis://127.0.0.1:6379/0"))
    ap.add_argument("--redis-prefix", default="bench-console")
    ap.add_argument("--unit", default="ubnd-00070", help="the ward committee measured")
    ap.add_argument("--email", default=EMAIL, help="the officer's email")
    ap.add_argument("--open", type=int, default=10_000, help="open items of the unit")
    ap.add_argument("--background", type=int, default=200_000, help="reports of everyone")
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--requests", type=int, default=500, help="sequential requests per page")
    ap.add_argument("--warmup-requests", type=int, default=50)
    ap.add_argument(
        "--connections",
        type=lambda s: [int(x) for x in s.split(",")],
        default=[16, 64],
        help="wrk connections, comma-separated (default: 16,64)",
    )
    ap.add_argument(
        "--rates",
        type=lambda s: [float(x) for x in s.split(",") if x.strip()],
        default=[20.0, 40.0],
        help="fixed arrival rates (req/s, open loop) per page, comma-separated; '' for none "
        "(default: 20,40)",
    )
    ap.add_argument("--duration", type=float, default=10.0, help="seconds per load run")
    ap.add_argument("--warmup", type=float, default=1.0, help="seconds of wrk warmup per run")
    ap.add_argument("--explain", action="store_true", help="run: EXPLAIN the pages' queries too")
    ap.add_argument(
        "--try-index",
        action="store_true",
        help="explain: also with the suggested indexes (created in a rolled-back transaction)",
    )
    ap.add_argument("--keep", action="store_true", help="run: keep the database at the end")
    ap.add_argument("--no-pin", action="store_true")
    ap.add_argument("--no-install", action="store_true", help="never apt-get install wrk")
    ap.add_argument(
        "--path",
        default="/console/queue",
        help="profile: the page ({id} = a report of the unit)",
    )
    args = ap.parse_args(argv)
    check_bench_database(args.database_url)
    if args.command == "drop":
        asyncio.run(drop_database(args.database_url))
        print(f"dropped database {make_url(args.database_url).database}")
        return 0
    if args.command == "seed":
        asyncio.run(seed(args))
        return 0
    if args.command == "explain":
        asyncio.run(explain(args))
        return 0
    if args.command == "profile":
        asyncio.run(profile(args))
        return 0
    try:
        state = asyncio.run(seed(args))
        measure(args, state)
        if args.explain:
            asyncio.run(explain(args))
    finally:
        if not args.keep:
            asyncio.run(drop_database(args.database_url))
            print(f"dropped database {make_url(args.database_url).database}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
