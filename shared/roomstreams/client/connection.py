"""The client's connection seam: one WebSocket to a gateway, and the machinery every part of
the client shares (sending, the state check, writers waiting for the server's verdicts, requests
waiting for their acknowledgement).

The client reads as a tree: :class:`~roomstreams.Room` owns a :class:`Connection` and hands it
to the participant, the writers and the data-packet and RPC helpers, which import this module
and never the room. The room keeps the semantics (the connection life cycle, what incoming
frames mean, events); this module only moves frames::

    room.py ──> participant.py ──> streams.py, bytestreams.py, data.py, rpc.py ──> connection.py
       └───────────────────────────────────────────────────────────────────────────┘

(the browser client mirrors it module for module: ``connection.ts``, ``room.ts``, ...).

The socket's frames go to the ``on_text``/``on_binary`` callbacks, its end to ``on_lost``;
the room sets them before :meth:`Connection.open`.
"""

from __future__ import annotations

import asyncio
import contextlib
import enum
import itertools
import logging
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, Any, Protocol
from urllib.parse import quote

from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import ConnectionClosed as WsConnectionClosed
from websockets.exceptions import InvalidURI
from websockets.protocol import State

from ..exceptions import (
    ConnectError,
    ConnectionClosed,
    RoomStreamsError,
    ServerError,
    StreamAborted,
    StreamError,
)
from ..protocol.binary import is_binary

if TYPE_CHECKING:
    from ..protocol.frames import HeaderFrame

__all__ = ["Connection", "ConnectionState", "PendingWriter"]

logger = logging.getLogger("roomstreams.connection")

#: numbered data packets (``publish_data(reliable=True)``) one connection keeps in flight
#: at most: sent, not yet acknowledged by the router; a call beyond it waits for a slot
PACKET_WINDOW = 256


def websocket_url(url: str) -> str:
    """The gateway URL to open: ``http(s)://`` becomes ``ws(s)://`` as LiveKit's SDKs do, a
    URL without a scheme gets ``ws://``; a trailing slash goes."""
    url = url.strip().rstrip("/")
    for http, ws in (("https://", "wss://"), ("http://", "ws://")):
        if url.lower().startswith(http):
            return ws + url[len(http) :]
    if "://" not in url:
        return "ws://" + url
    return url


class ConnectionState(enum.IntEnum):
    """LiveKit's ``ConnectionState`` (same names and values). ``connect()`` in progress is
    ``CONN_DISCONNECTED`` until it returns, as in LiveKit."""

    CONN_DISCONNECTED = 0
    CONN_CONNECTED = 1
    CONN_RECONNECTING = 2
    # roomstreams' earlier names (aliases: ``ConnectionState.CLOSED is CONN_DISCONNECTED``)
    DISCONNECTED = 0
    CONNECTED = 1
    RECONNECTING = 2
    CLOSED = 0


class PendingWriter(Protocol):
    """What the connection needs of a writer: its id and the server's verdicts about it."""

    @property
    def stream_id(self) -> str: ...

    def _fail(self, error: ServerError | StreamError) -> None: ...

    def _routed(self) -> None: ...


