"""``Room``: one participant's connection to a room through a gateway."""

from __future__ import annotations

import asyncio
import contextlib
import functools
import inspect
import logging
from collections.abc import AsyncIterator, Awaitable, Callable, Generator
from dataclasses import dataclass
from types import TracebackType
from typing import Any, Literal, TypeVar

from pydantic import ValidationError
from websockets.asyncio.client import ClientConnection
from websockets.exceptions import InvalidStatus, WebSocketException

from .._retry import Backoff
from ..core.incoming import Incoming, StreamChunk, StreamEnded, StreamOpened
from ..exceptions import (
    AuthError,
    ConnectError,
    ConnectionClosed,
    ServerError,
    StreamAborted,
)
from ..protocol.binary import BYTE_CHUNK, decode_byte_chunk
from ..protocol.frames import (
    MARK_PREFIX,
    RESUMED_PREFIX,
    AckFrame,
    ChunkFrame,
    ClosedFrame,
    DataAckFrame,
    DeliveredHeader,
    DeliveredRpcAck,
    DeliveredRpcRequest,
    DeliveredRpcResponse,
    DeliveredTrailer,
    ErrorCode,
    ErrorFrame,
    GoAwayFrame,
    JoinedFrame,
    MarkFrame,
    ParticipantJoinedFrame,
    ParticipantLeftFrame,
    ParticipantUpdatedFrame,
    ResumedFrame,
    ResumeFrame,
    ServerFrame,
    SubscribeFrame,
    UnsubscribeFrame,
    UpdateParticipantFrame,
    server_frame_adapter,
)
from .bytestreams import ByteStreamInfo, ByteStreamReader
from .connection import Connection, ConnectionState
from .data import packet_from_frame
from .events import EventEmitter
from .participant import LocalParticipant, ParticipantPermission, RemoteParticipant
from .streams import (
    DEFAULT_READER_BUFFER,
    StreamReaderBase,
    TextStreamInfo,
    TextStreamReader,
)

__all__ = [
    "ByteStreamHandler",
    "ConnectionState",
    "DataStreamOptions",
    "EventTypes",
    "Registration",
    "Room",
    "RoomOptions",
    "Sid",
    "TextStreamHandler",
]

logger = logging.getLogger("roomstreams.room")

#: The events a room emits (LiveKit's ``EventTypes`` for the names that exist here).
EventTypes = Literal[
    "participant_connected",
    "participant_disconnected",
    "participant_metadata_changed",
    "participant_name_changed",
    "participant_attributes_changed",
    "data_received",
    "connection_state_changed",
    "connected",
    "disconnected",
    "reconnecting",
    "reconnected",
    "error",
]

TextStreamHandler = Callable[[TextStreamReader, str], Awaitable[None] | None]
#: A function giving a fresh access token (plain or async), called on every (re)connect.
TokenSource = Callable[[], str | Awaitable[str]]
ByteStreamHandler = Callable[[ByteStreamReader, str], Awaitable[None] | None]
F = TypeVar("F", bound=Callable[..., Any])


#: Close codes after which reconnecting would be wrong: removed by the server API (4009),
#: replaced by a newer connection with the same identity (4010), closed for flooding (4029).
_FINAL_CLOSE_CODES = frozenset({4009, 4010, 4029})
_RECONNECT_FIRST_DELAY = 0.1
_RECONNECT_MAX_DELAY = 2.0
#: Close code of a refused session resume (the session has ended: join afresh); 4008, a
#: slow consumer, resumes nothing either (what overflowed would come again at once).
_CLOSE_RESUME_FAILED = 4011
_NO_RESUME_CLOSE_CODES = frozenset({4008, _CLOSE_RESUME_FAILED})
#: at most this often the room acknowledges a mark (the gateway's inbox trim waits on it)
_SEEN_EVERY = 0.05


