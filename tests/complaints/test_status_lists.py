"""Issue 18 item 4: the open statuses (and the lists made from them) are defined once, in
app/complaints/lifecycle.py. The statements written as SQL text build their IN lists from
those constants, and the partial indexes whose predicates name a list name the same one
(else a sweep would silently stop using its index)."""

from __future__ import annotations

import re
from pathlib import Path

from app.complaints import lifecycle
from app.complaints.models import Report
from app.core import ops
from app.routing import service as routing

APP = Path(__file__).resolve().parents[2] / "app"
QUOTED = re.compile(r"'([a-z_]+)'")
STATUS = "submitted|assigned|in_progress|reopened|resolved|closed|rejected|duplicate|withdrawn"
# two statuses side by side in quotes: a list of statuses spelled out
SPELLED_LIST = re.compile(rf"""['"]({STATUS})['"]\s*,\s*['"]({STATUS})['"]""")


def index_statuses(name: str) -> set[str]:
    [index] = [i for i in Report.__table__.indexes if i.name == name]
    return set(QUOTED.findall(str(index.dialect_options["postgresql"]["where"])))


def test_the_lists_are_open_statuses():
    assert set(lifecycle.DEADLINE_STATUSES) == set(lifecycle.OPEN_STATUSES) - {"submitted"}
    assert set(lifecycle.HANDLING_STATUSES) == set(lifecycle.sources("assigned", "transfer"))
    assert set(lifecycle.sql_in(lifecycle.OPEN_STATUSES).split(", ")) == {
        f"'{s}'" for s in lifecycle.OPEN_STATUSES
    }


def test_partial_indexes_name_the_lifecycles_lists():
    assert index_statuses("ix_reports_unit_open_due") == set(lifecycle.OPEN_STATUSES)
    for name in ("ix_reports_open_due", "ix_reports_open_remind", "ix_reports_open_escalate"):
        assert index_statuses(name) == set(lifecycle.DEADLINE_STATUSES), name
    assert index_statuses("ix_reports_waiting_created_at") == set(routing.ROUTE_FROM)


def test_the_sweeps_and_the_backlog_count_use_the_lifecycles_lists():
    deadline_in = f"r.status IN ({lifecycle.sql_in(lifecycle.DEADLINE_STATUSES)})"
    assert deadline_in in routing._REMIND.text
    assert deadline_in in routing._OVERDUE.text
    assert set(routing.ESCALATE_FROM) == set(lifecycle.DEADLINE_STATUSES)
    assert ops.WAITING_FOR_ROUTING == routing.ROUTE_FROM


def test_no_status_list_is_spelled_out_in_the_handling_code():
    """The services that act on reports (and the health check) take every list of
    statuses from lifecycle; only the table itself and the index predicates spell them."""
    modules = [
        "routing/service.py",
        "complaints/service.py",
        "complaints/handling.py",
        "complaints/photo_claim.py",
        "console/service.py",
        "core/ops.py",
    ]
    spelled = {
        module: SPELLED_LIST.findall((APP / module).read_text(encoding="utf-8"))
        for module in modules
    }
    assert spelled == {module: [] for module in modules}
