"""The authorization policy (issue 18 item 1): one table, written here by hand, of
roles × the object's relation to the actor's unit × every question, checked on the pure
functions of ``app.policy``, and through HTTP for a representative subset (the JSON API
and the console's pages: the page offers exactly what the policy allows, a denied action
is a 403 problem+json / a 403 page).

The tree: PARENT → OWN → CHILD → GRANDCHILD, and OTHER beside them. Officers and managers
hold their role in OWN; the dispatcher in the dispatcher unit; the admin has no unit.
"""

from __future__ import annotations

import uuid
from datetime import UTC, datetime

import pytest
from sqlalchemy import text

from app import policy
from app.core.auth import Principal, RoleGrant
from app.places.reference import Snapshot, UnitRef
from tests.accounts.factories import sign_in_staff
from tests.routing.conftest import (  # noqa: F401 (fixtures)
    WEDNESDAY,
    clock,
    hanoi,
    reference_rules_only,
    resident_now,
    run_worker,
)
from tests.routing.test_routing import file_petition
from tests.web.test_pages import browser_for, csrf_of

PARENT, OWN, CHILD, GRANDCHILD, OTHER, DISPATCH = (uuid.uuid4() for _ in range(6))
RELATIONS = {
    "own": OWN,
    "child": CHILD,
    "grandchild": GRANDCHILD,
    "parent": PARENT,
    "other": OTHER,
    "unassigned": None,
}
ROLES = ("resident", "officer", "manager", "dispatcher", "admin")

# What each role may do, by relation. Keys: a report action (app.policy.REPORT_ACTIONS),
# "see" (the staff view of a report), "contact" (the reporter's name and phone), and the
# unit questions "queue", "index" (service index), "manage" (staff list, audit trail).
HANDLING = {
    "see",
    "accept",
    "reply",
    "info_request",
    "note",
    "resolve",
    "reject",
    "merge",
    "transfer",
    "extension_request",
    "hide_text",
    "hide_photo",
}
MANAGING = {"extension", "extension_decision", "contact", "manage"}
UNIT_VIEW = {"queue", "index"}
EVERYTHING = HANDLING | MANAGING | UNIT_VIEW
NOTHING: set[str] = set()

EXPECTED: dict[str, dict[str, set[str]]] = {
    "resident": dict.fromkeys(RELATIONS, NOTHING),
    "officer": {
        "own": HANDLING | UNIT_VIEW,
        "child": NOTHING,  # officers: only their own units
        "grandchild": NOTHING,
        "parent": NOTHING,
        "other": NOTHING,
        "unassigned": NOTHING,
    },
    "manager": {
        "own": EVERYTHING,
        "child": EVERYTHING,  # the parent-unit fix: every unit below, transitively
        "grandchild": EVERYTHING,
        "parent": NOTHING,
        "other": NOTHING,
        "unassigned": NOTHING,
    },
    "dispatcher": {
        # city-wide, but extensions and unit administration are managers' and admins'
        **dict.fromkeys(RELATIONS, HANDLING | UNIT_VIEW | {"contact"}),
    },
    "admin": dict.fromkeys(RELATIONS, EVERYTHING),
}
QUESTIONS = sorted(EVERYTHING)
UNIT_QUESTIONS = {"queue", "index", "manage"}


def snapshot() -> Snapshot:
    def unit(uid, code, parent=None, kind="department"):
        return UnitRef(uid, code, code, code, kind, parent, None)

    return Snapshot(
        [],
        [
            unit(PARENT, "parent"),
            unit(OWN, "own", PARENT),
            unit(CHILD, "child", OWN),
            unit(GRANDCHILD, "grandchild", CHILD),
            unit(OTHER, "other"),
            unit(DISPATCH, "dispatch", kind="dispatcher"),
        ],
        [],
    )


