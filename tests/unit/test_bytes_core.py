"""Byte streams and data packets, sans I/O: the binary codec, file names, the gateway's
byte-chunk checks, the client's assembler, the router's fold, log entries, the reader."""

from __future__ import annotations

import asyncio
import json
import os
from pathlib import Path

import pytest

import roomstreams
from roomstreams.client.bytestreams import ByteStreamInfo, ByteStreamReader
from roomstreams.client.data import packet_from_frame
from roomstreams.core.incoming import Incoming, StreamChunk, StreamEnded, StreamOpened
from roomstreams.core.outgoing import FrameRejected, OutgoingStreams
from roomstreams.core.room import RoomState
from roomstreams.protocol.binary import (
    BYTE_CHUNK,
    DATA_PACKET,
    BadBinaryFrame,
    ByteChunk,
    DeliveredDataMeta,
    decode_byte_chunk,
    decode_data_packet,
    encode_byte_chunk,
    encode_data_packet,
    is_binary,
)
from roomstreams.protocol.entries import LogEntry, encode_log_entry
from roomstreams.protocol.filenames import file_name_problem
from roomstreams.protocol.frames import DeliveredHeader, DeliveredTrailer, ErrorCode, HeaderFrame
from roomstreams.protocol.limits import MAX_CHUNK_BYTES

from ._room_helpers import LogWriter, RecordingSink

# ---- the binary codec ----------------------------------------------------------------------


def test_byte_chunk_round_trip() -> None:
    payload = bytes(range(256)) * 3
    frame = encode_byte_chunk("sid-é", 70_000, payload)
    assert frame[0] == BYTE_CHUNK and frame[:1] != b"{"
    assert frame[1] == len("sid-é".encode())
    assert frame[-len(payload) :] == payload
    assert len(frame) == 2 + len("sid-é".encode()) + 4 + len(payload)  # no encoding overhead
    assert decode_byte_chunk(frame) == ByteChunk("sid-é", 70_000, payload)
    assert decode_byte_chunk(encode_byte_chunk("s", 0, b"")) == ByteChunk("s", 0, b"")
    assert is_binary(frame)


def test_byte_chunk_from_memoryview() -> None:
    data = memoryview(b"0123456789")
    assert decode_byte_chunk(encode_byte_chunk("s", 1, data[2:5])).payload == b"234"


@pytest.mark.parametrize(
    "frame",
    [b"", b"\x01", b"\x01\x00\x00\x00\x00\x00", b"\x01\x05abc", b"\x01\x01s\x00\x00", b"{}"],
)
def test_malformed_byte_chunks(frame: bytes) -> None:
    with pytest.raises(BadBinaryFrame):
        decode_byte_chunk(frame)


def test_byte_chunk_stream_id_must_be_utf8() -> None:
    with pytest.raises(BadBinaryFrame, match="UTF-8"):
        decode_byte_chunk(b"\x01\x01\xff\x00\x00\x00\x00")
    with pytest.raises(ValueError):
        encode_byte_chunk("", 0, b"x")
    with pytest.raises(ValueError):
        encode_byte_chunk("x" * 129, 0, b"x")


def test_data_packet_round_trip() -> None:
    meta = b'{"topic":"t"}'
    frame = encode_data_packet(meta, b"\x00payload", reliable=True)
    assert frame[0] == DATA_PACKET and is_binary(frame)
    p = decode_data_packet(frame)
    assert (p.meta, p.payload, p.reliable) == (meta, b"\x00payload", True)
    lossy = decode_data_packet(encode_data_packet(b"{}", b"", reliable=False))
    assert (lossy.meta, lossy.payload, lossy.reliable) == (b"{}", b"", False)


@pytest.mark.parametrize(
    "frame", [b"\x02", b"\x02\x01\x00", b"\x02\x01\x00\x09{}", b"\x02\x04\x00\x00", b"\x01\x01"]
)
def test_malformed_data_packets(frame: bytes) -> None:
    with pytest.raises(BadBinaryFrame):
        decode_data_packet(frame)


