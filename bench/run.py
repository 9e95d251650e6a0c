"""Benchmark harness: scenarios vs the framework floor, interleaved, medians of N rounds.

    uv run python -m bench.run --start-app             # start app.main:create_app too
    uv run python -m bench.run --target-url http://127.0.0.1:8000
    uv run python -m bench.run --self-test --duration 3 --rounds 1

Serves ``bench.floor`` with granian (one worker, or ``--workers N``) on a free port, and
either starts the app with the same granian flags or uses an already running server. Then, for each
round and each scenario, runs the scenario and the floor under the same load, back to
back (alternating which goes first), and prints medians over the rounds and the
ratios to the floor. Results go to ``bench/results/<timestamp>.json``.
See bench/README.md.
"""

from __future__ import annotations

import argparse
import asyncio
import datetime as dt
import http.client
import inspect
import json
import math
import os
import platform
import random
import resource
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import time
from importlib import metadata
from pathlib import Path

from bench import loadgen
from bench.loadgen import LoadSpec, parse_expect
from bench.scenarios import ALL, FLOOR_PATHS, SCENARIOS, SELF_TEST, Scenario

ROOT = Path(__file__).resolve().parent.parent
RESULTS = Path(__file__).resolve().parent / "results"
GRANIAN_FLAGS = ["--interface", "asgi", "--workers", "1", "--log-level", "warning"]


# ----------------------------------------------------------------------------- machine


def cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "?"


def cpu_busy(seconds: float = 1.0) -> float:
    """Share of all CPUs busy over a short window (what others are doing before we start)."""

    def sample() -> tuple[int, int]:
        fields = [int(x) for x in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:]]
        idle = fields[3] + (fields[4] if len(fields) > 4 else 0)
        return sum(fields), idle

    try:
        t1, i1 = sample()
        time.sleep(seconds)
        t2, i2 = sample()
        return 100.0 * (1 - (i2 - i1) / max(1, t2 - t1))
    except OSError:
        return float("nan")


def version(pkg: str) -> str:
    try:
        return metadata.version(pkg)
    except metadata.PackageNotFoundError:
        return "-"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


CLK_TCK = os.sysconf("SC_CLK_TCK")


def _proc_tree(pid: int) -> list[int]:
    """pid and all its descendants (granian's main process and its workers)."""
    out, todo = [], [pid]
    while todo:
        p = todo.pop()
        out.append(p)
        try:
            for task in os.listdir(f"/proc/{p}/task"):
                with open(f"/proc/{p}/task/{task}/children") as f:
                    todo.extend(int(c) for c in f.read().split())
        except OSError:
            pass
    return out


def _proc_cpu_s(pid: int) -> float:
    """utime + stime of a process tree, seconds."""
    total = 0
    for p in _proc_tree(pid):
        try:
            with open(f"/proc/{p}/stat") as f:
                fields = f.read().rsplit(")", 1)[1].split()
            total += int(fields[11]) + int(fields[12])  # utime, stime
        except (OSError, IndexError, ValueError):
            pass
    return total / CLK_TCK


def _machine_cpu_s() -> float:
    """Busy CPU seconds of the whole machine since boot (all CPUs, not idle/iowait)."""
    try:
        fields = [int(x) for x in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:]]
    except OSError:
        return float("nan")
    idle = fields[3] + (fields[4] if len(fields) > 4 else 0)
    return (sum(fields[:8]) - idle) / CLK_TCK


def _pg_backends_cpu(database: str | None) -> dict[int, float]:
    """CPU seconds (utime + stime) of each PostgreSQL backend connected to ``database``
    (their process title is ``postgres: <cluster>: <user> <database> <client> <state>``).
    Other databases' backends (a test suite running beside) and PostgreSQL's background
    processes are left out."""
    out: dict[int, float] = {}
    if not database:
        return out
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/cmdline", "rb") as f:
                title = f.read(200).decode("utf-8", "replace")
            if not title.startswith("postgres: ") or f" {database} " not in title:
                continue
            with open(f"/proc/{entry}/stat") as f:
                fields = f.read().rsplit(")", 1)[1].split()
            out[int(entry)] = (int(fields[11]) + int(fields[12])) / CLK_TCK
        except (OSError, IndexError, ValueError):
            pass
    return out


