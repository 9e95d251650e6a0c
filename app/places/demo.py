"""Hanoi's reference data (dữ liệu danh mục): areas, report categories, responsible units.

``load_reference_data`` is an idempotent upsert, a few set-based statements:

- areas (phường / xã): the 126 communes and wards with synthetic boundaries
  (``synthetic = true``); a boundary the city imported (``synthetic = false``) is kept;
- categories (lĩnh vực phản ánh) with their deadline in working days (ngày làm việc)
  and the extra questions some of them ask (a pothole's size, a light pole's number);
- units (đơn vị xử lý): the city dispatcher (điều phối), one People's Committee
  (UBND phường / xã) per area, city departments (sở) and utilities (doanh nghiệp
  cung cấp dịch vụ). Units are upserted by code, so their ids survive reloads.

Run ``python -m app.places.demo`` to load into the configured database.
"""

from __future__ import annotations

import asyncio
import logging
import sys
import time

import msgspec
import shapely
from shapely.geometry import MultiPolygon
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncSession

from app.places.boundaries import WardInfo, hanoi_wards, synthetic_polygons

log = logging.getLogger("city.places.demo")


class CategorySeed(msgspec.Struct, frozen=True):
    """A report category (lĩnh vực phản ánh) and its deadline in working days."""

    code: str
    name_vi: str
    name_en: str
    deadline_working_days: int


class UnitSeed(msgspec.Struct, frozen=True):
    """A responsible unit (đơn vị xử lý); ``area_code`` only for ward committees."""

    code: str
    name_vi: str
    name_en: str
    kind: str  # dispatcher | ward_committee | department | utility
    area_code: str | None = None


CATEGORIES: tuple[CategorySeed, ...] = (
    CategorySeed("roads", "Đường sá, ổ gà, hè phố", "Roads, potholes and pavements", 5),
    CategorySeed("street-lighting", "Chiếu sáng công cộng", "Public lighting", 3),
    CategorySeed("drainage-flooding", "Thoát nước, ngập úng", "Drainage and flooding", 3),
    CategorySeed("waste", "Rác thải, vệ sinh môi trường", "Waste and rubbish", 3),
    CategorySeed("trees-parks", "Cây xanh, công viên", "Trees and parks", 5),
    CategorySeed(
        "traffic-signals", "Đèn tín hiệu, biển báo giao thông", "Traffic signals and signs", 3
    ),
    CategorySeed("water-supply", "Cấp nước sạch", "Water supply", 3),
    CategorySeed("power-supply", "Cấp điện", "Power supply", 3),
    CategorySeed("noise", "Tiếng ồn", "Noise", 5),
    CategorySeed("construction-order", "Trật tự xây dựng", "Construction order", 10),
    CategorySeed("public-order", "An ninh, trật tự công cộng", "Public order", 5),
    CategorySeed("other", "Khác", "Other", 10),
)


class AttributeValue(msgspec.Struct, frozen=True):
    """One choice of a list question."""

    key: str
    name_vi: str
    name_en: str


class AttributeSeed(msgspec.Struct, frozen=True):
    """An extra question a category asks (Open311's service attribute)."""

    category_code: str
    code: str
    datatype: str  # string | number | datetime | text | singlevaluelist | multivaluelist
    required: bool
    description_vi: str
    description_en: str
    datatype_description_vi: str | None = None
    datatype_description_en: str | None = None
    values: tuple[AttributeValue, ...] = ()


_YES_NO = (AttributeValue("yes", "Có", "Yes"), AttributeValue("no", "Không", "No"))

