"""Open data (issue 22 item 4): the query endpoint, the daily files, and the service
index recomputed from the files alone."""

from __future__ import annotations

import csv
import io
import json
import statistics
from collections import defaultdict
from datetime import date, datetime, time, timedelta

import msgspec
import pytest
from sqlalchemy import text

from app.core.calendar import TIMEZONE
from app.core.clock import FixedClock
from app.opendata import service as opendata
from app.stats import service as stats
from tests.routing.conftest import worker_for
from tests.stats.factories import add_report, new_unit, new_user

BASE = "/api/v1/public/open-data"
DAY1, DAY2, DAY3 = date(2026, 10, 5), date(2026, 10, 6), date(2026, 10, 8)
SECRET_WORDS = "Báo cáo thử cho bộ chỉ số."  # every seeded report's description


def at(day: date, hour: int = 10) -> datetime:
    return datetime.combine(day, time(hour), TIMEZONE)


@pytest.fixture
async def city(app, client):
    """Two units with reports of every kind of fate, filed on DAY1 and DAY2, some of
    them changed on DAY3 (resolved, rated, reopened and rated again). After ``client``,
    which empties the user tables (and so the reports) before each test."""
    async with app.state.sessionmaker() as s:
        east, west = await new_unit(s, "Phòng Đông"), await new_unit(s, "Phòng Tây")
        resident, officer = await new_user(s), await new_user(s, "staff")
        made = {}
        made["rated"] = await add_report(
            s,
            east,
            resident,
            at(DAY1),
            "closed",
            resolved_at=at(DAY2),
            on_time=True,
            working_days=1.0,
            closed_reason="rated",
            ratings=((0, "satisfied"),),
        )
        made["late"] = await add_report(
            s,
            east,
            resident,
            at(DAY1, 11),
            "resolved",
            resolved_at=at(DAY2, 15),
            on_time=False,
            working_days=4.5,
            ratings=((0, "accept"),),
        )
        made["open"] = await add_report(s, east, resident, at(DAY2), "in_progress")
        made["staff"] = await add_report(
            s,
            east,
            resident,
            at(DAY2, 9),
            "resolved",
            filed_by_staff_id=officer,
            resolved_at=at(DAY2, 16),
            on_time=True,
            working_days=0.5,
        )
        made["reopened"] = await add_report(s, west, resident, at(DAY1, 8), "assigned")
        made["duplicate"] = await add_report(s, west, resident, at(DAY2, 8), "duplicate")
        made["withdrawn"] = await add_report(s, west, resident, at(DAY2, 12), "withdrawn")
        made["unrouted"] = await add_report(s, None, resident, at(DAY2, 13), "submitted")
        # a staff answer (its time is published, never its words)
        await s.execute(
            text(
                "INSERT INTO report_events (report_id, at, kind, from_status, to_status, body,"
                " actor_id, actor_kind, public) VALUES (:r, :at, 'comment', NULL, NULL,"
                " 'Chúng tôi đã nhận.', :a, 'staff', true)"
            ),
            {"r": made["open"].id, "at": at(DAY2, 14), "a": officer},
        )
        await s.commit()
    return {"east": east, "west": west, "reports": made}


async def change_on_day3(app, city) -> None:
    """The 'reopened' report: resolved late, rated not satisfied, reopened, resolved
    again and rated accept (the index counts the latest round's rating)."""
    report = city["reports"]["reopened"]
    async with app.state.sessionmaker() as s:
        await s.execute(
            text(
                "UPDATE reports SET status = 'resolved', resolved_at = :r, resolved_on_time ="
                " false, handling_working_days = 3.0, reopen_count = 1, updated_at = :u"
                " WHERE id = :id"
            ),
            {"r": at(DAY2, 17), "u": at(DAY3), "id": report.id},
        )
        await s.execute(
            text(
                "INSERT INTO report_ratings (report_id, resolution_round, rating) VALUES"
                " (:id, 0, 'not_satisfied'), (:id, 1, 'accept')"
            ),
            {"id": report.id},
        )
        await s.commit()


async def publish(app, *days: date) -> None:
    for day in days:
        async with app.state.sessionmaker() as s:
            await opendata.publish_day(
                s, app.state.storage, app.state.settings, day, datetime.now(TIMEZONE)
            )
            await s.commit()


