"""Hanoi's communes and wards (xã / phường) and their boundaries (địa giới hành chính).

Two offline sources, never mixed by code:

- ``vietnam-provinces``: the one source of official codes (mã đơn vị hành chính) and
  names of the 126 communes and wards of Thành phố Hà Nội (province 01) after the
  1 July 2025 reform.
- ``vietnamadminunits``: each ward's centre (latitude/longitude) and reported area,
  joined to the first source BY NAME (kind + name without diacritics), because the two
  packages' ward codes are not guaranteed to agree.

Real boundaries are not available offline. ``synthetic_polygons`` builds a stand-in: a
Voronoi tessellation of the real ward centres clipped to an approximate city outline.
A city loads its real boundaries with ``python -m app.places.boundaries import FILE``
(``parse_geojson`` + ``import_boundaries``), which clears the ``synthetic`` flag.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import logging
import math
import sys
import unicodedata
from collections.abc import Callable, Iterable
from functools import cache
from pathlib import Path
from typing import Any

import msgspec
import shapely
from shapely.geometry import MultiPoint, MultiPolygon, Point, Polygon, mapping, shape
from shapely.geometry.base import BaseGeometry
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncSession

log = logging.getLogger("city.places.boundaries")

PROVINCE_CODE = "01"  # Thành phố Hà Nội
# Generous box around Hanoi (lon_min, lat_min, lon_max, lat_max): catches swapped lon/lat
HANOI_BBOX = (104.8, 20.2, 106.5, 21.8)

# The outline of the city (ranh giới thành phố) stand-in: every ward's disc of its
# reported area, united with the concave hull of the centres buffered by 2 km. With
# these values the outline's area is ~3,400 km², close to Hanoi's real 3,360 km².
OUTLINE_HULL_RATIO = 0.2
OUTLINE_BUFFER_KM = 2.0
OUTLINE_DISC_FACTOR = 1.0

CODE_PROPERTIES = ("code", "ma", "ward_code", "ma_xa")
NAME_PROPERTIES = ("name", "ten", "ward_name", "ten_xa")
_ACCEPTED_CRS = {
    "urn:ogc:def:crs:OGC:1.3:CRS84",
    "urn:ogc:def:crs:OGC::CRS84",
    "urn:ogc:def:crs:EPSG::4326",
    "EPSG:4326",
}


class WardInfo(msgspec.Struct, frozen=True, kw_only=True):
    """A commune or ward (xã / phường) of Hanoi with its centre (tâm)."""

    code: str  # official 5-digit code from vietnam-provinces, e.g. "00070"
    name: str  # e.g. "Phường Hoàn Kiếm"
    kind: str  # ward (phường) | commune (xã)
    province_code: str  # "01"
    lat: float
    lon: float
    area_km2: float | None = None  # reported area, used to shape the synthetic outline

    @property
    def short_name(self) -> str:
        """The name without its "Phường"/"Xã" prefix, e.g. "Hoàn Kiếm"."""
        return _strip_prefix(self.name)


class ImportedArea(msgspec.Struct, frozen=True, kw_only=True):
    """One ward's real boundary read from a city's GeoJSON file (WGS84, valid)."""

    code: str
    name: str | None
    geometry: Any  # shapely MultiPolygon (lon/lat)


class FeatureProblem(msgspec.Struct, frozen=True):
    """Why one feature (index in ``features``, or None for the whole file) was refused."""

    index: int | None
    reason: str

    def __str__(self) -> str:
        where = "file" if self.index is None else f"feature {self.index}"
        return f"{where}: {self.reason}"


class BoundaryImportError(ValueError):
    """A boundary file (tệp ranh giới) was refused; ``problems`` lists every bad feature."""

    def __init__(self, problems: list[FeatureProblem]) -> None:
        self.problems = problems
        lines = "\n".join(f"  {p}" for p in problems)
        super().__init__(f"{len(problems)} problem(s) in the boundary file:\n{lines}")


class WardCentreMissing(RuntimeError):
    """Some wards of vietnam-provinces have no centre in vietnamadminunits."""


# ---------------------------------------------------------------- names and joining


def fold_name(name: str) -> str:
    """Lower case, no diacritics (đ -> d), punctuation as spaces: "Văn Miếu - Quốc Tử Giám"
    -> "van mieu quoc tu giam". Tone-mark placement (hoà/hòa) no longer matters."""
    decomposed = unicodedata.normalize("NFD", unicodedata.normalize("NFC", name))
    bare = "".join(c for c in decomposed if not unicodedata.combining(c))
    bare = bare.replace("đ", "d").replace("Đ", "D").casefold()
    return " ".join("".join(c if c.isalnum() else " " for c in bare).split())


_PREFIXES = {
    "phuong": "ward",
    "p": "ward",
    "xa": "commune",
    "x": "commune",
    "thi tran": "town",
    "tt": "town",
    "dac khu": "special_zone",
}


def _split_prefix(name: str) -> tuple[str | None, str]:
    """("ward" | "commune" | ..., folded short name) from "Phường X" / "Xã X" / "P. X"."""
    folded = fold_name(name)
    for prefix in sorted(_PREFIXES, key=len, reverse=True):
        if folded.startswith(prefix + " "):
            return _PREFIXES[prefix], folded[len(prefix) + 1 :]
    return None, folded


def _strip_prefix(name: str) -> str:
    for prefix in ("Phường ", "Xã ", "Thị trấn ", "Đặc khu "):
        if name.startswith(prefix):
            return name[len(prefix) :]
    return name


def name_key(name: str) -> str:
    """The join key of a ward name: folded, without its kind prefix."""
    return _split_prefix(name)[1]


def _kind_of(division_type: str, name: str) -> str:
    """ward for phường, commune for xã (the package's type, checked against the prefix)."""
    kinds = {"phường": "ward", "xã": "commune", "đặc khu": "special_zone"}
    kind = kinds.get(str(division_type))
    prefix_kind = _split_prefix(name)[0]
    if kind is None or (prefix_kind is not None and prefix_kind != kind):
        raise ValueError(f"cannot tell the kind of {name!r} ({division_type})")
    return kind


def _official_wards() -> list[tuple[str, str, str]]:
    """(code, name, kind) of Hanoi's wards from vietnam-provinces, in code order."""
    from vietnam_provinces import ProvinceCode, Ward

    wards = Ward.iter_by_province(ProvinceCode(int(PROVINCE_CODE)))
    rows = [(f"{w.code.value:05d}", w.name, _kind_of(w.division_type, w.name)) for w in wards]
    return sorted(rows)


def _province_name() -> str:
    from vietnam_provinces import Province, ProvinceCode

    return Province.from_code(ProvinceCode(int(PROVINCE_CODE))).name


def _centre_rows() -> list[dict[str, Any]]:
    """Hanoi's rows of vietnamadminunits (selected by province NAME, not by its codes)."""
    from vietnamadminunits.database import get_data

    fields = ["province", "ward", "wardLat", "wardLon", "wardAreaKm2"]
    wanted = fold_name(_province_name())
    return [
        r
        for r in get_data(fields=fields, table="admin_units")
        if fold_name(r["province"]) == wanted
    ]


def _centre_index(rows: Iterable[dict[str, Any]]) -> dict[tuple[str | None, str], dict]:
    """Rows by (kind, folded short name); a key two rows share is dropped (ambiguous)."""
    index: dict[tuple[str | None, str], dict] = {}
    ambiguous: set[tuple[str | None, str]] = set()
    for row in rows:
        key = _split_prefix(row["ward"])
        if key in index:
            ambiguous.add(key)
        index[key] = row
    for key in ambiguous:
        del index[key]
    return index


@cache
def _hanoi_wards() -> tuple[WardInfo, ...]:
    index = _centre_index(_centre_rows())
    wards: list[WardInfo] = []
    missing: list[str] = []
    for code, name, kind in _official_wards():
        row = index.get((kind, name_key(name)))
        if row is None or row["wardLat"] is None or row["wardLon"] is None:
            missing.append(f"{code} {name}")
            continue
        wards.append(
            WardInfo(
                code=code,
                name=name,
                kind=kind,
                province_code=PROVINCE_CODE,
                lat=float(row["wardLat"]),
                lon=float(row["wardLon"]),
                area_km2=row["wardAreaKm2"],
            )
        )
    if missing:
        raise WardCentreMissing(f"no centre in vietnamadminunits for: {', '.join(missing)}")
    _check_centres(wards)
    log.info("hanoi wards joined by name: %d of %d", len(wards), len(wards) + len(missing))
    return tuple(wards)


def _check_centres(wards: list[WardInfo]) -> None:
    lon0, lat0, lon1, lat1 = HANOI_BBOX
    outside = [w.name for w in wards if not (lon0 <= w.lon <= lon1 and lat0 <= w.lat <= lat1)]
    if outside:
        raise WardCentreMissing(f"centres outside Hanoi: {', '.join(outside)}")
    if len({(w.lon, w.lat) for w in wards}) != len(wards):
        raise WardCentreMissing("two wards share one centre")


def hanoi_wards() -> list[WardInfo]:
    """Hanoi's 126 communes and wards (xã, phường) after 1 July 2025, each with its centre.

    Codes and names come only from vietnam-provinces; the centre is joined by name from
    vietnamadminunits. Raises ``WardCentreMissing`` if any ward has no centre."""
    return list(_hanoi_wards())


# ---------------------------------------------------------------- synthetic polygons
# Geometry is built in a local plane in kilometres (equirectangular around 21°N), so
# buffers are in km and Voronoi cells are close to metric; an affine map takes it back.

_LAT0, _LON0 = 21.0, 105.8
_KX = 111.320 * math.cos(math.radians(_LAT0))  # km per degree of longitude at 21°N
_KY = 110.574  # km per degree of latitude


def _to_plane[G: BaseGeometry](geom: G) -> G:
    return shapely.transform(geom, lambda c: (c - (_LON0, _LAT0)) * (_KX, _KY))


def _to_lonlat[G: BaseGeometry](geom: G) -> G:
    return shapely.transform(geom, lambda c: c / (_KX, _KY) + (_LON0, _LAT0))


def city_outline(wards: list[WardInfo]) -> Polygon:
    """A stand-in for the city's outline (lon/lat): the wards' area discs united with the
    concave hull of their centres buffered by ``OUTLINE_BUFFER_KM``, holes filled."""
    return _to_lonlat(_outline_plane(wards))


def _outline_plane(wards: list[WardInfo]) -> Polygon:
    centres = [_to_plane(Point(w.lon, w.lat)) for w in wards]
    discs = [
        c.buffer(OUTLINE_DISC_FACTOR * math.sqrt((w.area_km2 or 1.0) / math.pi))
        for c, w in zip(centres, wards, strict=True)
    ]
    hull = shapely.concave_hull(MultiPoint(centres), ratio=OUTLINE_HULL_RATIO)
    merged = shapely.union_all([*discs, hull.buffer(OUTLINE_BUFFER_KM)])
    parts = [p for p in shapely.get_parts(merged) if isinstance(p, Polygon)]
    return Polygon(max(parts, key=lambda p: p.area).exterior)


def _polygonal(geom: BaseGeometry) -> MultiPolygon:
    """The polygonal part of a geometry as a MultiPolygon (empty if it has none)."""
    parts: list[Polygon] = []
    for part in shapely.get_parts(geom):
        if isinstance(part, Polygon) and not part.is_empty:
            parts.append(part)
        elif isinstance(part, MultiPolygon):
            parts.extend(part.geoms)
        elif part.geom_type == "GeometryCollection":
            parts.extend(_polygonal(part).geoms)
    return MultiPolygon(parts)


def synthetic_polygons(wards: list[WardInfo]) -> dict[str, MultiPolygon]:
    """Synthetic boundaries (ranh giới giả lập), by ward code: the Voronoi tessellation of
    the ward centres clipped to ``city_outline``. Tiles do not overlap, cover the outline,
    each contains its own centre; valid WGS84 lon/lat MultiPolygons."""
    outline = _outline_plane(wards)
    centres = [_to_plane(Point(w.lon, w.lat)) for w in wards]
    cells = shapely.voronoi_polygons(MultiPoint(centres), extend_to=outline, ordered=True)
    tiles: dict[str, MultiPolygon] = {}
    for ward, centre, cell in zip(wards, centres, cells.geoms, strict=True):
        if not cell.contains(centre):
            raise AssertionError(f"Voronoi cell out of order for {ward.code}")
        tile = _polygonal(shapely.make_valid(cell.intersection(outline)))
        tiles[ward.code] = _to_lonlat(tile)
    return tiles


def synthetic_feature_collection(wards: list[WardInfo]) -> dict[str, Any]:
    """The synthetic boundaries as a GeoJSON FeatureCollection, ``"synthetic": true``."""
    tiles = synthetic_polygons(wards)
    features = [
        {
            "type": "Feature",
            "properties": {"code": w.code, "name": w.name, "kind": w.kind, "synthetic": True},
            "geometry": mapping(tiles[w.code]),
        }
        for w in wards
    ]
    return {"type": "FeatureCollection", "features": features}


# ---------------------------------------------------------------- GeoJSON import


class _Refused(Exception):
    """One feature's reason for refusal (internal)."""


def _load_collection(data: bytes) -> list[Any]:
    try:
        doc = json.loads(data)
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise BoundaryImportError([FeatureProblem(None, f"not valid JSON: {exc}")]) from None
    if not isinstance(doc, dict) or doc.get("type") != "FeatureCollection":
        raise BoundaryImportError([FeatureProblem(None, "not a GeoJSON FeatureCollection")])
    crs = doc.get("crs")
    if crs is not None:
        crs_name = crs.get("properties", {}).get("name") if isinstance(crs, dict) else None
        if crs_name not in _ACCEPTED_CRS:
            raise BoundaryImportError(
                [
                    FeatureProblem(
                        None, f"coordinates must be WGS84 lon/lat (RFC 7946), not crs {crs_name!r}"
                    )
                ]
            )
    features = doc.get("features")
    if not isinstance(features, list) or not features:
        raise BoundaryImportError([FeatureProblem(None, "'features' must be a non-empty list")])
    return features


def _feature_code(properties: dict[str, Any]) -> str:
    raw = next((properties[k] for k in CODE_PROPERTIES if properties.get(k) is not None), None)
    if raw is None:
        raise _Refused(f"no ward code in properties (one of {', '.join(CODE_PROPERTIES)})")
    if isinstance(raw, bool) or not isinstance(raw, (str, int)):
        raise _Refused(f"ward code {raw!r} is not a number or a string of digits")
    code = str(raw).strip()
    if not code.isdigit() or len(code) > 5:
        raise _Refused(f"ward code {raw!r} is not a code of up to 5 digits")
    return code.zfill(5)


def _feature_name(properties: dict[str, Any]) -> str | None:
    raw = next((properties[k] for k in NAME_PROPERTIES if properties.get(k)), None)
    if raw is not None and not isinstance(raw, str):
        raise _Refused(f"ward name {raw!r} is not a string")
    return raw


def _check_position(pos: Any) -> None:
    if not isinstance(pos, list) or len(pos) not in (2, 3):
        raise _Refused(f"position {pos!r} is not [longitude, latitude]")
    if not all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in pos):
        raise _Refused(f"position {pos!r} has a coordinate that is not a number")
    lon, lat = pos[0], pos[1]
    if not (math.isfinite(lon) and math.isfinite(lat)) or not (
        -180 <= lon <= 180 and -90 <= lat <= 90
    ):
        raise _Refused(f"coordinates {pos!r} out of range (longitude ±180, latitude ±90)")


