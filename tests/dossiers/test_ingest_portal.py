"""The national portal's shape on the ingest (issue 19 item 3): ``DongBoHoSoMC`` syncs a
whole dossier (status through the agency's mapping table, timestamps yyyyMMddHHmmss in
Hanoi time, fees, supplements with the old and new due dates, result documents) and
``CapNhatTienDoHoSoMC`` adds progress entries; an item without ``id`` gets a hash of
itself, so the same item sent again is a duplicate."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from sqlalchemy import select

from app.core.calendar import TIMEZONE
from app.core.security import keyed_hash
from app.dossiers.models import Dossier, DossierEvent, DossierSupplement
from tests.dossiers.conftest import new_dossier_code

MAPPING = {"1": "received", "2": "processing", "4": "supplement_requested", "9": "completed"}


def compact(at: datetime) -> str:
    """yyyyMMddHHmmss in Hanoi time, as the portal writes it."""
    return at.astimezone(TIMEZONE).strftime("%Y%m%d%H%M%S")


def sync_item(code: str, received: datetime, status: str, **extra) -> dict:
    item = {
        "MaHoSo": code,
        "MaTTHC": "1.004227",
        "TenTTHC": "Đăng ký khai sinh",
        "MaLinhVuc": "HT",
        "TenLinhVuc": "Hộ tịch",  # a field we do not use: ignored
        "ChuHoSo": "Lê Thị Cúc",
        "LoaiDoiTuong": "1",
        "SoDinhDanh": "001199004567",
        "SoDienThoai": "0987654321",
        "Email": "cuc@example.vn",
        "TrichYeuHoSo": "Đăng ký khai sinh cho con",
        "NgayTiepNhan": compact(received),
        "NgayHenTra": compact(received + timedelta(days=5)),
        "TrangThaiHoSo": status,
        "HinhThuc": 1,
        "DonViXuLy": "UBND phường Hoàn Kiếm",
        "TaiLieuNop": [{"TenTepDinhKem": "to-khai.pdf"}],
        "DanhSachLePhi": [{"TenPhiLePhi": "Lệ phí đăng ký", "Gia": "8000", "DaThanhToan": 1}],
    }
    item.update(extra)
    return item


async def dossier(app, code: str) -> Dossier:
    async with app.state.sessionmaker() as s:
        return await s.scalar(select(Dossier).where(Dossier.code == code))


async def test_a_sync_creates_and_moves_the_dossier_through_the_mapping(app, agency, settings):
    await agency.map_status_codes(MAPPING)
    code = new_dossier_code()
    received = (agency.now() - timedelta(days=3)).replace(second=0)
    r = await agency.post_portal("DongBoHoSoMC", [sync_item(code, received, "1")])
    assert r.status_code == 200, r.text
    [result] = r.json()["results"]
    assert result["result"] == "applied" and result["id"].startswith("sha256:")
    d = await dossier(app, code)
    assert d.status == "received"
    assert (d.procedure_code, d.procedure_name, d.field_code) == (
        "1.004227",
        "Đăng ký khai sinh",
        "HT",
    )
    assert (d.applicant_name, d.applicant_kind, d.online) == ("Lê Thị Cúc", "person", True)
    assert d.applicant_id_hash == keyed_hash(settings.citizen_id_hash_key, "001199004567")
    assert d.applicant_id_last4 == "4567"
    assert d.received_at == received.astimezone(UTC)
    assert d.due_at == (received + timedelta(days=5)).astimezone(UTC)
    assert d.handling_unit_name == "UBND phường Hoàn Kiếm"
    assert d.fees == [{"name": "Lệ phí đăng ký", "amount": 8000, "paid": True}]
    # the same item again (no id: its hash) is a duplicate
    r = await agency.post_portal("DongBoHoSoMC", [sync_item(code, received, "1")])
    assert r.json()["results"][0]["result"] == "duplicate"
    # progress entries, with and without a status code of the agency
    t1 = received + timedelta(hours=2)
    r = await agency.post_portal(
        "CapNhatTienDoHoSoMC",
        [
            {
                "MaHoSo": code,
                "NguoiXuLy": "Phạm Văn Dũng",
                "ChucDanh": "Công chức tư pháp - hộ tịch",
                "ThoiDiemXuLy": compact(t1),
                "NoiDungXuLy": "Thẩm định hồ sơ",
                "TrangThai": "2",
            },
            {
                "id": "td-2",
                "MaHoSo": code,
                "NguoiXuLy": "Phạm Văn Dũng",
                "ThoiDiemXuLy": compact(t1 + timedelta(minutes=30)),
                "NoiDungXuLy": "Trình lãnh đạo ký",
            },
        ],
    )
    assert [x["result"] for x in r.json()["results"]] == ["applied", "applied"]
    assert r.json()["results"][1]["id"] == "td-2"
    d = await dossier(app, code)
    assert d.status == "processing"
    async with app.state.sessionmaker() as s:
        entries = list(
            await s.scalars(
                select(DossierEvent)
                .where(DossierEvent.dossier_id == d.id)
                .order_by(DossierEvent.at, DossierEvent.id)
            )
        )
    assert [(e.kind, e.to_status, e.handler, e.content) for e in entries] == [
        ("upsert", "received", None, None),
        ("progress", "processing", "Phạm Văn Dũng", "Thẩm định hồ sơ"),
        ("progress", None, "Phạm Văn Dũng", "Trình lãnh đạo ký"),
    ]
    # a later sync asks for more documents with the old and new due dates
    asked = t1 + timedelta(hours=3)
    new_due = received + timedelta(days=9)
    r = await agency.post_portal(
        "DongBoHoSoMC",
        [
            sync_item(
                code,
                received,
                "4",
                NgayCapNhat=compact(asked),
                NgayHenTra=compact(new_due),
                DanhSachHoSoBoSung=[
                    {
                        "HoSoBoSungID": "BS-77",
                        "NoiDungBoSung": "Giấy chứng sinh bản chính",
                        "NgayBoSung": compact(asked),
                        "NgayHenTraTruoc": compact(received + timedelta(days=5)),
                        "NgayHenTraMoi": compact(new_due),
                    }
                ],
            )
        ],
    )
    assert r.json()["results"][0]["result"] == "applied", r.text
    d = await dossier(app, code)
    assert (d.status, d.due_at) == ("supplement_requested", new_due.astimezone(UTC))
    async with app.state.sessionmaker() as s:
        [sup] = await s.scalars(
            select(DossierSupplement).where(DossierSupplement.dossier_id == d.id)
        )
    assert (sup.source_id, sup.needed) == ("BS-77", "Giấy chứng sinh bản chính")
    assert sup.old_due_at == (received + timedelta(days=5)).astimezone(UTC)
    # completed, with its result documents; the on-time verdict against the new due date
    done = asked + timedelta(days=1)
    r = await agency.post_portal(
        "DongBoHoSoMC",
        [
            sync_item(
                code,
                received,
                "9",
                NgayCapNhat=compact(done),
                NgayHenTra=compact(new_due),
                ThongTinTra="Nhận tại bộ phận một cửa UBND phường",
                DanhSachGiayToKetQua=[{"TenGiayTo": "Giấy khai sinh", "SoKyHieu": "123/KS"}],
            )
        ],
    )
    # from supplement_requested the table has no edge to completed: refused alone
    assert r.json()["results"][0]["code"] == "event_transition_invalid"
    r = await agency.post_portal(
        "CapNhatTienDoHoSoMC",
        [{"MaHoSo": code, "ThoiDiemXuLy": compact(done - timedelta(hours=1)), "TrangThai": "2"}],
    )
    assert r.json()["results"][0]["result"] == "applied"
    r = await agency.post_portal(
        "DongBoHoSoMC",
        [
            sync_item(
                code,
                received,
                "9",
                NgayCapNhat=compact(done),
                NgayHenTra=compact(new_due),
                ThongTinTra="Nhận tại bộ phận một cửa UBND phường",
                DanhSachGiayToKetQua=[{"TenGiayTo": "Giấy khai sinh", "SoKyHieu": "123/KS"}],
            )
        ],
    )
    assert r.json()["results"][0]["result"] == "applied", r.text
    d = await dossier(app, code)
    assert (d.status, d.finished_on_time) == ("completed", True)
    assert d.results == [{"name": "Giấy khai sinh", "number": "123/KS"}]
    assert d.result_pickup == "Nhận tại bộ phận một cửa UBND phường"
    async with app.state.sessionmaker() as s:
        [sup] = await s.scalars(
            select(DossierSupplement).where(DossierSupplement.dossier_id == d.id)
        )
    assert sup.supplied_at == (done - timedelta(hours=1)).astimezone(UTC)


async def test_portal_items_are_refused_one_by_one_naming_the_portals_field(app, agency):
    await agency.map_status_codes(MAPPING)
    t = agency.now() - timedelta(hours=5)
    good = new_dossier_code()
    items = [
        sync_item(good, t, "1"),
        sync_item(new_dossier_code(), t, "1", NgayHenTra="2026-02-30"),
        sync_item(new_dossier_code(), t, "1", SoDinhDanh="0011"),
        sync_item(new_dossier_code(), t, "ZZ"),
        sync_item(new_dossier_code(), t, "1", LoaiDoiTuong="7"),
        {"MaHoSo": new_dossier_code(), "TrangThaiHoSo": "1"},  # no date at all
        sync_item("bad code!", t, "1"),
        sync_item(new_dossier_code(), t, "1", DanhSachLePhi=[{"TenPhiLePhi": "x", "Gia": "abc"}]),
    ]
    r = await agency.post_portal("DongBoHoSoMC", items)
    got = [(x["result"], x.get("code"), x.get("field")) for x in r.json()["results"]]
    assert got == [
        ("applied", None, None),
        ("refused", "event_date_invalid", "NgayHenTra"),
        ("refused", "event_field_invalid", "SoDinhDanh"),
        ("refused", "event_status_code_unknown", "status_code"),
        ("refused", "event_field_invalid", "LoaiDoiTuong"),
        ("refused", "event_field_missing", "NgayTiepNhan"),
        ("refused", "event_field_invalid", "MaHoSo"),
        ("refused", "event_field_invalid", "DanhSachLePhi.0.Gia"),
    ]
    assert "0011" not in r.text
    async with app.state.sessionmaker() as s:
        codes = list(await s.scalars(select(Dossier.code).where(Dossier.agency_id == agency.id)))
    assert codes == [good]


async def test_a_wrong_service_or_envelope_is_a_400(app, agency):
    r = await agency.post("portal", {"service": "TraCuuHoSo", "data": [{"MaHoSo": "X"}]})
    assert r.status_code == 400 and r.json()["code"] == "ingest_body_invalid"
    r = await agency.post("portal", {"service": "DongBoHoSoMC"})
    assert r.status_code == 400 and r.json()["errors"][0]["field"] == "data"
