"""Backend services as participants: room lifecycle events (FastStream, consumer group) and
the server API."""

from __future__ import annotations

import asyncio
from collections.abc import Callable

import pytest
from faststream.redis import RedisBroker

import roomstreams
from roomstreams.api import ApiError, RoomService
from roomstreams.events import RoomEvent, room_events, room_events_claimer

from .conftest import API_KEY, API_SECRET, System

pytestmark = pytest.mark.slow


async def _join(s: System, room: str, identity: str, gateway: int = 0) -> roomstreams.Room:
    r = roomstreams.Room()
    await r.connect(s.urls[gateway], s.token(room, identity))
    return r


class Inbox:
    def __init__(self) -> None:
        self.q: asyncio.Queue[RoomEvent] = asyncio.Queue()

    async def expect(
        self, event: str, room: str, identity: str = "", timeout: float = 10
    ) -> RoomEvent:
        async with asyncio.timeout(timeout):
            while True:
                ev = await self.q.get()
                if (
                    ev.event == event
                    and ev.room == room
                    and (not identity or ev.identity == identity)
                ):
                    return ev


async def test_lifecycle_events_reach_a_consumer_group_and_survive_its_restart(
    system_factory: Callable[..., System], room_name: str
) -> None:
    s = system_factory(gateways=1, ROOMSTREAMS_ROOM_EMPTY_TTL="0.3")
    inbox = Inbox()

    def make_broker() -> RedisBroker:
        broker = RedisBroker(s.redis_url)

        @broker.subscriber(stream=room_events(group="agents", consumer="a1"))
        async def on_event(event: RoomEvent) -> None:
            await inbox.q.put(event)

        return broker

    broker = make_broker()
    async with broker:
        await broker.start()
        alice = await _join(s, room_name, "alice")
        await inbox.expect("room_started", room_name)
        await inbox.expect("participant_joined", room_name, "alice")
    # the consumer is down while things happen
    bob = await _join(s, room_name, "bob")
    await bob.disconnect()
    await alice.disconnect()
    broker = make_broker()
    async with broker:
        await broker.start()
        await inbox.expect("participant_joined", room_name, "bob")
        left = await inbox.expect("participant_left", room_name, "bob")
        assert left.reason
        await inbox.expect("participant_left", room_name, "alice")
        await inbox.expect("room_finished", room_name)


async def test_unacknowledged_event_is_claimed_again(
    system_factory: Callable[..., System], room_name: str
) -> None:
    s = system_factory(gateways=1)
    inbox = Inbox()
    failed: list[RoomEvent] = []
    broker = RedisBroker(s.redis_url)

    @broker.subscriber(stream=room_events(group="flaky", consumer="c1"))
    async def crashes(event: RoomEvent) -> None:
        if event.room == room_name and event.event == "participant_joined":
            failed.append(event)
            raise RuntimeError("handler crashed before acknowledging")

    @broker.subscriber(stream=room_events_claimer(group="flaky", consumer="c2", idle_ms=200))
    async def claimer(event: RoomEvent) -> None:
        await inbox.q.put(event)

    async with broker:
        await broker.start()
        alice = await _join(s, room_name, "alice")
        claimed = await inbox.expect("participant_joined", room_name, "alice")
        assert failed and failed[0].t == claimed.t
        await alice.disconnect()


async def test_server_api_lists_rooms_and_participants_and_removes(
    system: System, room_name: str
) -> None:
    alice = await _join(system, room_name, "alice")
    bob = await _join(system, room_name, "bob", gateway=1)
    left: asyncio.Queue[str] = asyncio.Queue()
    alice.on("participant_disconnected", lambda p: left.put_nowait(p.identity))
    async with RoomService(system.urls[0], API_KEY, API_SECRET) as api:
        rooms = {r.name: r for r in await api.list_rooms()}
        assert rooms[room_name].num_participants == 2
        people = await api.list_participants(room_name)
        assert [p.identity for p in people] == ["alice", "bob"]
        await api.remove_participant(room_name, "bob")
        assert await asyncio.wait_for(left.get(), 5) == "bob"
        assert [p.identity for p in await api.list_participants(room_name)] == ["alice"]
        with pytest.raises(ApiError) as nf:
            await api.remove_participant(room_name, "nobody")
        assert nf.value.code == "not_found"
        with pytest.raises(ApiError) as nr:
            await api.list_participants("no-such-room")
        assert nr.value.code == "not_found" and "does not exist" in nr.value.message
    await alice.disconnect()
    await bob.disconnect()


async def test_server_api_refuses_a_bad_key(system: System) -> None:
    with pytest.raises(roomstreams.AuthError, match="401"):
        async with RoomService(system.urls[0], API_KEY, "wrong-secret-" + "x" * 40) as api:
            await api.list_rooms()
    with pytest.raises(roomstreams.AuthError, match="another API key"):
        async with RoomService(system.urls[0], "other-key", API_SECRET) as api:
            await api.list_rooms()


async def test_participant_token_cannot_use_the_api(system: System, room_name: str) -> None:
    import websockets

    token = system.token(room_name, "alice")
    with pytest.raises(websockets.InvalidStatus) as exc:
        await websockets.connect(f"{system.urls[0]}/api?access_token={token}")
    assert exc.value.response.status_code == 403
