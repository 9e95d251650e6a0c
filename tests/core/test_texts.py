"""Issue 18 item 5: one catalogue of texts (app/locale/{vi,en}/LC_MESSAGES/messages.po).

Every key the code uses is in it in vi and en, none is defined twice, vi and en take the
same parameters, dates and numbers are formatted per locale by Babel, and a problem, a
page and a notification still read as before in both languages."""

from __future__ import annotations

import ast
import re
import shutil
import typing
import uuid
from datetime import UTC, date, datetime
from pathlib import Path

import pytest

import app.main  # noqa: F401 (imports every context, as the app does)
from app.complaints import schemas as complaint_schemas
from app.core import errors, i18n
from app.notifications import preferences
from app.notifications.service import Notice
from app.web import texts
from app.web.session import LANG_COOKIE

ROOT = Path(__file__).resolve().parents[2]
APP = ROOT / "app"
PO = {loc: APP / "locale" / loc / "LC_MESSAGES" / "messages.po" for loc in i18n.LOCALES}


def _error_classes() -> dict[str, type[errors.AppError]]:
    found: dict[str, type[errors.AppError]] = {}
    pending = [errors.AppError]
    while pending:
        cls = pending.pop()
        found[cls.__name__] = cls
        pending.extend(cls.__subclasses__())
    return found


def _keys_used_in_python() -> dict[str, set[str]]:  # noqa: C901 (one branch per way a key is used)
    """key → files: a domain error's code (first argument or ``code=``), a class's
    ``code = "..."``, ``i18n.text/translate("...")``, ``build_problem(..., "code")``."""
    classes = _error_classes()
    used: dict[str, set[str]] = {}

    def add(key: str, path: Path) -> None:
        used.setdefault(key, set()).add(str(path.relative_to(ROOT)))

    for path in APP.rglob("*.py"):
        tree = ast.parse(path.read_text(encoding="utf-8"))
        for node in ast.walk(tree):
            if isinstance(node, ast.ClassDef) and node.name in classes:
                for item in node.body:
                    if (
                        isinstance(item, ast.Assign)
                        and [getattr(t, "id", None) for t in item.targets] == ["code"]
                        and isinstance(item.value, ast.Constant)
                    ):
                        add(item.value.value, path)
            if not isinstance(node, ast.Call):
                continue
            func = node.func
            name = func.attr if isinstance(func, ast.Attribute) else getattr(func, "id", "")
            candidates: list[ast.expr] = []
            owner = getattr(getattr(func, "value", None), "id", None)
            if owner == "texts" and name == "text":  # the console's words
                for arg in node.args[:1]:
                    if isinstance(arg, ast.Constant) and isinstance(arg.value, str):
                        add(texts.PREFIX + arg.value, path)
            elif name in classes or (owner == "i18n" and name in ("text", "translate")):
                candidates += node.args[:1]
                candidates += [k.value for k in node.keywords if k.arg == "code"]
            elif name == "build_problem":
                candidates += node.args[2:3]
            for arg in candidates:
                # a code chosen by a condition: both of its texts
                branches = [arg.body, arg.orelse] if isinstance(arg, ast.IfExp) else [arg]
                for branch in branches:
                    if isinstance(branch, ast.Constant) and isinstance(branch.value, str):
                        add(branch.value, path)
    for code in errors._HTTP_CODES.values():
        add(code, APP / "core" / "errors.py")
    return used


def _keys_used_in_templates() -> dict[str, set[str]]:
    """``t('key')`` in the console's templates (the catalogue's ``console.key``), and the
    literal lists a ``{% for x in [...] %}`` feeds to ``t(x)``."""
    used: dict[str, set[str]] = {}
    for path in (APP / "web" / "templates").glob("*.html"):
        source = path.read_text(encoding="utf-8")
        keys = set(re.findall(r"\bt\(\s*'([^']+)'", source))
        keys |= set(re.findall(r'\bt\(\s*"([^"]+)"', source))
        for var, items in re.findall(r"{%\s*for\s+(\w+)\s+in\s+\[([^\]]*)\]", source):
            if re.search(rf"\bt\(\s*{var}\s*\)", source):
                keys |= {a or b for a, b in re.findall(r"'([^']+)'|\"([^\"]+)\"", items)}
        for key in keys:
            used.setdefault(texts.PREFIX + key, set()).add(str(path.relative_to(ROOT)))
    return used


def _names_needed() -> set[str]:
    """Every status, kind and rating a report can have and every notification kind."""
    status = typing.get_args(complaint_schemas.Status)
    kinds = typing.get_args(complaint_schemas.Kind)
    ratings = {"satisfied", "accept", "not_satisfied"}
    needed = {f"status.{s}" for s in status} | {f"kind.{k}" for k in kinds}
    needed |= {f"rating.{r}" for r in ratings}
    for kind in preferences.KINDS:
        if kind.startswith("announcement"):
            continue  # an admin writes each announcement's title and body in vi and en
        needed |= {f"notification.{kind}.title", f"notification.{kind}.body"}
    return needed


