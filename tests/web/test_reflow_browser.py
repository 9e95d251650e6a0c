"""Reflow and contrast of the console (issue 23 items 1 and 4) in a real browser (Debian's
Chromium through Playwright against the API in a granian process of its own).

Every console page, seeded so its tables, forms and lists have rows, is opened at 320 × 640
CSS px (WCAG 1.4.10: a phone, or 1280 px at 400 % zoom) and at 640 × 400 CSS px (a
1280 × 800 window at 200 % zoom: browser zoom shrinks the CSS viewport, which a
device_scale_factor does not); the page must not scroll sideways
(``documentElement.scrollWidth <= innerWidth``) and a failure names the page and its widest
element. At 320 px axe-core finds no serious or critical violation.

Contrast where axe cannot decide is computed here with WCAG's relative luminance from the
computed colours and the background actually behind them: text over the map (cluster
labels, popups, Leaflet's controls) and the index page's chart, 4.5:1; the map's markers
and the focus ring against their neighbours, 3:1 (the ring is two colours, 9:1 apart,
so one of them stands out on any background: WCAG technique C40)."""

from __future__ import annotations

import json
import os
import re
import time
import uuid
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pyotp

from tests.accounts.factories import STAFF_PASSWORD, create_staff, sign_in_staff
from tests.complaints.factories import file_with_photo
from tests.dossiers.test_imports import make_place, scenario, upload
from tests.dossiers.test_imports import run_worker as run_import_worker
from tests.dossiers.test_index import add_dossier, new_agency, refresh
from tests.routing.conftest import (  # noqa: F401 (fixtures)
    clock,
    reference_rules_only,
    report_row,
    resident_now,
    run_worker,
    staff_now,
    unit_by_code,
)
from tests.routing.test_deadlines import act
from tests.routing.test_routing import file_petition
from tests.web.browser import axe_violations, describe_violations
from tests.web.test_console_browser import overdue_report, sign_in

# (name, CSS width, CSS height)
PHONE = ("320 px", 320, 640)
ZOOMED = ("1280 px at 200 %", 640, 400)
DESK = {"width": 1280, "height": 800}

# a description with a long address and an unbroken link, as residents paste them
LONG_TEXT = (
    "Cột đèn trước số 12 phố Đinh Tiên Hoàng nghiêng sắp đổ, xem ảnh tại "
    "https://example.org/ban-do/phuong-hang-trong/cot-den-so-12-dinh-tien-hoang-nghieng-sap-do"
    " hoặc gửi thư cho nguoi.dan.phan.anh.so.12.dinh.tien.hoang@example.org"
)

_MEASURE = """() => {
  const vw = window.innerWidth;
  const describe = (el) => {
    let s = el.tagName.toLowerCase();
    if (el.id) s += '#' + el.id;
    for (const c of el.classList) s += '.' + c;
    const r = el.getBoundingClientRect();
    const text = (el.innerText || '').trim().replace(/\\s+/g, ' ').slice(0, 40);
    const [w, right] = [Math.round(r.width), Math.round(r.right)];
    return `${s} "${text}" (${w} px wide, right edge at ${right} px)`;
  };
  // whether a scrolling or clipping box holds the element: one on its chain of containing
  // blocks (an absolutely positioned element escapes a static scroller around it)
  const clipped = (el) => {
    let position = getComputedStyle(el).position;
    if (position === 'fixed') return true;  // never widens the page
    for (let p = el.parentElement; p && p !== document.documentElement; p = p.parentElement) {
      const s = getComputedStyle(p);
      if (position === 'absolute' && s.position === 'static' && s.transform === 'none') continue;
      if (s.overflowX !== 'visible' || s.position === 'fixed') return true;
      position = s.position;
    }
    return false;
  };
  const over = [];
  for (const el of document.body.querySelectorAll('*')) {
    const r = el.getBoundingClientRect();
    if (r.width === 0 || r.height === 0) continue;
    if (r.right > vw + 0.5 && !clipped(el)) over.push(el);
  }
  let widest = null, right = -1;
  for (const el of over) {
    const r = el.getBoundingClientRect().right;
    if (r > right + 0.5) { widest = el; right = r; }
  }
  const outermost = over.filter((el) => !over.includes(el.parentElement));
  return {
    scrollWidth: document.documentElement.scrollWidth,
    innerWidth: vw,
    widest: widest ? describe(widest) : null,
    outermost: outermost.slice(0, 4).map(describe),
  };
}"""

