"""Small helpers for integration tests: collect what handlers receive, wait on events, speak
the wire protocol directly."""

from __future__ import annotations

import asyncio
import contextlib
import json
import time
import urllib.error
import urllib.request
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any, Generic, Protocol, Self, TypeVar

import pytest
import websockets
from prometheus_client.parser import text_string_to_metric_families
from websockets.asyncio.client import ClientConnection

import roomstreams
from roomstreams._redisio import client as redis_client
from roomstreams.protocol.keys import room_log_key

from .conftest import System


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


class _Record(Protocol):
    done: asyncio.Event


R = TypeVar("R", bound=_Record)


class StreamCollector(Generic[R]):
    """What stream handlers that record every stream share: the records, in handler-call
    order and by stream id, and waiting for them."""

    def __init__(self) -> None:
        self.streams: list[R] = []
        self.by_id: dict[str, R] = {}
        self._opened = asyncio.Condition()

    async def _opened_stream(self, stream_id: str, rec: R) -> None:
        self.streams.append(rec)
        self.by_id[stream_id] = rec
        async with self._opened:
            self._opened.notify_all()

    async def wait_count(self, n: int, timeout: float = 5.0) -> list[R]:
        async with asyncio.timeout(timeout):
            async with self._opened:
                await self._opened.wait_for(lambda: len(self.streams) >= n)
        return self.streams

    async def wait_done(self, stream_id: str, timeout: float = 5.0) -> R:
        async with asyncio.timeout(timeout):
            async with self._opened:
                await self._opened.wait_for(lambda: stream_id in self.by_id)
            rec = self.by_id[stream_id]
            await rec.done.wait()
        return rec


class Collector(StreamCollector[Received]):
    """A text stream handler that records every stream, in handler-call order, and the order
    in which its handlers finished reading."""

    def __init__(self) -> None:
        super().__init__()
        self.ended: list[str] = []

    async def __call__(self, reader: roomstreams.TextStreamReader, identity: str) -> None:
        rec = Received(identity, reader.info)
        sid = reader.info.stream_id
        await self._opened_stream(sid, rec)
        try:
            async for chunk in reader:
                rec.chunks.append(chunk)
        except roomstreams.StreamAborted as exc:
            rec.error = exc
        self.ended.append(reader.info.stream_id)
        rec.done.set()


class RawClient:
    """A participant speaking the wire protocol directly (frames as dicts)."""

    def __init__(self, ws: ClientConnection) -> None:
        self.ws = ws
        self.frames: list[dict[str, Any]] = []

    @classmethod
    async def connect(cls, url: str, token: str, **kw: Any) -> Self:
        ws = await websockets.connect(f"{url}/rtc?access_token={token}", compression=None, **kw)
        c = cls(ws)
        await c.expect("joined")
        return c

    async def send(self, frame: dict[str, Any] | str | bytes) -> None:
        await self.ws.send(json.dumps(frame) if isinstance(frame, dict) else frame)

    async def recv(self, timeout: float = 5.0) -> dict[str, Any]:
        async with asyncio.timeout(timeout):
            msg = await self.ws.recv()
        f = self.decode(msg)
        self.frames.append(f)
        return f

    def decode(self, msg: str | bytes) -> dict[str, Any]:
        """A received WebSocket message as a frame."""
        f: dict[str, Any] = json.loads(msg)
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


C = TypeVar("C", bound=RawClient)


def raw_connect_fixture(client: type[C]) -> Any:
    """A ``raw_connect`` fixture for a test module (``raw_connect = raw_connect_fixture(X)``):
    ``await raw_connect("alice", gateway=0, **grants)`` -> a connected ``client`` in the
    session system's room ``room_name``; every one closed at the end of the test."""

    @pytest.fixture
    async def raw_connect(
        system: System, room_name: str
    ) -> AsyncIterator[Callable[..., Awaitable[C]]]:
        made: list[C] = []

        async def _connect(identity: str, *, gateway: int = 0, **grants: Any) -> C:
            c = await client.connect(
                system.urls[gateway], system.token(room_name, identity, **grants)
            )
            made.append(c)
            return c

        yield _connect
        for c in made:
            with contextlib.suppress(Exception):
                await c.close()

    return raw_connect


async def wait_logged(s: System, room: str, stream_id: str, kind: str = "h") -> None:
    """Until the room's log holds the entry of kind ``kind`` ("h" header, "t" trailer) of
    ``stream_id``: a blocking read of the log, so it wakes on the append."""
    r = redis_client(s.redis_url)
    try:
        key, sid, k = room_log_key(room, s.partitions), stream_id.encode(), kind.encode()
        last: bytes | str = "0-0"
        async with asyncio.timeout(10):
            while True:
                for _, entries in await r.xread({key: last}, block=5000):
                    for entry_id, f in entries:
                        if f.get(b"k") == k and f.get(b"sid") == sid:
                            return
                        last = entry_id
    finally:
        await r.aclose()


async def wait_for_state(
    pred: Callable[[], Awaitable[bool]], timeout: float = 5.0, what: str = ""
) -> None:
    """Poll a condition that lives in another process (Redis state), bounded."""
    deadline = time.monotonic() + timeout
    while not await pred():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        await asyncio.sleep(0.02)


# -- /metrics -------------------------------------------------------------------------------

Samples = dict[tuple[str, frozenset[tuple[str, str]]], float]


def http_get(url: str) -> tuple[int, str, str]:
    """(status, content type, body) of a GET, HTTP errors included."""
    try:
        with urllib.request.urlopen(url, timeout=5) as resp:
            return resp.status, resp.headers.get("Content-Type", ""), resp.read().decode()
    except urllib.error.HTTPError as exc:
        return exc.code, exc.headers.get("Content-Type", ""), exc.read().decode()


async def scrape(url: str) -> tuple[Samples, set[str]]:
    """(samples by (name, labels), family names) of one ``/metrics`` page."""
    status, ctype, text = await asyncio.to_thread(http_get, url)
    assert status == 200, text
    assert ctype.startswith("text/plain"), ctype
    samples: Samples = {}
    families: set[str] = set()
    for fam in text_string_to_metric_families(text):
        families.add(fam.name)
        for s in fam.samples:
            samples[(s.name, frozenset(s.labels.items()))] = s.value
    return samples, families


def v(samples: Samples, name: str, **labels: str) -> float:
    return samples.get((name, frozenset(labels.items())), 0.0)


def gw_url(s: System, i: int) -> str:
    return f"http://127.0.0.1:{s.ports[i]}/metrics"


def router_url(s: System) -> str:
    return f"{s.api_url}/metrics"
