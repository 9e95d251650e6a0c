"""What conditional requests and compression cost on ``/reports/mine`` (issue 24 items 1, 4).

The harness (``bench.run``) with a few more scenarios over a resident with 50 reports
(each with 2 photos): the first page of 50 as it was (identity), gzip, brotli, and
revalidated with its ETag (304). Run it on a tree without ``app/core/conditional.py``
and on one with it to read the ETag's cost as the change in server CPU per request.

    DATABASE_URL=postgresql+asyncpg://postgres@127.0.0.1:5432/c_bench REDIS_PREFIX=c:bench \\
        uv run python -m bench.seed_reports --count 20000
    ... uv run python -m bench.conditional --start-app -s mine50,mine50_gzip,mine50_br,mine50_304

``--ports A-B`` keeps every server the harness starts inside that range (a shared
machine), and ``--sizes`` prints the answer's bytes plain / gzip / br and per list item
for one of the residents, then exits.
"""

from __future__ import annotations

import asyncio
import gzip
import json
import sys
import urllib.request

from bench import run, scenarios
from bench.scenarios import Scenario, Values

PAGE = 50


async def residents_with_50_reports(base_url: str) -> Values:
    """50 residents with 50 reports each (2 photos, 4 timeline entries, 50 notices),
    and each resident's ETag of the page, aligned with its token."""
    scenarios._REPORTS_EACH = PAGE
    values = await scenarios.residents_with_reports_once(base_url)
    etags = {
        token: await asyncio.to_thread(_etag, base_url, token)
        for token in dict.fromkeys(values["token"])
    }
    return {**values, "etag": [etags[t] for t in values["token"]]}


def _etag(base_url: str, token: str) -> str:
    request = urllib.request.Request(
        f"{base_url}/api/v1/reports/mine?limit={PAGE}",
        headers={"Authorization": f"Bearer {token}", "Accept-Encoding": "identity"},
    )
    with urllib.request.urlopen(request) as response:
        return response.headers.get("ETag") or '"none"'  # (an app without ETags)


def _scenario(name: str, description: str, **headers: str) -> Scenario:
    return Scenario(
        name=name,
        path=f"/api/v1/reports/mine?limit={PAGE}",
        headers={"Authorization": "Bearer {{token}}", **headers},
        setup=residents_with_50_reports,
        floor="floor-reports-mine",
        expect="200,304",
        description=description,
    )


EXTRA = [
    _scenario("mine50", "My 50 reports, identity", **{"Accept-Encoding": "identity"}),
    _scenario("mine50_gzip", "My 50 reports, gzip", **{"Accept-Encoding": "gzip"}),
    _scenario("mine50_br", "My 50 reports, br", **{"Accept-Encoding": "gzip, deflate, br"}),
    _scenario(
        "mine50_304",
        "My 50 reports revalidated: 304",
        **{"Accept-Encoding": "identity", "If-None-Match": "{{etag}}"},
    ),
]


def sizes(base_url: str) -> None:
    """The page's bytes as sent, for one resident (run after the harness's setup)."""
    values = asyncio.run(residents_with_50_reports(base_url))
    token = values["token"][0]
    out = {}
    for coding in ("identity", "gzip", "br"):
        request = urllib.request.Request(
            f"{base_url}/api/v1/reports/mine?limit={PAGE}",
            headers={"Authorization": f"Bearer {token}", "Accept-Encoding": coding},
        )
        with urllib.request.urlopen(request) as response:
            raw = response.read()
            out[coding] = len(raw)
            if coding == "identity":
                items = json.loads(raw)["items"]
            elif coding == "gzip":
                assert json.loads(gzip.decompress(raw))["items"] == items
    print(
        json.dumps(
            {**out, "items": len(items), "per_item_plain": out["identity"] // len(items)},
            indent=1,
        )
    )


def main() -> int:
    argv = sys.argv[1:]
    if "--ports" in argv:
        at = argv.index("--ports")
        low, high = (int(p) for p in argv[at + 1].split("-"))
        del argv[at : at + 2]
        ports = iter(range(low, high + 1))
        run.free_port = lambda: next(ports)  # type: ignore[assignment]
    if "--sizes" in argv:
        sizes(argv[argv.index("--sizes") + 1])
        return 0
    for scenario in EXTRA:
        run.ALL[scenario.name] = scenario
    return run.main(argv)


if __name__ == "__main__":
    raise SystemExit(main())
