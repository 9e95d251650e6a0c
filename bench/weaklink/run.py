"""Issue 24's weak-link benchmark: app open and a 4 MB photo over 300 ms RTT, 1 Mbit/s,
dropped connections. Needs root (network namespaces, tc).

    bench/weaklink/run.sh before   # today's cost, on an export of --before-commit
    bench/weaklink/run.sh after    # the checkout as it is (ETags, sync, tus)
    bench/weaklink/run.sh all      # both
    # or: uv run python -m bench.weaklink.run {before,after,all} [--rounds 3] [--keep]

**The link.** A network namespace ``wl0`` joined to the host by a veth pair
(``wlh0`` on the host, 10.186.0.1; ``wlc0`` inside, 10.186.0.2), both ends shaped with
``tc qdisc add dev ... root tbf rate 1mbit burst 32kbit latency 400ms``: 1 Mbit/s each way
(the host end shapes what goes down to the phone, the inner end what goes up). The proxy
(``bench/weaklink/proxy.py``) listens on 10.186.0.1:18601 and forwards to the API on
127.0.0.1:18600 with 150 ms each way (300 ms RTT) and one more round trip for each new
connection (the TCP handshake). The client (``bench/weaklink/client.py``) runs inside the
namespace (``ip netns exec wl0``), so every byte it sends or receives crosses the shaped
veth and the proxy. The API (granian, one worker, as ``bench/run.py`` serves it) and
PostgreSQL/Redis run on the host, unshaped.

**The server.** ``before`` serves an export (``git archive``) of ``--before-commit`` (the
last commit before issue 24's code) with its own database ``w_weaklink_before``; ``after``
serves the checkout with ``w_weaklink_after``. Each database is created, migrated and
loaded by that tree's ``app.cli setup`` and seeded by ``bench/weaklink/seed.py`` (50
reports, 200 notifications, 10 dossiers through the signed ingest endpoint, a health book
through ``app.cli health-import``). Redis prefix ``w:weaklink-<phase>``; photos on a
temporary disk store. Everything (namespace, veth, granian, databases unless ``--keep``,
Redis keys) is removed at the end, also after an error.

**Cuts.** The photo scenarios arm the proxy with ``--cuts`` thresholds on the bytes sent up
by the client: with 3 cuts and a 4 MB photo the link drops when 1, 2 and 3 MB have gone up
(the connection carrying that byte is reset; what was in flight in the proxy is lost).

Results: printed, and written to ``bench/results/weaklink-<phase>-<timestamp>.json``.
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import contextlib
import hashlib
import hmac
import io
import json
import os
import random
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from bench.weaklink.proxy import WeakLinkProxy

ROOT = Path(__file__).resolve().parent.parent.parent
PYTHON = str(ROOT / ".venv" / "bin" / "python")
API_PORT = 18600
PROXY_PORT = 18601
NS, HOST_IF, NS_IF = "wl0", "wlh0", "wlc0"
HOST_IP, NS_IP = "10.186.0.1", "10.186.0.2"
TBF = "rate 1mbit burst 32kbit latency 400ms"
DELAY_S = 0.150
BEFORE_COMMIT = "aa96703"  # issue 24's foundation: migration stubs, no issue 24 code yet
PHOTO_BYTES = 4_000_000


def sh(*args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
    return subprocess.run(args, check=check, capture_output=True, text=True)


# --------------------------------------------------------------------------- the link


class Link:
    """The namespace, the veth pair and its two tbf qdiscs."""

    def up(self) -> None:
        self.down()
        sh("ip", "netns", "add", NS)
        sh("ip", "link", "add", HOST_IF, "type", "veth", "peer", "name", NS_IF, "netns", NS)
        sh("ip", "addr", "add", f"{HOST_IP}/30", "dev", HOST_IF)
        sh("ip", "link", "set", HOST_IF, "up")
        sh("ip", "netns", "exec", NS, "ip", "addr", "add", f"{NS_IP}/30", "dev", NS_IF)
        sh("ip", "netns", "exec", NS, "ip", "link", "set", NS_IF, "up")
        sh("ip", "netns", "exec", NS, "ip", "link", "set", "lo", "up")
        sh("tc", "qdisc", "add", "dev", HOST_IF, "root", "tbf", *TBF.split())
        inner = ("ip", "netns", "exec", NS)
        sh(*inner, "tc", "qdisc", "add", "dev", NS_IF, "root", "tbf", *TBF.split())

    def down(self) -> None:
        sh("ip", "link", "del", HOST_IF, check=False)
        sh("ip", "netns", "del", NS, check=False)

    def counters(self) -> dict[str, int]:
        """Bytes through the host end (IP packets, TCP/IP headers included): ``tx`` went
        down to the client, ``rx`` came up from it."""
        stats = json.loads(sh("ip", "-s", "-j", "link", "show", HOST_IF).stdout)[0]["stats64"]
        return {"down": stats["tx"]["bytes"], "up": stats["rx"]["bytes"]}

    def qdiscs(self) -> list[str]:
        return [
            sh("tc", "qdisc", "show", "dev", HOST_IF).stdout.strip(),
            sh("ip", "netns", "exec", NS, "tc", "qdisc", "show", "dev", NS_IF).stdout.strip(),
        ]


# ------------------------------------------------------------------------ the server


def database_url(name: str) -> str:
    return f"postgresql+asyncpg://postgres@127.0.0.1:5432/{name}"


def drop_database(name: str) -> None:
    sh("psql", "-h", "127.0.0.1", "-U", "postgres", "-c", f'DROP DATABASE IF EXISTS "{name}"')


def export_tree(commit: str, into: Path) -> Path:
    """The tree of ``commit`` (``git archive``), with the checkout's .venv beside it."""
    into.mkdir(parents=True, exist_ok=True)
    archive = subprocess.run(
        ["git", "-C", str(ROOT), "archive", commit], check=True, capture_output=True
    ).stdout
    subprocess.run(["tar", "-x", "-C", str(into)], input=archive, check=True)
    return into


