"""Gateways join and leave while rooms are live: drain on SIGTERM, death on SIGKILL, clients
reconnecting through a load balancer, a new gateway joining."""

from __future__ import annotations

import asyncio
import signal
import time
from collections.abc import Callable
from typing import Any

import pytest

import roomstreams
import roomstreams.api
from roomstreams._redisio import client as redis_client
from roomstreams.protocol.keys import inbox_key

from .conftest import System
from .helpers import Collector
from .lb import TcpBalancer

pytestmark = pytest.mark.slow


class Events:
    """Records a room's connection events."""

    def __init__(self, room: roomstreams.Room) -> None:
        self.q: asyncio.Queue[tuple[str, Any]] = asyncio.Queue()
        for name in (
            "reconnecting",
            "reconnected",
            "disconnected",
            "participant_connected",
            "participant_disconnected",
        ):
            room.on(name, self._rec(name))

    def _rec(self, name: str) -> Callable[..., None]:
        def cb(*args: Any) -> None:
            self.q.put_nowait((name, args[0] if args else None))

        return cb

    async def next(self, name: str, timeout: float = 10.0) -> Any:
        async with asyncio.timeout(timeout):
            while True:
                ev, arg = await self.q.get()
                if ev == name:
                    return arg


async def _join(url: str, s: System, room: str, identity: str, **handlers: Any) -> roomstreams.Room:
    r = roomstreams.Room()
    for topic, h in handlers.items():
        r.register_text_stream_handler(topic, h)
    await r.connect(url, s.token(room, identity))
    return r


def _gateway_of(lb: TcpBalancer, s: System, nth: int) -> int:
    return s.ports.index(lb.chosen[nth])


async def test_sigterm_drains_gateway_and_clients_reconnect_elsewhere(
    system_factory: Callable[..., System], room_name: str
) -> None:
    s = system_factory(gateways=3)
    async with TcpBalancer(s.ports) as lb:
        a_col, b_col = Collector(), Collector()
        alice = await _join(lb.url, s, room_name, "alice", chat=a_col)
        bob = await _join(lb.url, s, room_name, "bob", chat=b_col)
        a_ev, b_ev = Events(alice), Events(bob)
        bob_gw = _gateway_of(lb, s, 1)
        assert bob_gw != _gateway_of(lb, s, 0)
        # bob is mid-stream in both directions when his gateway is told to stop
        to_bob = await alice.local_participant.stream_text(topic="chat")
        await to_bob.write("part one ")
        from_bob = await bob.local_participant.stream_text(topic="chat")
        await from_bob.write("bob's half ")
        await b_col.wait_count(1)
        await a_col.wait_count(1)
        lb.backends.remove(s.ports[bob_gw])
        proc = s.gateways[bob_gw]
        proc.send_signal(signal.SIGTERM)
        await b_ev.next("reconnecting")
        # the receiver's stream from bob ends abnormally, naming him
        rec = await a_col.wait_done(from_bob.stream_id, timeout=5)
        assert isinstance(rec.error, roomstreams.StreamAborted)
        assert rec.error.code == "sender_left" and "bob" in str(rec.error)
        # bob resumes his session elsewhere (session resume): his reader of alice's
        # stream goes on, and alice never saw him leave
        await b_ev.next("reconnected")
        assert await asyncio.to_thread(proc.wait, 10) == 0
        assert lb.chosen[-1] != s.ports[bob_gw]
        await to_bob.write("part two")
        await to_bob.close()
        assert (await b_col.wait_done(to_bob.stream_id)).text == "part one part two"
        assert a_ev.q.empty()  # no participant_disconnected / participant_connected
        # handlers stayed registered: bob receives the next stream on his new gateway
        info = await alice.local_participant.send_text("welcome back", topic="chat")
        assert (await b_col.wait_done(info.stream_id)).text == "welcome back"
        await alice.disconnect()
        await bob.disconnect()


