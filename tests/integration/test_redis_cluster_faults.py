"""Redis Cluster faults under live traffic: the slot of a busy partition migrated to another
master, and a master SIGKILLed and its replica promoted with ``CLUSTER FAILOVER TAKEOVER``.

Each test runs a sender that keeps sending short text streams and data packets (and one
long stream stays open across the fault) and checks the promise of docs/reliability.md:
every ``send_text`` that returned (its end was routed) reached the receiver whole; every
stream the receiver opened ended whole or with :class:`StreamAborted` and a code, none cut
short silently, none left hanging; no data packet twice; and new streams flow soon after.
Each test has a cluster of its own (slots are moved, nodes killed)."""

from __future__ import annotations

import asyncio
import contextlib
import signal
import threading
import time
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass, field

import pytest
from redis.crc import key_slot

import roomstreams
from roomstreams._redis_cluster import LocalRedisCluster
from roomstreams.protocol.keys import room_log_key

from .conftest import System, make_env
from .helpers import Collector


@pytest.fixture(autouse=True)
def _cluster_only() -> None:
    from tests.conftest import redis_kinds

    if "cluster" not in redis_kinds():
        pytest.skip("Redis Cluster faults: $ROOMSTREAMS_TEST_REDIS_KINDS excludes cluster")


def _start_system(cluster: LocalRedisCluster) -> System:
    s = System(cluster.url, make_env(cluster.url), cluster=cluster)
    try:
        s.start_router()
        s.start_gateway()
        s.start_gateway()
    except BaseException:
        s.stop()
        raise
    return s


@dataclass
class Traffic:
    """alice keeps sending ``m<i>`` text streams and ``p<i>`` packets to bob until stopped."""

    alice: roomstreams.Room
    sent: dict[int, str] = field(default_factory=dict)  # i -> "ok" or the error's repr
    packets_sent: list[int] = field(default_factory=list)
    packets_got: list[bytes] = field(default_factory=list)
    attempts: int = 0
    attempted: threading.Event = field(default_factory=threading.Event)
    stop: asyncio.Event = field(default_factory=asyncio.Event)

    async def run(self) -> None:
        i = 0
        while not self.stop.is_set():
            i += 1
            self.attempts += 1
            self.attempted.set()
            try:
                await asyncio.wait_for(
                    self.alice.local_participant.send_text(f"m{i}", topic="chat"), 20
                )
                self.sent[i] = "ok"
            except (roomstreams.RoomStreamsError, TimeoutError) as exc:
                self.sent[i] = repr(exc)
            with contextlib.suppress(roomstreams.RoomStreamsError, TimeoutError):
                await asyncio.wait_for(
                    self.alice.local_participant.publish_data(f"p{i}".encode(), topic="t"), 5
                )
                self.packets_sent.append(i)
            await asyncio.sleep(0)  # let bob's side run between sends

    def wait_attempt(self, timeout: float = 10.0) -> None:
        """(From the fault thread) until the sender starts one more send."""
        self.attempted.clear()
        self.attempted.wait(timeout)


@contextlib.asynccontextmanager
async def live_room(s: System, room: str) -> AsyncIterator[tuple[Collector, Traffic]]:
    col = Collector()
    bob = roomstreams.Room()
    bob.register_text_stream_handler("chat", col)
    alice = roomstreams.Room()
    traffic = Traffic(alice)
    bob.on("data_received", lambda p: traffic.packets_got.append(p.data))
    try:
        await bob.connect(s.urls[1], s.token(room, "bob"))
        await alice.connect(s.urls[0], s.token(room, "alice"))
        yield col, traffic
    finally:
        traffic.stop.set()
        await alice.disconnect()
        await bob.disconnect()


async def check_outcomes(col: Collector, traffic: Traffic, long_ok: bool, long_sid: str) -> None:
    """The promise, stream by stream (see the module docstring)."""
    # every stream bob opened ends: whole, or aborted with a code
    for rec in list(col.streams):
        await asyncio.wait_for(rec.done.wait(), 30)
        if rec.error is not None:
            assert isinstance(rec.error, roomstreams.StreamAborted), rec.error
            assert rec.error.code, rec.error
    whole = {rec.text for rec in col.streams if rec.error is None}
    aborted = [rec for rec in col.streams if rec.error is not None]
    # a short stream either arrived whole or was aborted, never cut: "m12" is one chunk
    for rec in col.streams:
        if rec.error is None and rec.info.stream_id != long_sid:
            ok = rec.text == "after" or (rec.text.startswith("m") and rec.text[1:].isdigit())
            assert ok, rec.text
    # accepted = send_text returned: delivered whole
    accepted = [i for i, how in traffic.sent.items() if how == "ok"]
    lost = [i for i in accepted if f"m{i}" not in whole]
    assert not lost, f"accepted but not delivered whole: {lost}; aborted: {aborted}"
    # the long stream: if its close() returned, it arrived whole
    long_rec = col.by_id.get(long_sid)
    if long_ok:
        assert long_rec is not None and long_rec.error is None
    # data packets: never twice
    assert len(traffic.packets_got) == len(set(traffic.packets_got))


