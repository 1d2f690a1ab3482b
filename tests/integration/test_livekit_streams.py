"""Stream and packet details LiveKit code relies on, through the real system: the default
topic "", ``send_text(reply_to_id=, attachments=)`` and LiveKit's info field names,
``sender_identity`` for agents only, readers' ``close()``/``aclose()``, no empty chunk
yielded, a second ``aclose()`` raising, ``publish_data`` payloads and ``DataPacket.kind``,
``RoomOptions``."""

from __future__ import annotations

import asyncio
import time
from pathlib import Path

import pytest

import roomstreams
from roomstreams import DataPacket, DataStreamOptions, Room, RoomOptions, StreamAborted
from roomstreams._redis_server import free_port
from roomstreams.client.data import DataPacketKind

from .conftest import System
from .helpers import RawClient
from .test_livekit_room import token


async def test_default_topic_is_the_empty_one(system: System, room_name: str) -> None:
    texts: asyncio.Queue[str] = asyncio.Queue()
    blobs: asyncio.Queue[bytes] = asyncio.Queue()

    async def on_text(reader: roomstreams.TextStreamReader, identity: str) -> None:
        assert reader.info.topic == ""
        texts.put_nowait(await reader.read_all())

    async def on_bytes(reader: roomstreams.ByteStreamReader, identity: str) -> None:
        blobs.put_nowait(await reader.read_all())

    async with Room() as alice, Room() as bob:
        bob.register_text_stream_handler("", on_text)
        bob.register_byte_stream_handler("", on_bytes)
        await bob.connect(system.urls[1], token(room_name, "bob"))
        await alice.connect(system.urls[0], token(room_name, "alice"))
        lp = alice.local_participant
        info = await lp.send_text("no topic")
        assert info.topic == ""
        assert await asyncio.wait_for(texts.get(), 5) == "no topic"
        await lp.send_bytes(b"\x00\x01", name="b.bin")
        assert await asyncio.wait_for(blobs.get(), 5) == b"\x00\x01"
        async with await lp.stream_text() as w:
            await w.write("streamed")
        assert await asyncio.wait_for(texts.get(), 5) == "streamed"


async def test_reply_to_attachments_and_livekits_info_names(
    system: System, room_name: str, tmp_path: Path
) -> None:
    infos: asyncio.Queue[roomstreams.TextStreamInfo] = asyncio.Queue()
    files: asyncio.Queue[tuple[roomstreams.ByteStreamInfo, bytes]] = asyncio.Queue()

    async def on_text(reader: roomstreams.TextStreamReader, identity: str) -> None:
        await reader.read_all()
        infos.put_nowait(reader.info)

    async def on_file(reader: roomstreams.ByteStreamReader, identity: str) -> None:
        files.put_nowait((reader.info, await reader.read_all()))

    doc = tmp_path / "notes.txt"
    doc.write_text("attached")
    async with Room() as alice, Room() as bob:
        bob.register_text_stream_handler("chat", on_text)
        bob.register_byte_stream_handler("chat", on_file)
        await bob.connect(system.urls[1], token(room_name, "bob"))
        await alice.connect(system.urls[0], token(room_name, "alice"))
        first = await alice.local_participant.send_text("question", topic="chat")
        sent = await alice.local_participant.send_text(
            "answer", topic="chat", reply_to_id=first.stream_id, attachments=[doc]
        )
        got = [await asyncio.wait_for(infos.get(), 5) for _ in range(2)][1]
        assert got.reply_to_id == first.stream_id
        assert got.attachments == sent.attachments and len(got.attachments) == 1
        # LiveKit's BaseStreamInfo/TextStreamInfo field names
        for name in ("stream_id", "mime_type", "topic", "timestamp", "size", "attributes"):
            assert getattr(got, name) == getattr(sent, name), name
        assert (got.mime_type, got.size) == ("text/plain", len("answer"))
        binfo, data = await asyncio.wait_for(files.get(), 5)
        assert (binfo.stream_id, binfo.name, data) == (got.attachments[0], "notes.txt", b"attached")
        assert binfo.mime_type == "text/plain"