async def test_sigkill_gateway_is_noticed_by_heartbeat(
    system_factory: Callable[..., System], room_name: str
) -> None:
    timeout = 2.0
    # a resume window of 1 s: alice (reconnect=False) cannot resume and leaves at once;
    # the dead gateway's inbox goes once the window passed
    s = system_factory(
        gateways=2, ROOMSTREAMS_GATEWAY_TIMEOUT=str(timeout), ROOMSTREAMS_RESUME_WINDOW="1"
    )
    col = Collector()
    bob = await _join(s.urls[1], s, room_name, "bob", chat=col)
    b_ev = Events(bob)
    alice = roomstreams.Room()
    await alice.connect(s.urls[0], s.token(room_name, "alice"), reconnect=False)
    w = await alice.local_participant.stream_text(topic="chat")
    await w.write("about to die")
    await col.wait_count(1)
    r = redis_client(s.redis_url)
    gw_ids = [
        k.decode().split("{gw:")[1].split("}")[0] async for k in r.scan_iter("rs:{gw:*}:inbox")
    ]
    t0 = time.monotonic()
    s.gateways[0].send_signal(signal.SIGKILL)
    rec = await col.wait_done(w.stream_id, timeout=timeout + 4)
    assert time.monotonic() - t0 < timeout + 3
    assert isinstance(rec.error, roomstreams.StreamAborted)
    assert rec.error.code == "sender_left" and "alice" in str(rec.error)
    assert "stopped responding" in rec.error.reason
    assert (await b_ev.next("participant_disconnected")).identity == "alice"
    assert "alice" not in bob.remote_participants

    # nothing stays behind: the dead gateway's inbox goes
    async def inboxes() -> int:
        return sum([await r.exists(inbox_key(g)) for g in gw_ids])

    deadline = time.monotonic() + 10
    while await inboxes() != 1:
        assert time.monotonic() < deadline, "the dead gateway's inbox was not deleted"
        await asyncio.sleep(0.1)
    await r.aclose()
    await alice.disconnect()
    await bob.disconnect()


async def test_client_reconnects_after_its_gateway_is_killed(
    system_factory: Callable[..., System], room_name: str
) -> None:
    s = system_factory(gateways=3)
    async with TcpBalancer(s.ports) as lb:
        col = Collector()
        bob = await _join(lb.url, s, room_name, "bob", chat=col)
        alice = await _join(lb.url, s, room_name, "alice")
        a_ev = Events(alice)
        alice_gw = _gateway_of(lb, s, 1)
        lb.backends.remove(s.ports[alice_gw])
        s.gateways[alice_gw].send_signal(signal.SIGKILL)
        await a_ev.next("reconnecting")
        await a_ev.next("reconnected")
        info = await alice.local_participant.send_text("still here", topic="chat")
        assert (await col.wait_done(info.stream_id)).text == "still here"
        await alice.disconnect()
        await bob.disconnect()


async def test_new_gateway_joins_live_rooms(
    system_factory: Callable[..., System], room_name: str
) -> None:
    s = system_factory(gateways=2)
    a_col, c_col = Collector(), Collector()
    alice = await _join(s.urls[0], s, room_name, "alice", chat=a_col)
    bob = await _join(s.urls[1], s, room_name, "bob")
    s.start_gateway()
    carol = await _join(s.urls[2], s, room_name, "carol", chat=c_col)
    assert set(carol.remote_participants) == {"alice", "bob"}
    info = await bob.local_participant.send_text("hi all", topic="chat")
    assert (await a_col.wait_done(info.stream_id)).text == "hi all"
    assert (await c_col.wait_done(info.stream_id)).text == "hi all"
    back = await carol.local_participant.send_text("hi from gateway 3", topic="chat")
    assert (await a_col.wait_done(back.stream_id)).text == "hi from gateway 3"
    for r in (alice, bob, carol):
        await r.disconnect()


async def test_removed_participant_does_not_reconnect(
    system_factory: Callable[..., System], room_name: str
) -> None:
    s = system_factory(gateways=1)
    alice = await _join(s.urls[0], s, room_name, "alice")
    ev = Events(alice)
    async with roomstreams.api.RoomService(
        s.urls[0], s.env["ROOMSTREAMS_API_KEY"], s.env["ROOMSTREAMS_API_SECRET"]
    ) as api:
        await api.remove_participant(room_name, "alice")
    reason = await ev.next("disconnected")
    assert "removed" in reason
    assert alice.state is roomstreams.ConnectionState.CLOSED


async def test_reconnect_asks_the_token_source_for_a_fresh_token(
    system_factory: Callable[..., System], room_name: str
) -> None:
    s = system_factory(gateways=2)
    async with TcpBalancer(s.ports) as lb:
        issued: list[str] = []

        async def fresh_token() -> str:
            issued.append(s.token(room_name, "alice"))
            return issued[-1]

        alice = roomstreams.Room()
        ev = Events(alice)
        await alice.connect(lb.url, fresh_token)
        assert len(issued) == 1
        gw = s.ports.index(lb.chosen[0])
        lb.backends.remove(s.ports[gw])
        s.gateways[gw].send_signal(signal.SIGKILL)
        await ev.next("reconnecting")
        await ev.next("reconnected")
        assert len(issued) >= 2  # asked again for the reconnect
        await alice.disconnect()


