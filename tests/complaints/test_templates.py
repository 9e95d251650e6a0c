"""Response templates (issue 22 item 1) through the JSON API: placeholders checked when a
template is saved (400 naming the placeholder or the brace, nothing written), who may
write and see which templates, the ones offered on a report filled in for its reporter,
sending one through the action it names (timeline, notice, audit), and the automatic
ones sent by the worker once per report and status."""

from __future__ import annotations

import uuid

from sqlalchemy import func, select

from app.complaints import lifecycle
from app.complaints.template_models import AUTO_STATUSES, ResponseTemplate, TemplateAutoSend
from app.places.models import Category
from tests.complaints.factories import HOAN_KIEM
from tests.routing.conftest import (  # noqa: F401 (fixtures)
    WEDNESDAY,
    clock,
    events_of,
    hanoi,
    notifications_for,
    reference_rules_only,
    report_row,
    resident_now,
    run_worker,
    staff_now,
    unit_by_code,
)
from tests.routing.test_console_actions import (
    audit_of,
    problem,
    resident_view,
    speaks_english,
    vi_due,
)
from tests.routing.test_deadlines import routed_report
from tests.routing.test_routing import file_petition, me

TEMPLATES = "/api/v1/console/templates"


def template(**overrides) -> dict:
    body = {
        "title": "Đã tiếp nhận",
        "body_vi": "Phản ánh {code} đã được {unit} tiếp nhận; hạn xử lý {deadline} "
        "(còn {working_days} ngày làm việc). Lĩnh vực: {category}.",
        "body_en": "Report {code} was received by {unit}; due {deadline} "
        "({working_days} working days). Category: {category}.",
    }
    body.update(overrides)
    return body


async def template_count(app) -> int:
    async with app.state.sessionmaker() as s:
        return await s.scalar(select(func.count()).select_from(ResponseTemplate))


async def category_name(app, code: str) -> str:
    async with app.state.sessionmaker() as s:
        return await s.scalar(select(Category.name_vi).where(Category.code == code))


async def create(client, who, **overrides):
    return await client.post(TEMPLATES, json=template(**overrides), headers=who["headers"])


async def test_placeholders_are_checked_when_a_template_is_saved(app, client, caplog, clock):
    r = await routed_report(app, client, caplog, clock)
    before = await template_count(app)
    manager = r["manager"]

    bad = await create(client, manager, unit_code=r["ward"], body_en="Dear {name}, done.")
    body = problem(bad, 400, "template_placeholder_unknown")
    assert "{name}" in body["detail"] and "body_en" in body["detail"]
    assert body["errors"] == [{"field": "body_en", "message": "{name}", "source": "body"}]
    # a format spec, an index or a conversion is no placeholder either
    for text, shown in (("{code:>9}", "{code:>9}"), ("{code[0]}", "{code[0]}"), ("{}", "{}")):
        bad = await create(client, manager, unit_code=r["ward"], body_vi=text)
        assert problem(bad, 400, "template_placeholder_unknown")["errors"][0] == {
            "field": "body_vi",
            "message": shown,
            "source": "body",
        }
    for text in ("Hạn {deadline", "Hạn deadline}", "{code}}"):
        bad = await create(client, manager, unit_code=r["ward"], body_vi=text)
        assert problem(bad, 400, "template_braces_malformed")["errors"][0]["field"] == "body_vi"
    # an automatic template is a reply: it cannot move the report
    auto = await create(
        client, manager, unit_code=r["ward"], auto_on_status="assigned", target_status="resolved"
    )
    problem(auto, 400, "template_auto_is_a_reply")
    unknown = await create(client, manager, unit_code=r["ward"], category_code="no-such")
    problem(unknown, 422, "category_unknown")
    target = await create(client, manager, unit_code=r["ward"], target_status="closed")
    assert target.status_code == 400, target.text
    assert await template_count(app) == before  # nothing written by any of them

    # literal braces are written doubled, and are kept as single ones
    ok = await create(client, manager, unit_code=r["ward"], body_vi="Mã {{code}}: {code}")
    assert ok.status_code == 201, ok.text
    assert ok.json()["unit_code"] == r["ward"] and ok.json()["may_edit"] is True
    [created] = await audit_of(app, "response_template.created", ok.json()["id"])
    assert created.actor_id == await me(client, manager["headers"])
    offered = await client.get(f"{TEMPLATES}/for-report/{r['id']}", headers=manager["headers"])
    [filled] = [t for t in offered.json()["items"] if t["id"] == ok.json()["id"]]
    assert filled["body"] == f"Mã {{code}}: {r['code']}"


