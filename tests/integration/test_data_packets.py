"""Data packets end to end: ``publish_data`` and ``data_received``, the same routing rules as
streams (minus the handler), ordered with the room's other traffic; bad input."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable
from typing import Any

import pytest

import roomstreams
from roomstreams.protocol.binary import encode_data_packet
from roomstreams.protocol.limits import MAX_DATA_BYTES

from .binary_helpers import BinRawClient
from .helpers import Collector, raw_connect_fixture


class Packets:
    """A ``data_received`` listener that records packets."""

    def __init__(self) -> None:
        self.got: list[roomstreams.DataPacket] = []
        self._cond = asyncio.Condition()

    def __call__(self, packet: roomstreams.DataPacket) -> None:
        self.got.append(packet)
        asyncio.get_running_loop().create_task(self._notify())

    async def _notify(self) -> None:
        async with self._cond:
            self._cond.notify_all()

    async def wait(self, n: int, timeout: float = 5.0) -> list[roomstreams.DataPacket]:
        async with asyncio.timeout(timeout):
            async with self._cond:
                await self._cond.wait_for(lambda: len(self.got) >= n)
        return self.got

    @property
    def payloads(self) -> list[bytes]:
        return [p.payload for p in self.got]


async def listening(connect: Any, identity: str, gateway: int = 0, **grants: bool) -> Any:
    room = await connect(identity, gateway=gateway, **grants)
    packets = Packets()
    room.on("data_received", packets)
    return room, packets


raw_connect = raw_connect_fixture(BinRawClient)


# ---- delivery ------------------------------------------------------------------------------


async def test_publish_data_reaches_every_other_participant(connect: Any) -> None:
    _bob, bob_p = await listening(connect, "bob", 1)
    _carol, carol_p = await listening(connect, "carol", 0)
    alice, alice_p = await listening(connect, "alice", 0)
    await alice.local_participant.publish_data(b"\x00\x01binary\xff", topic="cursor")
    await alice.local_participant.publish_data("héllo")  # str: sent as UTF-8, topic ""
    for packets in (bob_p, carol_p):
        first, second = await packets.wait(2)
        assert isinstance(first, roomstreams.DataPacket)
        assert (first.payload, first.data, first.topic) == (
            b"\x00\x01binary\xff",
            b"\x00\x01binary\xff",
            "cursor",
        )
        assert first.participant_identity == "alice"
        assert first.participant is not None and first.participant.identity == "alice"
        assert first.reliable is True and first.destination_identities == []
        assert (second.payload, second.topic) == ("héllo".encode(), "")
    # the sender never gets its own packets (checked after a barrier from bob)
    await _bob.local_participant.publish_data(b"barrier")
    assert [p.payload for p in await alice_p.wait(1)] == [b"barrier"]


async def test_destination_identities_narrow_delivery(connect: Any) -> None:
    bob, bob_p = await listening(connect, "bob", 1)
    _carol, carol_p = await listening(connect, "carol", 0)
    _dave, dave_p = await listening(connect, "dave", 1)
    alice = await connect("alice")
    await alice.local_participant.publish_data(
        b"secret", destination_identities=["bob", "dave"], topic="dm"
    )
    await alice.local_participant.publish_data(b"public")
    assert [p.payload for p in await bob_p.wait(2)] == [b"secret", b"public"]
    assert [p.payload for p in await dave_p.wait(2)] == [b"secret", b"public"]
    assert bob_p.got[0].destination_identities == ["bob", "dave"]
    assert [p.payload for p in await carol_p.wait(1)] == [b"public"]
    await bob.local_participant.publish_data(b"barrier", destination_identities=["carol"])
    await carol_p.wait(2)
    assert carol_p.payloads == [b"public", b"barrier"]


async def test_can_subscribe_false_receives_no_packets(connect: Any) -> None:
    _mute, mute_p = await listening(connect, "mute", 0, can_subscribe=False)
    _bob, bob_p = await listening(connect, "bob", 1)
    alice = await connect("alice")
    await alice.local_participant.publish_data(b"one")
    await alice.local_participant.publish_data(b"two", destination_identities=["mute", "bob"])
    await bob_p.wait(2)
    assert mute_p.got == []


async def test_coroutine_listener_and_reliable_flag(connect: Any) -> None:
    bob = await connect("bob", gateway=1)
    got: asyncio.Queue[roomstreams.DataPacket] = asyncio.Queue()

    @bob.on("data_received")
    async def on_data(packet: roomstreams.DataPacket) -> None:
        await asyncio.sleep(0)
        await got.put(packet)

    alice = await connect("alice")
    await alice.local_participant.publish_data(b"lossy", reliable=False, topic="t")
    p = await asyncio.wait_for(got.get(), 5)
    assert (p.payload, p.reliable, p.topic) == (b"lossy", False, "t")


async def test_packets_keep_order_with_streams(connect: Any) -> None:
    """Data packets go through the room log: a receiver sees packets and stream openings
    interleaved exactly as the sender sent them, across gateways."""
    events: list[str] = []
    col = Collector()

    def on_stream(reader: roomstreams.TextStreamReader, identity: str) -> Awaitable[None]:
        # a plain function: it runs when the header arrives (the room runs what it returns)
        events.append(f"stream:{reader.info.stream_id}")
        return col(reader, identity)

    ended = asyncio.Event()

    def on_data(p: roomstreams.DataPacket) -> None:
        events.append(p.payload.decode())
        if p.payload == b"end":
            ended.set()

    bob = await connect("bob", gateway=1, handlers={"chat": on_stream})
    bob.on("data_received", on_data)
    alice = await connect("alice")
    lp = alice.local_participant
    expected: list[str] = []
    writers = []
    for i in range(30):
        await lp.publish_data(f"p{i}")
        expected.append(f"p{i}")
        if i % 10 == 5:
            w = await lp.stream_text(topic="chat")
            writers.append(w)
            expected.append(f"stream:{w.stream_id}")
            await w.write(f"body {i}")
    for w in writers:
        await w.close()
    await lp.publish_data("end")
    expected.append("end")
    await asyncio.wait_for(ended.wait(), 5)
    assert events == expected


async def test_many_packets_from_many_senders_keep_per_sender_order(connect: Any) -> None:
    _bob, bob_p = await listening(connect, "bob", 0)
    senders = [await connect(f"s{i}", gateway=i % 2) for i in range(3)]

    async def burst(room: roomstreams.Room, n: int) -> None:
        for k in range(n):
            await room.local_participant.publish_data(f"{room.local_participant.identity}:{k}")

    await asyncio.gather(*(burst(s, 200) for s in senders))
    await bob_p.wait(600)
    for s in senders:
        ident = s.local_participant.identity
        mine = [p.payload.decode() for p in bob_p.got if p.participant_identity == ident]
        assert mine == [f"{ident}:{k}" for k in range(200)]


async def test_packets_are_binary_frames_with_sender_stamped(
    connect: Any, raw_connect: Any
) -> None:
    receiver = await raw_connect("bob", gateway=1)
    alice = await connect("alice")
    payload = bytes(range(256)) * 40  # 10240 bytes, not text
    await alice.local_participant.publish_data(payload, topic="bin")
    f = await receiver.expect("data")
    assert f["payload"] == payload  # as sent: no base64, no JSON
    assert f["meta"] == {"topic": "bin", "destination_identities": [], "sender": "alice"}
    assert len(f["raw"]) < len(payload) + 100
    assert receiver.binary[receiver.frames.index(f)] is True


# ---- bad input -----------------------------------------------------------------------------


async def test_payload_over_the_limit(connect: Any, raw_connect: Any) -> None:
    _bob, bob_p = await listening(connect, "bob", 1)
    sender = await raw_connect("alice", gateway=0)
    await sender.send_data(b"x" * (MAX_DATA_BYTES + 1))
    err = await sender.expect("error")
    assert err["code"] == "data_too_large"
    assert str(MAX_DATA_BYTES) in err["message"]
    await sender.send_data(b"y" * MAX_DATA_BYTES)  # exactly the limit: fine
    (p,) = await bob_p.wait(1)
    assert p.payload == b"y" * MAX_DATA_BYTES
    assert sender.errors() == ["data_too_large"]
    # the library refuses before sending
    alice2 = await connect("alice2")
    with pytest.raises(ValueError, match="exceeds"):
        await alice2.local_participant.publish_data(b"z" * (MAX_DATA_BYTES + 1))


async def test_unknown_destination(connect: Any, raw_connect: Any) -> None:
    bob, bob_p = await listening(connect, "bob", 1)
    bob_errors: list[BaseException] = []
    bob.on("error", bob_errors.append)
    sender = await raw_connect("alice", gateway=0)
    await sender.send_data(b"lost", destination_identities=["nobody"])
    err = await sender.expect("error")
    assert err["code"] == "unknown_destination" and "nobody" in err["message"]
    await sender.send_data(b"found", destination_identities=["bob", "ghost"])
    err = await sender.expect("error")
    assert err["code"] == "unknown_destination" and "ghost" in err["message"]
    assert "bob" not in err["message"]
    await sender.send_data(b"next")
    await bob_p.wait(2)
    assert bob_p.payloads == [b"found", b"next"]
    assert bob_errors == []
    # through the library, the sender gets the error as an ``error`` event
    alice2 = await connect("alice2")
    errors: asyncio.Queue[BaseException] = asyncio.Queue()
    alice2.on("error", errors.put_nowait)
    await alice2.local_participant.publish_data(b"?", destination_identities=["nobody"])
    e = await asyncio.wait_for(errors.get(), 5)
    assert isinstance(e, roomstreams.ServerError) and e.code == "unknown_destination"


async def test_sender_cannot_forge_its_identity(connect: Any, raw_connect: Any) -> None:
    _bob, bob_p = await listening(connect, "bob", 1)
    sender = await raw_connect("alice", gateway=0)
    meta = b'{"topic": "", "destination_identities": [], "sender": "mallory"}'
    await sender.send(encode_data_packet(meta, b"forged"))
    err = await sender.expect("error")
    assert err["code"] == "bad_frame" and "sender" in err["message"]
    await sender.send_data(b"honest")
    (p,) = await bob_p.wait(1)
    assert (p.payload, p.participant_identity) == (b"honest", "alice")


async def test_malformed_data_packets(connect: Any, raw_connect: Any) -> None:
    _bob, bob_p = await listening(connect, "bob", 1)
    sender = await raw_connect("alice", gateway=0)
    bad = [
        b"\x02\x01",  # too short
        b"\x02\x01\x00\x40{}",  # meta length beyond the frame
        b"\x02\x80\x00\x02{}x",  # unknown flag
        b"\x02\x01\x00\x04nope",  # meta not JSON
        encode_data_packet(b'{"topic": 5}', b"x"),  # meta of the wrong shape
        encode_data_packet(b'{"destination_identities": [""]}', b"x"),
        encode_data_packet(b'{"topic": "' + b"t" * 300 + b'"}', b"x"),
    ]
    for frame in bad:
        await sender.send(frame)
        await sender.expect("error")
    assert sender.errors() == ["bad_frame"] * 6 + ["bad_topic"]
    await sender.send_data(b"fine")
    assert [p.payload for p in await bob_p.wait(1)] == [b"fine"]


async def test_can_publish_data_false(connect: Any, raw_connect: Any) -> None:
    quiet = await connect("quiet", can_publish_data=False)
    with pytest.raises(roomstreams.PermissionDenied):
        await quiet.local_participant.publish_data(b"hi")
    with pytest.raises(roomstreams.PermissionDenied):
        await quiet.local_participant.send_bytes(b"hi", name="x.bin", topic="files")
    _bob, bob_p = await listening(connect, "bob", 1)
    raw = await raw_connect("rawquiet", can_publish_data=False)
    await raw.send_data(b"sneaky")
    err = await raw.expect("error")
    assert err["code"] == "permission_denied"
    alice = await connect("alice")
    await alice.local_participant.publish_data(b"allowed")
    assert [p.payload for p in await bob_p.wait(1)] == [b"allowed"]