def test_every_key_the_code_uses_is_in_the_catalogue_in_vi_and_en() -> None:
    used = _keys_used_in_python() | _keys_used_in_templates()
    # the scan finds the texts it must (so a broken scan cannot pass by finding nothing)
    for key in ("report_not_found", "bbox_invalid", "rate_limited", "otp_spent", "console.queue"):
        assert key in used, key
    assert len(used) > 150
    catalogue = i18n.load()
    missing = {key: sorted(files) for key, files in used.items() if key not in catalogue}
    assert not missing, missing
    names = _names_needed() - set(catalogue)
    assert not names, names
    for key, by_locale in catalogue.items():
        assert set(by_locale) == set(i18n.LOCALES), key
        assert all(text.strip() for text in by_locale.values()), key


def test_no_module_registers_texts_of_its_own() -> None:
    """The one catalogue: no ``i18n.register(...)`` and no table of texts elsewhere."""
    offenders = [
        str(path.relative_to(ROOT))
        for path in APP.rglob("*.py")
        if "i18n.register(" in path.read_text(encoding="utf-8")
    ]
    assert not offenders
    with pytest.raises(RuntimeError, match="messages.po"):
        i18n.register({"x": {"vi": "x", "en": "x"}})


def _msgids(path: Path) -> list[str]:
    return re.findall(r'^msgid "(.+)"$', path.read_text(encoding="utf-8"), re.M)


def test_no_key_is_defined_twice() -> None:
    for path in PO.values():
        ids = _msgids(path)
        assert len(ids) == len(set(ids)), [k for k in set(ids) if ids.count(k) > 1]
    assert set(_msgids(PO["vi"])) == set(_msgids(PO["en"]))
    # the duplicate issue 18 found, resolved deliberately: the home ward's text
    assert i18n.text("area_unknown", "en") == "No ward or commune has this code."
    assert i18n.text("area_unknown", "vi") == "Không có phường/xã với mã này."


def test_vi_and_en_take_the_same_parameters() -> None:
    catalogue = i18n.load()
    messages: dict[str, dict[str, set[str]]] = {}
    for key, by_locale in catalogue.items():
        # a notification's title and body together are one message
        message = re.sub(r"^(notification\.\w+)\.(title|body)$", r"\1", key)
        for locale, text in by_locale.items():
            messages.setdefault(message, {}).setdefault(locale, set()).update(
                i18n.placeholders(text)
            )
    differ = {m: p for m, p in messages.items() if p["vi"] != p["en"]}
    assert not differ, differ


def _copy_catalogue(tmp_path: Path) -> Path:
    for locale, path in PO.items():
        target = tmp_path / locale / "LC_MESSAGES"
        target.mkdir(parents=True)
        shutil.copy(path, target / "messages.po")
    return tmp_path


def _append(directory: Path, locale: str, entry: str) -> None:
    with (directory / locale / "LC_MESSAGES" / "messages.po").open("a", encoding="utf-8") as f:
        f.write("\n" + entry + "\n")


def test_a_broken_catalogue_refuses_to_load(tmp_path: Path) -> None:
    assert i18n.load(_copy_catalogue(tmp_path / "ok")) == i18n.load()

    twice = _copy_catalogue(tmp_path / "twice")
    _append(twice, "vi", 'msgid "report_not_found"\nmsgstr "Khác."')
    with pytest.raises(i18n.CatalogueError, match="'report_not_found' is defined twice"):
        i18n.load(twice)

    one_locale = _copy_catalogue(tmp_path / "one_locale")
    _append(one_locale, "vi", 'msgid "only_vi"\nmsgstr "Chỉ tiếng Việt."')
    with pytest.raises(i18n.CatalogueError, match=r"'only_vi' lacks \['en'\]"):
        i18n.load(one_locale)

    params = _copy_catalogue(tmp_path / "params")
    _append(params, "vi", 'msgid "due_x"\nmsgstr "Hạn {due}."')
    _append(params, "en", 'msgid "due_x"\nmsgstr "Due {du}."')
    with pytest.raises(i18n.CatalogueError, match="'due_x' has different parameters"):
        i18n.load(params)

    empty = _copy_catalogue(tmp_path / "empty")
    _append(empty, "vi", 'msgid "blank"\nmsgstr ""')
    _append(empty, "en", 'msgid "blank"\nmsgstr "Blank."')
    with pytest.raises(i18n.CatalogueError, match="'blank' has no text"):
        i18n.load(empty)


def test_a_missing_key_never_shows_the_key() -> None:
    for locale in i18n.LOCALES:
        shown = i18n.text("no_such_key_anywhere", locale)
        assert "no_such_key_anywhere" not in shown
        assert shown == i18n.text(i18n.MISSING, locale)
        # a problem falls back to its status's generic text
        detail = i18n.translate("no_such_code", locale, {}, fallback="not_found")
        assert detail == i18n.text("not_found", locale)


