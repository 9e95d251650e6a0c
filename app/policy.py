"""Who may do what: the one authorization policy (issue 18 item 1; polar's ``authz/``).

Every question "may this actor see / act on this report, unit, staff list, index,
announcement" is answered here and nowhere else: the JSON API, the console's pages and
the workers ask these functions. The unit hierarchy is applied one way everywhere:

- officers: the units they hold a role in (``own_units``);
- managers: the units they manage and every unit below them, transitively
  (``managed_units``, resolved once per request from the per-process unit tree in
  ``app/places/reference.py``, never queried per request);
- dispatchers and admins: city-wide.

An ``Actor`` is the principal with the time and client address of the request and those
scopes; ``actor_for`` builds it (the JSON controllers, the pages and any worker that acts
for a person use that one helper; system work uses ``system_actor``). The ``may_*`` functions
are pure: they read the actor and the object's unit only, so the matrix test
(tests/test_policy.py) walks roles × relation × action without a database.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterable
from datetime import datetime
from typing import TYPE_CHECKING, Any

import msgspec

from app.complaints.lifecycle import HANDLING_STATUSES
from app.core.auth import Principal

if TYPE_CHECKING:
    from app.places.reference import ReferenceData

# staff actions on a report: the names the console's forms and JSON routes use
REPORT_ACTIONS = (
    "accept",
    "reply",
    "info_request",
    "note",
    "resolve",
    "reject",
    "merge",
    "transfer",
    "extension",  # grant the one extension (managers)
    "extension_request",  # ask the unit's managers for it
    "extension_decision",  # approve or decline a request (managers)
    "hide_text",
    "hide_photo",
)
# actions only a manager of the report's unit (or of a unit above it) or an admin may take
MANAGER_ACTIONS = frozenset({"extension", "extension_decision"})


class Actor(msgspec.Struct, frozen=True):
    """Who acts, when and from where, with their unit scopes resolved once."""

    principal: Principal | None  # None: the system (workers, sweeps)
    now: datetime
    ip: str | None = None
    own_units: frozenset[uuid.UUID] = frozenset()  # units where the actor holds any role
    managed_units: frozenset[uuid.UUID] = frozenset()  # managed + every unit below them
    city_wide: bool = False  # dispatcher or admin
    admin: bool = False

    @property
    def user_id(self) -> uuid.UUID | None:
        return self.principal.user_id if self.principal else None

    @property
    def is_staff(self) -> bool:
        return self.principal is not None and self.principal.kind == "staff"

    @property
    def is_system(self) -> bool:
        return self.principal is None

    @property
    def report_units(self) -> frozenset[uuid.UUID]:
        """The units whose reports this actor sees and acts on (unless city-wide)."""
        return self.own_units | self.managed_units

    @property
    def manages_any(self) -> bool:
        return self.admin or bool(self.managed_units)


def system_actor(now: datetime) -> Actor:
    """The workers' actor: routing, sweeps and the auto-close act for no one."""
    return Actor(principal=None, now=now, city_wide=True, admin=True)


def build_actor(
    principal: Principal,
    descendants: frozenset[uuid.UUID],
    now: datetime,
    ip: str | None = None,
) -> Actor:
    """The actor from a principal and the managed units with their descendants."""
    staff = principal.kind == "staff"
    return Actor(
        principal=principal,
        now=now,
        ip=ip,
        own_units=frozenset(principal.unit_ids()) if staff else frozenset(),
        managed_units=descendants if staff else frozenset(),
        city_wide=staff and principal.has_role("dispatcher", "admin"),
        admin=staff and principal.has_role("admin"),
    )


async def actor_for(
    principal: Principal,
    reference: ReferenceData,
    now: datetime,
    ip: str | None = None,
) -> Actor:
    """The one helper that turns a principal into an actor (JSON API, pages, workers):
    the managed units' subtrees come from the process's unit tree, no query."""
    managed = principal.unit_ids("manager") if principal.kind == "staff" else set()
    descendants = await reference.with_descendants(managed) if managed else frozenset()
    return build_actor(principal, descendants, now, ip)


async def actor_of(connection: Any) -> Actor:
    """The actor of a Litestar request (its authenticated principal, the clock, the
    client address as ``client_ip`` reads it)."""
    from app.core.client_address import client_ip

    state = connection.app.state
    return await actor_for(
        connection.user, state.reference, state.clock.now(), client_ip(connection)
    )


# ---------------------------------------------------------------- reports