def _pg_cpu_used(before: dict[int, float], after: dict[int, float]) -> float:
    """CPU the backends used between two samples: a backend started meanwhile counts
    whole; one that exited meanwhile took its time with it (not counted: a pool that
    keeps its connections open loses nothing)."""
    return sum(cpu - before.get(pid, 0.0) for pid, cpu in after.items())


def bench_database() -> str | None:
    """The database the app and the floor use (DATABASE_URL's path), for the CPU meter."""
    url = os.environ.get("DATABASE_URL", "")
    name = url.rsplit("/", 1)[-1].split("?", 1)[0] if "://" in url else ""
    return name or None


class CpuMeter:
    """CPU used during one measured run: by the server, by the load generator, by the
    PostgreSQL backends of the bench database, by others.

    The load generator is a child process, so its time shows in RUSAGE_CHILDREN once it
    has been waited for. "Others" is everything else on the machine (Redis, PostgreSQL's
    background processes and other databases, whatever else runs there) in cores,
    averaged over the run.
    """

    def __init__(self, server_pid: int | None, database: str | None = None):
        self.server_pid = server_pid
        self.database = database

    def __enter__(self) -> CpuMeter:
        self.t0 = time.monotonic()
        self.m0 = _machine_cpu_s()
        self.s0 = _proc_cpu_s(self.server_pid) if self.server_pid else float("nan")
        self.p0 = _pg_backends_cpu(self.database)
        ru = resource.getrusage(resource.RUSAGE_CHILDREN)
        self.c0 = ru.ru_utime + ru.ru_stime
        return self

    def __exit__(self, *exc) -> None:
        wall = max(1e-6, time.monotonic() - self.t0)
        machine = _machine_cpu_s() - self.m0
        server = (_proc_cpu_s(self.server_pid) - self.s0) if self.server_pid else float("nan")
        ru = resource.getrusage(resource.RUSAGE_CHILDREN)
        loadgen = ru.ru_utime + ru.ru_stime - self.c0
        db = _pg_cpu_used(self.p0, _pg_backends_cpu(self.database)) if self.database else math.nan
        others = (
            machine
            - loadgen
            - (0.0 if math.isnan(server) else server)
            - (0.0 if math.isnan(db) else db)
        )
        self.result = {
            "wall_s": round(wall, 3),
            "server_cpu_s": round(server, 3),
            "server_cores": round(server / wall, 3),
            "db_cpu_s": round(db, 3),
            "db_cores": round(db / wall, 3),
            "loadgen_cores": round(loadgen / wall, 3),
            "others_cores": round(max(0.0, others) / wall, 3),
        }


# ----------------------------------------------------------------------------- servers


class Server:
    """One granian process group that we started and will stop."""

    def __init__(
        self,
        name: str,
        target: str,
        *,
        factory: bool,
        cpus: list[int] | None,
        extra: list[str],
        ready_path: str,
        log_dir: Path,
        workers: int = 1,
    ):
        self.name = name
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.ready_path = ready_path
        granian = Path(sys.executable).with_name("granian")
        cmd = [str(granian if granian.exists() else shutil.which("granian") or "granian")]
        flags = list(GRANIAN_FLAGS)
        flags[flags.index("--workers") + 1] = str(workers)
        cmd += [*flags, *extra, "--host", "127.0.0.1", "--port", str(self.port)]
        if factory:
            cmd.append("--factory")
        cmd.append(target)
        if cpus:
            cmd = ["taskset", "-c", ",".join(map(str, cpus)), *cmd]
        self.cmd = cmd
        self.log_path = log_dir / f"{name}.log"
        self.proc: subprocess.Popen | None = None

    def start(self, timeout: float = 60.0) -> None:
        self.log = open(self.log_path, "w")  # noqa: SIM115 - lives as long as the server
        self.proc = subprocess.Popen(
            self.cmd, cwd=ROOT, stdout=self.log, stderr=subprocess.STDOUT, start_new_session=True
        )
        deadline = time.monotonic() + timeout
        last = "no answer"
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(
                    f"{self.name} exited with {self.proc.returncode}:\n{self.log_tail()}"
                )
            try:
                conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=2)
                conn.request("GET", self.ready_path)
                status = conn.getresponse().status
                conn.close()
                if status == 200:
                    return
                last = f"GET {self.ready_path} -> {status}"
            except OSError as exc:
                last = str(exc)
            time.sleep(0.2)
        raise RuntimeError(f"{self.name} not ready after {timeout}s ({last}):\n{self.log_tail()}")

    def alive(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def log_tail(self, n: int = 30) -> str:
        try:
            return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-n:])
        except OSError:
            return ""

    def stop(self) -> None:
        if self.proc is None or self.proc.poll() is not None:
            return
        try:
            os.killpg(self.proc.pid, signal.SIGTERM)  # our own session: granian + workers
            self.proc.wait(10)
        except subprocess.TimeoutExpired:
            os.killpg(self.proc.pid, signal.SIGKILL)
            self.proc.wait(5)
        except ProcessLookupError:
            pass
        self.log.close()