def _check_ring(ring: Any) -> None:
    if not isinstance(ring, list) or len(ring) < 4:
        raise _Refused("a linear ring needs at least 4 positions")
    for pos in ring:
        _check_position(pos)
    if ring[0] != ring[-1]:
        raise _Refused("a linear ring is not closed (first and last positions differ)")


def _check_polygon_coordinates(rings: Any) -> None:
    if not isinstance(rings, list) or not rings:
        raise _Refused("a Polygon needs a non-empty list of linear rings")
    for ring in rings:
        _check_ring(ring)


def _check_geometry_structure(geometry: Any) -> None:
    if not isinstance(geometry, dict):
        raise _Refused("geometry is missing or not an object")
    kind, coords = geometry.get("type"), geometry.get("coordinates")
    if kind == "Polygon":
        _check_polygon_coordinates(coords)
    elif kind == "MultiPolygon":
        if not isinstance(coords, list) or not coords:
            raise _Refused("a MultiPolygon needs a non-empty list of polygons")
        for polygon in coords:
            _check_polygon_coordinates(polygon)
    else:
        raise _Refused(f"geometry type {kind!r} is not Polygon or MultiPolygon")


def _repaired(geometry: dict[str, Any]) -> MultiPolygon:
    """The geometry as a valid MultiPolygon (make_valid), or refused if nothing is left."""
    geom = shape(geometry)
    if not geom.is_valid:
        reason = shapely.is_valid_reason(geom)
        geom = _polygonal(shapely.make_valid(geom))
        if geom.is_empty or geom.area == 0:
            raise _Refused(f"invalid polygon that cannot be repaired ({reason})")
    geom = _polygonal(geom)
    if geom.is_empty or geom.area == 0:
        raise _Refused("polygon has no area")
    lon0, lat0, lon1, lat1 = HANOI_BBOX
    if not geom.intersects(shapely.box(lon0, lat0, lon1, lat1)):
        raise _Refused("polygon lies outside Hanoi (are longitude and latitude swapped?)")
    return geom


