"""A third-party app over real HTTP: the API served by granian in a process of its own
(tests/live.py, a port from 8722), a key from the CLI, a filing form-encoded by
``requests`` (the HTTP library the ``georeport`` client uses; that client has no POST),
then the off-the-shelf ``georeport`` client reads the service definition and the filed
request back, in JSON and in XML."""

from __future__ import annotations

import re
from collections.abc import Iterator

import pytest
import requests
from georeport import GeoReport

from app.cli import main
from tests.live import live_server

PORTS = range(8722, 8730)  # this helper's range on the shared machine


@pytest.fixture(scope="module")
def served(database: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    with live_server(PORTS, tmp_path_factory.mktemp("open311")) as base_url:
        yield base_url


def cli_key(capsys) -> str:
    with pytest.raises(SystemExit) as exit_:
        main(["open311-key-create", "--name", "Client test app", "--contact", "qa@example.test"])
    assert exit_.value.code == 0
    return re.search(r"\(shown once\): (o311_\S+)", capsys.readouterr().out)[1]


def test_a_client_files_over_http_and_georeport_reads_it_back(served, capsys):
    key = cli_key(capsys)
    root = f"{served}/open311/v2"
    form = [
        ("api_key", key),
        ("jurisdiction_id", "hanoi.gov.vn"),
        ("service_code", "street-lighting"),
        ("lat", "21.0288"),
        ("long", "105.8525"),
        ("description", "Đèn đường không sáng ở đầu phố Hàng Bài."),
        ("attribute[pole_number]", "HK-0456"),
        ("attribute[lamp_state]", "flickering"),
        ("first_name", "Minh"),
        ("phone", "0987654321"),
    ]
    r = requests.post(f"{root}/requests.xml", data=form, timeout=10)
    assert r.status_code == 200, r.text
    assert r.headers["content-type"] == "text/xml; charset=utf-8"
    code = re.search(r"<service_request_id>([^<]+)</service_request_id>", r.text)[1]
    token = re.search(r"<token>([^<]+)</token>", r.text)[1]

    for fmt in ("json", "xml"):
        client = GeoReport(root, jurisdiction="hanoi.gov.vn", output_format=fmt)
        definition = client.get_service_definition("street-lighting")
        attributes = definition["attributes"]
        if fmt == "xml":
            attributes = attributes["attribute"]
        assert [a["code"] for a in attributes] == ["pole_number", "lamp_state"]
        request = client.get_service_request(code)
        assert request["service_request_id"] == code
        assert request["service_code"] == "street-lighting"
        assert request["status"] == "open"
        assert "0987654321" not in str(request) and "Minh" not in str(request)

    r = requests.get(f"{root}/tokens/{token}.json", timeout=10)
    assert r.json() == [{"service_request_id": code, "token": token}]
    r = requests.post(f"{root}/requests.json", data=[*form[1:], ("api_key", "o311_x")], timeout=10)
    assert r.status_code == 403 and r.json()[0]["code"] == 403
