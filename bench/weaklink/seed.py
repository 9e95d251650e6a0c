"""The weak-link benchmark's resident (issue 24): 50 reports, 200 notifications, 10 dossiers.

    python bench/weaklink/seed.py seed    # prints JSON: the token, ids, the agency's secret
    python bench/weaklink/seed.py last-notification USER_ID
    python bench/weaklink/seed.py top-up USER_ID SINCE_ID WANTED  # notifications via notify

Run as a script with the app's source tree first on ``sys.path`` (the benchmark runs it
with ``cwd`` and ``PYTHONPATH`` set to the tree being measured, which may be an export
of an older commit), against ``DATABASE_URL`` (migrated and loaded by ``app.cli setup``).

What is written, through the project's own services where a service exists:

- one level-2 resident (verified citizen ID, so the dossiers filed under it are theirs)
  and an officer of the ward committee ``ubnd-00070`` (``accounts.create_staff``);
- 50 reports of the resident in that ward (SQL, as ``bench/seed_reports.py`` writes them):
  10 assigned, 10 in progress, 10 resolved, 20 closed, created over the last 120 days;
- 200 notifications through ``notifications.service.notify`` (the texts rendered from
  the catalogue, the app's links), four per report, 190 of them read;
- an agency registered through the admin service with a signing secret, and 10 dossiers
  posted by the caller through the signed ingest endpoint (the events are built here).

"A few things changed" (``make_changes`` in run.py): the officer accepts one assigned
report and resolves one in progress (``POST /console/reports/{id}/accept`` and
``/resolve``: each notifies the resident), the agency posts one dossier event, and
``top-up`` writes notifications through ``notify`` until 5 are new.
"""

from __future__ import annotations

import asyncio
import json
import sys
import uuid
from datetime import UTC, datetime, timedelta

from sqlalchemy import text

from app import policy
from app.accounts import service as accounts
from app.complaints.links import resident_link
from app.core import db
from app.core.auth import Principal, issue_access_token
from app.core.security import keyed_hash
from app.dossiers import agencies
from app.dossiers.ingest_schemas import AgencyIn
from app.notifications.service import Notice, notify
from app.settings import get_settings

UNIT = "ubnd-00070"
CITIZEN_ID = "079000000001"  # bench/health_seed.py's patient 1 (bench_cccd(1))
STAFF_EMAIL = "w-weaklink@city.test"
STAFF_PASSWORD = "weak link bench password"
AGENCY = "W-WEAKLINK"
REPORT_KINDS = ("report_routed", "report_assigned", "report_answered", "report_resolved")

REPORTS = """
WITH unit AS (SELECT u.id, u.area_code, a.geom FROM units u JOIN areas a ON a.code = u.area_code
              WHERE u.code = :unit),
n AS (SELECT g AS n,
             CASE WHEN g <= 10 THEN 'assigned' WHEN g <= 20 THEN 'in_progress'
                  WHEN g <= 30 THEN 'resolved' ELSE 'closed' END AS status
        FROM generate_series(1, 50) g)
INSERT INTO reports (id, code, kind, status, category_code, description, location, area_code,
                     reporter_id, hide_identity, unit_id, routed_at, due_at, created_at,
                     updated_at, resolved_at, closed_at, supporters_count, reopen_count)
SELECT gen_random_uuid(), 'WLNK' || lpad(n.n::text, 6, '0'), 'complaint', n.status,
       (ARRAY['roads','waste','drainage-flooding','street-lighting','trees-parks'])[1 + n.n % 5],
       'Ổ gà lớn trước số ' || n.n || ' phố Hàng Bông, xe máy đi qua rất nguy hiểm, '
         || 'đề nghị phường cho vá lại sớm.',
       ST_PointOnSurface(unit.geom), unit.area_code, :user_id, false, unit.id,
       now() - (n.n * interval '2 days') + interval '1 hour',
       now() - (n.n * interval '2 days') + interval '10 days',
       now() - (n.n * interval '2 days'), now() - (n.n * interval '2 days') + interval '3 days',
       CASE WHEN n.status IN ('resolved', 'closed')
            THEN now() - (n.n * interval '2 days') + interval '3 days' END,
       CASE WHEN n.status = 'closed' THEN now() - (n.n * interval '2 days') + interval '10 days'
       END, 0, 0
  FROM n, unit
RETURNING id, code, status
"""


def dossier_event(code: str, n: int, at: datetime) -> dict:
    """A native ``dossier.upsert`` of one of the resident's dossiers (the fields the
    agencies' systems send; tests/dossiers/conftest.py builds the same)."""
    return {
        "id": f"evt-w-{code}",
        "type": "dossier.upsert",
        "dossier_code": code,
        "at": at.isoformat(),
        "seq": 0,
        "status": "processing" if n % 3 else "received",
        "dossier": {
            "procedure_code": "1.001757",
            "procedure_name": "Cấp phiếu lý lịch tư pháp",
            "field_code": "LLTP",
            "applicant": {
                "name": "Nguyễn Văn Bền",
                "kind": "person",
                "phone": "0912345678",
                "citizen_id": CITIZEN_ID,
            },
            "summary": f"Cấp phiếu lý lịch tư pháp số {n}",
            "online": True,
            "handling_unit": "Phòng Hành chính tư pháp",
            "due_at": (at + timedelta(days=10)).isoformat(),
        },
    }