def principal(role: str) -> Principal:
    grants = {
        "resident": (),
        "officer": (RoleGrant("officer", OWN),),
        "manager": (RoleGrant("manager", OWN),),
        "dispatcher": (RoleGrant("dispatcher", DISPATCH),),
        "admin": (RoleGrant("admin", None),),
    }[role]
    kind = "resident" if role == "resident" else "staff"
    return Principal(uuid.uuid4(), kind, 1, uuid.uuid4(), grants)


def actor(role: str) -> policy.Actor:
    p = principal(role)
    managed = snapshot().with_descendants(p.unit_ids("manager"))
    return policy.build_actor(p, managed, datetime.now(UTC), "127.0.0.1")


def ask(a: policy.Actor, question: str, unit_id: uuid.UUID | None) -> bool:
    if question == "see":
        return policy.may_see_report(a, unit_id)
    if question == "contact":
        return policy.may_see_reporter_contact(a, unit_id)
    if question == "queue":
        return unit_id is not None and policy.may_view_unit_queue(a, unit_id)
    if question == "index":
        return unit_id is not None and policy.may_view_unit_index(a, unit_id)
    if question == "manage":
        return unit_id is not None and policy.may_manage_unit(a, unit_id)
    return policy.may_act_on_report(a, question, unit_id)


@pytest.mark.parametrize("role", ROLES)
@pytest.mark.parametrize("relation", list(RELATIONS))
def test_the_whole_matrix_on_the_pure_functions(role, relation):
    a = actor(role)
    unit_id = RELATIONS[relation]
    expected = EXPECTED[role][relation]
    got = {q for q in QUESTIONS if ask(a, q, unit_id)}
    if unit_id is None:  # no unit: the unit questions have no object
        expected = expected - UNIT_QUESTIONS
    assert got == expected, f"{role} × {relation}"
    # every report action of the policy is in the table
    assert set(policy.REPORT_ACTIONS) <= set(QUESTIONS)
    # the queue and lists filter by the same scope
    scope = policy.report_scope(a)
    if scope is None:
        assert role in ("dispatcher", "admin")
    else:
        assert (unit_id in scope) == ("see" in expected)


@pytest.mark.parametrize("role", ROLES)
@pytest.mark.parametrize("relation", list(RELATIONS))
def test_the_console_offers_only_what_the_policy_allows(role, relation):
    a = actor(role)
    unit_id = RELATIONS[relation]
    expected = EXPECTED[role][relation]
    offered = policy.report_actions(
        a,
        status="assigned",
        unit_id=unit_id,
        has_deadline=True,
        extended=False,
        extension_requested=True,
        staff_targets=["in_progress", "rejected", "duplicate"],
    )
    names = {"in_progress": "accept", "rejected": "reject", "duplicate": "merge"}
    offered_actions = {names.get(o, o) for o in offered}
    if "see" not in expected:
        assert offered == []
        return
    # managers get the decision on the pending request; the others may not ask again
    want = {"accept", "reject", "merge", "transfer", "reply", "note", "info_request"}
    if "extension" in expected:
        want |= {"extension", "extension_decision"}
    assert offered_actions == want
    assert all(policy.may_act_on_report(a, x, unit_id) for x in offered_actions)


def test_city_wide_work_and_announcements():
    for role in ROLES:
        a = actor(role)
        assert policy.may_run_routing(a) == (role in ("dispatcher", "admin"))
        assert policy.may_dispatch(a) == (role in ("dispatcher", "admin"))
        assert policy.may_announce_anywhere(a) == (role == "admin")
        for relation, unit_id in RELATIONS.items():
            if unit_id is None:
                continue
            expected = role == "admin" or (
                role == "manager" and relation in ("own", "child", "grandchild")
            )
            assert policy.may_announce_in(a, unit_id, "ward_committee") == expected
            assert policy.may_announce_in(a, unit_id, "department") == (role == "admin")
            assert policy.may_read_announcement(a, None, unit_id) == expected
    assert policy.may_see_report(policy.system_actor(datetime.now(UTC)), None)


# ---------------------------------------------------------------- dossiers: residents (issue 19)

