"""Liveness, readiness, metrics and request ids."""

from __future__ import annotations

import json
import logging

import msgspec

from app.core.logging import json_formatter


async def test_liveness(client):
    r = await client.get("/health/live")
    assert r.status_code == 200 and r.json() == {"status": "alive"}


async def test_readiness_checks_database_redis_and_storage(client):
    r = await client.get("/health/ready")
    assert r.status_code == 200
    checks = {c["name"]: c["ok"] for c in r.json()["checks"]}
    assert checks == {"database": True, "redis": True, "storage": True}


async def test_readiness_names_the_dependency_that_failed(settings, database):
    from app.main import create_app
    from tests.conftest import running

    broken = msgspec.structs.replace(settings, redis_url="redis://127.0.0.1:1/0")
    application = create_app(broken)
    async with running(application) as client:
        r = await client.get("/health/ready")
    assert r.status_code == 503
    body = r.json()
    assert body["status"] == "unavailable"
    failed = {c["name"]: c for c in body["checks"]}
    assert failed["redis"]["ok"] is False and "Error" in failed["redis"]["error"]
    assert failed["database"]["ok"] is True


async def test_metrics_are_prometheus_text(client):
    await client.get("/health/ready")
    await client.get("/api/v1/categories")
    r = await client.get("/metrics")
    assert r.status_code == 200
    assert "city_requests_total" in r.text or "city_request_duration_seconds" in r.text
    assert 'city_dependency_up{dependency="database"} 1.0' in r.text


async def test_request_id_is_echoed_and_logged_as_json(client, caplog):
    caplog.set_level(logging.INFO, logger="city.access")
    r = await client.get("/api/v1/categories", headers={"X-Request-ID": "req-1234567890"})
    assert r.headers["x-request-id"] == "req-1234567890"
    generated = await client.get("/api/v1/categories")
    assert len(generated.headers["x-request-id"]) == 32
    records = [
        rec
        for rec in caplog.records
        if isinstance(rec.msg, dict) and rec.msg.get("request_id") == "req-1234567890"
    ]
    assert records, [rec.msg for rec in caplog.records]
    # rendered by the app's own handler, the line is one JSON object
    line = json.loads(json_formatter().format(records[0]))
    assert line["path"] == "/api/v1/categories" and line["status"] == 200
    assert line["request_id"] == "req-1234567890" and line["logger"] == "city.access"


async def test_problem_carries_request_id_and_unknown_routes_are_problems(client):
    r = await client.get("/api/v1/nothing-here", headers={"X-Request-ID": "trace-abcdef12"})
    assert r.status_code == 404
    assert r.headers["content-type"].startswith("application/problem+json")
    assert r.json()["request_id"] == "trace-abcdef12"
    r = await client.delete("/api/v1/categories")
    assert r.status_code == 405 and r.json()["code"] == "method_not_allowed"


async def test_oversized_body_is_413(client):
    r = await client.post(
        "/api/v1/auth/otp",
        content=b"{" + b" " * 2_000_000 + b"}",
        headers={"content-type": "application/json"},
    )
    assert r.status_code == 413
    assert r.json()["code"] == "payload_too_large"
