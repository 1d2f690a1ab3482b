"""Byte streams: info, reader and writer, and the sending side of ``send_file``,
``send_bytes`` and ``stream_bytes``.

Chunks travel as binary WebSocket frames (:mod:`roomstreams.protocol.binary`), never as
text. Memory is bounded end to end: the sender reads a file a block at a time and the
path paces it (see "Pacing" in docs/architecture.md); a reader buffers at most
``max_buffer`` unread bytes (``Room(reader_buffer=...)``) before its stream is ended as
``slow_consumer``. Only ``read_all()`` holds a whole stream.
"""

from __future__ import annotations

import asyncio
import mimetypes
import os
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, BinaryIO

from ..exceptions import StreamAborted, UnsafeFileName
from ..protocol.binary import encode_byte_chunk
from ..protocol.filenames import file_name_problem
from ..protocol.frames import DeliveredHeader, HeaderFrame
from ..protocol.limits import MAX_CHUNK_BYTES
from .streams import StreamReaderBase, StreamWriterBase

if TYPE_CHECKING:
    from .connection import Connection

__all__ = ["ByteStreamInfo", "ByteStreamReader", "ByteStreamWriter"]

DEFAULT_MIME_TYPE = "application/octet-stream"
#: Bytes read from a file, or written to one, per thread hop.
_FILE_BLOCK = 255_000  # a multiple of the 15000-byte chunk: no short chunk per block


@dataclass(slots=True)
class ByteStreamInfo:
    """The properties of a byte stream (LiveKit's ``ByteStreamInfo``)."""

    stream_id: str
    topic: str
    timestamp: int
    size: int | None = None
    attributes: dict[str, str] = field(default_factory=dict)
    mime_type: str = DEFAULT_MIME_TYPE
    name: str = ""
    destination_identities: list[str] = field(default_factory=list)

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

    @classmethod
    def from_header(cls, h: DeliveredHeader) -> ByteStreamInfo:
        return cls(
            stream_id=h.stream_id,
            topic=h.topic,
            timestamp=h.timestamp,
            size=h.total_length,
            attributes=dict(h.attributes),
            mime_type=h.mime_type,
            name=h.name or "",
            destination_identities=list(h.destination_identities),
        )


class ByteStreamReader(StreamReaderBase[ByteStreamInfo, bytes]):
    """An incoming byte stream: ``async for chunk in reader`` (``bytes``),
    ``await reader.read_all()`` or ``await reader.write_to_file(directory)``.

    The iteration ends when the sender closes the stream, or raises
    :class:`~roomstreams.StreamAborted` when it ended abnormally.
    """

    _unit = "bytes"

    def __init__(
        self, info: ByteStreamInfo, sender: str, *, max_buffer: int, max_payload: int | None = None
    ) -> None:
        super().__init__(info, sender, max_buffer=max_buffer, max_payload=max_payload)
        self._received = 0
        self._complete = False

    @property
    def bytes_received(self) -> int:
        """Bytes that have arrived so far (read or not)."""
        return self._received

    @property
    def progress(self) -> float | None:
        """Bytes received / announced size, in [0, 1]; None while the size is unknown;
        1.0 once the stream ended normally."""
        if self._complete:
            return 1.0
        size = self.info.size
        if size is None:
            return None
        if size == 0:
            return 0.0
        return min(self._received / size, 1.0)

    def _feed(self, content: bytes) -> None:
        if not self._ended:
            self._received += len(content)
        super()._feed(content)

    def _end(
        self, error: StreamAborted | None = None, attributes: dict[str, str] | None = None
    ) -> None:
        if not self._ended and error is None:
            self._complete = True
        super()._end(error, attributes)

    async def read_all(self) -> bytes:
        """The whole content, once the sender closed the stream (held in memory)."""
        return b"".join([chunk async for chunk in self])

    async def write_to_file(
        self, directory: str | os.PathLike[str], name: str | None = None
    ) -> Path:
        """Write the stream to ``directory`` / its name (or ``name``) as it arrives, and
        return the path. An existing file is never overwritten: `` (1)``, `` (2)``, ... is
        added before the extension.

        Raises :class:`~roomstreams.UnsafeFileName` before reading anything when the name is
        not a plain file name (path separator, ``..``, absolute path). If the stream ends
        abnormally, the partial file is removed and :class:`~roomstreams.StreamAborted`
        raised."""
        fname = self.info.name if name is None else name
        problem = file_name_problem(fname)
        if problem is not None:
            raise UnsafeFileName(problem, stream_id=self.info.stream_id)
        f, path = await asyncio.to_thread(_create_unique, Path(directory), fname)
        try:
            buf = bytearray()
            async for chunk in self:
                buf += chunk
                if len(buf) >= _FILE_BLOCK:
                    await asyncio.to_thread(f.write, bytes(buf))
                    buf.clear()
            if buf:
                await asyncio.to_thread(f.write, bytes(buf))
            await asyncio.to_thread(f.close)
        except BaseException:
            f.close()
            path.unlink(missing_ok=True)
            raise
        return path