class Connection:
    """One participant's socket and what waits on it. Lives on one event loop."""

    def __init__(self) -> None:
        self.state = ConnectionState.DISCONNECTED
        self.ws: ClientConnection | None = None
        #: why the socket closed, when the server said (goaway, close frame)
        self.close_reason = ""
        self.writers: dict[str, PendingWriter] = {}
        self._acks: dict[int, asyncio.Future[None]] = {}
        self._req = itertools.count(1)
        #: data-packet acks: the last number given, the calls awaiting their ack (in number
        #: order), and the window's slots
        self._packet_no = 0
        self._packets: dict[int, asyncio.Future[None]] = {}
        self._packet_slots = asyncio.Semaphore(PACKET_WINDOW)
        self.tasks: set[asyncio.Task[Any]] = set()
        self._handler_started = False  # see _recv_loop
        self._recv_task: asyncio.Task[None] | None = None
        self.on_text: Callable[[str | bytes], None] = lambda _m: None
        self.on_binary: Callable[[bytes], None] = lambda _m: None
        self.on_lost: Callable[[ClientConnection, str, int | None], None] = lambda *_a: None

    # -- the socket ---------------------------------------------------------------------------

    async def open(
        self, url: str, token: str, *, timeout: float, marks: bool = False, resume: bool = False
    ) -> ClientConnection:
        """Open the socket and start reading it (frames go to the callbacks). ``marks``:
        ask for the gateway's marks (session resume); ``resume``: this socket resumes a
        session (its first frame must be the ``resume`` frame)."""
        target = f"{websocket_url(url)}/rtc?access_token={quote(token)}"
        if marks:
            target += "&marks=1&resume=1" if resume else "&marks=1"
        self.close_reason = ""
        try:
            ws = await connect(
                target,
                compression=None,
                max_size=16 * 1024 * 1024,
                max_queue=256,
                open_timeout=timeout,
            )
        except InvalidURI:
            # its message holds the whole URI, token included: never show that
            raise ConnectError(
                f"invalid gateway URL {url!r}: use ws://host:port or wss://host"
            ) from None
        self.ws = ws
        self._recv_task = asyncio.get_running_loop().create_task(self._recv_loop(ws))
        return ws

    async def close_socket(self) -> None:
        ws, self.ws = self.ws, None
        task, self._recv_task = self._recv_task, None
        if ws is not None:
            await ws.close()
        if task is not None and task is not asyncio.current_task():
            try:
                await asyncio.wait_for(task, 5)
            except (TimeoutError, asyncio.CancelledError):
                task.cancel()

    async def _recv_loop(self, ws: ClientConnection) -> None:
        reason, code = "connection closed", None
        try:
            async for message in ws:
                if isinstance(message, bytes) and is_binary(message):
                    self.on_binary(message)
                else:
                    self.on_text(message)
                if self._handler_started:
                    # a stream handler was started: let it begin before the next frame is
                    # handled, so that its first step sees the stream in room-log order with
                    # the events of the frames after it (a participant update made between
                    # two streams is seen between them)
                    self._handler_started = False
                    await asyncio.sleep(0)
        except WsConnectionClosed as exc:
            if exc.rcvd is not None:
                code = exc.rcvd.code
                reason = exc.rcvd.reason or reason
            else:
                reason = "connection lost"
        finally:
            if ws.close_code is not None and code is None:
                code = ws.close_code
            self.close_reason = self.close_reason or ws.close_reason or reason
            self.on_lost(ws, self.close_reason, code)

    # -- sending ------------------------------------------------------------------------------

    def ensure_connected(self) -> None:
        if self.state is not ConnectionState.CONNECTED or self.ws is None:
            state = self.state.name.removeprefix("CONN_").lower()
            raise ConnectionClosed(self.close_reason or f"room is {state}")

    async def send(self, frame: str | bytes) -> None:
        """The one place frames leave: check state, send, map failures. ``str`` goes as a
        text (JSON) frame, ``bytes`` as a binary frame.

        While the socket is open, takes writes and no other send is in progress (the usual
        case: every chunk of a token stream), the frame is written the way websockets'
        ``send()`` writes it, without its context manager and its wait for a buffer that
        is not full (W1's client, sender and receiver: 228 -> 203 µs of CPU per chunk)."""
        ws = self.ws
        if ws is None:
            raise ConnectionClosed(self.close_reason or "not connected")
        if _writable(ws) and not ws.paused:
            try:
                _write(ws, frame)
            except Exception as exc:  # the transport failed: the socket is gone
                ws.transport.abort()
                raise ConnectionClosed(self.close_reason or f"connection lost: {exc!r}") from exc
            return
        try:
            await ws.send(frame)
        except WsConnectionClosed as exc:
            raise ConnectionClosed(self.close_reason or f"connection closed: {exc}") from exc

    def spawn(self, aw: Awaitable[Any]) -> None:
        """Run ``aw`` as a task the connection keeps (and cancels on disconnect); its
        exception is logged."""

        async def run() -> None:
            try:
                await aw
            except asyncio.CancelledError:
                raise
            except Exception:
                logger.exception("handler task raised")

        task = asyncio.get_running_loop().create_task(run())
        self.tasks.add(task)
        task.add_done_callback(self.tasks.discard)

    def spawn_handler(self, aw: Awaitable[Any]) -> None:
        """:meth:`spawn` for a stream handler: it begins before the next frame is handled."""
        self.spawn(aw)
        self._handler_started = True

    # -- requests answered by an ``ack`` (or an ``error`` with the same ``req``) -------------

    def request(self, make_frame: Callable[[int], str]) -> asyncio.Future[None]:
        """Send ``make_frame(req)`` in the background; the future resolves on the router's
        ``ack`` for ``req`` (fails on its ``error``, or when the connection goes)."""
        req = next(self._req)
        fut: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._acks[req] = fut
        frame = make_frame(req)
        if self._write_now(frame):
            return fut

        async def send() -> None:
            try:
                await self.send(frame)
            except RoomStreamsError as exc:
                self._acks.pop(req, None)
                _set_exception(fut, exc)

        self.spawn(send())
        return fut

    def _write_now(self, frame: str) -> bool:
        """Write a small JSON frame to the socket before returning, without yielding to the
        event loop (what ``ws.send`` does first, minus its wait for the buffer to drain).
        A handler registration sent this way has left before the caller's next line runs,
        so it reaches the gateway before any stream sent after the call can come back to
        it. False when it cannot be done now (then the caller sends it the usual way)."""
        ws = self.ws
        if ws is None or not _writable(ws):
            return False
        try:
            _write(ws, frame)
        except Exception:  # the usual path reports what went wrong
            return False
        return True

    def send_soon(self, frame: str) -> None:
        """Send a small JSON frame now if the socket takes it, else in the background
        (errors ignored: used for frames nobody waits on)."""
        if self._write_now(frame):
            return

        async def send() -> None:
            with contextlib.suppress(RoomStreamsError):
                await self.send(frame)

        self.spawn(send())

    def acked(self, req: int) -> None:
        fut = self._acks.pop(req, None)
        if fut is not None and not fut.done():
            fut.set_result(None)

    def refused(self, req: int, err: ServerError) -> bool:
        """The server answered request ``req`` with an error; False if no such request."""
        fut = self._acks.pop(req, None)
        if fut is None:
            return False
        _set_exception(fut, err)
        return True

    # -- numbered data packets, acknowledged cumulatively by the router ----------------------

    async def send_packet(self, make_frame: Callable[[int], bytes]) -> None:
        """Send ``make_frame(number)`` and return once the router acknowledged it (a
        ``data_ack`` with a number at least its own). Calls do not wait for each other: up
        to :data:`PACKET_WINDOW` are in flight, and one ack completes all those it covers."""
        async with self._packet_slots:
            self.ensure_connected()
            self._packet_no += 1
            n = self._packet_no
            fut: asyncio.Future[None] = asyncio.get_running_loop().create_future()
            self._packets[n] = fut
            try:
                # numbers must follow the order frames hit the socket: nothing between
                # taking the number and the write yields (ws.send writes before it awaits)
                await self.send(make_frame(n))
            except BaseException:
                self._packets.pop(n, None)
                raise
            await fut

    def packets_acked(self, n: int) -> None:
        """The router routed our numbered packets up to ``n``."""
        packets = self._packets
        while packets:
            first = next(iter(packets))
            if first > n:
                break
            fut = packets.pop(first)
            if not fut.done():
                fut.set_result(None)

    def packets_failed(self, first: int, last: int, err: RoomStreamsError) -> bool:
        """Our numbered packets ``first``..``last`` failed (refused, or lost before routing):
        their calls raise ``err``. False if none of them was pending."""
        hit = [n for n in self._packets if first <= n <= last]
        for n in hit:
            _set_exception(self._packets.pop(n), err)
        return bool(hit)

    # -- writers ------------------------------------------------------------------------------

    async def open_writer(self, writer: PendingWriter, header: HeaderFrame) -> None:
        """Register ``writer`` (so the server's answers about it reach it) and send its
        header; forget it again if the header could not be sent."""
        self.writers[writer.stream_id] = writer
        try:
            await self.send(header.model_dump_json())
        except BaseException:
            self.forget_writer(writer.stream_id)
            raise

    def forget_writer(self, stream_id: str) -> None:
        self.writers.pop(stream_id, None)

    # -- the end ------------------------------------------------------------------------------

    def fail_pending(self, reason: str, code: str) -> None:
        """The socket is gone: every writer and every request waiting on it fails."""
        for w in list(self.writers.values()):
            w._fail(StreamAborted(reason, code=code, stream_id=w.stream_id))
        self.writers.clear()
        err = ConnectionClosed(reason)
        for fut in self._acks.values():
            _set_exception(fut, err)
        self._acks.clear()
        if self._packets:  # data packets sent but not acknowledged: maybe delivered, maybe not
            lost = ConnectionClosed(
                f"{reason} (data packet not acknowledged by the router: it may or may not "
                "have been delivered)"
            )
            for fut in self._packets.values():
                _set_exception(fut, lost)
            self._packets.clear()


def _writable(ws: ClientConnection) -> bool:
    """The socket takes a frame written at once: open, its transport not closing, and no
    fragmented send of websockets' in progress."""
    return (
        ws.send_in_progress is None
        and ws.protocol.state is State.OPEN
        and not ws.transport.is_closing()
    )


def _write(ws: ClientConnection, frame: str | bytes) -> None:
    """What websockets' ``send()`` does first: frame it (``str`` as text, ``bytes`` as
    binary) and hand it to the transport; no wait for the buffer to drain."""
    if isinstance(frame, str):
        ws.protocol.send_text(frame.encode())
    else:
        ws.protocol.send_binary(frame)
    ws.send_data()


def _set_exception(fut: asyncio.Future[Any], exc: BaseException) -> None:
    if not fut.done():
        fut.set_exception(exc)
        fut.exception()  # retrieved: nobody may be awaiting it
