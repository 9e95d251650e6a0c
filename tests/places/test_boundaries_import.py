"""Importing a city's real ward boundaries (ranh giới thực) from GeoJSON."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
import shapely
from shapely.geometry import mapping
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncSession, create_async_engine
from sqlalchemy.pool import NullPool

from app.places.boundaries import (
    BoundaryImportError,
    ImportedArea,
    hanoi_wards,
    import_boundaries,
    main,
    parse_geojson,
    synthetic_polygons,
)
from app.places.demo import load_reference_data
from app.places.service import area_code_at

HOAN_KIEM, BA_DINH, CUA_NAM = "00070", "00004", "00082"


async def _restore_synthetic(database: str, codes: list[str]) -> None:
    engine = create_async_engine(database, poolclass=NullPool)
    async with AsyncSession(engine) as s, s.begin():
        await s.execute(
            text("UPDATE areas SET synthetic = true WHERE code = ANY(:codes)"), {"codes": codes}
        )
        await load_reference_data(s)
    await engine.dispose()


@pytest.fixture
async def restore(database: str) -> AsyncIterator[list[str]]:
    """Codes a test imports; their synthetic boundaries are put back afterwards."""
    codes: list[str] = []
    yield codes
    if codes:
        await _restore_synthetic(database, codes)


def _real_looking(code: str) -> shapely.MultiPolygon:
    """A stand-in "real" boundary: the synthetic tile shrunk by ~100 m."""
    tile = synthetic_polygons(hanoi_wards())[code]
    return shapely.MultiPolygon(list(shapely.get_parts(tile.buffer(-0.001))))


def _feature(geometry: dict[str, Any] | None, **properties: Any) -> dict[str, Any]:
    return {"type": "Feature", "properties": properties, "geometry": geometry}


def _collection(*features: dict[str, Any]) -> bytes:
    return json.dumps({"type": "FeatureCollection", "features": list(features)}).encode()


def _square(lon: float, lat: float, d: float = 0.002) -> dict[str, Any]:
    ring = [[lon, lat], [lon + d, lat], [lon + d, lat + d], [lon, lat + d], [lon, lat]]
    return {"type": "Polygon", "coordinates": [ring]}


async def _geoms(session: AsyncSession) -> dict[str, tuple[str, bool]]:
    rows = await session.execute(text("SELECT code, md5(ST_AsBinary(geom)), synthetic FROM areas"))
    return {code: (digest, synthetic) for code, digest, synthetic in rows}


# ---------------------------------------------------------------- import and reload


async def test_import_replaces_two_wards_and_survives_reload(
    session: AsyncSession, restore: list[str]
) -> None:
    hoan_kiem, ba_dinh = _real_looking(HOAN_KIEM), _real_looking(BA_DINH)
    data = _collection(
        _feature(mapping(hoan_kiem), code=HOAN_KIEM, name="Phường Hoàn Kiếm"),
        _feature(mapping(ba_dinh.geoms[0]), ma_xa=4, ten="P. Ba Đình"),  # int code, Polygon
    )
    areas = parse_geojson(data)
    assert [a.code for a in areas] == [HOAN_KIEM, BA_DINH]
    before = await _geoms(session)
    restore.extend([HOAN_KIEM, BA_DINH])

    assert await import_boundaries(session, areas) == 2
    await session.commit()

    imported = await _geoms(session)
    for code, geom in ((HOAN_KIEM, hoan_kiem), (BA_DINH, ba_dinh)):
        assert imported[code][1] is False
        assert imported[code][0] != before[code][0]
        same = await session.scalar(
            text("SELECT ST_Equals(geom, ST_GeomFromText(:wkt, 4326)) FROM areas WHERE code = :c"),
            {"wkt": geom.wkt, "c": code},
        )
        assert same
    untouched = {c: v for c, v in imported.items() if c not in (HOAN_KIEM, BA_DINH)}
    assert untouched == {c: v for c, v in before.items() if c in untouched}
    assert all(synthetic for _, synthetic in untouched.values())

    await load_reference_data(session)
    await session.commit()
    assert await _geoms(session) == imported
    assert await area_code_at(session, 105.8523, 21.0288) == HOAN_KIEM


async def test_import_is_all_or_nothing_in_the_database(session: AsyncSession) -> None:
    before = await _geoms(session)
    good = ImportedArea(code=HOAN_KIEM, name=None, geometry=_real_looking(HOAN_KIEM))
    stray = ImportedArea(code="99999", name=None, geometry=_real_looking(CUA_NAM))
    with pytest.raises(BoundaryImportError) as caught:
        await import_boundaries(session, [good, stray])
    assert [(p.index, "99999" in p.reason) for p in caught.value.problems] == [(1, True)]
    # not even the known area changed, within the still-open transaction
    assert await _geoms(session) == before
    await session.rollback()


# ---------------------------------------------------------------- refused files


def _problems(data: bytes) -> list[tuple[int | None, str]]:
    with pytest.raises(BoundaryImportError) as caught:
        parse_geojson(data)
    assert isinstance(caught.value, ValueError)
    return [(p.index, p.reason) for p in caught.value.problems]


GOOD = _feature(_square(105.85, 21.03), code=HOAN_KIEM)


@pytest.mark.parametrize(
    ("data", "index", "reason"),
    [
        (b"{not json", None, "not valid JSON"),
        (b"\xff\xfe", None, "not valid JSON"),
        (
            json.dumps({"type": "Feature", "geometry": None}).encode(),
            None,
            "not a GeoJSON FeatureCollection",
        ),
        (
            json.dumps({"type": "FeatureCollection", "features": []}).encode(),
            None,
            "non-empty list",
        ),
        (_collection(GOOD, _feature(_square(185.0, 21.03), code=BA_DINH)), 1, "out of range"),
        (_collection(GOOD, _feature(_square(105.85, 95.0), code=BA_DINH)), 1, "out of range"),
        (
            _collection(GOOD, _feature(_square(21.03, 105.85 - 90), code=BA_DINH)),
            1,
            "outside Hanoi",
        ),
        (
            _collection(GOOD, _feature(_square(105.84, 21.04), code="99999")),
            1,
            "not a commune or ward of Hanoi",
        ),
        (_collection(GOOD, _feature(_square(105.84, 21.04))), 1, "no ward code"),
        (
            _collection(
                GOOD, _feature(_square(105.84, 21.04), code="00004", name="Phường Hoàn Kiếm")
            ),
            1,
            "does not match",
        ),
        (
            _collection(
                GOOD,
                _feature(
                    {
                        "type": "Polygon",
                        "coordinates": [
                            [
                                [105.84, 21.04],
                                [105.85, 21.05],
                                [105.86, 21.06],
                                [105.85, 21.05],
                                [105.84, 21.04],
                            ]
                        ],
                    },
                    code=BA_DINH,
                ),
            ),
            1,
            "cannot be repaired",
        ),
        (
            _collection(
                GOOD, _feature({"type": "Point", "coordinates": [105.84, 21.04]}, code=BA_DINH)
            ),
            1,
            "'Point' is not Polygon or MultiPolygon",
        ),
        (_collection(GOOD, _feature(None, code=BA_DINH)), 1, "geometry is missing"),
        (
            _collection(
                GOOD,
                _feature(
                    {
                        "type": "Polygon",
                        "coordinates": [
                            [
                                [105.84, 21.04],
                                [105.85, 21.04],
                                [105.85, 21.05],
                                [105.84, 21.05],
                            ]
                        ],
                    },
                    code=BA_DINH,
                ),
            ),
            1,
            "not closed",
        ),
        (_collection(GOOD, GOOD), 1, "repeats feature 0"),
    ],
    ids=[
        "bad-json",
        "not-utf8",
        "not-collection",
        "no-features",
        "lon-range",
        "lat-range",
        "swapped",
        "unknown-code",
        "no-code",
        "wrong-name",
        "unfixable",
        "point",
        "null-geometry",
        "open-ring",
        "duplicate",
    ],
)
def test_malformed_file_is_refused(data: bytes, index: int | None, reason: str) -> None:
    problems = _problems(data)
    assert len(problems) == 1
    assert problems[0][0] == index
    assert reason in problems[0][1]


def test_every_bad_feature_is_listed_in_the_message() -> None:
    data = _collection(
        _feature({"type": "Point", "coordinates": [105.84, 21.04]}, code=BA_DINH),
        GOOD,
        _feature(_square(105.84, 21.04), code="12345"),
    )
    with pytest.raises(BoundaryImportError) as caught:
        parse_geojson(data)
    assert [p.index for p in caught.value.problems] == [0, 2]
    assert "feature 0: geometry type 'Point'" in str(caught.value)
    assert "feature 2: ward code 12345" in str(caught.value)


def test_a_bow_tie_is_repaired() -> None:
    bow_tie = {
        "type": "Polygon",
        "coordinates": [
            [
                [105.84, 21.04],
                [105.85, 21.05],
                [105.85, 21.04],
                [105.84, 21.05],
                [105.84, 21.04],
            ]
        ],
    }
    [area] = parse_geojson(_collection(_feature(bow_tie, ward_code="70")))
    assert area.code == HOAN_KIEM
    assert area.geometry.is_valid and len(area.geometry.geoms) == 2


async def test_refused_file_writes_nothing(tmp_path: Path, session: AsyncSession) -> None:
    before = await _geoms(session)
    path = tmp_path / "bad.geojson"
    path.write_bytes(
        _collection(
            _feature(mapping(_real_looking(HOAN_KIEM)), code=HOAN_KIEM),
            _feature(_square(105.84, 21.04), code="99999"),
        )
    )
    assert await asyncio.to_thread(main, ["import", str(path)]) == 1
    assert await _geoms(session) == before


# ---------------------------------------------------------------- command line


def test_export_synthetic_round_trips(tmp_path: Path) -> None:
    path = tmp_path / "synthetic.geojson"
    assert main(["export-synthetic", str(path)]) == 0
    doc = json.loads(path.read_text(encoding="utf-8"))
    assert len(doc["features"]) == 126
    assert all(f["properties"]["synthetic"] is True for f in doc["features"])
    areas = parse_geojson(path.read_bytes())
    assert {a.code for a in areas} == {w.code for w in hanoi_wards()}


async def test_cli_import(tmp_path: Path, session: AsyncSession, restore: list[str]) -> None:
    path = tmp_path / "cua-nam.geojson"
    path.write_bytes(_collection(_feature(mapping(_real_looking(CUA_NAM)), ma=CUA_NAM)))
    restore.append(CUA_NAM)
    assert await asyncio.to_thread(main, ["import", str(path)]) == 0
    assert (await _geoms(session))[CUA_NAM][1] is False
