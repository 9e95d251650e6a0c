"""What agencies send us, and how it becomes one normalised event (issue 19 items 1-3).

Two shapes reach the ingest, both signed (``signing.py``) and both turned into the same
``ParsedEvent`` that ``ingest.apply_events`` applies; file imports (NDJSON/CSV) use the same
parsers line by line.

**The native event** (``POST /api/v1/ingest/agencies/{agency_code}/events``, body
``{"events": [...]}``, at most 500)::

    {
      "id": "evt-000123",                 # the agency's id, idempotent per agency
      "type": "dossier.upsert" | "dossier.progress",
      "dossier_code": "000.00.12.H29-261125-0001",   # mã hồ sơ, unique city-wide
      "at": "2026-11-25T10:00:00+07:00",  # when it happened (or "20261125100000", Hanoi)
      "seq": 3,                           # optional: orders events of the same instant
      "status": "processing",             # optional, ours: received | processing |
                                          #   supplement_requested | completed | returned |
                                          #   refused | withdrawn
      "status_code": "2",                 # or the agency's own code, mapped per agency
      "dossier": {                        # upsert: the dossier's fields (all optional
        "procedure_code": "1.001234",     #   on an update; procedure_code,
        "procedure_name": "...",          #   procedure_name and applicant.name are
        "field_code": "...",              #   needed to create one)
        "applicant": {"name": "...", "kind": "person" | "business",
                      "citizen_id": "001099012345", "phone": "...", "email": "..."},
        "summary": "...", "received_at": "...", "due_at": "...", "returned_at": "...",
        "online": true,                   # fully online (toàn trình)
        "handling_unit": "...",
        "fees": [{"name": "...", "amount": 50000, "paid": true}],
        "results": [{"name": "...", "number": "..."}],
        "result_pickup": "..."            # where and how the result is collected
      },
      "handler": "...", "content": "...", # progress: NguoiXuLy, NoiDungXuLy
      "supplement": {"id": "...", "needed": "...", "supply_by": "...",
                     "old_due_at": "...", "new_due_at": "..."},
      "refused_reason": "..."
    }

Times are ISO 8601 (an offset, or Hanoi time when none is given) or the portal's
``yyyyMMddHHmmss`` in Hanoi time; they are kept in UTC. The citizen ID (12 digits) is
never kept: only the accounts' keyed hash and its last four digits leave the parser.

**The national portal's shape** (``POST /api/v1/ingest/agencies/{agency_code}/portal``),
as the OpenCPS one-stop-shop systems send it: ``{"service": "DongBoHoSoMC", "data":
[dossier, ...]}`` (a sync of the whole dossier: ``MaHoSo``, ``MaTTHC``/``TenTTHC``,
``MaLinhVuc``, ``ChuHoSo``, ``LoaiDoiTuong`` 1 person / 2 business, ``SoDinhDanh`` or
``MaDoiTuong`` (citizen ID), ``SoDienThoai``, ``Email``, ``TrichYeuHoSo``,
``NgayTiepNhan``, ``NgayHenTra``, ``NgayTra``, ``TrangThaiHoSo`` (the agency's code),
``HinhThuc`` (1: fully online), ``DonViXuLy``, ``ThongTinTra``, ``DanhSachLePhi``,
``DanhSachHoSoBoSung`` with ``NgayHenTraTruoc``/``NgayHenTraMoi``,
``DanhSachGiayToKetQua``, ``NgayCapNhat``) or ``{"service": "CapNhatTienDoHoSoMC", "data":
[progress, ...]}`` (``MaHoSo``, ``NguoiXuLy``, ``ThoiDiemXuLy``, ``NoiDungXuLy``,
``TrangThai``). Other fields the portal carries (``TaiLieuNop`` …) are ignored. A
portal item's own id is its ``id`` if it has one, else a hash of the item (the same item
sent twice is a duplicate).
"""

from __future__ import annotations

import hashlib
import hmac
import re
from datetime import UTC, datetime
from functools import lru_cache
from typing import Annotated, Any, Literal