def _parse_feature(feature: Any, wards: dict[str, WardInfo]) -> ImportedArea:
    if not isinstance(feature, dict) or feature.get("type") != "Feature":
        raise _Refused("not a GeoJSON Feature")
    properties = feature.get("properties")
    if not isinstance(properties, dict):
        raise _Refused("properties missing (they must carry the ward code)")
    code, name = _feature_code(properties), _feature_name(properties)
    ward = wards.get(code)
    if ward is None:
        raise _Refused(f"ward code {code} is not a commune or ward of Hanoi")
    if name is not None and name_key(name) != name_key(ward.name):
        raise _Refused(f"name {name!r} does not match ward {code} ({ward.name})")
    _check_geometry_structure(feature.get("geometry"))
    return ImportedArea(code=code, name=name, geometry=_repaired(feature["geometry"]))


def parse_geojson(data: bytes) -> list[ImportedArea]:
    """Read a city's boundary file: a GeoJSON (RFC 7946) FeatureCollection of Polygon or
    MultiPolygon features, each carrying its official ward code (``code``, ``ma``,
    ``ward_code`` or ``ma_xa``) and optionally its name. Raises ``BoundaryImportError``
    listing every bad feature. CPU-bound: call it off the event loop for big files."""
    features = _load_collection(data)
    wards = {w.code: w for w in hanoi_wards()}
    areas: list[ImportedArea] = []
    problems: list[FeatureProblem] = []
    seen: dict[str, int] = {}
    for index, feature in enumerate(features):
        try:
            area = _parse_feature(feature, wards)
        except _Refused as exc:
            problems.append(FeatureProblem(index, str(exc)))
            continue
        if area.code in seen:
            problems.append(
                FeatureProblem(index, f"ward code {area.code} repeats feature {seen[area.code]}")
            )
            continue
        seen[area.code] = index
        areas.append(area)
    if problems:
        raise BoundaryImportError(problems)
    return areas


