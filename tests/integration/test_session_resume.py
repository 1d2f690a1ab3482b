"""Session resume: a client whose gateway is killed (SIGKILL) or drains (SIGTERM) reconnects to
another gateway and carries on as the same participant, nobody told it left; what was sent to
it meanwhile arrives exactly once, in order. Past the resume window, the session ends."""

from __future__ import annotations

import asyncio
import json
import signal
from collections.abc import Callable
from typing import Any

import pytest
import websockets

import roomstreams

from .conftest import System
from .lb import TcpBalancer

pytestmark = pytest.mark.slow

CHUNKS = 120
PACKETS = 120


class Events:
    """A room's connection and presence events, in order."""

    NAMES = (
        "connected",
        "reconnecting",
        "reconnected",
        "disconnected",
        "participant_connected",
        "participant_disconnected",
    )

    def __init__(self, room: roomstreams.Room) -> None:
        self.seen: list[tuple[str, Any]] = []
        self._changed = asyncio.Event()
        for name in self.NAMES:
            room.on(name, self._rec(name))

    def _rec(self, name: str) -> Callable[..., None]:
        def cb(*args: Any) -> None:
            self.seen.append((name, args[0] if args else None))
            self._changed.set()

        return cb

    def names(self) -> list[str]:
        return [n for n, _ in self.seen]

    async def wait(self, name: str, timeout: float = 20.0) -> Any:
        async with asyncio.timeout(timeout):
            while True:
                for n, arg in self.seen:
                    if n == name:
                        return arg
                self._changed.clear()
                await self._changed.wait()


class Receiver:
    """Alice's side: one text stream read chunk by chunk, and data packets."""

    def __init__(self, room: roomstreams.Room, after: int) -> None:
        self.chunks: list[str] = []
        self.packets: list[bytes] = []
        self.text: asyncio.Future[str] = asyncio.get_running_loop().create_future()
        self.midway = asyncio.Event()
        self.all_packets = asyncio.Event()
        self._after = after
        room.register_text_stream_handler("long", self._read)
        room.on("data_received", self._packet)

    def _packet(self, p: roomstreams.DataPacket) -> None:
        self.packets.append(bytes(p.data))
        if len(self.packets) >= PACKETS:
            self.all_packets.set()

    async def _read(self, reader: roomstreams.TextStreamReader, identity: str) -> None:
        try:
            async for chunk in reader:
                self.chunks.append(chunk)
                if len(self.chunks) >= self._after:
                    self.midway.set()
            self.text.set_result("".join(self.chunks))
        except Exception as exc:
            self.text.set_exception(exc)


def _line(i: int) -> str:
    return f"line {i:04d} " + "x" * 40 + "\n"


async def _join(url: str, s: System, room: str, identity: str) -> roomstreams.Room:
    r = roomstreams.Room()
    await r.connect(url, s.token(room, identity))
    return r