# WCAG 2.x relative luminance and contrast ratio, and the colour actually behind an element
# (its ancestors' background colours composited, alpha included), in the page
_COLOUR_JS = """
const parse = (c) => {
  const m = c.match(/rgba?\\(([^)]+)\\)/);
  if (!m) return null;
  const p = m[1].split(/[ ,\\/]+/).filter(Boolean).map(Number);
  return [p[0], p[1], p[2], p.length > 3 ? p[3] : 1];
};
const over = (top, below) => {
  const a = top[3];
  return [0, 1, 2].map((i) => top[i] * a + below[i] * (1 - a)).concat([1]);
};
const luminance = (c) => {
  const [r, g, b] = c.slice(0, 3).map((v) => {
    v /= 255;
    return v <= 0.04045 ? v / 12.92 : Math.pow((v + 0.055) / 1.055, 2.4);
  });
  return 0.2126 * r + 0.7152 * g + 0.0722 * b;
};
const ratio = (a, b) => {
  const [x, y] = [luminance(a), luminance(b)].sort((p, q) => q - p);
  return (x + 0.05) / (y + 0.05);
};
// what is painted under a point of the page, from the top down, skipping `skip` and what
// is inside it; composited until an opaque background (an image there: unknown, fail)
const under = (x, y, from, skip) => {
  const stack = document.elementsFromPoint(x, y);
  let start = -1;
  for (let e = from; e && start < 0; e = e.parentElement) start = stack.indexOf(e);
  const layers = [];
  for (const e of stack.slice(Math.max(start, 0))) {
    if (skip && skip.contains(e)) continue;
    const s = getComputedStyle(e);
    if (['IMG', 'CANVAS', 'VIDEO'].includes(e.tagName) || s.backgroundImage !== 'none') {
      throw new Error('an image under ' + from.outerHTML.slice(0, 80));
    }
    const c = parse(s.backgroundColor);
    if (c && c[3] > 0) layers.push(c);
    if (c && c[3] === 1) break;
  }
  let colour = [255, 255, 255, 1];  // the canvas
  for (const c of layers.reverse()) colour = over(c, colour);
  return colour;
};
// the element brought into the window (the window scrolls, nothing inside it does)
const shown = (el) => {
  let r = el.getBoundingClientRect();
  window.scrollBy(r.left + r.width / 2 - innerWidth / 2, r.top + r.height / 2 - innerHeight / 2);
  return el.getBoundingClientRect();
};
const centre = (r) => [
  Math.min(Math.max(r.left + r.width / 2, 0), innerWidth - 1),
  Math.min(Math.max(r.top + r.height / 2, 0), innerHeight - 1),
];
// the colour behind the element's middle: its own background, or what shows through
const behind = (el) => { const [x, y] = centre(shown(el)); return under(x, y, el, null); };
// the colour around the element, just past a ring of `reach` px on its right
const around = (el, reach) => {
  const r = shown(el);
  return under(Math.min(r.right + reach, innerWidth - 1), centre(r)[1], el.parentElement, el);
};
const hidden = (el) => {
  for (let e = el; e; e = e.parentElement) {
    const s = getComputedStyle(e);
    if (s.clip !== 'auto' || s.visibility === 'hidden' || s.opacity === '0') return true;
  }
  const r = el.getBoundingClientRect();
  return r.width * r.height <= 1;
};
const hex = (c) =>
  '#' + c.slice(0, 3).map((v) => Math.round(v).toString(16).padStart(2, '0')).join('');
"""

# every element with text of its own inside `root`: its colour, the colour behind it, ratio
_TEXT_CONTRAST = (
    "(selector) => {"
    + _COLOUR_JS
    + """
  const out = [];
  for (const root of document.querySelectorAll(selector)) {
    for (const el of [root, ...root.querySelectorAll('*')]) {
      const own = [...el.childNodes].some((n) => n.nodeType === 3 && n.textContent.trim());
      if (!own || !el.getClientRects().length || hidden(el)) continue;
      const s = getComputedStyle(el);
      const bg = behind(el);
      const svg = el instanceof SVGElement;
      const fg = over(parse(svg ? s.fill : s.color), bg);
      const size = parseFloat(s.fontSize), bold = parseInt(s.fontWeight, 10) >= 700;
      const large = size >= 24 || (bold && size >= 18.66);
      out.push({
        text: el.textContent.trim().slice(0, 40), fg: hex(fg), bg: hex(bg),
        ratio: ratio(fg, bg), needed: large ? 3 : 4.5,
      });
    }
  }
  return out;
}"""
)

