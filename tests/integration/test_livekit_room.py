"""LiveKit's room life cycle and participant fields, as code written for ``livekit.rtc`` uses
them: ``connection_state``, the life-cycle events, ``isconnected()``, ``name``/``sid``/
``metadata``, connecting again after a disconnect, ``Room(loop=...)``, callbacks called with
as many arguments as they take, ``once``/``off``, and participants' ``sid``, ``kind``,
``permissions``, ``attributes`` from the token. Through the real system."""

from __future__ import annotations

import asyncio
from typing import Any

import roomstreams
from roomstreams import AccessToken, ConnectionState, ParticipantKind, Room, VideoGrants

from .conftest import API_KEY, API_SECRET, System


def token(
    room: str,
    identity: str,
    *,
    kind: str = "",
    name: str = "",
    metadata: str = "",
    attributes: dict[str, str] | None = None,
    **grants: Any,
) -> str:
    t = AccessToken(API_KEY, API_SECRET).with_identity(identity)
    t = t.with_grants(VideoGrants(room=room, room_join=True, **grants))
    if kind:
        t = t.with_kind(kind)
    if name:
        t = t.with_name(name)
    if metadata:
        t = t.with_metadata(metadata)
    if attributes:
        t = t.with_attributes(attributes)
    return t.to_jwt()


async def test_connection_state_and_life_cycle_events(system: System, room_name: str) -> None:
    room = Room(loop=asyncio.get_running_loop())
    states: list[ConnectionState] = []
    seen: list[str] = []
    room.on("connection_state_changed", states.append)
    room.on("connected", lambda: seen.append("connected"))  # LiveKit's callback: no argument
    room.on("disconnected", lambda: seen.append("disconnected"))
    reasons: list[str] = []
    room.on("disconnected", reasons.append)  # one argument: the reason
    assert room.connection_state is ConnectionState.CONN_DISCONNECTED
    assert not room.isconnected()
    await room.connect(system.urls[0], token(room_name, "alice"))
    try:
        assert room.connection_state is ConnectionState.CONN_CONNECTED == 1
        assert room.isconnected()
        assert seen == ["connected"] and states == [ConnectionState.CONN_CONNECTED]
        assert room.name == room_name and room.metadata == ""
        assert room.sid.startswith("RM_") and await room.sid == room.sid
    finally:
        await room.disconnect()
    assert room.connection_state is ConnectionState.CONN_DISCONNECTED
    assert not room.isconnected()
    assert seen == ["connected", "disconnected"] and reasons == ["client disconnected"]
    assert states == [ConnectionState.CONN_CONNECTED, ConnectionState.CONN_DISCONNECTED]
    # roomstreams' earlier names still work
    assert ConnectionState.CLOSED is ConnectionState.CONN_DISCONNECTED
    assert room.state is ConnectionState.DISCONNECTED


async def test_a_room_connects_again_after_disconnect(system: System, room_name: str) -> None:
    got: asyncio.Queue[str] = asyncio.Queue()

    async def on_chat(reader: roomstreams.TextStreamReader, identity: str) -> None:
        got.put_nowait(await reader.read_all())

    bob = Room()
    bob.register_text_stream_handler("chat", on_chat)
    async with Room() as alice:
        await alice.connect(system.urls[0], token(room_name, "alice"))
        for n in range(2):
            await bob.connect(system.urls[1], token(room_name, "bob"))
            assert bob.isconnected()
            await alice.local_participant.send_text(f"round {n}", topic="chat")
            assert await asyncio.wait_for(got.get(), 5) == f"round {n}"
            await bob.disconnect()
            assert not bob.isconnected()


async def test_reconnect_events_take_livekits_arguments(system: System, room_name: str) -> None:
    states: list[ConnectionState] = []
    order: list[str] = []
    back = asyncio.Event()
    async with Room() as alice:
        alice.on("connection_state_changed", states.append)
        alice.on("reconnecting", lambda: order.append("reconnecting"))
        alice.on("reconnected", lambda: (order.append("reconnected"), back.set()))
        await alice.connect(system.urls[0], token(room_name, "alice"))
        assert alice._conn.ws is not None
        alice._conn.ws.transport.abort()  # the TCP connection dies under it
        await asyncio.wait_for(back.wait(), 10)
        assert order == ["reconnecting", "reconnected"]
        assert states == [
            ConnectionState.CONN_CONNECTED,
            ConnectionState.CONN_RECONNECTING,
            ConnectionState.CONN_CONNECTED,
        ]
        assert alice.isconnected()


async def test_once_and_off(system: System, room_name: str) -> None:
    once: list[str] = []
    every: list[str] = []
    removed: list[str] = []
    joined = asyncio.Queue[str]()

    async with Room() as alice:
        alice.once("participant_connected", lambda p: once.append(p.identity))

        @alice.on("participant_connected")
        def on_joined(p: roomstreams.RemoteParticipant) -> None:
            every.append(p.identity)
            joined.put_nowait(p.identity)

        def gone(p: roomstreams.RemoteParticipant) -> None:
            removed.append(p.identity)

        alice.on("participant_connected", gone)
        alice.off("participant_connected", gone)
        alice.off("participant_connected", gone)  # not registered any more: no error
        await alice.connect(system.urls[0], token(room_name, "alice"))
        for who in ("bob", "carol"):
            async with Room() as r:
                await r.connect(system.urls[1], token(room_name, who))
                assert await asyncio.wait_for(joined.get(), 5) == who
        assert once == ["bob"] and every == ["bob", "carol"] and removed == []


async def test_participant_fields_from_the_token(system: System, room_name: str) -> None:
    attrs = {"role": "helper", "lang": "fr"}
    async with Room() as alice, Room() as agent:
        await alice.connect(
            system.urls[0],
            token(
                room_name,
                "alice",
                name="Alice",
                metadata='{"a": 1}',
                attributes=attrs,
                can_update_own_metadata=True,
            ),
        )
        came: asyncio.Future[roomstreams.RemoteParticipant] = asyncio.Future()
        alice.on("participant_connected", lambda p: came.done() or came.set_result(p))
        await agent.connect(system.urls[1], token(room_name, "bot", kind="agent"))
        lp = alice.local_participant
        assert (lp.identity, lp.name, lp.metadata, lp.attributes) == (
            "alice",
            "Alice",
            '{"a": 1}',
            attrs,
        )
        assert lp.sid.startswith("PA_") and lp.kind is ParticipantKind.PARTICIPANT_KIND_STANDARD
        assert lp.permissions.can_update_metadata and lp.permissions.can_publish_data
        assert not lp.permissions.can_publish  # no media
        bot = await asyncio.wait_for(came, 5)
        assert bot.kind is ParticipantKind.PARTICIPANT_KIND_AGENT and bot.sid.startswith("PA_")
        assert not bot.permissions.can_update_metadata
        assert agent.local_participant.kind is ParticipantKind.AGENT
        seen = agent.remote_participants["alice"]
        assert (seen.name, seen.metadata, seen.attributes, seen.sid) == (
            "Alice",
            '{"a": 1}',
            attrs,
            lp.sid,
        )
        assert seen.permissions.can_update_metadata
        assert alice.sid == agent.sid  # one room, one sid


async def test_agent_grant_makes_an_agent(system: System, room_name: str) -> None:
    async with Room() as r:
        await r.connect(system.urls[0], token(room_name, "worker", agent=True))
        assert r.local_participant.kind is ParticipantKind.AGENT
