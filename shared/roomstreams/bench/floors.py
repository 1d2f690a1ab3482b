"""Floors measured in the same run as the workloads: what the two transports the system is
built on cost by themselves, with nothing of roomstreams on the path.

* Redis: XADD on one connection -> a blocked XREAD on another connection wakes up
  (redis.asyncio, both clients in the benchmark process, 100-byte payload).
* WebSocket: a 100-byte text message to an echo server and back (websockets' asyncio client
  and server, ``compression=None``). ``websocket_echo`` has the server in its own process,
  like a gateway; ``websocket_echo_in_process`` runs both ends on one event loop.
* Relay: W1's load (1000 100-byte messages/s for the same time) through W1's path built of
  three bare relay processes (:mod:`.relay`) and a Redis of its own, with nothing of
  roomstreams on it: the least latency and CPU per chunk those four processes can cost
  with the libraries and event loop the services use. ``relay_picows`` is the same path with
  picows (a WebSocket library written in Cython) in the two WebSocket relays, when it is
  installed (``pip install picows``): the two side by side show what websockets itself costs.
* Socket send: the CPU one ``send()`` of a delivered chunk's frame (about W3's size) costs
  the sending process, to 25 TCP sockets of a reader process (``python -m
  roomstreams.bench.sink``), paced as W3 at 1000 chunks/s (a burst of one send per socket
  every millisecond) and flat out. On loopback the kernel does the receiving side's TCP
  work in the sender's system call, so this is what a gateway pays per delivery before any
  Python runs: the floor under W3's server CPU per delivery.
"""

from __future__ import annotations

import asyncio
import importlib.util
import os
import resource
import socket
import time
import uuid
from typing import Any

import redis.asyncio as aioredis
from websockets.asyncio.client import ClientConnection, connect
from websockets.asyncio.server import ServerConnection, serve

from .._redis_server import LocalRedisServer
from .._redisio import client as cluster_client
from .._redisio import is_cluster_url
from .child import start_child, stop_child
from .stats import latency_summary, rnd
from .system import HOST
from .workloads import CpuMeter

__all__ = ["redis_floor", "relay_floor", "run_floors", "send_floor", "websocket_floor"]

PAYLOAD = "x" * 100
RELAY = "roomstreams.bench.relay"  # the relay processes' module (python -m)
SINK = "roomstreams.bench.sink"


async def _echo(ws: ServerConnection) -> None:
    async for message in ws:
        await ws.send(message)


async def redis_floor(url: str, iterations: int, warmup: int) -> dict[str, Any]:
    """XADD -> blocked XREAD wake-up, one entry at a time (on a ``redis+cluster://`` URL,
    through redis-py's cluster client, as the services talk to a cluster)."""
    writer: Any
    reader: Any
    if is_cluster_url(url):
        writer, reader = cluster_client(url), cluster_client(url)
    else:
        writer, reader = aioredis.Redis.from_url(url), aioredis.Redis.from_url(url)
    key = f"bench:floor:{uuid.uuid4().hex}"
    samples: list[float] = []
    try:
        await writer.ping()
        await reader.ping()
        last: bytes | str = "0-0"
        for i in range(warmup + iterations):
            woke: list[float] = []

            async def read(after: bytes | str, out: list[float] = woke) -> bytes:
                resp: Any = await reader.xread({key: after}, block=5000, count=1)
                out.append(time.perf_counter())
                if not resp:
                    raise TimeoutError("blocked XREAD did not wake up within 5 s")
                entry_id: bytes = resp[0][1][0][0]
                return entry_id

            task = asyncio.create_task(read(last))
            # let the XREAD reach the server and block there before the XADD
            await asyncio.sleep(0.001)
            t0 = time.perf_counter()
            await writer.xadd(key, {"d": PAYLOAD})
            last = await task
            if i >= warmup:
                samples.append(woke[0] - t0)
    finally:
        await writer.delete(key)
        await writer.aclose()
        await reader.aclose()
    return {"what": "XADD -> blocked XREAD wake-up", **latency_summary(samples)}


async def _echo_rtts(ws: ClientConnection, iterations: int, warmup: int) -> list[float]:
    samples: list[float] = []
    for i in range(warmup + iterations):
        t0 = time.perf_counter()
        await ws.send(PAYLOAD)
        await ws.recv()
        if i >= warmup:
            samples.append(time.perf_counter() - t0)
    return samples


async def websocket_floor(iterations: int, warmup: int) -> dict[str, Any]:
    """Echo round trips against a server process of its own."""
    proc, port = await start_child("roomstreams.bench.echo")
    try:
        async with connect(f"ws://{HOST}:{port}", compression=None, max_queue=64) as ws:
            samples = await _echo_rtts(ws, iterations, warmup)
    finally:
        await stop_child(proc)
    return {
        "what": "100-byte echo round trip, server in its own process",
        **latency_summary(samples),
    }


async def websocket_floor_in_process(iterations: int, warmup: int) -> dict[str, Any]:
    async with serve(_echo, HOST, 0, compression=None, max_queue=64) as server:
        port = next(iter(server.sockets)).getsockname()[1]
        async with connect(f"ws://{HOST}:{port}", compression=None, max_queue=64) as ws:
            samples = await _echo_rtts(ws, iterations, warmup)
    return {
        "what": "100-byte echo round trip, both ends on one event loop",
        **latency_summary(samples),
    }


