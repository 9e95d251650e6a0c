"""Reference data served from each process's snapshot, dropped when PostgreSQL says so."""

from __future__ import annotations

import asyncio
import uuid

from sqlalchemy import text

from app.places.reference import ReferenceData


async def _until(check, seconds: float = 3.0) -> bool:
    deadline = asyncio.get_running_loop().time() + seconds
    while asyncio.get_running_loop().time() < deadline:
        if await check():
            return True
        await asyncio.sleep(0.02)
    return await check()


async def _execute(app, sql: str, **params) -> None:
    async with app.state.sessionmaker() as s:
        await s.execute(text(sql), params)
        await s.commit()


async def test_a_renamed_category_is_served_after_the_commit_without_a_restart(app, client):
    before = {c["code"]: c["name"] for c in (await client.get("/api/v1/categories")).json()}
    assert before["waste"]
    new_name = f"Rác thải {uuid.uuid4().hex[:6]}"
    await _execute(app, "UPDATE categories SET name_vi = :n WHERE code = 'waste'", n=new_name)
    try:

        async def renamed() -> bool:
            listed = (await client.get("/api/v1/categories")).json()
            return {c["code"]: c["name"] for c in listed}["waste"] == new_name

        assert await _until(renamed)
    finally:
        await _execute(
            app, "UPDATE categories SET name_vi = :n WHERE code = 'waste'", n=before["waste"]
        )


async def test_served_lists_need_no_query_while_nothing_changed(app, client):
    await client.get("/api/v1/units")  # loaded
    reference: ReferenceData = app.state.reference
    assert await _until(lambda: _true(reference._listener.live))
    loaded = reference._snapshot
    for _ in range(5):
        assert (await client.get("/api/v1/units")).status_code == 200
        assert (await client.get("/api/v1/areas", params={"q": "hoàn kiếm"})).status_code == 200
    assert reference._snapshot is loaded  # the same snapshot: not reloaded


async def _true(value: bool) -> bool:
    return value


async def test_a_new_child_unit_joins_its_parents_subtree(app, client):
    """A unit created a moment ago is never 'unknown' (asked for by id, a miss reloads at
    once), and its parent's subtree includes it as soon as the NOTIFY arrives."""
    reference: ReferenceData = app.state.reference
    snapshot = await reference.current()
    parent = next(u for u in snapshot.units.values() if u.kind == "department")
    child_id, grandchild_id = uuid.uuid4(), uuid.uuid4()
    code = uuid.uuid4().hex[:8]
    await _execute(
        app,
        "INSERT INTO units (id, code, name_vi, name_en, kind, parent_id) VALUES"
        " (:c, :cc, 'Tổ con', 'Child team', 'department', :p),"
        " (:g, :gc, 'Tổ cháu', 'Grandchild team', 'department', :c)",
        c=child_id,
        cc=f"test-child-{code}",
        g=grandchild_id,
        gc=f"test-grandchild-{code}",
        p=parent.id,
    )
    try:
        assert (await reference.unit(grandchild_id)).parent_id == child_id  # at once
        assert await reference.with_descendants([grandchild_id]) == {grandchild_id}

        async def in_subtree() -> bool:
            subtree = await reference.with_descendants([parent.id])
            return {parent.id, child_id, grandchild_id} <= subtree

        assert await _until(in_subtree)
        units = {u["code"]: u for u in (await client.get("/api/v1/units")).json()}
        assert units[f"test-grandchild-{code}"]["parent_code"] == f"test-child-{code}"
    finally:
        await _execute(app, "DELETE FROM units WHERE id IN (:g)", g=grandchild_id)
        await _execute(app, "DELETE FROM units WHERE id IN (:c)", c=child_id)


async def test_without_its_listener_a_process_still_sees_changes_within_seconds(app, settings):
    """PostgreSQL cannot tell a process whose listening connection is gone; its snapshot
    is then trusted only briefly."""
    reference = ReferenceData(app.state.sessionmaker, settings.database_url)  # never started
    first = await reference.current()
    original = first.categories["waste"].name_en
    new_name = f"Waste {uuid.uuid4().hex[:6]}"
    await _execute(app, "UPDATE categories SET name_en = :n WHERE code = 'waste'", n=new_name)
    try:

        async def seen() -> bool:
            return (await reference.current()).categories["waste"].name_en == new_name

        assert await _until(seen, seconds=4.0)
    finally:
        await _execute(app, "UPDATE categories SET name_en = :n WHERE code = 'waste'", n=original)
