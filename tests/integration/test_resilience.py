"""Nothing is lost silently, nothing is kept: pacing, slow consumers, lag, trimming, room
expiry. Each test runs its own system so it can pause (SIGSTOP) or tune processes."""

from __future__ import annotations

import asyncio
import json
import signal
import time
import urllib.request
from collections.abc import Callable
from typing import Any

import pytest
import redis.asyncio as aioredis
import websockets

import roomstreams
from roomstreams.protocol.keys import inbox_key, room_log_key

from .conftest import System
from .helpers import Collector, RawClient, wait_for_state, wait_logged

pytestmark = pytest.mark.slow


async def _room(
    s: System, room: str, identity: str, gateway: int = 0, **handlers: Any
) -> roomstreams.Room:
    r = roomstreams.Room()
    for topic, h in handlers.items():
        r.register_text_stream_handler(topic, h)
    await r.connect(s.urls[gateway], s.token(room, identity))
    return r


def _client(s: System) -> aioredis.Redis:
    return aioredis.Redis.from_url(s.redis_url)


async def test_fast_sender_is_paced_by_the_router(
    system_factory: Callable[..., System], room_name: str
) -> None:
    window = 64 * 1024
    s = system_factory(gateways=1, ROOMSTREAMS_WINDOW_BYTES=str(window))
    redis_client = _client(s)
    col = Collector()
    bob = await _room(s, room_name, "bob", chat=col)
    alice = await _room(s, room_name, "alice")
    key = room_log_key(room_name, s.partitions)
    text = "z" * (3 * 1024 * 1024)
    assert s.router is not None
    s.router.send_signal(signal.SIGSTOP)
    try:
        send = asyncio.create_task(alice.local_participant.send_text(text, topic="chat"))
        # while the router is stopped, the room log never holds more than the window
        peak = 0
        deadline = time.monotonic() + 1.0
        while time.monotonic() < deadline:
            entries = await redis_client.xrange(key, "-", "+")
            peak = max(peak, sum(int(f.get(b"n", b"0")) for _, f in entries))
            await asyncio.sleep(0.05)
        assert not send.done(), send.exception() if send.done() else None
        assert 0 < peak <= window + 16 * 1024
    finally:
        s.router.send_signal(signal.SIGCONT)
    info = await asyncio.wait_for(send, 20)
    rec = await col.wait_done(info.stream_id, timeout=20)
    assert rec.text == text
    await alice.disconnect()
    await bob.disconnect()
    await redis_client.aclose()


async def test_slow_consumer_is_disconnected_and_nobody_else_slows(
    system_factory: Callable[..., System], room_name: str
) -> None:
    # bob reads on this test's event loop, beside alice sending 24 MB on it: nothing paces
    # the router by bob's socket, so a CI machine starving this process once cut bob too
    # at 256 frames (3.8 MB) behind. 512 (7.7 MB) doubles his margin; the slow socket, which
    # never reads, still fills it and its socket buffers long before the 24 MB are through
    s = system_factory(gateways=1, ROOMSTREAMS_SEND_QUEUE_FRAMES="512")
    col = Collector()
    bob = await _room(s, room_name, "bob", chat=col)
    slow = await RawClient.connect(s.urls[0], s.token(room_name, "slow"), max_queue=1)
    await slow.subscribe("chat")  # then never reads again
    alice = await _room(s, room_name, "alice")
    text = "s" * (24 * 1024 * 1024)
    t0 = time.monotonic()
    info = await asyncio.wait_for(alice.local_participant.send_text(text, topic="chat"), 30)
    rec = await col.wait_done(info.stream_id, timeout=30)
    assert rec.text == text and rec.error is None
    assert time.monotonic() - t0 < 30
    # the slow socket was closed by the gateway with a clear code and reason
    with pytest.raises(websockets.ConnectionClosed) as closed:
        while True:
            await slow.ws.recv()
    assert closed.value.rcvd is not None
    assert closed.value.rcvd.code == 4008
    assert "slow consumer" in closed.value.rcvd.reason
    await alice.disconnect()
    await bob.disconnect()


