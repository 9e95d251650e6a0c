from sqlalchemy import text
from tests.places.test_reference_data import session  # noqa
async def test_probe(session):
    print(await session.scalar(text("select count(*) from areas")), await session.scalar(text("select current_database()")))
    r = await session.scalars(text("SELECT code FROM areas WHERE code = ANY(CAST(:codes AS text[]))"), {"codes": ["00070"]})
    print(set(r))
    assert 0
