"""W7 (many rooms) and W8 (idle scale). The rooms' participants are light raw-WebSocket
clients in processes of their own (``rooms_participants``); the measured room of W7 is
W1 itself (``roomstreams.Room`` participants in the benchmark process), run once alone and
once with the rooms' load, in the same run.

- W7: ``rooms`` rooms of two participants (sender and receiver on different gateways), each
  sender writing one 100-byte chunk a second (``rooms`` chunks/s in all): W1's p50/p99
  alone and under that load, CPU of every process, Redis memory and router RSS per room.
- W8: ``created`` rooms made with LiveKit's CreateRoom (Twirp) and ``joined`` rooms with
  one participant each, all left idle: Redis memory and router RSS per room of each kind,
  and the router's CPU while nothing happens.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import sys
import time
import uuid
from typing import Any

from .stats import rnd
from .system import API_KEY, HOST, BenchSystem, rss_bytes
from .workloads import KB, MB, TOPIC, CpuMeter, w1_latency

__all__ = ["w7_many_rooms", "w8_idle"]

#: rooms per participant process at most (each holds two sockets per W7 room)
ROOMS_PER_PROCESS = 5000
#: the router's default ``room_idle_after``: a room without entries that long leaves its
#: partition's read (W8 measures the joined rooms again once they are past it)
ROOM_IDLE_AFTER_S = 10.0


def _say(msg: str) -> None:
    print(f"bench: {msg}", file=sys.stderr, flush=True)


class ParticipantProcess:
    """One ``rooms_participants`` process, driven over its stdin/stdout."""

    def __init__(self, cfg: dict[str, Any]) -> None:
        self.cfg = cfg
        self.proc: asyncio.subprocess.Process | None = None
        self.pid = 0

    async def start(self) -> None:
        self.proc = await asyncio.create_subprocess_exec(
            sys.executable,
            "-m",
            "roomstreams.bench.rooms_participants",
            stdin=asyncio.subprocess.PIPE,
            stdout=asyncio.subprocess.PIPE,
            limit=1 << 24,
        )
        self.pid = self.proc.pid
        await self.send(self.cfg)

    async def send(self, msg: dict[str, Any]) -> None:
        assert self.proc is not None and self.proc.stdin is not None
        self.proc.stdin.write((json.dumps(msg) + "\n").encode())
        await self.proc.stdin.drain()

    async def expect(self, event: str) -> dict[str, Any]:
        assert self.proc is not None and self.proc.stdout is not None
        while True:
            line = await self.proc.stdout.readline()
            if not line:
                raise RuntimeError(f"participant process {self.pid} exited before {event!r}")
            msg: dict[str, Any] = json.loads(line)
            if msg.get("event") == event:
                return msg

    async def stop(self) -> None:
        if self.proc is None or self.proc.returncode is not None:
            return
        with contextlib.suppress(Exception):
            await self.send({"cmd": "quit"})
        try:
            await asyncio.wait_for(self.proc.wait(), 60)
        except TimeoutError:
            self.proc.kill()
            await self.proc.wait()


async def _start_participants(
    system: BenchSystem, tag: str, n_rooms: int, per_room: int, concurrency: int = 100
) -> tuple[list[ParticipantProcess], list[dict[str, Any]], float]:
    prefix = f"bench-{tag}-{uuid.uuid4().hex[:8]}"
    names = [f"{prefix}-{i}" for i in range(n_rooms)]
    n_procs = max(1, -(-n_rooms * per_room // (2 * ROOMS_PER_PROCESS)))
    size = -(-n_rooms // n_procs)
    procs = []
    for k in range(n_procs):
        first = k * size
        procs.append(
            ParticipantProcess(
                {
                    "urls": system.urls,
                    "api_key": API_KEY,
                    "api_secret": system.api_secret,
                    "rooms": names[first : first + size],
                    "first": first,
                    "per_room": per_room,
                    "concurrency": concurrency,
                    "topic": TOPIC,
                }
            )
        )
    t0 = time.perf_counter()
    for p in procs:
        await p.start()
    try:
        ready = await asyncio.wait_for(
            asyncio.gather(*(p.expect("ready") for p in procs)), 120 + n_rooms * per_room / 50
        )
    except BaseException:
        await asyncio.gather(*(p.stop() for p in procs), return_exceptions=True)
        raise
    return procs, list(ready), time.perf_counter() - t0


def _ready_summary(ready: list[dict[str, Any]], seconds: float) -> dict[str, Any]:
    connected = sum(r["connected"] for r in ready)
    errors: dict[str, int] = {}
    for r in ready:
        for k, v in r["errors"].items():
            errors[k] = errors.get(k, 0) + v
    return {
        "participant_processes": len(ready),
        "connected": connected,
        "connect_failures": sum(r["failed"] for r in ready),
        "connect_errors": errors,
        "connect_s": rnd(seconds, 1),
        "connects_per_s": rnd(connected / seconds, 0) if seconds > 0 else None,
    }


def _per(delta: float, n: int, unit: float) -> float | None:
    return rnd(delta / n / unit, 2) if n else None


# -- W7 ---------------------------------------------------------------------------------------


async def w7_many_rooms(
    system: BenchSystem, *, quick: bool, rooms: int | None = None
) -> dict[str, Any]:
    n = rooms or (200 if quick else 10_000)
    _say(f"w7: W1 alone first, then {n} rooms of two at one chunk/s each")
    alone = await w1_latency(system, quick=quick)
    pids = system.pids()
    await asyncio.sleep(1.0)
    mem0 = await asyncio.to_thread(system.redis_used_memory)
    rss0 = {k: rss_bytes(p) for k, p in pids.items()}
    procs, ready, connect_s = await _start_participants(system, "w7", n, 2)
    try:
        await asyncio.sleep(2.0)  # joins routed, queues settled
        mem1 = await asyncio.to_thread(system.redis_used_memory)
        rss1 = {k: rss_bytes(p) for k, p in pids.items()}
        ramp = 3.0
        load_s = ramp + (4.0 if quick else 10.0) + 3.0
        for p in procs:
            await p.send({"cmd": "go", "rate": 1.0, "seconds": load_s, "drain": 3.0})
        await asyncio.sleep(ramp)
        meter = CpuMeter({**pids, **{f"participants{i}": p.pid for i, p in enumerate(procs)}})
        try:
            loaded = await w1_latency(system, quick=quick)
        except Exception as exc:  # past what the machine carries: a figure, not a crash
            _say(f"w7: W1 under the rooms' load failed: {exc!r}")
            loaded = {"error": repr(exc)}
        cpu = meter.stop()
        mem2 = await asyncio.to_thread(system.redis_used_memory)
        _say("w7: waiting for the rooms' senders to finish")
        done = await asyncio.wait_for(
            asyncio.gather(*(p.expect("done") for p in procs)), load_s + 120
        )
    finally:
        await asyncio.gather(*(p.stop() for p in procs), return_exceptions=True)
    sent = sum(d["sent"] for d in done)
    received = sum(d["received"] for d in done)
    a99, l99 = alone.get("p99_ms"), loaded.get("p99_ms")
    ratio = rnd(l99 / a99, 2) if isinstance(a99, float) and isinstance(l99, float) else None
    return {
        "rooms": n,
        "participants": 2 * n,
        "rooms_chunks_per_s_target": n,
        **_ready_summary(ready, connect_s),
        "rooms_load_seconds": load_s,
        "rooms_chunks_sent": sent,
        "rooms_chunks_received": received,
        "rooms_chunks_per_s_sent": rnd(sent / (load_s - 0.05), 0),
        "rooms_delivered_fraction": rnd(received / sent, 4) if sent else None,
        "rooms_chunks_sent_over_100ms_late": sum(d["late_chunks"] for d in done),
        "rooms_latency_p50_ms": max((d["p50_ms"] or 0 for d in done), default=None),
        "rooms_latency_p99_ms": max((d["p99_ms"] or 0 for d in done), default=None),
        "rooms_connections_closed": sum(d["closed"] for d in done),
        "w1_alone": {k: alone.get(k) for k in ("p50_ms", "p99_ms", "max_ms")},
        "w1_under_load": {
            k: loaded.get(k)
            for k in ("p50_ms", "p99_ms", "max_ms", "delivered_all_in_order", "error")
        },
        "w1_p50_ratio": rnd(loaded["p50_ms"] / alone["p50_ms"], 2)
        if isinstance(alone.get("p50_ms"), float) and isinstance(loaded.get("p50_ms"), float)
        else None,
        "w1_p99_ratio": ratio,
        "target_p99_ratio_max": 2.0,
        "target_met": ratio is not None and ratio <= 2.0,
        "redis_bytes_per_room_idle": _per(mem1 - mem0, n, 1),
        "redis_bytes_per_room_loaded": _per(mem2 - mem0, n, 1),
        "redis_used_memory_mb": {
            "before": rnd(mem0 / MB, 1),
            "joined": rnd(mem1 / MB, 1),
            "loaded": rnd(mem2 / MB, 1),
        },
        "router_kb_per_room": _per(rss1["router"] - rss0["router"], n, KB),
        "gateway_kb_per_connection": {
            k: _per(rss1[k] - rss0[k], n, KB) for k in rss0 if k.startswith("gateway")
        },
        "routers_partitions": await asyncio.to_thread(system.routers_partitions),
        **cpu,
    }


# -- W8 ---------------------------------------------------------------------------------------


class _Http:
    """A minimal HTTP/1.1 keep-alive client for the Twirp calls (JSON in, status out)."""

    def __init__(self, host: str, port: int) -> None:
        self.host, self.port = host, port
        self.rw: tuple[asyncio.StreamReader, asyncio.StreamWriter] | None = None

    async def post(self, path: str, token: str, body: dict[str, Any]) -> int:
        if self.rw is None:
            self.rw = await asyncio.open_connection(self.host, self.port)
        reader, writer = self.rw
        data = json.dumps(body).encode()
        writer.write(
            (
                f"POST {path} HTTP/1.1\r\nHost: {self.host}:{self.port}\r\n"
                f"Authorization: Bearer {token}\r\nContent-Type: application/json\r\n"
                f"Content-Length: {len(data)}\r\n\r\n"
            ).encode()
            + data
        )
        await writer.drain()
        status = int((await reader.readline()).split()[1])
        length = 0
        while (line := await reader.readline()) not in (b"\r\n", b""):
            name, _, value = line.decode().partition(":")
            if name.lower() == "content-length":
                length = int(value)
        await reader.readexactly(length)
        return status

    async def close(self) -> None:
        if self.rw is not None:
            self.rw[1].close()
            with contextlib.suppress(Exception):
                await self.rw[1].wait_closed()


async def _create_rooms(system: BenchSystem, names: list[str], concurrency: int = 16) -> int:
    from ..token import AccessToken, VideoGrants

    token = (
        AccessToken(API_KEY, system.api_secret)
        .with_identity("bench")
        .with_grants(VideoGrants(room_create=True))
        .to_jwt()
    )
    assert system.router is not None
    queue = iter(names)
    ok = 0

    async def worker() -> None:
        nonlocal ok
        http = _Http(HOST, system.router.port if system.router else 0)
        try:
            for name in queue:
                status = await http.post(
                    "/twirp/livekit.RoomService/CreateRoom", token, {"name": name}
                )
                ok += status == 200
        finally:
            await http.close()

    await asyncio.gather(*(worker() for _ in range(concurrency)))
    return ok


async def _idle_cpu(system: BenchSystem, seconds: float) -> dict[str, Any]:
    meter = CpuMeter(system.pids())
    await asyncio.sleep(seconds)
    return meter.stop()


async def w8_idle(
    system: BenchSystem, *, quick: bool, rooms: int | None = None, joined: int | None = None
) -> dict[str, Any]:
    created_n = rooms or (1000 if quick else 100_000)
    joined_n = joined if joined is not None else (200 if quick else 10_000)
    idle_s = 3.0 if quick else 10.0
    pids = system.pids()
    await asyncio.sleep(1.0)
    cpu_empty = await _idle_cpu(system, idle_s)
    mem0 = await asyncio.to_thread(system.redis_used_memory)
    rss0 = {k: rss_bytes(p) for k, p in pids.items()}
    _say(f"w8: creating {created_n} rooms with CreateRoom")
    t0 = time.perf_counter()
    names = [f"bench-w8c-{uuid.uuid4().hex[:8]}-{i}" for i in range(created_n)]
    created = await _create_rooms(system, names)
    create_s = time.perf_counter() - t0
    await asyncio.sleep(1.0)
    mem1 = await asyncio.to_thread(system.redis_used_memory)
    rss1 = {k: rss_bytes(p) for k, p in pids.items()}
    cpu_created = await _idle_cpu(system, idle_s)
    _say(f"w8: {joined_n} rooms with one idle participant each")
    procs, ready, connect_s = await _start_participants(system, "w8j", joined_n, 1)
    try:
        await asyncio.sleep(3.0)
        mem2 = await asyncio.to_thread(system.redis_used_memory)
        rss2 = {k: rss_bytes(p) for k, p in pids.items()}
        cpu_fresh = await _idle_cpu(system, idle_s)
        # the router sets a room aside once it had no entry for room_idle_after (10 s):
        # measure again once every joined room is past that
        await asyncio.sleep(max(0.0, ROOM_IDLE_AFTER_S + 2.0 - 3.0 - idle_s))
        cpu_joined = await _idle_cpu(system, idle_s)
    finally:
        await asyncio.gather(*(p.stop() for p in procs), return_exceptions=True)

    def router_cpu(c: dict[str, Any]) -> float | None:
        v = c["cpu_percent_of_one_core"]
        return rnd(sum(x for k, x in v.items() if k.startswith("router")), 2)

    return {
        "created_rooms": created_n,
        "created_ok": created,
        "create_s": rnd(create_s, 1),
        "creates_per_s": rnd(created_n / create_s, 0) if create_s > 0 else None,
        "joined_rooms": joined_n,
        **_ready_summary(ready, connect_s),
        "idle_seconds_measured": idle_s,
        "redis_bytes_per_created_room": _per(mem1 - mem0, created_n, 1),
        "redis_bytes_per_joined_room": _per(mem2 - mem1, joined_n, 1),
        "redis_used_memory_mb": {
            "before": rnd(mem0 / MB, 1),
            "created": rnd(mem1 / MB, 1),
            "joined": rnd(mem2 / MB, 1),
        },
        "router_rss_mb": {
            k: {
                "before": rnd(rss0[k] / MB, 1),
                "created": rnd(rss1[k] / MB, 1),
                "joined": rnd(rss2[k] / MB, 1),
            }
            for k in pids
            if k.startswith("router")
        },
        "router_kb_per_created_room": _per(rss1["router"] - rss0["router"], created_n, KB),
        "router_kb_per_joined_room": _per(
            sum(rss2[k] - rss1[k] for k in pids if k.startswith("router")), joined_n, KB
        ),
        "router_idle_cpu_percent_of_one_core": {
            "no_rooms": router_cpu(cpu_empty),
            "created_rooms": router_cpu(cpu_created),
            "created_and_joined_rooms_just_joined": router_cpu(cpu_fresh),
            "created_and_joined_rooms": router_cpu(cpu_joined),
        },
        "target_router_idle_cpu_percent_max": 2.0,
        "target_met": (router_cpu(cpu_joined) or 0) < 2.0,
        "idle_cpu_with_all_rooms": cpu_joined,
        "routers_partitions": await asyncio.to_thread(system.routers_partitions),
    }
