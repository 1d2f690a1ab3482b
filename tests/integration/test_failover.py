"""A router dies: a standby router takes its partitions over (lease expiry), asks the
gateways to re-announce their participants, and the room goes on. Streams that were in
flight cannot complete and end abnormally; nothing hangs."""

from __future__ import annotations

import asyncio
import json
import signal
from collections.abc import Callable

import pytest

import roomstreams
from roomstreams._redisio import client as redis_client
from roomstreams.protocol.keys import lease_key, members_key, partition_of

from .conftest import System, _spawn
from .helpers import Collector, wait_for_state, wait_logged

pytestmark = pytest.mark.slow


async def test_standby_router_takes_over_and_rooms_go_on(
    system_factory: Callable[..., System], room_name: str
) -> None:
    s = system_factory(gateways=2, ROOMSTREAMS_LEASE_MS="1500", ROOMSTREAMS_LOG_LEVEL="INFO")
    standby = _spawn("services.router", s.env)
    a_col, b_col = Collector(), Collector()
    alice, bob, carol = roomstreams.Room(), roomstreams.Room(), roomstreams.Room()
    try:
        alice.register_text_stream_handler("chat", a_col)
        bob.register_text_stream_handler("chat", b_col)
        joined: asyncio.Queue[str] = asyncio.Queue()
        alice.on("participant_connected", lambda p: joined.put_nowait(p.identity))
        await alice.connect(s.urls[0], s.token(room_name, "alice"))
        await bob.connect(s.urls[1], s.token(room_name, "bob"))
        # alice learns of bob after bob's connect returns: wait for it, so that the join
        # awaited below can only be carol's
        assert await asyncio.wait_for(joined.get(), 10) == "bob"

        writer = await alice.local_participant.stream_text(topic="chat")
        await writer.write("in flight when the router dies")
        await b_col.wait_count(1)
        assert s.router is not None
        s.router.send_signal(signal.SIGKILL)

        # the stream in flight ends abnormally on both sides, with a reason
        rec = await b_col.wait_done(writer.stream_id, timeout=10)
        assert isinstance(rec.error, roomstreams.StreamAborted)
        assert rec.error.code == "router_restarted"
        with pytest.raises(roomstreams.StreamAborted) as aborted:
            await asyncio.wait_for(writer.close(), 10)
        assert aborted.value.code == "router_restarted"

        # the room goes on: same connections, handlers still in effect, both directions
        info = await alice.local_participant.send_text("after failover", topic="chat")
        assert (await b_col.wait_done(info.stream_id, timeout=10)).text == "after failover"
        back = await bob.local_participant.send_text("and back", topic="chat")
        assert (await a_col.wait_done(back.stream_id, timeout=10)).text == "and back"
        # membership changes are routed by the new owner
        await carol.connect(s.urls[1], s.token(room_name, "carol"))
        assert set(carol.remote_participants) == {"alice", "bob"}
        assert await asyncio.wait_for(joined.get(), 10) == "carol"
        assert joined.empty()
    finally:
        for r in (alice, bob, carol):
            await r.disconnect()
        standby.terminate()
        standby.wait(10)


async def _listed(s: System, room: str, identity: str) -> None:
    """Until the router lists ``identity`` among the room's participants again."""
    r = redis_client(s.redis_url)

    async def listed() -> bool:
        members = await r.hvals(members_key(room, s.partitions))
        return any(json.loads(m)["identity"] == identity for m in members)

    try:
        await wait_for_state(listed, 10, f"{identity} listed in {room}")
    finally:
        await r.aclose()


