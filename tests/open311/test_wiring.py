"""The GeoReport v2 root answers in the specification's error shape, in the format asked."""

from xml.etree import ElementTree


async def test_unknown_resource_is_a_404_in_the_format_asked(client):
    response = await client.get("/open311/v2/nothing.xml")
    assert response.status_code == 404
    assert response.headers["content-type"].startswith("text/xml")
    root = ElementTree.fromstring(response.content)
    assert root.tag == "errors"
    assert root.find("error/code").text == "404"
    assert "nothing.xml" in root.find("error/description").text

    response = await client.get("/open311/v2/tokens/abc")  # no suffix: JSON
    assert response.status_code == 404
    assert response.json()[0]["code"] == 404
