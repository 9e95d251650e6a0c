"""A TCP proxy for the weak-link benchmark (issue 24): delay each way, cuts on demand,
bytes counted each way.

    python -m bench.weaklink.proxy --listen 10.186.0.1:18601 --target 127.0.0.1:18600 \\
        [--delay-ms 150] [--no-handshake] [--cut-after-bytes 1000000,2000000] \\
        [--cut-at 5,10] [--control 127.0.0.1:18602]

**Delay.** Every chunk read from one side is stamped with its arrival time and written to
the other side at ``arrival + delay`` (150 ms by default: 300 ms round trip), in order.
Reading goes on while earlier chunks wait, so a steady stream keeps its throughput and
only gains the delay (no sleep per read that would serialise it). A connection through
the proxy is accepted at once (the kernel answers the client's SYN), so a new connection
would cost nothing; with the handshake on (default) the first chunk from the client waits
one more round trip (``2 x delay``), what the SYN / SYN-ACK exchange costs on a real link.
No TLS: a real HTTPS connection costs one more round trip (TLS 1.3).

**Rate.** The proxy does not limit the rate: the benchmark puts it behind a veth pair whose
two ends are shaped with ``tc ... tbf`` (``bench/weaklink/run.py``).

**Cuts.** ``cut_after_bytes`` are thresholds on the bytes received from clients (all
connections, counted from the last ``reset``): the connection whose chunk crosses a
threshold is cut there. ``cut_at`` are times in seconds after the last ``reset``: every
open connection is cut then. A cut aborts both sockets (the client sees a reset) and drops
whatever was still in flight in the proxy's delay queues, both ways, as a dropped mobile
connection would lose it.

**Counts.** Bytes received from clients (``up``) and from the server (``down``), bytes
forwarded and dropped at cuts, connections, cuts done. TCP payload only: the HTTP
request and response bytes, headers included; TCP/IP headers are not counted (the veth
counters in the benchmark's output include them).

**Control** (``--control HOST:PORT``): one command per line, one JSON answer per line:
``stats``, ``reset``, ``cut`` (cut every open connection now), ``arm-bytes N[,N...]``,
``arm-at S[,S...]``.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import sys
from dataclasses import asdict, dataclass, field
from typing import Any


@dataclass
class Counters:
    up: int = 0  # bytes received from clients
    down: int = 0  # bytes received from the server
    up_forwarded: int = 0  # written to the server
    down_forwarded: int = 0  # written to clients
    up_dropped: int = 0  # in flight at a cut, never written
    down_dropped: int = 0
    connections: int = 0
    cuts: int = 0
    cut_log: list[dict[str, Any]] = field(default_factory=list)


class _Connection:
    """One client connection and its connection to the server: two pumps, each a reader
    that stamps chunks and a writer that sends them when due."""

    def __init__(self, proxy: WeakLinkProxy, client_r, client_w, server_r, server_w) -> None:
        self.proxy = proxy
        self.id = proxy.counters.connections
        self.client_w: asyncio.StreamWriter = client_w
        self.server_w: asyncio.StreamWriter = server_w
        self.queues: dict[str, asyncio.Queue[tuple[float, bytes | None]]] = {
            "up": asyncio.Queue(),
            "down": asyncio.Queue(),
        }
        self.cut = False
        self.tasks = [
            asyncio.ensure_future(self._read(client_r, "up")),
            asyncio.ensure_future(self._write(server_w, "up")),
            asyncio.ensure_future(self._read(server_r, "down")),
            asyncio.ensure_future(self._write(client_w, "down")),
        ]

    async def run(self) -> None:
        try:
            await asyncio.gather(*self.tasks, return_exceptions=True)
        finally:
            for w in (self.client_w, self.server_w):
                with contextlib.suppress(Exception):
                    w.close()
            self.proxy.open.discard(self)

    async def _read(self, reader: asyncio.StreamReader, way: str) -> None:
        loop = asyncio.get_running_loop()
        proxy = self.proxy
        queue = self.queues[way]
        first = True
        try:
            while not self.cut:
                data = await reader.read(65536)
                now = loop.time()
                if not data:
                    queue.put_nowait((now + proxy.delay, None))
                    return
                c = proxy.counters
                due = now + proxy.delay
                if way == "up":
                    if first and proxy.handshake:
                        due += 2 * proxy.delay
                    first = False
                    before = c.up
                    c.up += len(data)
                    if proxy.cut_after_bytes and c.up >= proxy.cut_after_bytes[0] > before:
                        threshold = proxy.cut_after_bytes.pop(0)
                        # the bytes up to the threshold crossed the link; the rest never
                        # left the client
                        c.up = threshold
                        self.abort(f"after {threshold} bytes up", dropped_now=threshold - before)
                        return
                else:
                    c.down += len(data)
                queue.put_nowait((due, data))
        except (ConnectionError, OSError):
            self.abort(None)

    async def _write(self, writer: asyncio.StreamWriter, way: str) -> None:
        loop = asyncio.get_running_loop()
        queue = self.queues[way]
        try:
            while not self.cut:
                due, data = await queue.get()
                wait = due - loop.time()
                if wait > 0:
                    try:
                        await asyncio.sleep(wait)
                    except asyncio.CancelledError:  # cut while this chunk was in flight
                        if data:
                            self._dropped(way, len(data))
                        raise
                if self.cut:
                    if data:
                        self._dropped(way, len(data))
                    return
                if data is None:
                    if writer.can_write_eof():
                        writer.write_eof()
                    return
                writer.write(data)
                c = self.proxy.counters
                if way == "up":
                    c.up_forwarded += len(data)
                else:
                    c.down_forwarded += len(data)
                await writer.drain()
        except (ConnectionError, OSError):
            self.abort(None)

    def _dropped(self, way: str, n: int) -> None:
        if way == "up":
            self.proxy.counters.up_dropped += n
        else:
            self.proxy.counters.down_dropped += n

    def abort(self, reason: str | None, dropped_now: int = 0) -> None:
        """Cut both sockets (reset), drop what is in flight. ``reason`` None: a side closed
        or failed by itself (not counted as a cut)."""
        if self.cut:
            return
        self.cut = True
        c = self.proxy.counters
        if reason is not None:
            c.cuts += 1
            c.up_dropped += dropped_now
            c.cut_log.append(
                {
                    "connection": self.id,
                    "reason": reason,
                    "at_s": round(asyncio.get_running_loop().time() - self.proxy.t0, 3),
                    "up": c.up,
                    "down": c.down,
                }
            )
        for way, queue in self.queues.items():
            while not queue.empty():
                _, data = queue.get_nowait()
                if data:
                    self._dropped(way, len(data))
            queue.put_nowait((0.0, None))  # wake a writer waiting on an empty queue
        for w in (self.client_w, self.server_w):
            with contextlib.suppress(Exception):
                w.transport.abort()
        current = asyncio.current_task()
        for t in self.tasks:
            if t is not current:
                t.cancel()


class WeakLinkProxy:
    def __init__(
        self,
        target_host: str,
        target_port: int,
        *,
        delay: float = 0.150,
        handshake: bool = True,
    ) -> None:
        self.target = (target_host, target_port)
        self.delay = delay
        self.handshake = handshake
        self.counters = Counters()
        self.cut_after_bytes: list[int] = []
        self.open: set[_Connection] = set()
        self.server: asyncio.Server | None = None
        self.t0 = 0.0
        self._timers: list[asyncio.TimerHandle] = []

    async def start(self, host: str, port: int) -> None:
        self.t0 = asyncio.get_running_loop().time()
        self.server = await asyncio.start_server(self._accept, host, port)

    async def close(self) -> None:
        self.cut_all(None)
        if self.server is not None:
            self.server.close()
            await self.server.wait_closed()

    def reset(self) -> None:
        """Counters to zero, cuts disarmed, the clock for ``cut_at`` restarted."""
        for timer in self._timers:
            timer.cancel()
        self._timers = []
        self.cut_after_bytes = []
        self.counters = Counters()
        self.t0 = asyncio.get_running_loop().time()

    def arm(self, *, after_bytes: list[int] | None = None, at: list[float] | None = None) -> None:
        if after_bytes:
            self.cut_after_bytes = sorted(self.cut_after_bytes + list(after_bytes))
        loop = asyncio.get_running_loop()
        for seconds in at or []:
            self._timers.append(loop.call_at(self.t0 + seconds, self.cut_all, f"at {seconds:g} s"))

    def cut_all(self, reason: str | None = "on demand") -> None:
        for conn in list(self.open):
            conn.abort(reason)

    def stats(self) -> dict[str, Any]:
        return asdict(self.counters)

    async def _accept(self, client_r: asyncio.StreamReader, client_w: asyncio.StreamWriter):
        try:
            server_r, server_w = await asyncio.open_connection(*self.target)
        except OSError:
            client_w.transport.abort()
            return
        self.counters.connections += 1
        conn = _Connection(self, client_r, client_w, server_r, server_w)
        self.open.add(conn)
        await conn.run()

    # ------------------------------------------------------------------ control

    async def serve_control(self, host: str, port: int) -> asyncio.Server:
        return await asyncio.start_server(self._control, host, port)

    async def _control(self, r: asyncio.StreamReader, w: asyncio.StreamWriter) -> None:
        try:
            while line := (await r.readline()).decode().strip():
                command, _, arg = line.partition(" ")
                answer: dict[str, Any]
                try:
                    if command == "stats":
                        answer = self.stats()
                    elif command == "reset":
                        self.reset()
                        answer = {"ok": True}
                    elif command == "cut":
                        self.cut_all()
                        answer = {"ok": True}
                    elif command == "arm-bytes":
                        self.arm(after_bytes=[int(x) for x in arg.split(",")])
                        answer = {"ok": True, "cut_after_bytes": self.cut_after_bytes}
                    elif command == "arm-at":
                        self.arm(at=[float(x) for x in arg.split(",")])
                        answer = {"ok": True}
                    else:
                        answer = {"error": f"unknown command {command!r}"}
                except ValueError as e:
                    answer = {"error": str(e)}
                w.write(json.dumps(answer).encode() + b"\n")
                await w.drain()
        finally:
            w.close()


async def control(address: tuple[str, int], command: str) -> dict[str, Any]:
    """Send one command to a proxy's control port; its JSON answer."""
    r, w = await asyncio.open_connection(*address)
    try:
        w.write(command.encode() + b"\n")
        await w.drain()
        return json.loads(await r.readline())
    finally:
        w.close()


