"""Small helpers for integration tests: collect what handlers receive, wait on events."""

from __future__ import annotations

import asyncio
import json
from dataclasses import dataclass, field
from typing import Any

import websockets
from websockets.asyncio.client import ClientConnection

import roomstreams


@dataclass
class Received:
    identity: str
    info: roomstreams.TextStreamInfo
    chunks: list[str] = field(default_factory=list)
    error: BaseException | None = None
    done: asyncio.Event = field(default_factory=asyncio.Event)

    @property
    def text(self) -> str:
        return "".join(self.chunks)


class Collector:
    """A text stream handler that records every stream, in handler-call order, and the order
    in which readers ended."""

    def __init__(self) -> None:
        self.streams: list[Received] = []
        self.by_id: dict[str, Received] = {}
        self.ended: list[str] = []
        self.closed_order: list[str] = []
        self._opened = asyncio.Condition()

    async def __call__(self, reader: roomstreams.TextStreamReader, identity: str) -> None:
        rec = Received(identity, reader.info)
        self.streams.append(rec)
        self.by_id[reader.info.stream_id] = rec
        # The spec's order is the order readers are *closed* (their end recorded), which the
        # client does in trailer order; handler tasks may then finish in any order.
        end = reader._end
        sid = reader.info.stream_id

        def recording_end(*args: Any, **kwargs: Any) -> None:
            if not reader.closed:
                self.closed_order.append(sid)
            end(*args, **kwargs)

        reader._end = recording_end  # type: ignore[method-assign]
        async with self._opened:
            self._opened.notify_all()
        try:
            async for chunk in reader:
                rec.chunks.append(chunk)
        except roomstreams.StreamAborted as exc:
            rec.error = exc
        self.ended.append(reader.info.stream_id)
        rec.done.set()

    async def wait_count(self, n: int, timeout: float = 5.0) -> list[Received]:
        async with asyncio.timeout(timeout):
            async with self._opened:
                await self._opened.wait_for(lambda: len(self.streams) >= n)
        return self.streams

    async def wait_done(self, stream_id: str, timeout: float = 5.0) -> Received:
        async with asyncio.timeout(timeout):
            async with self._opened:
                await self._opened.wait_for(lambda: stream_id in self.by_id)
            rec = self.by_id[stream_id]
            await rec.done.wait()
        return rec


class RawClient:
    """A participant speaking the wire protocol directly (frames as dicts)."""

    def __init__(self, ws: ClientConnection) -> None:
        self.ws = ws
        self.frames: list[dict[str, Any]] = []

    @classmethod
    async def connect(cls, url: str, token: str, **kw: Any) -> RawClient:
        ws = await websockets.connect(f"{url}/rtc?access_token={token}", compression=None, **kw)
        c = cls(ws)
        await c.expect("joined")
        return c

    async def send(self, frame: dict[str, Any] | str | bytes) -> None:
        await self.ws.send(json.dumps(frame) if isinstance(frame, dict) else frame)

    async def recv(self, timeout: float = 5.0) -> dict[str, Any]:
        async with asyncio.timeout(timeout):
            msg = await self.ws.recv()
        f: dict[str, Any] = json.loads(msg)
        self.frames.append(f)
        return f

    async def expect(self, type_: str, timeout: float = 5.0, **match: Any) -> dict[str, Any]:
        """Next frame of ``type_`` matching ``match`` (other frames are kept in ``frames``)."""
        async with asyncio.timeout(timeout):
            while True:
                f = await self.recv(timeout)
                if f.get("type") == type_ and all(f.get(k) == v for k, v in match.items()):
                    return f

    async def subscribe(self, topic: str, kind: str = "text", req: int = 1) -> None:
        await self.send({"type": "subscribe", "topic": topic, "kind": kind, "req": req})
        await self.expect("ack", req=req)

    async def close(self) -> None:
        await self.ws.close()