# in each category, the questions in the order asked (their position)
CATEGORY_ATTRIBUTES: tuple[AttributeSeed, ...] = (
    AttributeSeed(
        "street-lighting",
        "pole_number",
        "string",
        False,
        "Số hiệu cột đèn",
        "Light pole number",
        "Số sơn trên thân cột, ví dụ HK-0123",
        "The number painted on the pole, e.g. HK-0123",
    ),
    AttributeSeed(
        "street-lighting",
        "lamp_state",
        "singlevaluelist",
        False,
        "Đèn đang thế nào?",
        "What is the lamp doing?",
        values=(
            AttributeValue("off", "Không sáng", "Not lit"),
            AttributeValue("flickering", "Chập chờn", "Flickering"),
            AttributeValue("lit_by_day", "Sáng cả ban ngày", "Lit during the day"),
        ),
    ),
    AttributeSeed(
        "roads",
        "pothole_size",
        "singlevaluelist",
        False,
        "Kích thước ổ gà",
        "Size of the pothole",
        values=(
            AttributeValue("small", "Nhỏ (dưới 30 cm)", "Small (under 30 cm)"),
            AttributeValue("medium", "Vừa (30 cm đến 1 m)", "Medium (30 cm to 1 m)"),
            AttributeValue("large", "Lớn (trên 1 m)", "Large (over 1 m)"),
        ),
    ),
    AttributeSeed(
        "trees-parks",
        "blocking_road",
        "singlevaluelist",
        True,
        "Cây đổ có chắn đường không?",
        "Is a fallen tree blocking the road?",
        values=_YES_NO,
    ),
    AttributeSeed(
        "drainage-flooding",
        "water_depth_cm",
        "number",
        False,
        "Nước ngập sâu khoảng bao nhiêu (cm)?",
        "About how deep is the water (cm)?",
        "Một số, tính bằng xentimét",
        "A number, in centimetres",
    ),
    AttributeSeed(
        "waste",
        "waste_kinds",
        "multivaluelist",
        False,
        "Loại rác",
        "Kinds of waste",
        values=(
            AttributeValue("household", "Rác sinh hoạt", "Household waste"),
            AttributeValue("construction", "Phế thải xây dựng", "Construction debris"),
            AttributeValue("bulky", "Đồ cồng kềnh", "Bulky items"),
            AttributeValue("hazardous", "Chất thải nguy hại", "Hazardous waste"),
        ),
    ),
    AttributeSeed(
        "noise",
        "started_at",
        "datetime",
        False,
        "Tiếng ồn bắt đầu từ khi nào?",
        "When did the noise start?",
        "Ngày giờ theo ISO 8601, ví dụ 2026-12-05T22:30:00+07:00",
        "An ISO 8601 date and time, e.g. 2026-12-05T22:30:00+07:00",
    ),
)

CITY_UNITS: tuple[UnitSeed, ...] = (
    UnitSeed(
        "dispatcher",
        "Trung tâm điều phối phản ánh thành phố Hà Nội",
        "Hanoi city report dispatch centre",
        "dispatcher",
    ),
    UnitSeed("so-xay-dung", "Sở Xây dựng Hà Nội", "Hanoi Department of Construction", "department"),
    UnitSeed(
        "so-nong-nghiep-moi-truong",
        "Sở Nông nghiệp và Môi trường Hà Nội",
        "Hanoi Department of Agriculture and Environment",
        "department",
    ),
    UnitSeed("cong-an-tp", "Công an thành phố Hà Nội", "Hanoi City Police", "department"),
    UnitSeed(
        "evn-hanoi",
        "Tổng công ty Điện lực thành phố Hà Nội (EVNHANOI)",
        "Hanoi Power Corporation (EVN Hanoi)",
        "utility",
    ),
    UnitSeed("nuoc-sach-hanoi", "Công ty Nước sạch Hà Nội", "Hanoi Water Company", "utility"),
    UnitSeed(
        "urenco",
        "Công ty Môi trường đô thị Hà Nội (URENCO)",
        "Hanoi Urban Environment Company (URENCO)",
        "utility",
    ),
    UnitSeed(
        "chieu-sang-hanoi",
        "Công ty Chiếu sáng và Thiết bị đô thị Hà Nội (HAPULICO)",
        "Hanoi Public Lighting and Urban Equipment Company (HAPULICO)",
        "utility",
    ),
    UnitSeed("thoat-nuoc-hanoi", "Công ty Thoát nước Hà Nội", "Hanoi Drainage Company", "utility"),
)


# Development only (``python -m app.cli setup`` with ENVIRONMENT=development): staff
# accounts whose password is published in the README. Production refuses to start while
# any of them is active (app/startup.py).
DEMO_STAFF_PASSWORD = "demo-password-2026"
DEMO_STAFF: tuple[tuple[str, str, tuple[tuple[str, str | None], ...]], ...] = (
    ("admin@city.local", "Quản trị viên", (("admin", None),)),
    ("dispatcher@city.local", "Điều phối viên", (("dispatcher", None),)),
    ("officer@city.local", "Cán bộ phường Hoàn Kiếm", (("officer", "ubnd-00070"),)),
    ("manager@city.local", "Lãnh đạo phường Hoàn Kiếm", (("manager", "ubnd-00070"),)),
)
DEMO_STAFF_EMAILS: tuple[str, ...] = tuple(email for email, _, _ in DEMO_STAFF)


# City-wide utilities answer for their network everywhere (category → unit); every other
# category goes to the ward's People's Committee unless an admin adds a rule.
DEFAULT_RULES: tuple[tuple[str, str], ...] = (
    ("power-supply", "evn-hanoi"),
    ("water-supply", "nuoc-sach-hanoi"),
    ("street-lighting", "chieu-sang-hanoi"),
    ("drainage-flooding", "thoat-nuoc-hanoi"),
    ("traffic-signals", "so-xay-dung"),
)