import msgspec
from msgspec import Meta

from app.core.calendar import TIMEZONE
from app.dossiers.models import STATUSES
from app.settings import get_settings

MAX_EVENTS = 500

Status = Literal[
    "received",
    "processing",
    "supplement_requested",
    "completed",
    "returned",
    "refused",
    "withdrawn",
]
assert set(Status.__args__) == set(STATUSES)  # type: ignore[attr-defined]

# no "/": a code travels as one path segment (/public/dossiers/{code})
DOSSIER_CODE_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9._\-]{0,63}$"
EVENT_ID_PATTERN = r"^[!-~]{1,128}$"  # printable ASCII, no spaces
DossierCode = Annotated[
    str, Meta(pattern=DOSSIER_CODE_PATTERN, description="The agency's dossier code (mã hồ sơ)")
]
EventId = Annotated[
    str, Meta(pattern=EVENT_ID_PATTERN, description="The agency's id of the event (≤ 128)")
]
Timestamp = Annotated[
    str,
    Meta(
        max_length=40,
        description="ISO 8601 (no offset: Hanoi time) or yyyyMMddHHmmss in Hanoi time",
        examples=["2026-11-25T10:00:00+07:00", "20261125100000"],
    ),
]
ShortText = Annotated[str, Meta(max_length=300)]
Text = Annotated[str, Meta(max_length=4000)]
Code = Annotated[str, Meta(min_length=1, max_length=64)]
CitizenId = Annotated[str, Meta(pattern=r"^\d{12}$", description="12 digits; only hashed")]


# ---------------------------------------------------------------- the native event


class ApplicantIn(msgspec.Struct, forbid_unknown_fields=True, kw_only=True):
    name: Annotated[str, Meta(min_length=1, max_length=300)] | None = None
    kind: Literal["person", "business"] | None = None
    citizen_id: CitizenId | None = None
    phone: Annotated[str, Meta(max_length=40)] | None = None
    email: Annotated[str, Meta(max_length=254)] | None = None


class FeeIn(msgspec.Struct, forbid_unknown_fields=True, kw_only=True):
    name: Annotated[str, Meta(min_length=1, max_length=300)]
    amount: Annotated[int, Meta(ge=0, le=10**13, description="VND")] = 0
    paid: bool = False


class ResultDocumentIn(msgspec.Struct, forbid_unknown_fields=True, kw_only=True):
    name: Annotated[str, Meta(min_length=1, max_length=300)]
    number: ShortText | None = None


class DossierIn(msgspec.Struct, forbid_unknown_fields=True, kw_only=True):
    procedure_code: Code | None = None
    procedure_name: Annotated[str, Meta(min_length=1, max_length=1000)] | None = None
    field_code: Code | None = None
    applicant: ApplicantIn | None = None
    summary: Text | None = None
    received_at: Timestamp | None = None
    due_at: Timestamp | None = None
    returned_at: Timestamp | None = None
    online: bool | None = None
    handling_unit: ShortText | None = None
    fees: Annotated[list[FeeIn], Meta(max_length=50)] | None = None
    results: Annotated[list[ResultDocumentIn], Meta(max_length=50)] | None = None
    result_pickup: Text | None = None


class SupplementIn(msgspec.Struct, forbid_unknown_fields=True, kw_only=True):
    id: EventId | None = None
    needed: Annotated[str, Meta(min_length=1, max_length=4000)]
    supply_by: Timestamp | None = None
    old_due_at: Timestamp | None = None
    new_due_at: Timestamp | None = None


class EventIn(msgspec.Struct, forbid_unknown_fields=True, kw_only=True):
    """One native event (see the module's docstring)."""

    id: EventId
    type: Literal["dossier.upsert", "dossier.progress"]
    dossier_code: DossierCode
    at: Timestamp
    seq: Annotated[int, Meta(ge=0, le=2**62)] = 0
    status: Status | None = None
    status_code: Annotated[str, Meta(min_length=1, max_length=40)] | None = None
    dossier: DossierIn | None = None
    handler: ShortText | None = None
    content: Text | None = None
    supplement: SupplementIn | None = None
    refused_reason: Text | None = None