_IMPORT_SQL = text("""
WITH input AS (
    SELECT v.code, v.wkb
    FROM unnest(CAST(:codes AS text[]), CAST(:wkbs AS bytea[])) AS v(code, wkb)
), all_known AS (
    SELECT count(*) = cardinality(CAST(:codes AS text[])) AS ok
    FROM areas JOIN input USING (code)
)
UPDATE areas AS a
SET geom = ST_Multi(ST_CollectionExtract(ST_MakeValid(ST_GeomFromWKB(i.wkb, 4326)), 3)),
    synthetic = false
FROM input AS i
WHERE a.code = i.code AND (SELECT ok FROM all_known)
RETURNING a.code
""")


async def import_boundaries(session: AsyncSession, areas: list[ImportedArea]) -> int:
    """Replace the boundaries of the given areas with real ones (synthetic = false), in one
    set-based statement: all areas or none. Returns how many were replaced; raises
    ``BoundaryImportError`` (writing nothing) if a code is not in the areas table."""
    codes = [a.code for a in areas]
    if len(set(codes)) != len(codes):
        raise BoundaryImportError([FeatureProblem(None, "a ward code appears twice")])
    if not areas:
        return 0
    wkbs = [shapely.to_wkb(a.geometry, output_dimension=2) for a in areas]
    updated = (await session.execute(_IMPORT_SQL, {"codes": codes, "wkbs": wkbs})).scalars()
    count = len(updated.all())
    if count != len(areas):
        known = set(
            await session.scalars(
                text("SELECT code FROM areas WHERE code = ANY(CAST(:codes AS text[]))"),
                {"codes": codes},
            )
        )
        raise BoundaryImportError(
            [
                FeatureProblem(i, f"no area with code {c} in the database")
                for i, c in enumerate(codes)
                if c not in known
            ]
        )
    return count


