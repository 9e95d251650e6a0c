"""Areas, units and categories: lookups used by every other context."""

from __future__ import annotations

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import aliased

from app.core import i18n
from app.core.errors import NotFound
from app.places.models import Area, Category, Unit
from app.places.schemas import AreaOut, CategoryOut, UnitOut

i18n.register(
    {
        "area_not_found": {"vi": "Không tìm thấy phường/xã.", "en": "Area not found."},
        "point_outside_city": {
            "vi": "Vị trí nằm ngoài địa bàn thành phố.",
            "en": "The location is outside the city.",
        },
        "unit_not_found": {"vi": "Không tìm thấy đơn vị.", "en": "Unit not found."},
    }
)


def _area_out(area: Area) -> AreaOut:
    return AreaOut(
        code=area.code,
        name=area.name,
        kind=area.kind,
        province_code=area.province_code,
        synthetic_boundary=area.synthetic,
    )


async def list_areas(session: AsyncSession, query: str | None = None) -> list[AreaOut]:
    stmt = select(Area).order_by(Area.name)
    if query:
        stmt = stmt.where(Area.name.ilike(f"%{query}%"))
    return [_area_out(a) for a in await session.scalars(stmt)]


async def get_area(session: AsyncSession, code: str) -> AreaOut:
    area = await session.get(Area, code)
    if area is None:
        raise NotFound("area_not_found")
    return _area_out(area)


async def area_code_at(session: AsyncSession, lon: float, lat: float) -> str | None:
    """The area whose boundary contains the WGS84 point, or None (outside the city).
    A point exactly on a shared border goes to the lowest code, deterministically."""
    point = func.ST_SetSRID(func.ST_MakePoint(lon, lat), 4326)
    return await session.scalar(
        select(Area.code).where(func.ST_Intersects(Area.geom, point)).order_by(Area.code).limit(1)
    )


async def area_at(session: AsyncSession, lon: float, lat: float) -> AreaOut:
    code = await area_code_at(session, lon, lat)
    if code is None:
        raise NotFound("point_outside_city")
    return await get_area(session, code)


async def list_categories(session: AsyncSession, locale: str) -> list[CategoryOut]:
    rows = await session.scalars(
        select(Category).where(Category.active.is_(True)).order_by(Category.code)
    )
    return [
        CategoryOut(
            code=c.code,
            name=c.name_en if locale == "en" else c.name_vi,
            deadline_working_days=c.deadline_working_days,
        )
        for c in rows
    ]


# built once: constructing an aliased entity costs about a millisecond per call
_PARENT = aliased(Unit, name="parent")


async def list_units(session: AsyncSession, locale: str) -> list[UnitOut]:
    parent = _PARENT
    rows = await session.execute(
        select(Unit, parent.code).outerjoin(parent, parent.id == Unit.parent_id).order_by(Unit.code)
    )
    return [
        UnitOut(
            id=u.id,
            code=u.code,
            name=u.name_en if locale == "en" else u.name_vi,
            kind=u.kind,
            parent_code=parent_code,
            area_code=u.area_code,
        )
        for u, parent_code in rows
    ]
