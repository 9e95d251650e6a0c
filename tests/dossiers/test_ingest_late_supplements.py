"""A supplement request carried by a late (older) event (issue 19, second pass): the
event is ``recorded`` (the status does not move) and its request is stored all the same
(what is needed, the old and new due dates); the due date moves only if it is the
dossier's newest request; a late request the agency already moved past is supplied at
the first move to processing after it; residents hear of a due date that moved."""

from __future__ import annotations

from datetime import timedelta

from sqlalchemy import select

from app.dossiers.models import Dossier, DossierSupplement
from tests.dossiers.conftest import new_dossier_code


def ask(agency, code, at, source, needed, new_due=None, old_due=None, status=None):
    supplement = {"id": source, "needed": needed}
    if new_due is not None:
        supplement["new_due_at"] = new_due.isoformat()
    if old_due is not None:
        supplement["old_due_at"] = old_due.isoformat()
    return agency.progress(code, at=at, status=status, supplement=supplement)


async def state(app, code):
    async with app.state.sessionmaker() as s:
        d = await s.scalar(select(Dossier).where(Dossier.code == code))
        sups = list(
            await s.scalars(
                select(DossierSupplement)
                .where(DossierSupplement.dossier_id == d.id)
                .order_by(DossierSupplement.requested_at)
            )
        )
    return d, sups


def results(r) -> list[str]:
    assert r.status_code == 200, r.text
    return [x["result"] for x in r.json()["results"]]


async def test_a_late_request_is_stored_and_moves_the_due_date_when_it_is_the_newest(app, agency):
    code = new_dossier_code()
    t = agency.now() - timedelta(days=3)
    due = t + timedelta(days=2)
    new_due = t + timedelta(days=6)
    await agency.post_events([agency.upsert(code, at=t, due_at=due.isoformat())])
    await agency.post_events(
        [agency.progress(code, at=t + timedelta(hours=5), status="processing")]
    )
    # asked at t+2h, sent after the move of t+5h: history, the status stays processing
    late = ask(
        agency,
        code,
        t + timedelta(hours=2),
        "bs-late",
        "Bản sao sổ hộ khẩu",
        new_due,
        due,
        status="supplement_requested",
    )
    assert results(await agency.post_events([late])) == ["recorded"]
    d, sups = await state(app, code)
    assert d.status == "processing"
    assert [(s.source_id, s.needed, s.old_due_at, s.new_due_at) for s in sups] == [
        ("bs-late", "Bản sao sổ hộ khẩu", due, new_due)
    ]
    assert sups[0].requested_at == t + timedelta(hours=2)
    # the only request: its new due date is the dossier's
    assert d.due_at == new_due
    # the agency moved to processing after it (t+5h): the documents came then
    assert sups[0].supplied_at == t + timedelta(hours=5)
    # sent again: nothing more
    assert results(await agency.post_events([{**late, "id": late["id"] + "-again"}])) == [
        "recorded"
    ]
    assert len((await state(app, code))[1]) == 1


async def test_a_late_request_older_than_a_stored_one_leaves_the_due_date(app, agency):
    code = new_dossier_code()
    t = agency.now() - timedelta(days=3)
    first_due, newer_due, older_due = (t + timedelta(days=d) for d in (2, 8, 5))
    await agency.post_events([agency.upsert(code, at=t, due_at=first_due.isoformat())])
    newer = ask(
        agency,
        code,
        t + timedelta(hours=6),
        "bs-2",
        "Giấy xác nhận",
        newer_due,
        first_due,
        status="supplement_requested",
    )
    assert results(await agency.post_events([newer])) == ["applied"]
    older = ask(
        agency,
        code,
        t + timedelta(hours=3),
        "bs-1",
        "Ảnh 4x6",
        older_due,
        first_due,
        status="supplement_requested",
    )
    assert results(await agency.post_events([older])) == ["recorded"]
    d, sups = await state(app, code)
    assert [s.source_id for s in sups] == ["bs-1", "bs-2"]  # both stored
    assert (d.status, d.due_at) == ("supplement_requested", newer_due)  # the newest stands
    assert all(s.supplied_at is None for s in sups)


async def test_two_late_requests_in_one_batch_the_newest_sets_the_due_date(app, agency):
    code = new_dossier_code()
    t = agency.now() - timedelta(days=3)
    due_a, due_b = t + timedelta(days=4), t + timedelta(days=7)
    await agency.post_events([agency.upsert(code, at=t)])
    await agency.post_events(
        [agency.progress(code, at=t + timedelta(hours=9), status="processing")]
    )
    # newest first in the batch: applied in time order, the later request wins
    b = ask(agency, code, t + timedelta(hours=4), "bs-b", "Tờ khai bổ sung", due_b)
    a = ask(agency, code, t + timedelta(hours=2), "bs-a", "Bản sao CCCD", due_a)
    assert results(await agency.post_events([b, a])) == ["recorded", "recorded"]
    d, sups = await state(app, code)
    assert [s.source_id for s in sups] == ["bs-a", "bs-b"]
    assert d.due_at == due_b
    assert d.status == "processing"


async def test_a_newer_event_does_not_take_an_older_requests_due_date_over_a_newer_one(app, agency):
    """An applied event (newer than the status) whose request is older than one stored
    from an event without a status: stored, the due date stays the newer request's."""
    code = new_dossier_code()
    t = agency.now() - timedelta(days=3)
    await agency.post_events([agency.upsert(code, at=t, status="processing")])
    later_due, earlier_due = t + timedelta(days=9), t + timedelta(days=4)
    # a request at t+8h in an event without a status: the status stays (t)
    assert results(
        await agency.post_events(
            [ask(agency, code, t + timedelta(hours=8), "bs-8", "A", later_due)]
        )
    ) == ["applied"]
    # then one at t+3h, still newer than the status: applied, its request is older
    assert results(
        await agency.post_events(
            [ask(agency, code, t + timedelta(hours=3), "bs-3", "B", earlier_due)]
        )
    ) == ["applied"]
    d, sups = await state(app, code)
    assert [s.source_id for s in sups] == ["bs-3", "bs-8"]
    assert d.due_at == later_due
