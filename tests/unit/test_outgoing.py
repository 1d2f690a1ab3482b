"""The gateway's per-connection checks of outgoing streams (``OutgoingStreams``)."""

from __future__ import annotations

import pytest

from roomstreams.core.outgoing import FrameRejected, OutgoingStreams
from roomstreams.protocol.frames import (
    ChunkFrame,
    DeliveredTrailer,
    ErrorCode,
    HeaderFrame,
    TrailerFrame,
)
from roomstreams.protocol.limits import MAX_CHUNK_BYTES


def header(sid: str = "s1", *, total: int | None = None, kind: str = "text") -> HeaderFrame:
    return HeaderFrame(
        stream_id=sid,
        topic="chat",
        timestamp=0,
        total_length=total,
        kind=kind,
        name="f.bin" if kind == "byte" else None,
    )


def chunk(index: int, content: str = "abc", sid: str = "s1") -> ChunkFrame:
    return ChunkFrame(stream_id=sid, chunk_index=index, content=content)


def trailer(sid: str = "s1", reason: str = "") -> TrailerFrame:
    return TrailerFrame(stream_id=sid, reason=reason)


@pytest.fixture
def out() -> OutgoingStreams:
    return OutgoingStreams()


def assert_aborted(rej: FrameRejected, code: str, sid: str = "s1") -> None:
    assert rej.code == code
    assert rej.stream_id == sid
    assert isinstance(rej.abort, DeliveredTrailer)
    assert rej.abort.stream_id == sid
    assert rej.abort.code == code
    assert rej.abort.reason == rej.message
    assert rej.abort.reason  # receivers see why


def test_header_chunks_trailer_happy_path(out: OutgoingStreams) -> None:
    out.header(header())
    assert out.open_ids == ["s1"]

    assert out.chunk(chunk(0, "hello")) == 5
    assert out.chunk(chunk(1, "wörld")) == 6  # UTF-8 bytes, not characters
    assert out.chunk(chunk(2, "😀")) == 4
    out.trailer(trailer())

    assert out.open_ids == []


def test_several_streams_interleave(out: OutgoingStreams) -> None:
    out.header(header("a"))
    out.header(header("b"))
    out.chunk(chunk(0, sid="a"))
    out.chunk(chunk(0, sid="b"))
    out.chunk(chunk(1, sid="a"))
    out.trailer(trailer("b"))

    assert out.open_ids == ["a"]


@pytest.mark.parametrize(
    ("sent", "bad", "what"),
    [(1, 2, "skips"), (2, 1, "repeats"), (1, 0, "repeats"), (0, 1, "skips")],
)
def test_chunk_index_gap_or_repeat_aborts_the_stream(
    out: OutgoingStreams, sent: int, bad: int, what: str
) -> None:
    out.header(header())
    for i in range(sent):
        out.chunk(chunk(i))

    with pytest.raises(FrameRejected) as exc:
        out.chunk(chunk(bad))

    assert_aborted(exc.value, ErrorCode.CHUNK_OUT_OF_ORDER)
    assert what in exc.value.message
    assert f"expected {sent}" in exc.value.message
    assert out.open_ids == []


def test_after_an_abort_the_stream_is_unknown(out: OutgoingStreams) -> None:
    out.header(header())
    with pytest.raises(FrameRejected):
        out.chunk(chunk(5))

    with pytest.raises(FrameRejected) as exc:
        out.chunk(chunk(0))
    assert exc.value.code == ErrorCode.UNKNOWN_STREAM
    with pytest.raises(FrameRejected) as exc:
        out.trailer(trailer())
    assert exc.value.code == ErrorCode.UNKNOWN_STREAM
    # and its id stays used
    with pytest.raises(FrameRejected) as exc:
        out.header(header())
    assert exc.value.code == ErrorCode.STREAM_ID_IN_USE


@pytest.mark.parametrize("frame", [chunk(0, sid="nope"), trailer("nope")])
def test_unknown_stream_is_rejected_without_abort(
    out: OutgoingStreams, frame: ChunkFrame | TrailerFrame
) -> None:
    out.header(header())
    with pytest.raises(FrameRejected) as exc:
        if isinstance(frame, ChunkFrame):
            out.chunk(frame)
        else:
            out.trailer(frame)

    assert exc.value.code == ErrorCode.UNKNOWN_STREAM
    assert exc.value.stream_id == "nope"
    assert exc.value.abort is None
    assert out.open_ids == ["s1"]  # other streams untouched


def test_reusing_an_open_stream_id_is_rejected(out: OutgoingStreams) -> None:
    out.header(header())
    out.chunk(chunk(0))

    with pytest.raises(FrameRejected) as exc:
        out.header(header())

    assert exc.value.code == ErrorCode.STREAM_ID_IN_USE
    assert exc.value.abort is None
    # the open stream carries on
    assert out.chunk(chunk(1)) == 3