def query(**params) -> dict:
    return {"from": DAY1.isoformat(), "to": DAY3.isoformat(), **params}


async def test_query_publishes_no_text_no_reporter_and_rounded_positions(client, city):
    r = await client.get(f"{BASE}/reports", params=query(unit=city["east"].code))
    assert r.status_code == 200, r.text
    assert r.headers["x-license"] == "CC BY 4.0"
    assert 'rel="license"' in r.headers["link"]
    assert r.headers["cache-control"].startswith("public")
    body = r.json()
    assert body["meta"]["licence"] == "CC BY 4.0"
    assert body["meta"]["position_precision_decimals"] == 3
    items = {i["code"]: i for i in body["items"]}
    made = city["reports"]
    assert set(items) == {made[k].code for k in ("rated", "late", "open", "staff")}
    rated = items[made["rated"].code]
    assert set(rated) == set(opendata.FIELDS)
    assert (rated["lat"], rated["lon"]) == (21.029, 105.853)  # 21.0288, 105.8525 rounded
    assert rated["on_time"] is True and rated["working_days"] == 1.0
    assert rated["rating"] == "satisfied" and rated["channel"] == "resident"
    assert items[made["staff"].code]["channel"] == "staff"
    assert items[made["open"].code]["first_answered"] is not None
    assert rated["first_answered"] is None
    assert SECRET_WORDS not in r.text and "Chúng tôi đã nhận" not in r.text
    assert "reporter" not in r.text and str(made["rated"].reporter_id) not in r.text


async def test_query_filters_and_keyset_pages(client, city):
    seen: list[str] = []
    cursor = None
    while True:
        params = query(unit=city["east"].code, limit=1)
        if cursor:
            params["cursor"] = cursor
        page = (await client.get(f"{BASE}/reports", params=params)).json()
        seen += [i["code"] for i in page["items"]]
        cursor = page["next_cursor"]
        if cursor is None:
            break
    assert len(seen) == 4 == len(set(seen))
    west = (await client.get(f"{BASE}/reports", params=query(unit=city["west"].code))).json()
    codes = {i["code"] for i in west["items"]}
    made = city["reports"]
    assert made["withdrawn"].code not in codes  # withdrawn: in no public view
    assert {made["reopened"].code, made["duplicate"].code} <= codes
    only_day1 = await client.get(
        f"{BASE}/reports",
        params={"from": DAY1.isoformat(), "to": DAY1.isoformat(), "unit": city["east"].code},
    )
    assert {i["filed"][:10] for i in only_day1.json()["items"]} == {DAY1.isoformat()}
    other_category = await client.get(
        f"{BASE}/reports", params=query(unit=city["east"].code, category="waste")
    )
    assert other_category.json()["items"] == []


async def test_query_as_csv(client, city):
    r = await client.get(f"{BASE}/reports", params=query(unit=city["east"].code, format="csv"))
    assert r.status_code == 200 and r.headers["content-type"].startswith("text/csv")
    assert r.headers["x-license"] == "CC BY 4.0"
    rows = list(csv.DictReader(io.StringIO(r.text)))
    assert len(rows) == 4 and list(rows[0]) == list(opendata.FIELDS)
    assert {row["channel"] for row in rows} == {"resident", "staff"}


@pytest.mark.parametrize(
    ("params", "field"),
    [
        ({"from": "2026-10-08", "to": "2026-10-01"}, "to"),
        ({"from": "2026-01-01", "to": "2026-12-31"}, "to"),
        ({"from": "2026-10-01", "to": "2026-10-08", "category": "no-such"}, "category"),
        ({"from": "2026-10-01", "to": "2026-10-08", "area": "99999"}, "area"),
        ({"from": "2026-10-01", "to": "2026-10-08", "unit": "no-such"}, "unit"),
        ({"from": "2026-10-01", "to": "2026-10-08", "cursor": "bm90IGEgY3Vyc29y"}, "cursor"),
        ({"to": "2026-10-08"}, "from"),
        ({"from": "2026-10-01", "to": "2026-10-08", "limit": "0"}, "limit"),
        ({"from": "2026-10-01", "to": "2026-10-08", "format": "xlsx"}, "format"),
    ],
)
async def test_bad_queries_are_400s_naming_the_parameter(client, params, field):
    r = await client.get(f"{BASE}/reports", params=params)
    assert r.status_code == 400, r.text
    assert r.headers["content-type"].startswith("application/problem+json")
    assert field in {e["field"] for e in r.json().get("errors", [])} or field in r.json()["detail"]