def server_env(tree: Path, db: str, phase: str, storage: Path) -> dict[str, str]:
    env = dict(os.environ)
    env.update(
        PYTHONPATH=str(tree),
        DATABASE_URL=database_url(db),
        DB_POOL_SIZE="3",
        REDIS_PREFIX=f"w:weaklink-{phase}",
        STORAGE_DIR=str(storage),
        PUBLIC_BASE_URL=f"http://{HOST_IP}:{PROXY_PORT}",
        PHOTO_RATE_PER_RESIDENT="100000/hour",
        REPORT_RATE_PER_RESIDENT="100000/hour",
        UV_PYTHON_DOWNLOADS="never",
    )
    return env


class Server:
    def __init__(self, tree: Path, env: dict[str, str], log: Path) -> None:
        self.tree, self.env, self.log = tree, env, log
        self.proc: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        self.proc = subprocess.Popen(
            [PYTHON, "-m", "granian", "--interface", "asgi", "--factory", "app.main:create_app",
             "--host", "127.0.0.1", "--port", str(API_PORT), "--workers", "1",
             "--log-level", "warning"],
            cwd=self.tree,
            env=self.env,
            stdout=self.log.open("ab"),
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )  # fmt: skip
        import httpx

        for _ in range(120):
            if self.proc.poll() is not None:
                raise RuntimeError(f"granian exited: see {self.log}")
            with contextlib.suppress(httpx.HTTPError):
                if httpx.get(f"http://127.0.0.1:{API_PORT}/health/live").status_code == 200:
                    return
            time.sleep(0.5)
        raise RuntimeError("granian did not answer /health/live in 60 s")

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(self.proc.pid, signal.SIGTERM)
            try:
                self.proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(self.proc.pid, signal.SIGKILL)
                self.proc.wait()


