"""HTTP/1.1 load generator: wrk for closed-loop throughput, asyncio for fixed arrival rates.

Two engines behind one interface (``LoadSpec`` in, a result dict out):

- **wrk** (Debian package ``wrk``), driven by a Lua script generated per run. Used for
  closed-loop runs (fixed concurrency, as fast as the server answers). A Python client
  cannot saturate granian on two cores; wrk can. The script counts every response by
  status and, when the request has placeholders, builds each request in Lua.
  ``ensure_wrk()`` installs the package with apt-get when it is missing and we are root.
- **python** (asyncio, raw sockets, keep-alive). Used for open-loop runs (``rate``: a
  fixed number of requests started per second whatever the server does, so latency is
  measured from the moment a request was *due*, not when a connection became free —
  no coordinated omission), and as a clearly labelled fallback for closed-loop runs
  when wrk is unavailable (then the generator, not the server, is usually the limit).

Requests are templates. ``{{name}}`` in the path, a header value or the body is
replaced per request by:

- ``seq``          an integer unique across threads, rounds and runs of one harness run
- ``phone``        ``+849`` and 8 digits from ``seq`` (a unique Vietnamese mobile number)
- ``phone_local``  ``09`` and the same 8 digits
- ``rand``         a random non-negative 31-bit integer
- ``uuid``         a random UUID4
- any key of ``values``: the list entry ``values[key][seq % len]`` (e.g. bearer tokens)

Result dict (both engines)::

    engine, mode ("closed"|"open"), duration_s, requests (responses received),
    ok (responses whose status is expected), errors {"status": {"404": n},
    "socket": {"connect": n, "read": n, "write": n, "timeout": n}}, error_count,
    rps (all responses / s), ok_rps, latency_ms {p50, p95, p99, max, mean},
    seq_used, and for open-loop: target_rate, scheduled, sched_lag_ms_p99

Standalone use: ``uv run python -m bench.loadgen --help``.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import math
import os
import random
import re
import shutil
import subprocess
import sys
import tempfile
import time
import uuid
from collections import Counter
from dataclasses import asdict, dataclass, field
from urllib.parse import urlsplit

PLACEHOLDER = re.compile(r"\{\{(\w+)\}\}")
BUILTINS = ("seq", "phone", "phone_local", "rand", "uuid")
DEFAULT_EXPECT = list(range(200, 300))


# --------------------------------------------------------------------------- spec


@dataclass
class LoadSpec:
    """What to send, how hard, for how long."""

    url: str  # base URL, e.g. http://127.0.0.1:8000 (a path here is ignored)
    method: str = "GET"
    path: str = "/"
    headers: dict[str, str] = field(default_factory=dict)
    body: str | None = None
    values: dict[str, list[str]] = field(default_factory=dict)
    concurrency: int = 64  # connections (closed loop) / max connections (open loop)
    duration: float = 10.0  # seconds
    rate: float | None = None  # requests started per second; None = closed loop
    timeout: float = 10.0  # seconds before a request counts as a socket timeout
    expect: list[int] = field(default_factory=lambda: list(DEFAULT_EXPECT))
    seq_start: int = 0
    threads: int = 1  # wrk threads
    force_dynamic: bool = False  # build each request in Lua even without placeholders

    @property
    def hostport(self) -> str:
        parts = urlsplit(self.url)
        if parts.scheme != "http":
            raise ValueError(f"only http:// URLs are supported, not {self.url!r}")
        return parts.netloc

    def placeholders(self) -> set[str]:
        texts = [self.path, *self.headers.values(), self.body or ""]
        return {m for t in texts for m in PLACEHOLDER.findall(t)}

    @property
    def dynamic(self) -> bool:
        return bool(self.placeholders())

    def validate(self) -> None:
        unknown = self.placeholders() - set(BUILTINS) - set(self.values)
        if unknown:
            raise ValueError(
                f"unknown placeholders {sorted(unknown)}; known: "
                f"{sorted(set(BUILTINS) | set(self.values))}"
            )
        for name, items in self.values.items():
            if not items:
                raise ValueError(f"values[{name!r}] is empty")
        if self.concurrency < 1 or self.duration <= 0:
            raise ValueError("concurrency must be >= 1 and duration > 0")
        if self.rate is not None and self.rate <= 0:
            raise ValueError("rate must be > 0")
        self.hostport  # noqa: B018 - checks the scheme

    def head_template(self) -> str:
        """Request line and headers, without Content-Length and the blank line."""
        lines = [f"{self.method} {self.path} HTTP/1.1", f"Host: {self.hostport}"]
        headers = dict(self.headers)
        if self.body is not None and not any(k.lower() == "content-type" for k in headers):
            headers["Content-Type"] = "application/json"
        for k, v in headers.items():
            if k.lower() in ("host", "content-length"):
                continue
            lines.append(f"{k}: {v}")
        return "\r\n".join(lines) + "\r\n"

    def with_(self, **changes) -> LoadSpec:
        d = asdict(self)
        d.update(changes)
        return LoadSpec(**d)


# --------------------------------------------------------------------------- stats


def percentile(sorted_values: list[float], p: float) -> float:
    """Nearest-rank percentile of an ascending list."""
    if not sorted_values:
        return float("nan")
    k = max(0, min(len(sorted_values) - 1, math.ceil(p / 100.0 * len(sorted_values)) - 1))
    return sorted_values[k]


def _result(
    *,
    engine: str,
    mode: str,
    duration_s: float,
    statuses: dict[int, int],
    socket_errors: dict[str, int],
    expect: list[int],
    latency_ms: dict[str, float],
    seq_used: int,
    **extra,
) -> dict:
    expect_set = set(expect)
    requests = sum(statuses.values())
    ok = sum(n for s, n in statuses.items() if s in expect_set)
    bad_status = {str(s): n for s, n in sorted(statuses.items()) if s not in expect_set}
    sock = {k: int(v) for k, v in socket_errors.items() if v}
    return {
        "engine": engine,
        "mode": mode,
        "duration_s": round(duration_s, 3),
        "requests": requests,
        "ok": ok,
        "errors": {"status": bad_status, "socket": sock},
        "error_count": sum(bad_status.values()) + sum(sock.values()),
        "rps": round(requests / duration_s, 1) if duration_s > 0 else 0.0,
        "ok_rps": round(ok / duration_s, 1) if duration_s > 0 else 0.0,
        "latency_ms": {k: round(v, 3) for k, v in latency_ms.items()},
        "seq_used": seq_used,
        **extra,
    }


# --------------------------------------------------------------------------- wrk engine


def ensure_wrk(install: bool = True, log=print) -> str | None:
    """Path of the wrk binary, installing Debian's package if allowed and possible."""
    path = shutil.which("wrk")
    if path or not install:
        return path
    if os.geteuid() != 0 or not shutil.which("apt-get"):
        log("bench: wrk is not installed and cannot be installed here (needs root + apt-get)")
        return None
    log("bench: wrk not found; running apt-get install -y wrk ...")
    env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
    cmd = ["apt-get", "install", "-y", "-q", "wrk"]
    ok = subprocess.run(cmd, check=False, env=env, capture_output=True).returncode == 0
    if not ok:  # package lists may be missing or stale
        subprocess.run(["apt-get", "update", "-q"], check=False, env=env, capture_output=True)
        ok = subprocess.run(cmd, check=False, env=env, capture_output=True).returncode == 0
    path = shutil.which("wrk")
    if not path:
        log("bench: apt-get install wrk failed")
    return path


