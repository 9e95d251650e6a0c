"""The named benchmark scenarios ``bench.run`` measures, in order.

A scenario is one request shape held at one load. Each is measured against a floor
(``floor`` = a trivial Litestar handler, ``floor-db`` = the same plus one asyncpg
``SELECT 1``) under the *same* load, round after round, and reported as a ratio to it.
Pick ``floor="floor-db"`` for anything that touches Postgres.

Request templates: ``{{name}}`` in ``path``, a header value or ``body`` is replaced per
request. Built in: ``{{seq}}`` (unique in the whole harness run), ``{{phone}}``
(``+849`` + 8 digits from seq, unique), ``{{phone_local}}`` (``09...``), ``{{rand}}``,
``{{uuid}}``. Any other name must come from ``values`` or from what ``setup`` returns:
a list per name, used round-robin by seq (e.g. one bearer token per test user).

``setup(base_url)`` runs once against the target before the first round (sync or
async) and returns ``{name: [value, ...]}``; use it to sign in test users, create
fixtures, etc. It is not timed.

Load: ``concurrency`` connections as fast as the server answers (closed loop, wrk),
or, with ``rate``, that many requests *started* per second whatever the server does
(open loop, asyncio engine; latency counts from when each request was due).
``duration``/``concurrency`` left as None take the command line defaults.
"""

from __future__ import annotations

import os
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field

Values = dict[str, list[str]]
Setup = Callable[[str], Values | Awaitable[Values]]

FLOOR_PATHS = {"floor": "/floor", "floor-db": "/floor-db"}


@dataclass(frozen=True)
class Scenario:
    name: str
    path: str
    method: str = "GET"
    headers: Mapping[str, str] = field(default_factory=dict)
    body: str | None = None  # template; Content-Type defaults to application/json
    values: Mapping[str, list[str]] = field(default_factory=dict)
    setup: Setup | None = None
    concurrency: int | None = None  # None: --concurrency
    duration: float | None = None  # None: --duration (seconds)
    rate: float | None = None  # requests/s, open loop; None: closed loop
    floor: str = "floor"  # "floor" | "floor-db"
    expect: str = "200-299"  # statuses that count as success, e.g. "202" or "200,404"
    description: str = ""

    def __post_init__(self) -> None:
        if self.floor not in FLOOR_PATHS:
            raise ValueError(f"{self.name}: floor must be one of {sorted(FLOOR_PATHS)}")


# ----------------------------------------------------------------------------- helpers


def values_from_env(name: str, env: str) -> Setup:
    """A setup that reads ``name``'s values from a file named by an environment variable
    (one value a line), e.g. ``BENCH_TOKENS=/tmp/tokens.txt`` for bearer tokens."""

    def setup(base_url: str) -> Values:
        path = os.environ.get(env)
        if not path:
            raise RuntimeError(f"set {env} to a file with one {name} per line")
        with open(path) as f:
            items = [ln.strip() for ln in f if ln.strip()]
        if not items:
            raise RuntimeError(f"{path} has no {name} values")
        return {name: items}

    return setup


# ----------------------------------------------------------------------------- the app

SCENARIOS: list[Scenario] = [
    Scenario(
        name="health_live",
        path="/health/live",
        description="Liveness: routing, middleware stack and a Struct response, no I/O.",
    ),
    Scenario(
        name="health_live_100rps",
        path="/health/live",
        rate=100,
        description="Liveness at a fixed 100 req/s: latency under light load.",
    ),
    # --- add the app's scenarios here ------------------------------------------------
    # Check paths and statuses against app/*/api.py before enabling. Examples:
    #
    # Scenario(
    #     name="otp_request",
    #     method="POST",
    #     path="/api/v1/auth/otp",
    #     body='{"phone": "{{phone}}"}',   # a new phone number per request
    #     expect="202",
    #     floor="floor-db",
    #     description="Ask for a sign-in code: rate limiter (Redis), insert, SMS enqueue.",
    #     # Start the app with OTP_RATE_PER_IP raised (e.g. "1000000/minute"): every
    #     # request comes from 127.0.0.1 and the default limit answers 429 at once.
    # ),
    # Scenario(
    #     name="me",
    #     path="/api/v1/me/",
    #     headers={"Authorization": "Bearer {{token}}"},
    #     setup=values_from_env("token", "BENCH_TOKENS"),  # or a setup that signs in
    #     floor="floor-db",
    #     description="Authenticated profile read: JWT check + one row by primary key.",
    # ),
    # Scenario(
    #     name="area_lookup",
    #     path="/api/v1/areas/lookup?lat=21.0285&lon=105.8542",
    #     floor="floor-db",
    #     description="PostGIS point-in-polygon over the city's wards.",
    # ),
    # Scenario(
    #     name="area_lookup_100rps",
    #     path="/api/v1/areas/lookup?lat=21.0285&lon=105.8542",
    #     rate=100,
    #     floor="floor-db",
    # ),
]


# ------------------------------------------------------- self-test: the floor vs itself
# `python -m bench.run --self-test` serves bench.floor as the "app" too, so every ratio
# should come out near 1.00; how far off it is shows the noise of this machine.

SELF_TEST: list[Scenario] = [
    Scenario(name="self_floor", path="/floor", description="floor app vs floor"),
    Scenario(
        name="self_floor_templated",
        method="GET",
        path="/floor?phone={{phone}}&id={{uuid}}",
        headers={"Authorization": "Bearer {{token}}"},
        values={"token": ["t1", "t2", "t3"]},
        description="per-request templating in the generator (floor ignores it)",
    ),
    Scenario(name="self_floor_db", path="/floor-db", floor="floor-db"),
    Scenario(name="self_floor_100rps", path="/floor", rate=100),
]

ALL: dict[str, Scenario] = {s.name: s for s in SCENARIOS + SELF_TEST}
