"""Code shaped like LiveKit's own examples and tests (``from livekit import rtc``), with only
the import, URL and token changed, against the real system: the data-streams example's
greeting flow (handlers set before connecting as lambdas that start tasks, a greeting per
participant with ``destination_identities``, a file, ``reader.info["name"]``), the RPC
example's flow (the ``rpc_method`` decorator, ``off`` from inside a callback), and the room
life cycle test's event bookkeeping."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path

from roomstreams import rtc

from .conftest import System
from .test_livekit_room import token


def test_a_room_is_made_outside_a_running_loop() -> None:
    room = rtc.Room()  # LiveKit's examples build it before the loop runs
    assert room.connection_state == rtc.ConnectionState.CONN_DISCONNECTED
    assert not room.isconnected()


async def test_data_streams_example_flow(system: System, room_name: str, tmp_path: Path) -> None:
    picture = tmp_path / "tree.jpg"
    picture.write_bytes(b"\xff\xd8" + bytes(range(256)) * 100)
    chats: asyncio.Queue[tuple[str, str]] = asyncio.Queue()
    images: asyncio.Queue[tuple[str, str, bytes]] = asyncio.Queue()

    def make_room(identity: str) -> rtc.Room:
        room = rtc.Room(loop=asyncio.get_running_loop())

        async def greet(other: str) -> None:
            writer = await room.local_participant.stream_text(
                destination_identities=[other], topic="chat"
            )
            for char in f"Hi {other}!":
                await writer.write(char)
            await writer.aclose()
            await room.local_participant.send_file(
                str(picture), destination_identities=[other], topic="files"
            )

        async def on_chat(reader: rtc.TextStreamReader, participant_identity: str) -> None:
            chats.put_nowait((f"{participant_identity}->{identity}", await reader.read_all()))

        async def on_image(reader: rtc.ByteStreamReader, participant_identity: str) -> None:
            data = b"".join([chunk async for chunk in reader])
            images.put_nowait((participant_identity, str(reader.info["name"]), data))

        @room.on("participant_connected")
        def on_participant_connected(participant: rtc.RemoteParticipant) -> None:
            asyncio.create_task(greet(participant.identity))  # noqa: RUF006 - as the example

        room.set_text_stream_handler(
            "chat", lambda reader, who: asyncio.create_task(on_chat(reader, who))
        )
        room.set_byte_stream_handler(
            "files", lambda reader, who: asyncio.create_task(on_image(reader, who))
        )
        return room

    first, second = make_room("first"), make_room("second")
    try:
        await first.connect(system.urls[0], token(room_name, "first"))
        await second.connect(system.urls[1], token(room_name, "second"))
        for identity, participant in second.remote_participants.items():  # as the example
            assert identity == participant.identity == "first"
            writer = await second.local_participant.stream_text(
                destination_identities=[identity], topic="chat"
            )
            await writer.write("Hi first!")
            await writer.aclose()
        got = {await asyncio.wait_for(chats.get(), 5) for _ in range(2)}
        assert got == {("first->second", "Hi second!"), ("second->first", "Hi first!")}
        who, name, data = await asyncio.wait_for(images.get(), 5)
        assert (who, name, data) == ("first", "tree.jpg", picture.read_bytes())
    finally:
        await asyncio.gather(first.disconnect(), second.disconnect())


async def test_rpc_example_flow(system: System, room_name: str) -> None:
    async def connect_participant(identity: str) -> rtc.Room:
        room = rtc.Room()
        await room.connect(system.urls[len(identity) % 2], token(room_name, identity))

        async def wait_for_participants() -> None:
            if room.remote_participants:
                return
            connected = asyncio.Event()

            def _on_participant_connected(participant: rtc.RemoteParticipant) -> None:
                room.off("participant_connected", _on_participant_connected)
                connected.set()

            room.on("participant_connected", _on_participant_connected)
            await connected.wait()

        await asyncio.wait_for(wait_for_participants(), 5)
        return room

    made = await asyncio.gather(
        connect_participant("caller"), connect_participant("greeter"), connect_participant("math")
    )
    caller, greeter, math = made
    started = asyncio.Event()
    try:

        @greeter.local_participant.rpc_method("arrival")
        async def arrival(data: rtc.RpcInvocationData) -> str:
            return f"Welcome {data.caller_identity}, you said {data.payload!r}"

        @math.local_participant.rpc_method("square-root")
        async def square_root(data: rtc.RpcInvocationData) -> str:
            return json.dumps({"result": json.loads(data.payload)["number"] ** 0.5})

        @math.local_participant.rpc_method("long-calculation")
        async def long_calculation(data: rtc.RpcInvocationData) -> str:
            started.set()
            await asyncio.sleep(30)
            return "{}"

        lp = caller.local_participant
        assert (
            await lp.perform_rpc(destination_identity="greeter", method="arrival", payload="Hello")
            == "Welcome caller, you said 'Hello'"
        )
        reply = await lp.perform_rpc(
            destination_identity="math", method="square-root", payload=json.dumps({"number": 16})
        )
        assert json.loads(reply) == {"result": 4.0}
        try:
            await lp.perform_rpc(destination_identity="math", method="quantum-series", payload="{}")
        except rtc.RpcError as error:
            assert error.code == rtc.RpcError.ErrorCode.UNSUPPORTED_METHOD
        else:
            raise AssertionError("expected UNSUPPORTED_METHOD")
        long_calc = asyncio.create_task(
            lp.perform_rpc(
                destination_identity="math",
                method="long-calculation",
                payload="{}",
                response_timeout=10,
            )
        )
        await asyncio.wait_for(started.wait(), 5)
        await math.disconnect()
        try:
            await asyncio.wait_for(long_calc, 5)
        except rtc.RpcError as error:
            assert error.code == rtc.RpcError.ErrorCode.RECIPIENT_DISCONNECTED
        else:
            raise AssertionError("expected RECIPIENT_DISCONNECTED")
    finally:
        await asyncio.gather(*(r.disconnect() for r in made), return_exceptions=True)


async def test_lifecycle_bookkeeping_as_livekits_test(system: System, room_name: str) -> None:
    room1, room2 = rtc.Room(), rtc.Room()
    events: dict[str, list[str]] = {
        "disconnected": [],
        "participant_connected": [],
        "participant_disconnected": [],
        "connection_state_changed": [],
    }

    @room1.on("disconnected")
    def on_disconnected(reason: str) -> None:
        events["disconnected"].append("room1")

    joined = asyncio.Event()

    @room1.on("participant_connected")
    def on_connected(participant: rtc.RemoteParticipant) -> None:
        events["participant_connected"].append(f"room1-{participant.identity}")
        joined.set()

    @room1.on("participant_disconnected")
    def on_left(participant: rtc.RemoteParticipant) -> None:
        events["participant_disconnected"].append(f"room1-{participant.identity}")

    @room1.on("connection_state_changed")
    def on_state(state: rtc.ConnectionState) -> None:
        events["connection_state_changed"].append(f"room1-{state}")

    await room1.connect(system.urls[0], token(room_name, "participant-1"))
    assert events["connection_state_changed"][-1] == f"room1-{rtc.ConnectionState.CONN_CONNECTED}"
    await room2.connect(system.urls[1], token(room_name, "participant-2"))
    assert room2.remote_participants.get("participant-1") is not None
    left = asyncio.Event()
    room1.on("participant_disconnected", lambda _p: left.set())
    await asyncio.wait_for(joined.wait(), 5)
    assert events["participant_connected"] == ["room1-participant-2"]
    await room2.disconnect()
    await asyncio.wait_for(left.wait(), 5)
    assert "room1-participant-2" in events["participant_disconnected"]
    await room1.disconnect()
    assert events["connection_state_changed"][-1] == (
        f"room1-{rtc.ConnectionState.CONN_DISCONNECTED}"
    )
    assert events["disconnected"] == ["room1"]
    assert not room1.isconnected() and not room2.isconnected()