# ----------------------------------------------------------------------------- running


def run_setup(sc: Scenario, base_url: str) -> dict[str, list[str]]:
    values = {k: list(v) for k, v in sc.values.items()}
    if sc.setup is not None:
        got = sc.setup(base_url)
        if inspect.isawaitable(got):
            got = asyncio.run(_await(got))
        values.update(got)
    return values


async def _await(aw):
    return await aw


def median(xs: list[float]) -> float:
    xs = [x for x in xs if not math.isnan(x)]
    return statistics.median(xs) if xs else float("nan")


def summarize(results: list[dict]) -> dict:
    """Medians over rounds, total errors."""
    ok = [r for r in results if "error" not in r]
    errs: dict[str, dict[str, int]] = {"status": {}, "socket": {}}
    for r in ok:
        for kind in ("status", "socket"):
            for k, n in r["errors"][kind].items():
                errs[kind][k] = errs[kind].get(k, 0) + n
    rps = [r["ok_rps"] for r in ok]
    return {
        "rounds": len(ok),
        "failed_rounds": len(results) - len(ok),
        "ok_rps": median(rps),
        "rps_spread_pct": (
            100.0 * (max(rps) - min(rps)) / median(rps) if len(rps) > 1 and median(rps) else 0.0
        ),
        "latency_ms": {
            k: median([r["latency_ms"][k] for r in ok]) for k in ("p50", "p95", "p99", "max")
        },
        "requests": sum(r["requests"] for r in ok),
        "error_count": sum(r["error_count"] for r in ok),
        "errors": errs,
        "cpu": {
            k: median([r["cpu"].get(k, float("nan")) for r in ok if "cpu" in r])
            for k in (
                "server_us_per_req",
                "server_cores",
                "db_us_per_req",
                "db_cores",
                "loadgen_cores",
                "others_cores",
            )
        },
    }