# a marker's fill against its border and against the map around it
_MARKER_CONTRAST = (
    "(selector) => {"
    + _COLOUR_JS
    + """
  return [...document.querySelectorAll(selector)].map((el) => {
    const s = getComputedStyle(el);
    const map = around(el, 3);
    const fill = over(parse(s.backgroundColor), map);
    const border = over(parse(s.borderTopColor), map);
    return {
      marker: el.className, fill: hex(fill), border: hex(border), map: hex(map),
      fill_border: ratio(fill, border), fill_map: ratio(fill, map),
    };
  });
}"""
)

# the focused element's two-colour ring (outline over a box-shadow) against the element
# and the background around it
_FOCUS_RING = (
    "() => {"
    + _COLOUR_JS
    + """
  const el = document.activeElement;
  const s = getComputedStyle(el);
  const reach = parseFloat(s.outlineOffset) + parseFloat(s.outlineWidth) + 2;
  const outside = around(el, Math.max(reach, 2));
  const ownBg = behind(el);
  const outline = over(parse(s.outlineColor), outside);
  const shadow = over(parse(s.boxShadow) || [0, 0, 0, 0], outside);
  return {
    element: el.tagName.toLowerCase() + (el.id ? '#' + el.id : '') + ' ' + el.className,
    outline_style: s.outlineStyle, outline_width: parseFloat(s.outlineWidth),
    outline: hex(outline), shadow: hex(shadow), around: hex(outside), own: hex(ownBg),
    rings: ratio(outline, shadow),
    best_around: Math.max(ratio(outline, outside), ratio(shadow, outside)),
    best_own: Math.max(ratio(outline, ownBg), ratio(shadow, ownBg)),
  };
}"""
)


@dataclass
class Widths:
    """What a walk over the pages measured: per page and viewport, the page's width."""

    rows: list[dict[str, Any]] = field(default_factory=list)
    axe: list[str] = field(default_factory=list)
    shots: Path | None = None  # screenshots of each page and viewport go here, if set

    def overflowing(self) -> list[dict[str, Any]]:
        return [r for r in self.rows if r["scrollWidth"] > r["innerWidth"]]

    def table(self) -> str:
        lines = [f"{'page':42} {'viewport':18} {'scrollWidth':>11}"]
        for r in self.rows:
            lines.append(f"{r['page']:42} {r['viewport']:18} {r['scrollWidth']:>11}")
        return "\n".join(lines)


async def settle(page) -> None:
    """Two animation frames: the layout after a resize is done."""
    await page.evaluate(
        "() => new Promise((ok) => requestAnimationFrame(() => requestAnimationFrame(ok)))"
    )


async def measure(page, name: str, widths: Widths, *, axe: bool = True) -> None:
    """The current page at 320 px and at 1280 px / 200 % (axe at 320 px), then back to a
    desktop window for whatever the test does next."""
    for label, width, height in (PHONE, ZOOMED):
        await page.set_viewport_size({"width": width, "height": height})
        await settle(page)
        found = await page.evaluate(_MEASURE)
        widths.rows.append({"page": name, "viewport": label, **found})
        if widths.shots is not None:
            shot = re.sub(r"[^\w]+", "-", f"{name}-{width}").strip("-")
            await page.screenshot(path=widths.shots / f"{shot}.png", full_page=True)
        if axe and width == PHONE[1]:
            violations = await axe_violations(page)
            if violations:
                widths.axe.append(f"{name} at 320 px:\n{describe_violations(violations)}")
    await page.set_viewport_size(DESK)


def report(widths: Widths) -> None:
    """Prints the widths (pytest -s) and keeps them in $REFLOW_WIDTHS_FILE if set."""
    print("\n" + widths.table())
    target = os.environ.get("REFLOW_WIDTHS_FILE")
    if target:
        with open(target, "w", encoding="utf-8") as out:
            json.dump(widths.rows, out, ensure_ascii=False, indent=1)


def failures(widths: Widths) -> str:
    lines = []
    for r in widths.overflowing():
        lines.append(
            f"{r['page']} at {r['viewport']}: {r['scrollWidth']} px wide in a "
            f"{r['innerWidth']} px viewport; widest: {r['widest']}; "
            f"overflowing: {'; '.join(r['outermost'])}"
        )
    return "\n".join(lines + widths.axe)