def wrk_version(binary: str) -> str:
    out = subprocess.run([binary, "-v"], check=False, capture_output=True, text=True)
    text = (out.stdout + out.stderr).strip()
    return " ".join(text.splitlines()[0].split()[:2]) if text else "?"


def _lua_str(s: str | bytes) -> str:
    data = s.encode() if isinstance(s, str) else s
    out = []
    for b in data:
        c = chr(b)
        if 32 <= b < 127 and c not in '"\\':
            out.append(c)
        else:
            out.append(f"\\{b:03d}")
    return '"' + "".join(out) + '"'


_LUA_TEMPLATE = r"""-- generated by bench/loadgen.py; do not edit
local CFG = {
  nthreads = %(nthreads)d,
  seq_start = %(seq_start)d,
  dynamic = %(dynamic)s,
  head = %(head)s,
  head_dyn = %(head_dyn)s,
  body = %(body)s,
  body_dyn = %(body_dyn)s,
  values = {%(values)s},
}
local fmt, random = string.format, math.random

-- static request: wrk formats it once
wrk.method = %(method)s
wrk.path = %(path)s
%(static_headers)s
wrk.body = CFG.body

bench_statuses = {}
bench_n = 0

-- main state: remember the threads, number them
local threads = {}
function setup(thread)
  thread:set("tid", #threads)
  table.insert(threads, thread)
end

function init(args)
  math.randomseed(os.time() * 1000 + (tid or 0) * 7919)
end

function response(status, headers, body)
  bench_statuses[status] = (bench_statuses[status] or 0) + 1
end

local counts = {}
for k, list in pairs(CFG.values) do counts[k] = #list end

local function uuid4()
  return fmt("%%04x%%04x-%%04x-4%%03x-%%04x-%%04x%%04x%%04x",
    random(0, 65535), random(0, 65535), random(0, 65535), random(0, 4095),
    random(32768, 49151), random(0, 65535), random(0, 65535), random(0, 65535))
end

local builtin = {
  seq = function(seq) return fmt("%%d", seq) end,
  phone = function(seq) return fmt("+849%%08d", seq %% 100000000) end,
  phone_local = function(seq) return fmt("09%%08d", seq %% 100000000) end,
  rand = function(seq) return fmt("%%d", random(0, 2147483646)) end,
  uuid = function(seq) return uuid4() end,
}

local function subst(s, seq)
  return (s:gsub("{{([%%w_]+)}}", function(k)
    local list = CFG.values[k]
    if list then return list[(seq %% counts[k]) + 1] end
    return builtin[k](seq)
  end))
end

if CFG.dynamic then
  local head, body = CFG.head, CFG.body
  local T, start = CFG.nthreads, CFG.seq_start
  request = function()
    local seq = start + tid + bench_n * T
    bench_n = bench_n + 1
    local h = CFG.head_dyn and subst(head, seq) or head
    if body then
      local b = CFG.body_dyn and subst(body, seq) or body
      return h .. "Content-Length: " .. #b .. "\r\n\r\n" .. b
    end
    return h .. "\r\n"
  end
end

function done(summary, latency, requests)
  local st, maxn = {}, 0
  for _, t in ipairs(threads) do
    for k, v in pairs(t:get("bench_statuses") or {}) do st[k] = (st[k] or 0) + v end
    local n = t:get("bench_n") or 0
    if n > maxn then maxn = n end
  end
  local parts = {}
  for k, v in pairs(st) do parts[#parts + 1] = fmt('"%%d":%%d', k, v) end
  local e = summary.errors
  io.write(fmt('BENCH_JSON {"duration_us":%%d,"requests":%%d,"bytes":%%d,' ..
    '"errors":{"connect":%%d,"read":%%d,"write":%%d,"status":%%d,"timeout":%%d},' ..
    '"statuses":{%%s},"latency_us":{"p50":%%.1f,"p95":%%.1f,"p99":%%.1f,"max":%%.1f,' ..
    '"mean":%%.1f},"max_n":%%d,"threads":%%d}\n',
    summary.duration, summary.requests, summary.bytes,
    e.connect, e.read, e.write, e.status, e.timeout, table.concat(parts, ","),
    latency:percentile(50), latency:percentile(95), latency:percentile(99),
    latency.max, latency.mean, maxn, #threads))
end
"""


