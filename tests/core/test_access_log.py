"""The access log's fast path (issue 18 item 9) writes the line structlog's chain wrote:
the same keys in the same order, the same values; only the JSON is msgspec's."""

from __future__ import annotations

import json
import logging

import structlog

from app.core.logging import access_record, json_formatter, request_id_var


def test_the_access_line_is_the_one_structlog_wrote(app, caplog) -> None:
    caplog.set_level(logging.INFO, logger="city.access")
    fields = {"method": "GET", "path": "/api/v1/về", "status": 200, "duration_ms": 1.25}
    token = request_id_var.set("req-abcdef123")
    try:
        structlog.get_logger("city.access").info("request", **fields)
        logging.getLogger("city.access").handle(access_record(dict(fields)))
    finally:
        request_id_var.reset(token)
    by_structlog, fast = (json_formatter().format(r) for r in caplog.records[-2:])
    old, new = json.loads(by_structlog), json.loads(fast)
    assert list(new) == list(old)
    assert old.pop("timestamp")[:10] == new.pop("timestamp")[:10]
    assert (
        new
        == old
        == {
            **fields,
            "event": "request",
            "level": "info",
            "logger": "city.access",
            "request_id": "req-abcdef123",
        }
    )
    assert "về" in fast  # not escaped, as before (ensure_ascii=False)
