"""Handlers registered after ``connect()`` without awaiting, as LiveKit's code does
(``room.register_text_stream_handler(...)`` then a stream straight away): a stream whose
header reaches the receiver's gateway after the registration call reaches the handler.
Topic routing stays at the server: a participant without a handler gets no byte of it."""

from __future__ import annotations

import asyncio
import signal
import warnings
from collections.abc import Callable
from typing import Any

import redis.asyncio as aioredis

import roomstreams
from roomstreams import Room
from roomstreams.protocol.keys import room_log_key

from .conftest import System
from .helpers import RawClient, wait_logged


def reader_to(q: asyncio.Queue[tuple[str, str]]) -> Callable[..., Any]:
    async def on_stream(reader: roomstreams.TextStreamReader, identity: str) -> None:
        q.put_nowait((identity, await reader.read_all()))

    return on_stream


async def test_unawaited_registration_right_after_connect_gets_the_stream(
    system: System, room_name: str
) -> None:
    """Five times in five (it used to be missed five times in five): connect, register
    without awaiting, the other side sends at once."""
    async with Room() as alice:
        await alice.connect(system.urls[0], system.token(room_name, "alice"))
        for n in range(5):
            got: asyncio.Queue[tuple[str, str]] = asyncio.Queue()
            async with Room() as bob:
                await bob.connect(system.urls[n % 2], system.token(room_name, f"bob{n}"))
                with warnings.catch_warnings():
                    warnings.simplefilter("error")  # not awaiting it must not warn
                    bob.register_text_stream_handler("chat", reader_to(got))
                await alice.local_participant.send_text(f"hello {n}", topic="chat")
                assert await asyncio.wait_for(got.get(), 5) == ("alice", f"hello {n}")


async def test_awaited_registration_still_works(system: System, room_name: str) -> None:
    got: asyncio.Queue[tuple[str, str]] = asyncio.Queue()
    async with Room() as alice, Room() as bob:
        await alice.connect(system.urls[0], system.token(room_name, "alice"))
        await bob.connect(system.urls[1], system.token(room_name, "bob"))
        await bob.register_text_stream_handler("chat", reader_to(got))
        await alice.local_participant.send_text("hi", topic="chat")
        assert await asyncio.wait_for(got.get(), 5) == ("alice", "hi")


async def _wait_subscribe_logged(s: System, room: str, topic: str) -> None:
    r = aioredis.Redis.from_url(s.redis_url)
    try:
        key, last = room_log_key(room, s.partitions), "0-0"
        async with asyncio.timeout(10):
            while True:
                for _, entries in await r.xread({key: last}, block=5000):
                    for entry_id, f in entries:
                        if f.get(b"k") == b"s" and f.get(b"tp") == topic.encode():
                            return
                        last = entry_id
    finally:
        await r.aclose()


async def test_registration_logged_after_the_header_still_gets_the_stream(
    system_factory: Callable[..., System], room_name: str
) -> None:
    """The hard case, forced: the router routes the header before it knows of bob's handler
    (bob's subscribe is in the log after the header). Bob's gateway has seen the subscribe by
    then and delivers header, chunks and trailer; carol, with no handler, gets nothing."""
    s = system_factory()
    alice = Room()
    await alice.connect(s.urls[0], s.token(room_name, "alice"))
    bob = await RawClient.connect(s.urls[1], s.token(room_name, "bob"))
    carol = await RawClient.connect(s.urls[1], s.token(room_name, "carol"))
    try:
        assert s.router is not None
        s.router.send_signal(signal.SIGSTOP)
        try:
            writer = await alice.local_participant.stream_text(topic="chat")
            await wait_logged(s, room_name, writer.stream_id, "h")
            await bob.send({"type": "subscribe", "topic": "chat"})  # no req, not awaited
            await _wait_subscribe_logged(s, room_name, "chat")
            await writer.write("after ")
            await writer.write("the header")
        finally:
            s.router.send_signal(signal.SIGCONT)
        await writer.close()
        header = await bob.expect("header", stream_id=writer.stream_id)
        assert header["sender"] == "alice" and header["topic"] == "chat"
        await bob.expect("trailer", stream_id=writer.stream_id)
        chunks = [f["content"] for f in bob.frames if f.get("type") == "chunk"]
        assert chunks == ["after ", "the header"]
        # carol: not one frame of the stream; the next thing she gets is this packet
        await alice.local_participant.publish_data(b"after the stream", topic="mark")
        msg = await asyncio.wait_for(carol.ws.recv(), 5)
        assert isinstance(msg, bytes) and msg.endswith(b"after the stream")
    finally:
        await bob.close()
        await carol.close()
        await alice.disconnect()


async def test_unregistered_handler_gets_nothing(system: System, room_name: str) -> None:
    s = system
    got: asyncio.Queue[tuple[str, str]] = asyncio.Queue()
    alice = Room()
    bob = Room()
    await alice.connect(s.urls[0], s.token(room_name, "alice"))
    await bob.connect(s.urls[1], s.token(room_name, "bob"))
    await bob.register_text_stream_handler("chat", reader_to(got))
    await bob.register_text_stream_handler("other", reader_to(got))
    try:
        await bob.unregister_text_stream_handler("chat")
        await alice.local_participant.send_text("not for bob", topic="chat")
        await alice.local_participant.send_text("for bob", topic="other")
        assert await asyncio.wait_for(got.get(), 5) == ("alice", "for bob")
        assert got.empty()
    finally:
        await bob.disconnect()
        await alice.disconnect()