# ---------------------------------------------------------------- command line


async def _import_file(path: Path) -> int:
    from sqlalchemy.ext.asyncio import create_async_engine

    from app.settings import get_settings

    areas = await asyncio.to_thread(lambda: parse_geojson(path.read_bytes()))
    engine = create_async_engine(get_settings().database_url)
    try:
        async with AsyncSession(engine) as session, session.begin():
            return await import_boundaries(session, areas)
    finally:
        await engine.dispose()


def _export_synthetic(path: Path) -> int:
    collection = synthetic_feature_collection(hanoi_wards())
    path.write_text(json.dumps(collection, ensure_ascii=False), encoding="utf-8")
    return len(collection["features"])


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m app.places.boundaries", description="Ward boundaries (ranh giới phường/xã)"
    )
    sub = parser.add_subparsers(dest="command", required=True)
    sub.add_parser(
        "import", help="replace boundaries from a GeoJSON FeatureCollection"
    ).add_argument("file", type=Path)
    sub.add_parser(
        "export-synthetic", help="write the synthetic boundaries as GeoJSON"
    ).add_argument("file", type=Path)
    args = parser.parse_args(argv)
    commands: dict[str, Callable[[Path], int]] = {
        "import": lambda p: asyncio.run(_import_file(p)),
        "export-synthetic": _export_synthetic,
    }
    try:
        count = commands[args.command](args.file)
    except BoundaryImportError as exc:
        print(exc, file=sys.stderr)
        return 1
    verb = "imported" if args.command == "import" else "exported"
    print(f"{verb} {count} ward boundaries", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
