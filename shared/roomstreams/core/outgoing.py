"""The gateway's per-connection check of the streams a participant sends, sans-I/O.

Frames that passed schema validation come in; what to append to the room log (or which error
to answer) comes out. A stream-level fault aborts that stream: the caller appends the
returned abnormal trailer so receivers see an abnormal end instead of a hang.
"""

from __future__ import annotations

from dataclasses import dataclass

from ..protocol.frames import ChunkFrame, DeliveredTrailer, ErrorCode, HeaderFrame, TrailerFrame
from ..protocol.limits import MAX_CHUNK_BYTES

__all__ = ["FrameRejected", "OutgoingStreams"]


class FrameRejected(Exception):
    """A frame the gateway refuses. ``abort`` is the abnormal trailer to append, if the fault
    killed an open stream."""

    def __init__(
        self,
        code: str,
        message: str,
        *,
        stream_id: str | None = None,
        abort: DeliveredTrailer | None = None,
        req: int | None = None,
    ) -> None:
        super().__init__(f"{code}: {message}")
        self.code = code
        self.message = message
        self.stream_id = stream_id
        self.abort = abort
        self.req = req


@dataclass(slots=True)
class _Out:
    kind: str
    total: int | None
    next_index: int = 0
    written: int = 0


class OutgoingStreams:
    """Open streams of one connection, with the ids it has used (bounded memory)."""

    # one per connection: slots and plain dicts (an OrderedDict costs twice a dict)
    __slots__ = ("_closed", "_max_open", "_open", "_remember")

    def __init__(self, *, max_open: int = 1024, remember_closed: int = 16_384) -> None:
        self._open: dict[str, _Out] = {}
        #: closed ids, oldest first (a dict keeps insertion order)
        self._closed: dict[str, None] = {}
        self._max_open = max_open
        self._remember = remember_closed

    @property
    def open_ids(self) -> list[str]:
        return list(self._open)

    def _fail(self, sid: str, code: str, message: str) -> FrameRejected:
        self._forget(sid)
        abort = DeliveredTrailer(stream_id=sid, reason=message, code=code)
        return FrameRejected(code, message, stream_id=sid, abort=abort)

    def abort(self, sid: str, code: str, message: str) -> FrameRejected:
        """A fault found outside the checks here (e.g. undecodable content): end ``sid``."""
        if sid in self._open:
            return self._fail(sid, code, message)
        return FrameRejected(code, message, stream_id=sid)

    def _forget(self, sid: str) -> None:
        if self._open.pop(sid, None) is not None:
            self._closed[sid] = None
            if len(self._closed) > self._remember:
                del self._closed[next(iter(self._closed))]

    def header(self, h: HeaderFrame) -> None:
        sid = h.stream_id
        if sid in self._open or sid in self._closed:
            raise FrameRejected(
                ErrorCode.STREAM_ID_IN_USE, f"stream id {sid!r} was already used", stream_id=sid
            )
        if len(self._open) >= self._max_open:
            raise FrameRejected(
                ErrorCode.TOO_MANY_STREAMS,
                f"at most {self._max_open} streams may be open at once",
                stream_id=sid,
            )
        self._open[sid] = _Out(kind=h.kind, total=h.total_length)

    def chunk(self, c: ChunkFrame) -> int:
        """Check a text chunk; returns its size in UTF-8 bytes."""
        sid = c.stream_id
        st = self._chunk_of(sid, "text", c.chunk_index)
        try:
            n = len(c.content.encode("utf-8"))
        except UnicodeEncodeError:
            raise self._fail(sid, ErrorCode.BAD_UTF8, "chunk content is not valid UTF-8") from None
        return self._count(sid, st, n)

    def byte_chunk(self, stream_id: str, chunk_index: int, size: int) -> None:
        """Check a binary byte chunk of ``size`` payload bytes."""
        st = self._chunk_of(stream_id, "byte", chunk_index)
        self._count(stream_id, st, size)

    def _chunk_of(self, sid: str, kind: str, chunk_index: int) -> _Out:
        st = self._open.get(sid)
        if st is None:
            raise FrameRejected(
                ErrorCode.UNKNOWN_STREAM, f"no open stream with id {sid!r}", stream_id=sid
            )
        if st.kind != kind:
            raise self._fail(
                sid, ErrorCode.BAD_FRAME, f"a {kind} chunk was sent on a {st.kind} stream"
            )
        if chunk_index != st.next_index:
            what = "repeats" if chunk_index < st.next_index else "skips"
            raise self._fail(
                sid,
                ErrorCode.CHUNK_OUT_OF_ORDER,
                f"chunk_index {chunk_index} {what} (expected {st.next_index})",
            )
        return st

    def _count(self, sid: str, st: _Out, n: int) -> int:
        if n > MAX_CHUNK_BYTES:
            raise self._fail(
                sid, ErrorCode.CHUNK_TOO_LARGE, f"chunk of {n} bytes exceeds {MAX_CHUNK_BYTES}"
            )
        st.next_index += 1
        st.written += n
        if st.total is not None and st.written > st.total:
            raise self._fail(
                sid,
                ErrorCode.SIZE_MISMATCH,
                f"{st.written} bytes written, more than the announced total of {st.total}",
            )
        return n

    def trailer(self, t: TrailerFrame) -> None:
        sid = t.stream_id
        st = self._open.get(sid)
        if st is None:
            raise FrameRejected(
                ErrorCode.UNKNOWN_STREAM, f"no open stream with id {sid!r}", stream_id=sid
            )
        if st.total is not None and st.written != st.total and not t.reason:
            raise self._fail(
                sid,
                ErrorCode.SIZE_MISMATCH,
                f"stream closed after {st.written} bytes, announced total was {st.total}",
            )
        self._forget(sid)