class EventBatchIn(msgspec.Struct, forbid_unknown_fields=True):
    """A signed batch of native events (at most 500)."""

    events: Annotated[list[EventIn], Meta(min_length=1, max_length=MAX_EVENTS)]


# ---------------------------------------------------------------- normalised


class DossierFields(msgspec.Struct, kw_only=True):
    """The dossier's fields an event carries (None: not given, left as it is)."""

    procedure_code: str | None = None
    procedure_name: str | None = None
    field_code: str | None = None
    applicant_name: str | None = None
    applicant_kind: str | None = None
    applicant_id_hash: bytes | None = None
    applicant_id_last4: str | None = None
    applicant_phone: str | None = None
    applicant_email: str | None = None
    summary: str | None = None
    received_at: datetime | None = None
    due_at: datetime | None = None
    returned_at: datetime | None = None
    online: bool | None = None
    handling_unit_name: str | None = None
    fees: list[dict[str, Any]] | None = None
    results: list[dict[str, Any]] | None = None
    result_pickup: str | None = None


class SupplementFields(msgspec.Struct, kw_only=True):
    source_id: str | None  # the agency's id of the request; None: the event's id
    needed: str
    supply_by: datetime | None = None
    old_due_at: datetime | None = None
    new_due_at: datetime | None = None


class ParsedEvent(msgspec.Struct, kw_only=True):
    """One event, whatever shape it came in, ready for ``ingest.apply_events``."""

    id: str
    kind: Literal["upsert", "progress"]
    dossier_code: str
    at: datetime  # UTC
    seq: int = 0
    status: str | None = None  # ours
    status_code: str | None = None  # the agency's, mapped through agency_status_codes
    dossier: DossierFields | None = None
    handler: str | None = None
    content: str | None = None
    supplements: list[SupplementFields] = []
    refused_reason: str | None = None


class EventProblem(msgspec.Struct, omit_defaults=True):
    """An event refused before it reached the database: its id (None when it had none
    we could read), a catalogue code (``event_*``) and the field at fault."""

    id: str | None
    code: str
    field: str | None = None
    params: dict[str, Any] | None = None


class EventRefused(Exception):
    """Raised by the parsers for one event; ``problem`` says which field and why."""

    def __init__(self, problem: EventProblem) -> None:
        super().__init__(problem.code)
        self.problem = problem


# ---------------------------------------------------------------- timestamps

_COMPACT = re.compile(r"^\d{14}$")


def parse_time(value: str | int, field: str, event_id: str | None = None) -> datetime:
    """``yyyyMMddHHmmss`` (Hanoi time) or ISO 8601 (Hanoi time when it has no offset),
    as an aware UTC datetime; anything else refuses the event naming ``field``."""
    text = str(value).strip()
    try:
        if _COMPACT.match(text):
            local = datetime(
                int(text[0:4]),
                int(text[4:6]),
                int(text[6:8]),
                int(text[8:10]),
                int(text[10:12]),
                int(text[12:14]),
                tzinfo=TIMEZONE,
            )
            parsed = local
        else:
            if len(text) < 10 or text[4] != "-":  # a bare number is no ISO 8601 date
                raise ValueError(text)
            parsed = datetime.fromisoformat(text)
            if parsed.tzinfo is None:
                parsed = parsed.replace(tzinfo=TIMEZONE)
        if not 2000 <= parsed.year <= 2200:
            raise ValueError(text)
        return parsed.astimezone(UTC)
    except (ValueError, OverflowError):
        raise EventRefused(EventProblem(event_id, "event_date_invalid", field)) from None


def _time(value: str | int | None, field: str, event_id: str | None) -> datetime | None:
    if value is None or value == "":
        return None
    return parse_time(value, field, event_id)


@lru_cache(maxsize=4)
def _keyed(key: str) -> hmac.HMAC:
    return hmac.new(key.encode(), digestmod=hashlib.sha256)


