"""The transition table itself: who may move a report where."""

from __future__ import annotations

import pytest

from app.complaints import lifecycle
from app.complaints.models import STATUSES


def test_every_status_in_the_table_is_a_known_status():
    for frm, to in lifecycle.TRANSITIONS:
        assert frm in STATUSES and to in STATUSES


def test_final_statuses_have_no_way_out():
    for status in lifecycle.FINAL_STATUSES:
        assert lifecycle.allowed_from(status) == []


@pytest.mark.parametrize(
    ("status", "actor", "allowed"),
    [
        ("submitted", "resident", ["withdrawn"]),
        ("submitted", "staff", ["assigned", "duplicate", "rejected"]),
        ("assigned", "resident", []),
        ("in_progress", "staff", ["duplicate", "rejected", "resolved"]),
        ("resolved", "resident", ["closed", "reopened"]),
        ("resolved", "staff", []),
        ("reopened", "system", ["assigned"]),
    ],
)
def test_allowed_targets_per_actor(status, actor, allowed):
    assert lifecycle.allowed_from(status, actor) == allowed


def test_every_open_status_leads_somewhere():
    for status in lifecycle.OPEN_STATUSES:
        assert lifecycle.allowed_from(status)


# ---------------------------------------------------------------- issue 18 item 2

# every action the table names, and the function that makes it (each goes through
# lifecycle.transition, or, set-based, selects its rows by lifecycle.sources)
ACTIONS = {
    "route": ("app.routing.service", "route_pending"),
    "reject": ("app.complaints.handling", "reject"),
    "merge": ("app.complaints.handling", "merge_duplicate"),
    "withdraw": ("app.complaints.service", "withdraw"),
    "accept": ("app.complaints.handling", "accept"),
    "transfer": ("app.routing.service", "transfer"),
    "escalate": ("app.routing.service", "sweep_deadlines"),
    "resolve": ("app.complaints.handling", "resolve"),
    "rate": ("app.complaints.service", "rate"),
    "auto_close": ("app.routing.service", "close_unrated"),
    "reopen": ("app.complaints.service", "reopen"),
}


def test_every_edge_is_made_by_a_named_action_that_exists():
    import importlib

    named = {a for rule in lifecycle.TRANSITIONS.values() for a in rule.actions}
    assert named == set(ACTIONS)
    for module, function in ACTIONS.values():
        assert callable(getattr(importlib.import_module(module), function)), function
    for (frm, to), rule in lifecycle.TRANSITIONS.items():
        assert rule.actions and rule.actors, (frm, to)
        for action in rule.actions:
            assert frm in lifecycle.sources(to, action)


def test_the_set_based_statements_take_their_statuses_from_the_table():
    from app.routing import service as routing

    assert set(routing.ROUTE_FROM) == {"submitted", "reopened"}
    assert set(routing.ESCALATE_FROM) == {"assigned", "in_progress", "reopened"}
    assert routing.CLOSE_FROM == ("resolved",)
    # transfer and escalation from in_progress are edges now (they were made past the table)
    assert lifecycle.allows("in_progress", "assigned", "staff", "transfer")
    assert lifecycle.allows("in_progress", "assigned", "system", "escalate")
    assert not lifecycle.allows("in_progress", "assigned", "staff", "route")


async def test_every_edge_goes_and_every_other_pair_is_refused(app):
    import uuid as uuid_
    from datetime import UTC, datetime

    from app.complaints.models import Report
    from app.core.errors import Conflict

    now = datetime.now(UTC)
    async with app.state.sessionmaker() as session:
        for frm in STATUSES:
            for to in STATUSES:
                for actor in ("resident", "staff", "system"):
                    report = Report(id=uuid_.uuid4(), status=frm)
                    rule = lifecycle.TRANSITIONS.get((frm, to))
                    if rule is not None and actor in rule.actors:
                        for action in rule.actions:
                            report.status = frm
                            event = lifecycle.transition(
                                session,
                                report,
                                to,
                                actor_id=None,
                                actor_kind=actor,
                                now=now,
                                action=action,
                            )
                            assert report.status == to
                            assert (event.from_status, event.to_status) == (frm, to)
                            assert event.public == rule.public
                        # an action the edge does not name is refused
                        report.status = frm
                        with pytest.raises(Conflict):
                            lifecycle.transition(
                                session,
                                report,
                                to,
                                actor_id=None,
                                actor_kind=actor,
                                now=now,
                                action="explode",
                            )
                    else:
                        with pytest.raises(Conflict) as refused:
                            lifecycle.transition(
                                session, report, to, actor_id=None, actor_kind=actor, now=now
                            )
                        assert refused.value.code == "invalid_transition"
                        assert report.status == frm
            session.expunge_all()
