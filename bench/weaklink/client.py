"""The client side of the weak-link benchmark: runs inside the shaped network namespace
(``bench/weaklink/run.py`` starts it with ``ip netns exec``), talks to the API through
the proxy, prints one JSON object on stdout.

    python -m bench.weaklink.client open --base URL --token T [--mode seq|par] [--full]
    python -m bench.weaklink.client sync --base URL --token T [--cursor C] [--etags FILE]
    python -m bench.weaklink.client photo-post --base URL --token T --file F
    python -m bench.weaklink.client photo-tus --base URL --token T --file F --chunk-size N

Every request asks for compression as a phone does (``Accept-Encoding: gzip, br``).
Bytes on the wire are counted by the proxy, not here: this side reports statuses, the
decoded body sizes and seconds.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
import time
from pathlib import Path
from typing import Any

import httpx

ACCEPT = {"Accept-Encoding": "gzip, br", "Accept-Language": "vi"}
# what the app asks for when it opens, before issue 24: its own data, then reference data
PERSONAL = (
    "/api/v1/me",
    "/api/v1/reports/mine",
    "/api/v1/me/notifications",
    "/api/v1/me/notifications/unread-count",
    "/api/v1/me/dossiers",
    "/api/v1/me/health",
)
REFERENCE = ("/api/v1/categories", "/api/v1/units", "/api/v1/areas")
PAGED = ("/api/v1/reports/mine", "/api/v1/me/notifications", "/api/v1/me/dossiers")


def _client(base: str, token: str, connections: int) -> httpx.AsyncClient:
    return httpx.AsyncClient(
        base_url=base,
        headers={**ACCEPT, "Authorization": f"Bearer {token}"},
        limits=httpx.Limits(max_connections=connections, max_keepalive_connections=connections),
        timeout=httpx.Timeout(60.0),
        http2=False,
    )


async def _get_all(
    http: httpx.AsyncClient,
    path: str,
    full: bool,
    log: list[dict[str, Any]],
    etags: dict[str, str] | None = None,
) -> None:
    """One GET, or with ``full`` every page of a paged list (limit 100, following
    ``next_cursor``), as an app keeping its own copy of the list must. With ``etags``
    (the app's copy: URL -> ETag) each request is conditional (``If-None-Match``); a 304
    page's next cursor is the one the app kept (``etags["next " + URL]``)."""
    params: dict[str, Any] = {"limit": 100} if full and path in PAGED else {}
    while True:
        t0 = time.perf_counter()
        url = str(http.build_request("GET", path, params=params).url)
        headers = {"If-None-Match": etags[url]} if etags and url in etags else {}
        r = await http.get(path, params=params, headers=headers)
        log.append(
            {
                "path": path,
                "status": r.status_code,
                "body_bytes": len(r.content),
                "encoding": r.headers.get("content-encoding"),
                "etag": r.headers.get("etag"),
                "url": url,
                "seconds": round(time.perf_counter() - t0, 3),
            }
        )
        if not (full and path in PAGED and r.status_code in (200, 304)):
            return
        if r.status_code == 304:
            cursor = (etags or {}).get("next " + url)
        else:
            cursor = r.json().get("next_cursor")
            log[-1]["next_cursor"] = cursor
        if not cursor:
            return
        params = {"limit": 100, "cursor": cursor}


async def app_open(
    base: str, token: str, mode: str, full: bool, etags: dict[str, str] | None = None
) -> dict[str, Any]:
    """Today's app open: one request per list and per reference table. ``seq``: one
    keep-alive connection, one request after the other; ``par``: four connections, every
    list at once (a page of a list follows its previous page). ``etags``: conditional
    requests with what an earlier open kept (returned as ``etags``)."""
    log: list[dict[str, Any]] = []
    paths = PERSONAL + REFERENCE
    connections = 1 if mode == "seq" else 4
    async with _client(base, token, connections) as http:
        t0 = time.perf_counter()
        if mode == "seq":
            for path in paths:
                await _get_all(http, path, full, log, etags)
        else:
            await asyncio.gather(*(_get_all(http, p, full, log, etags) for p in paths))
        seconds = time.perf_counter() - t0
    return {
        "seconds": round(seconds, 3),
        "requests": len(log),
        "statuses": sorted({e["status"] for e in log}),
        "body_bytes": sum(e["body_bytes"] for e in log),
        "etags": {
            **{e["url"]: e["etag"] for e in log if e["etag"]},
            **{"next " + e["url"]: e["next_cursor"] for e in log if e.get("next_cursor")},
        },
        "log": log,
    }


async def sync(
    base: str, token: str, cursor: str | None, etags: dict[str, str] | None, limit: int
) -> dict[str, Any]:
    """After issue 24: ``GET /me/sync`` from the cursor the app kept (every page until
    ``has_more`` is false), and with ``etags`` the reference data revalidated with the
    ETags the app kept (``If-None-Match``; its cache's ``max-age`` ran out), on four
    connections at once. Without ``etags`` the reference data is still fresh in the app's
    HTTP cache (``public, max-age``): no request. The new cursor and ETags are returned."""
    log: list[dict[str, Any]] = []
    new_etags: dict[str, str] = {}
    out: dict[str, Any] = {}

    async def sync_pages(http: httpx.AsyncClient) -> None:
        current = cursor
        while True:
            t0 = time.perf_counter()
            params: dict[str, Any] = {"limit": limit}
            if current:
                params["cursor"] = current
            r = await http.get("/api/v1/me/sync", params=params)
            log.append(
                {
                    "path": "/api/v1/me/sync",
                    "status": r.status_code,
                    "body_bytes": len(r.content),
                    "encoding": r.headers.get("content-encoding"),
                    "seconds": round(time.perf_counter() - t0, 3),
                }
            )
            if r.status_code != 200:
                out["sync_error"] = r.text[:500]
                return
            page = r.json()
            out.setdefault("changes", []).append(_count_changes(page))
            current = page.get("cursor") or page.get("next_cursor")
            if not page.get("has_more"):
                out["cursor"] = current
                return

    async def revalidate(http: httpx.AsyncClient, path: str) -> None:
        assert etags is not None
        headers = {"If-None-Match": etags[path]} if path in etags else {}
        t0 = time.perf_counter()
        r = await http.get(path, headers=headers)
        log.append(
            {
                "path": path,
                "status": r.status_code,
                "body_bytes": len(r.content),
                "encoding": r.headers.get("content-encoding"),
                "seconds": round(time.perf_counter() - t0, 3),
            }
        )
        new_etags[path] = r.headers.get("etag") or etags.get(path, "")

    async with _client(base, token, 4) as http:
        t0 = time.perf_counter()
        reference = REFERENCE if etags is not None else ()
        await asyncio.gather(sync_pages(http), *(revalidate(http, p) for p in reference))
        seconds = time.perf_counter() - t0
    return {
        "seconds": round(seconds, 3),
        "requests": len(log),
        "statuses": sorted({e["status"] for e in log}),
        "body_bytes": sum(e["body_bytes"] for e in log),
        "etags": new_etags,
        **out,
        "log": log,
    }


def _count_changes(page: dict[str, Any]) -> dict[str, int]:
    """How many items of each type a sync page carries (``deleted`` apart)."""
    counts: dict[str, int] = {}
    for item in page.get("items", []):
        key = item.get("type", "?") + (" deleted" if item.get("deleted") else "")
        counts[key] = counts.get(key, 0) + 1
    return counts


async def photo_post(base: str, token: str, file: Path) -> dict[str, Any]:
    """Today's upload: the whole photo as one request body; a dropped connection means
    starting again from zero (after one second), until it is stored."""
    data = await asyncio.to_thread(file.read_bytes)
    attempts: list[dict[str, Any]] = []
    t0 = time.perf_counter()
    async with _client(base, token, 1) as http:
        while True:
            a0 = time.perf_counter()
            try:
                r = await http.post(
                    "/api/v1/photos", content=data, headers={"Content-Type": "image/jpeg"}
                )
            except httpx.TransportError as e:
                attempts.append({"error": type(e).__name__, "seconds": _since(a0)})
                await asyncio.sleep(1.0)
                continue
            attempts.append({"status": r.status_code, "seconds": _since(a0)})
            break
    return {
        "seconds": _since(t0),
        "attempts": attempts,
        "status": r.status_code,
        "photo_id": r.json().get("id") if r.status_code == 201 else None,
        "answer": r.text[:300] if r.status_code != 201 else None,
    }


def photo_tus(base: str, token: str, file: Path, chunk_size: int, endpoint: str) -> dict[str, Any]:
    """The same photo with the tus client ``tuspy``: created once, sent in PATCH chunks of
    ``chunk_size``; after a dropped connection tuspy asks the server for its offset
    (``HEAD``) and goes on from there (``retries``, one second apart)."""
    from tusclient import client as tus_client
    from tusclient.exceptions import TusCommunicationError

    t0 = time.perf_counter()
    tus = tus_client.TusClient(
        base + endpoint, headers={"Authorization": f"Bearer {token}", **ACCEPT}
    )
    uploader = tus.uploader(
        str(file),
        chunk_size=chunk_size,
        retries=20,
        retry_delay=1,
        metadata={"filename": file.name, "filetype": "image/jpeg"},
    )
    offsets = []
    error = None
    try:
        uploader.upload()
    except TusCommunicationError as e:
        error = f"{e}: {getattr(e, 'response_content', '')!r}"[:500]
    offsets.append(uploader.offset)
    result: dict[str, Any] = {
        "seconds": _since(t0),
        "url": uploader.url,
        "offset": uploader.offset,
        "size": file.stat().st_size,
        "chunk_size": chunk_size,
        "error": error,
    }
    return result


def _since(t0: float) -> float:
    return round(time.perf_counter() - t0, 3)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m bench.weaklink.client")
    ap.add_argument("scenario", choices=["open", "sync", "photo-post", "photo-tus"])
    ap.add_argument("--base", required=True)
    ap.add_argument("--token", required=True)
    ap.add_argument("--mode", choices=["seq", "par"], default="seq")
    ap.add_argument("--full", action="store_true", help="every page of every list")
    ap.add_argument("--cursor")
    ap.add_argument(
        "--etags", help="JSON file of path -> ETag: revalidate the reference data ('-': none yet)"
    )
    ap.add_argument("--limit", type=int, default=500, help="sync page size")
    ap.add_argument("--file", type=Path)
    ap.add_argument("--chunk-size", type=int, default=262_144)
    ap.add_argument("--endpoint", default="/api/v1/uploads")
    args = ap.parse_args(argv)
    etags = None
    if args.etags:
        etags = {} if args.etags == "-" else json.loads(Path(args.etags).read_text())
    if args.scenario == "open":
        out = asyncio.run(app_open(args.base, args.token, args.mode, args.full, etags))
    elif args.scenario == "sync":
        out = asyncio.run(sync(args.base, args.token, args.cursor, etags, args.limit))
    elif args.scenario == "photo-post":
        out = asyncio.run(photo_post(args.base, args.token, args.file))
    else:
        out = photo_tus(args.base, args.token, args.file, args.chunk_size, args.endpoint)
    json.dump(out, sys.stdout)
    return 0


if __name__ == "__main__":
    sys.exit(main())