def clear_redis(prefix: str) -> None:
    keys = sh("redis-cli", "--scan", "--pattern", f"{prefix}*").stdout.split()
    for i in range(0, len(keys), 500):
        sh("redis-cli", "del", *keys[i : i + 500], check=False)


# ----------------------------------------------------------------------- the seeding


def sign(secret: str, webhook_id: str, stamp: int, body: bytes) -> str:
    """Standard Webhooks: v1,<base64 HMAC-SHA256 of "{id}.{timestamp}.{body}">."""
    key = base64.b64decode(secret.removeprefix("whsec_"))
    mac = hmac.new(key, f"{webhook_id}.{stamp}.".encode() + body, hashlib.sha256)
    return "v1," + base64.b64encode(mac.digest()).decode()


def post_events(seeded: dict[str, Any], events: list[dict[str, Any]]) -> dict[str, Any]:
    import httpx

    body = json.dumps({"events": events}).encode()
    webhook_id = f"msg_{uuid.uuid4().hex}"
    stamp = int(time.time())
    r = httpx.post(
        f"http://127.0.0.1:{API_PORT}/api/v1/ingest/agencies/{seeded['agency']}/events",
        content=body,
        headers={
            "content-type": "application/json",
            "webhook-id": webhook_id,
            "webhook-timestamp": str(stamp),
            "webhook-signature": sign(seeded["agency_secret"], webhook_id, stamp, body),
        },
    )
    r.raise_for_status()
    return r.json()


def seed(tree: Path, env: dict[str, str], work: Path) -> dict[str, Any]:
    """The resident (seed.py, run with the measured tree's app), the health book."""
    out = subprocess.run(
        [PYTHON, str(ROOT / "bench" / "weaklink" / "seed.py"), "seed"],
        cwd=tree, env=env, check=True, capture_output=True, text=True,
    )  # fmt: skip
    seeded = json.loads(out.stdout.strip().splitlines()[-1])
    health = work / "health"
    subprocess.run(
        [PYTHON, "-m", "bench.health_seed", str(health), "--patients", "1", "--per-patient", "12"],
        cwd=ROOT, env={**env, "PYTHONPATH": str(ROOT)}, check=True, capture_output=True,
    )  # fmt: skip
    subprocess.run(
        [PYTHON, "-m", "app.cli", "health-import", str(health)],
        cwd=tree, env=env, check=True, capture_output=True,
    )  # fmt: skip
    return seeded


def seed_dossiers(seeded: dict[str, Any]) -> None:
    result = post_events(seeded, seeded["dossier_events"])
    applied = [r for r in result["results"] if r["result"] == "applied"]
    if len(applied) != len(seeded["dossier_events"]):
        raise RuntimeError(f"dossiers not all applied: {result}")


def seed_tool(tree: Path, env: dict[str, str], *args: str) -> Any:
    out = subprocess.run(
        [PYTHON, str(ROOT / "bench" / "weaklink" / "seed.py"), *args],
        cwd=tree, env=env, check=True, capture_output=True, text=True,
    )  # fmt: skip
    return json.loads(out.stdout.strip().splitlines()[-1])


