"""The XML side of ``formats.render``: well-formed whatever the text holds, the same
fields as the JSON, for lists of Structs (the read answers) and of mappings (the write
side's answers and errors)."""

from __future__ import annotations

import json
from xml.etree import ElementTree

from app.open311.formats import render
from app.open311.schemas import (
    AttributeOut,
    ServiceDefinitionOut,
    UpdateOut,
    ValueOut,
)

AWKWARD = "Rác <b>&</b> \"nước\" 'bẩn'\x00\x07\x1f\ufffe ở ngõ 12 — 85 dB"


def _update(description: str) -> UpdateOut:
    return UpdateOut(
        update_id="7",
        service_request_id="ABCD-EFGH",
        status="open",
        updated_datetime="2026-12-05T10:00:00+07:00",
        description=description,
        media_url="",
    )


def test_texts_are_escaped_and_what_xml_cannot_carry_is_dropped():
    response = render("xml", "service_requests_updates", "request_update", [_update(AWKWARD)])
    assert response.media_type == "text/xml"
    tree = ElementTree.fromstring(response.content)  # well-formed
    assert tree.findtext("request_update/description") == (
        "Rác <b>&</b> \"nước\" 'bẩn' ở ngõ 12 — 85 dB"
    )
    assert tree.findtext("request_update/media_url") == ""
    # JSON keeps the text as it is (JSON can carry every character)
    as_json = json.loads(render("json", "", None, [_update(AWKWARD)]).content)
    assert as_json[0]["description"] == AWKWARD


def test_a_nested_struct_and_a_list_of_mappings_render_alike():
    definition = ServiceDefinitionOut(
        service_code="noise",
        attributes=[
            AttributeOut(
                variable=True,
                code="when",
                datatype="singlevaluelist",
                required=False,
                datatype_description=None,
                order=1,
                description="Khi nào? <ban đêm>",
                values=[ValueOut(key="night", name="Ban đêm & sáng sớm")],
            )
        ],
    )
    tree = ElementTree.fromstring(render("xml", "service_definition", None, definition).content)
    [attribute] = tree.findall("attributes/attribute")
    assert attribute.findtext("required") == "false"
    assert attribute.findtext("datatype_description") == ""
    assert attribute.findtext("order") == "1"
    assert attribute.findtext("description") == "Khi nào? <ban đêm>"
    assert attribute.findtext("values/value/name") == "Ban đêm & sáng sớm"

    rows = [{"service_request_id": "ABCD-EFGH", "lat": 21.0288, "token": None, "ok": True}]
    tree = ElementTree.fromstring(render("xml", "service_requests", "request", rows).content)
    assert [(e.tag, e.text) for e in tree.find("request")] == [
        ("service_request_id", "ABCD-EFGH"),
        ("lat", "21.0288"),
        ("token", None),
        ("ok", "true"),
    ]


def test_a_list_of_structs_with_nested_lists_goes_element_by_element():
    attributes = [
        AttributeOut(
            variable=True,
            code=code,
            datatype="multivaluelist",
            required=True,
            datatype_description="<chọn>",
            order=order,
            description=code,
            values=[ValueOut(key="a", name="A & B"), ValueOut(key="b", name="B")],
        )
        for order, code in enumerate(["kinds", "sizes"], start=1)
    ]
    tree = ElementTree.fromstring(render("xml", "attributes", "attribute", attributes).content)
    assert [a.findtext("code") for a in tree] == ["kinds", "sizes"]
    assert [v.findtext("name") for v in tree.findall("attribute/values/value")] == [
        "A & B",
        "B",
        "A & B",
        "B",
    ]
    assert tree.findtext("attribute/datatype_description") == "<chọn>"
    assert tree.findtext("attribute/required") == "true"
