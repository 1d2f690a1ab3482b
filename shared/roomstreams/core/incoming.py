"""The client's assembler for incoming streams, sans-I/O: delivered frames in, events out.

It checks what the server promises (a chunk belongs to an open stream, chunk indexes count
from 0 without gaps) so that a broken promise ends that stream abnormally instead of
corrupting it, and merges trailer attributes over header attributes (trailer wins).
"""

from __future__ import annotations

from dataclasses import dataclass

from ..protocol.binary import ByteChunk
from ..protocol.frames import ChunkFrame, DeliveredHeader, DeliveredTrailer, ErrorCode

__all__ = ["Incoming", "StreamChunk", "StreamEnded", "StreamOpened"]


@dataclass(frozen=True, slots=True)
class StreamOpened:
    header: DeliveredHeader


@dataclass(frozen=True, slots=True)
class StreamChunk:
    stream_id: str
    #: ``str`` for a text stream, ``bytes`` for a byte stream
    content: str | bytes


@dataclass(frozen=True, slots=True)
class StreamEnded:
    stream_id: str
    attributes: dict[str, str]
    #: empty for a normal end
    code: str = ""
    reason: str = ""

    @property
    def abnormal(self) -> bool:
        return bool(self.code or self.reason)


Event = StreamOpened | StreamChunk | StreamEnded


@dataclass(slots=True)
class _In:
    header: DeliveredHeader
    next_index: int = 0


class Incoming:
    def __init__(self) -> None:
        self._open: dict[str, _In] = {}

    @property
    def open_ids(self) -> list[str]:
        return list(self._open)

    def header(self, h: DeliveredHeader) -> list[Event]:
        if h.stream_id in self._open:
            return []
        self._open[h.stream_id] = _In(h)
        return [StreamOpened(h)]

    def chunk(self, c: ChunkFrame) -> list[Event]:
        return self._chunk(c.stream_id, c.chunk_index, c.content, "text")

    def byte_chunk(self, c: ByteChunk) -> list[Event]:
        return self._chunk(c.stream_id, c.chunk_index, c.payload, "byte")

    def _chunk(self, sid: str, index: int, content: str | bytes, kind: str) -> list[Event]:
        st = self._open.get(sid)
        if st is None:
            return []  # a stream ended here already (e.g. lag): late chunks are dropped
        if st.header.kind != kind:
            del self._open[sid]
            reason = f"a {kind} chunk arrived on a {st.header.kind} stream"
            return [StreamEnded(sid, dict(st.header.attributes), ErrorCode.BAD_FRAME, reason)]
        if index != st.next_index:
            del self._open[sid]
            reason = f"chunk {index} arrived, expected {st.next_index}"
            return [StreamEnded(sid, dict(st.header.attributes), ErrorCode.LAGGED, reason)]
        st.next_index += 1
        return [StreamChunk(sid, content)]

    def trailer(self, t: DeliveredTrailer) -> list[Event]:
        st = self._open.pop(t.stream_id, None)
        if st is None:
            return []
        attributes = {**st.header.attributes, **t.attributes}
        code = t.code or (ErrorCode.SENDER_REASON if t.reason else "")
        return [StreamEnded(t.stream_id, attributes, code, t.reason)]

    def abort_all(self, code: str, reason: str) -> list[Event]:
        events: list[Event] = [
            StreamEnded(sid, dict(st.header.attributes), code, reason)
            for sid, st in self._open.items()
        ]
        self._open.clear()
        return events