# how the account relates to a dossier: (identity level, same citizen-ID hash, linked)
DOSSIER_RELATIONS = {
    "verified_applicant": (2, True, False),
    "verified_applicant_linked": (2, True, True),
    "linked": (1, False, True),
    "linked_verified_other": (2, False, True),
    "unverified_same_hash": (1, True, False),
    "verified_other": (2, False, False),
    "stranger": (0, False, False),
}
# (see the dossier, see the applicant's name and contact, rate it) for a resident; staff
# and the system never use the residents' views
DOSSIER_EXPECTED = {
    "verified_applicant": (True, True, True),
    "verified_applicant_linked": (True, True, True),
    "linked": (True, False, True),
    "linked_verified_other": (True, False, True),
    "unverified_same_hash": (False, False, False),
    "verified_other": (False, False, False),
    "stranger": (False, False, False),
}


@pytest.mark.parametrize("role", ROLES)
@pytest.mark.parametrize("relation", list(DOSSIER_RELATIONS))
def test_dossier_questions_of_residents(role, relation):
    a = actor(role)
    level, same, linked = DOSSIER_RELATIONS[relation]
    got = (
        policy.may_see_dossier(a, identity_level=level, same_citizen_id=same, linked=linked),
        policy.may_see_dossier_applicant(a, identity_level=level, same_citizen_id=same),
        policy.may_rate_dossier(a, identity_level=level, same_citizen_id=same, linked=linked),
    )
    expected = DOSSIER_EXPECTED[relation] if role == "resident" else (False, False, False)
    assert got == expected
    assert policy.may_link_dossier(a) == (role == "resident")
    system = policy.system_actor(datetime.now(UTC))
    assert not policy.may_see_dossier(system, identity_level=2, same_citizen_id=True, linked=True)
    assert not policy.may_link_dossier(system)


# dossiers: agencies (issue 19): registering agencies, their secrets and status-code
# mapping is for admins only, whatever unit a manager holds (the denials over HTTP:
# tests/dossiers/test_agencies.py)
MANAGES_AGENCIES = {
    "resident": False,
    "officer": False,
    "manager": False,
    "dispatcher": False,
    "admin": True,
}


@pytest.mark.parametrize("role", ROLES)
def test_who_manages_agencies(role):
    assert policy.may_manage_agencies(actor(role)) is MANAGES_AGENCIES[role]
    assert policy.may_manage_agencies(policy.system_actor(datetime.now(UTC)))  # the CLI


# ---------------------------------------------------------------- through HTTP


async def _execute(app, sql: str, **params) -> None:
    async with app.state.engine.begin() as conn:
        await conn.execute(text(sql), params)


@pytest.fixture
async def tree(app, client, caplog, clock):
    """PARENT → OWN → CHILD → GRANDCHILD units in the database, a petition in each of
    OWN, CHILD, GRANDCHILD and PARENT (moved there as a routing would)."""
    suffix = uuid.uuid4().hex[:8]
    ids = {name: uuid.uuid4() for name in ("parent", "own", "child", "grandchild")}
    parents = {"parent": None, "own": "parent", "child": "own", "grandchild": "child"}
    for name in ("parent", "own", "child", "grandchild"):
        await _execute(
            app,
            "INSERT INTO units (id, code, name_vi, name_en, kind, parent_id)"
            " VALUES (:id, :code, :vi, :en, 'department', :parent)",
            id=ids[name],
            code=f"t-{name}-{suffix}",
            vi=f"Tổ {name}",
            en=f"Team {name}",
            parent=ids[parents[name]] if parents[name] else None,
        )
    resident = await resident_now(client, caplog, clock)
    clock.set(hanoi(WEDNESDAY))
    reports = {}
    for name in ("own", "child", "grandchild", "parent"):
        filed = await file_petition(client, resident["headers"])
        reports[name] = uuid.UUID(filed["id"])
    await run_worker(clock)
    for name, report_id in reports.items():
        await _execute(
            app, "UPDATE reports SET unit_id = :u WHERE id = :r", u=ids[name], r=report_id
        )
    codes = {name: f"t-{name}-{suffix}" for name in ids}
    yield {"units": ids, "codes": codes, "reports": reports}
    await _execute(
        app, "DELETE FROM report_events WHERE report_id = ANY(:r)", r=list(reports.values())
    )
    await _execute(
        app, "UPDATE reports SET unit_id = NULL WHERE id = ANY(:r)", r=list(reports.values())
    )