def wrk_script(spec: LoadSpec) -> str:
    head = spec.head_template()
    values = ", ".join(
        f"[{_lua_str(k)}] = {{{', '.join(_lua_str(v) for v in vs)}}}"
        for k, vs in spec.values.items()
    )
    static_headers = "\n".join(
        f"wrk.headers[{_lua_str(k)}] = {_lua_str(v)}"
        for k, v in spec.headers.items()
        if k.lower() not in ("host", "content-length")
    )
    if spec.body is not None and not any(k.lower() == "content-type" for k in spec.headers):
        static_headers += '\nwrk.headers["Content-Type"] = "application/json"'
    return _LUA_TEMPLATE % {
        "nthreads": spec.threads,
        "seq_start": spec.seq_start,
        "dynamic": "true" if (spec.dynamic or spec.force_dynamic) else "false",
        "head": _lua_str(head),
        "head_dyn": "true" if PLACEHOLDER.search(head) else "false",
        "body": _lua_str(spec.body) if spec.body is not None else "nil",
        "body_dyn": "true" if spec.body and PLACEHOLDER.search(spec.body) else "false",
        "values": values,
        "method": _lua_str(spec.method),
        "path": _lua_str(spec.path),
        "static_headers": static_headers,
    }


def run_wrk(spec: LoadSpec, *, binary: str = "wrk", cpus: list[int] | None = None) -> dict:
    """One closed-loop wrk run; returns the result dict."""
    spec.validate()
    if spec.rate is not None:
        raise ValueError("wrk cannot hold a fixed arrival rate; use the python engine")
    threads = max(1, min(spec.threads, spec.concurrency))
    spec = spec.with_(threads=threads)
    seconds = max(1, round(spec.duration))
    with tempfile.NamedTemporaryFile("w", suffix=".lua", prefix="bench-", delete=False) as f:
        f.write(wrk_script(spec))
        script = f.name
    try:
        cmd = [
            binary,
            "-t", str(threads),
            "-c", str(spec.concurrency),
            "-d", f"{seconds}s",
            "--timeout", f"{max(1, round(spec.timeout))}s",
            "-s", script,
            spec.url.rstrip("/") + "/",
        ]  # fmt: skip
        if cpus:
            cmd = ["taskset", "-c", ",".join(map(str, cpus)), *cmd]
        proc = subprocess.run(
            cmd, check=False, capture_output=True, text=True, timeout=seconds + 60
        )
    finally:
        os.unlink(script)
    line = next((ln for ln in proc.stdout.splitlines() if ln.startswith("BENCH_JSON ")), None)
    if proc.returncode != 0 or line is None:
        raise RuntimeError(
            f"wrk failed (exit {proc.returncode}):\n{proc.stdout[-2000:]}\n{proc.stderr[-2000:]}"
        )
    raw = json.loads(line[len("BENCH_JSON ") :])
    lat = raw["latency_us"]
    e = raw["errors"]
    return _result(
        engine="wrk",
        mode="closed",
        duration_s=raw["duration_us"] / 1e6,
        statuses={int(k): v for k, v in raw["statuses"].items()},
        # wrk's "status" error (>399) is already in statuses, so it is not repeated here
        socket_errors={k: e[k] for k in ("connect", "read", "write", "timeout")},
        expect=spec.expect,
        latency_ms={k: lat[k] / 1000.0 for k in ("p50", "p95", "p99", "max", "mean")},
        seq_used=raw["max_n"] * threads,
        threads=threads,
        connections=spec.concurrency,
    )


