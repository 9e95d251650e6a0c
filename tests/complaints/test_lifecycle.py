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
