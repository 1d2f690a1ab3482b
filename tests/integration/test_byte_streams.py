"""Byte streams end to end through real gateways, router and Redis; text stream extras
(attachments, reply_to_id, operation_type, version, generated); bad byte-stream input."""

from __future__ import annotations

import asyncio
import hashlib
import os
import time
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

import psutil
import pytest

import roomstreams
from roomstreams.protocol.binary import encode_byte_chunk
from roomstreams.protocol.limits import MAX_CHUNK_BYTES

from .binary_helpers import BinRawClient, ByteCollector
from .conftest import System
from .helpers import Collector, raw_connect_fixture

# ---- fixtures ------------------------------------------------------------------------------


raw_connect = raw_connect_fixture(BinRawClient)


async def byte_room(connect: Any, identity: str, gateway: int = 0, **handlers: Any) -> Any:
    room: roomstreams.Room = await connect(identity, gateway=gateway)
    for topic, h in handlers.items():
        await room.register_byte_stream_handler(topic, h)
    return room


def header(sid: str, topic: str = "files", **extra: Any) -> dict[str, Any]:
    return {
        "type": "header",
        "stream_id": sid,
        "topic": topic,
        "timestamp": int(time.time() * 1000),
        **extra,
    }


def new_id() -> str:
    return f"b-{uuid.uuid4().hex[:12]}"


# ---- sending and receiving -----------------------------------------------------------------


async def test_send_file_reaches_byte_handler_on_other_gateway(
    connect: Any, tmp_path: Path
) -> None:
    col = ByteCollector()
    await byte_room(connect, "bob", 1, files=col)
    alice = await connect("alice", gateway=0)
    content = os.urandom(100_000)
    path = tmp_path / "report.pdf"
    path.write_bytes(content)
    before = int(time.time() * 1000)
    info = await alice.local_participant.send_file(
        path, topic="files", attributes={"kind": "report"}
    )
    assert isinstance(info, roomstreams.ByteStreamInfo)
    assert (info.name, info.mime_type, info.size) == ("report.pdf", "application/pdf", 100_000)
    assert info.id == info.stream_id and info.topic == "files"
    assert info.attributes == {"kind": "report"}
    rec = await col.wait_done(info.stream_id)
    assert rec.error is None
    assert rec.identity == "alice"
    assert rec.data == content
    assert all(0 < len(c) <= MAX_CHUNK_BYTES for c in rec.chunks)
    got = rec.info
    assert (got.stream_id, got.id, got.topic, got.name) == (
        info.stream_id,
        info.stream_id,
        "files",
        "report.pdf",
    )
    assert (got.size, got.mime_type, got.attributes) == (
        100_000,
        "application/pdf",
        info.attributes,
    )
    assert before <= got.timestamp == info.timestamp <= int(time.time() * 1000)
    assert rec.reader.progress == 1.0
    assert rec.reader.bytes_received == 100_000


async def test_send_file_mime_type_given_or_unknown(connect: Any, tmp_path: Path) -> None:
    col = ByteCollector()
    await byte_room(connect, "bob", 0, files=col)
    alice = await connect("alice", gateway=1)
    odd = tmp_path / "data.weird-extension"
    odd.write_bytes(b"\x00\x01")
    a = await alice.local_participant.send_file(odd, topic="files")
    b = await alice.local_participant.send_file(odd, topic="files", mime_type="x-custom/thing")
    assert (await col.wait_done(a.stream_id)).info.mime_type == "application/octet-stream"
    assert (await col.wait_done(b.stream_id)).info.mime_type == "x-custom/thing"
    empty = tmp_path / "empty.txt"
    empty.write_bytes(b"")
    e = await alice.local_participant.send_file(empty, topic="files")
    rec = await col.wait_done(e.stream_id)
    assert (rec.data, rec.info.size, rec.info.mime_type) == (b"", 0, "text/plain")
    assert rec.reader.progress == 1.0