def make_changes(tree: Path, env: dict[str, str], seeded: dict[str, Any], round_: int) -> dict:
    """A few things changed: 2 report status changes by the ward's officer (accept one
    assigned report, resolve one in progress; each notifies the resident), 1 dossier
    event from the agency, notifications up to 5 new ones."""
    import httpx

    before = seed_tool(tree, env, "last-notification", seeded["user_id"])
    base = f"http://127.0.0.1:{API_PORT}/api/v1"
    login = httpx.post(
        f"{base}/auth/staff/login",
        json={"email": seeded["staff_email"], "password": seeded["staff_password"]},
    )
    login.raise_for_status()
    staff = {"Authorization": f"Bearer {login.json()['access_token']}"}
    accepted = seeded["assigned"][round_]
    resolved = seeded["in_progress"][round_]
    r1 = httpx.post(f"{base}/console/reports/{accepted}/accept", headers=staff)
    r2 = httpx.post(
        f"{base}/console/reports/{resolved}/resolve",
        json={"answer": "Phường đã cho vá lại ổ gà, mời ông/bà kiểm tra và đánh giá."},
        headers=staff,
    )
    for r in (r1, r2):
        if r.status_code != 200:
            raise RuntimeError(f"staff action failed: {r.status_code} {r.text[:300]}")
    code = seeded["dossier_events"][round_]["dossier_code"]
    post_events(
        seeded,
        [
            {
                "id": f"evt-w-progress-{uuid.uuid4().hex}",
                "type": "dossier.progress",
                "dossier_code": code,
                "at": datetime.now(UTC).isoformat(),
                "seq": 1 + round_,
                "status": "supplement_requested",
                "handler": "Trần Thị Bình",
                "content": "Đề nghị bổ sung bản sao căn cước",
            }
        ],
    )
    topped = seed_tool(tree, env, "top-up", seeded["user_id"], str(before), "5")
    return {"accepted": accepted, "resolved": resolved, "dossier": code, "topped_up": topped}


# ------------------------------------------------------------------------- the photo


def make_photo(path: Path, target: int = PHOTO_BYTES) -> int:
    """A JPEG of noise (so nothing compresses it), just under ``target`` bytes."""
    from PIL import Image

    rng = random.Random(24)
    width = 1600
    height = 1200
    data = b""
    for _ in range(8):
        noise = rng.randbytes(width * height * 3)
        buf = io.BytesIO()
        Image.frombytes("RGB", (width, height), noise).save(buf, "JPEG", quality=92)
        data = buf.getvalue()
        scale = (target * 0.985 / len(data)) ** 0.5
        if 0.97 * target <= len(data) <= target:
            break
        width, height = int(width * scale), int(height * scale)
    path.write_bytes(data)
    return len(data)


# ------------------------------------------------------------------------ measuring


class Bench:
    def __init__(self, link: Link, proxy: WeakLinkProxy, token: str) -> None:
        self.link, self.proxy, self.token = link, proxy, token

    async def client(self, *args: str, cuts: list[int] | None = None) -> dict[str, Any]:
        """One client run inside the namespace, with the proxy's and the veth's counts."""
        self.proxy.reset()
        if cuts:
            self.proxy.arm(after_bytes=cuts)
        wire0 = self.link.counters()
        proc = await asyncio.create_subprocess_exec(
            "ip", "netns", "exec", NS, PYTHON, "-m", "bench.weaklink.client", *args,
            "--base", f"http://{HOST_IP}:{PROXY_PORT}", "--token", self.token,
            cwd=ROOT, env={**os.environ, "PYTHONPATH": str(ROOT)},
            stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
        )  # fmt: skip
        try:
            stdout, stderr = await proc.communicate()
        except asyncio.CancelledError:
            with contextlib.suppress(ProcessLookupError):
                proc.kill()
            raise
        await asyncio.sleep(0.5)  # the last packets' counters
        wire1 = self.link.counters()
        if proc.returncode != 0:
            raise RuntimeError(f"client {args} failed: {stderr.decode()[-2000:]}")
        result = json.loads(stdout)
        stats = self.proxy.stats()
        result["proxy"] = {k: v for k, v in stats.items() if k != "cut_log"}
        result["cut_log"] = stats["cut_log"]
        result["wire"] = {k: wire1[k] - wire0[k] for k in wire0}
        return result


def median_of(runs: list[dict[str, Any]], *keys: str) -> float:
    values = []
    for run in runs:
        value: Any = run
        for key in keys:
            value = value[key]
        values.append(value)
    return statistics.median(values)


