"""Routers share the partitions: a second router takes half of them over from the first (the
hand-over loses nothing), a router stopped with SIGTERM hands its partitions back before it
exits, one killed with SIGKILL is replaced when its leases lapse (within 2 s). Data packets
published all the while arrive exactly once, in order."""

from __future__ import annotations

import asyncio
import signal
import subprocess
import time
from collections import Counter
from collections.abc import Callable

import pytest
import redis.asyncio as aioredis

import roomstreams
from roomstreams._redis_server import free_port

from .conftest import System, _spawn, end_processes
from .helpers import wait_for_state

pytestmark = pytest.mark.slow

ROUTER_ID_OF_LEASE = "rs:{p%d}:lease"


async def _owners(r: aioredis.Redis, partitions: int) -> list[bytes | None]:
    async with r.pipeline(transaction=False) as pipe:
        for p in range(partitions):
            pipe.get(ROUTER_ID_OF_LEASE % p)
        got: list[bytes | None] = await pipe.execute()
    return got


async def _wait_split(
    r: aioredis.Redis, partitions: int, routers: int, timeout: float, what: str
) -> Counter[bytes]:
    """Until every partition is owned and ``routers`` routers each own their even share."""
    share = -(-partitions // routers)
    counts: Counter[bytes] = Counter()

    async def split() -> bool:
        nonlocal counts
        owners = await _owners(r, partitions)
        counts = Counter(o for o in owners if o is not None)
        return (
            None not in owners
            and len(counts) == routers
            and all(partitions - share * (routers - 1) <= n <= share for n in counts.values())
        )

    await wait_for_state(split, timeout, what)
    return counts


class Packets:
    """alice publishes numbered packets without pause; bob records what arrives."""

    def __init__(self, alice: roomstreams.Room, bob: roomstreams.Room) -> None:
        self.alice = alice
        self.got: list[int] = []
        self.sent = 0
        self._stop = asyncio.Event()
        self._more = asyncio.Event()
        bob.on("data_received", self._received)
        self.task = asyncio.create_task(self._publish())

    def _received(self, p: roomstreams.DataPacket) -> None:
        self.got.append(int(p.payload))
        self._more.set()

    async def _publish(self) -> None:
        while not self._stop.is_set():
            await self.alice.local_participant.publish_data(str(self.sent).encode(), topic="n")
            self.sent += 1  # returned: the router acknowledged it
            await asyncio.sleep(0.005)  # a steady trickle, not a flood

    async def received(self, n: int, timeout: float = 20.0) -> None:
        async with asyncio.timeout(timeout):
            while len(self.got) < n:
                self._more.clear()
                await self._more.wait()

    async def stop_and_check(self) -> None:
        self._stop.set()
        await self.task
        await self.received(self.sent)
        assert self.got == list(range(self.sent)), "lost, repeated or reordered packets"


async def _pair(s: System, room: str) -> tuple[roomstreams.Room, roomstreams.Room]:
    alice, bob = roomstreams.Room(), roomstreams.Room()
    await bob.connect(s.urls[1], s.token(room, "bob"))
    await alice.connect(s.urls[0], s.token(room, "alice"))
    return alice, bob


def _router(s: System) -> subprocess.Popen[bytes]:
    return _spawn("services.router", {**s.env, "ROOMSTREAMS_ROUTER_HTTP_PORT": str(free_port())})


async def test_routers_split_the_partitions_and_hand_back_on_sigterm(
    system_factory: Callable[..., System], room_name: str
) -> None:
    s = system_factory(gateways=2)
    r = aioredis.Redis.from_url(s.redis_url)
    alice, bob = await _pair(s, room_name)
    second = third = None
    try:
        packets = Packets(alice, bob)
        await packets.received(20)
        second = _router(s)
        counts = await _wait_split(r, s.partitions, 2, 20, "two routers sharing")
        assert sorted(counts.values()) == [8, 8]
        third = _router(s)
        counts = await _wait_split(r, s.partitions, 3, 20, "three routers sharing")
        assert sorted(counts.values()) == [5, 5, 6]
        n = len(packets.got)
        await packets.received(n + 20)  # still flowing, wherever the room's partition went

        third.send_signal(signal.SIGTERM)
        stopped = time.monotonic()
        await _wait_split(r, s.partitions, 2, 10, "two routers after a SIGTERM")
        handed_back = time.monotonic() - stopped
        print(f"partitions owned again {handed_back:.2f} s after SIGTERM")
        assert handed_back < 4  # it releases its leases and deregisters on the way out
        assert third.wait(10) == 0
        await packets.received(len(packets.got) + 20)
        await packets.stop_and_check()

        # a text stream after all that: every handler known to the partition's owner
        got: asyncio.Queue[str] = asyncio.Queue()

        async def chat(reader: roomstreams.TextStreamReader, _identity: str) -> None:
            got.put_nowait(await reader.read_all())

        bob.register_text_stream_handler("chat", chat)
        await alice.local_participant.send_text("after the hand-overs", topic="chat")
        async with asyncio.timeout(10):
            assert await got.get() == "after the hand-overs"
    finally:
        await alice.disconnect()
        await bob.disconnect()
        await r.aclose()
        end_processes(*(p for p in (second, third) if p is not None))


async def test_a_killed_router_is_replaced_by_the_other_within_two_seconds(
    system_factory: Callable[..., System], room_name: str
) -> None:
    s = system_factory(gateways=2)
    r = aioredis.Redis.from_url(s.redis_url)
    alice, bob = await _pair(s, room_name)
    second = _router(s)
    try:
        await _wait_split(r, s.partitions, 2, 20, "two routers sharing")
        packets = Packets(alice, bob)
        await packets.received(20)
        assert s.router is not None
        s.router.send_signal(signal.SIGKILL)
        killed = time.monotonic()
        await _wait_split(r, s.partitions, 1, 10, "one router owning every partition")
        took_over = time.monotonic() - killed
        print(f"every partition owned again {took_over:.2f} s after SIGKILL")
        assert took_over < 2.5  # 1.5 s lease + 0.25 s renewal period, plus slack
        await packets.received(len(packets.got) + 20)
        await packets.stop_and_check()
    finally:
        await alice.disconnect()
        await bob.disconnect()
        await r.aclose()
        end_processes(second)