async def test_send_bytes_and_read_all(connect: Any) -> None:
    got: asyncio.Queue[tuple[str, bytes, roomstreams.ByteStreamInfo]] = asyncio.Queue()

    async def handler(reader: roomstreams.ByteStreamReader, identity: str) -> None:
        await got.put((identity, await reader.read_all(), reader.info))

    await byte_room(connect, "bob", 1, blobs=handler)
    alice = await connect("alice")
    payload = bytes(range(256)) * 200  # 51200 bytes, every byte value, 4 chunks
    info = await alice.local_participant.send_bytes(
        payload, name="blob.bin", topic="blobs", mime_type="application/x-blob"
    )
    identity, data, rinfo = await asyncio.wait_for(got.get(), 5)
    assert (identity, data) == ("alice", payload)
    assert (rinfo.name, rinfo.size, rinfo.mime_type) == ("blob.bin", 51200, "application/x-blob")
    assert rinfo.stream_id == info.stream_id


async def test_stream_bytes_writer_lifecycle(connect: Any) -> None:
    col = ByteCollector()
    await byte_room(connect, "bob", 1, raw=col)
    alice = await connect("alice")
    writer = await alice.local_participant.stream_bytes(name="live.bin", topic="raw")
    assert isinstance(writer, roomstreams.ByteStreamWriter)
    assert writer.state is roomstreams.StreamState.OPEN
    assert writer.info.mime_type == "application/octet-stream" and writer.info.size is None
    parts: list[bytes | bytearray | memoryview] = [b"one", bytearray(b"two"), memoryview(b"3")]
    for p in parts:
        await writer.write(p)
    rec = (await col.wait_count(1))[0]
    assert rec.reader.progress is None  # size unknown while open
    await writer.close()
    assert writer.state is roomstreams.StreamState.CLOSED
    rec = await col.wait_done(writer.stream_id)
    assert rec.chunks == [b"one", b"two", b"3"]
    assert rec.reader.progress == 1.0
    with pytest.raises(roomstreams.StreamClosed):
        await writer.write(b"more")
    with pytest.raises(roomstreams.StreamClosed):  # closing twice raises, as in LiveKit
        await writer.close()


async def test_progress_counts_received_bytes(connect: Any) -> None:
    readers: asyncio.Queue[roomstreams.ByteStreamReader] = asyncio.Queue()
    await byte_room(connect, "bob", 0, raw=lambda r, _i: readers.put_nowait(r))
    alice = await connect("alice", gateway=1)
    writer = await alice.local_participant.stream_bytes(
        name="p.bin", topic="raw", total_size=40_000
    )
    await writer.write(b"x" * 10_000)
    reader = await asyncio.wait_for(readers.get(), 5)
    first = await asyncio.wait_for(anext(reader), 5)  # all that was sent so far
    assert (len(first), reader.bytes_received, reader.progress) == (10_000, 10_000, 0.25)
    await writer.write(b"y" * 30_000)
    await writer.close()
    rest = await reader.read_all()
    assert len(first + rest) == 40_000 and reader.progress == 1.0


async def test_total_size_mismatch_ends_byte_stream_abnormally(connect: Any) -> None:
    col = ByteCollector()
    await byte_room(connect, "bob", 0, raw=col)
    alice = await connect("alice", gateway=1)
    writer = await alice.local_participant.stream_bytes(name="s.bin", topic="raw", total_size=10)
    await writer.write(b"12345")
    with pytest.raises(roomstreams.StreamSizeMismatch):
        await writer.close()
    rec = await col.wait_done(writer.stream_id)
    assert isinstance(rec.error, roomstreams.StreamAborted)
    assert rec.error.code == "size_mismatch"
    assert rec.reader.progress == 0.5  # not complete


async def test_byte_writer_context_manager_aborts_when_body_raises(connect: Any) -> None:
    col = ByteCollector()
    await byte_room(connect, "bob", 0, raw=col)
    alice = await connect("alice", gateway=1)
    with pytest.raises(RuntimeError):
        async with await alice.local_participant.stream_bytes(name="c.bin", topic="raw") as w:
            await w.write(b"start")
            raise RuntimeError("upload crashed")
    rec = await col.wait_done(w.stream_id)
    assert isinstance(rec.error, roomstreams.StreamAborted)
    assert "upload crashed" in rec.error.reason
    assert rec.data == b"start"