def _refusal(exc: InvalidStatus) -> ConnectError:
    """A gateway answered the upgrade with an HTTP error. 401 and 403 are about the token
    or its grants (:class:`AuthError`: trying again cannot help); anything else, a draining
    gateway's 503 or 429 (too many connections for this identity, or joins at once), is
    :class:`ConnectError`, which reconnects retry."""
    body = exc.response.body.decode(errors="replace").strip() if exc.response.body else ""
    code = exc.response.status_code
    message = f"gateway refused the connection ({code}): {body}"
    return AuthError(message) if code in (401, 403) else ConnectError(message)


class _ResumeRefused(Exception):
    """The gateway refused to resume the session (``str``: why)."""


class _Replay:
    """Session resume: the frames received since the last mark, matched in order against
    what the new gateway replays from that mark. A replayed frame found among them (after
    the previous one found) was already handled: dropped. Exact because the frames a gateway
    makes up itself (errors, acks of its own, goaway) never equal a routed frame, and
    routed frames come in inbox order."""

    __slots__ = ("_i", "_seen")

    def __init__(self, seen: list[str | bytes]) -> None:
        self._seen = seen
        self._i = 0

    def repeat(self, message: str | bytes) -> bool:
        seen = self._seen
        for j in range(self._i, len(seen)):
            if seen[j] == message:
                self._i = j + 1
                return True
        return False


class Registration:
    """What ``register_text_stream_handler`` returns: already registered locally; await it
    to know the router has the handler in effect."""

    def __init__(self, future: asyncio.Future[None] | None) -> None:
        self._future = future

    def __await__(self) -> Generator[Any, None, None]:
        if self._future is not None:
            yield from asyncio.shield(self._future).__await__()


_to_participant = RemoteParticipant.from_info


class Sid(str):
    """A sid that is also awaitable: LiveKit's ``await room.sid`` and plain ``room.sid`` both
    give the string."""

    __slots__ = ()

    def __await__(self) -> Generator[Any, None, str]:
        if False:  # pragma: no cover - makes this a generator
            yield
        return str(self)


@dataclass(slots=True)
class DataStreamOptions:
    """LiveKit's ``DataStreamOptions``: ``max_payload_byte_length`` ends an incoming stream
    that carries more (text in UTF-8 bytes) with :class:`~roomstreams.StreamAborted` (a
    ``StreamError``, code ``payload_too_large``) instead of delivering it. None: no cap."""

    max_payload_byte_length: int | None = None


@dataclass(slots=True)
class RoomOptions:
    """LiveKit's ``RoomOptions``. ``auto_subscribe``, ``dynacast``, ``e2ee`` and
    ``rtc_config`` are media options: accepted and ignored (there is no media here; data
    streams, packets and RPC reach a participant whatever ``auto_subscribe`` says, as in
    LiveKit). ``connect_timeout`` bounds ``connect()``; ``reconnect`` turns automatic
    reconnection on or off."""

    auto_subscribe: bool = True
    dynacast: bool = False
    e2ee: Any = None
    rtc_config: Any = None
    connect_timeout: float = 10.0
    reconnect: bool = True
    data_stream: DataStreamOptions | None = None