def no_nan(obj):
    """JSON has no NaN: write null instead."""
    if isinstance(obj, float) and math.isnan(obj):
        return None
    if isinstance(obj, dict):
        return {k: no_nan(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [no_nan(v) for v in obj]
    return obj


def ratio(a: float, b: float) -> float:
    return a / b if b and not (math.isnan(a) or math.isnan(b)) else float("nan")


def fmt_num(x: float, digits: int = 0) -> str:
    if math.isnan(x):
        return "-"
    return f"{x:,.{digits}f}"


def print_table(rows: list[dict]) -> None:
    head = (
        f"{'scenario':<24} {'floor':<8} {'load':<10} {'req/s':>9} {'±%':>4} {'floor':>9} "
        f"{'ratio':>6} {'p50':>7} {'p95':>7} {'p99':>7} {'max':>7} {'fl p99':>7} "
        f"{'p99 x':>6} {'errors':>7}"
    )
    print(head)
    print("-" * len(head))
    for row in rows:
        s, f, sc = row["median"], row["floor_median"], row["config"]
        load = f"{sc['rate']:g}/s" if sc["rate"] else f"c{sc['concurrency']}"
        lat = s["latency_ms"]
        print(
            f"{row['name']:<24} {sc['floor']:<8} {load:<10} {fmt_num(s['ok_rps']):>9} "
            f"{fmt_num(s['rps_spread_pct']):>4} {fmt_num(f['ok_rps']):>9} "
            f"{fmt_num(row['ratio']['throughput'], 2):>6} {fmt_num(lat['p50'], 2):>7} "
            f"{fmt_num(lat['p95'], 2):>7} {fmt_num(lat['p99'], 2):>7} {fmt_num(lat['max'], 1):>7} "
            f"{fmt_num(f['latency_ms']['p99'], 2):>7} {fmt_num(row['ratio']['p99'], 2):>6} "
            f"{s['error_count']:>7}"
        )
        if s["error_count"] or f["error_count"]:
            print(f"{'':<24} errors: scenario {s['errors']}  floor {f['errors']}")
        if s["failed_rounds"] or f["failed_rounds"]:
            print(
                f"{'':<24} failed rounds: scenario {s['failed_rounds']}, "
                f"floor {f['failed_rounds']} (see the JSON)"
            )
    print(
        "req/s = successful responses per second (median of rounds); ±% = spread of the "
        "rounds (max-min)/median;\nratio = req/s / floor req/s; latencies in ms (medians "
        "of per-round percentiles); p99 x = p99 / floor p99.\nOpen-loop rows (N/s): "
        "latency counts from when each request was due; their req/s is the offered rate."
    )
    print()
    head = (
        f"{'CPU (medians)':<24} {'srv us/req':>10} {'floor':>8} {'ratio':>6} "
        f"{'db us/req':>9} {'floor':>7} {'srv cores':>9} {'floor':>6} {'db cores':>8} "
        f"{'loadgen':>7} {'others':>7} {'fl others':>9}"
    )
    print(head)
    print("-" * len(head))
    for row in rows:
        c, fc = row["median"]["cpu"], row["floor_median"]["cpu"]
        print(
            f"{row['name']:<24} {fmt_num(c['server_us_per_req'], 1):>10} "
            f"{fmt_num(fc['server_us_per_req'], 1):>8} {fmt_num(row['ratio']['cpu'], 2):>6} "
            f"{fmt_num(c['db_us_per_req'], 1):>9} {fmt_num(fc['db_us_per_req'], 1):>7} "
            f"{fmt_num(c['server_cores'], 2):>9} {fmt_num(fc['server_cores'], 2):>6} "
            f"{fmt_num(c['db_cores'], 2):>8} "
            f"{fmt_num(c['loadgen_cores'], 2):>7} {fmt_num(c['others_cores'], 2):>7} "
            f"{fmt_num(fc['others_cores'], 2):>9}"
        )
    print(
        "srv us/req = server process CPU time per response (less sensitive to noise than "
        "req/s);\ndb us/req = CPU of the PostgreSQL backends connected to the bench "
        "database (DATABASE_URL) per response;\ncores = CPU used during the run, in cores; "
        "others = everything else (Redis, other\ndatabases, PostgreSQL's background "
        "processes, other jobs). A busy 'others' means a noisy run.\nAt a fixed rate the "
        "server is mostly idle, so us/req there includes idle overhead: compare "
        "closed-loop rows."
    )


def main(argv: list[str] | None = None) -> int:  # noqa: C901 (the command line: a branch per option)
    ap = argparse.ArgumentParser(
        prog="python -m bench.run",
        description="Run the benchmark scenarios against a server and the framework floor.",
    )
    tgt = ap.add_mutually_exclusive_group()
    tgt.add_argument("--target-url", help="an already running server, e.g. http://127.0.0.1:8000")
    tgt.add_argument(
        "--start-app",
        action="store_true",
        help="start the app with granian (same flags as the floor)",
    )
    tgt.add_argument(
        "--self-test",
        action="store_true",
        help="serve bench.floor as the app and run the SELF_TEST scenarios (ratios should be ~1.0)",
    )
    ap.add_argument(
        "--app",
        default="app.main:create_app",
        help="granian target for --start-app (default: %(default)s)",
    )
    ap.add_argument("--no-factory", action="store_true", help="--app is an app, not a factory")
    ap.add_argument(
        "--ready-path",
        default="/health/live",
        help="GET this until 200 before measuring the app (default: %(default)s)",
    )
    ap.add_argument(
        "--granian-arg",
        action="append",
        default=[],
        metavar="ARG",
        help="extra granian argument for both servers, repeatable, "
        "e.g. --granian-arg=--loop --granian-arg=uvloop",
    )
    ap.add_argument(
        "-s",
        "--scenarios",
        help="comma-separated names (default: all of SCENARIOS, or SELF_TEST with --self-test)",
    )
    ap.add_argument("--list", action="store_true", help="list the scenarios and exit")
    ap.add_argument("-r", "--rounds", type=int, default=3)
    ap.add_argument(
        "-d",
        "--duration",
        type=float,
        help="seconds per measured run; overrides every scenario (default: "
        "the scenario's, else 10)",
    )
    ap.add_argument(
        "-c",
        "--concurrency",
        type=int,
        help="connections; overrides every scenario (default: the scenario's, else 64)",
    )
    ap.add_argument(
        "--warmup",
        type=float,
        default=1.0,
        help="seconds of discarded load before each measured run (default: 1)",
    )
    ap.add_argument("--timeout", type=float, default=10.0, help="per request, seconds")
    ap.add_argument(
        "--engine",
        choices=("auto", "wrk", "python"),
        default="auto",
        help="auto: wrk for closed loop, python for --rate scenarios",
    )
    ap.add_argument("--no-install", action="store_true", help="never apt-get install wrk")
    ap.add_argument(
        "--workers",
        type=int,
        default=1,
        help="granian workers for both servers, app and floor (default: %(default)s); with "
        "more than one the servers are not pinned unless --server-cpus says where",
    )
    ap.add_argument("--no-pin", action="store_true", help="do not use taskset")
    ap.add_argument("--server-cpus", help="CPUs for the servers (default: the last one)")
    ap.add_argument("--loadgen-cpus", help="CPUs for the load generator (default: the rest)")
    ap.add_argument("--out", type=Path, default=RESULTS, help="results directory")
    args = ap.parse_args(argv)

    if args.list:
        for title, group in (("SCENARIOS", SCENARIOS), ("SELF_TEST", SELF_TEST)):
            print(f"{title}:")
            for sc in group:
                load = f"rate {sc.rate:g}/s" if sc.rate else "closed loop"
                print(
                    f"  {sc.name:<24} {sc.method:<6} {sc.path:<40} {load:<12} vs {sc.floor}"
                    f"  {sc.description}"
                )
        return 0
    if not (args.target_url or args.start_app or args.self_test):
        ap.error("give --target-url URL, --start-app or --self-test")

    if args.scenarios:
        names = [n.strip() for n in args.scenarios.split(",") if n.strip()]
        unknown = [n for n in names if n not in ALL]
        if unknown:
            ap.error(f"unknown scenarios {unknown}; see --list")
        scenarios = [ALL[n] for n in names]
    else:
        scenarios = SELF_TEST if args.self_test else SCENARIOS
    if args.rounds < 1:
        ap.error("--rounds must be >= 1")
    if args.workers < 1:
        ap.error("--workers must be >= 1")

    # --- pinning plan
    cpus = sorted(os.sched_getaffinity(0))
    pin_note = ""
    server_cpus: list[int] | None = None
    loadgen_cpus: list[int] | None = None
    if args.no_pin:
        pin_note = "no pinning (--no-pin)"
    elif not shutil.which("taskset"):
        pin_note = "no pinning (taskset not found; Debian package util-linux)"
    elif len(cpus) < 2:
        pin_note = f"no pinning (only CPU {cpus} available)"
    else:
        if args.server_cpus:
            server_cpus = [int(c) for c in args.server_cpus.split(",")]
        elif args.workers == 1:
            server_cpus = [cpus[-1]]
        # else: several workers share every CPU (with PostgreSQL and Redis), as they
        # would in a small deployment; only the load generator is pinned
        loadgen_cpus = (
            [int(c) for c in args.loadgen_cpus.split(",")]
            if args.loadgen_cpus
            else [c for c in cpus if c not in (server_cpus or [cpus[-1]])] or cpus
        )
    external = bool(args.target_url)
    floor_cpus = None if external else server_cpus  # the floor gets what the target gets
    if loadgen_cpus:
        if external:
            pin_note = (
                f"load generator on CPU {loadgen_cpus} (taskset); servers NOT pinned "
                "(the target was started elsewhere, so the floor is left unpinned too)"
            )
        elif server_cpus is None:
            pin_note = (
                f"load generator on CPU {loadgen_cpus} (taskset); servers ({args.workers} "
                "workers each) NOT pinned; PostgreSQL/Redis are not pinned"
            )
        else:
            pin_note = (
                f"servers on CPU {server_cpus}, load generator on CPU {loadgen_cpus} "
                "(taskset); PostgreSQL/Redis are not pinned"
            )
    wrk_threads = len(loadgen_cpus) if loadgen_cpus else 1

    # --- engine
    wrk_path = None
    needs_closed = any(sc.rate is None for sc in scenarios)
    if args.engine != "python" and needs_closed:
        wrk_path = loadgen.ensure_wrk(install=not args.no_install)
        if not wrk_path:
            if args.engine == "wrk":
                print("bench: --engine wrk but wrk is unavailable", file=sys.stderr)
                return 2
            print(
                "bench: WARNING: wrk unavailable; closed-loop scenarios use the python "
                "engine, which is usually the bottleneck itself (ratios still compare like "
                "with like, absolute req/s are low)",
                file=sys.stderr,
            )

    database = bench_database()
    stamp = dt.datetime.now().strftime("%Y%m%d-%H%M%S")
    args.out.mkdir(parents=True, exist_ok=True)
    log_dir = args.out / f"{stamp}-logs"
    log_dir.mkdir(exist_ok=True)

    busy = cpu_busy(1.0)
    meta = {
        "started": dt.datetime.now().astimezone().isoformat(timespec="seconds"),
        "host": platform.node(),
        "nproc": os.cpu_count(),
        "cpus_allowed": cpus,
        "cpu_model": cpu_model(),
        "kernel": platform.release(),
        "python": platform.python_version(),
        "versions": {
            p: version(p) for p in ("litestar", "granian", "msgspec", "asyncpg", "uvloop")
        },
        "wrk": loadgen.wrk_version(wrk_path) if wrk_path else None,
        "pinning": pin_note,
        "workers": args.workers,
        "database": database,
        "server_cpus": floor_cpus if external else server_cpus,
        "loadgen_cpus": loadgen_cpus,
        "cpu_busy_before_pct": round(busy, 1),
        "loadavg": os.getloadavg(),
        "rounds": args.rounds,
        "warmup_s": args.warmup,
        "args": {k: (str(v) if isinstance(v, Path) else v) for k, v in vars(args).items()},
    }

    print(f"== bench {meta['started']}  {meta['host']}")
    print(f"   nproc {meta['nproc']} (allowed {cpus})  CPU: {meta['cpu_model']}")
    print(
        f"   kernel {meta['kernel']}  python {meta['python']}  "
        + "  ".join(f"{k} {v}" for k, v in meta["versions"].items())
    )
    print(f"   load generator: {meta['wrk'] or 'python asyncio engine'}; wrk threads {wrk_threads}")
    print(f"   pinning: {pin_note}")
    print(
        f"   granian workers: {args.workers} (app and floor); PostgreSQL CPU counted for "
        f"the backends of database {database or '- (DATABASE_URL not set)'}"
    )
    print(
        f"   CPU busy before start: {busy:.0f}%  loadavg "
        + " ".join(f"{x:.2f}" for x in meta["loadavg"])
        + ("   <-- the machine is busy: expect noise" if busy > 15 else "")
    )

    servers: list[Server] = []
    try:
        floor = Server(
            "floor",
            "bench.floor:app",
            factory=False,
            cpus=floor_cpus,
            extra=args.granian_arg,
            ready_path="/floor",
            log_dir=log_dir,
            workers=args.workers,
        )
        servers.append(floor)
        floor.start()
        if args.target_url:
            target_url = args.target_url.rstrip("/")
            target = None
        else:
            app_target = "bench.floor:create_app" if args.self_test else args.app
            factory = not args.no_factory
            ready = "/floor" if args.self_test else args.ready_path
            target = Server(
                "app",
                app_target,
                factory=factory,
                cpus=server_cpus,
                extra=args.granian_arg,
                ready_path=ready,
                log_dir=log_dir,
                workers=args.workers,
            )
            servers.append(target)
            target.start()
            target_url = target.url
        print(f"   floor:  {' '.join(floor.cmd)}")
        print(f"   target: {' '.join(target.cmd) if target else target_url}")
        meta["floor_cmd"] = floor.cmd
        meta["target"] = target.cmd if target else target_url

        # warm the floor's pool once, and fail early if a floor-db scenario can't work
        if any(sc.floor == "floor-db" for sc in scenarios):
            c = http.client.HTTPConnection("127.0.0.1", floor.port, timeout=10)
            c.request("GET", "/floor-db")
            st = c.getresponse().status
            c.close()
            if st != 200:
                print(
                    f"bench: WARNING: /floor-db answers {st} (is PostgreSQL up? "
                    "DATABASE_URL?); floor-db ratios will be meaningless",
                    file=sys.stderr,
                )

        values = {sc.name: run_setup(sc, target_url) for sc in scenarios}

        per_run = args.warmup + (args.duration or 10) + 1
        est = args.rounds * len(scenarios) * 2 * per_run
        print(
            f"   {len(scenarios)} scenarios x {args.rounds} rounds x (scenario + floor), "
            f"~{est / 60:.1f} min"
        )
        print()

        # {{seq}}: each scenario counts on in its own block of the sequence, so its
        # values (picked by seq modulo their number, e.g. photos that can be filed once)
        # run on without gaps from round to round however many scenarios run between;
        # the blocks are disjoint modulo 10^8, so {{phone}} stays unique in the run. The
        # floor ignores its values but builds them like the scenario (force_dynamic),
        # from a block of its own.
        block = 100_000_000 // (len(scenarios) + 1)
        base = random.randrange(100_000_000)
        next_seq = {sc.name: base + i * block for i, sc in enumerate(scenarios)}
        floor_seq = base + len(scenarios) * block
        runs: dict[str, dict[str, list[dict]]] = {
            sc.name: {"scenario": [], "floor": []} for sc in scenarios
        }
        specs: dict[str, LoadSpec] = {}
        engines: dict[str, str] = {}
        for rnd in range(args.rounds):
            for i, sc in enumerate(scenarios):
                spec = LoadSpec(
                    url=target_url,
                    method=sc.method,
                    path=sc.path,
                    headers=dict(sc.headers),
                    body=sc.body,
                    values=values[sc.name],
                    concurrency=args.concurrency or sc.concurrency or 64,
                    duration=args.duration or sc.duration or 10.0,
                    rate=sc.rate,
                    timeout=args.timeout,
                    expect=parse_expect(sc.expect),
                    threads=wrk_threads,
                )
                # a query floor ("floor-me", ...) is sent the scenario's headers and values
                # (bearer tokens, ids), so it reads the same rows
                query_floor = sc.floor not in ("floor", "floor-db")
                floor_spec = LoadSpec(
                    url=floor.url,
                    path=FLOOR_PATHS[sc.floor],
                    headers=dict(sc.headers) if query_floor else {},
                    values=values[sc.name] if query_floor else {},
                    concurrency=spec.concurrency,
                    duration=spec.duration,
                    rate=spec.rate,
                    timeout=spec.timeout,
                    threads=wrk_threads,
                    # same generator work per request as the scenario
                    force_dynamic=spec.dynamic,
                )
                engine = loadgen.choose_engine(
                    "auto" if args.engine == "wrk" and sc.rate else args.engine, spec, wrk_path
                )
                specs[sc.name], engines[sc.name] = spec, engine
                order = [("floor", floor_spec), ("scenario", spec)]
                if (rnd + i) % 2:
                    order.reverse()
                line = {}
                for kind, sp in order:
                    start = floor_seq if kind == "floor" else next_seq[sc.name]
                    sp = sp.with_(seq_start=start)
                    srv = floor if kind == "floor" else target
                    try:
                        if args.warmup > 0:
                            warm = loadgen.run_load(
                                sp.with_(duration=args.warmup),
                                engine=engine,
                                wrk_path=wrk_path,
                                cpus=loadgen_cpus,
                            )
                            start += warm["seq_used"]
                            sp = sp.with_(seq_start=start)
                        with CpuMeter(
                            srv.proc.pid if srv and srv.proc else None, database
                        ) as meter:
                            res = loadgen.run_load(
                                sp, engine=engine, wrk_path=wrk_path, cpus=loadgen_cpus
                            )
                        start += res["seq_used"]
                        res["cpu"] = meter.result
                        for who in ("server", "db"):
                            res["cpu"][f"{who}_us_per_req"] = (
                                round(meter.result[f"{who}_cpu_s"] / res["requests"] * 1e6, 1)
                                if res["requests"]
                                else float("nan")
                            )
                    except Exception as exc:  # noqa: BLE001 - record it, go on with the other runs
                        res = {"error": str(exc)[-2000:]}
                        start += block // 10  # unknown use: skip well past it
                    if kind == "floor":
                        floor_seq = start
                    else:
                        next_seq[sc.name] = start
                    res["round"] = rnd + 1
                    runs[sc.name][kind].append(res)
                    line[kind] = res
                    for srv in servers:
                        if not srv.alive():
                            raise RuntimeError(f"{srv.name} died:\n{srv.log_tail()}")
                s, f = line["scenario"], line["floor"]

                def brief(r: dict) -> str:
                    if "error" in r:
                        return "FAILED: " + r["error"].strip().splitlines()[-1][:80]
                    e = f" err {r['error_count']}" if r["error_count"] else ""
                    lag = r.get("sched_lag_ms_p99") or 0
                    if lag > 5:  # the generator itself started requests late
                        e += f" (generator lag p99 {lag:.0f} ms)"
                    return f"{r['ok_rps']:>9,.0f} req/s p99 {r['latency_ms']['p99']:7.2f} ms" + e

                print(
                    f"round {rnd + 1}/{args.rounds} {sc.name:<24} {engine:<6} {brief(s)}"
                    f"   | {sc.floor:<8} {brief(f)}",
                    flush=True,
                )

        rows = []
        for sc in scenarios:
            s_sum = summarize(runs[sc.name]["scenario"])
            f_sum = summarize(runs[sc.name]["floor"])
            pairs = [
                (a, b)
                for a, b in zip(runs[sc.name]["scenario"], runs[sc.name]["floor"], strict=True)
                if "error" not in a and "error" not in b
            ]
            spec = specs[sc.name]
            rows.append(
                {
                    "name": sc.name,
                    "description": sc.description,
                    "config": {
                        "method": sc.method,
                        "path": sc.path,
                        "headers": dict(sc.headers),
                        "body": sc.body,
                        "concurrency": spec.concurrency,
                        "duration": spec.duration,
                        "rate": spec.rate,
                        "floor": sc.floor,
                        "expect": sc.expect,
                        "engine": engines[sc.name],
                    },
                    "median": s_sum,
                    "floor_median": f_sum,
                    "ratio": {
                        "throughput": ratio(s_sum["ok_rps"], f_sum["ok_rps"]),
                        "p99": ratio(s_sum["latency_ms"]["p99"], f_sum["latency_ms"]["p99"]),
                        "p50": ratio(s_sum["latency_ms"]["p50"], f_sum["latency_ms"]["p50"]),
                        "cpu": ratio(
                            s_sum["cpu"]["server_us_per_req"], f_sum["cpu"]["server_us_per_req"]
                        ),
                        "throughput_per_round": [ratio(a["ok_rps"], b["ok_rps"]) for a, b in pairs],
                        "p99_per_round": [
                            ratio(a["latency_ms"]["p99"], b["latency_ms"]["p99"]) for a, b in pairs
                        ],
                    },
                    "rounds": runs[sc.name],
                }
            )
        print()
        print_table(rows)
        out = args.out / f"{stamp}.json"
        meta["finished"] = dt.datetime.now().astimezone().isoformat(timespec="seconds")
        meta["cpu_busy_after_pct"] = round(cpu_busy(0.5), 1)
        out.write_text(json.dumps(no_nan({"meta": meta, "scenarios": rows}), indent=2, default=str))

        def rel(p: Path) -> Path:
            return p.relative_to(ROOT) if p.is_relative_to(ROOT) else p

        print(f"\nresults: {rel(out)}   server logs: {rel(log_dir)}")
        failed = any(r["median"]["rounds"] == 0 or r["floor_median"]["rounds"] == 0 for r in rows)
        return 1 if failed else 0
    except KeyboardInterrupt:
        print("\ninterrupted", file=sys.stderr)
        return 130
    except RuntimeError as exc:
        print(f"bench: {exc}", file=sys.stderr)
        return 1
    finally:
        for srv in reversed(servers):
            srv.stop()


if __name__ == "__main__":
    sys.exit(main())
