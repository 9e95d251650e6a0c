"""The request metrics (``city_requests_*``), kept by the app's own middleware since issue
18 item 9 with the names, labels and meaning Litestar's Prometheus middleware gave them:
per method, route template and status, the count, the duration histogram and the
requests in progress; the probes and the scrape are not counted."""

from __future__ import annotations

from prometheus_client.parser import text_string_to_metric_families


async def _samples(client) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    r = await client.get("/metrics")
    assert r.status_code == 200
    return {
        (s.name, tuple(sorted(s.labels.items()))): s.value
        for family in text_string_to_metric_families(r.text)
        for s in family.samples
    }


def _labels(path: str, status: str = "200", method: str = "GET") -> tuple:
    return tuple(
        sorted({"method": method, "path": path, "status_code": status, "app_name": "city"}.items())
    )


async def test_requests_are_counted_by_route_template_and_status(client) -> None:
    before = await _samples(client)
    for _ in range(3):
        assert (await client.get("/api/v1/categories")).status_code == 200
    assert (await client.get("/api/v1/areas/00070")).status_code == 200
    assert (await client.get("/api/v1/areas/99999")).status_code == 404
    assert (await client.get("/health/live")).status_code == 200
    after = await _samples(client)

    def delta(name: str, labels: tuple) -> float:
        return after.get((name, labels), 0.0) - before.get((name, labels), 0.0)

    categories = _labels("/api/v1/categories")
    assert delta("city_requests_total", categories) == 3
    assert delta("city_request_duration_seconds_count", categories) == 3
    assert delta("city_request_duration_seconds_sum", categories) > 0
    # one path template for every area code, by status
    assert delta("city_requests_total", _labels("/api/v1/areas/{code}")) == 1
    assert delta("city_requests_total", _labels("/api/v1/areas/{code}", "404")) == 1
    # a 4xx is not an error of the server: no error series at all (one per 5xx status)
    assert not [
        k
        for k in after
        if k[0].startswith("city_requests_error") and dict(k[1])["path"] == "/api/v1/areas/{code}"
    ]
    # nothing in progress once answered (labelled 200 while in progress, as before)
    assert after[("city_requests_in_progress", categories)] == 0
    # the probes and the scrape are left out
    assert not [
        key for key in after if dict(key[1]).get("path", "").startswith(("/health", "/metrics"))
    ]


async def test_buckets_are_prometheus_defaults(client) -> None:
    await client.get("/api/v1/categories")
    samples = await _samples(client)
    buckets = sorted(
        float(dict(labels)["le"])
        for name, labels in samples
        if name == "city_request_duration_seconds_bucket"
        and dict(labels)["path"] == "/api/v1/categories"
        # one series: other tests of the run revalidate it too (304, issue 24)
        and dict(labels)["status_code"] == "200"
    )
    assert buckets[:3] == [0.005, 0.01, 0.025] and buckets[-1] == float("inf")