async def accessibility_roles(page, selector: str) -> list[str]:
    """The roles in Chromium's own accessibility tree (what a screen reader is given, read
    through the DevTools protocol) under the element, in order; generic and text nodes
    left out."""
    cdp = await page.context.new_cdp_session(page)
    try:
        document = await cdp.send("DOM.getDocument", {"depth": 0})
        found = await cdp.send(
            "DOM.querySelector", {"nodeId": document["root"]["nodeId"], "selector": selector}
        )
        described = await cdp.send("DOM.describeNode", {"nodeId": found["nodeId"]})
        tree = (await cdp.send("Accessibility.getFullAXTree"))["nodes"]
    finally:
        await cdp.detach()
    by_id = {n["nodeId"]: n for n in tree}
    [top] = [n for n in tree if n.get("backendDOMNodeId") == described["node"]["backendNodeId"]]
    roles, todo = [], [top]
    while todo:
        node = todo.pop(0)
        role = node.get("role", {}).get("value")
        if not node.get("ignored") and role not in {"generic", "StaticText", "InlineTextBox"}:
            roles.append(role)
        todo[:0] = [by_id[c] for c in node.get("childIds", []) if c in by_id]
    return roles


async def seed_city(app, client, caplog, clock) -> dict[str, Any]:
    """Everything the pages show, with rows: an overdue report and one with a photo (and an
    officer's pending extension request) in the Hoàn Kiếm ward, one waiting at the
    dispatcher, one not routed yet; a template, a suspension, an agency with overdue
    dossiers and its figures, an import with refused lines; and the one who reads them,
    with the longest navigation there is: an admin who also manages the ward (told of the
    extension request in the inbox)."""
    item = await overdue_report(app, client, caplog, clock)
    unit = item["unit"]
    manager_email = await create_staff(app, [("admin", None), ("manager", unit)])
    resident = item["resident"]
    clock.set(datetime.now(UTC))
    photo_report = await file_with_photo(client, resident["headers"], description=LONG_TEXT)
    at_dispatcher = await file_petition(client, resident["headers"], description=LONG_TEXT)
    await run_worker(clock)  # routes both, refreshes the figures
    dispatcher = await staff_now(client, app, clock, [("dispatcher", None)])
    moved = await act(
        client,
        dispatcher["headers"],
        at_dispatcher,
        "transfer",
        unit_code="dispatcher",
        reason="Chưa rõ đơn vị xử lý, chờ điều phối.",
    )
    assert moved.status_code == 200, moved.text

    officer = await staff_now(client, app, clock, [("officer", unit)])
    accepted = await act(client, officer["headers"], photo_report, "accept")
    assert accepted.status_code == 200, accepted.text
    due = (await report_row(app, uuid.UUID(photo_report["id"]))).due_at
    calendar = app.state.deadlines.calendar
    day = calendar.nth_working_day(calendar.local(due).date(), 3)
    asked = await act(
        client,
        officer["headers"],
        photo_report,
        "extension-request",
        due_date=day.isoformat(),
        reason="Chờ vật tư thay thế từ công ty chiếu sáng đô thị.",
    )
    assert asked.status_code == 200, asked.text

    admin = await staff_now(client, app, clock, [("admin", None)])
    template = await client.post(
        "/api/v1/console/templates",
        json={
            "title": "Đã tiếp nhận, tổ công tác đang đến hiện trường",
            "body_vi": "Phản ánh {code} đã được {unit} tiếp nhận, hạn xử lý {deadline}.",
            "body_en": "Report {code} was received by {unit}; due {deadline}.",
            "unit_code": unit,
        },
        headers=admin["headers"],
    )
    assert template.status_code == 201, template.text
    suspended = await resident_now(client, caplog, clock)
    me = await client.get("/api/v1/me", headers=suspended["headers"])
    suspension = await client.post(
        f"/api/v1/admin/residents/{me.json()['id']}/suspensions",
        json={"reason": "Đăng tin quảng cáo nhiều lần " + LONG_TEXT[:200]},
        headers=admin["headers"],
    )
    assert suspension.status_code == 201, suspension.text

    ward = await unit_by_code(app, unit)
    agency_id, agency_code = await new_agency(app, ward.id)
    now = datetime.now(UTC)
    for _ in range(3):
        await add_dossier(
            app,
            agency_id,
            now - timedelta(days=20),
            "processing",
            due=now - timedelta(days=5),
            overdue_at=now - timedelta(days=5),
            procedure="Cấp giấy chứng nhận quyền sử dụng đất lần đầu cho hộ gia đình",
        )
    await refresh(app, now)

    place = await make_place(app, {"1": "received", "2": "processing", "4": "completed"})
    importer = await sign_in_staff(client, app, [("admin", None)])
    uploaded = await upload(client, importer["headers"], place.agency_code, scenario("RF", 30).body)
    assert uploaded.status_code == 201, uploaded.text
    await run_import_worker(clock)
    await file_petition(client, resident["headers"], description=LONG_TEXT)  # not routed
    return {
        "unit": unit,
        "overdue": item,
        "photo_report": photo_report,
        "agency": agency_code,
        "import": uploaded.json()["id"],
        "manager": manager_email,
    }


