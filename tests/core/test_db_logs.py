"""Issue 17 item 7: logs carry no user text. A failing statement's error, and the log
line the API writes for it, name the statement but not the values it was given."""

from __future__ import annotations

import json
import logging
import uuid

import pytest
from litestar.testing import RequestFactory
from sqlalchemy.exc import IntegrityError

from app.accounts.models import User
from app.core import db
from app.core.errors import internal_error_handler
from app.core.logging import json_formatter


async def test_a_failed_inserts_log_line_holds_none_of_its_values(app, client):
    name = f"Nguyễn Thị Bí Mật {uuid.uuid4().hex[:6]}"
    phone = "+8491" + f"{uuid.uuid4().int % 10**7:07d}"
    async with db.transaction(app.state.sessionmaker, None) as session:
        session.add(User(kind="resident", phone=phone, locale="vi"))
    with pytest.raises(IntegrityError) as failed:
        async with db.transaction(app.state.sessionmaker, None) as session:
            # the same phone again: PostgreSQL refuses the insert, and its DETAIL quotes
            # the phone ("Key (phone)=(...) already exists")
            session.add(User(kind="resident", phone=phone, full_name=name, locale="vi"))
    exc = failed.value
    assert "INSERT INTO users" in str(exc)
    assert "hide_parameters=True" in str(exc)  # SQLAlchemy says the values were left out
    assert name not in str(exc)

    # the API's own JSON formatter, on the logger the error handler writes to
    lines: list[str] = []
    handler = logging.Handler(logging.ERROR)
    handler.setFormatter(json_formatter())
    handler.emit = lambda record: lines.append(handler.format(record))  # type: ignore[method-assign]
    logger = logging.getLogger("city.errors")
    logger.addHandler(handler)
    try:
        response = internal_error_handler(RequestFactory().post("/api/v1/me"), exc)
    finally:
        logger.removeHandler(handler)
    assert response.status_code == 500
    [line] = lines
    logged = json.loads(line)
    assert logged["event"] == "unhandled_error" and logged["level"] == "error"
    assert logged["statement"].startswith("INSERT INTO users")
    assert logged["sqlstate"] == "23505" and logged["constraint"] == "uq_users_phone"
    assert "app/core/db.py" in logged["traceback"]  # where it failed, still there
    for value in (name, phone, phone.removeprefix("+")):
        assert value not in line