async def test_membership_changes_during_a_reconnect_are_reported(
    system_factory: Callable[..., System], room_name: str
) -> None:
    s = system_factory(gateways=2)
    async with TcpBalancer(s.ports[:1]) as lb:
        alice = await _join(lb.url, s, room_name, "alice")
        ev = Events(alice)
        bob = await _join(s.urls[1], s, room_name, "bob")
        assert (await ev.next("participant_connected")).identity == "bob"
        lb.backends.clear()  # alice cannot get back in for now
        s.gateways[0].send_signal(signal.SIGKILL)
        await ev.next("reconnecting")
        await bob.disconnect()  # while she is away: bob leaves, carol comes
        carol = await _join(s.urls[1], s, room_name, "carol")
        lb.backends.append(s.ports[1])
        changes = []
        async with asyncio.timeout(10):
            while (item := await ev.q.get())[0] != "reconnected":
                name, arg = item
                if name.startswith("participant_"):
                    changes.append((name, arg.identity))
        assert ("participant_disconnected", "bob") in changes
        assert ("participant_connected", "carol") in changes
        assert set(alice.remote_participants) == {"carol"}
        await alice.disconnect()
        await carol.disconnect()


async def test_participant_of_a_gateway_that_never_beats_is_dropped(
    system_factory: Callable[..., System], room_name: str
) -> None:
    """A join left in the log by a gateway that died before it was ever heard from (e.g.
    before this router started): its participant must not linger in the room."""
    from roomstreams.protocol.entries import LogEntry, encode_log_entry
    from roomstreams.protocol.frames import ParticipantInfo
    from roomstreams.protocol.keys import partition_ctl_key, partition_of, room_log_key

    s = system_factory(gateways=1, ROOMSTREAMS_GATEWAY_TIMEOUT="1.0")
    bob = roomstreams.Room()
    ev = Events(bob)
    await bob.connect(s.urls[0], s.token(room_name, "bob"))
    r = redis_client(s.redis_url)
    ghost = LogEntry(
        kind="j",
        session="deadbeef.1",
        seq=1,
        identity="ghost",
        gateway="deadbeef",
        data=ParticipantInfo(identity="ghost").model_dump_json().encode(),
    )
    await r.xadd(room_log_key(room_name, s.partitions), encode_log_entry(ghost))  # type: ignore[arg-type]
    await r.xadd(partition_ctl_key(partition_of(room_name, s.partitions)), {"room": room_name})
    assert (await ev.next("participant_connected")).identity == "ghost"
    left = await ev.next("participant_disconnected", timeout=5)
    assert left.identity == "ghost"
    assert "ghost" not in bob.remote_participants
    await r.aclose()
    await bob.disconnect()


async def test_a_reconnect_goes_on_past_gateways_that_answer_503(
    system_factory: Callable[..., System], room_name: str
) -> None:
    """While the balancer only reaches gateways that refuse with 503 (draining, or too many
    joins at once), a reconnecting client keeps trying (a 503 is not an ``AuthError``, which
    ends reconnecting) and gets back in once a gateway answers."""
    s = system_factory(gateways=2)
    refused = asyncio.Event()
    attempts = 0

    async def busy(_r: asyncio.StreamReader, w: asyncio.StreamWriter) -> None:
        nonlocal attempts
        attempts += 1
        if attempts >= 2:
            refused.set()
        body = b"gateway is draining\n"
        w.write(
            b"HTTP/1.1 503 Service Unavailable\r\nContent-Length: "
            + str(len(body)).encode()
            + b"\r\nConnection: close\r\n\r\n"
            + body
        )
        await w.drain()
        w.close()

    server = await asyncio.start_server(busy, "127.0.0.1", 0)
    busy_port = server.sockets[0].getsockname()[1]
    try:
        async with TcpBalancer([s.ports[0]]) as lb:
            col = Collector()
            bob = await _join(s.urls[1], s, room_name, "bob", chat=col)
            alice = await _join(lb.url, s, room_name, "alice")
            ev = Events(alice)
            lb.backends[:] = [busy_port]
            s.gateways[0].send_signal(signal.SIGKILL)
            await ev.next("reconnecting")
            async with asyncio.timeout(20):
                await refused.wait()  # refused twice, still trying
            assert alice.connection_state != roomstreams.ConnectionState.CONN_DISCONNECTED
            lb.backends[:] = [s.ports[1]]
            await ev.next("reconnected", timeout=20)
            info = await alice.local_participant.send_text("back", topic="chat")
            assert (await col.wait_done(info.stream_id)).text == "back"
            await alice.disconnect()
            await bob.disconnect()
    finally:
        server.close()
        await server.wait_closed()
