"""/metrics can be closed with METRICS_TOKEN (issue 17, item 9): a bearer token a
Prometheus scrape sends; without it or with a wrong one, 401 problem+json."""

from __future__ import annotations

import msgspec
import pytest

from app.main import create_app
from tests.conftest import running

TOKEN = "metrics-" + "s" * 40


@pytest.fixture(scope="module")
async def closed(settings):
    application = create_app(msgspec.structs.replace(settings, metrics_token=TOKEN))
    async with running(application) as client:
        yield client


@pytest.mark.parametrize(
    "headers",
    [
        {},
        {"Authorization": "Bearer wrong-token"},
        {"Authorization": f"Basic {TOKEN}"},
        {"Authorization": f"Bearer {TOKEN}x"},
    ],
    ids=["none", "wrong", "not-bearer", "longer"],
)
async def test_closed_metrics_refuse_without_the_token(closed, headers):
    r = await closed.get("/metrics", headers={**headers, "Accept-Language": "en"})
    assert r.status_code == 401
    assert r.headers["content-type"].startswith("application/problem+json")
    assert r.json()["code"] == "unauthenticated"
    assert r.headers["www-authenticate"] == 'Bearer realm="metrics"'
    assert "city_dependency_up" not in r.text


async def test_closed_metrics_answer_the_token(closed):
    await closed.get("/health/ready")
    r = await closed.get("/metrics", headers={"Authorization": f"Bearer {TOKEN}"})
    assert r.status_code == 200
    assert 'city_dependency_up{dependency="database"} 1.0' in r.text


async def test_the_token_closes_only_metrics(closed):
    assert (await closed.get("/health/live")).status_code == 200
    assert (await closed.get("/api/v1/categories")).status_code == 200


async def test_metrics_are_open_without_a_token(client, settings):
    assert settings.metrics_token == ""
    r = await client.get("/metrics")
    assert r.status_code == 200
    assert "city_dependency_up" in r.text
