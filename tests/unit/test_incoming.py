"""The client's assembler of incoming streams (``Incoming``)."""

from __future__ import annotations

import pytest

from roomstreams.core.incoming import Event, Incoming, StreamChunk, StreamEnded, StreamOpened
from roomstreams.protocol.frames import ChunkFrame, DeliveredHeader, DeliveredTrailer, ErrorCode


def header(sid: str = "s1", attributes: dict[str, str] | None = None) -> DeliveredHeader:
    return DeliveredHeader(
        stream_id=sid, topic="chat", timestamp=0, attributes=attributes or {}, sender="alice"
    )


def chunk(index: int, content: str = "x", sid: str = "s1") -> ChunkFrame:
    return ChunkFrame(stream_id=sid, chunk_index=index, content=content)


def trailer(
    sid: str = "s1",
    *,
    reason: str = "",
    code: str = "",
    attributes: dict[str, str] | None = None,
) -> DeliveredTrailer:
    return DeliveredTrailer(stream_id=sid, reason=reason, code=code, attributes=attributes or {})


def the_end(events: list[Event]) -> StreamEnded:
    """The single event of ``events``, which must be a StreamEnded."""
    assert len(events) == 1
    [ended] = events
    assert isinstance(ended, StreamEnded)
    return ended


@pytest.fixture
def inc() -> Incoming:
    return Incoming()


def test_open_chunks_end(inc: Incoming) -> None:
    h = header(attributes={"a": "1"})
    assert inc.header(h) == [StreamOpened(h)]
    assert inc.open_ids == ["s1"]
    assert inc.chunk(chunk(0, "hel")) == [StreamChunk("s1", "hel")]
    assert inc.chunk(chunk(1, "lo")) == [StreamChunk("s1", "lo")]

    ended = the_end(inc.trailer(trailer()))

    assert ended == StreamEnded("s1", {"a": "1"})
    assert not ended.abnormal
    assert inc.open_ids == []


def test_interleaved_streams_are_independent(inc: Incoming) -> None:
    inc.header(header("a"))
    inc.header(header("b"))
    assert inc.chunk(chunk(0, "1", "a")) == [StreamChunk("a", "1")]
    assert inc.chunk(chunk(0, "2", "b")) == [StreamChunk("b", "2")]
    assert inc.chunk(chunk(1, "3", "a")) == [StreamChunk("a", "3")]
    assert the_end(inc.trailer(trailer("b"))).stream_id == "b"
    assert inc.open_ids == ["a"]


def test_duplicate_header_is_ignored(inc: Incoming) -> None:
    inc.header(header())
    inc.chunk(chunk(0))
    assert inc.header(header()) == []
    assert inc.chunk(chunk(1)) == [StreamChunk("s1", "x")]  # numbering not reset


@pytest.mark.parametrize(("sent", "bad"), [(0, 1), (2, 1), (2, 5), (1, 0)])
def test_out_of_order_chunk_ends_the_stream_as_lagged(inc: Incoming, sent: int, bad: int) -> None:
    inc.header(header(attributes={"k": "v"}))
    for i in range(sent):
        inc.chunk(chunk(i))

    ended = the_end(inc.chunk(chunk(bad)))

    assert ended.stream_id == "s1"
    assert ended.code == ErrorCode.LAGGED
    assert ended.abnormal
    assert f"chunk {bad}" in ended.reason and f"expected {sent}" in ended.reason
    assert ended.attributes == {"k": "v"}
    assert inc.open_ids == []
    # whatever comes later for that stream is dropped
    assert inc.chunk(chunk(sent)) == []
    assert inc.trailer(trailer()) == []


def test_chunk_or_trailer_of_unknown_stream_is_dropped(inc: Incoming) -> None:
    assert inc.chunk(chunk(0, sid="nope")) == []
    assert inc.trailer(trailer("nope")) == []


def test_trailer_attributes_merge_over_header_attributes(inc: Incoming) -> None:
    inc.header(header(attributes={"keep": "h", "both": "from-header"}))

    ended = the_end(inc.trailer(trailer(attributes={"both": "from-trailer", "new": "t"})))

    assert ended.attributes == {"keep": "h", "both": "from-trailer", "new": "t"}


def test_header_attributes_are_not_mutated_by_the_merge(inc: Incoming) -> None:
    h = header(attributes={"both": "from-header"})
    inc.header(h)
    inc.trailer(trailer(attributes={"both": "from-trailer"}))
    assert h.attributes == {"both": "from-header"}


def test_trailer_with_reason_is_abnormal_sender_reason(inc: Incoming) -> None:
    inc.header(header())

    ended = the_end(inc.trailer(trailer(reason="user cancelled")))

    assert ended.abnormal
    assert ended.code == ErrorCode.SENDER_REASON
    assert ended.reason == "user cancelled"


def test_trailer_code_from_the_system_is_kept(inc: Incoming) -> None:
    inc.header(header())

    ended = the_end(inc.trailer(trailer(code=ErrorCode.SENDER_LEFT, reason="sender 'alice' left")))

    assert ended.code == ErrorCode.SENDER_LEFT
    assert ended.reason == "sender 'alice' left"
    assert ended.abnormal


def test_abort_all_ends_every_open_stream(inc: Incoming) -> None:
    inc.header(header("a", attributes={"n": "a"}))
    inc.header(header("b", attributes={"n": "b"}))
    inc.header(header("c"))
    inc.trailer(trailer("c"))

    events = inc.abort_all(ErrorCode.CONNECTION_LOST, "socket closed")

    assert events == [
        StreamEnded("a", {"n": "a"}, ErrorCode.CONNECTION_LOST, "socket closed"),
        StreamEnded("b", {"n": "b"}, ErrorCode.CONNECTION_LOST, "socket closed"),
    ]
    assert all(e.abnormal for e in events if isinstance(e, StreamEnded))
    assert inc.open_ids == []
    assert inc.abort_all(ErrorCode.CONNECTION_LOST, "again") == []


def test_stream_ended_abnormal_flag() -> None:
    assert not StreamEnded("s", {}).abnormal
    assert StreamEnded("s", {}, code="lagged").abnormal
    assert StreamEnded("s", {}, reason="why").abnormal