def host_port(value: str) -> tuple[str, int]:
    host, _, port = value.rpartition(":")
    return host or "127.0.0.1", int(port)


async def _main(args: argparse.Namespace) -> None:
    proxy = WeakLinkProxy(*args.target, delay=args.delay_ms / 1000, handshake=args.handshake)
    await proxy.start(*args.listen)
    if args.cut_after_bytes or args.cut_at:
        proxy.arm(after_bytes=args.cut_after_bytes, at=args.cut_at)
    if args.control:
        await proxy.serve_control(*args.control)
    print(f"proxy {args.listen} -> {args.target}, {args.delay_ms} ms each way", file=sys.stderr)
    try:
        await asyncio.Event().wait()
    finally:
        print(json.dumps(proxy.stats()), file=sys.stderr)
        await proxy.close()


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(
        prog="python -m bench.weaklink.proxy", description=__doc__.split("\n\n")[0]
    )
    ap.add_argument("--listen", type=host_port, required=True, help="HOST:PORT")
    ap.add_argument("--target", type=host_port, required=True, help="HOST:PORT of the server")
    ap.add_argument("--delay-ms", type=float, default=150.0, help="each way (default 150)")
    ap.add_argument(
        "--no-handshake",
        dest="handshake",
        action="store_false",
        help="do not hold a new connection's first chunk one round trip",
    )
    ap.add_argument(
        "--cut-after-bytes",
        type=lambda s: [int(x) for x in s.split(",")],
        default=[],
        help="cut at these totals of bytes from clients (comma-separated)",
    )
    ap.add_argument(
        "--cut-at",
        type=lambda s: [float(x) for x in s.split(",")],
        default=[],
        help="cut every open connection at these seconds after start",
    )
    ap.add_argument("--control", type=host_port, help="HOST:PORT of the control port")
    args = ap.parse_args(argv)
    with contextlib.suppress(KeyboardInterrupt):
        asyncio.run(_main(args))
    return 0


if __name__ == "__main__":
    sys.exit(main())
