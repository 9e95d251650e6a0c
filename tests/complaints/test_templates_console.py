"""Response templates and bulk work in the console's pages (issue 22 items 1-2): the
templates page writes, changes and deletes them, a refused template is shown again with
its reason in place (nothing written); a template picked on a report page is filled in
and sent; the queue's bulk form answers with a line per report, or the refusal in place."""

from __future__ import annotations

import html
import uuid

from sqlalchemy import func, select

from app.complaints.template_models import ResponseTemplate
from tests.complaints.test_bulk import queue_setup, statuses
from tests.routing.conftest import (  # noqa: F401 (fixtures)
    clock,
    events_of,
    reference_rules_only,
)
from tests.routing.test_console_actions import audit_of
from tests.web.test_pages import browser_for, csrf_of


async def template_rows(app) -> int:
    async with app.state.sessionmaker() as s:
        return await s.scalar(select(func.count()).select_from(ResponseTemplate))


async def test_the_templates_page_writes_changes_and_deletes(app, client, caplog, clock):
    ward, p, ours, _ = await queue_setup(app, client, caplog, clock, n=1)
    manager = await browser_for(app, [("manager", ward)])
    page = await manager.http.get("/console/templates")
    assert page.status_code == 200 and 'action="/console/templates"' in page.text
    assert page.headers["cache-control"] == "no-store"
    before = await template_rows(app)
    form = {
        "csrf": csrf_of(page.text),
        "title": "Đã tiếp nhận",
        "unit_code": ward,
        "category_code": "",
        "for_status": "",
        "target_status": "",
        "auto_on_status": "",
        "body_vi": "Kính gửi {ten}, phản ánh {code} đã được tiếp nhận.",
        "body_en": "Report {code} was received.",
    }
    refused = await manager.http.post("/console/templates", data=form)
    assert refused.status_code == 400
    text = html.unescape(refused.text)
    assert "Ô thay thế {ten} trong body_vi không tồn tại" in text
    # in place (issue 23): the message beside the field, which the summary links to
    assert 'id="tpl-vi-error"' in refused.text and 'href="#tpl-vi"' in refused.text
    assert 'aria-invalid="true"' in refused.text
    assert "Kính gửi {ten}" in text  # what was written is kept in the form
    assert await template_rows(app) == before

    form["body_vi"] = "Phản ánh {code} đã được {unit} tiếp nhận."
    saved = await manager.http.post("/console/templates", data=form)
    assert saved.status_code == 303 and saved.headers["location"] == "/console/templates?done=saved"
    listed = await manager.http.get("/console/templates?done=saved")
    assert "Đã tiếp nhận" in listed.text and await template_rows(app) == before + 1
    async with app.state.sessionmaker() as s:
        made = await s.scalar(
            select(ResponseTemplate).where(ResponseTemplate.title == "Đã tiếp nhận")
        )
    edit = await manager.http.get(f"/console/templates/{made.id}")
    assert edit.status_code == 200 and f'action="/console/templates/{made.id}"' in edit.text
    changed = await manager.http.post(
        f"/console/templates/{made.id}", data={**form, "title": "Đã nhận"}
    )
    assert changed.status_code == 303
    assert len(await audit_of(app, "response_template.updated", str(made.id))) == 1
    # an officer sees the template but no form to change it, and cannot post one
    officer = await browser_for(app, [("officer", ward)])
    seen = await officer.http.get("/console/templates")
    assert "Đã nhận" in seen.text and f"/console/templates/{made.id}/delete" not in seen.text
    denied = await officer.http.post(
        "/console/templates", data={**form, "csrf": csrf_of(seen.text)}
    )
    assert denied.status_code == 403 and await template_rows(app) == before + 1
    gone = await manager.http.post(
        f"/console/templates/{made.id}/delete", data={"csrf": form["csrf"]}
    )
    assert gone.status_code == 303 and await template_rows(app) == before


async def test_a_template_picked_on_the_report_page_is_filled_in_and_sent(
    app, client, caplog, clock
):
    ward, p, ours, _ = await queue_setup(app, client, caplog, clock, n=1)
    made = await client.post(
        "/api/v1/console/templates",
        json={
            "title": "Cử cán bộ",
            "unit_code": ward,
            "body_vi": "Phường đã cử cán bộ kiểm tra phản ánh {code}.",
            "body_en": "We sent someone to check report {code}.",
        },
        headers=p["manager"]["headers"],
    )
    assert made.status_code == 201, made.text
    officer = await browser_for(app, [("officer", ward)])
    report = ours[0]
    page = await officer.http.get(f"/console/reports/{report['id']}")
    assert 'id="template-pick"' in page.text and "Cử cán bộ" in page.text
    picked = await officer.http.get(
        f"/console/reports/{report['id']}", params={"template": made.json()["id"]}
    )
    assert f"Phường đã cử cán bộ kiểm tra phản ánh {report['code']}." in picked.text
    sent = await officer.http.post(
        f"/console/reports/{report['id']}/template",
        data={
            "csrf": csrf_of(picked.text),
            "template_id": made.json()["id"],
            "body": f"Phường đã cử cán bộ kiểm tra phản ánh {report['code']} chiều nay.",
        },
    )
    assert sent.status_code == 303, sent.text
    assert sent.headers["location"].endswith("?done=template_sent")
    [reply] = await events_of(app, uuid.UUID(report["id"]), "reply")
    assert reply.body.endswith("chiều nay.")


async def test_the_queue_bulk_form_lists_each_report_or_refuses_in_place(
    app, client, caplog, clock
):
    ward, p, ours, theirs = await queue_setup(app, client, caplog, clock, n=2)
    officer = await browser_for(app, [("officer", ward)])
    queue = await officer.http.get("/console/queue")
    assert 'id="bulk-form"' in queue.text
    for r in ours:
        assert f'value="{r["code"]}" form="bulk-form"' in queue.text
    csrf = csrf_of(queue.text)

    refused = await officer.http.post(
        "/console/queue/bulk",
        data={"csrf": csrf, "action": "accept", "codes": [ours[0]["code"], theirs["code"]]},
    )
    assert refused.status_code == 403
    assert 'id="bulk-error"' in refused.text and theirs["code"] in refused.text
    assert 'id="bulk-form"' in refused.text  # the queue and its form again
    assert await statuses(app, ours) == ["assigned", "assigned"]

    one = await officer.http.post(
        "/console/queue/bulk", data={"csrf": csrf, "action": "accept", "codes": ours[0]["code"]}
    )
    assert one.status_code == 200 and 'id="h-bulk-results"' in one.text
    both = await officer.http.post(
        "/console/queue/bulk",
        data={"csrf": csrf, "action": "accept", "codes": [r["code"] for r in ours]},
    )
    assert both.status_code == 200
    text = html.unescape(both.text)
    assert "1 đã xong, 1 chưa thực hiện được." in text
    assert await statuses(app, ours) == ["in_progress", "in_progress"]
    none = await officer.http.post("/console/queue/bulk", data={"csrf": csrf, "action": "accept"})
    assert none.status_code == 422 and 'id="bulk-error"' in none.text
