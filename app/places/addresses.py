"""Finding a place by its address, for residents who cannot use a map (issue 22 item 7).

The address data is what ``app.places.boundaries`` already uses: ``vietnamadminunits``
(Hanoi's wards before and after the 1 July 2025 reform and which old ward went to which
current one) joined BY NAME to the official codes of ``vietnam-provinces``. Migration
0080 writes it to ``address_places``: one row per current ward, and one per old ward
(with its old district) and current ward it went to (an old ward split between several
current wards has a row for each). Names are kept folded (lower case, no diacritics,
``fold_name``) so accents are optional; matching is pg_trgm's ``word_similarity`` of a
name against the folded query, so the ward can sit anywhere in a free-text address
("12 Hàng Bạc, phuong Hoan Kiem, Ha Noi").

A place's point is its ward's ``ST_PointOnSurface`` (always inside the ward, so filing
there finds the same ward); a report filed by address is marked ``location_approximate``.
Nothing here is personal: the query text is neither stored nor logged.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import msgspec
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncSession

from app.core.errors import Conflict, FieldError, Unprocessable
from app.places.boundaries import _province_name, fold_name, hanoi_wards

# a name must match at least this well (pg_trgm word_similarity, 0..1): a typo or a
# missing word is forgiven, another ward's name is not
MIN_SIMILARITY = 0.75
CANDIDATES_LIMIT = 10

_DISTRICT_PREFIXES = ("quan ", "huyen ", "thi xa ", "thanh pho ")
_WARD_PREFIXES = ("phuong ", "xa ", "thi tran ", "dac khu ")


class AddressCandidate(msgspec.Struct):
    """A place an address may mean: its current ward and a point inside it."""

    id: int  # give it back as ``address_id`` to file a report there
    area_code: str  # the current ward's official code
    area_name: str  # the current ward's name
    old_name: str | None  # the pre-2025 ward and district, when the query matched it
    label: str  # the whole place in words (what a screen reader says)
    lat: float
    lon: float
    approximate: bool = True  # the point is the ward's, not the address's


class AddressSearchOut(msgspec.Struct):
    query: str
    candidates: list[AddressCandidate]


@dataclass(frozen=True)
class PlaceRow:
    id: int
    area_code: str
    old_name: str | None
    ward_key: str
    district_key: str | None


def _strip(folded: str, prefixes: tuple[str, ...]) -> str:
    for prefix in prefixes:
        if folded.startswith(prefix):
            return folded[len(prefix) :]
    return folded


def _package_data() -> tuple[list[dict[str, Any]], list[dict[str, Any]], dict[str, Any]]:
    from vietnamadminunits.database import get_data

    current = get_data(fields=["province", "ward", "wardKey"], table="admin_units")
    old = get_data(
        fields=["province", "provinceKey", "district", "districtKey", "ward", "wardKey"],
        table="admin_units_legacy",
    )
    import vietnamadminunits

    path = Path(vietnamadminunits.__file__).parent / "data" / "converter_2025.json"
    return current, old, json.loads(path.read_text(encoding="utf-8"))


def address_places() -> list[PlaceRow]:
    """Hanoi's current wards and old wards with the official code of the current ward
    each maps to (joined by name; an old ward whose current ward is not found is left
    out rather than guessed)."""
    wards = hanoi_wards()
    province = fold_name(_province_name())
    code_by_key = {fold_name(w.name).replace(" ", ""): w.code for w in wards}
    current, old, converter = _package_data()
    new_keys = {
        r["wardKey"]: code_by_key[fold_name(r["ward"]).replace(" ", "")]
        for r in current
        if fold_name(r["province"]) == province
        and fold_name(r["ward"]).replace(" ", "") in code_by_key
    }
    province_key = province.replace(" ", "")
    old_to_new: dict[str, set[str]] = {}
    for new_key, olds in converter["DICT_PROVINCE_WARD_NO_DIVIDED"].get(province_key, {}).items():
        for old_key in olds:
            old_to_new.setdefault(old_key, set()).add(new_key)
    for old_key, news in converter["DICT_PROVINCE_WARD_DIVIDED"].get(province_key, {}).items():
        for new in news:
            old_to_new.setdefault(old_key, set()).add(new["newWardKey"])

    rows: list[PlaceRow] = []
    for ward in sorted(wards, key=lambda w: w.code):
        rows.append(PlaceRow(0, ward.code, None, fold_name(ward.short_name), None))
    seen: set[tuple[str, str]] = set()
    for r in sorted(old, key=lambda r: (r["district"] or "", r["ward"] or "")):
        if fold_name(r["province"]) != province or not r["ward"]:
            continue
        composite = f"{r['provinceKey']}_{r['districtKey']}_{r['wardKey']}"
        label = f"{r['ward']}, {r['district']}"
        ward_key = _strip(fold_name(r["ward"]), _WARD_PREFIXES)
        district_key = _strip(fold_name(r["district"]), _DISTRICT_PREFIXES)
        for new_key in sorted(old_to_new.get(composite, ())):
            code = new_keys.get(new_key)
            if code is None or (composite, code) in seen:
                continue
            seen.add((composite, code))
            rows.append(PlaceRow(0, code, label, ward_key, district_key))
    return [
        PlaceRow(i, r.area_code, r.old_name, r.ward_key, r.district_key)
        for i, r in enumerate(rows, start=1)
    ]


# Every place whose ward name is in the query, best first: the ward name's similarity,
# plus 0.5 when the query also names the old district (so "Tân Lập, Đan Phượng" beats
# another district's Tân Lập), plus 0.25 for a current ward (a name that is both a
# current ward's and an old one's means the current ward unless the old district is named);
# among names found equally well, the longest.
_SEARCH = text(
    """
    WITH scored AS (
        SELECT p.id, p.area_code, p.old_name,
               word_similarity(p.ward_key, :q)
               + CASE WHEN p.district_key IS NULL THEN 0.25
                      WHEN word_similarity(p.district_key, :q) >= :min THEN 0.5
                      ELSE 0 END
               -- the longest name found wins: "Dịch Vọng Hậu" over "Dịch Vọng"
               + length(p.ward_key) / 1000.0 AS score
          FROM address_places p
         WHERE word_similarity(p.ward_key, :q) >= :min
    )
    SELECT s.id, s.area_code, a.name, s.old_name,
           ST_Y(ST_PointOnSurface(a.geom)) AS lat, ST_X(ST_PointOnSurface(a.geom)) AS lon,
           s.score
      FROM scored s JOIN areas a ON a.code = s.area_code
     ORDER BY s.score DESC, s.old_name IS NOT NULL, s.id
     LIMIT :limit
    """
)

_BY_ID = text(
    """
    SELECT p.id, p.area_code, a.name, p.old_name,
           ST_Y(ST_PointOnSurface(a.geom)), ST_X(ST_PointOnSurface(a.geom)), 1.0
      FROM address_places p JOIN areas a ON a.code = p.area_code
     WHERE p.id = :id
    """
)


def _candidate(row: Any) -> AddressCandidate:
    label = row[2] if row[3] is None else f"{row[3]} → {row[2]}"
    return AddressCandidate(
        id=row[0],
        area_code=row[1],
        area_name=row[2],
        old_name=row[3],
        label=label,
        lat=round(row[4], 6),
        lon=round(row[5], 6),
    )


def normalise_query(q: str) -> str:
    return fold_name(q)


async def search(session: AsyncSession, q: str) -> AddressSearchOut:
    """Candidate places for a free-text address, best first (possibly none)."""
    folded = normalise_query(q)
    if not folded:
        return AddressSearchOut(query=q, candidates=[])
    rows = (
        await session.execute(
            _SEARCH, {"q": folded, "min": MIN_SIMILARITY, "limit": CANDIDATES_LIMIT}
        )
    ).all()
    return AddressSearchOut(query=q, candidates=[_candidate(r) for r in rows])


async def resolve(
    session: AsyncSession, address_id: int | None, address: str | None
) -> AddressCandidate:
    """The one place a filing's address means. An unknown id or text matching nothing:
    422 ``address_not_found``; text whose best matches lie in several wards: 409
    ``address_ambiguous`` with the candidates (the app asks the resident to pick one)."""
    if address_id is not None:
        row = (await session.execute(_BY_ID, {"id": address_id})).first()
        if row is None:
            raise Unprocessable(
                "address_not_found",
                errors=[FieldError(field="address_id", message="unknown place", source="body")],
            )
        return _candidate(row)
    folded = normalise_query(address or "")
    rows = (
        (
            await session.execute(
                _SEARCH, {"q": folded, "min": MIN_SIMILARITY, "limit": CANDIDATES_LIMIT}
            )
        ).all()
        if folded
        else []
    )
    if not rows:
        raise Unprocessable(
            "address_not_found",
            errors=[FieldError(field="address_text", message="matches no ward", source="body")],
        )
    best = rows[0][6]
    top = [r for r in rows if r[6] >= best - 1e-9]
    if len({r[1] for r in top}) > 1:
        candidates = [_candidate(r) for r in top]
        raise Conflict(
            "address_ambiguous",
            params={"count": len({c.area_code for c in candidates})},
            errors=[
                FieldError(field="address_text", message="matches several wards", source="body")
            ],
            candidates=msgspec.to_builtins(candidates),
        )
    return _candidate(top[0])