def hash_citizen_id(citizen_id: str, key: str | None = None) -> tuple[bytes, str]:
    """The accounts' keyed hash of a citizen ID (``security.keyed_hash``, the key's HMAC
    state made once and copied: 500 a batch) and its last four digits."""
    key = key if key is not None else get_settings().citizen_id_hash_key
    mac = _keyed(key).copy()
    mac.update(citizen_id.encode())
    return mac.digest(), citizen_id[-4:]


# ---------------------------------------------------------------- native → normalised

_MSGSPEC_PATH = re.compile(r" - at `\$(.*)`$")
_MISSING_FIELD = re.compile(r"^Object missing required field `([^`]+)`")
_UNKNOWN_FIELD = re.compile(r"^Object contains unknown field `([^`]+)`")


class _IdOnly(msgspec.Struct):
    id: Any = None


_event_decoder = msgspec.json.Decoder(EventIn)
_id_decoder = msgspec.json.Decoder(_IdOnly)


def _field_of(message: str) -> tuple[str, str | None]:
    """A msgspec validation message → (code, field path as ``dossier.applicant.name``).
    The message is never passed on: it may quote the value."""
    path = ""
    found = _MSGSPEC_PATH.search(message)
    if found:
        path = found[1].lstrip(".")
        message = message[: found.start()]
    path = re.sub(r"\[(\d+)\]", r".\1", path)
    for pattern, code in (
        (_MISSING_FIELD, "event_field_missing"),
        (_UNKNOWN_FIELD, "event_field_unknown"),
    ):
        named = pattern.match(message)
        if named:
            return code, f"{path}.{named[1]}" if path else named[1]
    return "event_field_invalid", path or None


def _id_of(raw: bytes | msgspec.Raw | dict[str, Any]) -> str | None:
    try:
        value = raw.get("id") if isinstance(raw, dict) else _id_decoder.decode(raw).id
    except (msgspec.DecodeError, UnicodeDecodeError):
        return None
    if isinstance(value, str) and re.match(EVENT_ID_PATTERN, value):
        return value
    return None


def parse_native(
    obj: bytes | msgspec.Raw | dict[str, Any], *, id_key: str | None = None
) -> ParsedEvent:
    """One native event (JSON bytes, a ``msgspec.Raw`` from a batch, or an already
    decoded object from a file line) → ``ParsedEvent``; raises ``EventRefused`` naming the
    field at fault. ``id_key``: the citizen-ID hash key (default: the settings')."""
    try:
        if isinstance(obj, dict):
            event = msgspec.convert(obj, EventIn)
        else:
            event = _event_decoder.decode(obj)
    except msgspec.ValidationError as exc:
        code, field = _field_of(str(exc))
        raise EventRefused(EventProblem(_id_of(obj), code, field)) from None
    except (msgspec.DecodeError, UnicodeDecodeError):
        raise EventRefused(EventProblem(None, "event_not_json")) from None
    return _normalise(event, id_key)