def test_json_frames_are_not_binary() -> None:
    assert not is_binary(b'{"type":"chunk"}')
    assert not is_binary(b"")
    assert not is_binary(b"\xff\xfe")


def test_packet_from_frame() -> None:
    meta = DeliveredDataMeta(topic="t", destination_identities=["bob"], sender="alice")
    frame = encode_data_packet(meta.model_dump_json().encode(), b"hi", reliable=False)
    bob = roomstreams.RemoteParticipant(identity="alice")
    p = packet_from_frame(frame, {"alice": bob})
    assert (p.payload, p.data, p.participant_identity, p.topic) == (b"hi", b"hi", "alice", "t")
    assert (p.reliable, p.destination_identities, p.participant) == (False, ["bob"], bob)
    assert packet_from_frame(frame, {}).participant is None
    with pytest.raises(ValueError):
        packet_from_frame(encode_data_packet(b'{"topic": "t"}', b""), {})  # no sender


# ---- file names ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    "name", ["report.pdf", "a..b", "..hidden", "naïve café.txt", "x" * 255, "C.txt", "a b"]
)
def test_safe_names(name: str) -> None:
    assert file_name_problem(name) is None


@pytest.mark.parametrize(
    ("name", "why"),
    [
        (None, "non-empty"),
        ("", "non-empty"),
        ("..", "not a file name"),
        (".", "not a file name"),
        ("../x", "separator"),
        ("a/b", "separator"),
        ("/etc/passwd", "separator"),
        ("a\\b", "separator"),
        ("C:x", "absolute"),
        ("a\x00b", "control"),
        ("a\nb", "control"),
        ("é" * 128, "longer"),
    ],
)
def test_unsafe_names(name: str | None, why: str) -> None:
    problem = file_name_problem(name)
    assert problem is not None and why in problem


# ---- the gateway's checks of byte chunks ---------------------------------------------------


def _header(sid: str, kind: str, total: int | None = None) -> HeaderFrame:
    return HeaderFrame(
        stream_id=sid,
        topic="t",
        timestamp=0,
        kind=kind,
        total_length=total,
        name="f.bin" if kind == "byte" else None,
    )


def test_byte_chunks_in_order_within_size() -> None:
    out = OutgoingStreams()
    out.header(_header("b", "byte", total=MAX_CHUNK_BYTES + 1))
    out.byte_chunk("b", 0, MAX_CHUNK_BYTES)
    out.byte_chunk("b", 1, 1)
    with pytest.raises(FrameRejected) as rej:
        out.byte_chunk("b", 2, 1)
    assert rej.value.code == ErrorCode.SIZE_MISMATCH and rej.value.abort is not None


def test_byte_chunk_on_text_stream_aborts_it() -> None:
    out = OutgoingStreams()
    out.header(_header("t", "text"))
    with pytest.raises(FrameRejected) as rej:
        out.byte_chunk("t", 0, 3)
    assert rej.value.code == ErrorCode.BAD_FRAME
    assert "byte chunk" in rej.value.message and "text stream" in rej.value.message
    assert isinstance(rej.value.abort, DeliveredTrailer)
    assert rej.value.abort.code == ErrorCode.BAD_FRAME
    assert out.open_ids == []


@pytest.mark.parametrize(
    ("index", "size", "code"),
    [
        (1, 10, ErrorCode.CHUNK_OUT_OF_ORDER),
        (0, MAX_CHUNK_BYTES + 1, ErrorCode.CHUNK_TOO_LARGE),
    ],
)
def test_bad_byte_chunks_abort(index: int, size: int, code: str) -> None:
    out = OutgoingStreams()
    out.header(_header("b", "byte"))
    with pytest.raises(FrameRejected) as rej:
        out.byte_chunk("b", index, size)
    assert rej.value.code == code and rej.value.abort is not None


