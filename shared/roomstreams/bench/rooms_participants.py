"""``python -m roomstreams.bench.rooms_participants``: light participants for W7/W8, many
rooms in one process. Raw WebSockets speaking the wire protocol (no ``roomstreams.Room``:
ten thousand of those would cost the benchmark more than the system under test), talking
to the benchmark over standard input (commands) and output (events), one JSON object per
line (as ``w3p_receivers`` does).

1. stdin, first line: ``{"urls": [gw0, gw1], "api_key", "api_secret", "rooms": [name,
   ...], "per_room": 1 or 2, "concurrency": n, "topic": t, "first": i}``. Room ``rooms[k]``
   (global index ``first + k``) gets a receiver ``rx`` on gateway ``(first + k + 1) % 2``
   that registers a text handler for ``topic`` (``subscribe`` and its ``ack``) and, with
   ``per_room`` 2, a sender ``tx`` on gateway ``(first + k) % 2``. Answers ``{"event":
   "ready", "connected", "failed", "errors", "seconds", "pid"}``.
2. ``{"cmd": "go", "rate": r, "seconds": s}``: every sender opens one text stream and
   writes a 100-byte chunk every ``1/r`` s (phases spread evenly over the period) for ``s``
   seconds, then closes it; each chunk carries ``time.monotonic_ns()`` (one clock for every
   process on Linux). Once the chunks are sent and the receivers have had ``drain`` seconds:
   ``{"event": "done", "sent", "received", "late_ticks", "p50_ms", "p99_ms", "max_ms",
   "closed"}``.
3. ``{"cmd": "quit"}`` or end of stdin: every socket is closed and the process exits.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import sys
import time
from typing import Any

from ..token import AccessToken, VideoGrants

_OUT = -1
CHUNK_BYTES = 100
STAMP_DIGITS = 20


def _emit(msg: dict[str, Any]) -> None:
    data = (json.dumps(msg, separators=(",", ":")) + "\n").encode()
    view = memoryview(data)
    with contextlib.suppress(OSError):
        while view:
            view = view[os.write(_OUT, view) :]


def _token(key: str, secret: str, room: str, identity: str) -> str:
    grants = VideoGrants(room=room, room_join=True, can_publish_data=True, can_subscribe=True)
    return AccessToken(key, secret).with_identity(identity).with_grants(grants).to_jwt()


class Participants:
    def __init__(self, cfg: dict[str, Any]) -> None:
        self.cfg = cfg
        self.senders: list[Any] = []
        self.receivers: list[Any] = []
        self.received = 0
        self.latencies: list[int] = []
        self.measuring = False
        self.closed = 0
        self.errors: dict[str, int] = {}

    async def _open(self, url: str, token: str) -> Any:
        import websockets

        ws = await websockets.connect(
            f"{url}/rtc?access_token={token}",
            compression=None,
            open_timeout=60,
            ping_interval=None,  # the gateway pings; answering is enough
            max_queue=64,
        )
        async with asyncio.timeout(60):
            while True:
                f = json.loads(await ws.recv())
                if f.get("type") == "joined":
                    return ws
                if f.get("type") == "error":
                    raise RuntimeError(f"join refused: {f}")

    async def _connect_room(self, k: int, room: str) -> None:
        cfg = self.cfg
        urls, i = cfg["urls"], cfg["first"] + k
        key, secret = cfg["api_key"], cfg["api_secret"]
        rx = await self._open(urls[(i + 1) % len(urls)], _token(key, secret, room, "rx"))
        await rx.send(json.dumps({"type": "subscribe", "topic": cfg["topic"], "req": 1}))
        async with asyncio.timeout(60):
            while json.loads(await rx.recv()).get("type") != "ack":
                pass
        self.receivers.append(rx)
        if cfg["per_room"] >= 2:
            tx = await self._open(urls[i % len(urls)], _token(key, secret, room, "tx"))
            self.senders.append(tx)

    async def connect(self) -> dict[str, Any]:
        t0 = time.monotonic()
        sem = asyncio.Semaphore(self.cfg.get("concurrency", 100))
        failed = 0

        async def one(k: int, room: str) -> None:
            nonlocal failed
            async with sem:
                try:
                    await self._connect_room(k, room)
                except Exception as exc:
                    failed += 1
                    name = type(exc).__name__
                    self.errors[name] = self.errors.get(name, 0) + 1

        await asyncio.gather(*(one(k, r) for k, r in enumerate(self.cfg["rooms"])))
        for rx in self.receivers:
            asyncio.get_running_loop().create_task(self._read(rx))
        for tx in self.senders:
            asyncio.get_running_loop().create_task(self._drain(tx))
        return {
            "event": "ready",
            "connected": len(self.receivers) + len(self.senders),
            "failed": failed,
            "errors": self.errors,
            "seconds": round(time.monotonic() - t0, 2),
            "pid": os.getpid(),
        }

    async def _read(self, ws: Any) -> None:
        now = time.monotonic_ns
        try:
            async for msg in ws:
                if isinstance(msg, str) and msg.startswith('{"type":"chunk"'):
                    f = json.loads(msg)
                    self.received += 1
                    if self.measuring:
                        self.latencies.append(now() - int(f["content"][:STAMP_DIGITS]))
        except Exception:
            pass
        self.closed += 1

    async def _drain(self, ws: Any) -> None:
        """A sender reads what it is sent (participant events, pacing needs nothing)."""
        try:
            async for _ in ws:
                pass
        except Exception:
            pass
        self.closed += 1

    async def go(self, rate: float, seconds: float, drain: float) -> dict[str, Any]:
        loop = asyncio.get_running_loop()
        n = len(self.senders)
        topic = self.cfg["topic"]
        sids = [f"w7-{os.getpid()}-{k}" for k in range(n)]
        for ws, sid in zip(self.senders, sids, strict=True):
            header = {"type": "header", "stream_id": sid, "topic": topic, "timestamp": 1}
            with contextlib.suppress(Exception):
                await ws.send(json.dumps(header))
        self.received = 0
        self.latencies = []
        self.measuring = True
        period = 1.0 / rate
        ticks = max(1, int(seconds * rate))
        filler = "." * (CHUNK_BYTES - STAMP_DIGITS)
        sent = late = 0
        step = 0.01  # one timer per 10 ms, each sending the chunks that are due
        start = loop.time() + 0.05
        total = ticks * n
        for j in range(total):
            # chunk j: sender j % n, its (j // n)-th chunk, due at an even spread
            due = start + (j // n) * period + (j % n) * period / max(1, n)
            delay = due - loop.time()
            if delay > step:
                await asyncio.sleep(delay)
            elif delay < -0.1:
                late += 1
            k = j % n
            content = f"{time.monotonic_ns():0{STAMP_DIGITS}d}{filler}"
            frame = {"type": "chunk", "stream_id": sids[k], "chunk_index": j // n}
            frame["content"] = content
            try:
                await self.senders[k].send(json.dumps(frame))
                sent += 1
            except Exception:
                pass
        for ws, sid in zip(self.senders, sids, strict=True):
            with contextlib.suppress(Exception):
                await ws.send(json.dumps({"type": "trailer", "stream_id": sid}))
        await asyncio.sleep(drain)
        self.measuring = False
        lat = sorted(self.latencies)

        def pct(q: float) -> float | None:
            return round(lat[min(len(lat) - 1, int(q * len(lat)))] / 1e6, 3) if lat else None

        return {
            "event": "done",
            "sent": sent,
            "received": self.received,
            "late_chunks": late,
            "p50_ms": pct(0.5),
            "p99_ms": pct(0.99),
            "max_ms": round(lat[-1] / 1e6, 3) if lat else None,
            "closed": self.closed,
        }

    async def close(self) -> None:
        sem = asyncio.Semaphore(500)

        async def one(ws: Any) -> None:
            async with sem:
                with contextlib.suppress(Exception):
                    async with asyncio.timeout(5):
                        await ws.close()

        await asyncio.gather(*(one(ws) for ws in [*self.senders, *self.receivers]))


async def _main() -> int:
    loop = asyncio.get_running_loop()
    reader = asyncio.StreamReader(limit=1 << 26)
    await loop.connect_read_pipe(lambda: asyncio.StreamReaderProtocol(reader), sys.stdin)
    line = await reader.readline()
    if not line:
        return 1
    p = Participants(json.loads(line))
    _emit(await p.connect())
    try:
        while line := await reader.readline():
            cmd = json.loads(line)
            if cmd.get("cmd") == "go":
                _emit(await p.go(cmd["rate"], cmd["seconds"], cmd.get("drain", 3.0)))
            elif cmd.get("cmd") == "quit":
                break
    finally:
        await p.close()
    return 0


if __name__ == "__main__":
    _OUT = os.dup(1)
    os.dup2(2, 1)
    from .._loop import run  # uvloop where it installs

    sys.exit(run(_main()))