# --------------------------------------------------------------------------- python engine


class Template:
    """The Python twin of the Lua ``subst``: same placeholders, same values."""

    def __init__(self, spec: LoadSpec):
        self.head = spec.head_template()
        self.body = spec.body
        self.values = spec.values
        self.head_dyn = bool(PLACEHOLDER.search(self.head))
        self.body_dyn = bool(self.body and PLACEHOLDER.search(self.body))
        self.static = None if (self.head_dyn or self.body_dyn) else self._build(0)
        self._rng = random.Random()

    def _sub(self, text: str, seq: int) -> str:
        def one(m: re.Match) -> str:
            k = m.group(1)
            if k in self.values:
                items = self.values[k]
                return items[seq % len(items)]
            if k == "seq":
                return str(seq)
            if k == "phone":
                return f"+849{seq % 100_000_000:08d}"
            if k == "phone_local":
                return f"09{seq % 100_000_000:08d}"
            if k == "rand":
                return str(self._rng.randrange(2_147_483_647))
            if k == "uuid":
                return str(uuid.uuid4())
            raise KeyError(k)

        return PLACEHOLDER.sub(one, text)

    def _build(self, seq: int) -> bytes:
        head = self._sub(self.head, seq) if self.head_dyn else self.head
        if self.body is None:
            return (head + "\r\n").encode()
        body = (self._sub(self.body, seq) if self.body_dyn else self.body).encode()
        return (head + f"Content-Length: {len(body)}\r\n\r\n").encode() + body

    def render(self, seq: int) -> bytes:
        return self.static if self.static is not None else self._build(seq)