async def test_sender_identity_is_for_agents(system: System, room_name: str) -> None:
    got: asyncio.Queue[tuple[str, bool, str]] = asyncio.Queue()

    async def on_text(reader: roomstreams.TextStreamReader, identity: str) -> None:
        got.put_nowait((identity, reader.info.generated, await reader.read_all()))

    async with Room() as agent, Room() as user, Room() as bob:
        bob.register_text_stream_handler("lk.transcription", on_text)
        await bob.connect(system.urls[1], token(room_name, "bob"))
        await user.connect(system.urls[0], token(room_name, "user"))
        await agent.connect(system.urls[0], token(room_name, "agent", kind="agent"))
        await agent.local_participant.send_text(
            "what the user said", topic="lk.transcription", sender_identity="user"
        )
        assert await asyncio.wait_for(got.get(), 5) == ("user", True, "what the user said")
        # not an agent: refused with a clear error, delivered to nobody
        with pytest.raises(StreamAborted) as exc_info:
            await user.local_participant.send_text(
                "spoofed", topic="lk.transcription", sender_identity="bob"
            )
        assert exc_info.value.code == "permission_denied"
        assert "agent" in str(exc_info.value)
        await agent.local_participant.send_text("mine", topic="lk.transcription")
        assert await asyncio.wait_for(got.get(), 5) == ("agent", False, "mine")


async def test_reader_close_and_aclose(system: System, room_name: str) -> None:
    results: asyncio.Queue[list[str]] = asyncio.Queue()

    async def read_one_then_close(reader: roomstreams.TextStreamReader, identity: str) -> None:
        seen = [await anext(reader)]
        if reader.info.attributes["how"] == "aclose":
            await reader.aclose()
        else:
            reader.close()  # not awaited: fine too
        seen += [chunk async for chunk in reader]  # nothing more: the iteration ends
        assert reader.closed
        results.put_nowait(seen)

    async with Room() as alice, Room() as bob:
        bob.register_text_stream_handler("chat", read_one_then_close)
        await bob.connect(system.urls[1], token(room_name, "bob"))
        await alice.connect(system.urls[0], token(room_name, "alice"))
        for how in ("aclose", "close"):
            w = await alice.local_participant.stream_text(topic="chat", attributes={"how": how})
            await w.write("first")
            assert await asyncio.wait_for(results.get(), 5) == ["first"]
            await w.write("ignored")
            await w.aclose()  # the sender is not affected
            with pytest.raises(RuntimeError):  # a second aclose raises, as in LiveKit
                await w.aclose()


async def test_empty_chunks_are_not_yielded(system: System, room_name: str) -> None:
    got: asyncio.Queue[list[str]] = asyncio.Queue()

    async def on_text(reader: roomstreams.TextStreamReader, identity: str) -> None:
        got.put_nowait([chunk async for chunk in reader])

    async with Room() as bob:
        bob.register_text_stream_handler("chat", on_text)
        await bob.connect(system.urls[1], token(room_name, "bob"))
        raw = await RawClient.connect(system.urls[0], token(room_name, "raw"))
        try:
            sid = "empty-chunks"
            await raw.send({"type": "header", "stream_id": sid, "topic": "chat", "timestamp": 0})
            for i, content in enumerate(["", "a", "", "b"]):
                await raw.send(
                    {"type": "chunk", "stream_id": sid, "chunk_index": i, "content": content}
                )
            await raw.send({"type": "trailer", "stream_id": sid})
            assert await asyncio.wait_for(got.get(), 5) == ["a", "b"]
        finally:
            await raw.close()


async def test_publish_data_payloads_and_kind(system: System, room_name: str) -> None:
    packets: asyncio.Queue[DataPacket] = asyncio.Queue()
    async with Room() as alice, Room() as bob:
        bob.on("data_received", packets.put_nowait)
        await bob.connect(system.urls[1], token(room_name, "bob"))
        await alice.connect(system.urls[0], token(room_name, "alice"))
        lp = alice.local_participant
        await lp.publish_data("text payload", topic="t")
        await lp.publish_data(b"\x00" * (15 * 1024), reliable=False)  # LiveKit's 15 KiB
        p1 = await asyncio.wait_for(packets.get(), 5)
        p2 = await asyncio.wait_for(packets.get(), 5)
        assert (p1.data, p1.topic, p1.kind) == (b"text payload", "t", DataPacketKind.KIND_RELIABLE)
        assert p1.participant is not None and p1.participant.identity == "alice"
        assert (len(p2.data), p2.kind) == (15 * 1024, DataPacketKind.KIND_LOSSY)
        with pytest.raises(ValueError):
            await lp.publish_data(b"x" * (15 * 1024 + 1))