async def fresh_stream_works(alice: roomstreams.Room, col: Collector, deadline: float) -> float:
    """Seconds until a new stream arrives whole (retrying while clients reconnect)."""
    t0 = time.monotonic()
    while True:
        try:
            info = await asyncio.wait_for(
                alice.local_participant.send_text("after", topic="chat"), 5
            )
            if (await col.wait_done(info.stream_id, timeout=5)).text == "after":
                return time.monotonic() - t0
        except (roomstreams.RoomStreamsError, TimeoutError):
            pass
        if time.monotonic() - t0 > deadline:
            raise AssertionError(f"no stream went through within {deadline} s of the fault")
        await asyncio.sleep(0.2)


# -- slot migration ---------------------------------------------------------------------------


@pytest.fixture
def cluster() -> Iterator[LocalRedisCluster]:
    from tests.conftest import _cluster_binary

    with LocalRedisCluster(_cluster_binary(), node_timeout_ms=2000) as c:
        yield c


async def test_migrating_a_busy_partition_s_slot_loses_nothing_accepted(
    cluster: LocalRedisCluster, room_name: str
) -> None:
    """``SETSLOT IMPORTING/MIGRATING``, ``MIGRATE`` one key at a time while alice sends,
    ``SETSLOT NODE``: redis-py follows ``ASK``/``MOVED`` (and retries ``TRYAGAIN`` for the
    multi-key reads of a half-moved partition)."""
    s = _start_system(cluster)
    try:
        slot = key_slot(room_log_key(room_name, s.partitions).encode())
        source = cluster.master_of_slot(slot)
        target = next(n for n in cluster.nodes[: cluster.masters] if n is not source)
        async with live_room(s, room_name) as (col, traffic):
            writer = await traffic.alice.local_participant.stream_text(topic="chat")
            await writer.write("long-")
            await col.wait_count(1, timeout=10)
            sender = asyncio.create_task(traffic.run())
            await asyncio.to_thread(traffic.wait_attempt)
            before = traffic.attempts

            def between() -> None:
                traffic.wait_attempt()

            moved = await asyncio.to_thread(
                cluster.migrate_slot, slot, target, batch=1, between_batches=between
            )
            assert moved >= 3  # the room log, its partition's control stream, lease, ...
            assert cluster.master_of_slot(slot) is target
            long_ok = True
            try:
                await writer.write("end")
                await asyncio.wait_for(writer.close(), 20)
            except roomstreams.RoomStreamsError:
                long_ok = False
            # some traffic after the move, then stop
            during = traffic.attempts
            await asyncio.to_thread(traffic.wait_attempt)
            await asyncio.to_thread(traffic.wait_attempt)
            traffic.stop.set()
            await asyncio.wait_for(sender, 60)
            took = await fresh_stream_works(traffic.alice, col, deadline=15)
            await check_outcomes(col, traffic, long_ok, writer.info.stream_id)
            if long_ok:
                assert col.by_id[writer.info.stream_id].text == "long-end"
            # sends went on while the slot moved, and most were accepted
            assert during > before
            accepted = sum(1 for how in traffic.sent.values() if how == "ok")
            assert accepted >= len(traffic.sent) // 2, traffic.sent
            # packets published before the move are all delivered
            got = set(traffic.packets_got)
            assert f"p{traffic.packets_sent[0]}".encode() in got
            print(
                f"migration: {moved} keys, {len(traffic.sent)} sends ({accepted} accepted), "
                f"{len(got)}/{len(traffic.packets_sent)} packets, long stream ok={long_ok}, "
                f"fresh stream after {took:.2f}s"
            )
    finally:
        s.stop()


