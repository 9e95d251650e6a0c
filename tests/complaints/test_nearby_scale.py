"""Issue 17, item 11: the duplicate check (GET /reports/nearby) is an index scan.

A city's worth of reports (the bench seeder's realistic spread, 30,000 of them) is written
and ANALYZEd inside a transaction that is rolled back, so the planner sees real
statistics and the rest of the run sees nothing. The plan PostgreSQL chooses for the
service's own statement must read ``reports`` through the GiST index on ``location``;
the answers must be those of the exact geography test over every report."""

from __future__ import annotations

import json
import math

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncSession

from app.complaints import service
from bench.seed_reports import seed

# central Hanoi, where reports are densest (bench/scenarios.py uses the same grid)
POINTS = [(105.8342 + 0.006 * j, 21.0285 + 0.004 * i) for i in range(-3, 3) for j in range(-3, 3)]


def _nodes(plan: dict):
    yield plan
    for child in plan.get("Plans", []):
        yield from _nodes(child)


async def test_nearby_reads_the_location_index_at_scale(app):
    async with app.state.engine.connect() as conn:
        transaction = await conn.begin()
        try:
            assert await seed(conn, 30_000) == 30_000
            await conn.execute(text("ANALYZE reports"))
            lon, lat = POINTS[14]
            raw = await conn.scalar(
                text(f"EXPLAIN (FORMAT JSON) {service.NEARBY_SQL}"),
                service.nearby_params(lon, lat, "roads"),
            )
            plan = (raw if isinstance(raw, list) else json.loads(raw))[0]["Plan"]
            on_reports = [n for n in _nodes(plan) if n.get("Relation Name") == "reports"]
            assert on_reports, plan
            assert {n.get("Index Name") for n in on_reports} == {"ix_reports_location"}, plan
            assert all("Seq Scan" not in n["Node Type"] for n in on_reports), plan

            # the same answers as the exact geography test over every report
            session = AsyncSession(bind=conn)
            found_any = False
            for lon, lat in POINTS:
                got = [n.code for n in await service.nearby(session, lon, lat, "roads")]
                exact = list(
                    await conn.scalars(
                        text(
                            """
                            SELECT code FROM reports
                             WHERE category_code = 'roads'
                               AND status IN ('submitted', 'assigned', 'in_progress',
                                              'reopened')
                               AND ST_DWithin(location::geography,
                                   ST_SetSRID(ST_MakePoint(:lon, :lat), 4326)::geography, 100)
                             ORDER BY round(ST_Distance(location::geography,
                                   ST_SetSRID(ST_MakePoint(:lon, :lat), 4326)::geography)
                                   ::numeric, 1), code
                             LIMIT 20
                            """
                        ),
                        {"lon": lon, "lat": lat},
                    )
                )
                assert got == exact, (lon, lat)
                found_any = found_any or bool(got)
            assert found_any  # the check compared something
        finally:
            await transaction.rollback()


def test_the_degree_box_holds_the_circle_at_any_latitude():
    """100 m east, west, north and south of a point lies inside its box, from the equator
    to near the pole (a degree of longitude shrinks with the cosine of the latitude)."""
    for lat in (0.0, 21.03, 45.0, 70.0, 89.99):
        dlon, dlat = service.degree_box(lat, 100)
        # WGS84 lengths of one degree at this latitude (metres)
        phi = math.radians(lat)
        per_lat = 111_132.92 - 559.82 * math.cos(2 * phi) + 1.175 * math.cos(4 * phi)
        per_lon = 111_412.84 * math.cos(phi) - 93.5 * math.cos(3 * phi)
        assert dlat * per_lat >= 100
        assert dlon >= 360 or dlon * max(per_lon, 1e-9) >= 100