def _normalise(event: EventIn, id_key: str | None) -> ParsedEvent:
    eid = event.id
    kind: Literal["upsert", "progress"] = "upsert" if event.type == "dossier.upsert" else "progress"
    if event.status is not None and event.status_code is not None:
        raise EventRefused(EventProblem(eid, "event_status_twice", "status_code"))
    fields = None
    if event.dossier is not None:
        d = event.dossier
        a = d.applicant
        id_hash = last4 = None
        if a is not None and a.citizen_id is not None:
            id_hash, last4 = hash_citizen_id(a.citizen_id, id_key)
        fields = DossierFields(
            procedure_code=d.procedure_code,
            procedure_name=d.procedure_name,
            field_code=d.field_code,
            applicant_name=a.name if a else None,
            applicant_kind=a.kind if a else None,
            applicant_id_hash=id_hash,
            applicant_id_last4=last4,
            applicant_phone=a.phone if a else None,
            applicant_email=a.email if a else None,
            summary=d.summary,
            received_at=_time(d.received_at, "dossier.received_at", eid),
            due_at=_time(d.due_at, "dossier.due_at", eid),
            returned_at=_time(d.returned_at, "dossier.returned_at", eid),
            online=d.online,
            handling_unit_name=d.handling_unit,
            fees=None
            if d.fees is None
            else [{"name": f.name, "amount": f.amount, "paid": f.paid} for f in d.fees],
            results=None
            if d.results is None
            else [{"name": r.name, "number": r.number} for r in d.results],
            result_pickup=d.result_pickup,
        )
    elif kind == "upsert":
        raise EventRefused(EventProblem(eid, "event_field_missing", "dossier"))
    supplements = []
    if event.supplement is not None:
        s = event.supplement
        supplements.append(
            SupplementFields(
                source_id=s.id,
                needed=s.needed,
                supply_by=_time(s.supply_by, "supplement.supply_by", eid),
                old_due_at=_time(s.old_due_at, "supplement.old_due_at", eid),
                new_due_at=_time(s.new_due_at, "supplement.new_due_at", eid),
            )
        )
    return ParsedEvent(
        id=eid,
        kind=kind,
        dossier_code=event.dossier_code,
        at=parse_time(event.at, "at", eid),
        seq=event.seq,
        status=event.status,
        status_code=event.status_code,
        dossier=fields,
        handler=event.handler,
        content=event.content,
        supplements=supplements,
        refused_reason=event.refused_reason,
    )


class _Batch(msgspec.Struct):
    events: list[msgspec.Raw]


_batch_decoder = msgspec.json.Decoder(_Batch)


def split_batch(body: bytes) -> list[msgspec.Raw]:
    """The events of a native batch, each still raw so that one bad event is refused
    alone; raises ``ValueError`` when the body is not ``{"events": [...]}``."""
    try:
        return _batch_decoder.decode(body).events
    except (msgspec.DecodeError, UnicodeDecodeError) as exc:
        raise ValueError(str(exc).split(" - at ")[0][:120]) from None


def parse_native_batch(
    raws: list[msgspec.Raw], *, id_key: str | None = None
) -> list[ParsedEvent | EventProblem]:
    out: list[ParsedEvent | EventProblem] = []
    for raw in raws:
        try:
            out.append(parse_native(raw, id_key=id_key))
        except EventRefused as refused:
            out.append(refused.problem)
    return out


# ---------------------------------------------------------------- the portal's shape

PORTAL_SERVICES = ("DongBoHoSoMC", "CapNhatTienDoHoSoMC")

NumberOrText = int | str
Money = int | float | str


class PortalFeeIn(msgspec.Struct, rename="pascal"):
    ten_phi_le_phi: Annotated[str, Meta(max_length=300)] | None = None
    ten_le_phi: Annotated[str, Meta(max_length=300)] | None = None
    gia: Money | None = None
    so_tien: Money | None = None
    da_thanh_toan: bool | NumberOrText | None = None


class PortalResultIn(msgspec.Struct, rename="pascal"):
    ten_giay_to: Annotated[str, Meta(max_length=300)] | None = None
    so_ky_hieu: Annotated[str, Meta(max_length=300)] | None = None
    ma_giay_to: Annotated[str, Meta(max_length=300)] | None = None


class PortalSupplementIn(msgspec.Struct, rename="pascal"):
    ho_so_bo_sung_id: NumberOrText | None = msgspec.field(default=None, name="HoSoBoSungID")
    noi_dung_bo_sung: Annotated[str, Meta(max_length=4000)] | None = None
    ngay_bo_sung: NumberOrText | None = None  # when it was asked for
    han_bo_sung: NumberOrText | None = None  # supply by
    ngay_hen_tra_truoc: NumberOrText | None = None  # the due date before
    ngay_hen_tra_moi: NumberOrText | None = None  # the new due date