async def test_gateway_that_fell_behind_ends_streams_as_lagged(
    system_factory: Callable[..., System], room_name: str
) -> None:
    s = system_factory(gateways=2, ROOMSTREAMS_INBOX_MAXLEN="10")
    col = Collector()
    bob = await _room(s, room_name, "bob", 1, chat=col)
    alice = await _room(s, room_name, "alice", 0)
    w = await alice.local_participant.stream_text(topic="chat")
    await w.write("first;")
    await col.wait_count(1)
    s.gateways[1].send_signal(signal.SIGSTOP)
    try:
        for i in range(400):
            await w.write(f"{i};")
        # wait until the router has routed them all into the stalled gateway's inbox
        await w.close()
    finally:
        s.gateways[1].send_signal(signal.SIGCONT)
    rec = await col.wait_done(w.stream_id, timeout=10)
    assert isinstance(rec.error, roomstreams.StreamAborted)
    assert rec.error.code == "lagged"
    # the connection itself is still good: the next stream arrives whole
    nxt = await alice.local_participant.send_text("after the gap", topic="chat")
    assert (await col.wait_done(nxt.stream_id)).text == "after the gap"
    await alice.disconnect()
    await bob.disconnect()


def _gateway_id(s: System, i: int) -> str:
    with urllib.request.urlopen(f"http://127.0.0.1:{s.ports[i]}/healthz", timeout=5) as resp:
        return str(json.load(resp)["gateway"])


async def _not_blocked(s: System, client_name: str) -> bool:
    r = _client(s)
    try:
        clients = [c for c in await r.client_list() if c["name"] == client_name]
        assert clients, f"no Redis client named {client_name}"
        return all("b" not in c["flags"] for c in clients)
    finally:
        await r.aclose()


async def test_a_sender_whose_close_confirmation_was_trimmed_is_not_left_waiting(
    system_factory: Callable[..., System], room_name: str
) -> None:
    """alice's gateway stalls after her trailer was logged; the router's confirmation of it
    is then trimmed from that gateway's inbox by a flood to dave on the same gateway. When
    the gateway is back it sees the gap: alice's close() ends with ``lagged`` (it would
    otherwise wait forever), and both connections work as before."""
    s = system_factory(gateways=2, ROOMSTREAMS_INBOX_MAXLEN="10")
    b_col, d_col = Collector(), Collector()
    bob = await _room(s, room_name, "bob", 0, chat=b_col)
    carol = await _room(s, room_name, "carol", 0)
    alice = await _room(s, room_name, "alice", 1)
    dave = await _room(s, room_name, "dave", 1, flood=d_col)
    w = await alice.local_participant.stream_text(topic="chat")
    await w.write("x")
    await b_col.wait_count(1)
    assert s.router is not None
    s.router.send_signal(signal.SIGSTOP)
    closing = asyncio.ensure_future(w.close())
    try:
        await wait_logged(s, room_name, w.stream_id, "t")
        inbox_reader = f"roomstreams-gateway-{_gateway_id(s, 1)}-inbox"
        s.gateways[1].send_signal(signal.SIGSTOP)
        # its blocked inbox read must time out first (server side): otherwise Redis would
        # answer it with the confirmation, waiting in the socket for the gateway to resume
        await wait_for_state(
            lambda: _not_blocked(s, inbox_reader),
            what="the stalled gateway's inbox read to time out",
        )
        flood = await carol.local_participant.stream_text(topic="flood")
        s.router.send_signal(signal.SIGCONT)
        for i in range(400):
            await flood.write(f"{i};")
        # routed (after alice's trailer) into the stalled gateway's inbox, trimming it
        await asyncio.wait_for(flood.close(), 10)
    finally:
        s.router.send_signal(signal.SIGCONT)
        s.gateways[1].send_signal(signal.SIGCONT)
    with pytest.raises(roomstreams.StreamAborted) as aborted:
        await asyncio.wait_for(closing, 10)
    assert aborted.value.code == "lagged"
    nxt = await alice.local_participant.send_text("after the gap", topic="chat")
    assert (await b_col.wait_done(nxt.stream_id, 10)).text == "after the gap"
    more = await carol.local_participant.send_text("and to dave", topic="flood")
    assert (await d_col.wait_done(more.stream_id, 10)).text == "and to dave"
    for r in (alice, bob, carol, dave):
        await r.disconnect()


