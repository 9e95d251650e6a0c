"""An import job's lifecycle as one transition table (the shape of
``app/complaints/lifecycle.py``).

    files:  queued → importing → succeeded | failed
    bulk:   queued → exporting → importing → succeeded | failed
            (exporting: kick-off done, polling the status URL, downloading the output)

Every change goes through ``transition``: one UPDATE guarded by the status the caller
saw, so two runs racing (the reconciler's and a retried one) change it once. Only the
import job acts (``system``); an admin starts a job (``queued``) and reads it.
"""

from __future__ import annotations

from dataclasses import dataclass

from app.complaints.lifecycle import sql_in as sql_in

UNFINISHED_STATUSES = ("queued", "exporting", "importing")
FINISHED_STATUSES = ("succeeded", "failed")


@dataclass(frozen=True, slots=True)
class Rule:
    actions: frozenset[str]


def _rule(actions: str) -> Rule:
    return Rule(frozenset(actions.split()))


TRANSITIONS: dict[tuple[str, str], Rule] = {
    ("queued", "importing"): _rule("start"),  # files given to the CLI
    ("queued", "exporting"): _rule("kick_off"),  # Bulk Data: $export accepted
    ("queued", "failed"): _rule("fail"),  # a kick-off refused, no file readable
    ("exporting", "importing"): _rule("downloaded"),
    ("exporting", "failed"): _rule("fail timeout"),
    ("importing", "succeeded"): _rule("finish"),
    ("importing", "failed"): _rule("fail"),
}


class InvalidTransition(Exception):
    pass


def allows(current: str, target: str, action: str | None = None) -> bool:
    rule = TRANSITIONS.get((current, target))
    return rule is not None and (action is None or action in rule.actions)


def allowed_from(status: str) -> list[str]:
    return sorted(to for (frm, to) in TRANSITIONS if frm == status)


def sources(target: str, action: str | None = None) -> tuple[str, ...]:
    """The statuses a job may move to ``target`` from (for set-based statements)."""
    return tuple(
        sorted(
            frm
            for (frm, to), rule in TRANSITIONS.items()
            if to == target and (action is None or action in rule.actions)
        )
    )


def check(current: str, target: str, action: str) -> None:
    if not allows(current, target, action):
        raise InvalidTransition(f"{current} -> {target} ({action})")


# the UPDATE every transition runs: $1 job id, $2 expected status, $3 target; started and
# finished instants set on the way in and out; failure code and params ($4, $5) on failure
TRANSITION_SQL = f"""
UPDATE health_import_jobs
   SET status = $3::text,
       started_at = CASE WHEN $2::text = 'queued' THEN coalesce(started_at, now())
                         ELSE started_at END,
       finished_at = CASE WHEN $3::text IN ({sql_in(FINISHED_STATUSES)}) THEN now() ELSE NULL END,
       failure_code = $4::text,
       failure_params = $5::jsonb,
       progressed_at = now()
 WHERE id = $1 AND status = $2::text
"""


async def transition(
    pg: object,
    job_id: object,
    current: str,
    target: str,
    action: str,
    failure_code: str | None = None,
    failure_params: str | None = None,
) -> bool:
    """Move the job (checked against the table); False when another run moved it first."""
    check(current, target, action)
    result = await pg.execute(  # type: ignore[attr-defined]
        TRANSITION_SQL, job_id, current, target, failure_code, failure_params
    )
    return str(result).endswith(" 1")


__all__ = [
    "FINISHED_STATUSES",
    "TRANSITIONS",
    "UNFINISHED_STATUSES",
    "InvalidTransition",
    "allowed_from",
    "allows",
    "check",
    "sources",
    "sql_in",
    "transition",
]
