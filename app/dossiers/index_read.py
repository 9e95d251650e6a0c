"""The agencies' rows on a unit's service-index page in the console (issue 19, second
pass, item 7): the agencies whose unit is the page's unit or one below it, for the same
headline periods as the unit's own table (all time, the last 30 days), read with the
agency index's reader ``index.index_for_staff`` (so only the agencies the actor may see,
``policy.agency_index_scope``), two statements. No figures built here: the rows are the
index's as published."""

from __future__ import annotations

import msgspec
from sqlalchemy.ext.asyncio import AsyncSession

from app.dossiers import index
from app.dossiers.index import AgencyServiceIndex
from app.places.reference import Snapshot
from app.policy import Actor
from app.stats.service import ALL, LAST_30_DAYS

# the periods, and the catalogue's name of each (dossier_index.<label>)
PERIODS = ((ALL, "all_time"), (LAST_30_DAYS, "last_30"))


class AgencyTable(msgspec.Struct):
    period: str
    label: str  # dossier_index.all_time | dossier_index.last_30
    rows: list[AgencyServiceIndex]


async def unit_agency_tables(
    session: AsyncSession, actor: Actor, snapshot: Snapshot, unit_code: str
) -> list[AgencyTable]:
    """One table per headline period of the agencies under ``unit_code`` (the unit and
    its descendants in the reference tree) that the actor may see; a period without rows
    is an empty table. Call after the unit's own page has checked access to the unit."""
    unit = snapshot.units_by_code.get(unit_code)
    if unit is None:
        return [AgencyTable(period, label, []) for period, label in PERIODS]
    under = {snapshot.units[u].code for u in snapshot.with_descendants([unit.id])}
    tables = []
    for period, label in PERIODS:
        rows = await index.index_for_staff(session, actor, period)
        tables.append(AgencyTable(period, label, [r for r in rows if r.unit_code in under]))
    return tables