def ward_committee(ward: WardInfo) -> UnitSeed:
    """The People's Committee (Ủy ban nhân dân, UBND) of one ward or commune."""
    prefix, kind_en = ("phường", "ward") if ward.kind == "ward" else ("xã", "commune")
    return UnitSeed(
        code=f"ubnd-{ward.code}",
        name_vi=f"UBND {prefix} {ward.short_name}",
        name_en=f"People's Committee of {ward.short_name} {kind_en}",
        kind="ward_committee",
        area_code=ward.code,
    )


def reference_units(wards: list[WardInfo]) -> list[UnitSeed]:
    return [*CITY_UNITS, *(ward_committee(w) for w in wards)]


_UPSERT_AREAS = text("""
INSERT INTO areas (code, name, kind, province_code, geom, synthetic)
SELECT v.code, v.name, v.kind, v.province_code,
       ST_Multi(ST_GeomFromWKB(v.wkb, 4326)), true
FROM unnest(CAST(:codes AS text[]), CAST(:names AS text[]), CAST(:kinds AS text[]),
            CAST(:provinces AS text[]), CAST(:wkbs AS bytea[]))
     AS v(code, name, kind, province_code, wkb)
ON CONFLICT (code) DO UPDATE
SET name = EXCLUDED.name,
    kind = EXCLUDED.kind,
    province_code = EXCLUDED.province_code,
    geom = CASE WHEN areas.synthetic THEN EXCLUDED.geom ELSE areas.geom END
""")

_UPSERT_CATEGORIES = text("""
INSERT INTO categories (code, name_vi, name_en, deadline_working_days, active)
SELECT v.code, v.name_vi, v.name_en, v.days, true
FROM unnest(CAST(:codes AS text[]), CAST(:names_vi AS text[]), CAST(:names_en AS text[]),
            CAST(:days AS smallint[])) AS v(code, name_vi, name_en, days)
ON CONFLICT (code) DO UPDATE
SET name_vi = EXCLUDED.name_vi,
    name_en = EXCLUDED.name_en,
    deadline_working_days = EXCLUDED.deadline_working_days
""")

_UPSERT_UNITS = text("""
INSERT INTO units (id, code, name_vi, name_en, kind, area_code)
SELECT gen_random_uuid(), v.code, v.name_vi, v.name_en, v.kind, v.area_code
FROM unnest(CAST(:codes AS text[]), CAST(:names_vi AS text[]), CAST(:names_en AS text[]),
            CAST(:kinds AS text[]), CAST(:area_codes AS text[]))
     AS v(code, name_vi, name_en, kind, area_code)
ON CONFLICT (code) DO UPDATE
SET name_vi = EXCLUDED.name_vi,
    name_en = EXCLUDED.name_en,
    kind = EXCLUDED.kind,
    area_code = EXCLUDED.area_code
""")


# texts, type and choices follow the reference data; ``active`` is left as the city set it
_UPSERT_ATTRIBUTES = text("""
INSERT INTO category_attributes (category_code, code, position, datatype, required,
    description_vi, description_en, datatype_description_vi, datatype_description_en, values)
SELECT v.category_code, v.code, v.position, v.datatype, v.required, v.description_vi,
       v.description_en, v.datatype_description_vi, v.datatype_description_en, v.values
FROM unnest(CAST(:category_codes AS text[]), CAST(:codes AS text[]),
            CAST(:positions AS smallint[]), CAST(:datatypes AS text[]),
            CAST(:required AS boolean[]), CAST(:descriptions_vi AS text[]),
            CAST(:descriptions_en AS text[]), CAST(:datatype_descriptions_vi AS text[]),
            CAST(:datatype_descriptions_en AS text[]), CAST(:values AS jsonb[]))
     AS v(category_code, code, position, datatype, required, description_vi, description_en,
          datatype_description_vi, datatype_description_en, values)
ON CONFLICT (category_code, code) DO UPDATE
SET position = EXCLUDED.position,
    datatype = EXCLUDED.datatype,
    required = EXCLUDED.required,
    description_vi = EXCLUDED.description_vi,
    description_en = EXCLUDED.description_en,
    datatype_description_vi = EXCLUDED.datatype_description_vi,
    datatype_description_en = EXCLUDED.datatype_description_en,
    values = EXCLUDED.values
""")