async def test_router_that_fell_behind_ends_streams_as_lagged(
    system_factory: Callable[..., System], room_name: str
) -> None:
    s = system_factory(gateways=1, ROOMSTREAMS_LOG_MAXLEN="10")
    col = Collector()
    bob = await _room(s, room_name, "bob", chat=col)
    alice = await _room(s, room_name, "alice")
    w = await alice.local_participant.stream_text(topic="chat")
    await w.write("first;")
    await col.wait_count(1)
    assert s.router is not None
    s.router.send_signal(signal.SIGSTOP)
    try:
        for i in range(400):
            await w.write(f"{i};")  # small chunks: far more entries than the cap
    finally:
        s.router.send_signal(signal.SIGCONT)
    rec = await col.wait_done(w.stream_id, timeout=10)
    assert isinstance(rec.error, roomstreams.StreamAborted)
    assert rec.error.code == "lagged"
    with pytest.raises(roomstreams.StreamAborted):
        await asyncio.wait_for(w.close(), 5)
    await alice.disconnect()
    await bob.disconnect()


async def test_logs_are_trimmed_and_empty_rooms_disappear(
    system_factory: Callable[..., System], room_name: str
) -> None:
    s = system_factory(gateways=1, ROOMSTREAMS_ROOM_EMPTY_TTL="0.5")
    redis_client = _client(s)
    col = Collector()
    bob = await _room(s, room_name, "bob", chat=col)
    alice = await _room(s, room_name, "alice")
    w = await alice.local_participant.stream_text(topic="chat")
    for i in range(1000):
        await w.write(f"{i};")
    await w.close()
    await col.wait_done(w.stream_id)
    key = room_log_key(room_name, s.partitions)
    # processed entries are trimmed (approximately: whole 100-entry nodes)
    assert await redis_client.xlen(key) < 300
    await alice.disconnect()
    await bob.disconnect()

    async def gone() -> bool:
        return not await redis_client.exists(key)

    await wait_for_state(gone, 5, "the empty room's log to be deleted")
    # a newcomer gets nothing of the past
    late_col = Collector()
    carol = await _room(s, room_name, "carol", chat=late_col)
    dave = await _room(s, room_name, "dave")
    info = await dave.local_participant.send_text("new era", topic="chat")
    await late_col.wait_done(info.stream_id)
    assert [r.info.stream_id for r in late_col.streams] == [info.stream_id]
    await carol.disconnect()
    await dave.disconnect()
    await redis_client.aclose()


async def test_gateway_inbox_is_trimmed(
    system: System, room_name: str, redis_client: aioredis.Redis
) -> None:
    col = Collector()
    bob = await _room(system, room_name, "bob", 1, chat=col)
    alice = await _room(system, room_name, "alice", 0)
    w = await alice.local_participant.stream_text(topic="chat")
    for i in range(1500):
        await w.write(f"{i};")
    await w.close()
    await col.wait_done(w.stream_id)
    gw_ids = [
        k.decode().split("{gw:")[1].split("}")[0]
        async for k in redis_client.scan_iter("rs:{gw:*}:inbox")
    ]
    assert gw_ids
    # the inbox goes no further than what resumable clients acknowledged (session resume),
    # so the last trims may come a moment later, once their acks are in; a session suspended
    # by an earlier test holds its position for the resume window
    deadline = time.monotonic() + 20
    while max([await redis_client.xlen(inbox_key(g)) for g in gw_ids]) >= 1000:
        assert time.monotonic() < deadline, "the inbox was not trimmed"
        await asyncio.sleep(0.1)
    await alice.disconnect()
    await bob.disconnect()


