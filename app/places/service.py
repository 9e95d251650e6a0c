"""Areas, units and categories: lookups used by every other context."""

from __future__ import annotations

from sqlalchemy import Float, bindparam, func, select
from sqlalchemy.ext.asyncio import AsyncSession

from app.core.errors import NotFound
from app.core.reads import Query, Reader
from app.places.models import Area
from app.places.reference import ReferenceData
from app.places.schemas import AreaOut, CategoryOut, UnitOut


async def list_areas(reference: ReferenceData, query: str | None = None) -> list[AreaOut]:
    return (await reference.current()).area_list(query)


async def get_area(reference: ReferenceData, code: str) -> AreaOut:
    area = (await reference.current()).areas.get(code)
    if area is None:
        raise NotFound("area_not_found")
    return area


async def find_area(session: AsyncSession, code: str) -> AreaOut:
    """The area, read in the caller's transaction (for writes that must see the row)."""
    row = (
        await session.execute(
            select(Area.code, Area.name, Area.kind, Area.province_code, Area.synthetic).where(
                Area.code == code
            )
        )
    ).first()
    if row is None:
        raise NotFound("area_not_found")
    return AreaOut(
        code=row.code,
        name=row.name,
        kind=row.kind,
        province_code=row.province_code,
        synthetic_boundary=row.synthetic,
    )


async def area_code_at(db: Reader, lon: float, lat: float) -> str | None:
    """The area whose boundary contains the WGS84 point, or None (outside the city).
    A point exactly on a shared border goes to the lowest code, deterministically."""
    row = await _AREA_AT.fetchrow(db, lon=lon, lat=lat)
    return row[0] if row is not None else None


# one statement, compiled once, no BEGIN/COMMIT (app.core.reads; issue 18 item 9)
_POINT = func.ST_SetSRID(
    func.ST_MakePoint(bindparam("lon", type_=Float), bindparam("lat", type_=Float)), 4326
)
_AREA_AT = Query(
    select(Area.code).where(func.ST_Intersects(Area.geom, _POINT)).order_by(Area.code).limit(1)
)


async def area_at(db: Reader, reference: ReferenceData, lon: float, lat: float) -> AreaOut:
    code = await area_code_at(db, lon, lat)
    if code is None:
        raise NotFound("point_outside_city")
    return await get_area(reference, code)


async def list_categories(reference: ReferenceData, locale: str) -> list[CategoryOut]:
    return (await reference.current()).category_list(locale)


async def list_units(reference: ReferenceData, locale: str) -> list[UnitOut]:
    return (await reference.current()).unit_list(locale)
