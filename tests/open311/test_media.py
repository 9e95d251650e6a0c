"""A filing's media_url, fetched with strict limits: private, loopback and link-local
addresses refused unless allowed (tests only; production refuses the setting), every
redirect re-checked, at most 3, an image type, the size cap, one time limit; a failure
lands on the report's timeline for staff; the reconciliation re-enqueues a fetch that
was never done, and gives up after the tries allowed."""

from __future__ import annotations

import asyncio
import socket
from datetime import timedelta

import msgspec
import pytest
from arq.constants import job_key_prefix
from sqlalchemy import text

from app.core import db, jobs
from app.core.clock import FixedClock
from app.open311 import filing
from app.open311.media import MAX_REDIRECTS, MediaRefused, check_url, fetch_media
from app.startup import settings_problems
from tests.open311.test_write_support import (
    MEDIA_PORT,
    filing_form,
    issue_key,
    media_server,  # noqa: F401 (a fixture)
    media_worker,
    run_worker,
)
from tests.workers.test_worker import burst_worker

ROOT = "/open311/v2"
CAP = 15_000_000


async def fetch(url: str, allow_private: bool = True, **kw) -> bytes:
    return await fetch_media(
        url, max_bytes=kw.get("max_bytes", CAP), timeout_seconds=kw.get("timeout", 5),
        allow_private=allow_private,
    )  # fmt: skip


async def refused(url: str, allow_private: bool = True, **kw) -> MediaRefused:
    with pytest.raises(MediaRefused) as caught:
        await fetch(url, allow_private, **kw)
    return caught.value


@pytest.mark.parametrize(
    "host",
    ["127.0.0.1", "localhost", "10.1.2.3", "192.168.0.10", "169.254.169.254", "[::1]",
     "[::ffff:127.0.0.1]", "[fe80::1]", "100.64.0.1", "0.0.0.0"],
)  # fmt: skip
async def test_private_loopback_and_link_local_addresses_are_refused(media_server, host):
    before = len(media_server.paths)
    problem = await refused(f"http://{host}:{MEDIA_PORT}/photo.jpg", allow_private=False)
    assert problem.reason == "address_not_public" and not problem.transient
    assert len(media_server.paths) == before  # nothing was sent


async def test_a_loopback_server_serves_when_allowed_and_the_host_is_kept(media_server):
    body = await fetch(media_server.url("/photo.jpg", host="localhost"))
    assert body.startswith(b"\xff\xd8") and len(body) > 1000
    assert media_server.hosts[-1] == f"localhost:{MEDIA_PORT}"


async def test_redirects_are_followed_re_checked_and_bounded(media_server):
    assert (await fetch(media_server.url(f"/loop/{MAX_REDIRECTS - 1}"))).startswith(b"\xff\xd8")
    assert (await refused(media_server.url(f"/loop/{MAX_REDIRECTS}"))).reason == (
        "too_many_redirects"
    )
    # a redirect is checked as the first URL was: another scheme is refused
    assert (await refused(media_server.url("/to-file"))).reason == "url_invalid"


async def test_type_size_status_and_time_limits(media_server):
    assert (await refused(media_server.url("/text"))).reason == "not_an_image"
    assert (await refused(media_server.url("/big"))).reason == "too_large"
    small = await refused(media_server.url("/photo.jpg"), max_bytes=1000)
    assert small.reason == "too_large"
    gone = await refused(media_server.url("/nothing-here"))
    assert (gone.reason, gone.transient) == ("http_404", False)
    down = await refused(media_server.url("/error"))
    assert (down.reason, down.transient) == ("http_500", True)

    # a server that accepts and never answers: the one time limit ends the fetch
    silent = socket.socket()
    silent.bind(("127.0.0.1", MEDIA_PORT + 1))
    silent.listen()
    try:
        started = asyncio.get_running_loop().time()
        slow = await refused(f"http://127.0.0.1:{MEDIA_PORT + 1}/photo.jpg", timeout=0.5)
        assert (slow.reason, slow.transient) == ("timeout", True)
        assert asyncio.get_running_loop().time() - started < 3
    finally:
        silent.close()


def test_urls_the_filing_refuses_at_once():
    assert check_url("https://example.test/a.jpg") is None
    assert check_url("ftp://example.test/a.jpg") == "must be an http or https URL"
    assert check_url("http:///a.jpg") == "has no host"
    assert check_url("http://user:pw@example.test/a.jpg") == (
        "must not carry a user name or password"
    )
    assert check_url("http://example.test:99999/") == "is not a URL"
    assert check_url("http://example.test/" + "a" * 2000) is not None


def test_production_refuses_private_media_fetches(settings):
    allowed = msgspec.structs.replace(settings, open311_media_allow_private=True)
    assert any("OPEN311_MEDIA_ALLOW_PRIVATE" in p for p in settings_problems(allowed))
    assert not any("OPEN311_MEDIA_ALLOW_PRIVATE" in p for p in settings_problems(settings))


async def _filing(session, code: str):
    return (
        await session.execute(
            text(
                "SELECT r.id, f.media_state, f.media_attempts, f.media_error,"
                " (SELECT count(*) FROM report_photos p WHERE p.report_id = r.id) AS photos"
                " FROM reports r JOIN open311_filings f ON f.report_id = r.id WHERE r.code = :c"
            ),
            {"c": code},
        )
    ).one()


async def _events(session, report_id) -> list[tuple[str, bool, str | None]]:
    rows = await session.execute(
        text(
            "SELECT kind, public, body FROM report_events WHERE report_id = :id"
            " AND kind IN ('media_failed', 'photos_added') ORDER BY id"
        ),
        {"id": report_id},
    )
    return [tuple(r) for r in rows]