async def test_a_parent_units_manager_sees_and_acts_on_child_units_reports_over_json(
    app, client, clock, tree
):
    from tests.routing.conftest import staff_now

    manager = (await staff_now(client, app, clock, [("manager", tree["codes"]["own"])]))["headers"]
    officer = (await staff_now(client, app, clock, [("officer", tree["codes"]["own"])]))["headers"]
    base = "/api/v1/console/reports"
    for relation in ("own", "child", "grandchild"):
        rid = tree["reports"][relation]
        detail = await client.get(f"{base}/{rid}", headers=manager)
        assert detail.status_code == 200, (relation, detail.text)
        assert "extension" in detail.json()["allowed_actions"]
        accepted = await client.post(f"{base}/{rid}/accept", headers=manager)
        assert accepted.status_code == 200, (relation, accepted.text)
        assert accepted.json()["status"] == "in_progress"
    # the parent's report is not the manager's
    denied = await client.post(f"{base}/{tree['reports']['parent']}/accept", headers=manager)
    assert denied.status_code == 403
    assert denied.headers["content-type"].startswith("application/problem+json")
    # an officer of OWN: their own unit only
    assert (
        await client.get(f"{base}/{tree['reports']['own']}", headers=officer)
    ).status_code == 200
    for relation in ("child", "grandchild", "parent"):
        rid = tree["reports"][relation]
        r = await client.post(f"{base}/{rid}/replies", json={"body": "xin chào"}, headers=officer)
        assert r.status_code == 403 and r.json()["code"] == "not_your_report", relation
    # the queue lists the same scope
    queue = (await client.get(base, params={"limit": 200}, headers=manager)).json()
    listed = {uuid.UUID(i["id"]) for i in queue["items"]}
    assert {tree["reports"][r] for r in ("own", "child", "grandchild")} <= listed
    assert tree["reports"]["parent"] not in listed
    child_queue = await client.get(
        base, params={"unit": tree["codes"]["grandchild"]}, headers=manager
    )
    assert child_queue.status_code == 200
    parent_queue = await client.get(base, params={"unit": tree["codes"]["parent"]}, headers=manager)
    assert parent_queue.status_code == 403
    # unit administration follows the tree too
    staff = await client.get(f"/api/v1/admin/units/{tree['codes']['child']}/staff", headers=manager)
    assert staff.status_code == 200
    staff = await client.get(
        f"/api/v1/admin/units/{tree['codes']['parent']}/staff", headers=manager
    )
    assert staff.status_code == 403


async def test_the_page_offers_exactly_what_the_policy_allows(app, client, clock, tree):
    manager = await browser_for(app, [("manager", tree["codes"]["own"])])
    officer = await browser_for(app, [("officer", tree["codes"]["own"])])
    child = tree["reports"]["child"]
    page = await manager.get(f"/console/reports/{child}")
    assert page.status_code == 200
    forms = {
        a for a in policy.REPORT_ACTIONS if f'action="/console/reports/{child}/{a}"' in page.text
    }
    assert forms == {
        "accept",
        "reply",
        "info_request",
        "note",
        "transfer",
        "extension",
        "reject",
        "merge",
        "hide_text",
    }
    # and each offered form works: accepting is a redirect, not a 403
    r = await manager.post_form(f"/console/reports/{child}", f"/console/reports/{child}/accept", {})
    assert r.status_code == 303, r.text
    # the officer of the parent unit of CHILD gets a 403 page for both
    denied = await officer.get(f"/console/reports/{child}")
    assert denied.status_code == 403
    queue = await officer.get("/console/queue")
    r = await officer.http.post(
        f"/console/reports/{child}/reply", data={"csrf": csrf_of(queue.text), "body": "x"}
    )
    assert r.status_code == 403 and "text/html" in r.headers["content-type"]