def fold(files: list[list[dict]]) -> dict[str, dict]:
    """The files, oldest first, folded by code: the newest row of each report."""
    latest: dict[str, dict] = {}
    for rows in files:
        for row in rows:
            latest[row["code"]] = row
    return latest


def recompute(reports: dict[str, dict], month: str | None = None) -> dict:
    """The service index's figures per (unit, channel), from the published rows only."""
    groups: dict[tuple[str, str], list[dict]] = defaultdict(list)
    for row in reports.values():
        if not row["unit"] or row["status"] in ("withdrawn", "duplicate"):
            continue
        if month and row["filed"][:7] != month:
            continue
        groups[(row["unit"], row["channel"])].append(row)
    figures = {}
    for key, rows in groups.items():
        resolved = [r for r in rows if r["resolved"]]
        on_time = [r for r in resolved if r["on_time"] == "true"]
        rated = [r for r in resolved if r["rating"]]
        happy = [r for r in rated if r["rating"] in ("satisfied", "accept")]
        days = [float(r["working_days"]) for r in resolved if r["working_days"]]
        figures[key] = {
            "received": len(rows),
            "resolved": len(resolved),
            "resolved_on_time": len(on_time),
            "on_time_pct": round(100 * len(on_time) / len(resolved), 1) if resolved else None,
            "rated": len(rated),
            "satisfied": sum(r["rating"] == "satisfied" for r in rated),
            "accepted": sum(r["rating"] == "accept" for r in rated),
            "not_satisfied": sum(r["rating"] == "not_satisfied" for r in rated),
            "satisfaction_pct": round(100 * len(happy) / len(rated), 1) if rated else None,
            "median_handling_working_days": statistics.median(days) if days else None,
        }
    return figures


async def test_the_service_index_is_recomputable_from_the_daily_files(app, client, city):
    await publish(app, DAY1, DAY2)
    await change_on_day3(app, city)
    await publish(app, DAY3)
    async with app.state.sessionmaker() as s:
        assert await stats.refresh_unit_stats(s, datetime.now(TIMEZONE)) is not None
        await s.commit()

    listing = (await client.get(f"{BASE}/files")).json()
    assert listing["meta"]["licence"] == "CC BY 4.0"
    csv_files = sorted(
        (f for f in listing["files"] if f["format"] == "csv"), key=lambda f: f["day"]
    )
    assert [f["day"] for f in csv_files][-3:] == [d.isoformat() for d in (DAY1, DAY2, DAY3)]
    downloaded = []
    for f in csv_files:
        r = await client.get(f["url"])
        assert r.status_code == 200 and r.headers["x-license"] == "CC BY 4.0"
        assert len(r.content) == f["bytes"] and f["rows"] == r.text.count("\r\n") - 1
        assert SECRET_WORDS not in r.text
        downloaded.append(list(csv.DictReader(io.StringIO(r.text))))
    folded = fold(downloaded)
    ours = {city["east"].code, city["west"].code}
    for period, month in (("all", None), ("2026-10", "2026-10")):
        published = (
            await client.get("/api/v1/public/service-index", params={"period": period})
        ).json()
        expected = {
            (unit["unit_code"], channel): {k: unit[name][k] for k in figures_keys()}
            for unit in published
            if unit["unit_code"] in ours
            for channel, name in (("resident", "resident"), ("staff", "staff_filed"))
            if unit[name]["received"]
        }
        assert expected, period
        got = {k: v for k, v in recompute(folded, month).items() if k[0] in ours}
        assert got == expected, period
    # the reopened report's row is its newest: resolved late, the latest round's rating
    reopened = folded[city["reports"]["reopened"].code]
    assert (reopened["status"], reopened["on_time"], reopened["rating"]) == (
        "resolved",
        "false",
        "accept",
    )


def figures_keys() -> tuple[str, ...]:
    return (
        "received",
        "resolved",
        "resolved_on_time",
        "on_time_pct",
        "rated",
        "satisfied",
        "accepted",
        "not_satisfied",
        "satisfaction_pct",
        "median_handling_working_days",
    )