async def test_text_and_byte_handlers_on_one_topic_coexist(connect: Any) -> None:
    texts, files = Collector(), ByteCollector()
    bob = await connect("bob", gateway=1, handlers={"chat": texts})
    await bob.register_byte_stream_handler("chat", files)
    alice = await connect("alice")
    t = await alice.local_participant.send_text("hello", topic="chat")
    b = await alice.local_participant.send_bytes(b"\x00hello", name="h.bin", topic="chat")
    assert (await texts.wait_done(t.stream_id)).text == "hello"
    assert (await files.wait_done(b.stream_id)).data == b"\x00hello"
    assert list(texts.by_id) == [t.stream_id]
    assert list(files.by_id) == [b.stream_id]
    with pytest.raises(ValueError, match="chat"):
        bob.register_byte_stream_handler("chat", ByteCollector())
    await bob.unregister_byte_stream_handler("chat")
    gone = await alice.local_participant.send_bytes(b"x", name="x.bin", topic="chat")
    barrier = await alice.local_participant.send_text("barrier", topic="chat")
    await texts.wait_done(barrier.stream_id)
    assert gone.stream_id not in files.by_id
    await bob.register_byte_stream_handler("chat", ByteCollector())


async def test_byte_handler_registered_before_connect(system: System, room_name: str) -> None:
    col = ByteCollector()
    bob = roomstreams.Room()
    bob.register_byte_stream_handler("files", col)
    alice = roomstreams.Room()
    try:
        await bob.connect(system.urls[0], system.token(room_name, "bob"))
        await alice.connect(system.urls[1], system.token(room_name, "alice"))
        info = await alice.local_participant.send_bytes(b"early", name="e.bin", topic="files")
        assert (await col.wait_done(info.stream_id)).data == b"early"
    finally:
        await alice.disconnect()
        await bob.disconnect()


async def test_byte_destinations_and_sender_exclusion(connect: Any) -> None:
    a_col, b_col, c_col = ByteCollector(), ByteCollector(), ByteCollector()
    alice = await byte_room(connect, "alice", 0, files=a_col)
    await byte_room(connect, "bob", 1, files=b_col)
    await byte_room(connect, "carol", 0, files=c_col)
    private = await alice.local_participant.send_bytes(
        b"bob only", name="p.bin", topic="files", destination_identities=["bob"]
    )
    public = await alice.local_participant.send_bytes(b"all", name="a.bin", topic="files")
    assert (await b_col.wait_done(private.stream_id)).data == b"bob only"
    await b_col.wait_done(public.stream_id)
    await c_col.wait_done(public.stream_id)
    assert private.stream_id not in c_col.by_id
    assert a_col.streams == []


async def test_byte_chunks_are_binary_frames_forwarded_as_sent(
    connect: Any, raw_connect: Any
) -> None:
    """No text encoding on the path: the receiver's socket gets binary WebSocket messages
    that are byte for byte the frames the sender sent."""
    receiver = await raw_connect("bob", gateway=1)
    await receiver.subscribe("files", kind="byte")
    sender = await raw_connect("alice", gateway=0)
    sid = new_id()
    await sender.send(header(sid, kind="byte", name="raw.bin", total_length=20_000))
    frames = [
        encode_byte_chunk(sid, 0, bytes(range(256)) * 50),  # 12800 bytes
        encode_byte_chunk(sid, 1, b"\x00{" * 3600),  # 7200 bytes: JSON-looking bytes too
    ]
    for f in frames:
        await sender.send(f)
    await sender.send({"type": "trailer", "stream_id": sid})
    await sender.expect("closed", stream_id=sid)
    h = await receiver.expect("header", stream_id=sid)
    assert (h["kind"], h["name"], h["sender"]) == ("byte", "raw.bin", "alice")
    got = [await receiver.expect("byte_chunk", stream_id=sid) for _ in frames]
    assert [g["raw"] for g in got] == frames
    assert [g["chunk_index"] for g in got] == [0, 1]
    await receiver.expect("trailer", stream_id=sid)
    kinds = [
        (f["type"], binary) for f, binary in zip(receiver.frames, receiver.binary, strict=True)
    ]
    assert ("byte_chunk", True) in kinds
    assert all(binary for t, binary in kinds if t == "byte_chunk")
    assert not any(binary for t, binary in kinds if t != "byte_chunk")