# -------------------------------------------------- dossiers: the agency index (issue 19)

# "view": an agency's figures and its overdue dossiers (may_view_agency_index), for an
# agency belonging to a unit of that relation; the ranking shows the same agencies
# (agency_index_scope); "supervise": every agency (may_supervise_agencies)
AGENCY_VIEW: dict[str, set[str]] = {
    "resident": set(),
    "officer": {"own"},
    "manager": {"own", "child", "grandchild"},
    "dispatcher": set(RELATIONS) - {"unassigned"},
    "admin": set(RELATIONS) - {"unassigned"},
}
SUPERVISE = {"dispatcher", "admin"}


@pytest.mark.parametrize("role", ROLES)
def test_the_agency_index_and_the_supervisors(role):
    a = actor(role)
    scope = policy.agency_index_scope(a)
    for relation, unit_id in RELATIONS.items():
        if unit_id is None:
            continue
        expected = relation in AGENCY_VIEW[role]
        assert policy.may_view_agency_index(a, unit_id) == expected, (role, relation)
        assert (scope is None or unit_id in scope) == expected, (role, relation)
    assert policy.may_supervise_agencies(a) == (role in SUPERVISE)
    assert (scope is None) == (role in SUPERVISE)
    system = policy.system_actor(datetime.now(UTC))
    assert policy.may_view_agency_index(system, OTHER) and policy.may_supervise_agencies(system)


# -------------------------------------------------- dossiers: file imports (issue 19)

# an agency whose unit has that relation to the actor: may they upload its files and see
# its imports (may_import_for_agency), and does their list show them (dossier_import_scope)
IMPORTS_FOR: dict[str, set[str]] = {
    "resident": set(),
    "officer": set(),  # managers load an agency's data, not every officer
    "manager": {"own", "child", "grandchild"},
    "dispatcher": set(),  # city-wide for reports, not for agencies' data
    "admin": set(RELATIONS) - {"unassigned"},
}


@pytest.mark.parametrize("role", ROLES)
def test_who_may_import_an_agencys_files(role):
    a = actor(role)
    scope = policy.dossier_import_scope(a)
    for relation, unit_id in RELATIONS.items():
        if unit_id is None:
            continue
        expected = relation in IMPORTS_FOR[role]
        assert policy.may_import_for_agency(a, unit_id) == expected, (role, relation)
        assert (scope is None or unit_id in scope) == expected, (role, relation)
    assert (scope is None) == (role == "admin")
    assert policy.may_import_for_agency(policy.system_actor(datetime.now(UTC)), OTHER)  # the CLI


# -------------------------------------------------- health book (issue 20)

# may_read_health_record: (account's identity level, its verified hash vs the record's
# owner) -> only the person, at level 2, whose verified hash is the owner's; every staff
# role never, whatever its level and hash; the system never. may_manage_health_imports:
# admins only (the CLI acts as the system and passes its own check).
HEALTH_OWNER, HEALTH_OTHER = b"o" * 32, b"x" * 32
HEALTH_READ = {  # (level, verified hash, record owner) -> may a resident read
    (2, HEALTH_OWNER, HEALTH_OWNER): True,
    (3, HEALTH_OWNER, HEALTH_OWNER): True,
    (1, HEALTH_OWNER, HEALTH_OWNER): False,  # not verified (a stale hash)
    (2, HEALTH_OTHER, HEALTH_OWNER): False,  # someone else's record
    (2, None, HEALTH_OWNER): False,
    (2, HEALTH_OWNER, None): False,  # no record
}
HEALTH_IMPORTS = {"admin"}