class _Conn(asyncio.Protocol):
    """One keep-alive HTTP/1.1 connection; one request in flight at a time."""

    def __init__(self, loop: asyncio.AbstractEventLoop):
        self.loop = loop
        self.transport: asyncio.Transport | None = None
        self.buf = bytearray()
        self.fut: asyncio.Future | None = None
        self.broken = False
        self._reset()

    def _reset(self) -> None:
        self.status: int | None = None
        self.remaining: int | None = None  # bytes of body left; -1 = until close
        self.chunked = False
        self.close_after = False

    def connection_made(self, transport) -> None:
        self.transport = transport

    def connection_lost(self, exc) -> None:
        self.broken = True
        fut = self.fut
        if fut is not None and not fut.done():
            if self.status is not None and self.remaining == -1:
                fut.set_result(self.status)
            else:
                fut.set_exception(ConnectionResetError("connection closed"))

    def send(self, raw: bytes) -> asyncio.Future:
        self._reset()
        self.fut = self.loop.create_future()
        self.transport.write(raw)
        return self.fut

    def close(self) -> None:
        self.broken = True
        if self.transport is not None:
            self.transport.close()

    def data_received(self, data: bytes) -> None:
        self.buf += data
        if self.fut is not None and not self.fut.done():
            try:
                self._parse()
            except (ValueError, IndexError) as exc:
                self.fut.set_exception(ConnectionError(f"bad response: {exc}"))
                self.close()

    def _parse(self) -> None:  # noqa: C901 (an HTTP/1.1 response parser kept in one loop for speed)
        buf = self.buf
        while self.status is None:
            i = buf.find(b"\r\n\r\n")
            if i < 0:
                return
            head = bytes(buf[:i]).split(b"\r\n")
            del buf[: i + 4]
            version, status = head[0].split(b" ", 2)[:2]
            status = int(status)
            if 100 <= status < 200:
                continue  # interim response
            cl, chunked, close = None, False, version == b"HTTP/1.0"
            for line in head[1:]:
                name, _, val = line.partition(b":")
                name = name.strip().lower()
                if name == b"content-length":
                    cl = int(val)
                elif name == b"transfer-encoding" and b"chunked" in val.lower():
                    chunked = True
                elif name == b"connection" and b"close" in val.lower():
                    close = True
            self.status, self.close_after = status, close
            if status in (204, 304):
                self.remaining = 0
            elif chunked:
                self.chunked = True
            elif cl is not None:
                self.remaining = cl
            else:
                self.remaining, self.close_after = -1, True
        if self.chunked:
            while True:
                j = buf.find(b"\r\n")
                if j < 0:
                    return
                size = int(bytes(buf[:j]).split(b";")[0], 16)
                if size == 0:
                    k = buf.find(b"\r\n\r\n", j)
                    if k < 0:
                        return
                    del buf[: k + 4]
                    break
                if len(buf) < j + 2 + size + 2:
                    return
                del buf[: j + 2 + size + 2]
        elif self.remaining >= 0:
            if len(buf) < self.remaining:
                return
            del buf[: self.remaining]
        else:
            return  # body ends when the server closes
        self.fut.set_result(self.status)


class _Stats:
    def __init__(self):
        self.lat: list[float] = []
        self.statuses: Counter[int] = Counter()
        self.sock: Counter[str] = Counter()


async def _with_timeout(fut: asyncio.Future, seconds: float):
    loop = asyncio.get_running_loop()
    handle = loop.call_later(
        seconds, lambda: fut.done() or fut.set_exception(TimeoutError("request timed out"))
    )
    try:
        return await fut
    finally:
        handle.cancel()


async def _connect(host: str, port: int, seconds: float) -> _Conn:
    loop = asyncio.get_running_loop()
    _, conn = await asyncio.wait_for(
        loop.create_connection(lambda: _Conn(loop), host, port), seconds
    )
    return conn