async def test_geojson_file_states_licence_and_precision(app, client, city):
    await publish(app, DAY1)
    r = await client.get(f"{BASE}/files/{DAY1.isoformat()}.geojson")
    assert r.status_code == 200 and r.headers["content-type"].startswith("application/geo+json")
    doc = json.loads(r.content)
    assert doc["type"] == "FeatureCollection"
    assert doc["metadata"]["licence"] == "CC BY 4.0"
    assert doc["metadata"]["position_precision_decimals"] == 3
    feature = next(f for f in doc["features"] if f["id"] == city["reports"]["rated"].code)
    assert feature["geometry"] == {"type": "Point", "coordinates": [105.853, 21.029]}
    assert "description" not in feature["properties"] and SECRET_WORDS not in r.text
    for name in ("2026-10-05.xlsx", "1999-01-01.csv", "2026-13-40.csv"):
        missing = await client.get(f"{BASE}/files/{name}")
        assert missing.status_code == 404, name


async def test_the_daily_cron_publishes_yesterday_through_the_worker(app, client, city):
    clock = FixedClock(at(DAY2 + timedelta(days=1), 0) + timedelta(minutes=20))
    await app.state.redis.enqueue_job("publish_open_data")
    worker = worker_for(clock)
    worker.cron_jobs = []
    try:
        await worker.main()
    finally:
        await worker.close()
    assert worker.jobs_complete >= 1 and worker.jobs_failed == 0
    listing = msgspec.json.decode((await client.get(f"{BASE}/files")).content)
    days = {(f["day"], f["format"]) for f in listing["files"]}
    assert {(DAY2.isoformat(), "csv"), (DAY2.isoformat(), "geojson")} <= days
    r = await client.get(f"{BASE}/files/{DAY2.isoformat()}.csv")
    codes = {row["code"] for row in csv.DictReader(io.StringIO(r.text))}
    assert city["reports"]["open"].code in codes and city["reports"]["staff"].code in codes
    assert city["reports"]["rated"].code not in codes  # filed and last changed on DAY1


async def test_the_daily_job_catches_up_the_days_a_stopped_worker_missed(app, client, city):
    """The worker was stopped over DAY2 and the day after: the next run publishes every
    day of the window that has no files, not only yesterday, and leaves a day already
    published alone (yesterday is published again: a rerun takes its late changes)."""
    missed = DAY2 + timedelta(days=1)  # no other test publishes it
    await publish(app, DAY2)
    before = await published_at(app, DAY2)
    clock = FixedClock(at(DAY3 + timedelta(days=1), 0) + timedelta(minutes=20))
    await app.state.redis.enqueue_job("publish_open_data")
    worker = worker_for(clock)
    worker.cron_jobs = []
    try:
        await worker.main()
    finally:
        await worker.close()
    assert worker.jobs_complete >= 1 and worker.jobs_failed == 0
    listing = msgspec.json.decode((await client.get(f"{BASE}/files")).content)
    days = {(f["day"], f["format"]) for f in listing["files"]}
    for day in (DAY1, DAY2, missed, DAY3):
        assert {(day.isoformat(), "csv"), (day.isoformat(), "geojson")} <= days, day
    assert await published_at(app, DAY2) == before  # not published again
    r = await client.get(f"{BASE}/files/{missed.isoformat()}.csv")
    assert r.status_code == 200 and r.text.splitlines()[0].startswith("code")
    # the window stops at the first report: no empty files for the days before it
    async with app.state.engine.connect() as conn:
        first = (
            await conn.execute(
                text("SELECT (min(created_at) AT TIME ZONE :tz)::date FROM reports"),
                {"tz": TIMEZONE.key},
            )
        ).scalar_one()
        earlier = (
            await conn.execute(
                text("SELECT count(*) FROM open_data_files WHERE day < :first"), {"first": first}
            )
        ).scalar_one()
    assert earlier == 0


async def published_at(app, day: date) -> list[datetime]:
    async with app.state.engine.connect() as conn:
        return list(
            (
                await conn.execute(
                    text("SELECT published_at FROM open_data_files WHERE day = :d ORDER BY format"),
                    {"d": day},
                )
            ).scalars()
        )
