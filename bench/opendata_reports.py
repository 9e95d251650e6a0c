"""Issue 22 item 4's target: the open-data query for a month of a 1,000,000-report city,
p95 < 200 ms.

    # once: a database of its own, migrated, Hanoi's reference data, 1 M reports, and
    # what the seeder leaves out (units, deadlines, timelines with answers) for the last
    # 120 days (bench/open311_requests.py)
    export DATABASE_URL=postgresql+asyncpg://postgres@127.0.0.1:5432/city_bench_h2_reports
    uv run python -m app.cli setup
    uv run python -m bench.seed_reports --count 1000000
    uv run python -m bench.open311_requests prepare
    # the measurement (app on :8761, the floor on :8762, both granian, one worker)
    uv run python -m bench.opendata_reports [--requests 300] [--concurrency 4]

Each scenario is a request of the public endpoint over the last full 30 local days
(~41,000 reports of the 1 M): the first page of 1,000 rows (JSON, CSV), a page deep in
the month (by cursor), and the month filtered by category, by area, by unit. Requests
are sent one at a time (latency) and then by ``--concurrency`` clients (load); p50/p95/
p99 in ms, and the ratio of the p95 to the floor's (``bench.floor``'s ``/floor-db``: one
``SELECT 1`` through asyncpg, measured the same way in the same run).
"""

from __future__ import annotations

import argparse
import asyncio
import os
import statistics
import subprocess
import sys
import time
from datetime import datetime, timedelta

import httpx

from app.core.calendar import TIMEZONE

APP_PORT, FLOOR_PORT = 8761, 8762
GRANIAN = [sys.executable, "-m", "granian", "--interface", "asgi", "--workers", "1"]


def _serve(target: str, port: int, factory: bool, env: dict[str, str]) -> subprocess.Popen:
    cmd = [*GRANIAN, "--host", "127.0.0.1", "--port", str(port), "--log-level", "warning"]
    if factory:
        cmd.append("--factory")
    return subprocess.Popen([*cmd, target], env=env, start_new_session=True)


async def _ready(client: httpx.AsyncClient, url: str) -> None:
    for _ in range(300):
        try:
            if (await client.get(url)).status_code == 200:
                return
        except httpx.TransportError:
            pass
        await asyncio.sleep(0.1)
    raise RuntimeError(f"{url} never answered")


async def _measure(
    client: httpx.AsyncClient, url: str, requests: int, concurrency: int
) -> list[float]:
    for _ in range(10):  # warm: prepared statements, caches
        r = await client.get(url)
        r.raise_for_status()
    timings: list[float] = []
    left = requests

    async def one_client() -> None:
        nonlocal left
        while left > 0:
            left -= 1
            started = time.perf_counter()
            r = await client.get(url)
            timings.append((time.perf_counter() - started) * 1000)
            r.raise_for_status()

    await asyncio.gather(*(one_client() for _ in range(concurrency)))
    return timings


def _pct(values: list[float], q: float) -> float:
    return statistics.quantiles(values, n=100, method="inclusive")[int(q) - 1]


async def _scenarios(client: httpx.AsyncClient, base: str) -> dict[str, str]:
    today = datetime.now(TIMEZONE).date()
    first, last = today - timedelta(days=30), today - timedelta(days=1)
    month = f"from={first.isoformat()}&to={last.isoformat()}"
    path = f"{base}/api/v1/public/open-data/reports?{month}"
    page = (await client.get(path + "&limit=1000")).json()
    cursor = page["next_cursor"]
    for _ in range(19):  # ~20,000 rows in: the middle of the month
        nxt = (await client.get(path + f"&limit=1000&cursor={cursor}")).json()["next_cursor"]
        cursor = nxt or cursor
    sample = page["items"][0]
    return {
        "month, first 1,000 (JSON)": path + "&limit=1000",
        "month, first 1,000 (CSV)": path + "&limit=1000&format=csv",
        "month, 1,000 from the middle": path + f"&limit=1000&cursor={cursor}",
        "month, one category": path + f"&limit=1000&category={sample['category']}",
        "month, one area": path + f"&limit=1000&area={sample['area']}",
        "month, one unit": path + f"&limit=1000&unit={sample['unit']}" if sample["unit"] else "",
    }


async def main_async(args: argparse.Namespace) -> None:
    env = {
        **os.environ,
        "REDIS_PREFIX": "h2bench",
        "STORAGE_DIR": "/tmp/h2bench-storage",
        "LOAD_DEMO_DATA": "false",
        "LOG_LEVEL": "warning",
        "DB_POOL_SIZE": "10",
    }
    floor_env = {**env, "DATABASE_URL": env["DATABASE_URL"].replace("+asyncpg", "")}
    app = _serve("app.main:create_app", APP_PORT, True, env)
    floor = _serve("bench.floor:app", FLOOR_PORT, False, floor_env)
    base, floor_base = f"http://127.0.0.1:{APP_PORT}", f"http://127.0.0.1:{FLOOR_PORT}"
    try:
        async with httpx.AsyncClient(timeout=30) as client:
            await _ready(client, base + "/health/live")
            await _ready(client, floor_base + "/floor-db")
            scenarios = await _scenarios(client, base)
            print(f"{args.requests} requests each; 1 client, then {args.concurrency} clients\n")
            print("| scenario | clients | p50 ms | p95 ms | p99 ms | p95 / floor-db p95 |")
            print("| --- | --- | --- | --- | --- | --- |")
            for clients in (1, args.concurrency):
                floor_ms = await _measure(client, floor_base + "/floor-db", args.requests, clients)
                floor95 = _pct(floor_ms, 95)
                print(
                    f"| floor-db | {clients} | {_pct(floor_ms, 50):.1f} | {floor95:.1f} | "
                    f"{_pct(floor_ms, 99):.1f} | 1.0 |"
                )
                for name, url in scenarios.items():
                    if not url:
                        continue
                    ms = await _measure(client, url, args.requests, clients)
                    print(
                        f"| {name} | {clients} | {_pct(ms, 50):.1f} | {_pct(ms, 95):.1f} | "
                        f"{_pct(ms, 99):.1f} | {_pct(ms, 95) / floor95:.0f} |"
                    )
    finally:
        for server in (app, floor):
            os.killpg(server.pid, 15)
            server.wait(timeout=10)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    ap.add_argument("--requests", type=int, default=300, help="requests per scenario and run")
    ap.add_argument("--concurrency", type=int, default=4, help="clients in the load run")
    asyncio.run(main_async(ap.parse_args(argv)))
    return 0


if __name__ == "__main__":
    sys.exit(main())