async def test_room_options(system: System, room_name: str) -> None:
    async with Room() as r:
        # media-only options are accepted and ignored
        await r.connect(
            system.urls[0],
            token(room_name, "alice"),
            RoomOptions(auto_subscribe=False, dynacast=True, connect_timeout=5),
        )
        assert r.isconnected()
    # connect_timeout bounds connect(): a port that accepts TCP but never answers
    port = free_port()
    accepted: list[asyncio.StreamWriter] = []

    async def never_answer(_r: asyncio.StreamReader, w: asyncio.StreamWriter) -> None:
        accepted.append(w)

    server = await asyncio.start_server(never_answer, "127.0.0.1", port)
    try:
        start = time.monotonic()
        with pytest.raises(roomstreams.ConnectError):
            await Room().connect(
                f"ws://127.0.0.1:{port}", token(room_name, "x"), RoomOptions(connect_timeout=0.5)
            )
        assert time.monotonic() - start < 3
    finally:
        for w in accepted:
            w.close()
        server.close()
        await server.wait_closed()


async def test_receiver_payload_cap(system: System, room_name: str) -> None:
    """LiveKit's DataStreamOptions(max_payload_byte_length=...): a larger stream ends with
    a StreamError at that receiver instead of being delivered; smaller ones pass."""
    results: asyncio.Queue[str | BaseException] = asyncio.Queue()

    async def on_text(reader: roomstreams.TextStreamReader, identity: str) -> None:
        try:
            results.put_nowait(await reader.read_all())
        except roomstreams.StreamError as exc:
            results.put_nowait(exc)

    async with Room() as alice, Room() as bob:
        bob.register_text_stream_handler("capped", on_text)
        await bob.connect(
            system.urls[1],
            token(room_name, "bob"),
            RoomOptions(data_stream=DataStreamOptions(max_payload_byte_length=1_000)),
        )
        await alice.connect(system.urls[0], token(room_name, "alice"))
        await alice.local_participant.send_text("é" * 500, topic="capped")  # 1000 bytes
        assert await asyncio.wait_for(results.get(), 5) == "é" * 500
        await alice.local_participant.send_text("x" * 50_000, topic="capped", compress=False)
        err = await asyncio.wait_for(results.get(), 5)
        assert isinstance(err, StreamAborted) and "maximum size" in str(err)
        assert err.code == "payload_too_large"


async def test_disconnect_ends_unread_readers_after_what_arrived(
    system: System, room_name: str
) -> None:
    readers: asyncio.Queue[roomstreams.TextStreamReader] = asyncio.Queue()
    async with Room() as alice:
        bob = Room()
        bob.register_text_stream_handler("chat", lambda r, _i: readers.put_nowait(r))
        barrier = asyncio.Event()
        bob.on("data_received", lambda _p: barrier.set())
        await bob.connect(system.urls[1], token(room_name, "bob"))
        await alice.connect(system.urls[0], token(room_name, "alice"))
        writer = await alice.local_participant.stream_text(topic="chat")
        await writer.write("buffered ")
        await writer.write("data")
        # a packet after the chunks: once bob has it, he has them (room-log order)
        await alice.local_participant.publish_data(b"after")
        await asyncio.wait_for(barrier.wait(), 5)
        reader = await asyncio.wait_for(readers.get(), 5)
        await bob.disconnect()
        chunks: list[str] = []
        with pytest.raises(roomstreams.StreamError):
            async for chunk in reader:
                chunks.append(chunk)
        await writer.aclose()
    assert "".join(chunks) == "buffered data"  # what arrived is read, then the error