# only into an empty table: once the city manages its rules, a reload never brings back
# a rule an admin deleted
_DEFAULT_RULES = text("""
INSERT INTO routing_rules (id, category_code, unit_id, note)
SELECT gen_random_uuid(), v.category, u.id, 'default rule (reference data)'
FROM unnest(CAST(:categories AS text[]), CAST(:units AS text[])) AS v(category, unit)
JOIN units u ON u.code = v.unit
WHERE NOT EXISTS (SELECT 1 FROM routing_rules)
""")


async def upsert_areas(
    session: AsyncSession, wards: list[WardInfo], tiles: dict[str, MultiPolygon]
) -> None:
    """Areas (phường / xã) with synthetic boundaries; an imported boundary is kept."""
    await session.execute(
        _UPSERT_AREAS,
        {
            "codes": [w.code for w in wards],
            "names": [w.name for w in wards],
            "kinds": [w.kind for w in wards],
            "provinces": [w.province_code for w in wards],
            "wkbs": [shapely.to_wkb(tiles[w.code], output_dimension=2) for w in wards],
        },
    )


async def upsert_categories(session: AsyncSession, categories: tuple[CategorySeed, ...]) -> None:
    """Report categories (lĩnh vực phản ánh); ``active`` is left as the city set it."""
    await session.execute(
        _UPSERT_CATEGORIES,
        {
            "codes": [c.code for c in categories],
            "names_vi": [c.name_vi for c in categories],
            "names_en": [c.name_en for c in categories],
            "days": [c.deadline_working_days for c in categories],
        },
    )


async def upsert_category_attributes(
    session: AsyncSession, attributes: tuple[AttributeSeed, ...]
) -> None:
    """Categories' extra questions, numbered in each category in the order given."""
    positions: dict[str, int] = {}
    numbered = []
    for a in attributes:
        positions[a.category_code] = positions.get(a.category_code, 0) + 1
        numbered.append((positions[a.category_code], a))
    await session.execute(
        _UPSERT_ATTRIBUTES,
        {
            "category_codes": [a.category_code for _, a in numbered],
            "codes": [a.code for _, a in numbered],
            "positions": [p for p, _ in numbered],
            "datatypes": [a.datatype for _, a in numbered],
            "required": [a.required for _, a in numbered],
            "descriptions_vi": [a.description_vi for _, a in numbered],
            "descriptions_en": [a.description_en for _, a in numbered],
            "datatype_descriptions_vi": [a.datatype_description_vi for _, a in numbered],
            "datatype_descriptions_en": [a.datatype_description_en for _, a in numbered],
            "values": [msgspec.json.encode(a.values).decode() for _, a in numbered],
        },
    )


async def upsert_units(session: AsyncSession, units: list[UnitSeed]) -> None:
    """Responsible units (đơn vị xử lý), by code: existing rows keep their ids."""
    await session.execute(
        _UPSERT_UNITS,
        {
            "codes": [u.code for u in units],
            "names_vi": [u.name_vi for u in units],
            "names_en": [u.name_en for u in units],
            "kinds": [u.kind for u in units],
            "area_codes": [u.area_code for u in units],
        },
    )


def _wards_and_tiles() -> tuple[list[WardInfo], dict[str, MultiPolygon]]:
    wards = hanoi_wards()
    return wards, synthetic_polygons(wards)


async def load_reference_data(session: AsyncSession) -> None:
    """Upsert Hanoi's areas, categories and units (idempotent). The caller commits."""
    wards, tiles = await asyncio.to_thread(_wards_and_tiles)
    await upsert_areas(session, wards, tiles)
    await upsert_categories(session, CATEGORIES)
    await upsert_category_attributes(session, CATEGORY_ATTRIBUTES)
    await upsert_units(session, reference_units(wards))
    await session.execute(
        _DEFAULT_RULES,
        {"categories": [c for c, _ in DEFAULT_RULES], "units": [u for _, u in DEFAULT_RULES]},
    )


async def _load(database_url: str) -> None:
    from sqlalchemy.ext.asyncio import create_async_engine
    from sqlalchemy.pool import NullPool

    engine = create_async_engine(database_url, poolclass=NullPool)
    try:
        async with AsyncSession(engine) as session, session.begin():
            await load_reference_data(session)
    finally:
        await engine.dispose()


def load_reference_data_sync(database_url: str) -> None:
    """Load the reference data in one transaction (``postgresql+asyncpg://`` URL)."""
    started = time.perf_counter()
    asyncio.run(_load(database_url))
    log.info("reference data loaded in %.2f s", time.perf_counter() - started)


def main() -> int:
    from app.settings import get_settings

    started = time.perf_counter()
    load_reference_data_sync(get_settings().database_url)
    print(
        f"reference data loaded (Hanoi wards, boundaries synthetic unless imported) "
        f"in {time.perf_counter() - started:.2f} s",
        file=sys.stderr,
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