class PortalDossierIn(msgspec.Struct, rename="pascal"):
    """An item of ``DongBoHoSoMC`` (the fields we use; others are ignored)."""

    ma_ho_so: Annotated[str, Meta(max_length=64)]
    id: NumberOrText | None = msgspec.field(default=None, name="id")
    ma_tthc: Annotated[str, Meta(max_length=64)] | None = msgspec.field(default=None, name="MaTTHC")
    ten_tthc: Annotated[str, Meta(max_length=1000)] | None = msgspec.field(
        default=None, name="TenTTHC"
    )
    ma_linh_vuc: Annotated[str, Meta(max_length=64)] | None = None
    chu_ho_so: Annotated[str, Meta(max_length=300)] | None = None
    loai_doi_tuong: NumberOrText | None = None
    so_dinh_danh: Annotated[str, Meta(max_length=40)] | None = None
    ma_doi_tuong: Annotated[str, Meta(max_length=40)] | None = None
    so_dien_thoai: Annotated[str, Meta(max_length=40)] | None = None
    email: Annotated[str, Meta(max_length=254)] | None = None
    trich_yeu_ho_so: Annotated[str, Meta(max_length=4000)] | None = None
    ngay_tiep_nhan: NumberOrText | None = None
    ngay_hen_tra: NumberOrText | None = None
    ngay_tra: NumberOrText | None = None
    ngay_cap_nhat: NumberOrText | None = None
    trang_thai_ho_so: NumberOrText | None = None
    hinh_thuc: NumberOrText | bool | None = None
    don_vi_xu_ly: Annotated[str, Meta(max_length=300)] | None = None
    thong_tin_tra: Annotated[str, Meta(max_length=4000)] | None = None
    ly_do_tu_choi: Annotated[str, Meta(max_length=4000)] | None = None
    danh_sach_le_phi: Annotated[list[PortalFeeIn], Meta(max_length=50)] | None = None
    danh_sach_ho_so_bo_sung: Annotated[list[PortalSupplementIn], Meta(max_length=50)] | None = None
    danh_sach_giay_to_ket_qua: Annotated[list[PortalResultIn], Meta(max_length=50)] | None = None


class PortalProgressIn(msgspec.Struct, rename="pascal"):
    """An item of ``CapNhatTienDoHoSoMC``."""

    ma_ho_so: Annotated[str, Meta(max_length=64)]
    thoi_diem_xu_ly: NumberOrText
    id: NumberOrText | None = msgspec.field(default=None, name="id")
    nguoi_xu_ly: Annotated[str, Meta(max_length=300)] | None = None
    noi_dung_xu_ly: Annotated[str, Meta(max_length=4000)] | None = None
    trang_thai: NumberOrText | None = None


class PortalBatchIn(msgspec.Struct):
    """The portal's envelope: ``service`` and up to 500 items in ``data``."""

    service: Literal["DongBoHoSoMC", "CapNhatTienDoHoSoMC"]
    data: Annotated[list[dict[str, Any]], Meta(min_length=1, max_length=MAX_EVENTS)]


class _PortalEnvelope(msgspec.Struct):
    service: str
    data: list[msgspec.Raw]


_portal_decoder = msgspec.json.Decoder(_PortalEnvelope)
_portal_dossier_decoder = msgspec.json.Decoder(PortalDossierIn)
_portal_progress_decoder = msgspec.json.Decoder(PortalProgressIn)
_canonical = msgspec.json.Encoder(order="sorted")


def split_portal(body: bytes) -> tuple[str, list[msgspec.Raw]]:
    """The service name and the raw items of a portal batch; ``ValueError`` if the body
    is not that envelope or names another service."""
    try:
        envelope = _portal_decoder.decode(body)
    except (msgspec.DecodeError, UnicodeDecodeError) as exc:
        raise ValueError(str(exc).split(" - at ")[0][:120]) from None
    if envelope.service not in PORTAL_SERVICES:
        raise ValueError("service")
    return envelope.service, envelope.data


def _text(value: NumberOrText | None) -> str | None:
    if value is None:
        return None
    text = str(value).strip()
    return text or None


