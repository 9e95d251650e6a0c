"""The weak-link benchmark's proxy (bench/weaklink/proxy.py): the figures in
docs/benchmarks.md rely on it adding the delay each way without serialising a stream,
keeping the order of bytes, charging a new connection one round trip, cutting where it
was told to, and counting bytes each way. Loopback only: an echo server behind it."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator

import pytest

from bench.weaklink.proxy import WeakLinkProxy, control

DELAY = 0.1  # each way: 200 ms round trip


async def _echo(r: asyncio.StreamReader, w: asyncio.StreamWriter) -> None:
    try:
        while data := await r.read(65536):
            w.write(data)
            await w.drain()
    except ConnectionError:
        pass
    finally:
        w.close()


@pytest.fixture
async def proxy() -> AsyncIterator[tuple[WeakLinkProxy, int]]:
    echo = await asyncio.start_server(_echo, "127.0.0.1", 0)
    echo_port = echo.sockets[0].getsockname()[1]
    p = WeakLinkProxy("127.0.0.1", echo_port, delay=DELAY)
    await p.start("127.0.0.1", 0)
    assert p.server is not None
    yield p, p.server.sockets[0].getsockname()[1]
    await p.close()
    echo.close()
    await echo.wait_closed()


async def _round_trip(r: asyncio.StreamReader, w: asyncio.StreamWriter, data: bytes) -> float:
    t0 = time.perf_counter()
    w.write(data)
    await w.drain()
    assert await r.readexactly(len(data)) == data
    return time.perf_counter() - t0


async def test_each_way_delayed_and_a_new_connection_pays_the_handshake(proxy):
    p, port = proxy
    r, w = await asyncio.open_connection("127.0.0.1", port)
    first = await _round_trip(r, w, b"GET")
    second = await _round_trip(r, w, b"again")
    w.close()
    # first: handshake (2 x delay) + there and back (2 x delay); the margins leave room
    # for a loaded machine and stay below the next delay's step
    assert 4 * DELAY <= first < 5.5 * DELAY
    assert 2 * DELAY <= second < 3.5 * DELAY


async def test_a_stream_keeps_its_throughput_and_its_order(proxy):
    p, port = proxy
    r, w = await asyncio.open_connection("127.0.0.1", port)
    await _round_trip(r, w, b"x")  # the handshake paid
    chunks = [bytes([i]) * 1000 for i in range(40)]

    async def send() -> None:
        for chunk in chunks:
            w.write(chunk)
            await w.drain()
            await asyncio.sleep(0.01)

    t0 = time.perf_counter()
    sender = asyncio.create_task(send())
    got = await r.readexactly(40_000)
    took = time.perf_counter() - t0
    await sender
    w.close()
    assert got == b"".join(chunks)
    # 40 chunks 10 ms apart take ~0.4 s to send; delayed, they arrive one round trip
    # later, not 40 delays later (a sleep per read would make it 40 x 0.2 s)
    assert took < 0.4 + 2 * DELAY + 0.25
    assert p.stats()["up"] == 40_001 and p.stats()["down"] == 40_001


async def test_a_cut_after_n_bytes_resets_that_connection_and_drops_what_was_in_flight(proxy):
    p, port = proxy
    r, w = await asyncio.open_connection("127.0.0.1", port)
    await _round_trip(r, w, b"hello")
    p.reset()
    p.arm(after_bytes=[3000])
    w.write(b"a" * 2000)
    await w.drain()
    await asyncio.sleep(0.01)
    w.write(b"b" * 2000)  # crosses 3,000: the connection is cut there
    await w.drain()
    got = b""
    with pytest.raises((ConnectionError, asyncio.IncompleteReadError)):
        while True:
            chunk = await r.read(65536)
            if not chunk:
                raise asyncio.IncompleteReadError(got, None)
            got += chunk
    stats = p.stats()
    assert stats["cuts"] == 1 and stats["up"] == 3000
    # cut before the delay elapsed: nothing reached the server
    assert stats["up_forwarded"] == 0 and stats["up_dropped"] == 3000
    assert stats["cut_log"][0]["reason"] == "after 3000 bytes up"
    # a new connection works as before
    r2, w2 = await asyncio.open_connection("127.0.0.1", port)
    await _round_trip(r2, w2, b"again")
    w2.close()


async def test_a_timed_cut_and_the_control_port(proxy):
    p, port = proxy
    ctl = await p.serve_control("127.0.0.1", 0)
    address = ctl.sockets[0].getsockname()[:2]
    r, w = await asyncio.open_connection("127.0.0.1", port)
    await _round_trip(r, w, b"handshake")
    assert await control(address, "reset") == {"ok": True}
    assert (await control(address, "arm-at 0.3"))["ok"]
    await _round_trip(r, w, b"before the cut")
    await asyncio.sleep(0.15)
    w.write(b"after")
    with pytest.raises((ConnectionError, asyncio.IncompleteReadError)):
        await r.readexactly(5)
    stats = await control(address, "stats")
    assert stats["cuts"] == 1 and stats["cut_log"][0]["reason"] == "at 0.3 s"
    assert stats["up"] == len(b"before the cut") and stats["down"] == len(b"before the cut")
    assert "error" in await control(address, "arm-bytes many")
    ctl.close()
