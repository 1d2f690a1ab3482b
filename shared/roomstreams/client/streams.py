"""Stream info, readers and writers (the objects handlers and senders hold)."""

from __future__ import annotations

import asyncio
import enum
from collections import deque
from collections.abc import AsyncIterator, Generator
from dataclasses import dataclass, field
from types import TracebackType
from typing import TYPE_CHECKING, Generic, Protocol, Self, TypeVar

from ..exceptions import (
    ServerError,
    StreamAborted,
    StreamClosed,
    StreamError,
    StreamSizeMismatch,
)
from ..protocol.chunking import split_utf8, utf8_len
from ..protocol.frames import ChunkFrame, DeliveredHeader, ErrorCode, TrailerFrame

if TYPE_CHECKING:
    from .connection import Connection

__all__ = [
    "StreamReaderBase",
    "StreamState",
    "StreamWriterBase",
    "TextStreamInfo",
    "TextStreamReader",
    "TextStreamWriter",
]

#: Text (characters) or bytes a reader buffers unread before its stream is ended for a
#: consumer that does not read.
DEFAULT_READER_BUFFER = 64 * 1024 * 1024


class _Info(Protocol):
    stream_id: str
    attributes: dict[str, str]


InfoT = TypeVar("InfoT", bound=_Info)
ChunkT = TypeVar("ChunkT", str, bytes)


@dataclass(slots=True)
class TextStreamInfo:
    """The properties of a text stream (the spec's table), plus LiveKit's text extras."""

    stream_id: str
    topic: str
    timestamp: int
    size: int | None = None
    attributes: dict[str, str] = field(default_factory=dict)
    mime_type: str = "text/plain"
    destination_identities: list[str] = field(default_factory=list)
    operation_type: str = "create"
    version: int = 0
    reply_to_id: str | None = None
    attached_stream_ids: list[str] = field(default_factory=list)
    generated: bool = False

    @property
    def id(self) -> str:
        """Same as :attr:`stream_id` (the spec uses both names)."""
        return self.stream_id

    def __getitem__(self, key: str) -> object:
        """``info["name"]``: LiveKit's first data-stream API gave infos as dicts."""
        try:
            return getattr(self, key)
        except AttributeError:
            raise KeyError(key) from None

    @property
    def attachments(self) -> list[str]:
        """Same as :attr:`attached_stream_ids` (LiveKit's Python name)."""
        return self.attached_stream_ids

    @classmethod
    def from_header(cls, h: DeliveredHeader) -> TextStreamInfo:
        return cls(
            stream_id=h.stream_id,
            topic=h.topic,
            timestamp=h.timestamp,
            size=h.total_length,
            attributes=dict(h.attributes),
            mime_type=h.mime_type,
            destination_identities=list(h.destination_identities),
            operation_type=h.operation_type,
            version=h.version,
            reply_to_id=h.reply_to_id,
            attached_stream_ids=list(h.attached_stream_ids),
            generated=h.generated,
        )


class StreamState(enum.Enum):
    OPEN = "open"
    CLOSING = "closing"
    CLOSED = "closed"
    FAILED = "failed"


_END = object()


class _Done:
    """An already-completed awaitable (``reader.close()`` works awaited or not)."""

    def __await__(self) -> Generator[None, None, None]:
        return
        yield  # pragma: no cover


class StreamReaderBase(Generic[InfoT, ChunkT]):
    """What text and byte readers share: a buffer of chunks (bounded: a consumer that lets
    more than ``max_buffer`` pile up unread has its stream ended as ``slow_consumer``), the
    end of the stream, ``async for``."""

    _unit = "characters"

    def __init__(
        self, info: InfoT, sender: str, *, max_buffer: int, max_payload: int | None = None
    ) -> None:
        self.info = info
        self.participant_identity = sender
        self._items: deque[object] = deque()
        self._wakeup = asyncio.Event()
        self._buffered = 0
        self._max_buffer = max_buffer
        #: LiveKit's ``DataStreamOptions.max_payload_byte_length``: bytes a stream may carry
        self._max_payload = max_payload
        self._payload = 0
        self._error: StreamAborted | None = None
        self._ended = False
        self._iterating = False

    @property
    def closed(self) -> bool:
        return self._ended

    def close(self) -> _Done:
        """Stop reading: what is buffered is dropped, the rest of the stream is ignored and
        iterating ends. ``await reader.aclose()`` (or ``await reader.close()``) too."""
        if not self._ended:
            self._ended = True
            self._items.clear()
            self._buffered = 0
            self._items.append(_END)
            self._wakeup.set()
        return _Done()

    async def aclose(self) -> None:
        self.close()

    # fed by the room (same event loop)
    def _feed(self, content: ChunkT) -> None:
        if self._ended or not content:  # an empty chunk is not yielded (as in LiveKit)
            return
        if self._max_payload is not None:
            self._payload += len(content) if isinstance(content, bytes) else utf8_len(content)
            if self._payload > self._max_payload:
                self._end(
                    StreamAborted(
                        f"stream exceeds the maximum size of {self._max_payload} bytes",
                        code=ErrorCode.PAYLOAD_TOO_LARGE,
                        stream_id=self.info.stream_id,
                        sender=self.participant_identity,
                    )
                )
                self._items.clear()
                self._items.append(_END)
                return
        self._buffered += len(content)
        if self._buffered > self._max_buffer:
            self._end(
                StreamAborted(
                    f"reader buffered more than {self._max_buffer} {self._unit} unread",
                    code=ErrorCode.SLOW_CONSUMER,
                    stream_id=self.info.stream_id,
                    sender=self.participant_identity,
                )
            )
            return
        self._items.append(content)
        self._wakeup.set()

    def _end(
        self, error: StreamAborted | None = None, attributes: dict[str, str] | None = None
    ) -> None:
        if self._ended:
            return
        self._ended = True
        if attributes is not None:
            self.info.attributes = attributes
        self._error = error
        # what arrived before an abnormal end is still yielded, then the error is raised;
        # only an overflowing buffer is dropped (that is the point of ending it)
        if error is not None and error.code == ErrorCode.SLOW_CONSUMER:
            self._items.clear()
        self._items.append(_END)
        self._wakeup.set()

    def __aiter__(self) -> AsyncIterator[ChunkT]:
        return self

    async def __anext__(self) -> ChunkT:
        while not self._items:
            self._wakeup.clear()
            await self._wakeup.wait()
        item = self._items[0]
        if item is _END:
            if self._error is not None:
                raise self._error
            raise StopAsyncIteration
        self._items.popleft()
        chunk: ChunkT = item  # type: ignore[assignment]
        self._buffered -= len(chunk)
        return chunk