def _create_unique(directory: Path, name: str) -> tuple[BinaryIO, Path]:
    base = Path(name)
    stem, suffix = base.stem, base.suffix
    for n in range(10_000):
        path = directory / (name if n == 0 else f"{stem} ({n}){suffix}")
        try:
            return open(path, "xb"), path  # closed by the caller
        except FileExistsError:
            continue
    raise FileExistsError(f"no free file name for {name!r} in {directory}")


class ByteStreamWriter(StreamWriterBase[ByteStreamInfo]):
    """An outgoing byte stream. Close it (``await writer.close()`` or ``async with``):
    receivers' readers end only when it is closed."""

    async def write(self, data: bytes | bytearray | memoryview) -> None:
        """Send ``data`` (in binary chunks of at most 15000 bytes). Waits while the path is
        full."""
        self._check()
        async with self._lock:
            self._check()
            sid = self.stream_id
            view = memoryview(data).cast("B")
            for start in range(0, len(view), MAX_CHUNK_BYTES):
                frame = encode_byte_chunk(sid, self._index, view[start : start + MAX_CHUNK_BYTES])
                self._index += 1
                await self._send(frame)


# -- the sending side (LocalParticipant's methods call these) ------------------------------


async def open_byte_stream(
    conn: Connection,
    *,
    name: str,
    topic: str,
    mime_type: str = DEFAULT_MIME_TYPE,
    total_size: int | None = None,
    destination_identities: list[str] | None = None,
    attributes: dict[str, str] | None = None,
    stream_id: str | None = None,
) -> ByteStreamWriter:
    conn.ensure_connected()
    info = ByteStreamInfo(
        stream_id=stream_id or str(uuid.uuid4()),
        topic=topic,
        timestamp=int(time.time() * 1000),
        size=total_size,
        attributes=dict(attributes or {}),
        mime_type=mime_type,
        name=name,
        destination_identities=list(destination_identities or []),
    )
    problem = file_name_problem(name)
    if problem is not None:
        raise UnsafeFileName(problem, stream_id=info.stream_id)
    header = HeaderFrame(
        stream_id=info.stream_id,
        topic=topic,
        timestamp=info.timestamp,
        kind="byte",
        mime_type=mime_type,
        total_length=total_size,
        attributes=info.attributes,
        destination_identities=info.destination_identities,
        name=name,
    )
    writer = ByteStreamWriter(conn, info)
    await conn.open_writer(writer, header)
    return writer


async def send_file(
    conn: Connection,
    file_path: str | os.PathLike[str],
    *,
    topic: str,
    name: str | None = None,
    mime_type: str | None = None,
    destination_identities: list[str] | None = None,
    attributes: dict[str, str] | None = None,
    stream_id: str | None = None,
) -> ByteStreamInfo:
    path = Path(file_path)
    f = await asyncio.to_thread(open, path, "rb")
    try:
        size = os.fstat(f.fileno()).st_size
        fname = name if name is not None else path.name
        mime = mime_type or mimetypes.guess_type(fname)[0] or DEFAULT_MIME_TYPE
        writer = await open_byte_stream(
            conn,
            name=fname,
            topic=topic,
            mime_type=mime,
            total_size=size,
            destination_identities=destination_identities,
            attributes=attributes,
            stream_id=stream_id,
        )
        async with writer:
            remaining = size
            while remaining > 0:
                block = await asyncio.to_thread(f.read, min(_FILE_BLOCK, remaining))
                if not block:
                    break  # the file shrank: close() reports the size mismatch
                remaining -= len(block)
                await writer.write(block)
    finally:
        f.close()
    return writer.info
