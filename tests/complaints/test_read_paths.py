"""Hot reads (issue 18 item 9): one statement each, outside any transaction (no BEGIN and
COMMIT round trips), and the per-process reference data never waits for the request pool."""

from __future__ import annotations

import asyncio
import gc

import msgspec
from sqlalchemy import event

from app.places.models import Unit
from tests.accounts.factories import sign_in_resident
from tests.complaints.factories import file_with_photo
from tests.conftest import running


class Statements:
    """What the app's pooled connections send while in use: statements SQLAlchemy runs
    (with the isolation level they ran under) and what asyncpg itself logs (BEGIN, COMMIT
    and queries run on the driver's connection)."""

    def __init__(self, engine) -> None:
        self.engine = engine.sync_engine
        self.seen: list[tuple[str, str | None]] = []
        self.driver: list[str] = []
        self._logged: list = []

    def _record(self, conn, cursor, statement, parameters, context, executemany) -> None:
        self.seen.append((statement, conn.get_execution_options().get("isolation_level")))

    def _log(self, record) -> None:
        self.driver.append(record.query)

    def _checkout(self, dbapi_connection, record, proxy) -> None:
        driver = dbapi_connection.driver_connection
        driver.add_query_logger(self._log)
        self._logged.append(driver)

    def statements(self) -> list[str]:
        """Every statement but transaction control, from both sources."""
        return [s for s, _ in self.seen] + [
            q for q in self.driver if q.split()[0].upper() not in ("BEGIN", "COMMIT", "ROLLBACK")
        ]

    def __enter__(self) -> Statements:
        event.listen(self.engine, "before_cursor_execute", self._record)
        event.listen(self.engine, "checkout", self._checkout)
        return self

    def __exit__(self, *exc) -> None:
        event.remove(self.engine, "before_cursor_execute", self._record)
        event.remove(self.engine, "checkout", self._checkout)
        for driver in self._logged:
            driver.remove_query_logger(self._log)


async def test_the_reporters_reads_are_one_statement_in_autocommit(app, client, caplog):
    me = await sign_in_resident(client, caplog)
    headers = me["headers"]
    filed = await file_with_photo(client, headers)
    r = await client.post(
        f"/api/v1/reports/{filed['id']}/comments", json={"body": "Thêm: ổ gà sâu."}, headers=headers
    )
    assert r.status_code == 204, r.text
    await client.get("/api/v1/me", headers=headers)  # any deny-list resync happens here

    for path in (
        "/api/v1/me",
        "/api/v1/reports/mine",
        f"/api/v1/reports/{filed['id']}",
        "/api/v1/me/notifications",
        "/api/v1/areas/lookup?lat=21.0288&lon=105.8525",
    ):
        with Statements(app.state.engine) as statements:
            response = await client.get(path, headers=headers)
            await asyncio.sleep(0)  # asyncpg hands its query log to the loop (call_soon)
        assert response.status_code == 200, (path, response.text)
        # one statement, and no BEGIN/COMMIT round trips around it
        assert len(statements.statements()) == 1, (path, statements.seen, statements.driver)
        assert [q for q in statements.driver if q.split()[0].upper() == "BEGIN"] == [], path
        assert all(level == "AUTOCOMMIT" for _, level in statements.seen), statements.seen

    mine = (await client.get("/api/v1/reports/mine", headers=headers)).json()["items"]
    assert mine[0]["id"] == filed["id"] and "/files/" in mine[0]["thumbnail_url"]
    detail = (await client.get(f"/api/v1/reports/{filed['id']}", headers=headers)).json()
    assert (
        len(detail["photos"]) == 1
        and detail["photos"][0]["url"] != detail["photos"][0]["thumbnail_url"]
    )
    assert [e["kind"] for e in detail["timeline"]][-1] == "comment"
    assert detail["timeline"][-1]["body"] == "Thêm: ổ gà sâu."


async def test_a_timeline_entry_names_its_unit_from_the_same_statement(
    app, client, caplog, session
):
    from sqlalchemy import select, update

    from app.complaints.models import ReportEvent

    me = await sign_in_resident(client, caplog)
    filed = await file_with_photo(client, me["headers"])
    unit = (await session.execute(select(Unit.id, Unit.code, Unit.name_vi).limit(1))).one()
    await session.execute(
        update(ReportEvent).where(ReportEvent.report_id == filed["id"]).values(unit_id=unit.id)
    )
    await session.commit()
    detail = (await client.get(f"/api/v1/reports/{filed['id']}", headers=me["headers"])).json()
    assert detail["timeline"][0]["unit"]["code"] == unit.code
    assert detail["timeline"][0]["unit"]["name_vi"] == unit.name_vi

    someone_else = await sign_in_resident(client, caplog)
    r = await client.get(f"/api/v1/reports/{filed['id']}", headers=someone_else["headers"])
    assert r.status_code == 404 and r.json()["code"] == "report_not_found"


async def test_reference_reload_never_waits_for_the_request_pool(settings):
    """Lookups hold a pooled connection (their transaction) when they ask the reference
    snapshot; a reload drawing from that same pool waited for connections the waiting
    lookups held: with more lookups than connections, nothing answered until the pool's
    30 s timeout (500s). Reloads now have connections of their own."""
    from app.main import create_app

    small = create_app(msgspec.structs.replace(settings, db_pool_size=1))  # 2 connections
    async with running(small) as small_client:
        assert gc.get_freeze_count() > 0  # start-up's objects are out of the collector's way
        small.state.reference.invalidate()
        lookups = [
            small_client.get("/api/v1/areas/lookup", params={"lat": 21.0288, "lon": 105.8525})
            for _ in range(8)
        ]
        answers = await asyncio.wait_for(asyncio.gather(*lookups), timeout=15)
    assert [a.status_code for a in answers] == [200] * 8, answers[0].text