class TextStreamReader(StreamReaderBase[TextStreamInfo, str]):
    """An incoming text stream: ``async for chunk in reader`` or ``await reader.read_all()``.

    Iterating yields the chunks as the sender's writes were chunked; the iteration ends when
    the sender closes the stream, or raises :class:`~roomstreams.StreamAborted` when the
    stream ended abnormally (sender left, close reason, lag, connection lost).
    """

    async def read_all(self) -> str:
        """The whole text, once the sender closed the stream."""
        return "".join([chunk async for chunk in self])


class StreamWriterBase(Generic[InfoT]):
    """What text and byte writers share: the state (open, closing, closed, failed), the
    server's verdicts, ``close`` (waits for the router's ``closed``) and ``async with``
    (closes abnormally when the body raised)."""

    def __init__(self, conn: Connection, info: InfoT) -> None:
        self.info = info
        self._conn = conn
        self._send = conn.send
        self._state = StreamState.OPEN
        self._lock = asyncio.Lock()
        self._index = 0
        self._error: StreamError | None = None
        self._closed = asyncio.get_running_loop().create_future()

    @property
    def stream_id(self) -> str:
        return self.info.stream_id

    @property
    def state(self) -> StreamState:
        return self._state

    def _fail(self, error: ServerError | StreamError) -> None:
        """The server refused something about this stream."""
        if isinstance(error, ServerError):
            cls = StreamSizeMismatch if error.code == ErrorCode.SIZE_MISMATCH else StreamAborted
            err: StreamError = (
                cls(error.message, stream_id=self.stream_id)
                if cls is StreamSizeMismatch
                else StreamAborted(error.message, code=error.code, stream_id=self.stream_id)
            )
        else:
            err = error
        self._error = err
        if self._state is not StreamState.CLOSED:
            self._state = StreamState.FAILED
        if not self._closed.done():
            self._closed.set_exception(err)
            self._closed.exception()  # mark retrieved: close() may never be awaited

    def _routed(self) -> None:
        if not self._closed.done():
            self._closed.set_result(None)

    def _check(self) -> None:
        if self._error is not None:
            raise self._error
        if self._state is not StreamState.OPEN:
            raise StreamClosed("the stream is closed; no more writes", stream_id=self.stream_id)

    async def close(self, reason: str = "", *, attributes: dict[str, str] | None = None) -> None:
        """Close the stream; a non-empty ``reason`` ends it abnormally at the receivers.
        Returns once the router has routed the end (raises if the server refused the
        stream). Closing twice raises :class:`~roomstreams.StreamClosed` (a
        ``RuntimeError``, as in LiveKit)."""
        if self._state in (StreamState.CLOSING, StreamState.CLOSED):
            raise StreamClosed("the stream is already closed", stream_id=self.stream_id)
        if self._state is StreamState.FAILED:
            assert self._error is not None
            raise self._error
        async with self._lock:
            self._state = StreamState.CLOSING
            trailer = TrailerFrame(
                stream_id=self.stream_id, reason=reason, attributes=attributes or {}
            )
            try:
                await self._send(trailer.model_dump_json())
                await self._closed
            finally:
                if self._state is StreamState.CLOSING:
                    self._state = StreamState.CLOSED
                self._conn.forget_writer(self.stream_id)

    aclose = close

    async def __aenter__(self) -> Self:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        if exc is None:
            if self._state in (StreamState.OPEN, StreamState.FAILED):  # not closed in the body
                await self.close()
        elif self._state is StreamState.OPEN:
            try:
                await asyncio.shield(self.close(reason=f"writer failed: {exc!r}"[:500]))
            except Exception:
                pass


class TextStreamWriter(StreamWriterBase[TextStreamInfo]):
    """An outgoing text stream. Close it (``await writer.close()`` or ``async with``):
    receivers' readers end only when it is closed."""

    async def write(self, text: str) -> None:
        """Send ``text`` (chunked at 15000 UTF-8 bytes). Waits while the path is full."""
        self._check()
        async with self._lock:
            self._check()
            sid = self.stream_id
            for piece in split_utf8(text):
                frame = ChunkFrame(stream_id=sid, chunk_index=self._index, content=piece)
                self._index += 1
                await self._send(frame.model_dump_json())