async def test_streams_after_a_migration_of_every_partition_slot_of_a_master_work(
    cluster: LocalRedisCluster, room_name: str
) -> None:
    """A whole master emptied (every partition slot it held moved away) between two
    streams: the router and gateways follow MOVED and carry the next stream, with no
    restart of anything."""
    s = _start_system(cluster)
    try:
        async with live_room(s, room_name) as (col, traffic):
            info = await traffic.alice.local_participant.send_text("one", topic="chat")
            assert (await col.wait_done(info.stream_id, timeout=10)).text == "one"
            victim = cluster.master_of_slot(key_slot(room_log_key(room_name, 16).encode()))
            target = next(n for n in cluster.nodes[: cluster.masters] if n is not victim)
            slots = {key_slot(f"{{p{p}}}".encode()) for p in range(s.partitions)}
            for slot in sorted(slots):
                if cluster.master_of_slot(slot) is victim:
                    await asyncio.to_thread(cluster.migrate_slot, slot, target, batch=10)
            took = await fresh_stream_works(traffic.alice, col, deadline=15)
            assert took < 15
    finally:
        s.stop()


# -- a master killed, its replica promoted ---------------------------------------------------


@pytest.fixture
def replicated_cluster() -> Iterator[LocalRedisCluster]:
    from tests.conftest import _cluster_binary

    with LocalRedisCluster(_cluster_binary(), node_timeout_ms=1000, replicas=1) as c:
        yield c


@pytest.mark.parametrize(
    "after_fail",
    [
        # both were intermittent until 2026-12-03 (no new stream within 20 s of the fault,
        # in about one run in three): redis-py's cluster client asked the dead master which
        # keys an XREAD names, so a gateway's inbox read failed for good, and the router's
        # lease loop died of a KeyError when a worker stopped between two renewals
        # (test_redisio.py and test_router_leases.py pin both down)
        pytest.param(False, id="at-once"),
        pytest.param(True, id="after-the-masters-flag-it"),
    ],
)
async def test_a_killed_master_replaced_by_takeover_ends_streams_clearly_and_recovers(
    replicated_cluster: LocalRedisCluster, room_name: str, after_fail: bool
) -> None:
    """Three masters with one replica each. SIGKILL the master of the room's partition
    while alice sends, promote its replica with ``CLUSTER FAILOVER TAKEOVER``: streams in
    flight end whole or with a reason, every accepted one is delivered, and a new stream
    goes through within a few seconds. ``at-once``: promoted within milliseconds, which
    redis-py's cluster client retries its way through (the services see no error);
    ``after-the-masters-flag-it``: promoted once the masters flag the dead one (after
    ``cluster-node-timeout``, 1 s here; redis-py still retried through it in the runs so
    far). The slower natural failover, the replica electing itself, is
    ``test_redis_cluster.py``'s test."""
    cluster = replicated_cluster
    assert len(cluster.nodes) == 6
    s = _start_system(cluster)
    try:
        slot = key_slot(room_log_key(room_name, s.partitions).encode())
        master = cluster.master_of_slot(slot)
        (replica,) = cluster.replicas_of(master)
        master_id = cluster.node_id(master)
        async with live_room(s, room_name) as (col, traffic):
            writer = await traffic.alice.local_participant.stream_text(topic="chat")
            await writer.write("long-")
            await col.wait_count(1, timeout=10)
            sender = asyncio.create_task(traffic.run())
            await asyncio.to_thread(traffic.wait_attempt)
            await asyncio.to_thread(traffic.wait_attempt)
            assert master.process is not None
            master.process.send_signal(signal.SIGKILL)
            killed = time.monotonic()
            master.process.wait()
            if after_fail:
                await asyncio.to_thread(cluster.wait_failed, master_id)
            await asyncio.to_thread(cluster.takeover, replica)
            promoted = time.monotonic() - killed
            long_ok = True
            try:
                await writer.write("end")
                await asyncio.wait_for(writer.close(), 20)
            except roomstreams.RoomStreamsError:
                long_ok = False
            took = await fresh_stream_works(traffic.alice, col, deadline=20)
            recovered = time.monotonic() - killed
            await asyncio.to_thread(traffic.wait_attempt)
            traffic.stop.set()
            await asyncio.wait_for(sender, 60)
            await check_outcomes(col, traffic, long_ok, writer.info.stream_id)
            long_rec = col.by_id[writer.info.stream_id]
            if long_rec.error is None:
                assert long_rec.text == "long-end"
            assert recovered < 20
            accepted = sum(1 for how in traffic.sent.values() if how == "ok")
            print(
                f"takeover: promoted {promoted:.2f}s after the kill, a new stream through "
                f"{recovered:.2f}s after it ({took:.2f}s of retrying); {len(traffic.sent)} "
                f"sends ({accepted} accepted), {len(set(traffic.packets_got))}/"
                f"{len(traffic.packets_sent)} packets, long stream "
                f"{'whole' if long_rec.error is None else repr(long_rec.error)}"
            )
    finally:
        s.stop()