async def test_write_to_file(connect: Any, tmp_path: Path) -> None:
    readers: asyncio.Queue[roomstreams.ByteStreamReader] = asyncio.Queue()
    await byte_room(connect, "bob", 0, files=lambda r, _i: readers.put_nowait(r))
    alice = await connect("alice", gateway=1)
    out = tmp_path / "downloads"
    out.mkdir()
    content = os.urandom(700_000)
    paths = []
    for _ in range(2):
        await alice.local_participant.send_bytes(content, name="photo.jpg", topic="files")
        reader = await asyncio.wait_for(readers.get(), 5)
        paths.append(await reader.write_to_file(out))
    assert paths == [out / "photo.jpg", out / "photo (1).jpg"]  # never overwrites
    assert all(p.read_bytes() == content for p in paths)


@pytest.mark.parametrize("bad", ["../evil.txt", "sub/dir.txt", "/etc/passwd", "..", "a\\b"])
async def test_write_to_file_refuses_unsafe_names(connect: Any, tmp_path: Path, bad: str) -> None:
    readers: asyncio.Queue[roomstreams.ByteStreamReader] = asyncio.Queue()
    await byte_room(connect, "bob", 0, files=lambda r, _i: readers.put_nowait(r))
    alice = await connect("alice", gateway=1)
    await alice.local_participant.send_bytes(b"secret", name="fine.txt", topic="files")
    reader = await asyncio.wait_for(readers.get(), 5)
    with pytest.raises(roomstreams.UnsafeFileName) as err:
        await reader.write_to_file(tmp_path, name=bad)
    assert isinstance(err.value, roomstreams.RoomStreamsError)
    assert await asyncio.to_thread(os.listdir, tmp_path) == []
    assert not await asyncio.to_thread((tmp_path.parent / "evil.txt").exists)
    assert await reader.read_all() == b"secret"  # nothing was consumed by the refusal


async def test_sender_refuses_unsafe_names(connect: Any) -> None:
    alice = await connect("alice")
    for bad in ("../x", "a/b", "", "c\\d"):
        with pytest.raises(roomstreams.UnsafeFileName):
            await alice.local_participant.stream_bytes(name=bad, topic="files")
    with pytest.raises(ValueError):  # it is a ValueError too
        await alice.local_participant.send_bytes(b"x", name="/abs", topic="files")


async def test_sender_leaving_mid_byte_stream_ends_it_abnormally(connect: Any) -> None:
    col = ByteCollector()
    await byte_room(connect, "bob", 0, files=col)
    alice = await connect("alice", gateway=1)
    w = await alice.local_participant.stream_bytes(name="half.bin", topic="files")
    await w.write(b"half")
    await col.wait_count(1)
    await alice.disconnect()
    rec = await col.wait_done(w.stream_id, timeout=3)
    assert isinstance(rec.error, roomstreams.StreamAborted)
    assert rec.error.code == "sender_left"
    assert rec.data == b"half"


async def test_reader_buffer_is_bounded(system: System, room_name: str) -> None:
    """A handler that never reads: its reader holds at most ``reader_buffer`` bytes, then
    the stream ends for it as ``slow_consumer`` (the sender is not disturbed)."""
    readers: asyncio.Queue[roomstreams.ByteStreamReader] = asyncio.Queue()
    bob = roomstreams.Room(reader_buffer=100_000)
    bob.register_byte_stream_handler("files", lambda r, _i: readers.put_nowait(r))
    alice = roomstreams.Room()
    try:
        await bob.connect(system.urls[0], system.token(room_name, "bob"))
        await alice.connect(system.urls[1], system.token(room_name, "alice"))
        info = await alice.local_participant.send_bytes(
            b"z" * 1_000_000, name="big.bin", topic="files"
        )
        assert info.size == 1_000_000
        reader = await asyncio.wait_for(readers.get(), 5)
        with pytest.raises(roomstreams.StreamAborted) as err:
            await asyncio.wait_for(reader.read_all(), 5)
        assert err.value.code == "slow_consumer"
    finally:
        await alice.disconnect()
        await bob.disconnect()