async def test_gateway_refuses_data_it_cannot_append_and_keeps_running(room_name: str) -> None:
    """Redis stalls: the gateway's append queue fills; a connection that keeps sending is
    closed with 1013 and a reason, the gateway itself keeps serving once Redis is back."""
    from roomstreams._redis_server import LocalRedisServer

    from .conftest import make_env

    with LocalRedisServer() as redis_server:
        s = System(
            redis_server.url, make_env(redis_server.url, ROOMSTREAMS_APPEND_QUEUE_LIMIT="50")
        )
        try:
            s.start_router()
            s.start_gateway()
            alice = roomstreams.Room()
            await alice.connect(s.urls[0], s.token(room_name, "alice"), reconnect=False)
            gone: asyncio.Queue[str] = asyncio.Queue()
            alice.on("disconnected", gone.put_nowait)
            w = await alice.local_participant.stream_text(topic="chat")
            redis_server.process.send_signal(signal.SIGSTOP)
            try:
                # small entries, so the pacing window is far from full; writes go out until
                # the gateway's refusal comes back (bounded: a timeout fails the test)
                with pytest.raises(roomstreams.RoomStreamsError):
                    async with asyncio.timeout(15):
                        i = 0
                        while True:
                            await w.write(f"{i};")
                            i += 1
                            await asyncio.sleep(0)
                reason = await asyncio.wait_for(gone.get(), 10)
                assert "overloaded" in reason
            finally:
                redis_server.process.send_signal(signal.SIGCONT)
            col = Collector()
            bob = await _room(s, room_name, "bob", chat=col)
            carol = await _room(s, room_name, "carol")
            info = await carol.local_participant.send_text("still serving", topic="chat")
            assert (await col.wait_done(info.stream_id)).text == "still serving"
            await bob.disconnect()
            await carol.disconnect()
        finally:
            s.stop()


async def test_redis_dropping_every_connection_loses_nothing(
    system_factory: Callable[..., System], room_name: str
) -> None:
    """A Redis blip (every client connection killed): the services reconnect, retry what was
    in flight, and a stream open across it arrives whole, in order, with no abnormal end."""
    s = system_factory(gateways=2)
    col = Collector()
    bob = await _room(s, room_name, "bob", 1, chat=col)
    alice = await _room(s, room_name, "alice", 0)
    w = await alice.local_participant.stream_text(topic="chat")
    for i in range(200):
        await w.write(f"{i};")
    r = _client(s)
    killed = await r.client_kill_filter(_type="normal", skipme=True)
    assert killed >= 4  # the router's and both gateways' connections
    for i in range(200, 400):
        await w.write(f"{i};")
    await w.close()
    rec = await col.wait_done(w.stream_id, timeout=15)
    assert rec.error is None
    assert rec.text == "".join(f"{i};" for i in range(400))
    await r.aclose()
    await alice.disconnect()
    await bob.disconnect()


