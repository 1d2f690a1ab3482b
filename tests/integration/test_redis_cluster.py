"""roomstreams on Redis Cluster specifically: the URL, FastStream's cluster broker for the
room events, and a master failing over to its replica under a live room. (The text, byte,
data-packet, failover and scaling suites run on a cluster too: ``redis_kind``.)"""

from __future__ import annotations

import asyncio
import contextlib
import signal
import uuid
from collections.abc import AsyncIterator, Iterator

import pytest
from faststream import FastStream
from faststream.redis import RedisBroker, RedisClusterBroker
from redis.crc import key_slot

import roomstreams
from roomstreams._redis_cluster import LocalRedisCluster
from roomstreams._redisio import cluster_seeds, is_cluster_url
from roomstreams.events import RoomEvent, broker, room_events
from roomstreams.protocol.keys import room_log_key

from .conftest import System, make_env
from .helpers import Collector


def test_cluster_urls_name_their_seeds_and_keep_credentials_and_options() -> None:
    url = "redis+cluster://u:p%40ss@a:7000,b:7001/0?ssl_cert_reqs=none"
    assert is_cluster_url(url) and not is_cluster_url("redis://a:7000/0")
    node_url, seeds = cluster_seeds(url)
    assert node_url == "redis://u:p%40ss@a:7000/0?ssl_cert_reqs=none"
    assert seeds == [("a", 7000), ("b", 7001)]
    assert cluster_seeds("rediss+cluster://h")[0] == "rediss://h"
    with pytest.raises(ValueError, match="only database 0"):
        cluster_seeds("redis+cluster://a:7000/3")
    with pytest.raises(ValueError, match="seeds"):
        cluster_seeds("redis+cluster:///0")


def test_the_events_broker_follows_the_url() -> None:
    assert type(broker("redis://127.0.0.1:6379/0")) is RedisBroker
    assert isinstance(broker("redis+cluster://127.0.0.1:7000,127.0.0.1:7001"), RedisClusterBroker)


async def test_room_events_reach_a_consumer_group_through_the_url_s_broker(
    system: System, room_name: str
) -> None:
    """``roomstreams.events``: a FastStream app on ``broker(url)`` gets a room's lifecycle,
    on a standalone server and on a cluster alike."""
    got: asyncio.Queue[RoomEvent] = asyncio.Queue()
    b = broker(system.redis_url)

    @b.subscriber(stream=room_events(group=f"g-{uuid.uuid4().hex[:8]}", consumer="c1"))
    async def on_event(event: RoomEvent) -> None:
        if event.room == room_name:
            got.put_nowait(event)

    app = FastStream(b)
    async with b:
        await b.start()
        del app
        alice = roomstreams.Room()
        await alice.connect(system.urls[0], system.token(room_name, "alice"))
        await alice.disconnect()
        seen = [(await asyncio.wait_for(got.get(), 10)).event for _ in range(4)]
    assert seen == ["room_started", "participant_joined", "participant_left", "room_finished"]


# -- a master fails over to its replica -----------------------------------------------------


@pytest.fixture
def failover_cluster(redis_kind: str) -> Iterator[LocalRedisCluster]:
    if redis_kind != "cluster":
        pytest.skip("a master failing over to its replica is a Redis Cluster matter")
    with LocalRedisCluster(node_timeout_ms=1500) as cluster:
        yield cluster


@pytest.fixture
async def failover_system(failover_cluster: LocalRedisCluster) -> AsyncIterator[System]:
    s = System(failover_cluster.url, make_env(failover_cluster.url), cluster=failover_cluster)
    try:
        s.start_router()
        s.start_gateway()
        s.start_gateway()
        yield s
    finally:
        s.stop()


async def test_a_master_failing_over_to_its_replica_ends_streams_clearly_then_rooms_go_on(
    failover_cluster: LocalRedisCluster, failover_system: System, room_name: str
) -> None:
    """SIGKILL the master that holds the room's partition, with a replica ready: whatever
    was in flight is either delivered whole or ends with StreamAborted at the reader (never
    a hang, never a silently shortened text), and once the replica is promoted the room
    carries new streams again."""
    s = failover_system
    slot = key_slot(room_log_key(room_name, s.partitions).encode())
    master = failover_cluster.master_of_slot(slot)
    replica = failover_cluster.add_replica(master)
    col = Collector()
    bob = roomstreams.Room()
    bob.register_text_stream_handler("chat", col)
    alice = roomstreams.Room()
    try:
        await bob.connect(s.urls[1], s.token(room_name, "bob"))
        await alice.connect(s.urls[0], s.token(room_name, "alice"))
        writer = await alice.local_participant.stream_text(topic="chat")
        await writer.write("before ")
        await col.wait_count(1, timeout=10)
        assert master.process is not None
        master.process.send_signal(signal.SIGKILL)
        with contextlib.suppress(roomstreams.RoomStreamsError):
            await writer.write("during")
            await asyncio.wait_for(writer.close(), 20)
        rec = await col.wait_done(writer.info.stream_id, timeout=40)
        if rec.error is None:
            assert rec.text == "before during"
        else:
            assert isinstance(rec.error, roomstreams.StreamAborted)
        # the replica took the slots over; the room works again (clients may have
        # reconnected meanwhile: retry until a fresh stream arrives whole)
        with failover_cluster.admin(replica) as r:
            assert r.info("replication")["role"] == "master"

        async def fresh() -> str:
            while True:
                try:
                    info = await alice.local_participant.send_text("after", topic="chat")
                    return (await col.wait_done(info.stream_id, timeout=5)).text
                except (roomstreams.RoomStreamsError, TimeoutError):
                    await asyncio.sleep(0.5)

        assert await asyncio.wait_for(fresh(), 60) == "after"
    finally:
        await alice.disconnect()
        await bob.disconnect()