# ---- text stream extras --------------------------------------------------------------------


async def test_send_text_with_attachments_and_reply(connect: Any, tmp_path: Path) -> None:
    texts, files = Collector(), ByteCollector()
    bob = await connect("bob", gateway=1, handlers={"chat": texts})
    await bob.register_byte_stream_handler("chat", files)
    carol_files = ByteCollector()
    carol = await connect("carol", gateway=0)
    await carol.register_byte_stream_handler("chat", carol_files)
    alice = await connect("alice")
    one, two = tmp_path / "one.txt", tmp_path / "two.png"
    one.write_bytes(b"first attachment")
    two.write_bytes(os.urandom(40_000))
    info = await alice.local_participant.send_text(
        "see attached",
        topic="chat",
        reply_to_id="msg-41",
        attachments=[one, str(two)],
        destination_identities=["bob"],
    )
    assert len(info.attached_stream_ids) == 2
    rec = await texts.wait_done(info.stream_id)
    assert rec.text == "see attached"
    assert rec.info.reply_to_id == "msg-41"
    assert rec.info.attached_stream_ids == info.attached_stream_ids
    got = [await files.wait_done(sid) for sid in info.attached_stream_ids]
    assert [(g.info.name, g.data) for g in got] == [
        ("one.txt", b"first attachment"),
        ("two.png", two.read_bytes()),
    ]
    assert [g.info.mime_type for g in got] == ["text/plain", "image/png"]
    assert all(g.info.topic == "chat" and g.identity == "alice" for g in got)
    assert carol_files.streams == []  # attachments follow the text's destinations


async def test_stream_text_with_attachment_and_missing_attachment(
    connect: Any, tmp_path: Path
) -> None:
    texts, files = Collector(), ByteCollector()
    bob = await connect("bob", gateway=1, handlers={"chat": texts})
    await bob.register_byte_stream_handler("chat", files)
    alice = await connect("alice")
    f = tmp_path / "a.bin"
    f.write_bytes(b"abc")
    writer = await alice.local_participant.stream_text(
        topic="chat", attachments=[f], attached_stream_ids=["earlier-upload"]
    )
    await writer.write("streamed")
    await writer.close()
    ids = writer.info.attached_stream_ids
    assert ids[0] == "earlier-upload" and len(ids) == 2
    assert (await files.wait_done(ids[1])).data == b"abc"
    assert (await texts.wait_done(writer.stream_id)).info.attached_stream_ids == ids
    with pytest.raises(FileNotFoundError):
        await alice.local_participant.send_text(
            "x", topic="chat", attachments=[tmp_path / "missing.bin"]
        )
    assert len(texts.streams) == 1  # nothing was opened for it


async def test_text_stream_extras_round_trip(connect: Any) -> None:
    col = Collector()
    await connect("bob", handlers={"chat": col})
    alice = await connect("alice", gateway=1)
    writer = await alice.local_participant.stream_text(
        topic="chat",
        reply_to_id="m-1",
        operation_type="update",
        version=3,
        generated=True,
        attached_stream_ids=["f-1", "f-2"],
    )
    await writer.write("edited")
    await writer.close()
    info = (await col.wait_done(writer.stream_id)).info
    assert (info.reply_to_id, info.operation_type, info.version, info.generated) == (
        "m-1",
        "update",
        3,
        True,
    )
    assert info.attached_stream_ids == ["f-1", "f-2"]
    plain = await alice.local_participant.send_text("plain", topic="chat")
    info = (await col.wait_done(plain.stream_id)).info
    assert (info.reply_to_id, info.operation_type, info.version, info.generated) == (
        None,
        "create",
        0,
        False,
    )
    assert info.attached_stream_ids == []