def test_dates_and_numbers_per_locale() -> None:
    instant = datetime(2026, 9, 5, 2, 7, tzinfo=UTC)  # 09:07 in Hanoi
    assert i18n.format_datetime(instant, "vi") == "09:07 05/09/2026"
    assert i18n.format_datetime(instant, "en") == "05 Sep 2026 09:07"
    assert i18n.format_datetime(None, "vi") == ""
    assert i18n.format_day(date(2026, 9, 5), "vi") == "05/09/2026"
    assert i18n.format_day(date(2026, 9, 5), "en") == "05 Sep 2026"
    assert i18n.translate("rate_limited", "vi", {"retry_after": 3600}) == (
        "Bạn thao tác quá nhiều lần. Vui lòng thử lại sau 3.600 giây."
    )
    assert i18n.translate("rate_limited", "en", {"retry_after": 3600}) == (
        "Too many requests. Try again in 3,600 seconds."
    )


def test_the_geotag_distance_is_the_setting() -> None:
    assert texts.text("geotag_far", "vi", meters=750) == (
        "Cảnh báo: vị trí chụp ảnh cách nơi phản ánh hơn 750 m"
    )
    assert texts.text("geotag_far", "en", meters=1500) == (
        "Warning: photo taken more than 1,500 m from the reported place"
    )
    template = (APP / "web" / "templates" / "report.html").read_text(encoding="utf-8")
    assert "t('geotag_far', meters=photo_geotag_far_meters)" in template
    for locale in i18n.LOCALES:
        assert "500" not in i18n.text("console.geotag_far", locale)


def test_a_notification_reads_as_before_in_vi_and_en() -> None:
    notice = Notice(
        kind="report_routed",
        report_id=uuid.uuid4(),
        report_code="PA-2026-000123",
        audience="followers",
        dedupe_key="k",
        unit_vi="UBND phường Hoàn Kiếm",
        unit_en="Hoan Kiem Ward People's Committee",
        due=datetime(2026, 9, 5, 10, 0, tzinfo=UTC),
    )
    assert notice.render("vi") == (
        "Phản ánh PA-2026-000123 đã được chuyển xử lý",
        "Đơn vị xử lý: UBND phường Hoàn Kiếm. Hạn xử lý: 17:00 05/09/2026.",
    )
    assert notice.render("en") == (
        "Your report PA-2026-000123 was sent to Hoan Kiem Ward People's Committee",
        "Hoan Kiem Ward People's Committee is handling it. Due: 05 Sep 2026 17:00.",
    )


def test_names_of_codes_in_parameters() -> None:
    vi = i18n.translate("invalid_transition", "vi", {"current": "assigned", "target": "reopened"})
    assert vi == "Không thể chuyển phản ánh từ trạng thái 'Đã giao' sang 'Mở lại'."
    en = i18n.translate(
        "invalid_transition", "en", {"current": "in_progress", "target": "extended"}
    )
    assert en == "The report cannot go from 'In progress' to 'Extended'."


async def test_a_problem_and_a_page_read_as_before_in_vi_and_en(client) -> None:
    r = await client.get("/api/v1/public/reports", params={"bbox": "x"})
    assert r.status_code == 400 and r.json()["code"] == "bbox_invalid"
    assert r.json()["detail"] == (
        "Khung bản đồ (bbox) không hợp lệ: cần minLon,minLat,maxLon,maxLat."
    )
    r = await client.get(
        "/api/v1/public/reports", params={"bbox": "x"}, headers={"Accept-Language": "en"}
    )
    assert r.json()["detail"] == "Invalid bbox: expected minLon,minLat,maxLon,maxLat."

    vi = (await client.get("/console/login")).text
    en = (await client.get("/console/login", headers={"Cookie": f"{LANG_COOKIE}=en"})).text
    assert "Bảng điều khiển xử lý phản ánh" in vi and "Mật khẩu" in vi
    assert "Report handling console" in en and "Password" in en


def test_every_audit_action_has_a_name_in_vi_and_en():
    """The console's audit page shows each action by name (issue 17 item 16): every
    action the code records is in the catalogue."""
    root = Path(__file__).resolve().parents[2] / "app"
    actions: set[str] = set()
    for path in root.rglob("*.py"):
        source = path.read_text(encoding="utf-8")
        if "audit" not in source:
            continue
        actions |= set(re.findall(r'action="([a-z_]+\.[a-z_.]+)"', source))
        if 'action=f"report.{action}"' in source:  # complaints' handling: _audit(..., "x")
            named = re.findall(r'_audit\(\s*session, \w+, "(\w+)"', source)
            named += re.findall(r'"\w+": "(\w+ed)"', source)  # {"reply": "replied", ...}
            actions |= {f"report.{a}" for a in named}
    assert len(actions) > 20, actions
    missing = sorted(a for a in actions if not i18n.has(f"audit.{a}"))
    assert not missing, missing