def may_see_report(actor: Actor, unit_id: uuid.UUID | None) -> bool:
    """Staff view of a report (internal timeline, photo flags)."""
    if actor.city_wide:
        return actor.is_staff or actor.is_system
    return unit_id is not None and unit_id in actor.report_units


def may_act_on_report(actor: Actor, action: str, unit_id: uuid.UUID | None) -> bool:
    """May the actor take ``action`` (one of ``REPORT_ACTIONS``) on a report of that unit?"""
    if action not in REPORT_ACTIONS or not may_see_report(actor, unit_id):
        return False
    if action in MANAGER_ACTIONS:
        return actor.admin or (unit_id is not None and unit_id in actor.managed_units)
    return True


def may_see_reporter_contact(actor: Actor, unit_id: uuid.UUID | None) -> bool:
    """The reporter's name and phone: managers of the unit (or above), dispatchers, admins."""
    if actor.city_wide:
        return actor.is_staff
    return unit_id is not None and unit_id in actor.managed_units


def counts_transfers(actor: Actor) -> bool:
    """Transfers by units are counted (past the limit the dispatcher gets it); the
    city-wide roles' are not."""
    return not actor.city_wide


def report_actions(
    actor: Actor,
    *,
    status: str,
    unit_id: uuid.UUID | None,
    has_deadline: bool,
    extended: bool,
    extension_requested: bool,
    staff_targets: Iterable[str],
) -> list[str]:
    """What the console offers on a report: the lifecycle's staff targets from its
    status plus the handling actions, each only if the policy allows it. The names are
    the console's (statuses for transitions, action names for the rest)."""
    if not may_see_report(actor, unit_id):
        return []
    offered = set()
    by_target = {"in_progress": "accept", "resolved": "resolve", "rejected": "reject"}
    by_target["duplicate"] = "merge"
    for target in staff_targets:
        action = by_target.get(target)
        if action is None or may_act_on_report(actor, action, unit_id):
            offered.add(target)
    if status in HANDLING_STATUSES:
        offered |= {
            a
            for a in ("transfer", "reply", "note", "info_request")
            if may_act_on_report(actor, a, unit_id)
        }
        if not extended and has_deadline:
            if may_act_on_report(actor, "extension", unit_id):
                offered.add("extension")
                if extension_requested:
                    offered.add("extension_decision")
            elif not extension_requested and may_act_on_report(actor, "extension_request", unit_id):
                offered.add("extension_request")
    return sorted(offered)


def report_scope(actor: Actor) -> frozenset[uuid.UUID] | None:
    """The units whose reports the queue, the map and the lists show; None: every unit."""
    return None if actor.city_wide else actor.report_units


# ---------------------------------------------------------------- units


def may_view_unit_queue(actor: Actor, unit_id: uuid.UUID) -> bool:
    return actor.city_wide or unit_id in actor.report_units


def may_view_unit_index(actor: Actor, unit_id: uuid.UUID) -> bool:
    """A unit's service index in the console."""
    return actor.city_wide or unit_id in actor.report_units


def may_manage_unit(actor: Actor, unit_id: uuid.UUID) -> bool:
    """The unit's staff list and audit trail: admins, and managers of it or a unit above."""
    return actor.admin or unit_id in actor.managed_units


# ---------------------------------------------------------------- city-wide work


def may_run_routing(actor: Actor) -> bool:
    """Route waiting reports by hand, and the dispatch page."""
    return actor.city_wide


def may_dispatch(actor: Actor) -> bool:
    return actor.city_wide


# ---------------------------------------------------------------- announcements


def may_announce_anywhere(actor: Actor) -> bool:
    return actor.admin


def may_announce_in(actor: Actor, unit_id: uuid.UUID, unit_kind: str) -> bool:
    """A ward committee speaks to its ward: its managers (or of a unit above it)."""
    return actor.admin or (unit_kind == "ward_committee" and unit_id in actor.managed_units)


def may_read_announcement(
    actor: Actor, sender_id: uuid.UUID | None, unit_id: uuid.UUID | None
) -> bool:
    return (
        actor.admin
        or (sender_id is not None and sender_id == actor.user_id)
        or (unit_id is not None and unit_id in actor.managed_units)
    )


# ---------------------------------------------------------------- dossiers: agencies (issue 19)


def may_manage_agencies(actor: Actor) -> bool:
    """Register agencies, issue/rotate/revoke their signing secrets, edit their
    status-code mapping: admins (the CLI acts as the system, which may)."""
    return actor.admin


