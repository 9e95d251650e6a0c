"""The named benchmark scenarios ``bench.run`` measures, in order.

A scenario is one request shape held at one load. Each is measured against a floor
(``floor`` = a trivial Litestar handler, ``floor-db`` = the same plus one asyncpg
``SELECT 1``) under the *same* load, round after round, and reported as a ratio to it.
Pick ``floor="floor-db"`` for anything that touches Postgres.

Request templates: ``{{name}}`` in ``path``, a header value or ``body`` is replaced per
request. Built in: ``{{seq}}`` (unique in the whole harness run), ``{{phone}}``
(``+849`` + 8 digits from seq, unique), ``{{phone_local}}`` (``09...``), ``{{rand}}``,
``{{uuid}}``. Any other name must come from ``values`` or from what ``setup`` returns:
a list per name, used round-robin by seq (e.g. one bearer token per test user).

``setup(base_url)`` runs once against the target before the first round (sync or
async) and returns ``{name: [value, ...]}``; use it to sign in test users, create
fixtures, etc. It is not timed.

Load: ``concurrency`` connections as fast as the server answers (closed loop, wrk),
or, with ``rate``, that many requests *started* per second whatever the server does
(open loop, asyncio engine; latency counts from when each request was due).
``duration``/``concurrency`` left as None take the command line defaults.
"""

from __future__ import annotations

import os
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field

Values = dict[str, list[str]]
Setup = Callable[[str], Values | Awaitable[Values]]

FLOOR_PATHS = {
    "floor": "/floor",
    "floor-db": "/floor-db",
    # the same query as the scenario, asyncpg + msgspec and nothing else (bench/floor.py)
    "floor-categories": "/floor/categories",
    "floor-units": "/floor/units",
    # read paths (issue 18 item 9): the same templates as their scenarios
    "floor-me": "/floor/me",
    "floor-reports-mine": "/floor/reports/mine",
    "floor-report-detail": "/floor/reports/{{report_id}}",
    "floor-notifications": "/floor/notifications",
    "floor-area-lookup": "/floor/areas/lookup?lat={{lat}}&lon={{lon}}",
    "floor-feed-city": "/floor/feed?bbox=105.28,20.56,106.03,21.39&zoom=11",
    "floor-feed-street": "/floor/feed?bbox={{bbox}}&zoom=17",
}


@dataclass(frozen=True)
class Scenario:
    name: str
    path: str
    method: str = "GET"
    headers: Mapping[str, str] = field(default_factory=dict)
    body: str | None = None  # template; Content-Type defaults to application/json
    values: Mapping[str, list[str]] = field(default_factory=dict)
    setup: Setup | None = None
    concurrency: int | None = None  # None: --concurrency
    duration: float | None = None  # None: --duration (seconds)
    rate: float | None = None  # requests/s, open loop; None: closed loop
    floor: str = "floor"  # a key of FLOOR_PATHS
    expect: str = "200-299"  # statuses that count as success, e.g. "202" or "200,404"
    description: str = ""

    def __post_init__(self) -> None:
        if self.floor not in FLOOR_PATHS:
            raise ValueError(f"{self.name}: floor must be one of {sorted(FLOOR_PATHS)}")


# ----------------------------------------------------------------------------- helpers


def values_from_env(name: str, env: str) -> Setup:
    """A setup that reads ``name``'s values from a file named by an environment variable
    (one value a line), e.g. ``BENCH_TOKENS=/tmp/tokens.txt`` for bearer tokens."""

    def setup(base_url: str) -> Values:
        path = os.environ.get(env)
        if not path:
            raise RuntimeError(f"set {env} to a file with one {name} per line")
        with open(path) as f:
            items = [ln.strip() for ln in f if ln.strip()]
        if not items:
            raise RuntimeError(f"{path} has no {name} values")
        return {name: items}

    return setup


# ----------------------------------------------------------------------------- the app


async def _bench_residents(n: int):
    """n resident rows straight in the app's database, with their access tokens."""
    import uuid

    from sqlalchemy import insert

    from app.accounts.models import User
    from app.core import db
    from app.core.auth import Principal, issue_access_token
    from app.settings import get_settings

    settings = get_settings()
    ids = [uuid.uuid4() for _ in range(n)]
    engine = db.make_engine(settings)
    async with engine.begin() as conn:
        await conn.execute(
            insert(User), [{"id": i, "kind": "resident", "identity_level": 1} for i in ids]
        )
    await engine.dispose()
    tokens = [
        issue_access_token(
            settings, Principal(user_id=i, kind="resident", identity_level=1, sid=uuid.uuid4())
        )
        for i in ids
    ]
    return settings, ids, tokens