def portal_item_id(raw: bytes | msgspec.Raw | dict[str, Any]) -> str:
    """A deterministic id for an item without one: the hash of its canonical JSON."""
    obj = raw if isinstance(raw, dict) else msgspec.json.decode(raw)
    return "sha256:" + hashlib.sha256(_canonical.encode(obj)).hexdigest()[:40]


def _own_id(value: NumberOrText | None, raw: bytes | msgspec.Raw | dict[str, Any]) -> str:
    text = _text(value)
    if text is not None:
        if not re.match(EVENT_ID_PATTERN, text):
            raise EventRefused(EventProblem(None, "event_field_invalid", "id"))
        return text
    return portal_item_id(raw)


def _money(value: Money | None) -> int:
    if value is None or value == "":
        return 0
    try:
        amount = int(float(str(value).replace(",", "")))
    except ValueError:
        raise ValueError("amount") from None
    if amount < 0:
        raise ValueError("amount")
    return amount


def _truthy(value: bool | NumberOrText | None) -> bool:
    return str(value).strip().lower() in ("true", "1", "yes", "da_thanh_toan") if value else False


def _decode_portal(
    raw: bytes | msgspec.Raw | dict[str, Any], kind: type[msgspec.Struct], decoder: Any
) -> Any:
    try:
        return msgspec.convert(raw, kind) if isinstance(raw, dict) else decoder.decode(raw)
    except msgspec.ValidationError as exc:
        code, field = _field_of(str(exc))
        raise EventRefused(EventProblem(_id_of(raw) or portal_item_id(raw), code, field)) from None
    except (msgspec.DecodeError, UnicodeDecodeError):
        raise EventRefused(EventProblem(None, "event_not_json")) from None


def _portal_code(value: str, eid: str) -> str:
    if not re.match(DOSSIER_CODE_PATTERN, value):
        raise EventRefused(EventProblem(eid, "event_field_invalid", "MaHoSo"))
    return value


def _portal_fees(d: PortalDossierIn, eid: str) -> list[dict[str, Any]] | None:
    if d.danh_sach_le_phi is None:
        return None
    fees = []
    for i, f in enumerate(d.danh_sach_le_phi):
        name = f.ten_phi_le_phi or f.ten_le_phi
        if not name:
            raise EventRefused(
                EventProblem(eid, "event_field_missing", f"DanhSachLePhi.{i}.TenPhiLePhi")
            )
        try:
            amount = _money(f.gia if f.gia is not None else f.so_tien)
        except ValueError:
            raise EventRefused(
                EventProblem(eid, "event_field_invalid", f"DanhSachLePhi.{i}.Gia")
            ) from None
        fees.append({"name": name, "amount": amount, "paid": _truthy(f.da_thanh_toan)})
    return fees


def _portal_supplements(d: PortalDossierIn, code: str, eid: str) -> list[SupplementFields]:
    supplements = []
    for i, s in enumerate(d.danh_sach_ho_so_bo_sung or ()):
        where = f"DanhSachHoSoBoSung.{i}"
        if not s.noi_dung_bo_sung:
            raise EventRefused(EventProblem(eid, "event_field_missing", f"{where}.NoiDungBoSung"))
        supplements.append(
            SupplementFields(
                # without the agency's id: the dossier and the day it was asked for
                source_id=_text(s.ho_so_bo_sung_id) or f"{code}:{_text(s.ngay_bo_sung) or i}",
                needed=s.noi_dung_bo_sung,
                supply_by=_time(s.han_bo_sung, f"{where}.HanBoSung", eid),
                old_due_at=_time(s.ngay_hen_tra_truoc, f"{where}.NgayHenTraTruoc", eid),
                new_due_at=_time(s.ngay_hen_tra_moi, f"{where}.NgayHenTraMoi", eid),
            )
        )
    return supplements