def summary(runs: list[dict[str, Any]]) -> dict[str, Any]:
    return {
        "runs": len(runs),
        "seconds_median": round(median_of(runs, "seconds"), 2),
        "seconds_all": [r["seconds"] for r in runs],
        "requests": runs[0].get("requests"),
        "statuses": runs[0].get("statuses"),
        "bytes_up_median": median_of(runs, "proxy", "up"),
        "bytes_down_median": median_of(runs, "proxy", "down"),
        "wire_up_median": median_of(runs, "wire", "up"),
        "wire_down_median": median_of(runs, "wire", "down"),
        "connections": runs[0]["proxy"]["connections"],
    }


async def measure_open(bench: Bench, rounds: int, work: Path, conditional: bool) -> dict[str, Any]:
    results: dict[str, Any] = {}
    variants = {
        "open_screens_seq": ["open", "--mode", "seq"],
        "open_screens_par4": ["open", "--mode", "par"],
        "open_full_seq": ["open", "--mode", "seq", "--full"],
        "open_full_par4": ["open", "--mode", "par", "--full"],
    }
    runs: dict[str, list[dict[str, Any]]] = {k: [] for k in variants}
    await bench.client("open", "--mode", "par", "--full")  # warm-up, not counted
    for _ in range(rounds):  # interleaved
        for name, args in variants.items():
            runs[name].append(await bench.client(*args))
    if conditional:
        # the app kept every ETag of a full open: the same open again, every request
        # conditional (If-None-Match), nothing changed in between
        kept = work / "open-etags.json"
        kept.write_text(json.dumps(runs["open_full_par4"][-1]["etags"]))
        for name, args in {
            "open_full_seq_conditional": ["open", "--mode", "seq", "--full"],
            "open_full_par4_conditional": ["open", "--mode", "par", "--full"],
        }.items():
            runs[name] = [await bench.client(*args, "--etags", str(kept)) for _ in range(rounds)]
    for name, rs in runs.items():
        results[name] = summary(rs)
        results[name]["per_request"] = [
            {k: e[k] for k in ("path", "status", "body_bytes", "encoding")} for e in rs[0]["log"]
        ]
        print(name, json.dumps(results[name] | {"per_request": "…"}), flush=True)
    return results