async def test_every_console_page_reflows_at_320_px_and_at_200_percent_zoom(
    app, client, caplog, clock, browser, live_server, page, screenshot_dir
):
    widths = Widths(shots=screenshot_dir if os.environ.get("WEB_SCREENSHOTS_DIR") else None)
    city = await seed_city(app, client, caplog, clock)
    unit, email = city["unit"], city["manager"]

    await page.set_viewport_size(DESK)
    await page.goto("/console/login")
    await measure(page, "sign-in", widths)
    await sign_in(page, email)

    report_id = city["photo_report"]["id"]
    await page.goto(f"/console/reports/{report_id}")
    photo_link = page.get_by_role("link", name="Che một phần ảnh 1")
    redact_path = await photo_link.get_attribute("href")
    template_id = await page.locator("#template-pick option").first.get_attribute("value")

    pages = [
        ("queue", "/console/queue"),
        ("report detail (every action)", f"/console/reports/{report_id}"),
        (
            "report detail (a template filled)",
            f"/console/reports/{report_id}?template={template_id}",
        ),
        ("report detail (overdue)", f"/console/reports/{city['overdue']['id']}"),
        ("inbox", "/console/inbox"),
        ("map", "/console/map"),
        ("dispatch", "/console/dispatch"),
        ("unit index", f"/console/units/{unit}/index"),
        ("staff", f"/console/units/{unit}/staff"),
        ("audit", f"/console/units/{unit}/audit"),
        ("templates", "/console/templates"),
        ("template edit", f"/console/templates/{template_id}"),
        ("two-factor settings", "/console/two-factor/settings"),
        ("dossier imports", "/console/dossier-imports"),
        ("dossier import detail", f"/console/dossier-imports/{city['import']}"),
        ("dossier supervision ranking", "/console/dossiers/supervision/"),
        ("dossier supervision agency", f"/console/dossiers/supervision/{city['agency']}"),
        ("photo redaction", redact_path),
        ("suspensions", "/console/moderation/suspensions"),
        ("error page (404)", f"/console/reports/{uuid.uuid4()}"),
    ]
    for lang in ("vi", "en"):  # English words are longer, Vietnamese texts too
        await page.goto(f"/console/lang?to={lang}&next=/console/queue")
        for name, path in pages:
            await page.goto(path)
            if name == "map":
                await page.locator("#queue-map .map-cluster").first.wait_for()
            await measure(page, name if lang == "vi" else f"{name} (en)", widths)

    # the queue as cards is still a table to Chromium's accessibility tree (what screen
    # readers get): rows of cells under column headers, none of the cards' shown labels
    await page.goto("/console/queue")
    await page.set_viewport_size({"width": PHONE[1], "height": PHONE[2]})
    assert (
        await page.locator("table.queue td").first.evaluate("(td) => getComputedStyle(td).display")
        == "block"
    )
    roles = await accessibility_roles(page, "table.queue")
    rows = await page.locator("table.queue tbody tr").count()
    assert roles[0] == "table" and roles.count("columnheader") == 9, roles
    assert roles.count("row") == rows + 1 and roles.count("rowheader") == rows, roles
    assert roles.count("cell") == 8 * rows, roles
    await page.set_viewport_size(DESK)

    # pages in a state: the queue with the results of a bulk action, the report page with
    # a refused extension (errors in place: the summary and the message by the field)
    await page.goto("/console/lang?to=vi&next=/console/queue")
    await page.locator("table.queue input[type=checkbox]").first.check()
    await page.get_by_label("Tiếp nhận xử lý", exact=True).check()
    await page.get_by_role("button", name="Áp dụng cho các phản ánh đã chọn").click()
    await page.locator("#h-bulk-results").wait_for()
    await measure(page, "queue (bulk results)", widths)
    await page.goto(f"/console/reports/{report_id}")
    form = page.locator(f"form[action='/console/reports/{report_id}/extension']")
    await form.get_by_label("Hạn mới (ngày làm việc)").fill("2020-01-06")
    await form.get_by_label("Lý do").fill(LONG_TEXT[:200])
    await form.get_by_role("button").click()
    await page.locator("#error-summary").wait_for()
    await measure(page, "report detail (extension refused)", widths)

    # the two-factor pages an officer meets: enrolment, recovery codes, the code page
    officer = await create_staff(app, [("officer", unit)])
    officer_context = await browser.new_context(base_url=live_server, viewport=DESK)
    try:
        other = await officer_context.new_page()
        await sign_in(other, officer)
        await other.goto("/console/two-factor/enrol")
        await measure(other, "two-factor enrolment", widths)
        secret = (await other.locator("#secret").inner_text()).replace(" ", "")
        totp = pyotp.TOTP(secret)
        await other.get_by_label("Mã xác thực").fill(totp.now())
        await other.get_by_role("button", name="Xác nhận và bật").click()
        await other.get_by_role("heading", name="Mã dự phòng").wait_for()
        await measure(other, "two-factor recovery codes", widths)
        await other.get_by_role("button", name="Đăng xuất").click()
        await other.wait_for_url("**/console/login")
        await other.get_by_label("Thư điện tử").fill(officer)
        await other.get_by_label("Mật khẩu").fill(STAFF_PASSWORD)
        await other.get_by_role("button", name="Đăng nhập").click()
        await other.wait_for_url("**/console/two-factor?next=*")
        await measure(other, "two-factor code", widths)
        await other.get_by_label("Mã xác thực").fill(totp.at(time.time() + 30))
        await other.get_by_role("button", name="Xác nhận").click()
        await other.wait_for_url("**/console/queue")
    finally:
        await officer_context.close()

    report(widths)
    assert not widths.overflowing() and not widths.axe, failures(widths)