def parse_portal(
    service: str, raw: bytes | msgspec.Raw | dict[str, Any], *, id_key: str | None = None
) -> ParsedEvent:
    """One item of a portal batch (``DongBoHoSoMC`` or ``CapNhatTienDoHoSoMC``) →
    ``ParsedEvent``; raises ``EventRefused`` naming the portal's field at fault."""
    if service == "CapNhatTienDoHoSoMC":
        p = _decode_portal(raw, PortalProgressIn, _portal_progress_decoder)
        eid = _own_id(p.id, raw)
        return ParsedEvent(
            id=eid,
            kind="progress",
            dossier_code=_portal_code(p.ma_ho_so, eid),
            at=parse_time(p.thoi_diem_xu_ly, "ThoiDiemXuLy", eid),
            status_code=_text(p.trang_thai),
            handler=p.nguoi_xu_ly,
            content=p.noi_dung_xu_ly,
        )
    if service != "DongBoHoSoMC":
        raise EventRefused(EventProblem(None, "event_field_invalid", "service"))
    d = _decode_portal(raw, PortalDossierIn, _portal_dossier_decoder)
    eid = _own_id(d.id, raw)
    code = _portal_code(d.ma_ho_so, eid)
    kind_code = _text(d.loai_doi_tuong)
    if kind_code not in (None, "1", "2"):
        raise EventRefused(EventProblem(eid, "event_field_invalid", "LoaiDoiTuong"))
    applicant_kind = None if kind_code is None else ("person" if kind_code == "1" else "business")
    citizen_id, id_field = d.so_dinh_danh, "SoDinhDanh"
    if citizen_id is None and applicant_kind != "business":
        citizen_id, id_field = d.ma_doi_tuong, "MaDoiTuong"
    id_hash = last4 = None
    if citizen_id:
        if not re.fullmatch(r"\d{12}", citizen_id):
            raise EventRefused(EventProblem(eid, "event_field_invalid", id_field))
        id_hash, last4 = hash_citizen_id(citizen_id, id_key)
    received = _time(d.ngay_tiep_nhan, "NgayTiepNhan", eid)
    due = _time(d.ngay_hen_tra, "NgayHenTra", eid)
    returned = _time(d.ngay_tra, "NgayTra", eid)
    updated = _time(d.ngay_cap_nhat, "NgayCapNhat", eid)
    known = [t for t in (updated, returned, received) if t is not None]
    if not known:
        raise EventRefused(EventProblem(eid, "event_field_missing", "NgayTiepNhan"))
    at = updated or max(known)
    fees = _portal_fees(d, eid)
    results = None
    if d.danh_sach_giay_to_ket_qua is not None:
        results = [
            {"name": r.ten_giay_to, "number": r.so_ky_hieu or r.ma_giay_to}
            for r in d.danh_sach_giay_to_ket_qua
            if r.ten_giay_to
        ]
    supplements = _portal_supplements(d, code, eid)
    online = None
    if d.hinh_thuc is not None:
        online = d.hinh_thuc is True or str(d.hinh_thuc).strip() == "1"
    return ParsedEvent(
        id=eid,
        kind="upsert",
        dossier_code=code,
        at=at,
        status_code=_text(d.trang_thai_ho_so),
        dossier=DossierFields(
            procedure_code=d.ma_tthc,
            procedure_name=d.ten_tthc,
            field_code=d.ma_linh_vuc,
            applicant_name=d.chu_ho_so,
            applicant_kind=applicant_kind,
            applicant_id_hash=id_hash,
            applicant_id_last4=last4,
            applicant_phone=d.so_dien_thoai,
            applicant_email=d.email,
            summary=d.trich_yeu_ho_so,
            received_at=received,
            due_at=due,
            returned_at=returned,
            online=online,
            handling_unit_name=d.don_vi_xu_ly,
            fees=fees,
            results=results,
            result_pickup=d.thong_tin_tra,
        ),
        supplements=supplements,
        refused_reason=d.ly_do_tu_choi,
    )


def parse_portal_batch(
    service: str, raws: list[msgspec.Raw], *, id_key: str | None = None
) -> list[ParsedEvent | EventProblem]:
    out: list[ParsedEvent | EventProblem] = []
    for raw in raws:
        try:
            out.append(parse_portal(service, raw, id_key=id_key))
        except EventRefused as refused:
            out.append(refused.problem)
    return out
