"""Hanoi's reference data: 126 areas with synthetic boundaries, categories and units."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest
import shapely
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncSession, create_async_engine
from sqlalchemy.pool import NullPool
from vietnam_provinces import ProvinceCode, Ward

from app.places.boundaries import city_outline, fold_name, hanoi_wards, synthetic_polygons
from app.places.demo import CITY_UNITS, load_reference_data
from app.places.service import area_code_at

# the loader's units: other tests of the same run add units of their own (agencies' units,
# the index's) and may run first, so what the loader made is told apart by code
REFERENCE_UNITS = "(code LIKE 'ubnd-%' OR code = ANY(:city))"
CITY_CODES = [u.code for u in CITY_UNITS]

CATEGORY_CODES = {
    "roads",
    "street-lighting",
    "drainage-flooding",
    "waste",
    "trees-parks",
    "traffic-signals",
    "water-supply",
    "power-supply",
    "noise",
    "construction-order",
    "public-order",
    "other",
}


def _official() -> set[tuple[str, str, str]]:
    kinds = {"phường": "ward", "xã": "commune"}
    return {
        (f"{w.code.value:05d}", w.name, kinds[str(w.division_type)])
        for w in Ward.iter_by_province(ProvinceCode(1))
    }


# ---------------------------------------------------------------- without the database


def test_every_ward_joins_a_centre_by_name() -> None:
    wards = hanoi_wards()
    assert len(wards) == 126
    assert {(w.code, w.name, w.kind) for w in wards} == _official()
    assert all(20.5 < w.lat < 21.4 and 105.2 < w.lon < 106.1 for w in wards)


def test_fold_name_ignores_diacritics_case_and_tone_placement() -> None:
    assert fold_name("Phường Văn Miếu - Quốc Tử Giám") == "phuong van mieu quoc tu giam"
    assert fold_name("Xã Hoà Lạc") == fold_name("xã hòa lạc") == "xa hoa lac"
    assert fold_name("ĐÔNG ANH") == "dong anh"


def test_synthetic_tiles_cover_the_outline_without_overlap() -> None:
    wards = hanoi_wards()
    tiles = synthetic_polygons(wards)
    geoms = [tiles[w.code] for w in wards]
    assert shapely.coverage_is_valid(shapely.GeometryCollection(geoms))
    outline = city_outline(wards)
    union = shapely.union_all(geoms)
    assert union.symmetric_difference(outline).area < 1e-9 * outline.area
    assert all(g.geom_type == "MultiPolygon" and g.is_valid for g in geoms)


# ---------------------------------------------------------------- in the database


async def test_exactly_the_126_official_areas(session: AsyncSession) -> None:
    rows = (
        await session.execute(text("SELECT code, name, kind FROM areas WHERE province_code = '01'"))
    ).all()
    assert len(rows) == 126
    assert {tuple(r) for r in rows} == _official()
    assert await session.scalar(text("SELECT count(*) FROM areas")) == 126


async def test_every_polygon_is_valid_and_contains_its_centre(session: AsyncSession) -> None:
    wards = hanoi_wards()
    bad = (
        (
            await session.execute(
                text("""
        SELECT a.code FROM areas a
        JOIN unnest(CAST(:codes AS text[]), CAST(:lons AS float8[]), CAST(:lats AS float8[]))
             AS c(code, lon, lat) USING (code)
        WHERE NOT ST_IsValid(a.geom) OR ST_IsEmpty(a.geom) OR ST_Area(a.geom) = 0
           OR NOT ST_Contains(a.geom, ST_SetSRID(ST_MakePoint(c.lon, c.lat), 4326))
           OR ST_SRID(a.geom) <> 4326
    """),
                {
                    "codes": [w.code for w in wards],
                    "lons": [w.lon for w in wards],
                    "lats": [w.lat for w in wards],
                },
            )
        )
        .scalars()
        .all()
    )
    assert bad == []


async def test_no_two_areas_overlap(session: AsyncSession) -> None:
    overlapping = (
        await session.execute(
            text("""
        SELECT a.code, b.code, ST_Area(ST_Intersection(a.geom, b.geom)) AS shared
        FROM areas a JOIN areas b ON a.code < b.code AND a.geom && b.geom
        WHERE ST_Overlaps(a.geom, b.geom) OR ST_Contains(a.geom, b.geom)
           OR ST_Area(ST_Intersection(a.geom, b.geom)) > 1e-12
    """)
        )
    ).all()
    assert overlapping == []


@pytest.mark.parametrize(
    ("lon", "lat", "code"),
    [
        (105.8523, 21.0288, "00070"),  # Hồ Hoàn Kiếm -> Phường Hoàn Kiếm
        (105.8355, 21.0285, "00226"),  # Văn Miếu -> Phường Văn Miếu - Quốc Tử Giám
        (105.8342, 21.0368, "00004"),  # Quảng trường Ba Đình -> Phường Ba Đình
        (106.70, 10.77, None),  # Ho Chi Minh City
        (106.68, 20.86, None),  # Hải Phòng
    ],
)
async def test_known_points_map_to_their_area(
    session: AsyncSession, lon: float, lat: float, code: str | None
) -> None:
    assert await area_code_at(session, lon, lat) == code


async def test_every_ward_centre_maps_to_its_own_area(session: AsyncSession) -> None:
    for ward in hanoi_wards()[::9]:
        assert await area_code_at(session, ward.lon, ward.lat) == ward.code, ward.name


async def _snapshot(session: AsyncSession) -> dict[str, object]:
    return {
        "counts": (
            await session.execute(
                text(
                    "SELECT (SELECT count(*) FROM areas),"
                    f" (SELECT count(*) FROM units WHERE {REFERENCE_UNITS}),"
                    " (SELECT count(*) FROM categories)"
                ),
                {"city": CITY_CODES},
            )
        ).one(),
        "unit_ids": dict(
            (
                await session.execute(
                    text(f"SELECT code, id FROM units WHERE {REFERENCE_UNITS}"),
                    {"city": CITY_CODES},
                )
            ).all()
        ),
        "geoms": dict(
            (await session.execute(text("SELECT code, md5(ST_AsBinary(geom)) FROM areas"))).all()
        ),
    }


async def test_reload_is_idempotent(session: AsyncSession) -> None:
    before = await _snapshot(session)
    await load_reference_data(session)
    await session.commit()
    after = await _snapshot(session)
    assert after == before
    assert before["counts"] == (126, 126 + 9, 12)


async def test_every_area_has_exactly_one_ward_committee(session: AsyncSession) -> None:
    wrong = (
        await session.execute(
            text("""
        SELECT a.code, count(u.id) FROM areas a
        LEFT JOIN units u ON u.area_code = a.code AND u.kind = 'ward_committee'
        GROUP BY a.code HAVING count(u.id) <> 1
    """)
        )
    ).all()
    assert wrong == []
    names = (
        await session.execute(
            text(
                "SELECT name_vi, name_en FROM units WHERE code IN ('ubnd-00070', 'ubnd-00004') "
                "OR area_code = (SELECT code FROM areas WHERE name = 'Xã Ba Vì') ORDER BY code"
            )
        )
    ).all()
    assert [tuple(n) for n in names] == [
        ("UBND phường Ba Đình", "People's Committee of Ba Đình ward"),
        ("UBND phường Hoàn Kiếm", "People's Committee of Hoàn Kiếm ward"),
        ("UBND xã Ba Vì", "People's Committee of Ba Vì commune"),
    ]


async def test_city_units(session: AsyncSession) -> None:
    kinds = dict(
        (
            await session.execute(
                text(
                    "SELECT code, kind FROM units WHERE area_code IS NULL"
                    " AND NOT (code LIKE 't-%' OR code LIKE 'test-%')"  # other tests' units
                )
            )
        ).all()
    )
    assert kinds == {
        "dispatcher": "dispatcher",
        "so-xay-dung": "department",
        "so-nong-nghiep-moi-truong": "department",
        "cong-an-tp": "department",
        "evn-hanoi": "utility",
        "nuoc-sach-hanoi": "utility",
        "urenco": "utility",
        "chieu-sang-hanoi": "utility",
        "thoat-nuoc-hanoi": "utility",
    }


async def test_categories(session: AsyncSession) -> None:
    rows = (
        await session.execute(
            text("SELECT code, name_vi, name_en, deadline_working_days, active FROM categories")
        )
    ).all()
    assert {r.code for r in rows} >= CATEGORY_CODES
    assert all(3 <= r.deadline_working_days <= 10 and r.active for r in rows)
    names = {r.code: r.name_vi for r in rows}
    assert names["construction-order"] == "Trật tự xây dựng"
    assert "ổ gà" in names["roads"]