# ---------------------------------------------------------------- dossiers: residents (issue 19)

# the identity level at which an account is the verified owner of its citizen ID (VNeID
# level 2): it sees every dossier filed under that ID without linking it. The residents'
# list statement and the notices' recipients (app/dossiers) filter by this same constant.
DOSSIER_OWNER_LEVEL = 2


def dossier_applicant(identity_level: int, same_citizen_id: bool) -> bool:
    """Is the account the dossier's applicant: verified at level 2 (the account's keyed
    citizen-ID hash is VNeID's) and that hash is the one the agency filed it under?"""
    return identity_level >= DOSSIER_OWNER_LEVEL and same_citizen_id


def may_see_dossier(
    actor: Actor, *, identity_level: int, same_citizen_id: bool, linked: bool
) -> bool:
    """A resident's view of a dossier (timeline, supplements, fees, results): its verified
    applicant, or whoever linked it with its code and the applicant's citizen ID. Staff
    and the system do not use the residents' views."""
    if actor.principal is None or actor.principal.kind != "resident":
        return False
    return linked or dossier_applicant(identity_level, same_citizen_id)


def may_see_dossier_applicant(actor: Actor, *, identity_level: int, same_citizen_id: bool) -> bool:
    """The applicant's full name, phone and e-mail: the verified applicant only; someone
    who linked it (a relative, an agent) sees the name masked and no contact."""
    if actor.principal is None or actor.principal.kind != "resident":
        return False
    return dossier_applicant(identity_level, same_citizen_id)


def may_link_dossier(actor: Actor) -> bool:
    """Any signed-in resident may link a dossier (by its code plus the applicant's
    citizen ID), whatever their identity level."""
    return actor.principal is not None and actor.principal.kind == "resident"


def may_rate_dossier(
    actor: Actor, *, identity_level: int, same_citizen_id: bool, linked: bool
) -> bool:
    """Whoever sees the dossier may rate it (once; when the lifecycle allows it)."""
    return may_see_dossier(
        actor, identity_level=identity_level, same_citizen_id=same_citizen_id, linked=linked
    )


# ---------------------------------------------------------------- dossiers: staff (issue 19)

# file imports (item 2): an agency's export uploaded in the console


def may_import_for_agency(actor: Actor, agency_unit_id: uuid.UUID) -> bool:
    """Upload an NDJSON/CSV file of an agency's events, and see that agency's imports
    with their per-line errors: the managers of the agency's unit (or of a unit above
    it), and admins. Officers and dispatchers do not load an agency's data."""
    return actor.admin or agency_unit_id in actor.managed_units


def dossier_import_scope(actor: Actor) -> frozenset[uuid.UUID] | None:
    """The units whose agencies' imports the actor's list shows; None: every agency."""
    return None if actor.admin else actor.managed_units


# the agency index and the supervisors' page (item 7)


def may_view_agency_index(actor: Actor, agency_unit_id: uuid.UUID) -> bool:
    """An agency's figures and its overdue dossiers in the console: the staff of the
    agency's unit (managers: and of a unit above it), and the city-wide roles."""
    if actor.city_wide:
        return actor.is_staff or actor.is_system
    return agency_unit_id in actor.report_units


def may_supervise_agencies(actor: Actor) -> bool:
    """The city's supervisors (dispatchers, admins): every agency ranked by lateness."""
    return actor.city_wide and (actor.is_staff or actor.is_system)


def agency_index_scope(actor: Actor) -> frozenset[uuid.UUID] | None:
    """The units whose agencies the console's agency index and ranking show; None: all."""
    return None if may_supervise_agencies(actor) else actor.report_units


# ---------------------------------------------------------------- health book (issue 20)


def may_read_health_record(
    actor: Actor,
    identity_level: int,
    verified_citizen_hash: bytes | None,
    record_owner_hash: bytes | None,
) -> bool:
    """A health book (sổ sức khỏe điện tử) is read only by its person: a resident account
    at identity level 2 (verified with VNeID) whose verified citizen ID's keyed hash is the
    record's. Staff never, whatever their roles; the system never (it imports, not reads).
    ``identity_level`` and ``verified_citizen_hash`` are the account's as stored now."""
    import hmac

    if actor.principal is None or actor.is_staff or actor.principal.kind != "resident":
        return False
    if identity_level < 2 or verified_citizen_hash is None or record_owner_hash is None:
        return False
    return hmac.compare_digest(verified_citizen_hash, record_owner_hash)