class Room(EventEmitter):
    """A room connection. ``await room.connect(url, token)`` or ``async with Room() as room``.

    Events (``room.on(name, callback)``; a callback gets only as many arguments as it
    takes, as with LiveKit's emitter): ``participant_connected(participant)``,
    ``participant_disconnected(participant)``, ``connection_state_changed(state)``,
    ``connected()``, ``reconnecting(reason)``, ``reconnected()``, ``disconnected(reason)``,
    ``participant_attributes_changed(changed, participant)``,
    ``participant_metadata_changed(participant, old, new)``,
    ``participant_name_changed(participant, old, new)``, ``error(exc)``,
    ``data_received(packet)`` (one :class:`~roomstreams.DataPacket`, see ``client/data.py``).
    """

    def __init__(
        self,
        loop: asyncio.AbstractEventLoop | None = None,
        *,
        reader_buffer: int = DEFAULT_READER_BUFFER,
    ) -> None:
        """``loop`` is accepted for LiveKit's signature; the room always runs on the loop
        that calls ``connect()``."""
        super().__init__()
        self._conn = conn = Connection()
        conn.on_text, conn.on_binary = self._on_text, self._on_binary
        conn.on_lost = self._socket_lost
        self.local_participant = LocalParticipant(conn)
        self.remote_participants: dict[str, RemoteParticipant] = {}
        self.name = ""
        self.metadata = ""
        self._sid = Sid("")
        self._connecting = False
        self._text_handlers: dict[str, TextStreamHandler] = {}
        self._byte_handlers: dict[str, ByteStreamHandler] = {}
        self._incoming = Incoming()
        self._readers: dict[str, StreamReaderBase[Any, Any]] = {}
        self._joined: asyncio.Future[None] | None = None
        self._reader_buffer = reader_buffer
        self._max_payload: int | None = None
        self._url = ""
        self._token: str | TokenSource = ""
        self._timeout = 10.0
        self._auto_reconnect = True
        self._closing = False
        self._reconnect_task: asyncio.Task[None] | None = None
        #: seconds ``reconnect`` keeps trying before it gives up
        self.reconnect_timeout = 30.0
        # session resume: our session, the gateway's last mark, what came since, the
        # replay filter while resuming, the wait for ``resumed``
        self._session = ""
        self._mark = ""
        self._since_mark: list[str | bytes] = []
        self._replay: _Replay | None = None
        self._resumed: asyncio.Future[None] | None = None
        self._seen_sent = 0.0

    # -- events -----------------------------------------------------------------------------

    def _run_listener_task(self, aw: Awaitable[Any]) -> None:
        self._conn.spawn(aw)

    _emit = EventEmitter.emit

    # -- connection -------------------------------------------------------------------------

    @property
    def state(self) -> ConnectionState:
        return self._conn.state

    @state.setter
    def state(self, value: ConnectionState) -> None:
        if self._conn.state is not value:
            self._conn.state = value
            self._emit("connection_state_changed", value)

    @property
    def connection_state(self) -> ConnectionState:
        """LiveKit's name for :attr:`state`."""
        return self._conn.state

    @property
    def sid(self) -> Sid:
        """The room's sid (``RM_...``); ``await room.sid`` works too, as in LiveKit."""
        return self._sid

    def isconnected(self) -> bool:
        """Connected, or reconnecting (as in LiveKit)."""
        return self.state is not ConnectionState.CONN_DISCONNECTED

    async def connect(
        self,
        url: str,
        token: str | TokenSource,
        options: RoomOptions | None = None,
        *,
        timeout: float | None = None,
        reconnect: bool | None = None,
    ) -> None:
        """Connect to a gateway (``ws://host:port``) with an access token. Returns once the
        participant is in the room and handlers registered before are in effect.

        With ``reconnect`` (the default) a lost connection is re-established on its own, to
        the same URL, with backoff: events ``reconnecting`` then ``reconnected``, or
        ``disconnected(reason)`` when it gives up. Handlers stay registered across it.

        ``token`` may be a function returning a token (or an awaitable of one): it is called
        on every connect and reconnect, so long-lived participants reconnect with a fresh
        token rather than the expired one they started with.

        ``options`` is LiveKit's :class:`RoomOptions`; ``timeout`` and ``reconnect``, when
        given, win over its ``connect_timeout`` and ``reconnect``. A room may connect again
        after :meth:`disconnect`."""
        if self.state is not ConnectionState.CONN_DISCONNECTED or self._connecting:
            state = "connecting" if self._connecting else self.state.name.lower()
            raise ConnectError(f"cannot connect: room is {state}")
        opts = options or RoomOptions()
        self._url, self._token = url, token
        self._timeout = opts.connect_timeout if timeout is None else timeout
        self._max_payload = opts.data_stream.max_payload_byte_length if opts.data_stream else None
        self._auto_reconnect = opts.reconnect if reconnect is None else reconnect
        self._closing = False
        self._connecting = True
        self._incoming = Incoming()
        self._readers.clear()
        self._session, self._mark = "", ""
        self._since_mark.clear()
        try:
            await self._open()
        finally:
            self._connecting = False
        self.state = ConnectionState.CONN_CONNECTED
        self._emit("connected")

    async def _fresh_token(self) -> str:
        token = self._token if isinstance(self._token, str) else self._token()
        if not isinstance(token, str):
            token = await token
        return token

    async def _open(self) -> None:
        """Open the socket, wait for ``joined`` and the acks of registered handlers."""
        token = await self._fresh_token()
        self._session, self._mark = "", ""
        self._since_mark.clear()
        async with self._opening(), asyncio.timeout(self._timeout):
            self._joined = asyncio.get_running_loop().create_future()
            await self._conn.open(
                self._url, token, timeout=self._timeout, marks=self._auto_reconnect
            )
            acks = self._resubscribe()
            await asyncio.shield(self._joined)
            for fut in acks:
                await asyncio.shield(fut)

    async def _resume_open(self) -> None:
        """Session resume: open a socket that resumes our session from the last mark; the
        gateway replays what we had not received (repeats dropped, see :class:`_Replay`),
        then ``resumed``; handlers are registered again (idempotent) and acknowledged.
        Raises :class:`_ResumeRefused` when the session has ended."""
        token = await self._fresh_token()
        loop = asyncio.get_running_loop()
        handlers = [("text", t) for t in self._text_handlers]
        handlers += [("byte", t) for t in self._byte_handlers]
        req = ResumeFrame(
            session=self._session,
            at=self._mark,
            receiving=self._incoming.open_ids,
            handlers=handlers,
        )
        async with self._opening(), asyncio.timeout(self._timeout):
            self._resumed = loop.create_future()
            self._replay = _Replay(self._since_mark)
            await self._conn.open(
                self._url, token, timeout=self._timeout, marks=True, resume=True
            )
            await self._conn.send(req.model_dump_json())
            await asyncio.shield(self._resumed)
            for fut in self._resubscribe():
                await asyncio.shield(fut)

    @contextlib.asynccontextmanager
    async def _opening(self) -> AsyncIterator[None]:
        """Opening a socket (a join or a resume): its failures as the room reports them,
        the socket closed on any of them."""
        try:
            yield
        except InvalidStatus as exc:
            raise _refusal(exc) from exc
        except (OSError, WebSocketException, TimeoutError, ConnectionClosed) as exc:
            await self._conn.close_socket()
            raise ConnectError(f"could not connect to {self._url}: {exc!r}") from exc
        except BaseException:
            await self._conn.close_socket()
            raise

    def _resubscribe(self) -> list[asyncio.Future[None]]:
        return [self._subscribe("subscribe", topic) for topic in self._text_handlers] + [
            self._subscribe("subscribe", topic, "byte") for topic in self._byte_handlers
        ]

    async def disconnect(self) -> None:
        """Leave the room. Open streams end abnormally at their receivers. Idempotent."""
        self._closing = True
        task, self._reconnect_task = self._reconnect_task, None
        if task is not None and task is not asyncio.current_task():
            task.cancel()
            await asyncio.gather(task, return_exceptions=True)
            self._connecting = False
        if self.state is ConnectionState.CONN_DISCONNECTED and not self._connecting:
            return
        await self._conn.close_socket()
        self._finish("client disconnected")
        tasks = self._conn.tasks
        if tasks:  # handlers get to see their readers' StreamAborted first
            await asyncio.wait(list(tasks), timeout=1.0)
        for t in list(tasks):
            t.cancel()
        if tasks:
            await asyncio.gather(*tasks, return_exceptions=True)

    aclose = disconnect

    async def __aenter__(self) -> Room:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.disconnect()

    def _fail_inflight(self, reason: str) -> None:
        """The socket is gone: every open stream here ends, every pending call fails."""
        for ev in self._incoming.abort_all(ErrorCode.CONNECTION_LOST, reason):
            self._on_stream_event(ev)
        self._fail_sending(reason)

    def _fail_sending(self, reason: str, *, refused: bool = False) -> None:
        """The socket is gone: every pending call fails (writers, requests, packets, RPC
        calls); the streams we receive stay open for a resume."""
        self._conn.fail_pending(reason, ErrorCode.CONNECTION_LOST)
        self.local_participant._rpc.connection_lost(reason)
        for fut in (self._joined, self._resumed):
            if fut is not None and not fut.done():
                fut.set_exception(_ResumeRefused(reason) if refused else ConnectionClosed(reason))
                fut.exception()

    def _finish(self, reason: str) -> None:
        """Final state: disconnected (``connect()`` may be called again)."""
        self._fail_inflight(reason)
        if self.state is ConnectionState.CONN_DISCONNECTED:
            return
        self.state = ConnectionState.CONN_DISCONNECTED
        self._emit("disconnected", reason)

    def _socket_lost(self, ws: ClientConnection, reason: str, code: int | None) -> None:
        if ws is not self._conn.ws:
            return  # an old socket, already replaced
        self._conn.ws = None
        if self.state is ConnectionState.CONN_RECONNECTING and not self._closing:
            # a reconnect attempt's socket: the attempt fails; for a resume, our readers
            # stay for the next one (session resume)
            self._fail_sending(reason, refused=code == _CLOSE_RESUME_FAILED)
            return
        if self.state is not ConnectionState.CONNECTED or self._closing:
            self._fail_inflight(reason)
            return  # connect() or disconnect() is in charge
        if not self._auto_reconnect or code in _FINAL_CLOSE_CODES:
            self._fail_inflight(reason)
            self._finish(reason)
            return
        # session resume: with a mark, the streams we receive go on after the resume
        resume = bool(self._session and self._mark) and code not in _NO_RESUME_CLOSE_CODES
        if resume:
            self._fail_sending(reason)
        else:
            self._fail_inflight(reason)
        self.state = ConnectionState.CONN_RECONNECTING
        self._emit("reconnecting", reason)
        loop = asyncio.get_running_loop()
        self._reconnect_task = loop.create_task(self._reconnect(reason, resume))

    async def _reconnect(self, reason: str, resume: bool = False) -> None:
        """Reconnect with backoff: resume the session (``reconnected``), or, when it has
        ended (refused: resume window passed, ...), end it (``disconnected``) and join
        afresh (``connected``); past ``reconnect_timeout``, ``disconnected``."""
        # full jitter: the clients of a drained gateway must not come back in lockstep
        backoff = Backoff(_RECONNECT_FIRST_DELAY, _RECONNECT_MAX_DELAY)
        loop = asyncio.get_running_loop()
        deadline = loop.time() + self.reconnect_timeout
        fresh = False
        try:
            while loop.time() < deadline:
                await backoff.sleep()
                try:
                    if resume:
                        await self._resume_open()
                    else:
                        await self._open()
                except _ResumeRefused as exc:
                    reason = f"session ended: {exc}"
                    resume, fresh = False, True
                    self._replay = None
                    self._fail_inflight(reason)
                    self._finish(reason)  # disconnected; then a fresh join
                    self._connecting = True
                    backoff.reset()
                    continue
                except AuthError as exc:
                    reason = str(exc)
                    break
                except (ConnectError, ConnectionClosed) as exc:
                    reason = str(exc)
                    continue
                finally:
                    self._replay = None
                self._connecting = False
                self._reconnect_task = None
                self.state = ConnectionState.CONN_CONNECTED
                self._emit("connected" if fresh else "reconnected")
                return
        finally:
            self._connecting = False
        self._reconnect_task = None
        self._fail_inflight(reason)
        self._finish(f"could not reconnect: {reason}")

    # -- handlers ---------------------------------------------------------------------------

    def register_text_stream_handler(self, topic: str, handler: TextStreamHandler) -> Registration:
        """Call ``handler(reader, participant_identity)`` for each text stream on ``topic``.
        ``handler`` may be a plain function or a coroutine function (then the room runs and
        keeps the task). Raises ``ValueError`` if the topic already has a handler."""
        if topic in self._text_handlers:
            raise ValueError(f"a text stream handler for topic {topic!r} is already registered")
        self._text_handlers[topic] = handler
        if self._conn.ws is not None:
            return Registration(self._subscribe("subscribe", topic))
        return Registration(None)

    #: LiveKit's earlier names
    def set_text_stream_handler(self, topic: str, handler: TextStreamHandler) -> Registration:
        return self.register_text_stream_handler(topic, handler)

    def set_byte_stream_handler(self, topic: str, handler: ByteStreamHandler) -> Registration:
        return self.register_byte_stream_handler(topic, handler)

    def unregister_text_stream_handler(self, topic: str) -> Registration:
        if self._text_handlers.pop(topic, None) is None or self._conn.ws is None:
            return Registration(None)
        return Registration(self._subscribe("unsubscribe", topic))

    def register_byte_stream_handler(self, topic: str, handler: ByteStreamHandler) -> Registration:
        """Call ``handler(reader, participant_identity)`` for each byte stream on ``topic``
        (a :class:`~roomstreams.ByteStreamReader`). Same rules as text handlers; a text and
        a byte handler on one topic coexist. Raises ``ValueError`` if the topic already has a
        byte stream handler."""
        if topic in self._byte_handlers:
            raise ValueError(f"a byte stream handler for topic {topic!r} is already registered")
        self._byte_handlers[topic] = handler
        if self._conn.ws is not None:
            return Registration(self._subscribe("subscribe", topic, "byte"))
        return Registration(None)

    def unregister_byte_stream_handler(self, topic: str) -> Registration:
        if self._byte_handlers.pop(topic, None) is None or self._conn.ws is None:
            return Registration(None)
        return Registration(self._subscribe("unsubscribe", topic, "byte"))

    def _subscribe(self, what: str, topic: str, kind: str = "text") -> asyncio.Future[None]:
        cls = SubscribeFrame if what == "subscribe" else UnsubscribeFrame
        return self._conn.request(
            lambda req: cls(kind=kind, topic=topic, req=req).model_dump_json()
        )

    # -- incoming ---------------------------------------------------------------------------

    def _on_text(self, message: str | bytes) -> None:
        if isinstance(message, str):  # session resume
            if message.startswith(MARK_PREFIX):
                self._on_mark(message)
                return
            if message.startswith(RESUMED_PREFIX):
                self._on_resumed(message)
                return
        if self._mark and not self._first_time(message):
            return
        try:
            frame = server_frame_adapter.validate_json(message)
        except ValidationError:
            logger.error("undecodable frame from gateway: %.200r", message)
            return
        self._on_frame(frame)

    def _on_frame(self, frame: ServerFrame) -> None:
        if isinstance(frame, ChunkFrame):
            for ev in self._incoming.chunk(frame):
                self._on_stream_event(ev)
        elif isinstance(frame, DeliveredHeader):
            for ev in self._incoming.header(frame):
                self._on_stream_event(ev)
        elif isinstance(frame, DeliveredTrailer):
            for ev in self._incoming.trailer(frame):
                self._on_stream_event(ev)
        elif isinstance(frame, ClosedFrame):
            w = self._conn.writers.get(frame.stream_id)
            if w is not None:
                w._routed()
        elif isinstance(frame, AckFrame):
            self._conn.acked(frame.req)
        elif isinstance(frame, DataAckFrame):
            self._conn.packets_acked(frame.n)
        elif isinstance(frame, ErrorFrame):
            self._on_error(frame)
        elif isinstance(frame, JoinedFrame):
            self._on_joined(frame)
        elif isinstance(frame, ParticipantJoinedFrame):
            p = _to_participant(frame.participant)
            self.remote_participants[p.identity] = p
            self._emit("participant_connected", p)
        elif isinstance(frame, ParticipantLeftFrame):
            gone = self.remote_participants.pop(frame.identity, None)
            self.local_participant._rpc.participant_left(frame.identity)
            if gone is not None:
                self._emit("participant_disconnected", gone)
        elif isinstance(frame, ParticipantUpdatedFrame):
            self._on_participant_updated(frame)
        elif isinstance(frame, DeliveredRpcRequest):
            self.local_participant._rpc.on_request(frame)
        elif isinstance(frame, DeliveredRpcAck):
            self.local_participant._rpc.on_ack(frame)
        elif isinstance(frame, DeliveredRpcResponse):
            self.local_participant._rpc.on_response(frame)
        elif isinstance(frame, GoAwayFrame):
            self._conn.close_reason = frame.reason
            fut = self._resumed
            if frame.code == ErrorCode.RESUME_FAILED and fut is not None and not fut.done():
                fut.set_exception(_ResumeRefused(frame.reason))
                fut.exception()

    # -- session resume -------------------------------------------------------------------

    def _first_time(self, message: str | bytes) -> bool:
        """False for a frame the replay of a resume repeats (already handled)."""
        replay = self._replay
        if replay is not None:
            return not replay.repeat(message)
        self._since_mark.append(message)
        return True

    def _on_mark(self, message: str) -> None:
        try:
            at = MarkFrame.model_validate_json(message).at
        except ValidationError:
            logger.error("undecodable mark from gateway: %.200r", message)
            return
        self._mark = at
        self._since_mark.clear()
        now = asyncio.get_running_loop().time()
        if now - self._seen_sent >= _SEEN_EVERY:
            self._seen_sent = now
            self._conn.send_soon('{"type":"seen","at":"' + at + '"}')

    def _on_resumed(self, message: str) -> None:
        try:
            f = ResumedFrame.model_validate_json(message)
        except ValidationError:
            logger.error("undecodable resumed frame from gateway: %.200r", message)
            return
        self._session, self._mark, self._replay = f.session, f.at, None
        self._since_mark.clear()
        fut = self._resumed
        if fut is not None and not fut.done():
            fut.set_result(None)

    def _on_binary(self, frame: bytes) -> None:
        """A byte chunk or a data packet (see ``protocol/binary.py``)."""
        if self._mark and not self._first_time(frame):
            return
        try:
            if frame[0] == BYTE_CHUNK:
                events = self._incoming.byte_chunk(decode_byte_chunk(frame))
            else:
                self._emit("data_received", packet_from_frame(frame, self.remote_participants))
                return
        except ValueError:
            logger.error("undecodable binary frame from gateway: %.200r", frame)
            return
        for ev in events:
            self._on_stream_event(ev)

    def _on_joined(self, f: JoinedFrame) -> None:
        lp = self.local_participant
        self._session = f.session  # session resume
        mine = (lp.name, lp.metadata, dict(lp.attributes))
        lp._apply(f.participant)
        lp.permissions = ParticipantPermission.from_frame(f.permissions)
        self.name = f.room
        self._sid = Sid(f.room_sid)
        before = self.remote_participants
        self.remote_participants = {p.identity: _to_participant(p) for p in f.participants}
        if self.state is ConnectionState.CONN_RECONNECTING:
            self._restore_own_info(*mine)
            # whoever came or went while we were away: the same events as if we had seen it
            for identity, gone in before.items():
                if identity not in self.remote_participants:
                    self._emit("participant_disconnected", gone)
            for identity, came in self.remote_participants.items():
                if identity not in before:
                    self._emit("participant_connected", came)
        if self._joined is not None and not self._joined.done():
            self._joined.set_result(None)

    def _restore_own_info(self, name: str, metadata: str, attributes: dict[str, str]) -> None:
        """A reconnect joined with the token's values: set again what this participant had
        set of itself (the others see it as an update)."""
        lp = self.local_participant
        if not lp.permissions.can_update_metadata:
            return
        attrs = {k: v for k, v in attributes.items() if lp.attributes.get(k) != v}
        attrs.update({k: "" for k in lp.attributes if k not in attributes})
        update = UpdateParticipantFrame(
            name=name if name != lp.name else None,
            metadata=metadata if metadata != lp.metadata else None,
            attributes=attrs or None,
        )
        if update.name is None and update.metadata is None and update.attributes is None:
            return
        lp.name, lp.metadata, lp.attributes = name, metadata, dict(attributes)
        fut = self._conn.request(
            lambda req: update.model_copy(update={"req": req}).model_dump_json(exclude_none=True)
        )
        fut.add_done_callback(lambda f: f.cancelled() or f.exception())

    def _on_participant_updated(self, f: ParticipantUpdatedFrame) -> None:
        info = f.participant
        lp = self.local_participant
        p: LocalParticipant | RemoteParticipant | None = (
            lp if info.identity == lp.identity else self.remote_participants.get(info.identity)
        )
        if p is None:
            return
        old_name, old_metadata = p.name, p.metadata
        p.name, p.metadata, p.attributes = info.name, info.metadata, dict(info.attributes)
        if f.changed_attributes:
            self._emit("participant_attributes_changed", dict(f.changed_attributes), p)
        if p.metadata != old_metadata:
            self._emit("participant_metadata_changed", p, old_metadata, p.metadata)
        if p.name != old_name:
            self._emit("participant_name_changed", p, old_name, p.name)

    def _on_error(self, f: ErrorFrame) -> None:
        err = ServerError(f.code, f.message)
        writer = self._conn.writers.get(f.stream_id) if f.stream_id is not None else None
        if writer is not None:
            writer._fail(err)
            return
        if f.req is not None and self._conn.refused(f.req, err):
            return
        if f.packets is not None:  # numbered data packets that failed: their calls raise
            self._conn.packets_failed(*f.packets, err)
            return
        logger.warning("gateway reported an error: %s", err)
        self._emit("error", err)

    def _on_stream_event(self, ev: StreamOpened | StreamChunk | StreamEnded) -> None:
        if isinstance(ev, StreamChunk):
            r = self._readers.get(ev.stream_id)
            if r is not None:
                r._feed(ev.content)
        elif isinstance(ev, StreamOpened):
            self._open_reader(ev.header)
        else:
            r = self._readers.pop(ev.stream_id, None)
            if r is None:
                return
            if ev.abnormal:
                r._end(
                    StreamAborted(
                        ev.reason or ev.code,
                        code=ev.code,
                        stream_id=ev.stream_id,
                        sender=r.participant_identity,
                    ),
                    ev.attributes,
                )
            else:
                r._end(None, ev.attributes)

    def _open_reader(self, h: DeliveredHeader) -> None:
        """A stream starts: hand a reader to the topic's handler of its kind, if any."""
        sender, buffer, cap = h.sender, self._reader_buffer, self._max_payload
        call: Callable[[], Awaitable[None] | None]
        if h.kind == "byte":
            byte_handler = self._byte_handlers.get(h.topic)
            if byte_handler is None:
                return
            br = ByteStreamReader(
                ByteStreamInfo.from_header(h), sender, max_buffer=buffer, max_payload=cap
            )
            self._readers[h.stream_id] = br
            call = functools.partial(byte_handler, br, sender)
        else:
            text_handler = self._text_handlers.get(h.topic)
            if text_handler is None:
                return
            tr = TextStreamReader(
                TextStreamInfo.from_header(h), sender, max_buffer=buffer, max_payload=cap
            )
            self._readers[h.stream_id] = tr
            call = functools.partial(text_handler, tr, sender)
        try:
            result = call()
            if inspect.isawaitable(result):
                self._conn.spawn_handler(result)
        except Exception:
            logger.exception("%s stream handler for %r raised", h.kind, h.topic)