async def measure_photo_post(bench: Bench, photo: Path, size: int, rounds: int, cuts: int):
    thresholds = [size * k // (cuts + 1) for k in range(1, cuts + 1)]
    runs = []
    for _ in range(rounds):
        run = await bench.client("photo-post", "--file", str(photo), cuts=thresholds)
        runs.append(run)
        shown = {k: run[k] for k in ("seconds", "proxy", "attempts")}
        print("photo_post", json.dumps(shown), flush=True)
    out = summary(runs)
    out["cuts_at_bytes_up"] = thresholds
    out["sent_twice_median"] = median_of(runs, "proxy", "up") - size
    out["photo_bytes"] = size
    out["attempts"] = [len(r["attempts"]) for r in runs]
    out["statuses"] = [r["status"] for r in runs]
    return out


async def measure_photo_tus(
    bench: Bench, photo: Path, size: int, rounds: int, cuts: int, chunk: int
) -> dict[str, Any]:
    thresholds = [size * k // (cuts + 1) for k in range(1, cuts + 1)]
    runs = []
    for _ in range(rounds):
        run = await bench.client(
            "photo-tus", "--file", str(photo), "--chunk-size", str(chunk), cuts=thresholds
        )
        if run.get("url"):
            run["final_head"] = await asyncio.to_thread(tus_head, run["url"], bench.token)
        runs.append(run)
        shown = {k: run[k] for k in ("seconds", "proxy", "offset", "error")}
        print("photo_tus", json.dumps(shown), flush=True)
    out = summary(runs)
    out["cuts_at_bytes_up"] = thresholds
    out["chunk_size"] = chunk
    out["photo_bytes"] = size
    # everything sent up beyond the photo itself: bytes lost at the cuts and sent again,
    # plus the HTTP requests' headers (creation, HEADs, PATCH headers)
    out["sent_twice_median"] = median_of(runs, "proxy", "up") - size
    out["sent_twice_share_median"] = round(out["sent_twice_median"] / size, 4)
    out["finished"] = [r["offset"] == size and not r["error"] for r in runs]
    out["final_head"] = [r.get("final_head") for r in runs]
    return out


async def measure_sync(
    bench: Bench, tree: Path, env: dict[str, str], seeded: dict[str, Any], rounds: int, work: Path
) -> dict[str, Any]:
    """The first sync (no cursor: the current state; the reference data fetched and its
    ETags kept), then per round, from the cursor the app kept: nothing changed, then a few
    things changed (``make_changes``); each with the reference data still fresh in the
    app's cache (the sync call alone) and with it revalidated (``If-None-Match``)."""
    results: dict[str, Any] = {}
    first = await bench.client("sync", "--etags", "-")
    results["sync_first"] = summary([first]) | {"changes": first.get("changes")}
    print("sync_first", json.dumps(results["sync_first"]), flush=True)
    if "cursor" not in first:
        results["error"] = first.get("sync_error") or "no cursor"
        return results
    cursor = first["cursor"]
    etags = work / "etags.json"
    etags.write_text(json.dumps(first["etags"]))
    runs: dict[str, list[dict[str, Any]]] = {
        "nothing_changed_sync": [],
        "nothing_changed_sync_and_reference": [],
        "few_changed_sync": [],
        "few_changed_sync_and_reference": [],
    }
    made = []
    for round_ in range(rounds):
        runs["nothing_changed_sync"].append(await bench.client("sync", "--cursor", cursor))
        runs["nothing_changed_sync_and_reference"].append(
            await bench.client("sync", "--cursor", cursor, "--etags", str(etags))
        )
        made.append(await asyncio.to_thread(make_changes, tree, env, seeded, round_))
        few = await bench.client("sync", "--cursor", cursor)
        runs["few_changed_sync"].append(few)
        runs["few_changed_sync_and_reference"].append(
            await bench.client("sync", "--cursor", cursor, "--etags", str(etags))
        )
        cursor = few.get("cursor", cursor)
    for name, rs in runs.items():
        results[name] = summary(rs) | {
            "changes": [r.get("changes") for r in rs],
            "per_request": [
                {k: e[k] for k in ("path", "status", "body_bytes", "encoding")}
                for e in rs[0]["log"]
            ],
        }
        print(name, json.dumps(results[name]), flush=True)
    results["made"] = made
    return results


def tus_head(url: str, token: str) -> dict[str, Any]:
    """The finished upload as the server tells it (off the link, straight to the API)."""
    import httpx

    direct = url.replace(f"http://{HOST_IP}:{PROXY_PORT}", f"http://127.0.0.1:{API_PORT}")
    r = httpx.head(direct, headers={"Authorization": f"Bearer {token}", "Tus-Resumable": "1.0.0"})
    return {
        "status": r.status_code,
        "headers": {
            k: v
            for k, v in r.headers.items()
            if k.lower().startswith(("upload-offset", "upload-length", "photo-id"))
        },
    }


# ------------------------------------------------------------------------------ main


async def run_phase(phase: str, args: argparse.Namespace, link: Link, work: Path) -> dict:
    tree = ROOT if phase == "after" else export_tree(args.before_commit, work / "tree")
    db = f"w_weaklink_{phase}"
    storage = work / "storage"
    env = server_env(tree, db, phase, storage)
    drop_database(db)
    setup = [PYTHON, "-m", "app.cli", "setup"]
    await asyncio.to_thread(
        subprocess.run, setup, cwd=tree, env=env, check=True, capture_output=True
    )
    server = Server(tree, env, work / "granian.log")
    proxy = WeakLinkProxy("127.0.0.1", API_PORT, delay=DELAY_S)
    results: dict[str, Any] = {
        "phase": phase,
        "tree": str(tree) if phase == "after" else f"git archive {args.before_commit}",
        "commit": sh("git", "-C", str(ROOT), "rev-parse", "--short", "HEAD").stdout.strip()
        if phase == "after"
        else args.before_commit,
        "at": datetime.now(UTC).isoformat(timespec="seconds"),
        "link": {"tbf": link.qdiscs(), "delay_ms_each_way": DELAY_S * 1000},
        "rounds": args.rounds,
        "load_average_1min_start": os.getloadavg()[0],
    }
    try:
        server.start()
        seeded = await asyncio.to_thread(seed, tree, env, work)
        await asyncio.to_thread(seed_dossiers, seeded)
        await proxy.start(HOST_IP, PROXY_PORT)
        bench = Bench(link, proxy, seeded["token"])
        photo = work / "photo.jpg"
        size = make_photo(photo)
        if "open" in args.only:
            results["open"] = await measure_open(bench, args.rounds, work, phase == "after")
        if phase == "after" and "sync" in args.only:
            results["sync"] = await measure_sync(bench, tree, env, seeded, args.rounds, work)
        if "photo" in args.only:
            if phase == "before":
                results["photo_post"] = await measure_photo_post(
                    bench, photo, size, args.rounds, args.cuts
                )
            else:
                results["photo_tus"] = await measure_photo_tus(
                    bench, photo, size, args.rounds, args.cuts, args.chunk_size
                )
    finally:
        results["load_average_1min_end"] = os.getloadavg()[0]
        await proxy.close()
        server.stop()
        clear_redis(env["REDIS_PREFIX"])
        if not args.keep:
            drop_database(db)
    return results


async def main_async(args: argparse.Namespace) -> int:
    if os.geteuid() != 0:
        print("needs root (ip netns, tc)", file=sys.stderr)
        return 2
    # SIGTERM cancels the run, so every finally below cleans up (server, namespace, ...)
    task = asyncio.current_task()
    assert task is not None
    asyncio.get_running_loop().add_signal_handler(signal.SIGTERM, task.cancel)
    phases = ["before", "after"] if args.phase == "all" else [args.phase]
    link = Link()
    out_dir = ROOT / "bench" / "results"
    out_dir.mkdir(exist_ok=True)
    stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%S")
    try:
        link.up()
        for phase in phases:
            work = Path(tempfile.mkdtemp(prefix=f"w_weaklink_{phase}_"))
            try:
                results = await run_phase(phase, args, link, work)
            finally:
                if (work / "granian.log").exists():
                    shutil.copy(work / "granian.log", out_dir / f"weaklink-{phase}-{stamp}.log")
                shutil.rmtree(work, ignore_errors=True)
            path = out_dir / f"weaklink-{phase}-{stamp}.json"
            path.write_text(json.dumps(results, indent=2))
            print(f"{phase}: {path}", flush=True)
    finally:
        link.down()
    return 0


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(
        prog="python -m bench.weaklink.run", description=__doc__.split("\n\n")[0]
    )
    ap.add_argument("phase", choices=["before", "after", "all"])
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--cuts", type=int, default=3, help="dropped connections per photo upload")
    ap.add_argument("--chunk-size", type=int, default=1_048_576, help="tuspy's PATCH size")
    ap.add_argument("--before-commit", default=BEFORE_COMMIT)
    ap.add_argument(
        "--only",
        type=lambda s: set(s.split(",")),
        default={"open", "sync", "photo"},
        help="open,sync,photo",
    )
    ap.add_argument("--keep", action="store_true", help="keep the databases")
    args = ap.parse_args(argv)
    return asyncio.run(main_async(args))


if __name__ == "__main__":
    sys.exit(main())