async def seed() -> dict:
    from sqlalchemy.ext.asyncio import create_async_engine

    settings = get_settings()
    engine = create_async_engine(settings.database_url, pool_size=2)
    sessionmaker = db.make_sessionmaker(engine)
    now = datetime.now(UTC)
    user_id = uuid.uuid4()
    try:
        async with db.transaction(sessionmaker, None) as session:
            await session.execute(
                text(
                    "INSERT INTO users (id, kind, identity_level, full_name, phone, "
                    "citizen_id_hash, citizen_id_last4, home_area_code) "
                    "SELECT :id, 'resident', 2, 'Nguyễn Văn Bền', '+84912345678', :hash, "
                    ":last4, u.area_code FROM units u WHERE u.code = :unit"
                ),
                {
                    "id": user_id,
                    "hash": keyed_hash(settings.citizen_id_hash_key, CITIZEN_ID),
                    "last4": CITIZEN_ID[-4:],
                    "unit": UNIT,
                },
            )
            reports = (
                await session.execute(text(REPORTS), {"unit": UNIT, "user_id": user_id})
            ).all()
            notices = [
                Notice(
                    kind,
                    r.id,
                    r.code,
                    "user",
                    f"w-bench:{r.code}:{kind}",
                    unit_vi="UBND phường Hàng Trống",
                    unit_en="Hang Trong Ward People's Committee",
                    due=now + timedelta(days=5),
                    data=resident_link(r.id),
                    user_id=user_id,
                )
                for r in reports
                for kind in REPORT_KINDS
            ]
            await notify(session, notices, now - timedelta(days=1))
            # all read but the last ten, oldest first by id
            await session.execute(
                text(
                    "UPDATE notifications SET read_at = now(), push_status = 'sent' "
                    "WHERE user_id = :id AND id NOT IN (SELECT id FROM notifications "
                    "WHERE user_id = :id ORDER BY id DESC LIMIT 10)"
                ),
                {"id": user_id},
            )
            await accounts.create_staff(
                session, STAFF_EMAIL, "Cán bộ phường", STAFF_PASSWORD, [("officer", UNIT)]
            )
            actor = policy.system_actor(now)
            await agencies.create_agency(
                session,
                actor,
                AgencyIn(
                    code=AGENCY,
                    name_vi="Sở Tư pháp Hà Nội",
                    name_en="Hanoi Justice",
                    unit_code=UNIT,
                ),
            )
            issued = await agencies.issue_secret(session, actor, AGENCY, timedelta(days=2))
    finally:
        await engine.dispose()
    token = issue_access_token(
        settings,
        Principal(user_id=user_id, kind="resident", identity_level=2, sid=uuid.uuid4()),
    )
    dossiers = [
        dossier_event(f"000.00.12.H29-WL{n:04d}", n, now - timedelta(days=3 * n))
        for n in range(1, 11)
    ]
    return {
        "user_id": str(user_id),
        "token": token,
        "staff_email": STAFF_EMAIL,
        "staff_password": STAFF_PASSWORD,
        "agency": AGENCY,
        "agency_secret": issued.secret,
        "dossier_events": dossiers,
        "assigned": [str(r.id) for r in reports if r.status == "assigned"],
        "in_progress": [str(r.id) for r in reports if r.status == "in_progress"],
    }


async def top_up_notifications(user_id: str, since_id: int, wanted: int) -> int:
    """Notifications through ``notify`` until ``wanted`` are newer than ``since_id``;
    returns how many it wrote."""
    from sqlalchemy.ext.asyncio import create_async_engine

    settings = get_settings()
    engine = create_async_engine(settings.database_url, pool_size=1)
    now = datetime.now(UTC)
    try:
        async with db.transaction(db.make_sessionmaker(engine), None) as session:
            have = await session.scalar(
                text("SELECT count(*) FROM notifications WHERE user_id = :u AND id > :i"),
                {"u": uuid.UUID(user_id), "i": since_id},
            )
            rows = (
                await session.execute(
                    text(
                        "SELECT id, code FROM reports WHERE reporter_id = :u "
                        "AND status = 'closed' ORDER BY code LIMIT :n"
                    ),
                    {"u": uuid.UUID(user_id), "n": max(0, wanted - have)},
                )
            ).all()
            written = await notify(
                session,
                [
                    Notice(
                        "report_reminder",
                        r.id,
                        r.code,
                        "user",
                        f"w-bench-change:{now.timestamp()}:{r.code}",
                        due=now + timedelta(days=2),
                        data=resident_link(r.id),
                        user_id=uuid.UUID(user_id),
                    )
                    for r in rows
                ],
                now,
            )
    finally:
        await engine.dispose()
    return len(written)


async def last_notification_id(user_id: str) -> int:
    from sqlalchemy.ext.asyncio import create_async_engine

    engine = create_async_engine(get_settings().database_url, pool_size=1)
    try:
        async with engine.connect() as conn:
            return await conn.scalar(
                text("SELECT coalesce(max(id), 0) FROM notifications WHERE user_id = :u"),
                {"u": uuid.UUID(user_id)},
            )
    finally:
        await engine.dispose()


def main(argv: list[str]) -> int:
    command = argv[0] if argv else "seed"
    if command == "seed":
        out: dict | int = asyncio.run(seed())
    elif command == "last-notification":
        out = asyncio.run(last_notification_id(argv[1]))
    elif command == "top-up":
        out = asyncio.run(top_up_notifications(argv[1], int(argv[2]), int(argv[3])))
    else:
        print(__doc__, file=sys.stderr)
        return 2
    print(json.dumps(out))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