def test_byte_chunk_of_unknown_stream() -> None:
    with pytest.raises(FrameRejected) as rej:
        OutgoingStreams().byte_chunk("nope", 0, 1)
    assert rej.value.code == ErrorCode.UNKNOWN_STREAM and rej.value.abort is None


# ---- the client's assembler ----------------------------------------------------------------


def _delivered(sid: str, kind: str) -> DeliveredHeader:
    return DeliveredHeader(
        stream_id=sid,
        topic="t",
        timestamp=0,
        kind=kind,
        name="f.bin" if kind == "byte" else None,
        sender="alice",
    )


def test_incoming_byte_chunks() -> None:
    inc = Incoming()
    assert isinstance(inc.header(_delivered("b", "byte"))[0], StreamOpened)
    assert inc.byte_chunk(ByteChunk("b", 0, b"\x00")) == [StreamChunk("b", b"\x00")]
    assert inc.byte_chunk(ByteChunk("b", 1, b"\x01")) == [StreamChunk("b", b"\x01")]
    [gap] = inc.byte_chunk(ByteChunk("b", 5, b"x"))
    assert isinstance(gap, StreamEnded) and gap.code == ErrorCode.LAGGED
    assert inc.byte_chunk(ByteChunk("unknown", 0, b"x")) == []


def test_incoming_chunk_of_the_wrong_kind_ends_the_stream() -> None:
    inc = Incoming()
    inc.header(_delivered("t", "text"))
    [ended] = inc.byte_chunk(ByteChunk("t", 0, b"x"))
    assert isinstance(ended, StreamEnded) and ended.code == ErrorCode.BAD_FRAME
    assert inc.open_ids == []


# ---- the router's fold ---------------------------------------------------------------------


def packet(log: LogWriter, session: str, dests: tuple[str, ...] = (), topic: str = "") -> LogEntry:
    meta = DeliveredDataMeta(
        topic=topic, destination_identities=list(dests), sender=log.identity[session]
    )
    data = encode_data_packet(meta.model_dump_json().encode(), b"payload")
    return LogEntry(
        kind="p",
        session=session,
        seq=log._next(session),
        topic=topic,
        destinations=dests,
        data=data,
        size=len(data),
    )


@pytest.fixture
def room() -> tuple[RoomState, RecordingSink, LogWriter]:
    """alice (sender, gw1), bob (gw1), carol (gw2), mute (gw2, can_subscribe=False)."""
    state, sink, log = RoomState("demo"), RecordingSink(), LogWriter()
    for e in (
        log.join("s-alice", "alice", "gw1"),
        log.join("s-bob", "bob", "gw1"),
        log.join("s-carol", "carol", "gw2"),
        log.join("s-mute", "mute", "gw2", can_subscribe=False),
    ):
        state.apply(e, sink)
    sink.clear()
    return state, sink, log


def test_packet_goes_to_every_other_subscriber_grouped_per_gateway(
    room: tuple[RoomState, RecordingSink, LogWriter],
) -> None:
    state, sink, log = room
    e = packet(log, "s-alice", topic="cursor")
    state.apply(e, sink)
    got = {(d.gateway, d.sessions) for d in sink.deliveries}
    assert got == {("gw1", ("s-bob",)), ("gw2", ("s-carol",))}
    assert all(d.raw == e.data and not d.opens and not d.ends for d in sink.deliveries)
    assert sink.acked("s-alice") == e.size  # paced like everything a session appends
    assert state.streams == {}  # no stream state


def test_packet_narrowed_to_destinations(
    room: tuple[RoomState, RecordingSink, LogWriter],
) -> None:
    state, sink, log = room
    state.apply(packet(log, "s-alice", ("carol", "mute")), sink)
    assert [(d.gateway, d.sessions) for d in sink.deliveries] == [("gw2", ("s-carol",))]