def _classify(exc: BaseException, connected: bool) -> str:
    if isinstance(exc, TimeoutError):
        return "timeout"
    return "read" if connected else "connect"


async def _closed_loop(spec: LoadSpec, tpl: Template, host: str, port: int, st: _Stats):
    seq = spec.seq_start
    t0 = time.perf_counter()
    deadline = t0 + spec.duration

    async def worker() -> None:
        nonlocal seq
        conn: _Conn | None = None
        while time.perf_counter() < deadline:
            raw = tpl.render(seq)
            seq += 1
            connected = False
            try:
                if conn is None or conn.broken:
                    conn = await _connect(host, port, spec.timeout)
                connected = True
                start = time.perf_counter()
                status = await _with_timeout(conn.send(raw), spec.timeout)
            except (OSError, TimeoutError, ConnectionError) as exc:
                if time.perf_counter() < deadline:
                    st.sock[_classify(exc, connected)] += 1
                if conn is not None:
                    conn.close()
                conn = None
                if not connected:
                    await asyncio.sleep(0.01)
                continue
            end = time.perf_counter()
            if end <= deadline:  # as wrk: only responses completed in the window count
                st.statuses[status] += 1
                st.lat.append(end - start)
            if conn.close_after:
                conn.close()
                conn = None
        if conn is not None:
            conn.close()

    await asyncio.gather(*(worker() for _ in range(spec.concurrency)))
    return spec.duration, seq - spec.seq_start, {}


async def _open_loop(spec: LoadSpec, tpl: Template, host: str, port: int, st: _Stats):
    """Start one request every 1/rate s; latency counts from when it was due."""
    interval = 1.0 / spec.rate
    sem = asyncio.Semaphore(spec.concurrency)
    idle: list[_Conn] = []
    lags: list[float] = []
    tasks: set[asyncio.Task] = set()
    last_done = 0.0

    async def one(due: float, raw: bytes) -> None:
        nonlocal last_done
        lags.append(time.perf_counter() - due)
        await sem.acquire()
        conn = None
        connected = False
        try:
            conn = idle.pop() if idle else await _connect(host, port, spec.timeout)
            connected = True
            status = await _with_timeout(conn.send(raw), spec.timeout)
        except (OSError, TimeoutError, ConnectionError) as exc:
            st.sock[_classify(exc, connected)] += 1
            if conn is not None:
                conn.close()
            return
        finally:
            sem.release()
        end = time.perf_counter()
        last_done = max(last_done, end)
        st.statuses[status] += 1
        st.lat.append(end - due)
        if conn.close_after or conn.broken:
            conn.close()
        else:
            idle.append(conn)

    t0 = time.perf_counter()
    n_total = max(1, int(spec.duration * spec.rate))
    for i in range(n_total):
        due = t0 + i * interval
        delay = due - time.perf_counter()
        if delay > 0:
            await asyncio.sleep(delay)
        task = asyncio.create_task(one(due, tpl.render(spec.seq_start + i)))
        tasks.add(task)
        task.add_done_callback(tasks.discard)
    if tasks:
        _, pending = await asyncio.wait(set(tasks), timeout=spec.timeout)
        for task in pending:
            task.cancel()
            st.sock["timeout"] += 1
    for conn in idle:
        conn.close()
    lags.sort()
    window = max(spec.duration, last_done - t0)
    extra = {
        "target_rate": spec.rate,
        "scheduled": n_total,
        "sched_lag_ms_p99": round(percentile(lags, 99) * 1000, 3),
    }
    return window, n_total, extra


