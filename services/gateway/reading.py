"""Reading a socket in bounded slices: websockets' connection, fed at most
:data:`READ_SLICE` bytes per turn of the event loop.

websockets parses everything one read of the socket returns before it gives the loop back
(the transport reads up to 256 KiB at a time), and queues every frame it found, whatever its
``max_queue``: the queue's limit only stops the *next* read. A client that writes tiny frames
faster than the gateway reads them (a flooder being throttled) fills the kernel's buffers
with megabytes of them; each read then hands websockets some 18,000 frames, a stall of the
whole gateway for tens of milliseconds (every other connection waits) and a queue of
thousands of frames in memory.

:class:`SlicedConnection` keeps what a read returned beyond one slice in a backlog, stops
reading the socket while there is one, and feeds the backlog a slice per loop turn, and not
at all while websockets' frame queue is over its high-water mark (the queue drains first:
the limit now bounds what is parsed, not only what is read). Reads of one slice or less
(every interactive message) go straight through, as before.
"""

from __future__ import annotations

import asyncio

from websockets.asyncio.server import ServerConnection

__all__ = ["READ_SLICE", "SlicedConnection"]

#: bytes handed to websockets' parser per loop turn (about 1,000 of the smallest frames)
READ_SLICE = 16 * 1024


class SlicedConnection(ServerConnection):
    """A ``ServerConnection`` whose parsing is bounded per loop turn (module docstring)."""

    _backlog: bytes = b""
    _offset = 0
    _feed_scheduled = False

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        super().connection_made(transport)
        # the frame queue resumes reading when it drains: only once the backlog is parsed
        self.recv_messages.resume = self._queue_drained

    def data_received(self, data: bytes) -> None:
        if not self._backlog and len(data) <= READ_SLICE:
            super().data_received(data)
            return
        self._backlog = self._backlog[self._offset :] + data if self._backlog else data
        self._offset = 0
        self.transport.pause_reading()
        self._feed()

    def _feed(self) -> None:
        """One slice of the backlog to websockets; the next one on the next loop turn."""
        self._feed_scheduled = False
        if self.recv_messages.paused:
            return  # the frame queue is full: _queue_drained goes on
        end = self._offset + READ_SLICE
        chunk = self._backlog[self._offset : end]
        self._offset = end
        if end >= len(self._backlog):
            self._backlog, self._offset = b"", 0
        super().data_received(chunk)
        if self._backlog:
            self._feed_scheduled = True
            self.loop.call_soon(self._feed)
        elif not self.recv_messages.paused:
            self.transport.resume_reading()

    def _queue_drained(self) -> None:
        if self._backlog:
            if not self._feed_scheduled:
                self._feed_scheduled = True
                self.loop.call_soon(self._feed)
        else:
            self.transport.resume_reading()

    def _parse_the_rest(self) -> None:
        """The stream ends: what it had sent is parsed at once, as websockets would."""
        if self._backlog:
            rest, self._backlog, self._offset = self._backlog[self._offset :], b"", 0
            super().data_received(rest)

    def eof_received(self) -> None:
        self._parse_the_rest()
        super().eof_received()

    def connection_lost(self, exc: Exception | None) -> None:
        self._parse_the_rest()
        super().connection_lost(exc)