async def _failover_with_a_frozen_gateway(
    system_factory: Callable[..., System], room_name: str, **env: str
) -> tuple[System, roomstreams.Room, roomstreams.Room, Collector, roomstreams.Room, Collector]:
    """alice on gateway 0, bob and carol (handlers on "chat") on gateways 1 and 0; the
    router dies while bob's gateway is frozen (SIGSTOP). alice closes her stream in flight
    while no router runs: the trailer is never routed, and close() raises router_restarted
    once alice's gateway has resynced (it must not wait forever)."""
    s = system_factory(gateways=2, ROOMSTREAMS_LEASE_MS="1500", **env)
    standby = _spawn("services.router", s.env)
    s.gateways.append(standby)  # stopped with the system
    b_col, c_col = Collector(), Collector()
    alice, bob, carol = roomstreams.Room(), roomstreams.Room(), roomstreams.Room()
    bob.register_text_stream_handler("chat", b_col)
    carol.register_text_stream_handler("chat", c_col)
    joined: asyncio.Queue[str] = asyncio.Queue()
    alice.on("participant_connected", lambda p: joined.put_nowait(p.identity))
    await alice.connect(s.urls[0], s.token(room_name, "alice"))
    await bob.connect(s.urls[1], s.token(room_name, "bob"))
    await carol.connect(s.urls[0], s.token(room_name, "carol"))
    assert {await asyncio.wait_for(joined.get(), 10) for _ in range(2)} == {"bob", "carol"}
    writer = await alice.local_participant.stream_text(topic="chat")
    await writer.write("in flight")
    await b_col.wait_count(1)
    await c_col.wait_count(1)
    s.gateways[1].send_signal(signal.SIGSTOP)
    assert s.router is not None
    s.router.send_signal(signal.SIGKILL)
    with pytest.raises(roomstreams.StreamAborted) as aborted:
        await asyncio.wait_for(writer.close(), 10)
    assert aborted.value.code == "router_restarted"
    return s, alice, bob, b_col, carol, c_col


async def test_a_stream_sent_before_every_gateway_resynced_still_reaches_every_handler(
    system_factory: Callable[..., System], room_name: str
) -> None:
    """The new router holds back what is sent during the takeover until every live gateway
    has re-announced its participants: bob's gateway answers late, and still bob's handler
    gets the stream alice sent before that (without the wait, the router would route it
    while it knew no handler of bob's, i.e. to nobody, silently)."""
    s, alice, bob, b_col, carol, c_col = await _failover_with_a_frozen_gateway(
        system_factory, room_name, ROOMSTREAMS_GATEWAY_TIMEOUT="15"
    )
    try:
        writer = await alice.local_participant.stream_text(topic="chat")
        await writer.write("before bob's gateway is back")
        # close() returns once the end is routed, which the router now holds back
        closing = asyncio.ensure_future(writer.close())
        await wait_logged(s, room_name, writer.stream_id)
        assert not closing.done()
        s.gateways[1].send_signal(signal.SIGCONT)
        await asyncio.wait_for(closing, 10)
        info = writer.info
        assert (await b_col.wait_done(info.stream_id, 10)).text == "before bob's gateway is back"
        assert (await c_col.wait_done(info.stream_id, 10)).text == "before bob's gateway is back"
        # bob's stream in flight ended abnormally once his gateway was back
        first = b_col.streams[0]
        assert isinstance(first.error, roomstreams.StreamAborted)
        assert first.error.code == "router_restarted"
        assert [r.info.stream_id for r in b_col.streams] == [first.info.stream_id, info.stream_id]
    finally:
        s.gateways[1].send_signal(signal.SIGCONT)
        for r in (alice, bob, carol):
            await r.disconnect()


async def test_a_gateway_that_never_answers_the_resync_delays_routing_only_until_the_deadline(
    system_factory: Callable[..., System], room_name: str
) -> None:
    """bob's gateway stays frozen past the resync deadline: what alice sent meanwhile is
    routed at the deadline to the participants that were re-announced (carol); when bob's
    gateway comes back, its late re-announcement puts bob back in the room."""
    s, alice, bob, b_col, carol, c_col = await _failover_with_a_frozen_gateway(
        system_factory, room_name, ROOMSTREAMS_GATEWAY_TIMEOUT="15", ROOMSTREAMS_RESYNC_TIMEOUT="1"
    )
    try:
        info = await alice.local_participant.send_text("held until the deadline", topic="chat")
        assert (await c_col.wait_done(info.stream_id, 10)).text == "held until the deadline"
        s.gateways[1].send_signal(signal.SIGCONT)
        first = await b_col.wait_done(b_col.streams[0].info.stream_id, 10)
        assert isinstance(first.error, roomstreams.StreamAborted)
        # bob's gateway re-announces him when it comes back (late: nothing waits for it
        # any more, so only once the router lists him again is he sure to be routed to)
        await _listed(s, room_name, "bob")
        later = await alice.local_participant.send_text("after", topic="chat")
        assert (await b_col.wait_done(later.stream_id, 10)).text == "after"
        assert info.stream_id not in b_col.by_id  # routed before bob was known again
    finally:
        s.gateways[1].send_signal(signal.SIGCONT)
        for r in (alice, bob, carol):
            await r.disconnect()