async def test_the_default_worker_refuses_a_loopback_media_url_and_staff_see_why(
    app, client, session, media_server
):
    issued = await issue_key(app)
    r = await client.post(
        f"{ROOT}/requests.json",
        data=filing_form(issued.key, media_url=media_server.url("/photo.jpg")),
    )
    code = r.json()[0]["service_request_id"]
    before = len(media_server.paths)
    await run_worker(burst_worker())  # the project's worker, private addresses refused
    row = await _filing(session, code)
    assert (row.media_state, row.media_attempts, row.photos) == ("failed", 1, 0)
    assert row.media_error == "address_not_public"
    assert len(media_server.paths) == before
    assert await _events(session, row.id) == [
        ("media_failed", False, "media_url: address_not_public")
    ]


async def test_a_picture_the_pipeline_refuses_is_a_failure_not_a_retry(
    app, client, session, media_server, monkeypatch
):
    issued = await issue_key(app)
    r = await client.post(
        f"{ROOT}/requests.json",
        data=filing_form(issued.key, media_url=media_server.url("/not-a-picture.jpg")),
    )
    code = r.json()[0]["service_request_id"]
    # served as image/jpeg, but not a picture: the upload's pipeline says so
    original = media_server.httpd.RequestHandlerClass.do_GET

    def garbage(handler):
        if handler.path == "/not-a-picture.jpg":
            handler._send(200, "image/jpeg", b"\xff\xd8 this is not a jpeg at all")
        else:
            original(handler)

    monkeypatch.setattr(media_server.httpd.RequestHandlerClass, "do_GET", garbage)
    await run_worker()
    row = await _filing(session, code)
    assert (row.media_state, row.media_attempts, row.photos) == ("failed", 1, 0)
    assert row.media_error.startswith("photo_")
    assert [e[0] for e in await _events(session, row.id)] == ["media_failed"]


async def test_a_lost_or_failed_fetch_is_retried_by_the_reconciliation_up_to_the_bound(
    app, client, session, media_server
):
    settings = app.state.settings
    issued = await issue_key(app)
    r = await client.post(
        f"{ROOT}/requests.json",
        data=filing_form(issued.key, media_url=media_server.url("/error")),
    )
    code = r.json()[0]["service_request_id"]
    await run_worker()  # first try: a 500, kept pending
    row = await _filing(session, code)
    assert (row.media_state, row.media_attempts, row.media_error) == ("pending", 1, "http_500")

    # the next tries come from the reconciliation cron, run as the clock moves on
    later = app.state.clock.now()
    for attempt in range(2, settings.open311_media_max_attempts + 1):
        later += timedelta(minutes=5)
        await run_worker(media_worker({"clock": FixedClock(later)}))
        row = await _filing(session, code)
        assert row.media_attempts == attempt
    assert (row.media_state, row.media_error) == ("failed", "http_500")
    assert await _events(session, row.id) == [("media_failed", False, "media_url: http_500")]

    # a fetch whose job was lost (Redis flushed): enqueued again, done once
    r = await client.post(
        f"{ROOT}/requests.json",
        data=filing_form(issued.key, media_url=media_server.url("/photo.jpg")),
    )
    lost = await _filing(session, r.json()[0]["service_request_id"])
    async with db.transaction(app.state.sessionmaker, app.state.redis) as s:
        await s.execute(
            text("UPDATE open311_filings SET created_at = created_at - interval '10 minutes'"
                 " WHERE report_id = :id"),
            {"id": lost.id},
        )  # fmt: skip
    # the job is lost (Redis restarted): gone from the queue and its record with it
    redis = app.state.redis
    job_id = jobs.qualified_job_id(redis, filing.media_job_id(lost.id, 0))
    assert await redis.zrem(redis.default_queue_name, job_id) == 1
    await redis.delete(job_key_prefix + job_id)
    async with db.transaction(app.state.sessionmaker, app.state.redis) as s:
        assert await filing.stale_fetches(s, settings, app.state.clock.now()) >= 1
    await run_worker()
    row = await _filing(session, r.json()[0]["service_request_id"])
    assert (row.media_state, row.media_attempts, row.photos) == ("attached", 1, 1)
    await run_worker()  # nothing left to do: still one photo
    row = await _filing(session, r.json()[0]["service_request_id"])
    assert (row.media_attempts, row.photos) == (1, 1)


async def test_tries_used_by_runs_that_never_finished_end_as_a_failure(
    app, client, session, media_server
):
    settings = app.state.settings
    issued = await issue_key(app)
    r = await client.post(
        f"{ROOT}/requests.json",
        data=filing_form(issued.key, media_url=media_server.url("/photo.jpg")),
    )
    row = await _filing(session, r.json()[0]["service_request_id"])
    now = app.state.clock.now()
    async with db.transaction(app.state.sessionmaker, app.state.redis) as s:
        # every try claimed by a worker killed before it recorded anything
        await s.execute(
            text(
                "UPDATE open311_filings SET media_attempts = :tries,"
                " created_at = :long_ago, media_tried_at = :long_ago WHERE report_id = :id"
            ),
            {"tries": settings.open311_media_max_attempts, "id": row.id,
             "long_ago": now - timedelta(minutes=30)},
        )  # fmt: skip
    async with db.transaction(app.state.sessionmaker, app.state.redis) as s:
        assert await filing.stale_fetches(s, settings, now) == 1
    row = await _filing(session, r.json()[0]["service_request_id"])
    assert (row.media_state, row.media_error, row.photos) == ("failed", "not_fetched", 0)
    assert await _events(session, row.id) == [("media_failed", False, "media_url: not_fetched")]
    async with db.transaction(app.state.sessionmaker, app.state.redis) as s:
        assert await filing.stale_fetches(s, settings, now) == 0  # nothing pending is left
