"""Participant attributes, metadata and name, as LiveKit's ``set_attributes`` /
``set_metadata`` / ``set_name`` and its ``participant_*_changed`` events: the token's
``canUpdateOwnMetadata`` grant, LiveKit's limits, every other participant told in room-log
order with streams, the token's values as the starting ones, late joiners seeing the current
ones. Through the real system."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

import roomstreams
from roomstreams import PermissionDenied, Room, ServerError

from .conftest import System
from .test_livekit_room import token


class Changes:
    """Every participant_*_changed event of a room, in order."""

    def __init__(self, room: Room) -> None:
        self.q: asyncio.Queue[tuple[Any, ...]] = asyncio.Queue()
        room.on(
            "participant_attributes_changed",
            lambda changed, p: self.q.put_nowait(("attributes", p.identity, changed)),
        )
        room.on(
            "participant_metadata_changed",
            lambda p, old, new: self.q.put_nowait(("metadata", p.identity, old, new)),
        )
        room.on(
            "participant_name_changed",
            lambda p, old, new: self.q.put_nowait(("name", p.identity, old, new)),
        )

    async def next(self) -> tuple[Any, ...]:
        return await asyncio.wait_for(self.q.get(), 5)


async def test_attributes_metadata_and_name_reach_everyone(
    system: System, room_name: str
) -> None:
    async with Room() as alice, Room() as bob:
        await alice.connect(
            system.urls[0],
            token(
                room_name,
                "alice",
                name="Alice",
                attributes={"role": "host", "lang": "en"},
                can_update_own_metadata=True,
            ),
        )
        await bob.connect(system.urls[1], token(room_name, "bob"))
        at_bob, at_alice = Changes(bob), Changes(alice)
        lp = alice.local_participant
        await lp.set_attributes({"lang": "fr", "mood": "ok"})
        # merged into the token's attributes; only the changed keys are reported
        assert await at_bob.next() == ("attributes", "alice", {"lang": "fr", "mood": "ok"})
        seen = bob.remote_participants["alice"]
        assert seen.attributes == {"role": "host", "lang": "fr", "mood": "ok"}
        assert lp.attributes == seen.attributes  # set_attributes returned after the update
        assert await at_alice.next() == ("attributes", "alice", {"lang": "fr", "mood": "ok"})
        await lp.set_attributes({"mood": ""})  # an empty value deletes the key
        assert await at_bob.next() == ("attributes", "alice", {"mood": ""})
        assert seen.attributes == {"role": "host", "lang": "fr"}
        await lp.set_metadata('{"x": 1}')
        assert await at_bob.next() == ("metadata", "alice", "", '{"x": 1}')
        await lp.set_name("Alice B.")
        assert await at_bob.next() == ("name", "alice", "Alice", "Alice B.")
        assert (seen.name, seen.metadata) == ("Alice B.", '{"x": 1}')
        await lp.set_attributes({"lang": "fr"})  # no change: nobody is told
        await lp.set_name("Alice C.")
        assert await at_bob.next() == ("name", "alice", "Alice B.", "Alice C.")
        # a late joiner sees the current values, not the token's
        async with Room() as carol:
            await carol.connect(system.urls[0], token(room_name, "carol"))
            late = carol.remote_participants["alice"]
            assert (late.name, late.metadata, late.attributes) == (
                "Alice C.",
                '{"x": 1}',
                {"role": "host", "lang": "fr"},
            )


async def test_without_the_grant_updates_are_refused(system: System, room_name: str) -> None:
    async with Room() as alice:
        await alice.connect(system.urls[0], token(room_name, "alice"))
        with pytest.raises(PermissionDenied, match="canUpdateOwnMetadata"):
            await alice.local_participant.set_attributes({"a": "b"})
        with pytest.raises(PermissionDenied):
            await alice.local_participant.set_name("x")
        # the gateway refuses it too, whatever the client claims
        alice.local_participant.permissions.can_update_metadata = True
        with pytest.raises(ServerError) as exc_info:
            await asyncio.wait_for(alice.local_participant.set_metadata("m"), 5)
        assert exc_info.value.code == "permission_denied"


async def test_livekits_size_limits(system: System, room_name: str) -> None:
    async with Room() as alice:
        await alice.connect(
            system.urls[0], token(room_name, "alice", can_update_own_metadata=True)
        )
        lp = alice.local_participant
        for call in (
            lp.set_name("n" * 257),
            lp.set_metadata("m" * 64_001),
            lp.set_attributes({"k": "v" * 64_000}),
        ):
            with pytest.raises(ServerError) as exc_info:
                await asyncio.wait_for(call, 5)
            assert exc_info.value.code == "metadata_too_large"
        # over the limit only once merged: refused by the router, nothing applied
        await lp.set_attributes({"a": "x" * 40_000})
        with pytest.raises(ServerError, match="exceed"):
            await asyncio.wait_for(lp.set_attributes({"b": "y" * 40_000}), 5)
        assert set(lp.attributes) == {"a"}
        await lp.set_name("n" * 256)
        assert lp.name == "n" * 256


async def test_updates_are_ordered_with_streams(system: System, room_name: str) -> None:
    """A change made between two streams is seen between them (room-log order)."""
    order: asyncio.Queue[str] = asyncio.Queue()

    async def on_chat(reader: roomstreams.TextStreamReader, identity: str) -> None:
        order.put_nowait(f"stream {reader.info.attributes['n']}")

    async with Room() as alice, Room() as bob:
        bob.register_text_stream_handler("chat", on_chat)
        bob.on(
            "participant_attributes_changed",
            lambda changed, p: order.put_nowait(f"attr {changed['step']}"),
        )
        await bob.connect(system.urls[1], token(room_name, "bob"))
        await alice.connect(
            system.urls[0], token(room_name, "alice", can_update_own_metadata=True)
        )
        lp = alice.local_participant
        expected = []
        for n in range(3):
            writer = await lp.stream_text(topic="chat", attributes={"n": str(n)})
            await lp.set_attributes({"step": str(n)})
            await writer.aclose()
            expected += [f"stream {n}", f"attr {n}"]
        got = [await asyncio.wait_for(order.get(), 5) for _ in expected]
        assert got == expected


async def test_a_reconnect_keeps_what_a_participant_set(system: System, room_name: str) -> None:
    async with Room() as alice, Room() as bob:
        await alice.connect(
            system.urls[0], token(room_name, "alice", can_update_own_metadata=True)
        )
        await bob.connect(system.urls[1], token(room_name, "bob"))
        await alice.local_participant.set_attributes({"status": "busy"})
        back = asyncio.Event()
        alice.on("reconnected", back.set)
        assert alice._conn.ws is not None
        alice._conn.ws.transport.abort()
        await asyncio.wait_for(back.wait(), 10)
        # she resumed her session: the router kept what she set, nobody is told it again
        assert alice.local_participant.attributes == {"status": "busy"}
        assert bob.remote_participants["alice"].attributes == {"status": "busy"}
