"""Server-to-client WebSocket frames, built once for all the sockets they go to, and the
writes that take them there (:class:`Flushes`).

A gateway sends the same frame (a chunk, a header, a data packet) to every recipient of an
inbox entry. A server's frames are not masked and the gateway negotiates no extension, so
the bytes on the wire are the same for every socket: websockets builds them here once per
payload (:class:`websockets.frames.Frame`), not once per recipient in each connection's
sans-I/O protocol. Frames are remembered by the identity of their payload (the same bytes
object is pushed to every recipient), up to a bound in bytes."""

from __future__ import annotations

import asyncio
import logging
from typing import Protocol

from websockets.frames import Frame, Opcode

__all__ = ["WIRE", "Flushes", "WireFrames"]

logger = logging.getLogger("roomstreams.gateway")


class WireFrames:
    """payload -> its frame on the wire (JSON payloads, which start with ``{``, go as text
    frames; the rest as binary)."""

    __slots__ = ("_bytes", "_frames", "limit_bytes")

    def __init__(self, limit_bytes: int = 4 << 20) -> None:
        self.limit_bytes = limit_bytes
        self._frames: dict[int, tuple[bytes, bytes]] = {}
        self._bytes = 0

    def frame(self, payload: bytes) -> bytes:
        hit = self._frames.get(id(payload))
        if hit is not None and hit[0] is payload:
            return hit[1]
        opcode = Opcode.TEXT if payload[:1] == b"{" else Opcode.BINARY
        wire = Frame(opcode, payload).serialize(mask=False, extensions=[])
        if self._bytes + len(wire) > self.limit_bytes:
            self._frames.clear()  # the recent ones are built again if they come again
            self._bytes = 0
        # the payload is kept with its frame: its id cannot be reused while it is here
        self._frames[id(payload)] = (payload, wire)
        self._bytes += len(wire) + len(payload)
        return wire


#: this process's frames
WIRE = WireFrames()


class _Flushable(Protocol):
    def flush(self) -> None: ...


class Flushes:
    """The sockets that had frames queued in this turn of the event loop: each is written
    once, when the turn is over (one callback for all of them, not one per socket), or at
    once when the inbox loop has dispatched a read (:meth:`now`): then the writes leave
    before its next read goes out, without a turn of the loop in between (W1, per hop:
    the inbox read to the socket write)."""

    __slots__ = ("_due", "_handle")

    def __init__(self) -> None:
        self._due: list[_Flushable] = []
        self._handle: asyncio.Handle | None = None

    def add(self, conn: _Flushable) -> None:
        """``conn`` has frames queued (called once per socket until it is flushed)."""
        self._due.append(conn)
        if self._handle is None:
            self._handle = asyncio.get_running_loop().call_soon(self.now)

    def now(self) -> None:
        """Write every socket added since the last flush."""
        if self._handle is not None:
            self._handle.cancel()  # harmless when it is the one running
            self._handle = None
        due, self._due = self._due, []
        for conn in due:
            try:
                conn.flush()
            except Exception:  # one socket's failure must not keep the others' frames
                logger.exception("writing a socket's queued frames failed")
