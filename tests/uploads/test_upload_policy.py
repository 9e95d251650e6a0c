"""app/policy.py's questions for resumable uploads, without a database: a resident
creates uploads and uses only their own; staff and the system neither."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime

from app import policy
from app.core.auth import Principal

NOW = datetime(2026, 12, 5, tzinfo=UTC)


def _actor(kind: str, user_id: uuid.UUID) -> policy.Actor:
    principal = Principal(user_id=user_id, kind=kind, identity_level=1, sid=uuid.uuid4())
    return policy.build_actor(principal, frozenset(), NOW)


def test_only_the_creator_uses_an_upload():
    owner, other = uuid.uuid4(), uuid.uuid4()
    resident = _actor("resident", owner)
    assert policy.may_create_upload(resident)
    assert policy.may_use_upload(resident, owner)
    assert not policy.may_use_upload(_actor("resident", other), owner)
    staff = _actor("staff", owner)  # the same id as staff: still not a resident's upload
    assert not policy.may_create_upload(staff) and not policy.may_use_upload(staff, owner)
    system = policy.system_actor(NOW)
    assert not policy.may_create_upload(system) and not policy.may_use_upload(system, owner)