def below(rows: list[dict[str, Any]], key: str, needed: float | str) -> list[dict[str, Any]]:
    """The rows whose ratio ``key`` is under ``needed`` (a number, or the row's own key)."""
    return [r for r in rows if r[key] < (r[needed] if isinstance(needed, str) else needed)]


async def focus_rings(page, stops: int = 80) -> list[dict[str, Any]]:
    """Tabs through the page (at most ``stops`` times, until focus comes round again) and
    measures the focus ring of each element reached."""
    rings: list[dict[str, Any]] = []
    await page.keyboard.press("Shift")  # a key first: focus from here on is keyboard focus
    await page.locator("a.skip").focus()
    seen: set[str] = set()
    for _ in range(stops):
        key = await page.evaluate(
            "() => { const e = document.activeElement; if (e === document.body) return null;"
            " e.dataset.ringSeen ||= String(Math.random()); return e.dataset.ringSeen; }"
        )
        if key is None or key in seen:  # out of the page, or round again
            break
        seen.add(key)
        rings.append(await page.evaluate(_FOCUS_RING))
        await page.keyboard.press("Tab")
    return rings


def ring_problems(rings: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return [
        r
        for r in rings
        if r["outline_style"] == "none"
        or r["outline_width"] < 2
        or r["rings"] < 9
        or r["best_around"] < 3
        or r["best_own"] < 3
    ]


async def test_text_markers_and_focus_rings_over_the_map_and_the_index_contrast(
    app, client, caplog, clock, page
):
    item = await overdue_report(app, client, caplog, clock)
    unit = item["unit"]
    # city-wide too: the overdue report goes up to the dispatcher on the way (escalated)
    email = await create_staff(app, [("manager", unit), ("dispatcher", None)])
    clock.set(datetime.now(UTC))
    fresh = await file_petition(client, item["resident"]["headers"])
    resolved = await file_petition(client, item["resident"]["headers"])
    await run_worker(clock)
    officer = await staff_now(client, app, clock, [("officer", unit)])
    for action, body in (("accept", {}), ("resolve", {"answer": "Đã sửa xong, đã kiểm tra lại."})):
        done = await act(client, officer["headers"], resolved, action, **body)
        assert done.status_code == 200, done.text
    await run_worker(clock)  # the index's figures, with a month on time

    await page.set_viewport_size(DESK)
    await sign_in(page, email)
    await page.goto("/console/map")
    cluster = page.locator("#queue-map .map-cluster").first
    await cluster.wait_for()
    # both kinds of cluster over the map: the real one (late: the overdue report is in
    # it), and the other kind drawn by the page's own classes at the same place
    await page.evaluate(
        """() => {
          const real = document.querySelector('#queue-map .map-cluster');
          const other = real.cloneNode(true);
          other.classList.toggle('late');
          other.dataset.probe = 'other kind';
          real.parentElement.appendChild(other);
        }"""
    )
    markers = await page.evaluate(_MARKER_CONTRAST, "#queue-map .map-cluster")
    assert {"map-cluster" in m["marker"] and "late" in m["marker"] for m in markers} == {
        True,
        False,
    }, markers
    assert not below(markers, "fill_border", 3) and not below(markers, "fill_map", 3), markers
    texts = await page.evaluate(_TEXT_CONTRAST, "#queue-map")
    assert {t["text"] for t in texts} >= {"1", "2"} or len(texts) >= 3, texts
    assert not below(texts, "ratio", "needed"), texts
    await page.evaluate("() => document.querySelector('[data-probe]').remove()")
    # the legend draws the same markers on the page
    legend = await page.evaluate(
        _MARKER_CONTRAST, ".map-legend .map-cluster, .map-legend .map-point"
    )
    assert len(legend) == 4 and not below(legend, "fill_map", 3), legend
    assert not below(await page.evaluate(_TEXT_CONTRAST, ".map-legend"), "ratio", "needed")

    # up close, one dot per report (the overdue one square and red), and a popup
    rings = await focus_rings(page)
    for _ in range(2):
        await cluster.click()
        await page.wait_for_timeout(400)
        if await page.locator("#queue-map .map-point").count():
            break
    points = page.locator("#queue-map .map-point")
    await points.first.wait_for()
    dots = await page.evaluate(_MARKER_CONTRAST, "#queue-map .map-point")
    assert {"late" in d["marker"] for d in dots} == {True, False}, dots
    assert not below(dots, "fill_border", 3) and not below(dots, "fill_map", 3), dots
    await points.last.focus()
    await page.keyboard.press("Enter")
    popup = page.locator(".leaflet-popup-content a")
    await popup.wait_for()
    # Leaflet fades a popup in (opacity 0 → 1 over 0.2 s): measure it once fully shown,
    # or a loaded machine reads it still transparent (skipped) or half-faded
    await page.wait_for_function(
        "() => { const p = document.querySelector('.leaflet-popup');"
        " return p && getComputedStyle(p).opacity === '1'; }"
    )
    shown = await popup.inner_text()
    assert shown.startswith((item["report"]["code"], fresh["code"]))
    texts = await page.evaluate(_TEXT_CONTRAST, "#queue-map")
    assert any(t["text"] == shown for t in texts), texts
    assert not below(texts, "ratio", "needed"), texts
    rings += await focus_rings(page)
    assert any("map-point" in r["element"] for r in rings), rings
    assert any("leaflet-container" in r["element"] for r in rings), rings
    assert not ring_problems(rings), ring_problems(rings)

    # the unit index: the table, the charts' labels and bars; focus on its scroll regions
    await page.goto(f"/console/units/{unit}/index")
    await page.locator("svg rect").first.wait_for()
    texts = await page.evaluate(_TEXT_CONTRAST, "main")
    assert any(t["text"] == "100" for t in texts), texts  # a bar's label
    assert not below(texts, "ratio", "needed"), texts
    bars = await page.evaluate(
        "() => {"
        + _COLOUR_JS
        + """
      return [...document.querySelectorAll('main svg rect')].map((r) => {
        const fill = parse(getComputedStyle(r).fill), bg = around(r.closest('svg'), -2);
        return {fill: hex(fill), bg: hex(bg), ratio: ratio(fill, bg)};
      });
    }"""
    )
    assert bars and not below(bars, "ratio", 3), bars
    rings = await focus_rings(page)
    assert any("table-scroll" in r["element"] for r in rings), rings
    assert not ring_problems(rings), ring_problems(rings)
