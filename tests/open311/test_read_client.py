"""An off-the-shelf GeoReport v2 client from PyPI (``georeport``, requests + xmltodict)
reads the API served by granian on loopback (this run's database and settings): the
services, a service definition and requests, one and several, in JSON and in XML."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator

import httpx
import pytest
from georeport import GeoReport

from app.core.clock import Clock
from tests.accounts.factories import sign_in_resident
from tests.complaints.factories import file_with_photo
from tests.live import live_server
from tests.open311.test_read_api import unsigned
from tests.routing.conftest import run_worker

PORTS = range(8711, 8720)  # this helper's range on the shared machine


@pytest.fixture(scope="module")
def live_api(database: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """The API in a granian process of its own (tests/live.py), on this run's database,
    Redis prefix and secrets; its /open311/v2 root."""
    with live_server(PORTS, tmp_path_factory.mktemp("open311")) as base_url:
        yield f"{base_url}/open311/v2"


def _texts(value) -> object:
    """A JSON value as xmltodict reads the XML: text, None for an empty element."""
    if value is None or value == "":
        return None
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, list | dict):
        raise AssertionError("flat fields only")
    return str(value)


@pytest.mark.parametrize("fmt", ["json", "xml"])
async def test_the_georeport_client_reads_services_and_a_definition(live_api, settings, fmt):
    geo = GeoReport(live_api, jurisdiction=settings.open311_jurisdiction_id, output_format=fmt)
    services = await asyncio.to_thread(geo.get_service_list)
    codes = [s["service_code"] for s in services]
    assert "roads" in codes and len(codes) == len(set(codes))
    roads = next(s for s in services if s["service_code"] == "roads")
    assert roads["service_name"] == "Đường sá, ổ gà, hè phố"
    assert roads["type"] == "realtime"
    asking = [s for s in services if s["metadata"] in (True, "true")]
    assert asking, "the reference data asks extra questions in some categories"
    definition = await asyncio.to_thread(geo.get_service_definition, asking[0]["service_code"])
    assert definition["service_code"] == asking[0]["service_code"]
    attributes = definition["attributes"]
    if fmt == "xml":  # <attributes><attribute>…: one element reads as a dict, more as a list
        attributes = attributes["attribute"]
        attributes = attributes if isinstance(attributes, list) else [attributes]
    assert attributes and all(a["code"] and a["datatype"] for a in attributes)
    assert [str(a["order"]) for a in attributes] == [str(n) for n in range(1, len(attributes) + 1)]


async def test_the_georeport_client_reads_requests_in_both_formats(
    client, caplog, live_api, settings
):
    resident = await sign_in_resident(client, caplog)
    first = await file_with_photo(client, resident["headers"], category_code="roads")
    second = await file_with_photo(client, resident["headers"], category_code="waste")
    await run_worker(Clock())
    as_json = GeoReport(live_api, jurisdiction=settings.open311_jurisdiction_id)
    as_xml = GeoReport(live_api, jurisdiction=settings.open311_jurisdiction_id, output_format="xml")
    codes = f"{first['code']},{second['code']}"
    many_json = await asyncio.to_thread(as_json.get_service_requests, service_request_id=codes)
    many_xml = await asyncio.to_thread(as_xml.get_service_requests, service_request_id=codes)
    assert [r["service_request_id"] for r in many_json] == [second["code"], first["code"]]
    assert [r["service_request_id"] for r in many_xml] == [second["code"], first["code"]]
    for from_json, from_xml in zip(many_json, many_xml, strict=True):
        assert list(from_xml) == list(from_json)
        assert unsigned(dict(from_xml)) == {k: _texts(v) for k, v in unsigned(from_json).items()}
    one_json = await asyncio.to_thread(as_json.get_service_request, first["code"])
    one_xml = await asyncio.to_thread(as_xml.get_service_request, first["code"])
    assert unsigned(one_json) == unsigned(many_json[1])
    assert unsigned(dict(one_xml)) == unsigned(dict(many_xml[1]))
    assert one_json["status"] == "open" and one_json["service_code"] == "roads"
    assert one_json["media_url"].startswith("http://127.0.0.1:")  # the server's own URL
    # filtered by code and status through the client's own parameters
    roads = await asyncio.to_thread(
        as_xml.get_service_requests, service_code="roads", status="open"
    )
    roads = roads if isinstance(roads, list) else [roads]
    assert first["code"] in {r["service_request_id"] for r in roads}
    assert second["code"] not in {r["service_request_id"] for r in roads}
