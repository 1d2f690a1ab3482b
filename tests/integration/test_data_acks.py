"""Acknowledged data packets: ``publish_data(reliable=True)`` returns once the router routed
the packet (the router acknowledges the highest number per sender and wake-up), calls in
flight share acknowledgements, and a call whose packet may not arrive fails with a reason:
the gateway refused it, its gateway died, or Redis lost it. After a router SIGKILL, every
packet whose call returned is delivered exactly once."""

from __future__ import annotations

import asyncio
import json
import signal
from collections.abc import Callable

import pytest
import websockets

import roomstreams
from roomstreams.protocol.binary import encode_data_packet

from .conftest import System, _spawn
from .helpers import wait_for_state

pytestmark = pytest.mark.slow


async def _until(pred: Callable[[], bool], timeout: float, what: str) -> None:
    """Wait for a condition of this process that no event announces (bounded)."""

    async def check() -> bool:
        return pred()

    await wait_for_state(check, timeout, what)


def _collector(
    n: int,
) -> tuple[list[bytes], asyncio.Event, Callable[[roomstreams.DataPacket], None]]:
    got: list[bytes] = []
    done = asyncio.Event()

    def on_packet(p: roomstreams.DataPacket) -> None:
        got.append(p.data)
        if len(got) >= n:
            done.set()

    return got, done, on_packet


async def test_concurrent_publishes_share_acks_and_all_arrive_in_order(
    system: System, room_name: str
) -> None:
    n = 400
    got, done, on_packet = _collector(n)
    alice, bob = roomstreams.Room(), roomstreams.Room()
    bob.on("data_received", on_packet)
    acks: list[int] = []
    try:
        await bob.connect(system.urls[1], system.token(room_name, "bob"))
        await alice.connect(system.urls[0], system.token(room_name, "alice"))
        conn = alice._conn
        seen = conn.packets_acked

        def spy(k: int) -> None:
            acks.append(k)
            seen(k)

        conn.packets_acked = spy  # type: ignore[method-assign,assignment]
        publish = alice.local_participant.publish_data
        await asyncio.wait_for(
            asyncio.gather(*(publish(f"p{i}".encode(), topic="t") for i in range(n))), 30
        )
        # every call returned: each packet was routed, so it reaches bob
        async with asyncio.timeout(10):
            await done.wait()
        assert got == [f"p{i}".encode() for i in range(n)]
        # cumulative and batched: fewer acks than packets, increasing, the last covering all
        assert acks == sorted(acks) and acks[-1] == n
        assert len(acks) < n
        assert not conn._packets
        # a loop that awaits each call is one ack per packet, and still correct
        for i in range(5):
            await publish(f"q{i}".encode(), topic="t")
        assert acks[-5:] == [n + 1, n + 2, n + 3, n + 4, n + 5]
    finally:
        await alice.disconnect()
        await bob.disconnect()


async def test_the_gateway_acks_numbered_packets_and_names_a_refused_one(
    system: System, room_name: str, connect: Callable[..., object]
) -> None:
    # a raw socket speaks the wire: numbered packets get data_ack, lossy ones nothing, a
    # refused numbered one an error naming its number
    bob = roomstreams.Room()
    await bob.connect(system.urls[1], system.token(room_name, "bob"))
    url = f"{system.urls[0]}/rtc?access_token={system.token(room_name, 'raw')}"
    try:
        async with websockets.connect(url) as ws:
            while json.loads(await ws.recv())["type"] != "joined":
                pass
            meta = b'{"topic":"t"}'
            await ws.send(encode_data_packet(meta, b"lossy", reliable=False))
            await ws.send(encode_data_packet(meta, b"one", number=1))
            await ws.send(encode_data_packet(b'{"topic":', b"bad meta", number=2))
            await ws.send(encode_data_packet(meta, b"three", number=3))
            frames: list[dict[str, object]] = []
            async with asyncio.timeout(10):
                while not any(f.get("type") == "data_ack" and f["n"] == 3 for f in frames):
                    msg = await ws.recv()
                    if isinstance(msg, str):
                        frames.append(json.loads(msg))
            [refused] = [f for f in frames if f["type"] == "error"]
            assert refused["code"] == "bad_frame" and refused["packets"] == [2, 2]
            # acks are cumulative: 1 may be covered by the ack of 3 (same wake-up)
            assert {f["n"] for f in frames if f["type"] == "data_ack"} <= {1, 3}
    finally:
        await bob.disconnect()