async def test_who_writes_and_sees_which_templates(app, client, caplog, clock):
    r = await routed_report(app, client, caplog, clock)
    admin = await staff_now(client, app, clock, [("admin", None)])
    stranger = await staff_now(client, app, clock, [("manager", "evn-hanoi")])
    officer, manager = r["officer"], r["manager"]

    problem(await create(client, officer, unit_code=r["ward"]), 403, "templates_not_yours")
    problem(await create(client, manager), 403, "templates_not_yours")  # city-wide: admins
    problem(await create(client, stranger, unit_code=r["ward"]), 403, "templates_not_yours")
    ward_template = (await create(client, manager, unit_code=r["ward"], title="Phường")).json()
    city_template = (await create(client, admin, title="Thành phố")).json()
    assert city_template["unit_code"] is None

    def titles(response):
        assert response.status_code == 200, response.text
        return {t["title"]: t["may_edit"] for t in response.json()["items"]}

    assert titles(await client.get(TEMPLATES, headers=officer["headers"])) == {
        "Phường": False,
        "Thành phố": False,
    }
    assert titles(await client.get(TEMPLATES, headers=stranger["headers"])) == {"Thành phố": False}
    listed = titles(await client.get(TEMPLATES, headers=admin["headers"]))
    assert listed["Phường"] is True and listed["Thành phố"] is True
    resident = await resident_now(client, caplog, clock)
    assert (await client.get(TEMPLATES, headers=resident["headers"])).status_code == 403

    # changing and deleting: another unit's template is not found, an officer's 403
    url = f"{TEMPLATES}/{ward_template['id']}"
    changed = template(title="Phường (sửa)", unit_code=r["ward"])
    nope = await client.put(url, json=changed, headers=stranger["headers"])
    problem(nope, 404, "template_not_found")
    problem(
        await client.put(url, json=changed, headers=officer["headers"]), 403, "templates_not_yours"
    )
    problem(await client.delete(url, headers=officer["headers"]), 403, "templates_not_yours")
    # a manager cannot make their unit's template the city's
    problem(
        await client.put(url, json=template(title="x"), headers=manager["headers"]),
        403,
        "templates_not_yours",
    )
    bad = await client.put(url, json={**changed, "body_vi": "{oops}"}, headers=manager["headers"])
    problem(bad, 400, "template_placeholder_unknown")
    ok = await client.put(url, json=changed, headers=manager["headers"])
    assert ok.status_code == 200 and ok.json()["title"] == "Phường (sửa)", ok.text
    assert (await client.delete(url, headers=manager["headers"])).status_code == 204
    problem(await client.delete(url, headers=manager["headers"]), 404, "template_not_found")
    assert [a.action for a in await audit_of(app, "response_template.updated", ward_template["id"])]
    [deleted] = await audit_of(app, "response_template.deleted", ward_template["id"])
    assert deleted.actor_id == await me(client, manager["headers"])


