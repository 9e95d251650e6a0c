"""Every guard on the app's routes is a coroutine function: Litestar runs a plain
function guard in a worker thread, a thread-pool round trip on every guarded request
(issue 18 item 9). The denials themselves are proven with each endpoint's tests."""

from __future__ import annotations

import inspect

from litestar.handlers import HTTPRouteHandler


def test_no_guard_runs_in_a_thread(app) -> None:
    guarded = 0
    for route in app.routes:
        for handler in getattr(route, "route_handlers", ()):
            if not isinstance(handler, HTTPRouteHandler):
                continue
            for guard in handler.resolve_guards():
                guarded += 1
                assert inspect.iscoroutinefunction(guard), (route.path, guard)
    assert guarded > 50  # the API's and the console's guarded handlers were all looked at