def run_python(spec: LoadSpec) -> dict:
    """One run of the asyncio engine in this process (closed or open loop)."""
    spec.validate()
    parts = urlsplit(spec.url)
    host, port = parts.hostname or "127.0.0.1", parts.port or 80
    tpl = Template(spec)
    st = _Stats()
    try:
        import uvloop

        runner = uvloop.run
    except ImportError:  # pragma: no cover
        runner = asyncio.run
    body = _open_loop if spec.rate is not None else _closed_loop
    window, seq_used, extra = runner(body(spec, tpl, host, port, st))
    lat = sorted(st.lat)
    ms = {
        "p50": percentile(lat, 50) * 1000,
        "p95": percentile(lat, 95) * 1000,
        "p99": percentile(lat, 99) * 1000,
        "max": (lat[-1] * 1000) if lat else float("nan"),
        "mean": (sum(lat) / len(lat) * 1000) if lat else float("nan"),
    }
    return _result(
        engine="python",
        mode="open" if spec.rate is not None else "closed",
        duration_s=window,
        statuses=dict(st.statuses),
        socket_errors=dict(st.sock),
        expect=spec.expect,
        latency_ms=ms,
        seq_used=seq_used,
        connections=spec.concurrency,
        **extra,
    )


def run_python_subprocess(spec: LoadSpec, cpus: list[int] | None = None) -> dict:
    """The asyncio engine in its own process, so it can be pinned apart from the caller.
    The spec goes on stdin: with thousands of values (bearer tokens) it is too long for
    a command line."""
    cmd = [sys.executable, "-m", "bench.loadgen", "--spec-json", "-"]
    if cpus:
        cmd = ["taskset", "-c", ",".join(map(str, cpus)), *cmd]
    root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    proc = subprocess.run(
        cmd,
        input=json.dumps(asdict(spec)),
        check=False,
        capture_output=True,
        text=True,
        cwd=root,
        timeout=spec.duration + spec.timeout + 60,
    )
    if proc.returncode != 0:
        raise RuntimeError(f"python load generator failed:\n{proc.stderr[-3000:]}")
    return json.loads(proc.stdout.strip().splitlines()[-1])


# --------------------------------------------------------------------------- dispatch


def choose_engine(engine: str, spec: LoadSpec, wrk_path: str | None) -> str:
    if engine == "auto":
        return "python" if spec.rate is not None or not wrk_path else "wrk"
    if engine == "wrk":
        if spec.rate is not None:
            raise ValueError("wrk cannot hold a fixed arrival rate (--rate); use --engine python")
        if not wrk_path:
            raise RuntimeError("wrk is not available")
    return engine


def run_load(
    spec: LoadSpec,
    *,
    engine: str,
    wrk_path: str | None = None,
    cpus: list[int] | None = None,
    warmup: float = 0.0,
) -> dict:
    """Optional warmup (discarded), then the measured run. ``engine`` is 'wrk' or 'python'.

    ``seq_used`` in the result covers the warmup too, so the caller can advance its
    sequence and the next run never repeats a ``{{phone}}``.
    """
    spec.validate()
    used = 0
    if warmup > 0:
        warm = spec.with_(duration=warmup, rate=spec.rate)
        w = (
            run_wrk(warm, binary=wrk_path or "wrk", cpus=cpus)
            if engine == "wrk"
            else run_python_subprocess(warm, cpus)
        )
        used = w["seq_used"] + spec.concurrency  # + in-flight requests lost at the end
        spec = spec.with_(seq_start=spec.seq_start + used)
    if engine == "wrk":
        res = run_wrk(spec, binary=wrk_path or "wrk", cpus=cpus)
    else:
        res = run_python_subprocess(spec, cpus)
    res["seq_used"] += used + spec.concurrency
    return res


def format_result(res: dict) -> str:
    lat = res["latency_ms"]
    lines = [
        f"engine {res['engine']} ({res['mode']} loop), {res['duration_s']} s, "
        f"{res['connections']} connections"
        + (f", target {res['target_rate']} req/s" if res.get("target_rate") else ""),
        (
            f"  requests {res['requests']}  ok {res['ok']}  errors {res['error_count']} "
            f"{json.dumps(res['errors']) if res['error_count'] else ''}"
        ),
        f"  throughput {res['rps']} req/s (ok {res['ok_rps']} req/s)",
        (
            f"  latency ms  p50 {lat['p50']:.2f}  p95 {lat['p95']:.2f}  p99 {lat['p99']:.2f}"
            f"  max {lat['max']:.2f}  mean {lat['mean']:.2f}"
        ),
    ]
    if "sched_lag_ms_p99" in res:
        lines.append(f"  generator start lag p99 {res['sched_lag_ms_p99']} ms")
    return "\n".join(lines)