async def test_joins_and_leaves_while_no_router_runs_are_announced_after_the_takeover(
    system_factory: Callable[..., System], room_name: str
) -> None:
    """dave leaves, carol joins and alice registers a handler after the router died, before
    the standby took over: none of it was routed. The new router works it out: carol's
    connect() completes (with alice in her room), alice is told dave left and carol came,
    and alice's registration completes and is in effect."""
    s = system_factory(gateways=2, ROOMSTREAMS_LEASE_MS="1500")
    s.gateways.append(_spawn("services.router", s.env))  # the standby, stopped with the system
    alice, dave, carol = roomstreams.Room(), roomstreams.Room(), roomstreams.Room()
    events: asyncio.Queue[tuple[str, str]] = asyncio.Queue()
    alice.on("participant_connected", lambda p: events.put_nowait(("+", p.identity)))
    alice.on("participant_disconnected", lambda p: events.put_nowait(("-", p.identity)))
    try:
        await alice.connect(s.urls[0], s.token(room_name, "alice"))
        await dave.connect(s.urls[1], s.token(room_name, "dave"))
        assert await asyncio.wait_for(events.get(), 10) == ("+", "dave")
        assert s.router is not None
        s.router.send_signal(signal.SIGKILL)
        s.router.wait(10)
        await dave.disconnect()
        news = Collector()
        registered = asyncio.ensure_future(alice.register_text_stream_handler("news", news))
        joining = asyncio.ensure_future(carol.connect(s.urls[1], s.token(room_name, "carol")))
        await asyncio.wait_for(joining, 15)
        assert set(carol.remote_participants) == {"alice"}
        got = {await asyncio.wait_for(events.get(), 10) for _ in range(2)}
        assert got == {("-", "dave"), ("+", "carol")}
        assert set(alice.remote_participants) == {"carol"}
        await asyncio.wait_for(registered, 10)
        info = await carol.local_participant.send_text("fresh", topic="news")
        assert (await news.wait_done(info.stream_id, 10)).text == "fresh"
    finally:
        for r in (alice, dave, carol):
            await r.disconnect()


async def _router_partition_clients(s: System) -> set[str]:
    """Names of the partition readers connected to this system's Redis database (other
    systems of the test session use other databases of the same server)."""
    if s.cluster is not None:  # the whole cluster is this system's
        names: set[str] = set()
        for node in s.cluster.nodes:
            with s.cluster.admin(node) as admin:
                names |= {str(c["name"]) for c in admin.client_list()}
    else:
        db = s.redis_url.rsplit("/", 1)[1]
        r = redis_client(s.redis_url)
        try:
            names = {str(c["name"]) for c in await r.client_list() if str(c["db"]) == db}
        finally:
            await r.aclose()
    return {n for n in names if n.startswith("roomstreams-router-") and "-p" in n}