@pytest.mark.parametrize("role", ROLES)
def test_the_health_book(role):
    a = actor(role)
    for (level, verified, owner), allowed in HEALTH_READ.items():
        expected = allowed and role == "resident"
        assert policy.may_read_health_record(a, level, verified, owner) == expected, (
            role,
            level,
        )
    assert policy.may_manage_health_imports(a) == (role in HEALTH_IMPORTS)
    system = policy.system_actor(datetime.now(UTC))
    assert not policy.may_read_health_record(system, 2, HEALTH_OWNER, HEALTH_OWNER)


# -------------------------------------------------- Open311 keys (issue 21)

# may_manage_open311_keys: admins only, whatever unit a manager holds; the CLI acts as the
# system (the denials over HTTP: tests/open311/test_keys.py)
MANAGES_OPEN311_KEYS = {
    "resident": False,
    "officer": False,
    "manager": False,
    "dispatcher": False,
    "admin": True,
}


@pytest.mark.parametrize("role", ROLES)
def test_who_manages_open311_keys(role):
    assert policy.may_manage_open311_keys(actor(role)) is MANAGES_OPEN311_KEYS[role]
    assert policy.may_manage_open311_keys(policy.system_actor(datetime.now(UTC)))  # the CLI


# -------------------------------------------------- staff second factor (issue 22)

# may_reset_second_factor(actor, target): admins, for a colleague (never their own); the
# system too. Over HTTP: tests/accounts/test_totp.py and test_totp_console.py
RESETS_SECOND_FACTOR = {
    # role: (a colleague's, their own)
    "resident": (False, False),
    "officer": (False, False),
    "manager": (False, False),
    "dispatcher": (False, False),
    "admin": (True, False),
}


@pytest.mark.parametrize("role", ROLES)
def test_who_resets_a_second_factor(role):
    a = actor(role)
    colleague, own = RESETS_SECOND_FACTOR[role]
    assert policy.may_reset_second_factor(a, uuid.uuid4()) is colleague
    assert policy.may_reset_second_factor(a, a.user_id) is own
    assert policy.may_reset_second_factor(policy.system_actor(datetime.now(UTC)), uuid.uuid4())


# -------------------------------------------------- response templates (issue 22 item 1)

# who sees / writes a template of a unit ("city": the whole city's, unit None), and who
# may answer a report of OWN with it. Over HTTP: tests/complaints/test_templates.py
TEMPLATE_UNITS = {
    "own": OWN,
    "child": CHILD,
    "parent": PARENT,
    "other": OTHER,
    "city": None,
}
SEES_TEMPLATES = {
    "resident": set(),
    "officer": {"own", "city"},
    "manager": {"own", "child", "city"},
    "dispatcher": set(TEMPLATE_UNITS),
    "admin": set(TEMPLATE_UNITS),
}
WRITES_TEMPLATES = {
    "resident": set(),
    "officer": set(),
    "manager": {"own", "child"},  # the city's are admins'
    "dispatcher": set(),
    "admin": set(TEMPLATE_UNITS),
}
# answering a report of OWN with a template of …: the report's own unit's or the city's,
# and only if the role may take the template's action on the report (the residents never)
USES_TEMPLATES_ON_OWN = {
    "resident": set(),
    "officer": {"own", "city"},
    "manager": {"own", "city"},
    "dispatcher": {"own", "city"},
    "admin": {"own", "city"},
}


@pytest.mark.parametrize("role", ROLES)
@pytest.mark.parametrize("relation", list(TEMPLATE_UNITS))
def test_who_sees_writes_and_uses_response_templates(role, relation):
    a, unit_id = actor(role), TEMPLATE_UNITS[relation]
    assert policy.may_see_response_template(a, unit_id) is (relation in SEES_TEMPLATES[role])
    assert policy.may_manage_response_template(a, unit_id) is (relation in WRITES_TEMPLATES[role])
    for action in ("reply", "resolve", "reject"):
        assert policy.may_use_response_template(a, unit_id, OWN, action) is (
            relation in USES_TEMPLATES_ON_OWN[role]
        )
    scope = policy.response_template_scope(a)
    listed = unit_id is None or scope is None or unit_id in scope
    assert (listed and a.is_staff) is (relation in SEES_TEMPLATES[role])