# ---- bad input: an error frame to the sender, nothing else disturbed ------------------------


async def _bystander_ok(sender: BinRawClient, col: ByteCollector, **extra: Any) -> None:
    """The sender's connection still works and the receiver still gets new streams."""
    sid = new_id()
    await sender.send(header(sid, kind="byte", name="ok.bin", **extra))
    await sender.send(encode_byte_chunk(sid, 0, b"still fine"))
    await sender.send({"type": "trailer", "stream_id": sid})
    await sender.expect("closed", stream_id=sid)
    assert (await col.wait_done(sid)).data == b"still fine"


async def _scene(connect: Any, raw_connect: Any) -> tuple[BinRawClient, ByteCollector, Collector]:
    files, texts = ByteCollector(), Collector()
    bob = await connect("bob", gateway=1, handlers={"files": texts})
    await bob.register_byte_stream_handler("files", files)
    errors: list[BaseException] = []
    bob.on("error", errors.append)
    sender = await raw_connect("alice", gateway=0)
    return sender, files, texts


async def test_byte_chunk_on_a_text_stream(connect: Any, raw_connect: Any) -> None:
    sender, files, texts = await _scene(connect, raw_connect)
    sid = new_id()
    await sender.send(header(sid))  # a text stream
    await sender.send({"type": "chunk", "stream_id": sid, "chunk_index": 0, "content": "ok "})
    await sender.send(encode_byte_chunk(sid, 1, b"bytes"))
    err = await sender.expect("error")
    assert (err["code"], err["stream_id"]) == ("bad_frame", sid)
    assert "byte chunk" in err["message"] and "text stream" in err["message"]
    rec = await texts.wait_done(sid)
    assert isinstance(rec.error, roomstreams.StreamAborted)
    assert rec.error.code == "bad_frame" and rec.text == "ok "
    await _bystander_ok(sender, files)
    assert sender.errors() == ["bad_frame"]


async def test_text_chunk_on_a_byte_stream(connect: Any, raw_connect: Any) -> None:
    sender, files, _ = await _scene(connect, raw_connect)
    sid = new_id()
    await sender.send(header(sid, kind="byte", name="b.bin"))
    await sender.send(encode_byte_chunk(sid, 0, b"ok "))
    await sender.send({"type": "chunk", "stream_id": sid, "chunk_index": 1, "content": "text"})
    err = await sender.expect("error")
    assert (err["code"], err["stream_id"]) == ("bad_frame", sid)
    assert "text chunk" in err["message"] and "byte stream" in err["message"]
    rec = await files.wait_done(sid)
    assert isinstance(rec.error, roomstreams.StreamAborted)
    assert rec.error.code == "bad_frame" and rec.data == b"ok "
    await _bystander_ok(sender, files)
    assert sender.errors() == ["bad_frame"]


async def test_byte_header_without_a_name(connect: Any, raw_connect: Any) -> None:
    sender, files, _ = await _scene(connect, raw_connect)
    sid = new_id()
    await sender.send(header(sid, kind="byte"))
    err = await sender.expect("error")
    assert (err["code"], err["stream_id"]) == ("bad_frame", sid)
    assert "name" in err["message"]
    # nothing was opened: a chunk for it is an unknown stream
    await sender.send(encode_byte_chunk(sid, 0, b"x"))
    err = await sender.expect("error")
    assert (err["code"], err["stream_id"]) == ("unknown_stream", sid)
    await _bystander_ok(sender, files)
    assert sid not in files.by_id


@pytest.mark.parametrize("bad", ["../../etc/passwd", "dir/file.txt", "/abs.txt", "a\\b", ".."])
async def test_byte_header_with_a_path_as_name(connect: Any, raw_connect: Any, bad: str) -> None:
    sender, files, _ = await _scene(connect, raw_connect)
    sid = new_id()
    await sender.send(header(sid, kind="byte", name=bad))
    err = await sender.expect("error")
    assert (err["code"], err["stream_id"]) == ("bad_frame", sid)
    assert "name" in err["message"]
    await _bystander_ok(sender, files)
    assert sid not in files.by_id
    assert sender.errors() == ["bad_frame"]