async def test_gateway_survives_a_failed_inbox_trim(
    system_factory: Callable[..., System], room_name: str
) -> None:
    """A Redis error while the gateway trims its inbox (here: its Redis user may not XTRIM)
    is logged and retried later; it used to end the gateway's task group, i.e. the gateway."""
    s = system_factory(gateways=0)
    r = _client(s)
    user = f"gw-{room_name}"
    await r.execute_command("ACL", "SETUSER", user, "on", ">pw", "~*", "&*", "+@all", "-xtrim")
    try:
        host = s.redis_url.split("://", 1)[1]
        limited = f"redis://{user}:pw@{host}"
        for _ in range(2):
            s.start_gateway(ROOMSTREAMS_REDIS_URL=limited)
        col = Collector()
        bob = await _room(s, room_name, "bob", 1, chat=col)
        alice = await _room(s, room_name, "alice", 0)
        w = await alice.local_participant.stream_text(topic="chat")
        for i in range(300):  # past the 200 deliveries after which the inbox is trimmed
            await w.write(f"{i};")
        await w.close()
        rec = await col.wait_done(w.stream_id, timeout=10)
        assert rec.error is None and rec.text == "".join(f"{i};" for i in range(300))
        assert all(g.poll() is None for g in s.gateways), "a gateway exited"
        nxt = await alice.local_participant.send_text("still there", topic="chat")
        assert (await col.wait_done(nxt.stream_id)).text == "still there"
        await alice.disconnect()
        await bob.disconnect()
    finally:
        await r.execute_command("ACL", "DELUSER", user)
        await r.aclose()


async def test_a_held_back_inbox_trim_is_not_repeated_on_every_read(
    system_factory: Callable[..., System], room_name: str
) -> None:
    """A resumable session's acknowledgement lags the newest delivery (marks go every 64
    frames / 50 ms), so a trim is held back at it; the gateway then kept its 200-entry
    count and trimmed after every read: an XTRIM round trip per delivery at W1's rate.
    Counted on the server (INFO commandstats; the other systems of the run are idle)."""
    s = system_factory(gateways=1)
    n = 600
    col = Collector()
    bob = await _room(s, room_name, "bob", 0, chat=col)
    alice = await _room(s, room_name, "alice", 0)
    r = _client(s)
    try:
        before = (await r.info("commandstats")).get("cmdstat_xtrim", {}).get("calls", 0)
        w = await alice.local_participant.stream_text(topic="chat")
        for i in range(n):
            await w.write(f"{i};")
            if i % 10 == 0:
                await asyncio.sleep(0.001)  # spread over many inbox reads, as at W1
        await w.close()
        rec = await col.wait_done(w.stream_id, timeout=20)
        assert rec.error is None
        after = (await r.info("commandstats")).get("cmdstat_xtrim", {}).get("calls", 0)
        # a trim every 200 deliveries (and when idle), not one per read
        assert after - before < 40, after - before
    finally:
        await r.aclose()
        await alice.disconnect()
        await bob.disconnect()


async def test_a_gateway_trims_its_inbox_as_it_delivers(
    system_factory: Callable[..., System], room_name: str
) -> None:
    """Nothing is kept: a gateway trims its inbox up to what it delivered (every 200
    entries), so an inbox holds at most the last couple of hundred deliveries."""
    s = system_factory(gateways=1)
    n = 600
    got: list[bytes] = []
    done = asyncio.Event()

    def on_packet(p: roomstreams.DataPacket) -> None:
        got.append(p.data)
        if len(got) >= n:
            done.set()

    bob = roomstreams.Room()
    bob.on("data_received", on_packet)
    await bob.connect(s.urls[0], s.token(room_name, "bob"))
    alice = await _room(s, room_name, "alice")
    r = _client(s)
    try:
        for i in range(0, n, 100):
            await asyncio.gather(
                *(alice.local_participant.publish_data(b"%d" % j) for j in range(i, i + 100))
            )
        await asyncio.wait_for(done.wait(), 30)
        gw = await asyncio.to_thread(_gateway_id, s, 0)
        info = await r.xinfo_stream(inbox_key(gw))
        assert info["entries-added"] > n  # everything went through the inbox

        # trimmed up to what bob has acknowledged (session resume's marks: at most 64 frames
        # or 50 ms apart), and when idle too; MINID ~ keeps up to a node (100 entries) more
        async def trimmed() -> bool:
            return bool(await r.xlen(inbox_key(gw)) < 200)

        await wait_for_state(trimmed, 10, "the inbox trimmed")
    finally:
        await r.aclose()
        await alice.disconnect()
        await bob.disconnect()
