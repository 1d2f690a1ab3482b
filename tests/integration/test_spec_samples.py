"""The Python samples of LiveKit's text streams page run unchanged on roomstreams: sending all
at once, streaming incrementally, and a handler that keeps its tasks (registered here after
connecting, without awaiting, as LiveKit code does). Each sample's body is the page's, as
one function; only the room objects and a way to see the output are added around it."""

from __future__ import annotations

import asyncio
import contextlib
import io

import roomstreams
from roomstreams import Room

from .conftest import System
from .test_livekit_room import token


async def test_the_pages_python_samples(system: System, room_name: str) -> None:
    out = io.StringIO()
    done = asyncio.Event()

    async with Room() as room_a, Room() as room_b:
        await room_a.connect(system.urls[0], token(room_name, "alice"))
        await room_b.connect(system.urls[1], token(room_name, "bob"))

        # -- "Handling incoming streams" (the page's sample, at bob) -----------------------
        room = room_b
        _active_tasks = set()

        async def async_handle_text_stream(reader, participant_identity):  # type: ignore[no-untyped-def]
            info = reader.info
            print(
                f"Text stream received from {participant_identity}\n"
                f" Topic: {info.topic}\n"
                f" Timestamp: {info.timestamp}\n"
                f" ID: {info.id}\n"
                f" Size: {info.size}"  # Optional, only available if sent with `send_text`
            )
            # Option 1: Process the stream incrementally using an async for loop.
            async for chunk in reader:
                print(f"Next chunk: {chunk}")
            # Option 2: Get the entire text after the stream completes.
            text = await reader.read_all()
            print(f"Received text: {text}")
            if out.getvalue().count("Received text") == 2:
                done.set()

        def handle_text_stream(reader, participant_identity):  # type: ignore[no-untyped-def]
            task = asyncio.create_task(async_handle_text_stream(reader, participant_identity))
            _active_tasks.add(task)
            task.add_done_callback(lambda t: _active_tasks.remove(t))

        room.register_text_stream_handler("my-topic", handle_text_stream)

        # -- "Sending all at once" and "Streaming incrementally" (at alice) -------------------
        room = room_a
        with contextlib.redirect_stdout(out):
            text = "Lorem ipsum dolor sit amet..."
            info = await room.local_participant.send_text(text, topic="my-topic")
            print(f"Sent text with stream ID: {info.stream_id}")

            writer = await room.local_participant.stream_text(
                topic="my-topic",
            )
            print(f"Opened text stream with ID: {writer.stream_id}")
            # In a real application, you might receive chunks of text from an LLM or other source
            text_chunks = ["Lorem ", "ipsum ", "dolor ", "sit ", "amet..."]
            for chunk in text_chunks:
                await writer.write(chunk)
            await writer.close()
            print(f"Closed text stream with ID: {writer.stream_id}")

            await asyncio.wait_for(done.wait(), 5)
        assert not _active_tasks  # each task removed itself when done

    printed = out.getvalue()
    assert f"Sent text with stream ID: {info.stream_id}" in printed
    assert f"Closed text stream with ID: {writer.stream_id}" in printed
    assert printed.count("Text stream received from alice") == 2
    assert f"Size: {len(text)}" in printed and "Size: None" in printed
    assert printed.count("Received text: ") == 2  # after async for, read_all has nothing left
    assert "Next chunk: Lorem ipsum dolor sit amet..." in printed
    for chunk in text_chunks:
        assert f"Next chunk: {chunk}" in printed
    assert isinstance(info, roomstreams.TextStreamInfo)