async def test_malformed_byte_chunk_frame(connect: Any, raw_connect: Any) -> None:
    sender, files, _ = await _scene(connect, raw_connect)
    await sender.send(b"\x01\x05ab")  # stream id length says 5, frame ends after 2
    err = await sender.expect("error")
    assert err["code"] == "bad_frame" and "byte chunk" in err["message"]
    await _bystander_ok(sender, files)


async def test_oversize_byte_chunk_ends_the_stream(connect: Any, raw_connect: Any) -> None:
    sender, files, _ = await _scene(connect, raw_connect)
    sid = new_id()
    await sender.send(header(sid, kind="byte", name="big.bin"))
    await sender.send(encode_byte_chunk(sid, 0, b"x" * (MAX_CHUNK_BYTES + 1)))
    err = await sender.expect("error")
    assert (err["code"], err["stream_id"]) == ("chunk_too_large", sid)
    rec = await files.wait_done(sid)
    assert isinstance(rec.error, roomstreams.StreamAborted)
    await _bystander_ok(sender, files)


# ---- a 100 MB file in bounded memory -------------------------------------------------------


@pytest.mark.slow
@pytest.mark.timeout(180)
async def test_100mb_send_file_streams_in_bounded_memory(
    system_factory: Callable[..., System], room_name: str, tmp_path: Path
) -> None:
    size = 100 * 1024 * 1024
    path = tmp_path / "big.bin"
    digest = hashlib.sha256()
    with path.open("wb") as f:
        block = os.urandom(1024 * 1024)
        for i in range(100):
            piece = block[i:] + block[:i]
            f.write(piece)
            digest.update(piece)
    s = system_factory(gateways=2)
    assert s.router is not None
    procs = {
        "router": psutil.Process(s.router.pid),
        "gateway0": psutil.Process(s.gateways[0].pid),
        "gateway1": psutil.Process(s.gateways[1].pid),
        "client": psutil.Process(os.getpid()),
    }
    base = {k: p.memory_info().rss for k, p in procs.items()}
    peak = dict(base)
    received = hashlib.sha256()
    total = 0
    done = asyncio.Event()
    max_buffered = 0

    async def handler(reader: roomstreams.ByteStreamReader, _identity: str) -> None:
        nonlocal total, max_buffered
        async for chunk in reader:
            received.update(chunk)
            total += len(chunk)
            max_buffered = max(max_buffered, reader._buffered)
        done.set()

    bob = roomstreams.Room()
    bob.register_byte_stream_handler("files", handler)
    alice = roomstreams.Room()
    stop = asyncio.Event()

    async def sample() -> None:
        while not stop.is_set():
            for k, p in procs.items():
                peak[k] = max(peak[k], p.memory_info().rss)
            await asyncio.sleep(0.05)

    sampler = asyncio.create_task(sample())
    try:
        await bob.connect(s.urls[0], s.token(room_name, "bob"))
        await alice.connect(s.urls[1], s.token(room_name, "alice"))
        t0 = time.monotonic()
        info = await alice.local_participant.send_file(path, topic="files")
        await asyncio.wait_for(done.wait(), 120)
        elapsed = time.monotonic() - t0
    finally:
        stop.set()
        await sampler
        await alice.disconnect()
        await bob.disconnect()
    assert info.size == size == total
    assert received.hexdigest() == digest.hexdigest()
    growth = {k: (peak[k] - base[k]) / 2**20 for k in procs}
    print(f"100 MB in {elapsed:.1f}s; RSS growth MiB: {growth}; reader max {max_buffered}")
    # a process holding the file would grow by 100 MiB or more
    for k, mib in growth.items():
        assert mib < 60, (k, growth)
    assert max_buffered < 8 * 1024 * 1024
