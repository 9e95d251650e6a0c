"""Setups for the sync scenarios (issue 24 item 2; ``bench/scenarios.py``): residents
with issue 24's app-open load, 50 reports, 200 notifications and 10 followed dossiers
each, written straight into the app's database (one ``INSERT … SELECT`` per table;
the sync triggers record them as they would in production), access tokens minted by the
app's own code, and cursors taken through the running app.

- ``now``: a cursor after everything (the answer: an empty page, one round trip);
- ``few``: a cursor from before five changes (two reports moved on, three notices), so
  each request returns the same five items, as an app opening after a few changes.

``BENCH_SYNC_RESIDENTS`` residents (default 20), ``ANALYZE`` afterwards.
"""

from __future__ import annotations

import asyncio
import os
import time
import uuid

import httpx
from sqlalchemy import text

Values = dict[str, list[str]]

REPORTS, NOTIFICATIONS, DOSSIERS = 50, 200, 10

_SEED = (
    """
    INSERT INTO reports (id, code, kind, status, category_code, description, address_text,
                         location, area_code, reporter_id, created_at, updated_at,
                         hide_identity)
    SELECT gen_random_uuid(), 'S' || upper(substr(md5(random()::text), 1, 11)),
           'complaint', 'assigned', 'roads',
           'Ổ gà lớn giữa đường, xe máy dễ ngã khi trời mưa. Số ' || i, 'Phố Đinh Tiên Hoàng',
           ST_SetSRID(ST_MakePoint(105.8525, 21.0288), 4326),
           (SELECT code FROM areas ORDER BY code LIMIT 1), u.id,
           now() - i * interval '1 day', now() - i * interval '1 hour', false
      FROM unnest(CAST(:ids AS uuid[])) u(id), generate_series(1, :reports) i
    """,
    """
    INSERT INTO notifications (user_id, kind, title, body, data, dedupe_key, created_at,
                               push_status, read_at)
    SELECT u.id, 'report_routed', 'Phản ánh đã được chuyển',
           'Phản ánh của bạn đã được chuyển tới UBND phường Hàng Trống, hạn xử lý 12/12.',
           jsonb_build_object('report_code', 'SY000000001',
                              'link', 'cityapp://reports/' || gen_random_uuid()),
           'bench:' || gen_random_uuid(), now() - i * interval '1 hour', 'sent',
           CASE WHEN i > 5 THEN now() END
      FROM unnest(CAST(:ids AS uuid[])) u(id), generate_series(1, :notifications) i
    """,
    """
    INSERT INTO agencies (id, code, name_vi, name_en, unit_id)
    SELECT gen_random_uuid(), 'SYNC-' || substr(md5(random()::text), 1, 8),
           'Sở Tư pháp Hà Nội', 'Hanoi Justice', (SELECT id FROM units ORDER BY code LIMIT 1)
    """,
    """
    INSERT INTO dossiers (id, code, agency_id, procedure_code, procedure_name,
                          applicant_name, applicant_kind, online, status, received_at,
                          due_at, status_at)
    SELECT gen_random_uuid(), 'SYNC.' || u.id || '.' || i,
           (SELECT id FROM agencies WHERE code LIKE 'SYNC-%' ORDER BY created_at DESC LIMIT 1),
           '1.001234', 'Cấp phiếu lý lịch tư pháp', 'Nguyễn Văn An', 'person', true,
           'processing', now() - i * interval '2 days', now() + interval '5 days', now()
      FROM unnest(CAST(:ids AS uuid[])) u(id), generate_series(1, :dossiers) i
    """,
    """
    INSERT INTO dossier_links (user_id, dossier_id)
    SELECT split_part(code, '.', 2)::uuid, id FROM dossiers
     WHERE code LIKE 'SYNC.%' AND split_part(code, '.', 2)::uuid = ANY(CAST(:ids AS uuid[]))
    """,
)

# five changes per resident: two reports move on, three new notices
_CHANGES = (
    """
    UPDATE reports SET status = 'in_progress', updated_at = now()
     WHERE id IN (SELECT id FROM reports WHERE reporter_id = ANY(CAST(:ids AS uuid[]))
                   AND status = 'assigned' ORDER BY created_at DESC LIMIT :two)
    """,
    """
    INSERT INTO notifications (user_id, kind, title, body, data, dedupe_key, created_at,
                               push_status)
    SELECT u.id, 'report_reply', 'Có trả lời mới',
           'UBND phường Hàng Trống đã trả lời phản ánh của bạn.',
           jsonb_build_object('report_code', 'SY000000001'),
           'bench:' || gen_random_uuid(), now(), 'sent'
      FROM unnest(CAST(:ids AS uuid[])) u(id), generate_series(1, 3) i
    """,
)


async def _cursor(client: httpx.AsyncClient, token: str, cursor: str | None = None) -> str:
    """Sync to the end (a page of 500 at a time) and return the last cursor."""
    while True:
        params = {"limit": "500", **({"cursor": cursor} if cursor else {})}
        r = await client.get(
            "/api/v1/me/sync", params=params, headers={"Authorization": f"Bearer {token}"}
        )
        r.raise_for_status()
        page = r.json()
        cursor = page["cursor"]
        if not page["has_more"]:
            return cursor


async def _wait_for_horizon(engine) -> None:  # noqa: ANN001
    """Until every transaction so far has ended (so a sync sees all of it)."""
    async with engine.connect() as conn:
        mark = await conn.scalar(text("SELECT pg_current_xact_id()::text::bigint"))
        await conn.commit()
    for _ in range(600):
        async with engine.connect() as conn:
            now = await conn.scalar(
                text("SELECT pg_snapshot_xmin(pg_current_snapshot())::text::bigint")
            )
        if now > mark:
            return
        await asyncio.sleep(0.05)


async def residents_for_sync(base_url: str) -> Values:
    from app.core import db
    from app.core.auth import Principal, issue_access_token
    from app.settings import get_settings

    settings = get_settings()
    n = int(os.environ.get("BENCH_SYNC_RESIDENTS", "20"))
    ids = [uuid.uuid4() for _ in range(n)]
    engine = db.make_engine(settings)
    started = time.perf_counter()
    async with engine.begin() as conn:
        await conn.execute(
            text(
                "INSERT INTO users (id, kind, identity_level)"
                " SELECT id, 'resident', 1 FROM unnest(CAST(:ids AS uuid[])) id"
            ),
            {"ids": ids},
        )
        for statement in _SEED:
            await conn.execute(
                text(statement),
                {
                    "ids": ids,
                    "reports": REPORTS,
                    "notifications": NOTIFICATIONS,
                    "dossiers": DOSSIERS,
                },
            )
    async with engine.begin() as conn:
        await conn.execute(
            text("ANALYZE users, reports, notifications, dossiers, dossier_links, sync_changes")
        )
    tokens = [
        issue_access_token(
            settings, Principal(user_id=i, kind="resident", identity_level=1, sid=uuid.uuid4())
        )
        for i in ids
    ]
    await _wait_for_horizon(engine)
    async with httpx.AsyncClient(base_url=base_url, timeout=60) as client:
        before = [await _cursor(client, t) for t in tokens]
        async with engine.begin() as conn:
            for statement in _CHANGES:
                await conn.execute(text(statement), {"ids": ids, "two": 2 * n})
        await _wait_for_horizon(engine)
        now = [await _cursor(client, t, c) for t, c in zip(tokens, before, strict=True)]
    await engine.dispose()
    print(f"sync setup: {n} residents in {time.perf_counter() - started:.1f} s", flush=True)
    return {"token": tokens, "cursor_now": now, "cursor_few": before}
