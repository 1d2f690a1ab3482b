"""A partition with more active rooms than ``ROOMSTREAMS_NAMED_ROOMS_MAX`` reads them by the
gateways' notices (each named room costs Redis per wake-up: docs/benchmarks.md): every
room is set aside after the read that returned its entries and named again after the next
notice of an append to it. Nothing may be lost or reordered by that, and the partition
goes back to naming its rooms when they quieten. A real router and gateways, many rooms in
one partition, streams and packets in all of them at once."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Callable

import roomstreams
from roomstreams.protocol.keys import partition_of

from .conftest import System
from .helpers import Collector, router_url, scrape, v, wait_for_state

ROOMS = 6
STREAMS = 12  # per room, back to back, each a few chunks


def _rooms_in_one_partition(partitions: int) -> list[str]:
    base = uuid.uuid4().hex[:8]
    names = (f"notice-{base}-{i}" for i in range(100_000))
    same = [n for n in names if partition_of(n, partitions) == 3]
    return same[:ROOMS]


async def _by_notice(s: System) -> float:
    samples, _ = await scrape(router_url(s))
    return v(samples, "roomstreams_router_partitions_by_notice")


async def test_many_active_rooms_are_read_by_notice_and_nothing_is_lost(
    system_factory: Callable[..., System],
) -> None:
    # the idle sweep (a backup for missed notices) an hour away: a missed notice shows
    s = system_factory(ROOMSTREAMS_NAMED_ROOMS_MAX="2", ROOMSTREAMS_IDLE_SWEEP="3600")
    names = _rooms_in_one_partition(s.partitions)
    rooms: list[roomstreams.Room] = []
    cols: list[Collector] = []
    packets: list[list[bytes]] = []
    try:
        senders = []
        for name in names:
            col, got = Collector(), []
            bob = roomstreams.Room()
            bob.register_text_stream_handler("chat", col)
            bob.on("data_received", lambda p, got=got: got.append(p.data))
            await bob.connect(s.urls[1], s.token(name, "bob"))
            alice = roomstreams.Room()
            await alice.connect(s.urls[0], s.token(name, "alice"))
            rooms += [bob, alice]
            cols.append(col)
            packets.append(got)
            senders.append(alice)

        async def traffic(i: int, alice: roomstreams.Room) -> list[str]:
            sent = []
            for n in range(STREAMS):
                text = "".join(f"{i}.{n}.{c};" for c in range(40))
                writer = await alice.local_participant.stream_text(topic="chat")
                for piece in (text[:100], text[100:200], text[200:]):
                    await writer.write(piece)
                await writer.close()
                await alice.local_participant.publish_data(f"{i}.{n}".encode())
                sent.append(writer.info.stream_id)
                await asyncio.sleep(0.15)  # ~2 s of traffic: the mode is judged every second
            return sent

        sent = await asyncio.gather(*(traffic(i, a) for i, a in enumerate(senders)))

        async def engaged() -> bool:
            return await _by_notice(s) >= 1

        # more than 2 active rooms in partition 3: it reads by notice (checked while the
        # rooms are still active: they count for room_idle_after, 10 s)
        await wait_for_state(engaged, 5, "partition 3 reading by notice")
        for i, col in enumerate(cols):
            for n, sid in enumerate(sent[i]):
                rec = await col.wait_done(sid, timeout=10)
                assert rec.error is None
                assert rec.text == "".join(f"{i}.{n}.{c};" for c in range(40))
            assert list(col.by_id) == sent[i]  # in the order sent

            async def all_packets(i: int = i) -> bool:
                return len(packets[i]) == STREAMS

            await wait_for_state(all_packets, 10, f"room {i}'s packets")
            assert packets[i] == [f"{i}.{n}".encode() for n in range(STREAMS)]

        # and a room of the partition still carries a stream at once, one notice later
        info = await senders[0].local_participant.send_text("late", topic="chat")
        assert (await cols[0].wait_done(info.stream_id, timeout=5)).text == "late"
    finally:
        for r in rooms:
            await r.disconnect()