def test_the_system_writes_no_response_template():
    system = policy.system_actor(datetime.now(UTC))
    assert not policy.may_manage_response_template(system, None)
    assert not policy.may_manage_response_template(system, OWN)


# -------------------------------------------------- redaction, abuse controls (issue 22 items 5-6)

# may_suspend_account(actor, target): admins, never their own account (None: the list of
# suspensions); may_flag_report / may_redact_photo: whoever moderates the report (its
# unit's staff and above, the city-wide roles); may_see_unredacted_photo: the report's
# unit's staff and above, and admins, not dispatchers. Over HTTP:
# tests/accounts/test_suspension*.py, tests/complaints/test_abuse_flags.py,
# tests/complaints/test_redaction*.py
SUSPENDS = {  # role: (another account, their own, the list)
    "resident": (False, False, False),
    "officer": (False, False, False),
    "manager": (False, False, False),
    "dispatcher": (False, False, False),
    "admin": (True, False, True),
}
MODERATES = {
    "resident": set(),
    "officer": {"own"},
    "manager": {"own", "child", "grandchild"},
    "dispatcher": set(RELATIONS),
    "admin": set(RELATIONS),
}
SEES_UNREDACTED = {
    "resident": set(),
    "officer": {"own"},
    "manager": {"own", "child", "grandchild"},
    "dispatcher": set(),
    "admin": set(RELATIONS),
}


@pytest.mark.parametrize("role", ROLES)
def test_who_suspends_flags_and_redacts(role):
    a = actor(role)
    other, own, listing = SUSPENDS[role]
    assert policy.may_suspend_account(a, uuid.uuid4()) is other
    assert policy.may_suspend_account(a, a.user_id) is own
    assert policy.may_suspend_account(a, None) is listing
    assert {r for r, u in RELATIONS.items() if policy.may_flag_report(a, u)} == MODERATES[role]
    assert {r for r, u in RELATIONS.items() if policy.may_redact_photo(a, u)} == MODERATES[role]
    assert {
        r for r, u in RELATIONS.items() if policy.may_see_unredacted_photo(a, u)
    } == SEES_UNREDACTED[role]
    system = policy.system_actor(datetime.now(UTC))
    assert policy.may_suspend_account(system, uuid.uuid4())
    assert policy.may_see_unredacted_photo(system, OWN)


# sync on app open (issue 24 item 2): residents only (the 403 over HTTP: tests/sync)
SYNCS_CHANGES = {
    "resident": True,
    "officer": False,
    "manager": False,
    "dispatcher": False,
    "admin": False,
}


@pytest.mark.parametrize("role", ROLES)
def test_sync_question(role):
    assert policy.may_sync_changes(actor(role)) == SYNCS_CHANGES[role]
    assert not policy.may_sync_changes(policy.system_actor(datetime.now(UTC)))


# resumable uploads, tus (issue 24 item 3): a resident's own uploads only (over HTTP another
# resident's upload is a 404: tests/uploads)
CREATES_UPLOADS = {
    "resident": True,
    "officer": False,
    "manager": False,
    "dispatcher": False,
    "admin": False,
}


@pytest.mark.parametrize("role", ROLES)
def test_upload_questions(role):
    a = actor(role)
    assert policy.may_create_upload(a) == CREATES_UPLOADS[role]
    assert policy.may_use_upload(a, a.user_id) == CREATES_UPLOADS[role]
    assert not policy.may_use_upload(a, uuid.uuid4())
    system = policy.system_actor(datetime.now(UTC))
    assert not policy.may_create_upload(system)
    assert not policy.may_use_upload(system, uuid.uuid4())