def test_reusing_a_closed_stream_id_is_rejected(out: OutgoingStreams) -> None:
    out.header(header())
    out.trailer(trailer())

    with pytest.raises(FrameRejected) as exc:
        out.header(header())

    assert exc.value.code == ErrorCode.STREAM_ID_IN_USE
    assert exc.value.stream_id == "s1"
    assert out.open_ids == []


def test_closed_ids_are_remembered_up_to_a_bound() -> None:
    out = OutgoingStreams(remember_closed=2)
    for sid in ("a", "b", "c"):
        out.header(header(sid))
        out.trailer(trailer(sid))

    out.header(header("a"))  # the oldest one was forgotten
    for sid in ("b", "c"):
        with pytest.raises(FrameRejected):
            out.header(header(sid))


def test_too_many_open_streams() -> None:
    out = OutgoingStreams(max_open=2)
    out.header(header("a"))
    out.header(header("b"))

    with pytest.raises(FrameRejected) as exc:
        out.header(header("c"))
    assert exc.value.code == ErrorCode.TOO_MANY_STREAMS
    assert exc.value.abort is None
    assert out.open_ids == ["a", "b"]

    out.trailer(trailer("a"))
    out.header(header("c"))  # room again
    assert out.open_ids == ["b", "c"]


def test_total_length_exceeded_at_a_chunk(out: OutgoingStreams) -> None:
    out.header(header(total=5))
    out.chunk(chunk(0, "abc"))

    with pytest.raises(FrameRejected) as exc:
        out.chunk(chunk(1, "abc"))

    assert_aborted(exc.value, ErrorCode.SIZE_MISMATCH)
    assert "6" in exc.value.message and "5" in exc.value.message
    assert out.open_ids == []


def test_total_length_counts_utf8_bytes(out: OutgoingStreams) -> None:
    out.header(header(total=3))
    with pytest.raises(FrameRejected) as exc:
        out.chunk(chunk(0, "éé"))  # 2 characters, 4 bytes
    assert exc.value.code == ErrorCode.SIZE_MISMATCH


def test_total_length_exactly_reached_then_trailer(out: OutgoingStreams) -> None:
    out.header(header(total=7))
    out.chunk(chunk(0, "abc"))
    out.chunk(chunk(1, "d€"))  # 1 + 3 bytes
    out.trailer(trailer())
    assert out.open_ids == []


def test_total_length_not_reached_at_trailer(out: OutgoingStreams) -> None:
    out.header(header(total=10))
    out.chunk(chunk(0, "abc"))

    with pytest.raises(FrameRejected) as exc:
        out.trailer(trailer())

    assert_aborted(exc.value, ErrorCode.SIZE_MISMATCH)
    assert "3" in exc.value.message and "10" in exc.value.message
    assert out.open_ids == []


def test_trailer_with_reason_skips_the_size_check(out: OutgoingStreams) -> None:
    out.header(header(total=10))
    out.chunk(chunk(0, "abc"))

    out.trailer(trailer(reason="user cancelled"))

    assert out.open_ids == []


def test_zero_total_length_with_no_chunks(out: OutgoingStreams) -> None:
    out.header(header(total=0))
    out.trailer(trailer())
    assert out.open_ids == []


def test_lone_surrogate_is_bad_utf8(out: OutgoingStreams) -> None:
    out.header(header())
    out.chunk(chunk(0, "ok"))

    with pytest.raises(FrameRejected) as exc:
        out.chunk(chunk(1, "half a pair: \ud83d"))

    assert_aborted(exc.value, ErrorCode.BAD_UTF8)
    assert out.open_ids == []


def test_chunk_over_the_limit_is_too_large(out: OutgoingStreams) -> None:
    assert MAX_CHUNK_BYTES == 15_000
    out.header(header())
    assert out.chunk(chunk(0, "x" * MAX_CHUNK_BYTES)) == MAX_CHUNK_BYTES  # the limit is fine

    with pytest.raises(FrameRejected) as exc:
        out.chunk(chunk(1, "é" * 7_500 + "x"))  # 7501 characters, 15001 bytes

    assert_aborted(exc.value, ErrorCode.CHUNK_TOO_LARGE)
    assert "15001" in exc.value.message


def test_text_chunk_on_a_byte_stream_is_a_bad_frame(out: OutgoingStreams) -> None:
    out.header(header(kind="byte"))

    with pytest.raises(FrameRejected) as exc:
        out.chunk(chunk(0))

    assert_aborted(exc.value, ErrorCode.BAD_FRAME)
    assert out.open_ids == []


def test_frame_rejected_carries_code_and_message() -> None:
    rej = FrameRejected("some_code", "what went wrong", stream_id="x")
    assert str(rej) == "some_code: what went wrong"
    assert (rej.code, rej.message, rej.stream_id, rej.abort) == (
        "some_code",
        "what went wrong",
        "x",
        None,
    )