async def test_a_stalled_router_that_resumes_after_a_takeover_delivers_nothing(
    system_factory: Callable[..., System], room_name: str
) -> None:
    """The router stalls (SIGSTOP) long enough for the standby to take its partitions over,
    then resumes: until it notices it lost its leases it may still route what it reads.
    Gateways fence it off by epoch, so nobody gets a stream twice."""
    s = system_factory(gateways=2, ROOMSTREAMS_LEASE_MS="1500")
    assert s.router is not None
    old = {n.split("-")[2] for n in await _router_partition_clients(s)}
    assert len(old) == 1
    s.gateways.append(_spawn("services.router", s.env))  # the standby, stopped with the system
    b_col = Collector()
    alice, bob = roomstreams.Room(), roomstreams.Room()
    bob.register_text_stream_handler("chat", b_col)
    try:
        await alice.connect(s.urls[0], s.token(room_name, "alice"))
        await bob.connect(s.urls[1], s.token(room_name, "bob"))
        writer = await alice.local_participant.stream_text(topic="chat")
        await writer.write("in flight")
        await b_col.wait_count(1)
        s.router.send_signal(signal.SIGSTOP)
        try:
            with pytest.raises(roomstreams.StreamAborted):
                await asyncio.wait_for(writer.close(), 10)  # the standby took over
            info = await alice.local_participant.send_text("after the takeover", topic="chat")
            await b_col.wait_done(info.stream_id, 10)
            r = redis_client(s.redis_url)
            partition = partition_of(room_name, s.partitions)
            taken_over_at = int(await r.get(f"{lease_key(partition)}:fence") or 0)
        finally:
            s.router.send_signal(signal.SIGCONT)
        # the old router reads from where it stopped, then finds the room's partition gone
        # (others it may take back: their leases lapsed and nobody took them yet). Routers
        # share the partitions, so once it is back the standby may hand this one back to it
        # too: under a new epoch, read by a new worker
        [old_id] = old
        reader = f"roomstreams-router-{old_id}-p{partition}"

        async def left() -> bool:
            handed_back = int(await r.get(f"{lease_key(partition)}:fence") or 0) > taken_over_at
            return handed_back or reader not in await _router_partition_clients(s)

        try:
            await wait_for_state(left, 10, "the old router to leave the room's partition")
        finally:
            await r.aclose()
        later = await alice.local_participant.send_text("later", topic="chat")
        await b_col.wait_done(later.stream_id, 10)
        ids = [r.info.stream_id for r in b_col.streams]
        assert ids == [writer.stream_id, info.stream_id, later.stream_id]
        assert b_col.by_id[info.stream_id].text == "after the takeover"
    finally:
        for r in (alice, bob):
            await r.disconnect()


async def test_after_a_redis_restart_gateways_listen_to_the_new_routers_epochs(
    room_name: str,
) -> None:
    """Fencing counters live in Redis: after a Redis restart (no persistence) they start at
    1 again. Gateways that had heard a higher epoch must notice the new server (its run_id)
    and start over, or they would ignore the router for good. New participants then join
    and exchange streams through the same gateways and the standby router."""
    from roomstreams._redis_server import LocalRedisServer

    from .conftest import make_env

    srv = LocalRedisServer().start()
    port = srv.port
    s = System(srv.url, make_env(srv.url, ROOMSTREAMS_LEASE_MS="1500"))
    try:
        s.start_router()
        s.start_gateway()
        s.start_gateway()
        s.gateways.append(_spawn("services.router", s.env))  # the standby
        alice = roomstreams.Room()
        await alice.connect(s.urls[0], s.token(room_name, "alice"))
        writer = await alice.local_participant.stream_text(topic="chat")
        assert s.router is not None
        s.router.send_signal(signal.SIGKILL)  # the standby takes over: epoch 2 everywhere
        with pytest.raises(roomstreams.StreamAborted):
            await asyncio.wait_for(writer.close(), 10)
        await alice.disconnect()
        srv.stop()
        srv = LocalRedisServer(port=port).start()  # empty: every counter starts over
        # the router finds its leases gone and takes the room's partition again, at epoch 1
        fence = f"{lease_key(partition_of(room_name, s.partitions))}:fence"
        r = redis_client(srv.url)

        async def retaken() -> bool:
            return await r.get(fence) == b"1"

        try:
            await wait_for_state(retaken, 10, "the room's partition taken at epoch 1")
        finally:
            await r.aclose()
        col = Collector()
        carol, dave = roomstreams.Room(), roomstreams.Room()
        dave.register_text_stream_handler("chat", col)
        await carol.connect(s.urls[0], s.token(room_name, "carol"))
        await dave.connect(s.urls[1], s.token(room_name, "dave"))
        info = await carol.local_participant.send_text("after the restart", topic="chat")
        assert (await col.wait_done(info.stream_id, 10)).text == "after the restart"
        await carol.disconnect()
        await dave.disconnect()
    finally:
        s.stop()
        srv.stop()