async def relay_floor(
    warmup_s: float, measure_s: float, rate: int = 1000, library: str = "websockets"
) -> dict[str, Any]:
    """W1's load through the bare relays: latency from the sender's ``send()`` to the
    receiver's ``recv()``, and each process's CPU per message (the bench process holds
    both ends, as in W1, but as raw WebSockets, not ``Room`` participants). ``library``:
    what the two WebSocket relays serve with (``websockets`` or ``picows``); the bench's
    own ends are websockets either way."""
    server = await asyncio.to_thread(LocalRedisServer().start)
    procs: dict[str, asyncio.subprocess.Process] = {}
    try:
        ports = {}
        for role in ("out", "mid", "in"):
            procs[role], ports[role] = await start_child(RELAY, role, server.url, library)
        n_warm, total = int(warmup_s * rate), int((warmup_s + measure_s) * rate)
        sent = [0.0] * total
        got: list[float] = []
        async with (
            connect(f"ws://{HOST}:{ports['out']}", compression=None, max_queue=None) as rx,
            connect(f"ws://{HOST}:{ports['in']}", compression=None, max_queue=64) as tx,
        ):
            await asyncio.sleep(0.2)  # the out relay takes its receiver
            assert server.process is not None
            pids = {"redis": server.process.pid, "bench": os.getpid()}
            pids.update({f"relay_{role}": p.pid for role, p in procs.items()})
            meter = CpuMeter(pids)

            in_order = True

            async def receive() -> None:
                nonlocal in_order
                perf = time.perf_counter
                for expected in range(total):
                    message = await rx.recv()
                    now = perf()
                    seq = int(message[:10])
                    in_order = in_order and seq == expected
                    if seq >= n_warm:
                        got.append(now - sent[seq])

            receiving = asyncio.create_task(receive())
            loop = asyncio.get_running_loop()
            start = loop.time() + 0.01
            for i in range(total):
                delay = start + i / rate - loop.time()
                await asyncio.sleep(max(0.0, delay))
                sent[i] = time.perf_counter()
                await tx.send(f"{i:010d}" + PAYLOAD[10:])
            async with asyncio.timeout(30):
                await receiving
            cpu = meter.stop(total, "chunk")
    finally:
        for proc in procs.values():
            await stop_child(proc)
        await asyncio.to_thread(server.stop)
    return {
        "what": "W1's load through bare relays (ws -> XADD -> XREAD+XADD -> XREAD -> ws)",
        "websocket_library": library,
        "rate_per_s": rate,
        "in_order": in_order,
        **latency_summary(got),
        **cpu,
    }


def _thread_cpu() -> float:
    r = resource.getrusage(resource.RUSAGE_THREAD)
    return r.ru_utime + r.ru_stime


def _sends(port: int, sockets: int, frame: bytes, rounds: int, interval: float) -> float:
    """CPU seconds of this thread for ``rounds`` bursts of one ``send`` per socket,
    ``interval`` seconds apart (0: flat out); sleeping between bursts costs none."""
    conns = [socket.create_connection((HOST, port)) for _ in range(sockets)]
    try:
        for c in conns:
            c.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        for c in conns:  # warm: connections established and buffers sized
            c.sendall(frame)
        time.sleep(0.05)
        start, cpu0 = time.perf_counter(), _thread_cpu()
        for i in range(rounds):
            if interval:
                delay = start + i * interval - time.perf_counter()
                if delay > 0:
                    time.sleep(delay)
            for c in conns:
                c.sendall(frame)
        return _thread_cpu() - cpu0
    finally:
        for c in conns:
            c.close()


async def send_floor(rounds: int, sockets: int = 25) -> dict[str, Any]:
    """One socket ``send()`` of a W3-sized frame: its CPU in the sending thread, paced as W3
    at 1000 chunks/s and flat out (Linux: ``RUSAGE_THREAD``)."""
    if not hasattr(resource, "RUSAGE_THREAD"):
        return {"skipped": "needs RUSAGE_THREAD (Linux)"}
    # a delivered 100-character chunk is about 160 bytes of JSON, in a 4-byte frame header
    frame = bytes((0x81, 126)) + (160).to_bytes(2, "big") + b"x" * 160
    proc, port = await start_child(SINK)
    try:
        paced = await asyncio.to_thread(_sends, port, sockets, frame, rounds, 0.001)
        flat = await asyncio.to_thread(_sends, port, sockets, frame, rounds, 0.0)
    finally:
        await stop_child(proc)
    n = rounds * sockets
    return {
        "what": f"{len(frame)}-byte frame, one send() per socket to {sockets} loopback TCP "
        "sockets, CPU of the sending thread",
        "sockets": sockets,
        "sends": n,
        "cpu_us_per_send_paced_1ms": rnd(paced / n * 1e6, 2),
        "cpu_us_per_send_flat_out": rnd(flat / n * 1e6, 2),
    }


async def run_floors(redis_url: str, *, quick: bool) -> dict[str, Any]:
    n, warm = (500, 50) if quick else (2000, 200)
    warm_s, measure_s = (0.3, 1.5) if quick else (1.0, 5.0)  # W1's
    floors: dict[str, Any] = {
        "redis_xadd_xread": await redis_floor(redis_url, n, warm),
        "websocket_echo": await websocket_floor(n, warm),
        "websocket_echo_in_process": await websocket_floor_in_process(n, warm),
        "relay": await relay_floor(warm_s, measure_s),
        "socket_send": await send_floor(500 if quick else 2000),
    }
    if importlib.util.find_spec("picows") is not None:
        floors["relay_picows"] = await relay_floor(warm_s, measure_s, library="picows")
    else:
        floors["relay_picows"] = {"skipped": "picows is not installed (pip install picows)"}
    return floors