def test_packet_to_unknown_destination_reaches_nobody_and_tells_the_sender(
    room: tuple[RoomState, RecordingSink, LogWriter],
) -> None:
    state, sink, log = room
    state.apply(packet(log, "s-alice", ("ghost",)), sink)
    assert [d.sessions for d in sink.deliveries] == [("s-alice",)]
    err = sink.deliveries[0].frame
    assert (err["type"], err["code"]) == ("error", ErrorCode.UNKNOWN_DESTINATION)
    assert "ghost" in err["message"]
    sink.clear()
    state.apply(packet(log, "s-alice", ("bob", "ghost")), sink)
    assert [d.sessions for d in sink.deliveries] == [("s-bob",), ("s-alice",)]
    assert "bob" not in sink.deliveries[1].frame["message"]


def test_packet_of_a_sender_that_left_is_dropped(
    room: tuple[RoomState, RecordingSink, LogWriter],
) -> None:
    state, sink, log = room
    e = packet(log, "s-alice")
    state.apply(log.leave("s-alice"), sink)
    sink.clear()
    state.apply(e, sink)
    assert sink.deliveries == [] and sink.acks == []


def test_byte_streams_route_to_byte_handlers_only(
    room: tuple[RoomState, RecordingSink, LogWriter],
) -> None:
    state, sink, log = room
    state.apply(log.subscribe("s-bob", "files", kind="byte"), sink)
    state.apply(log.subscribe("s-carol", "files", kind="text"), sink)
    sink.clear()
    state.apply(log.header("s-alice", "b1", "files", kind="byte"), sink)
    chunk = encode_byte_chunk("b1", 0, b"\x00\xff")
    state.apply(
        LogEntry(
            kind="c",
            session="s-alice",
            seq=log._next("s-alice"),
            stream_id="b1",
            data=chunk,
            size=len(chunk),
        ),
        sink,
    )
    state.apply(log.trailer("s-alice", "b1"), sink)
    to_bob = [d for d in sink.deliveries if "s-bob" in d.sessions]
    assert [d.opens for d in to_bob] == ["b1", "", ""]
    assert to_bob[1].raw == chunk  # forwarded as-is
    assert to_bob[2].ends == "b1"
    assert not any("s-carol" in d.sessions for d in sink.deliveries)


# ---- log entries ---------------------------------------------------------------------------


def test_packet_log_entry_round_trip() -> None:
    e = LogEntry(
        kind="p",
        session="s1",
        seq=7,
        topic="t",
        destinations=("bob", "carol"),
        data=b"\x02\x01\x00\x02{}\xff",
        size=9,
    )
    f = encode_log_entry(e)
    assert f["k"] == "p" and json.loads(str(f["ds"])) == ["bob", "carol"]
    back = LogEntry.from_fields({str(k).encode(): _b(v) for k, v in f.items()})
    assert (back.kind, back.session, back.seq, back.topic) == ("p", "s1", 7, "t")
    assert (back.destinations, back.data, back.size) == (("bob", "carol"), e.data, 9)
    e2 = LogEntry(kind="p", session="s1", seq=1, data=b"\x02", size=1)
    assert "ds" not in encode_log_entry(e2)


def _b(v: bytes | str | int) -> bytes:
    return v if isinstance(v, bytes) else str(v).encode()


# ---- the reader ----------------------------------------------------------------------------


def _reader(
    name: str = "f.bin", size: int | None = 10, max_buffer: int = 1 << 20
) -> ByteStreamReader:
    info = ByteStreamInfo(stream_id="s1", topic="t", timestamp=0, size=size, name=name)
    return ByteStreamReader(info, "alice", max_buffer=max_buffer)


async def test_reader_progress_and_chunks() -> None:
    r = _reader(size=10)
    assert r.progress == 0.0
    r._feed(b"1234")
    assert (r.progress, r.bytes_received) == (0.4, 4)
    r._feed(b"567890")
    assert r.progress == 1.0
    r._end(None, {"k": "v"})
    assert [c async for c in r] == [b"1234", b"567890"]
    assert r.info.attributes == {"k": "v"}