async def test_a_refused_packet_fails_only_its_own_call(system: System, room_name: str) -> None:
    alice = roomstreams.Room()
    await alice.connect(system.urls[0], system.token(room_name, "alice"))
    try:
        conn = alice._conn
        ok = asyncio.ensure_future(alice.local_participant.publish_data(b"ok", topic="t"))
        # a packet the gateway refuses (its meta is not JSON): sent the way publish_data does
        bad = asyncio.ensure_future(
            conn.send_packet(lambda n: encode_data_packet(b"{", b"x", number=n))
        )
        after = asyncio.ensure_future(alice.local_participant.publish_data(b"ok2", topic="t"))
        await asyncio.wait_for(asyncio.gather(ok, after), 10)
        with pytest.raises(roomstreams.ServerError) as exc:
            await asyncio.wait_for(bad, 10)
        assert exc.value.code == "bad_frame"
    finally:
        await alice.disconnect()


async def test_pending_calls_fail_with_a_reason_when_the_gateway_dies(
    system_factory: Callable[..., System], room_name: str
) -> None:
    s = system_factory(gateways=2)
    alice = roomstreams.Room()
    await alice.connect(s.urls[0], s.token(room_name, "alice"))
    assert s.router is not None
    try:
        s.router.send_signal(signal.SIGSTOP)  # nothing is acknowledged meanwhile
        calls = [
            asyncio.ensure_future(alice.local_participant.publish_data(b"x", topic="t"))
            for _ in range(20)
        ]
        await _until(lambda: len(alice._conn._packets) == 20, 5, "20 packets in flight")
        s.gateways[0].send_signal(signal.SIGKILL)
        results = await asyncio.wait_for(asyncio.gather(*calls, return_exceptions=True), 10)
        assert all(isinstance(r, roomstreams.ConnectionClosed) for r in results), results
        assert all("not acknowledged" in str(r) for r in results)
    finally:
        s.router.send_signal(signal.SIGCONT)
        await alice.disconnect()


async def test_router_killed_mid_burst_every_returned_call_is_delivered_once(
    system_factory: Callable[..., System], room_name: str
) -> None:
    s = system_factory(gateways=2)
    n = 300
    got, _done, on_packet = _collector(n)
    alice, bob = roomstreams.Room(), roomstreams.Room()
    bob.on("data_received", on_packet)
    standby = None
    try:
        await bob.connect(s.urls[1], s.token(room_name, "bob"))
        await alice.connect(s.urls[0], s.token(room_name, "alice"))
        returned: list[int] = []
        failed: list[int] = []

        async def one(i: int) -> None:
            try:
                await alice.local_participant.publish_data(f"p{i}".encode(), topic="t")
                returned.append(i)
            except roomstreams.RoomStreamsError:
                failed.append(i)

        async def burst() -> None:
            tasks = []
            for i in range(n):
                tasks.append(asyncio.ensure_future(one(i)))
                if i % 10 == 9:
                    await asyncio.sleep(0.01)
            await asyncio.gather(*tasks)

        sender = asyncio.ensure_future(burst())
        await _until(lambda: len(returned) >= 50, 10, "50 packets acknowledged")
        assert s.router is not None
        s.router.send_signal(signal.SIGKILL)
        standby = _spawn("services.router", s.env)
        await asyncio.wait_for(sender, 30)
        # every call ended: returned (acknowledged) or failed with a reason
        assert sorted(returned + failed) == list(range(n))
        await _until(lambda: {f"p{i}".encode() for i in returned} <= set(got), 20, "acked packets")
        await asyncio.sleep(0.3)  # nothing more may come: no packet twice
        assert len(got) == len(set(got)), "a packet was delivered twice"
        # in order: the log's order is the publish order
        assert got == sorted(got, key=lambda b: int(b[1:]))
        assert failed == []  # the new router routes what was logged in the gap
    finally:
        await alice.disconnect()
        await bob.disconnect()
        if standby is not None:
            standby.terminate()
            standby.wait(10)