async def residents_with_uploaded_photos(base_url: str) -> Values:
    """For the filing benchmark: residents and, per request, two photos "already
    uploaded" (rows pointing at one real pair of stored renditions; the photo pipeline
    is measured on its own by bench.photo_pipeline). One request per (token, photo pair);
    ten pairs per resident (``BENCH_FILINGS`` pairs in all, default 40,000), as a busy
    resident might have, not hundreds each: the claim must not look like it walks a
    resident's other photos. ``ANALYZE`` afterwards, as autovacuum would do within a
    minute in a deployment (it is off on the bench machine)."""
    import uuid
    from datetime import UTC, datetime, timedelta

    from sqlalchemy import insert, text

    from app.complaints.models import ReportPhoto
    from app.core import db

    pairs = int(os.environ.get("BENCH_FILINGS", "40000"))
    settings, ids, tokens = await _bench_residents(max(50, pairs // 10))
    expires = datetime.now(UTC) + timedelta(hours=23)
    rows, token_values, photo_a, photo_b = [], [], [], []
    for n in range(pairs):
        owner = n % len(ids)
        a, b = uuid.uuid4(), uuid.uuid4()
        for pid in (a, b):
            rows.append(
                {
                    "id": pid,
                    "owner_id": ids[owner],
                    "display_key": "bench/display.jpg",
                    "thumb_key": "bench/thumb.jpg",
                    "width": 2048,
                    "height": 1536,
                    "source_format": "jpeg",
                    "sha256": b"\0" * 32,
                    "expires_at": expires,
                    "geotag": "SRID=4326;POINT(105.8525 21.0288)",
                }
            )
        token_values.append(tokens[owner])
        photo_a.append(str(a))
        photo_b.append(str(b))
    engine = db.make_engine(settings)
    async with engine.begin() as conn:
        for start in range(0, len(rows), 5000):
            await conn.execute(insert(ReportPhoto), rows[start : start + 5000])
    async with engine.begin() as conn:
        await conn.execute(text("ANALYZE users, report_photos, reports, report_events"))
    await engine.dispose()
    return {"token": token_values, "photo_a": photo_a, "photo_b": photo_b}


def _points() -> dict[str, list[str]]:
    """Points spread over central Hanoi (inside the city), used round-robin."""
    lats = [21.0285 + 0.004 * i for i in range(-5, 5)]
    lons = [105.8342 + 0.006 * j for j in range(-5, 5)]
    pairs = [(la, lo) for la in lats for lo in lons]
    return {"lat": [f"{la:.5f}" for la, _ in pairs], "lon": [f"{lo:.5f}" for _, lo in pairs]}


async def residents_with_tokens(base_url: str) -> Values:
    """50 residents straight in the app's database, with access tokens minted by the
    app's own code (same SECRET_KEY from the environment)."""
    _, _, tokens = await _bench_residents(50)
    return {"token": tokens}


_READERS = 50
_REPORTS_EACH = 30


async def residents_with_reports(base_url: str) -> Values:
    """For the reporter's reads: 50 residents, each given 30 of the seeded reports (needs
    ``bench.seed_reports``), each report 2 photos and 4 public timeline entries (one
    naming a unit), and each resident 30 inbox notifications. Returns ``token`` and
    ``report_id`` aligned (the token of the report's reporter), one entry per report."""

    from sqlalchemy import text

    from app.core import db
    from bench.seed_reports import BENCH_REPORTER_ID

    settings, ids, tokens = await _bench_residents(_READERS)
    engine = db.make_engine(settings)
    async with engine.begin() as conn:
        picked = (
            (
                await conn.execute(
                    text(
                        "SELECT id FROM reports WHERE status <> 'withdrawn'"
                        " AND reporter_id = :bench"
                        " ORDER BY code DESC LIMIT :n"
                    ),
                    {"bench": BENCH_REPORTER_ID, "n": _READERS * _REPORTS_EACH},
                )
            )
            .scalars()
            .all()
        )
        owners = [(rid, ids[n // _REPORTS_EACH]) for n, rid in enumerate(picked)]
        await conn.execute(
            text("UPDATE reports SET reporter_id = :owner WHERE id = :rid"),
            [{"rid": rid, "owner": owner} for rid, owner in owners],
        )
        await conn.execute(
            text(
                "INSERT INTO report_photos (id, owner_id, report_id, position, display_key,"
                " thumb_key, width, height, source_format, sha256, expires_at)"
                " SELECT gen_random_uuid(), r.reporter_id, r.id, g.n, 'bench/display.jpg',"
                " 'bench/thumb.jpg', 2048, 1536, 'jpeg', '\\x00', NULL"
                " FROM reports r CROSS JOIN generate_series(0, 1) AS g(n)"
                " WHERE r.id = ANY(CAST(:rids AS uuid[]))"
            ),
            {"rids": [rid for rid, _ in owners]},
        )
        await conn.execute(
            text(
                "INSERT INTO report_events (report_id, at, kind, from_status, to_status,"
                " actor_kind, public, body, unit_id)"
                " SELECT r.id, r.created_at + g.n * interval '1 hour', e.kind, e.f, e.t,"
                " e.actor, true, e.body, CASE WHEN g.n = 1 THEN"
                " (SELECT id FROM units ORDER BY code LIMIT 1) END"
                " FROM reports r CROSS JOIN generate_series(0, 3) AS g(n)"
                " JOIN (VALUES (0, 'filed', NULL, 'submitted', 'resident', NULL),"
                " (1, 'transition', 'submitted', 'assigned', 'system', NULL),"
                " (2, 'transition', 'assigned', 'in_progress', 'staff', NULL),"
                " (3, 'reply', NULL, NULL, 'staff', 'Đơn vị đã tiếp nhận và sẽ xử lý.'))"
                " AS e(n, kind, f, t, actor, body) ON e.n = g.n"
                " WHERE r.id = ANY(CAST(:rids AS uuid[]))"
            ),
            {"rids": [rid for rid, _ in owners]},
        )
        await conn.execute(
            text(
                "INSERT INTO notifications (user_id, kind, title, body, data, dedupe_key,"
                " created_at, push_status)"
                " SELECT u, 'report_status', 'Phản ánh đã được tiếp nhận',"
                " 'Phản ánh BENCH của bạn đã được chuyển tới đơn vị xử lý.',"
                " jsonb_build_object('report_code', 'BENCH' || g.n, 'link',"
                " 'cityapp://reports/BENCH' || g.n), 'bench-' || g.n,"
                " now() - g.n * interval '1 hour', 'sent'"
                " FROM unnest(CAST(:ids AS uuid[])) AS u CROSS JOIN generate_series(1, :n) AS g(n)"
            ),
            {"ids": ids, "n": _REPORTS_EACH},
        )
    async with engine.begin() as conn:
        await conn.execute(
            text("ANALYZE users, reports, report_photos, report_events, notifications")
        )
    await engine.dispose()
    by_owner = {i: tokens[n] for n, i in enumerate(ids)}
    return {
        "token": [by_owner[owner] for _, owner in owners],
        "report_id": [str(rid) for rid, _ in owners],
    }


def area_lookup_once(base_url: str) -> Values:
    """One lookup before the load: before issue 18's fix the reference snapshot's first
    load waited for a pooled connection that 64 concurrent lookups all held (a deadlock
    until the pool's 30 s timeout), so an app started cold never answered under load."""
    import urllib.request

    with urllib.request.urlopen(f"{base_url}/api/v1/areas/lookup?lat=21.03&lon=105.85") as r:
        r.read()
    return {}


_readers: dict[str, list[str]] = {}


async def residents_with_reports_once(base_url: str) -> Values:
    """``residents_with_reports`` once per harness run, shared by the read scenarios."""
    if not _readers:
        _readers.update(await residents_with_reports(base_url))
    return dict(_readers)


# ----------------------------------------------------------------------------- public map

CITY_BBOX = "105.28,20.56,106.03,21.39"  # all of Hanoi
# ~600 m squares (0.0058 x 0.0054 degrees) around central wards (Ba Đình, Hoàn Kiếm, Cửa
# Nam, Ô Chợ Dừa, Văn Miếu, Kim Liên, Hai Bà Trưng, Bạch Mai): 1,450-2,070 reports each
# with bench.seed_reports --count 1000000 (none holds the file_report scenario's point)
STREET_BBOXES = [
    f"{lon - 0.0029:.4f},{lat - 0.0027:.4f},{lon + 0.0029:.4f},{lat + 0.0027:.4f}"
    for lon, lat in (
        (105.8369, 21.0399),
        (105.8551, 21.0371),
        (105.8586, 21.0234),
        (105.8261, 21.0246),
        (105.8376, 21.0220),
        (105.8329, 21.0043),
        (105.8562, 21.0140),
        (105.8513, 21.0035),
    )
]
_map_ready: dict[str, list[str]] = {}


async def _refresh_report_map() -> tuple[int, object]:
    from sqlalchemy import text

    from app.complaints import clusters
    from app.core import db
    from app.settings import get_settings

    engine = db.make_engine(get_settings())
    try:
        async with db.make_sessionmaker(engine)() as session:
            reports = await session.scalar(text("SELECT count(*) FROM reports"))
            done = await clusters.refresh_map_cells(session)
            await session.commit()
        await clusters.vacuum_map_cells(engine)
    finally:
        await engine.dispose()
    return reports, done


def _keep_report_map_fresh(every: float) -> None:
    """What the worker's cron does, in a thread of the harness: the measured feed then
    competes with a refresh every ``every`` seconds, as in production."""
    import asyncio
    import threading
    import time

    def loop() -> None:
        while True:
            time.sleep(every)
            reports, done = asyncio.run(_refresh_report_map())
            print(f"   [map refreshed in the background: {done}]", flush=True)

    threading.Thread(target=loop, name="report-map-refresh", daemon=True).start()


async def report_map_ready(base_url: str) -> Values:
    """For the feed scenarios (once per harness run): check that the database holds the
    seeded reports (``python -m bench.seed_reports --count 1000000``) and build the map
    snapshot, as the worker would. The feed trusts a snapshot for
    ``clusters.SNAPSHOT_MAX_AGE`` (10 min): for longer runs, or to measure under the
    refresh's load, set ``BENCH_MAP_REFRESH_SECONDS=60`` (a refresh every minute, in a
    thread) or run the worker (``python -m workers``). Returns ``since`` = a week ago."""
    from datetime import UTC, datetime, timedelta

    if not _map_ready:
        reports, done = await _refresh_report_map()
        if reports < 100_000:
            print(
                f"   WARNING: only {reports} reports; seed first: "
                "python -m bench.seed_reports --count 1000000",
                flush=True,
            )
        print(f"   map snapshot: {reports} reports, {done}", flush=True)
        every = os.environ.get("BENCH_MAP_REFRESH_SECONDS")
        if every:
            _keep_report_map_fresh(float(every))
        week_ago = datetime.now(UTC) - timedelta(days=7)
        _map_ready["since"] = [week_ago.strftime("%Y-%m-%dT%H:%M:%SZ")]
    return dict(_map_ready)


_FILE_BODY = (
    '{"kind": "complaint", "category_code": "roads", "description": '
    '"O ga lon giua duong, xe may de nga khi troi mua.", '
    '"location": {"lat": 21.0288, "lon": 105.8525}, '
    '"photo_ids": ["{{photo_a}}", "{{photo_b}}"]}'
)

SCENARIOS: list[Scenario] = [
    Scenario(
        name="health_live",
        path="/health/live",
        description="Liveness: routing, middleware stack and a Struct response, no I/O.",
    ),
    Scenario(
        name="health_live_100rps",
        path="/health/live",
        rate=100,
        description="Liveness at a fixed 100 req/s: latency under light load.",
    ),
    Scenario(
        name="categories",
        path="/api/v1/categories",
        floor="floor-db",
        description="Public read of the category list (one small query, vi names).",
    ),
    Scenario(
        name="categories_vs_query",
        path="/api/v1/categories",
        floor="floor-categories",
        description="The category list against a floor making the same query (asyncpg).",
    ),
    Scenario(
        name="units_vs_query",
        path="/api/v1/units",
        floor="floor-units",
        description="The unit list (with parents' codes) against the same query's floor.",
    ),
    Scenario(
        name="area_lookup",
        path="/api/v1/areas/lookup?lat={{lat}}&lon={{lon}}",
        values=_points(),
        floor="floor-db",
        description="PostGIS point-in-polygon over Hanoi's 126 wards (GiST index).",
    ),
    Scenario(
        name="me",
        path="/api/v1/me",
        headers={"Authorization": "Bearer {{token}}"},
        setup=residents_with_tokens,
        floor="floor-db",
        description="Authenticated profile: JWT + Redis deny-list check + two queries.",
    ),
    Scenario(
        name="me_vs_query",
        path="/api/v1/me",
        headers={"Authorization": "Bearer {{token}}"},
        setup=residents_with_reports_once,
        floor="floor-me",
        description="My profile against the same SELECT (and JWT decode) with asyncpg.",
    ),
    Scenario(
        name="reports_mine_vs_query",
        path="/api/v1/reports/mine",
        headers={"Authorization": "Bearer {{token}}"},
        setup=residents_with_reports_once,
        floor="floor-reports-mine",
        description="My reports (first page of 20 of 30, first thumbnail each) vs its query.",
    ),
    Scenario(
        name="report_detail_vs_query",
        path="/api/v1/reports/{{report_id}}",
        headers={"Authorization": "Bearer {{token}}"},
        setup=residents_with_reports_once,
        floor="floor-report-detail",
        description="One of my reports: 2 photos, 4 timeline entries (one unit) vs its query.",
    ),
    Scenario(
        name="notifications_vs_query",
        path="/api/v1/me/notifications",
        headers={"Authorization": "Bearer {{token}}"},
        setup=residents_with_reports_once,
        floor="floor-notifications",
        description="My inbox (first page of 20 of 30) against the same SELECT.",
    ),
    Scenario(
        name="area_lookup_vs_query",
        path="/api/v1/areas/lookup?lat={{lat}}&lon={{lon}}",
        values=_points(),
        setup=area_lookup_once,
        floor="floor-area-lookup",
        description="Point-in-polygon over the wards against the same PostGIS query.",
    ),
    Scenario(
        name="file_report",
        method="POST",
        path="/api/v1/reports",
        headers={"Authorization": "Bearer {{token}}"},
        body=_FILE_BODY,
        setup=residents_with_uploaded_photos,
        expect="201",
        floor="floor-db",
        description=(
            "File a complaint with two pre-uploaded photos: category, PostGIS area lookup, "
            "photo claim (row locks), geotag check, insert + timeline, commit."
        ),
    ),
    Scenario(
        name="file_report_idem",
        method="POST",
        path="/api/v1/reports",
        headers={"Authorization": "Bearer {{token}}", "Idempotency-Key": "bench-{{seq}}"},
        body=_FILE_BODY,
        setup=residents_with_uploaded_photos,
        expect="201",
        floor="floor-db",
        description=(
            "file_report as the app sends it, with an Idempotency-Key (a new one per "
            "submission): the key's unique index decides a retry in the same statement."
        ),
    ),
    Scenario(
        name="file_report_300rps",
        method="POST",
        path="/api/v1/reports",
        headers={"Authorization": "Bearer {{token}}", "Idempotency-Key": "bench-{{seq}}"},
        body=_FILE_BODY,
        setup=residents_with_uploaded_photos,
        rate=300,
        expect="201",
        floor="floor-db",
        description="file_report_idem at a fixed 300 filings/s: latency at issue 3's target.",
    ),
    Scenario(
        name="otp_request",
        method="POST",
        path="/api/v1/auth/otp",
        body='{"phone": "{{phone}}"}',
        expect="202",
        floor="floor-db",
        description=(
            "Ask for a sign-in code: phone validation, two Redis rate-limit windows, "
            "update + insert, commit, SMS to the log. Needs OTP_RATE_PER_IP and "
            "OTP_RATE_PER_PHONE raised for the run (one client IP)."
        ),
    ),
    Scenario(
        name="feed_city",
        path=f"/api/v1/public/reports?bbox={CITY_BBOX}&zoom=11",
        setup=report_map_ready,
        floor="floor-db",
        description=(
            "Public map, all of Hanoi at zoom 11 (~190 clusters) from the cluster snapshot: "
            "one query (state gate + PK range on report_map_cells)."
        ),
    ),
    Scenario(
        name="feed_street",
        path="/api/v1/public/reports?bbox={{bbox}}&zoom=17",
        values={"bbox": STREET_BBOXES},
        setup=report_map_ready,
        floor="floor-db",
        description=(
            "Public map, a ~600 m square at zoom 17 (8 central wards in turn): live, "
            "index-only scan of the covering GiST index on location (migration 0009), "
            "newest 2000 of ~1,500-2,000 reports, one feature each."
        ),
    ),
    Scenario(
        name="feed_city_vs_query",
        path=f"/api/v1/public/reports?bbox={CITY_BBOX}&zoom=11",
        setup=report_map_ready,
        floor="floor-feed-city",
        description="feed_city against the same snapshot query with asyncpg + msgspec.",
    ),
    Scenario(
        name="feed_street_vs_query",
        path="/api/v1/public/reports?bbox={{bbox}}&zoom=17",
        values={"bbox": STREET_BBOXES},
        setup=report_map_ready,
        floor="floor-feed-street",
        description="feed_street against the same JSON-writing query with asyncpg.",
    ),
    Scenario(
        name="feed_city_since",
        path=f"/api/v1/public/reports?bbox={CITY_BBOX}&zoom=11&since={{{{since}}}}",
        setup=report_map_ready,
        floor="floor-db",
        description=(
            "Public map, all of Hanoi at zoom 11, reports of the last 7 days: live GROUP BY "
            "(the snapshot has no time), created_at index, ~30k reports."
        ),
    ),
    Scenario(
        name="feed_city_filtered",
        path=f"/api/v1/public/reports?bbox={CITY_BBOX}&zoom=11&category=roads&status=closed",
        setup=report_map_ready,
        floor="floor-db",
        description=(
            "Public map, all of Hanoi at zoom 11, one category and one status: the snapshot's "
            "facet arrays, unnested per cell."
        ),
    ),
    Scenario(
        name="feed_city_100rps",
        path=f"/api/v1/public/reports?bbox={CITY_BBOX}&zoom=11",
        setup=report_map_ready,
        rate=100,
        floor="floor-db",
        description="feed_city at a fixed 100 req/s: latency under a given load.",
    ),
    Scenario(
        name="feed_street_50rps",
        path="/api/v1/public/reports?bbox={{bbox}}&zoom=17",
        values={"bbox": STREET_BBOXES},
        setup=report_map_ready,
        rate=50,
        floor="floor-db",
        description=(
            "feed_street at a fixed 50 req/s (its capacity here is ~230/s with one "
            "worker, bound by PostgreSQL): latency under a given load."
        ),
    ),
    Scenario(
        name="nearby",
        path="/api/v1/reports/nearby?lat={{lat}}&lon={{lon}}&category=roads",
        headers={"Authorization": "Bearer {{token}}"},
        values=_points(),
        setup=residents_with_tokens,
        floor="floor-db",
        description=(
            "The duplicate check every filing makes first: open reports of a category "
            "within 100 m of 100 central points in turn (GiST prefilter + exact geography "
            "distance); needs the seeded city (bench.seed_reports, 1,000,000 reports)."
        ),
    ),
    Scenario(
        name="nearby_50rps",
        path="/api/v1/reports/nearby?lat={{lat}}&lon={{lon}}&category=roads",
        headers={"Authorization": "Bearer {{token}}"},
        values=_points(),
        setup=residents_with_tokens,
        rate=50,
        floor="floor-db",
        description="nearby at a fixed 50 req/s: latency under load (issue 17: p95 < 20 ms).",
    ),
    # ---- dossiers at 10 million (issue 19; bench/seed_dossiers.py, bench/dossier_reads.py)
    Scenario(
        name="dossier_lookup",
        path="/api/v1/public/dossiers/{{code}}",
        setup=lambda base_url: _dossier_setup("lookup_codes", base_url),
        floor="floor-db",
        description="public lookup by code (tra cứu hồ sơ), random codes over 10 M dossiers",
    ),
    Scenario(
        name="dossier_lookup_1000rps",
        path="/api/v1/public/dossiers/{{code}}",
        setup=lambda base_url: _dossier_setup("lookup_codes", base_url),
        rate=1000,
        floor="floor-db",
        description="public lookup at 1,000 req/s (issue 19: p99 < 20 ms)",
    ),
    Scenario(
        name="dossier_list",
        path="/api/v1/me/dossiers",
        headers={"Authorization": "Bearer {{token}}"},
        setup=lambda base_url: _dossier_setup("dossier_residents", base_url),
        floor="floor-db",
        description="a level-2 resident's dossiers (issue 19: p99 < 30 ms)",
    ),
    Scenario(
        name="dossier_list_300rps",
        path="/api/v1/me/dossiers",
        headers={"Authorization": "Bearer {{token}}"},
        setup=lambda base_url: _dossier_setup("dossier_residents", base_url),
        rate=300,
        floor="floor-db",
        description="a resident's dossiers at 300 req/s (issue 19: p99 < 30 ms)",
    ),
    # ---- Open311 GET requests over 1 M reports (issue 21; bench/open311_requests.py):
    # the default window (the last 90 days), 1,000 rows a page; target p95 < 100 ms
    Scenario(
        name="open311_requests_json",
        path="/open311/v2/requests.json",
        concurrency=8,
        floor="floor-db",
        description="GeoReport v2 requests, 90 days, 1,000 rows, JSON (capacity)",
    ),
    Scenario(
        name="open311_requests_xml",
        path="/open311/v2/requests.xml",
        concurrency=8,
        floor="floor-db",
        description="GeoReport v2 requests, 90 days, 1,000 rows, XML (capacity)",
    ),
    Scenario(
        name="open311_requests_json_gzip",
        path="/open311/v2/requests.json",
        headers={"Accept-Encoding": "gzip"},
        concurrency=8,
        floor="floor-db",
        description="the same JSON page for a client that takes gzip (as real ones do)",
    ),
    Scenario(
        name="open311_requests_json_20rps",
        path="/open311/v2/requests.json",
        rate=20,
        concurrency=16,
        floor="floor-db",
        description="requests JSON at 20 req/s: latency under load (issue 21: p95 < 100 ms)",
    ),
    Scenario(
        name="open311_requests_xml_20rps",
        path="/open311/v2/requests.xml",
        rate=20,
        concurrency=16,
        floor="floor-db",
        description="requests XML at 20 req/s: latency under load (issue 21: p95 < 100 ms)",
    ),
    Scenario(
        name="open311_updates_json",
        path="/open311/v2/servicerequestupdates.json",
        concurrency=8,
        floor="floor-db",
        description="mySociety's servicerequestupdates, 90 days, 1,000 updates, JSON",
    ),
    # sync on app open (issue 24 item 2): residents with 50 reports, 200 notifications and
    # 10 dossiers each (bench/sync_seed.py)
    Scenario(
        name="sync_nothing_changed",
        path="/api/v1/me/sync?cursor={{cursor_now}}",
        headers={"Authorization": "Bearer {{token}}"},
        setup=lambda base_url: _sync_setup(base_url),
        floor="floor-db",
        description="App open with nothing changed: the log read below the horizon, empty.",
    ),
    Scenario(
        name="sync_few_changed",
        path="/api/v1/me/sync?cursor={{cursor_few}}",
        headers={"Authorization": "Bearer {{token}}"},
        setup=lambda base_url: _sync_setup(base_url),
        floor="floor-db",
        description="App open after 5 changes (2 reports moved on, 3 new notices).",
    ),
    Scenario(
        name="sync_first_page",
        path="/api/v1/me/sync",
        headers={"Authorization": "Bearer {{token}}"},
        setup=lambda base_url: _sync_setup(base_url),
        floor="floor-db",
        description="First call, no cursor: the first 100 items of the current state.",
    ),
]


async def _sync_setup(base_url: str) -> Values:
    from bench import sync_seed

    return await sync_seed.residents_for_sync(base_url)


async def _dossier_setup(name: str, base_url: str) -> Values:
    """The dossier scenarios' setups live in bench/dossier_reads.py (imported on use)."""
    from bench import dossier_reads

    return await getattr(dossier_reads, name)(base_url)


# ------------------------------------------------------- self-test: the floor vs itself
# `python -m bench.run --self-test` serves bench.floor as the "app" too, so every ratio
# should come out near 1.00; how far off it is shows the noise of this machine.

SELF_TEST: list[Scenario] = [
    Scenario(name="self_floor", path="/floor", description="floor app vs floor"),
    Scenario(
        name="self_floor_templated",
        method="GET",
        path="/floor?phone={{phone}}&id={{uuid}}",
        headers={"Authorization": "Bearer {{token}}"},
        values={"token": ["t1", "t2", "t3"]},
        description="per-request templating in the generator (floor ignores it)",
    ),
    Scenario(name="self_floor_db", path="/floor-db", floor="floor-db"),
    Scenario(name="self_floor_100rps", path="/floor", rate=100),
]

ALL: dict[str, Scenario] = {s.name: s for s in SCENARIOS + SELF_TEST}