def may_manage_health_imports(actor: Actor) -> bool:
    """Start an import and read the import jobs (counts, errors, duration; never a
    record): admins, and the system (the CLI)."""
    return actor.admin


# ---------------------------------------------------------------- open311 (issue 21)


def may_manage_open311_keys(actor: Actor) -> bool:
    """Issue, list and revoke third-party apps' Open311 API keys: admins, and the
    system (the CLI)."""
    return actor.admin


# ---------------------------------------------------------------- staff second factor (issue 22)


def may_reset_second_factor(actor: Actor, target_user_id: uuid.UUID) -> bool:
    """Remove a colleague's second factor (a lost phone) and end their sessions: admins,
    never their own (an admin who lost theirs asks another admin), and the system."""
    return actor.admin and actor.user_id != target_user_id


# ---------------------------------------------------------- response templates, bulk (issue 22)


def may_see_response_template(actor: Actor, unit_id: uuid.UUID | None) -> bool:
    """A response template (mẫu trả lời): the city's (unit None) for every staff member,
    a unit's for that unit's staff (managers: and of units above it) and the city-wide
    roles."""
    if not actor.is_staff:
        return False
    return unit_id is None or actor.city_wide or unit_id in actor.report_units


def may_manage_response_template(actor: Actor, unit_id: uuid.UUID | None) -> bool:
    """Write, change or delete a template: the city's are admins'; a unit's, its managers'
    (or of a unit above it) and admins'."""
    if unit_id is None:
        return actor.admin and actor.is_staff
    return actor.is_staff and (actor.admin or unit_id in actor.managed_units)


def response_template_scope(actor: Actor) -> frozenset[uuid.UUID] | None:
    """The units whose templates the actor's list shows besides the city's; None: all."""
    return None if actor.city_wide else actor.report_units


def may_use_response_template(
    actor: Actor, template_unit_id: uuid.UUID | None, report_unit_id: uuid.UUID | None, action: str
) -> bool:
    """Answer a report with a template: the city's or the report's own unit's, and the
    actor may take the template's action (reply, resolve, reject) on the report."""
    return (template_unit_id is None or template_unit_id == report_unit_id) and (
        may_act_on_report(actor, action, report_unit_id)
    )


# ---------------------------------------------------------------- redaction, abuse (issue 22)


def may_suspend_account(actor: Actor, target_user_id: uuid.UUID | None) -> bool:
    """Suspend a resident account, lift a suspension, read the suspensions and their
    appeals: admins (never their own account), and the system."""
    return actor.admin and (target_user_id is None or actor.user_id != target_user_id)


def may_flag_report(actor: Actor, unit_id: uuid.UUID | None) -> bool:
    """Flag a report abusive (hidden from the public) or unflag it: whoever may
    moderate its photos and text (the staff of its unit and above, the city-wide roles)."""
    return may_act_on_report(actor, "hide_text", unit_id)


def may_redact_photo(actor: Actor, unit_id: uuid.UUID | None) -> bool:
    """Black out parts of a report's photo (faces, plates): the staff of its unit and
    above, the city-wide roles."""
    return may_act_on_report(actor, "hide_photo", unit_id)


def may_see_unredacted_photo(actor: Actor, unit_id: uuid.UUID | None) -> bool:
    """The original of a redacted photo: the staff of the report's unit (and managers
    above it), and admins; not the other units' staff nor dispatchers, whom the
    redacted copy serves."""
    if actor.admin:
        return actor.is_staff or actor.is_system
    return unit_id is not None and unit_id in actor.report_units


# ---------------------------------------------------------------- sync on app open (issue 24)


def may_sync_changes(actor: Actor) -> bool:
    """The sync call (GET /me/sync): a resident's own changes. Each item it returns is
    still decided by its own question (may_see_dossier, may_read_health_record; reports
    and notifications by ownership); staff and the system have no such feed."""
    return actor.principal is not None and actor.principal.kind == "resident"


# ---------------------------------------------------------------- resumable uploads, tus (issue 24)


def may_create_upload(actor: Actor) -> bool:
    """Start a resumable photo upload (tus): residents, for themselves."""
    return actor.principal is not None and actor.principal.kind == "resident"


def may_use_upload(actor: Actor, owner_id: uuid.UUID) -> bool:
    """Read, continue or terminate a resumable upload: only the resident who created it
    (anyone else gets the 404 of a missing upload)."""
    return may_create_upload(actor) and actor.user_id == owner_id