async def _resume_after(sig: signal.Signals | None, s: System, room_name: str) -> None:
    """Alice (receiver) on gateway 0 through a balancer, Bob (sender) and Carol (watcher) on
    gateway 1. Bob streams text and publishes packets; ``sig`` hits gateway 0 mid-stream (None:
    Alice's TCP connection dies, the gateway lives on); Bob goes on; Alice resumes on gateway
    1 (or, for None, wherever the balancer sends her: gateway 0 again)."""
    async with TcpBalancer([s.ports[0]]) as lb:
        alice = roomstreams.Room()
        rx = Receiver(alice, after=CHUNKS // 4)
        a_ev = Events(alice)
        await alice.connect(lb.url, s.token(room_name, "alice"))
        bob = await _join(s.urls[1], s, room_name, "bob")
        carol = await _join(s.urls[1], s, room_name, "carol")
        c_ev = Events(carol)
        b_ev = Events(bob)
        writer = await bob.local_participant.stream_text(topic="long")
        half = CHUNKS // 2
        for i in range(half):
            await writer.write(_line(i))
            await bob.local_participant.publish_data(f"p{i}".encode(), reliable=True)
        await rx.midway.wait()
        if sig is None:
            assert alice._conn.ws is not None
            alice._conn.ws.transport.abort()  # no close frame: the gateway sees it die
        else:
            lb.backends = [s.ports[1]]  # the balancer sends Alice's reconnect to gateway 1
            s.gateways[0].send_signal(sig)
        # what Bob sends now goes to gateway 0's inbox until Alice's resume moves her
        for i in range(half, CHUNKS):
            await writer.write(_line(i))
            if i < PACKETS:
                await bob.local_participant.publish_data(f"p{i}".encode(), reliable=True)
        await a_ev.wait("reconnected")
        await writer.close()
        text = await asyncio.wait_for(rx.text, 20)
        assert text == "".join(_line(i) for i in range(CHUNKS))  # nothing lost or repeated
        want = [f"p{i}".encode() for i in range(PACKETS)]
        await asyncio.wait_for(rx.all_packets.wait(), 10)
        assert rx.packets == want
        life = [n for n in a_ev.names() if not n.startswith("participant_")]
        assert life == ["connected", "reconnecting", "reconnected"]
        # nobody saw Alice leave or join again; she still sees both
        assert "participant_disconnected" not in c_ev.names()
        assert "participant_disconnected" not in b_ev.names()
        assert ("participant_connected", None) not in c_ev.seen
        assert not any(n == "participant_connected" for n, _ in b_ev.seen[1:])
        assert set(alice.remote_participants) == {"bob", "carol"}
        # and she goes on: a new stream from her reaches Carol, one from Bob reaches her
        got: asyncio.Future[str] = asyncio.get_running_loop().create_future()

        async def on_chat(reader: roomstreams.TextStreamReader, identity: str) -> None:
            got.set_result(await reader.read_all())

        await carol.register_text_stream_handler("chat", on_chat)
        await alice.local_participant.send_text("back", topic="chat")
        assert await asyncio.wait_for(got, 10) == "back"
        sid = alice.local_participant.sid
        assert sid  # the same participant: its sid as the others know it
        assert carol.remote_participants["alice"].sid == sid
        for r in (alice, bob, carol):
            await r.disconnect()


async def test_receiver_resumes_after_its_gateway_is_killed(
    system_factory: Callable[..., System], room_name: str
) -> None:
    s = system_factory(gateways=2)
    await _resume_after(signal.SIGKILL, s, room_name)


async def test_receiver_resumes_after_its_gateway_drains(
    system_factory: Callable[..., System], room_name: str
) -> None:
    s = system_factory(gateways=2)
    await _resume_after(signal.SIGTERM, s, room_name)


async def test_receiver_resumes_after_its_connection_drops(
    system_factory: Callable[..., System], room_name: str
) -> None:
    s = system_factory(gateways=2)
    await _resume_after(None, s, room_name)


async def test_a_stream_the_resumed_participant_was_sending_ends_clearly(
    system_factory: Callable[..., System], room_name: str
) -> None:
    s = system_factory(gateways=2)
    async with TcpBalancer([s.ports[0]]) as lb:
        alice = await _join(lb.url, s, room_name, "alice")
        a_ev = Events(alice)
        bob = roomstreams.Room()
        ended: asyncio.Future[BaseException] = asyncio.get_running_loop().create_future()
        opened = asyncio.Event()

        async def read(reader: roomstreams.TextStreamReader, identity: str) -> None:
            opened.set()
            try:
                await reader.read_all()
            except roomstreams.StreamAborted as exc:
                ended.set_result(exc)

        bob.register_text_stream_handler("up", read)
        await bob.connect(s.urls[1], s.token(room_name, "bob"))
        writer = await alice.local_participant.stream_text(topic="up")
        await writer.write("partial ")
        await opened.wait()
        lb.backends = [s.ports[1]]
        s.gateways[0].send_signal(signal.SIGKILL)
        with pytest.raises(roomstreams.RoomStreamsError):
            await writer.write("more")  # Alice's writer fails at once: the socket is gone
            await writer.close()
        await a_ev.wait("reconnected")
        exc = await asyncio.wait_for(ended, 15)
        assert isinstance(exc, roomstreams.StreamAborted) and exc.code == "sender_left"
        assert "resumed" in str(exc) or "lost its connection" in str(exc)
        for r in (alice, bob):
            await r.disconnect()


async def test_resume_past_the_window_ends_the_session_and_joins_afresh(
    system_factory: Callable[..., System], room_name: str
) -> None:
    s = system_factory(gateways=2, ROOMSTREAMS_RESUME_WINDOW="1", ROOMSTREAMS_GATEWAY_TIMEOUT="2")
    async with TcpBalancer([s.ports[0]]) as lb:
        alice = await _join(lb.url, s, room_name, "alice")
        alice.reconnect_timeout = 60
        a_ev = Events(alice)
        carol = await _join(s.urls[1], s, room_name, "carol")
        c_ev = Events(carol)
        lb.backends = []  # Alice cannot get back in for now
        s.gateways[0].send_signal(signal.SIGKILL)
        await a_ev.wait("reconnecting")
        left = await c_ev.wait("participant_disconnected", timeout=30)
        assert left.identity == "alice"  # gateway timeout, then the window: she left
        lb.backends = [s.ports[1]]
        reason = await a_ev.wait("disconnected", timeout=30)
        assert "session ended" in reason
        await a_ev.wait("connected", timeout=30)
        assert "reconnected" not in a_ev.names()
        assert alice.connection_state is roomstreams.ConnectionState.CONN_CONNECTED
        joined = await c_ev.wait("participant_connected")
        assert joined.identity == "alice"
        for r in (alice, carol):
            await r.disconnect()


async def test_another_identity_cannot_take_a_session(
    system_factory: Callable[..., System], room_name: str
) -> None:
    """Mallory knows Alice's session and a mark of her gateway's inbox (both are only ids):
    her resume is refused with 4011 and ``resume_failed``, and Alice is untouched."""
    s = system_factory(gateways=2)
    alice = roomstreams.Room()
    a_ev = Events(alice)
    await alice.connect(s.urls[0], s.token(room_name, "alice"))
    session, mark = alice._session, alice._mark
    assert session and mark
    url = f"{s.urls[1]}/rtc?access_token={s.token(room_name, 'mallory')}&marks=1&resume=1"
    async with websockets.connect(url, compression=None) as ws:
        await ws.send(json.dumps({"type": "resume", "session": session, "at": mark}))
        goaway = json.loads(await asyncio.wait_for(ws.recv(), 15))
        assert goaway["type"] == "goaway" and goaway["code"] == "resume_failed"
        assert "another identity" in goaway["reason"]
        with pytest.raises(websockets.ConnectionClosed) as closed:
            await asyncio.wait_for(ws.recv(), 5)
        assert closed.value.rcvd is not None and closed.value.rcvd.code == 4011
    # Alice is still herself, on her gateway, and nothing happened to her
    bob = await _join(s.urls[1], s, room_name, "bob")
    got: asyncio.Future[str] = asyncio.get_running_loop().create_future()

    async def on_chat(reader: roomstreams.TextStreamReader, identity: str) -> None:
        got.set_result(await reader.read_all())

    await alice.register_text_stream_handler("chat", on_chat)
    await bob.local_participant.send_text("still yours", topic="chat")
    assert await asyncio.wait_for(got, 10) == "still yours"
    assert a_ev.names() == ["connected", "participant_connected"]
    assert "mallory" not in bob.remote_participants
    for r in (alice, bob):
        await r.disconnect()
