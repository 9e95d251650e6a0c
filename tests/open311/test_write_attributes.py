"""Categories' extra questions (Open311 attributes) from the reference data."""

from sqlalchemy import text

from app.places.demo import CATEGORY_ATTRIBUTES, load_reference_data


async def test_reference_data_asks_questions_in_order_and_reloads_idempotently(session):
    await session.execute(
        text(
            "UPDATE category_attributes SET active = false, description_en = 'edited'"
            " WHERE category_code = 'roads' AND code = 'pothole_size'"
        )
    )
    await session.commit()
    await load_reference_data(session)  # a reload: texts back, the city's 'active' kept
    await session.commit()

    rows = (
        await session.execute(
            text(
                "SELECT category_code, code, position, datatype, required, description_en,"
                " values, active FROM category_attributes ORDER BY category_code, position"
            )
        )
    ).all()
    assert len(rows) == len(CATEGORY_ATTRIBUTES)
    by_key = {(r.category_code, r.code): r for r in rows}
    lighting = [r for r in rows if r.category_code == "street-lighting"]
    assert [(r.code, r.position) for r in lighting] == [("pole_number", 1), ("lamp_state", 2)]
    assert lighting[0].datatype == "string" and lighting[0].required is False
    pothole = by_key[("roads", "pothole_size")]
    assert pothole.description_en == "Size of the pothole"
    assert pothole.active is False
    assert [v["key"] for v in pothole.values] == ["small", "medium", "large"]
    assert pothole.values[0] == {
        "key": "small",
        "name_vi": "Nhỏ (dưới 30 cm)",
        "name_en": "Small (under 30 cm)",
    }
    tree = by_key[("trees-parks", "blocking_road")]
    assert tree.required is True and [v["key"] for v in tree.values] == ["yes", "no"]

    await session.execute(
        text(
            "UPDATE category_attributes SET active = true"
            " WHERE category_code = 'roads' AND code = 'pothole_size'"
        )
    )
    await session.commit()