async def test_a_template_is_filled_in_for_the_reporter_and_sent_through_its_action(
    app, client, caplog, clock
):
    r = await routed_report(app, client, caplog, clock)  # roads: due Wed 2 Dec 17:00
    officer, manager = r["officer"], r["manager"]
    row = await report_row(app, uuid.UUID(r["id"]))
    unit = await unit_by_code(app, r["ward"])
    reply = (await create(client, manager, unit_code=r["ward"], category_code="roads")).json()
    resolve = (
        await create(
            client,
            manager,
            unit_code=r["ward"],
            title="Đã sửa xong",
            target_status="resolved",
            for_status="in_progress",
            body_vi="Đơn vị {unit} đã sửa xong ổ gà của phản ánh {code}.",
        )
    ).json()
    other_category = (
        await create(client, manager, unit_code=r["ward"], title="Rác", category_code="waste")
    ).json()

    offered = await client.get(f"{TEMPLATES}/for-report/{r['id']}", headers=officer["headers"])
    assert offered.status_code == 200, offered.text
    items = {t["id"]: t for t in offered.json()["items"]}
    # the resolution template waits for 'in_progress'; the waste one is another category
    assert set(items) == {reply["id"]}
    assert items[reply["id"]]["locale"] == "vi"
    roads = await category_name(app, "roads")
    assert items[reply["id"]]["body"] == (
        f"Phản ánh {r['code']} đã được {unit.name_vi} tiếp nhận; hạn xử lý {vi_due(row.due_at)} "
        f"(còn 5 ngày làm việc). Lĩnh vực: {roads}."
    )
    stranger = await staff_now(client, app, clock, [("officer", "evn-hanoi")])
    denied = await client.get(f"{TEMPLATES}/for-report/{r['id']}", headers=stranger["headers"])
    problem(denied, 403, "not_your_report")

    # sent as the template fills it in: one reply event, the followers told, one audit row
    reporter_id = await me(client, r["resident"]["headers"])
    sent = await client.post(
        f"{TEMPLATES}/send/{r['id']}",
        json={"template_id": reply["id"]},
        headers=officer["headers"],
    )
    assert sent.status_code == 200 and sent.json()["status"] == "assigned", sent.text
    [event] = await events_of(app, uuid.UUID(r["id"]), "reply")
    assert event.body == items[reply["id"]]["body"] and event.public
    assert len(await notifications_for(app, reporter_id, "report_answered")) == 1
    assert len(await audit_of(app, "report.replied", r["code"])) == 1
    # a template of another category is refused for this report, nothing sent
    refused = await client.post(
        f"{TEMPLATES}/send/{r['id']}",
        json={"template_id": other_category["id"]},
        headers=officer["headers"],
    )
    problem(refused, 409, "template_not_for_report")
    # another unit's officer cannot send on this report
    problem(
        await client.post(
            f"{TEMPLATES}/send/{r['id']}",
            json={"template_id": reply["id"]},
            headers=stranger["headers"],
        ),
        404,
        "template_not_found",  # the template of a unit not theirs is not even seen
    )
    assert len(await events_of(app, uuid.UUID(r["id"]), "reply")) == 1

    # resolving with the text as edited: the resolution's own rules apply (≥ 10 characters)
    accept = await client.post(
        f"/api/v1/console/reports/{r['id']}/accept", headers=officer["headers"]
    )
    assert accept.status_code == 200, accept.text
    short = await client.post(
        f"{TEMPLATES}/send/{r['id']}",
        json={"template_id": resolve["id"], "body": "Xong."},
        headers=officer["headers"],
    )
    assert problem(short, 422, "form_invalid")["errors"][0]["field"] == "body"
    edited = "Đã vá ổ gà và rải lại mặt đường đoạn phố Đinh Tiên Hoàng."
    done = await client.post(
        f"{TEMPLATES}/send/{r['id']}",
        json={"template_id": resolve["id"], "body": edited},
        headers=officer["headers"],
    )
    assert done.status_code == 200 and done.json()["status"] == "resolved", done.text
    [resolution] = [
        e for e in await events_of(app, uuid.UUID(r["id"])) if e.to_status == "resolved"
    ]
    assert resolution.body == edited
    assert len(await notifications_for(app, reporter_id, "report_resolved")) == 1
    assert len(await audit_of(app, "report.resolved", r["code"])) == 1
    seen = await resident_view(client, r["resident"], r["id"])
    assert seen["status"] == "resolved"


async def test_an_english_reporter_gets_the_english_text(app, client, caplog, clock):
    r = await routed_report(app, client, caplog, clock)
    await speaks_english(client, r["resident"])
    unit = await unit_by_code(app, r["ward"])
    made = (await create(client, r["manager"], unit_code=r["ward"])).json()
    offered = await client.get(f"{TEMPLATES}/for-report/{r['id']}", headers=r["officer"]["headers"])
    [filled] = [t for t in offered.json()["items"] if t["id"] == made["id"]]
    assert filled["locale"] == "en"
    assert filled["body"].startswith(f"Report {r['code']} was received by {unit.name_en}; due ")
    assert "(5 working days). Category: " in filled["body"]


