"""Idle rooms leave the router's read (the active-room index) and come back on the first
append: the router's XREAD names only rooms with recent entries, and a stream, a data
packet or a server-API packet sent into an idle room is routed at once, woken by the
gateway's (or the API's) notice on the partition's control stream, not by the slow sweep
(which these systems put an hour away)."""

from __future__ import annotations

import asyncio
import json
import time
import urllib.request
from collections.abc import AsyncIterator, Callable
from typing import Any

import pytest
import redis.asyncio as aioredis
from livekit.api import AccessToken, VideoGrants

import roomstreams
from roomstreams.protocol.keys import partition_ctl_key, partition_of, room_log_key

from .conftest import API_KEY, API_SECRET, System

pytestmark = pytest.mark.slow

IDLE = {"ROOMSTREAMS_ROOM_IDLE_AFTER": "1", "ROOMSTREAMS_IDLE_SWEEP": "3600"}


async def _router_reads(url: str, ctl: str) -> AsyncIterator[list[str]]:
    """The key lists of the router's XREADs of one partition, as Redis MONITOR sees them: in
    this system's database only (other systems of the session share the server, and their
    routers read keys of the same names in theirs)."""
    db = int(url.rsplit("/", 1)[1] or 0)
    r = aioredis.Redis.from_url(url)  # standalone: MONITOR is a per-server command
    try:
        async with r.monitor() as m:
            while True:
                cmd = await m.next_command()
                if int(cmd.get("db", -1)) != db:
                    continue
                args = str(cmd.get("command", "")).split()
                if args and args[0].upper() == "XREAD" and ctl in args:
                    yield args
    finally:
        await r.aclose()


async def _wait_idle(s: System, room: str, timeout: float = 10.0) -> None:
    """Until a read of the room's partition no longer names the room's log."""
    ctl, key = partition_ctl_key(partition_of(room, s.partitions)), room_log_key(room, s.partitions)
    async with asyncio.timeout(timeout):
        async for args in _router_reads(s.redis_url, ctl):
            if key not in args:
                return


async def _pair(
    s: System, room: str
) -> tuple[roomstreams.Room, roomstreams.Room, asyncio.Queue[Any]]:
    got: asyncio.Queue[Any] = asyncio.Queue()

    async def chat(reader: roomstreams.TextStreamReader, identity: str) -> None:
        got.put_nowait(("text", identity, await reader.read_all()))

    alice, bob = roomstreams.Room(), roomstreams.Room()
    bob.register_text_stream_handler("chat", chat)
    bob.on("data_received", lambda p: got.put_nowait(("data", p.participant_identity, p.payload)))
    await bob.connect(s.urls[1], s.token(room, "bob"))
    await alice.connect(s.urls[0], s.token(room, "alice"))
    return alice, bob, got


async def _next(q: asyncio.Queue[Any], within: float) -> Any:
    async with asyncio.timeout(within):
        return await q.get()


async def test_an_idle_room_leaves_the_read_and_wakes_on_a_stream(
    system_factory: Callable[..., System], room_name: str
) -> None:
    s = system_factory(**IDLE)
    alice, bob, got = await _pair(s, room_name)
    try:
        await alice.local_participant.send_text("before", topic="chat")
        assert await _next(got, 5) == ("text", "alice", "before")
        await _wait_idle(s, room_name)
        for i in range(3):  # again and again: each time idle, then woken by the send
            began = time.monotonic()
            await alice.local_participant.send_text(f"after {i}", topic="chat")
            assert await _next(got, 3) == ("text", "alice", f"after {i}")
            # routed by the wake notice, well before any sweep (an hour away)
            assert time.monotonic() - began < 2.0
            await _wait_idle(s, room_name)
        await alice.local_participant.publish_data(b"packet", topic="t")
        assert await _next(got, 3) == ("data", "alice", b"packet")
    finally:
        await alice.disconnect()
        await bob.disconnect()


async def test_busy_room_stays_in_the_read(
    system_factory: Callable[..., System], room_name: str
) -> None:
    """A room with an entry every 0.2 s is never set aside (idle after 5 s: generous, so a
    loaded machine's scheduling pauses do not idle it)."""
    s = system_factory(**{**IDLE, "ROOMSTREAMS_ROOM_IDLE_AFTER": "5"})
    alice, bob, got = await _pair(s, room_name)
    key = room_log_key(room_name, s.partitions)
    ctl = partition_ctl_key(partition_of(room_name, s.partitions))
    try:
        stop = asyncio.Event()

        async def sender() -> None:
            sent: list[asyncio.Task[None]] = []
            i = 0
            while not stop.is_set():  # one packet every 0.2 s, whatever the acks take
                publish = alice.local_participant.publish_data(str(i).encode())
                sent.append(asyncio.create_task(publish))
                i += 1
                await asyncio.sleep(0.2)  # the traffic pattern under test, not a wait
            await asyncio.gather(*sent)

        task = asyncio.create_task(sender())
        await _next(got, 5)
        reads = 0
        deadline = time.monotonic() + 5.0
        async for args in _router_reads(s.redis_url, ctl):
            assert key in args, "a busy room was set aside"
            reads += 1
            if time.monotonic() > deadline and reads > 5:
                break
        stop.set()
        await task
    finally:
        await alice.disconnect()
        await bob.disconnect()


async def test_server_api_packet_wakes_an_idle_room(
    system_factory: Callable[..., System], room_name: str
) -> None:
    s = system_factory(**IDLE)
    alice, bob, got = await _pair(s, room_name)
    try:
        await _wait_idle(s, room_name)
        grants = VideoGrants(room=room_name, room_admin=True)
        token = AccessToken(API_KEY, API_SECRET).with_grants(grants).to_jwt()
        body = json.dumps({"room": room_name, "data": "aGk=", "kind": 0, "topic": "srv"})

        def call() -> int:
            req = urllib.request.Request(
                f"{s.api_url}/twirp/livekit.RoomService/SendData",
                data=body.encode(),
                headers={"Authorization": f"Bearer {token}", "Content-Type": "application/json"},
            )
            with urllib.request.urlopen(req, timeout=5) as resp:
                return int(resp.status)

        began = time.monotonic()
        assert await asyncio.to_thread(call) == 200
        kind, _sender, payload = await _next(got, 3)
        assert (kind, payload) == ("data", b"hi")
        # routed by the API's wake notice, well before any sweep (an hour away)
        assert time.monotonic() - began < 2.0
    finally:
        await alice.disconnect()
        await bob.disconnect()
