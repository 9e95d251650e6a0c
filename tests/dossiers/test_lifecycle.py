"""The dossier lifecycle (issue 19; app/dossiers/lifecycle.py): every edge of the table is
made through the ingest, every other pair of statuses is refused for that event alone,
and events are placed by time, then sequence (``place``)."""

from __future__ import annotations

import itertools
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import select

from app.dossiers import lifecycle
from app.dossiers.models import STATUSES, Dossier, DossierEvent
from tests.dossiers.conftest import new_dossier_code

PAIRS = [(a, b) for a, b in itertools.product(STATUSES, STATUSES) if a != b]
EDGES = set(lifecycle.TRANSITIONS)


def test_the_table_names_only_known_statuses_and_its_lists_agree():
    assert {s for edge in EDGES for s in edge} <= set(STATUSES)
    assert set(lifecycle.OPEN_STATUSES) | set(lifecycle.FINAL_STATUSES) | {"completed"} == set(
        STATUSES
    )
    for status in lifecycle.FINAL_STATUSES:
        assert lifecycle.allowed_from(status) == []  # final: nothing leaves it
    for target in STATUSES:
        assert set(lifecycle.sources(target)) == {a for a, b in EDGES if b == target}
    # processing is a step an agency need not report to the applicant; the rest notify
    assert not lifecycle.notifies("received", "processing")
    assert lifecycle.notifies("processing", "completed")
    assert not lifecycle.notifies("completed", "processing")  # no such edge


async def test_every_edge_is_made_and_every_other_pair_refused(app, agency):
    t = agency.now() - timedelta(hours=2)
    codes = {pair: new_dossier_code() for pair in PAIRS}
    # each dossier created in the pair's first status (a first sync may start anywhere)
    r = await agency.post_events([agency.upsert(codes[p], at=t, status=p[0]) for p in PAIRS])
    assert r.json()["counts"]["applied"] == len(PAIRS), r.text
    moves = [agency.progress(codes[p], at=t + timedelta(minutes=5), status=p[1]) for p in PAIRS]
    r = await agency.post_events(moves)
    by_pair = dict(zip(PAIRS, r.json()["results"], strict=True))
    async with app.state.sessionmaker() as s:
        rows = {
            d.code: d
            for d in await s.scalars(select(Dossier).where(Dossier.code.in_(codes.values())))
        }
        events = {
            (e.dossier_id, e.event_id): e
            for e in await s.scalars(
                select(DossierEvent).where(DossierEvent.event_id.in_([m["id"] for m in moves]))
            )
        }
    made, refused = 0, 0
    for pair, result in by_pair.items():
        row = rows[codes[pair]]
        if pair in EDGES:
            assert result["result"] == "applied", (pair, result)
            assert row.status == pair[1], pair
            entry = events[(row.id, result["id"])]
            assert (entry.from_status, entry.to_status, entry.applied) == (*pair, True)
            made += 1
        else:
            assert (result["result"], result["code"]) == (
                "refused",
                "event_transition_invalid",
            ), pair
            assert row.status == pair[0], pair  # unchanged
            assert (row.id, result["id"]) not in events  # nothing written
            refused += 1
    assert made == len(EDGES) == 13
    assert refused == len(PAIRS) - len(EDGES) == 29


T = datetime(2026, 11, 25, 3, 0, tzinfo=UTC)


@pytest.mark.parametrize(
    "current, status_at, status_seq, target, at, seq, expected",
    [
        ("received", T, 0, None, T + timedelta(hours=1), 0, "same"),
        ("received", T, 0, "received", T + timedelta(hours=1), 0, "same"),
        ("received", T, 0, "processing", T + timedelta(hours=1), 0, "apply"),
        ("received", T, 0, "returned", T + timedelta(hours=1), 0, "invalid"),
        # older than the status: history only, even for a move the table has
        ("processing", T, 0, "completed", T - timedelta(seconds=1), 0, "late"),
        # a move impossible from where it stands now, but older: history, not refused
        ("completed", T, 0, "supplement_requested", T - timedelta(hours=1), 0, "late"),
        # the same instant: the sequence decides; an equal (time, seq) is not newer
        ("processing", T, 3, "completed", T, 2, "late"),
        ("processing", T, 3, "completed", T, 3, "late"),
        ("processing", T, 3, "completed", T, 4, "apply"),
    ],
)
def test_place(current, status_at, status_seq, target, at, seq, expected):
    assert lifecycle.place(current, status_at, status_seq, target, at, seq) == expected


async def test_a_batch_out_of_order_ends_where_the_newest_event_says(app, agency):
    code = new_dossier_code()
    t = agency.now() - timedelta(hours=5)
    steps = [
        agency.upsert(code, at=t),
        agency.progress(code, at=t + timedelta(hours=1), status="processing"),
        agency.progress(code, at=t + timedelta(hours=2), status="supplement_requested"),
        agency.progress(code, at=t + timedelta(hours=3), status="processing"),
        agency.progress(code, at=t + timedelta(hours=4), seq=1, status="completed"),
        agency.progress(code, at=t + timedelta(hours=4), seq=2, status="returned"),
    ]
    shuffled = [steps[i] for i in (5, 2, 0, 4, 1, 3)]
    r = await agency.post_events(shuffled)
    assert r.json()["counts"] == {"applied": 6, "recorded": 0, "duplicate": 0, "refused": 0}
    async with app.state.sessionmaker() as s:
        d = await s.scalar(select(Dossier).where(Dossier.code == code))
        trail = [
            (e.from_status, e.to_status)
            for e in await s.scalars(
                select(DossierEvent)
                .where(DossierEvent.dossier_id == d.id)
                .order_by(DossierEvent.at, DossierEvent.seq)
            )
        ]
    assert d.status == "returned"
    assert trail == [
        (None, "received"),
        ("received", "processing"),
        ("processing", "supplement_requested"),
        ("supplement_requested", "processing"),
        ("processing", "completed"),
        ("completed", "returned"),
    ]