def _header(text: str) -> tuple[str, str]:
    name, sep, value = text.partition(":")
    if not sep:
        raise argparse.ArgumentTypeError(f"header must be 'Name: value', got {text!r}")
    return name.strip(), value.strip()


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(
        prog="python -m bench.loadgen",
        description="Load one URL and print throughput and latency percentiles.",
        epilog="Placeholders: {{seq}} {{phone}} {{phone_local}} {{rand}} {{uuid}} and "
        "{{name}} for each --values name=FILE (one value a line).",
    )
    ap.add_argument("url", nargs="?", help="full URL, e.g. http://127.0.0.1:8000/health/live")
    ap.add_argument("-X", "--method", default="GET")
    ap.add_argument("-H", "--header", action="append", type=_header, default=[])
    ap.add_argument("-b", "--body", help="body template")
    ap.add_argument("--body-file", help="read the body template from a file")
    ap.add_argument("--values", action="append", default=[], metavar="NAME=FILE")
    ap.add_argument("-c", "--concurrency", type=int, default=64)
    ap.add_argument("-d", "--duration", type=float, default=10.0, help="seconds")
    ap.add_argument("--rate", type=float, help="open loop: requests started per second")
    ap.add_argument("--timeout", type=float, default=10.0)
    ap.add_argument("--expect", default="200-299", help="e.g. 200-299 or 200,201,204")
    ap.add_argument("--engine", choices=("auto", "wrk", "python"), default="auto")
    ap.add_argument("--threads", type=int, default=1, help="wrk threads")
    ap.add_argument("--cpus", help="pin the generator to these CPUs, e.g. 0 or 0,1")
    ap.add_argument("--warmup", type=float, default=0.0, help="seconds, discarded")
    ap.add_argument("--no-install", action="store_true", help="never apt-get install wrk")
    ap.add_argument("--json", action="store_true", help="print the result as JSON")
    ap.add_argument("--spec-json", help=argparse.SUPPRESS)  # internal: subprocess mode
    args = ap.parse_args(argv)

    if args.spec_json:
        raw = sys.stdin.read() if args.spec_json == "-" else args.spec_json
        print(json.dumps(run_python(LoadSpec(**json.loads(raw)))))
        return 0
    if not args.url:
        ap.error("url is required")
    parts = urlsplit(args.url)
    path = parts.path or "/"
    if parts.query:
        path += "?" + parts.query
    body = args.body
    if args.body_file:
        with open(args.body_file) as f:
            body = f.read()
    values = {}
    for item in args.values:
        name, _, fname = item.partition("=")
        with open(fname) as f:
            values[name] = [ln.strip() for ln in f if ln.strip()]
    spec = LoadSpec(
        url=f"{parts.scheme}://{parts.netloc}",
        method=args.method.upper(),
        path=path,
        headers=dict(args.header),
        body=body,
        values=values,
        concurrency=args.concurrency,
        duration=args.duration,
        rate=args.rate,
        timeout=args.timeout,
        expect=parse_expect(args.expect),
        seq_start=random.randrange(100_000_000),
        threads=args.threads,
    )
    log = (lambda m: print(m, file=sys.stderr)) if args.json else print
    wrk_path = None
    if args.engine != "python" and spec.rate is None:
        wrk_path = ensure_wrk(install=not args.no_install, log=log)
    engine = choose_engine(args.engine, spec, wrk_path)
    if engine == "python" and spec.rate is None:
        log("bench: closed loop with the python engine: the generator may be the bottleneck")
    cpus = [int(c) for c in args.cpus.split(",")] if args.cpus else None
    res = run_load(spec, engine=engine, wrk_path=wrk_path, cpus=cpus, warmup=args.warmup)
    print(json.dumps(res, indent=2) if args.json else format_result(res))
    return 0


def parse_expect(text: str) -> list[int]:
    out: list[int] = []
    for part in text.split(","):
        lo, _, hi = part.strip().partition("-")
        out.extend(range(int(lo), int(hi or lo) + 1))
    return out


if __name__ == "__main__":
    sys.exit(main())