async def test_reader_progress_unknown_size() -> None:
    r = _reader(size=None)
    r._feed(b"abc")
    assert r.progress is None
    r._end()
    assert r.progress == 1.0 and await r.read_all() == b"abc"


async def test_reader_progress_abnormal_end_is_not_complete() -> None:
    r = _reader(size=10)
    r._feed(b"12")
    r._end(roomstreams.StreamAborted("gone", code="sender_left"))
    assert r.progress == 0.2
    with pytest.raises(roomstreams.StreamAborted):
        await r.read_all()


async def test_reader_buffer_is_bounded() -> None:
    r = _reader(size=None, max_buffer=20_000)
    r._feed(b"x" * 15_000)
    r._feed(b"x" * 15_000)  # over the bound: ended, buffer dropped
    assert r.closed
    with pytest.raises(roomstreams.StreamAborted) as err:
        await r.read_all()
    assert err.value.code == ErrorCode.SLOW_CONSUMER and "bytes" in str(err.value)


async def test_reader_consumption_frees_the_buffer() -> None:
    r = _reader(size=None, max_buffer=20_000)
    got = []
    for _ in range(10):  # 150 KB through a 20 KB buffer, read as it comes
        r._feed(b"y" * 15_000)
        got.append(await r.__anext__())
    r._end()
    assert sum(map(len, got)) == 150_000 and await r.read_all() == b""


@pytest.mark.parametrize("bad", ["../../x", "/abs", "sub/x", "..", "a\\b", ""])
async def test_write_to_file_refuses_a_hostile_header_name(tmp_path: Path, bad: str) -> None:
    """Even if a gateway let such a name through, the receiver does not write outside."""
    r = _reader(name=bad)
    r._feed(b"data")
    r._end()
    with pytest.raises(roomstreams.UnsafeFileName):
        await r.write_to_file(tmp_path)
    assert await asyncio.to_thread(os.listdir, tmp_path) == []


async def test_write_to_file_writes_and_never_overwrites(tmp_path: Path) -> None:
    (tmp_path / "f.bin").write_bytes(b"old")
    (tmp_path / "f (1).bin").write_bytes(b"old")
    r = _reader(name="f.bin", size=None)
    data = [bytes([i]) * 100_000 for i in range(4)]  # crosses the write block
    for d in data:
        r._feed(d)
    r._end()
    path = await r.write_to_file(tmp_path)
    assert path == tmp_path / "f (2).bin" and path.read_bytes() == b"".join(data)
    assert (tmp_path / "f.bin").read_bytes() == b"old"


async def test_write_to_file_removes_the_partial_file_on_abort(tmp_path: Path) -> None:
    r = _reader(name="part.bin", size=None)

    async def feed() -> None:
        r._feed(b"first")
        await asyncio.sleep(0.01)
        r._end(roomstreams.StreamAborted("sender left", code="sender_left"))

    task = asyncio.create_task(feed())
    with pytest.raises(roomstreams.StreamAborted):
        await r.write_to_file(tmp_path, name="renamed.bin")
    await task
    assert await asyncio.to_thread(os.listdir, tmp_path) == []


def test_numbered_data_packet_round_trip() -> None:
    frame = encode_data_packet(b'{"topic":"t"}', b"pay", reliable=True, number=70000)
    p = decode_data_packet(frame)
    assert (p.number, p.reliable, p.meta, p.payload) == (70000, True, b'{"topic":"t"}', b"pay")
    # not numbered: as before, number 0
    assert decode_data_packet(encode_data_packet(b"{}", b"x")).number == 0
    with pytest.raises(BadBinaryFrame):
        decode_data_packet(frame[:7])  # number, but no room for the meta length
    with pytest.raises(BadBinaryFrame):
        decode_data_packet(b"\x02\x03\x00\x00\x00\x00\x00\x00")  # number 0