async def auto_sends(app, report_id) -> list[TemplateAutoSend]:
    async with app.state.sessionmaker() as s:
        return list(
            await s.scalars(select(TemplateAutoSend).where(TemplateAutoSend.report_id == report_id))
        )


async def test_an_automatic_template_is_sent_once_when_a_report_enters_its_status(
    app, client, caplog, clock
):
    area = (
        await client.get("/api/v1/areas/lookup", params={"lat": 21.0288, "lon": 105.8525})
    ).json()
    ward = f"ubnd-{area['code']}"
    admin = await staff_now(client, app, clock, [("admin", None)])
    manager = await staff_now(client, app, clock, [("manager", ward)])
    officer = await staff_now(client, app, clock, [("officer", ward)])
    resident = await resident_now(client, caplog, clock)
    # the city's template on routing; the ward's own, more specific, wins for its reports
    city = await create(
        client, admin, title="Thành phố", auto_on_status="assigned", body_vi="Chung {code}."
    )
    assert city.status_code == 201, city.text
    ward_auto = await create(
        client,
        manager,
        unit_code=ward,
        title="Phường tiếp nhận",
        auto_on_status="assigned",
        body_vi="Phản ánh {code}: tổ công tác sẽ đến trong {working_days} ngày làm việc, "
        "trước {deadline}.",
    )
    assert ward_auto.status_code == 201, ward_auto.text
    clock.set(hanoi(WEDNESDAY))
    filed = await file_petition(client, resident["headers"])
    report_id = uuid.UUID(filed["id"])
    await run_worker(clock)  # routes it (the trigger queues the automatic answer)
    await run_worker(clock)  # the cron answers (it runs at start)
    row = await report_row(app, report_id)
    assert row.status == "assigned"
    [event] = await events_of(app, report_id, "reply")
    assert event.actor_kind == "system" and event.public and event.actor_id is None
    assert event.body == (
        f"Phản ánh {filed['code']}: tổ công tác sẽ đến trong 5 ngày làm việc, "
        f"trước {vi_due(row.due_at)}."
    )
    reporter_id = await me(client, resident["headers"])
    assert len(await notifications_for(app, reporter_id, "report_answered")) == 1
    [audited] = await audit_of(app, "report.replied", filed["code"])
    assert audited.actor_kind == "system" and audited.details["automatic"] is True
    [queued] = await auto_sends(app, report_id)
    assert (queued.status, queued.outcome) == ("assigned", "sent")
    assert str(queued.template_id) == ward_auto.json()["id"]

    # once per report and status: more runs, a transfer back into 'assigned' send nothing
    await run_worker(clock)
    moved = await client.post(
        f"/api/v1/console/reports/{report_id}/transfer",
        json={"unit_code": "evn-hanoi", "reason": "Cột điện, chuyển điện lực."},
        headers=officer["headers"],
    )
    assert moved.status_code == 200, moved.text
    await run_worker(clock)
    assert len(await events_of(app, report_id, "reply")) == 1
    assert len(await auto_sends(app, report_id)) == 1


async def test_an_automatic_answer_is_skipped_when_the_report_already_moved_on(
    app, client, caplog, clock
):
    r = await routed_report(app, client, caplog, clock)  # routed before any template
    made = await create(
        client, r["manager"], unit_code=r["ward"], auto_on_status="in_progress", title="Đang xử lý"
    )
    assert made.status_code == 201, made.text
    report_id = uuid.UUID(r["id"])
    accept = await client.post(
        f"/api/v1/console/reports/{r['id']}/accept", headers=r["officer"]["headers"]
    )
    assert accept.status_code == 200, accept.text
    reject = await client.post(
        f"/api/v1/console/reports/{r['id']}/reject",
        json={"reason": "Không thuộc thẩm quyền của phường."},
        headers=r["officer"]["headers"],
    )
    assert reject.status_code == 200, reject.text
    await run_worker(clock)
    assert await events_of(app, report_id, "reply") == []
    [queued] = await auto_sends(app, report_id)
    assert (queued.status, queued.outcome) == ("in_progress", "skipped")


def test_automatic_templates_are_for_the_statuses_a_reply_can_follow():
    assert set(AUTO_STATUSES) == set(lifecycle.OPEN_STATUSES)
