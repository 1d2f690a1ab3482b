"""One participant's WebSocket on a gateway: validates what it sends, appends it to the room
log, and feeds it what the router delivers through a bounded send queue."""

from __future__ import annotations

import asyncio
import json
import logging
import struct
import time
from collections.abc import Callable, Set
from dataclasses import dataclass

from pydantic import TypeAdapter, ValidationError
from websockets.asyncio.server import ServerConnection
from websockets.exceptions import ConnectionClosed
from websockets.protocol import State

from roomstreams.core.limits import FloodVerdict, RateLimits, RateMeter
from roomstreams.core.outgoing import FrameRejected, OutgoingStreams
from roomstreams.protocol.binary import (
    BYTE_CHUNK,
    DATA_PACKET,
    FLAG_RELIABLE,
    BadBinaryFrame,
    DataMeta,
    DataPacketFrame,
    DeliveredDataMeta,
    decode_byte_chunk,
    decode_data_packet,
    encode_data_packet,
)
from roomstreams.protocol.entries import LogEntry
from roomstreams.protocol.filenames import file_name_problem
from roomstreams.protocol.frames import (
    SEEN_PREFIX,
    ChunkFrame,
    DeliveredHeader,
    DeliveredRpcAck,
    DeliveredRpcRequest,
    DeliveredRpcResponse,
    DeliveredTrailer,
    ErrorCode,
    ErrorFrame,
    GoAwayFrame,
    HeaderFrame,
    ParticipantInfo,
    Permissions,
    RpcAckFrame,
    RpcRequestFrame,
    RpcResponseFrame,
    SeenFrame,
    SubscribeFrame,
    TrailerFrame,
    UnsubscribeFrame,
    UpdateParticipantFrame,
    client_frame_adapter,
    data_ack_frame,
)
from roomstreams.protocol.limits import (
    MAX_ATTRIBUTES_BYTES,
    MAX_DATA_BYTES,
    MAX_DATA_META_BYTES,
    MAX_FRAME_BYTES,
    MAX_HEADER_BYTES,
    MAX_IDENTITY_BYTES,
    MAX_PARTICIPANT_ATTRIBUTES_BYTES,
    MAX_PARTICIPANT_METADATA_BYTES,
    MAX_PARTICIPANT_NAME_BYTES,
    MAX_STREAM_ID_BYTES,
    MAX_TOPIC_BYTES,
)
from roomstreams.protocol.rpc import MAX_RPC_PAYLOAD_BYTES, RpcErrorCode
from roomstreams.token import Claims

from ..observability import GATEWAY as _stats
from .lean import NOTHING, Gate, SendQueue, added, discard
from .wire import WIRE, Flushes

__all__ = [
    "CLOSE_DUPLICATE_IDENTITY",
    "CLOSE_RATE_LIMITED",
    "CLOSE_REMOVED",
    "CLOSE_SLOW_CONSUMER",
    "Connection",
    "ConnectionLimits",
    "Identity",
    "Overloaded",
]

logger = logging.getLogger("gateway.connection")

#: Close code when the gateway cannot append to Redis fast enough (WebSocket "try again later").
CLOSE_TRY_AGAIN_LATER = 1013
#: Close code for a receiver whose send queue overflowed.
CLOSE_SLOW_CONSUMER = 4008
#: Close code when an operator removed the participant (server API).
CLOSE_REMOVED = 4009
#: Close code when a newer connection with the same identity replaced this one (LiveKit's
#: DUPLICATE_IDENTITY).
CLOSE_DUPLICATE_IDENTITY = 4010
#: Close code for a connection that kept going over its rate limits after being told.
CLOSE_RATE_LIMITED = 4029
#: The least an entry counts against a connection's pacing window, in bytes: with the
#: default 1 MiB window, at most 1024 entries of one connection wait to be routed.
MIN_ENTRY_CHARGE = 1024


def _position(entry_id: bytes) -> tuple[int, int]:
    """An inbox entry id as a comparable pair (``ValueError`` if it is not one)."""
    ms, _, seq = entry_id.partition(b"-")
    return int(ms), int(seq or 0)


class Overloaded(Exception):
    """The gateway's append queue is full: Redis is not keeping up with what it accepts."""


@dataclass(frozen=True, slots=True)
class ConnectionLimits:
    """What one connection may do (from the gateway's settings; docs/security.md)."""

    rates: RateLimits
    max_open_streams: int = 256
    max_pending_requests: int = 64
    max_subscriptions: int = 1024


@dataclass(frozen=True, slots=True)
class Identity:
    """Who is on the socket: decided by the verified token, never by the client."""

    session: str
    room: str
    partition: int
    log_key: str
    claims: Claims


Append = Callable[[str, LogEntry], None]

_CHUNK: TypeAdapter[ChunkFrame] = TypeAdapter(ChunkFrame)
_TRAILER: TypeAdapter[TrailerFrame] = TypeAdapter(TrailerFrame)


def _error(
    code: str, message: str, *, stream_id: str | None = None, req: int | None = None
) -> bytes:
    _stats.errors[code] += 1
    return (
        ErrorFrame(code=code, message=message, stream_id=stream_id, req=req)
        .model_dump_json()
        .encode()
    )


def _check_topic(topic: str, *, stream_id: str | None = None, req: int | None = None) -> None:
    n = len(topic.encode("utf-8", "replace"))  # "" is LiveKit's default topic: allowed
    if n > MAX_TOPIC_BYTES:
        raise FrameRejected(
            ErrorCode.BAD_TOPIC,
            f"topic of {n} bytes exceeds {MAX_TOPIC_BYTES}",
            stream_id=stream_id,
            req=req,
        )


def _utf8_len(text: str) -> int:
    return len(text.encode("utf-8", "replace"))


def _salvage(raw: bytes) -> dict[str, object] | None:
    try:
        obj = json.loads(raw.decode("utf-8", "surrogateescape"))
    except (ValueError, RecursionError):  # RecursionError: nested thousands of levels deep
        return None
    return obj if isinstance(obj, dict) else None


def _classify(exc: ValidationError, raw: bytes) -> tuple[str, str]:
    errs = exc.errors(include_url=False)
    first = errs[0] if errs else {"type": "", "msg": str(exc), "loc": ()}
    t = first["type"]
    if t == "json_invalid":
        msg = str(first["msg"])
        if _salvage(raw) is not None:  # valid JSON to Python's parser: lone surrogates
            return ErrorCode.BAD_UTF8, f"invalid UTF-8 in frame: {msg}"
        return ErrorCode.BAD_JSON, f"frame is not valid JSON: {msg}"
    if t in ("union_tag_invalid", "union_tag_not_found", "model_attributes_type", "model_type"):
        return ErrorCode.BAD_FRAME, f"unknown or missing frame type: {first['msg']}"
    details = "; ".join(
        f"{'.'.join(str(p) for p in e['loc'][1:]) or 'frame'}: {e['msg']}" for e in errs[:5]
    )
    return ErrorCode.BAD_FRAME, f"invalid frame: {details}"


#: keepalive ping payloads: a per-connection counter
_PING = struct.Struct("!I")


def _retrieve(fut: asyncio.Future[float]) -> None:
    """A pong future that failed (the connection closed) is not an error to log."""
    if not fut.cancelled():
        fut.exception()


class Connection:
    """State of one socket. Not thread-safe; lives on the gateway's event loop."""

    # slots, not an attribute dict: about 1.2 KB less per idle connection (W4). A new
    # attribute must be named here.
    __slots__ = (
        "_append", "_closer", "_drainer", "_flush_pending", "_flushes", "_inflight",
        "_last_packet", "_limits", "_meter", "_next_ping", "_out", "_ping_seq", "_pinging",
        "_queue", "_seq",
        "_stamp", "_window", "_window_open", "announced", "close_code", "close_reason",
        "closing", "floor", "ident", "marked_at", "marks", "packets_acked", "packets_appended",
        "pauses", "pending_reqs", "receiving", "session", "subscriptions", "touched",
        "unmarked", "ws"
    )

    def __init__(
        self,
        ws: ServerConnection,
        ident: Identity,
        append: Append,
        flushes: Flushes,
        *,
        send_queue_frames: int,
        window_bytes: int,
        limits: ConnectionLimits,
    ) -> None:
        self.ws = ws
        self.ident = ident
        self.session = ident.session
        self._append = append
        self._queue = SendQueue(send_queue_frames)
        #: keepalive: when the next ping is due (the first one an interval after the
        #: gateway's loop first sees this connection), and the ping in flight
        self._next_ping = 0.0
        #: the ping in flight: websockets' pong future, when it went (keepalive clock),
        #: and ``pauses`` then
        self._pinging: tuple[asyncio.Future[float], float, int] | None = None
        self._ping_seq = 0
        #: a flush of the queue is due (in ``flushes``); the task waiting for the transport
        #: to drain
        self._flush_pending = False
        self._flushes = flushes
        self._drainer: asyncio.Task[None] | None = None
        self._limits = limits
        self._out = OutgoingStreams(max_open=limits.max_open_streams)
        self._meter = RateMeter(limits.rates, time.monotonic())
        self._seq = 0
        self._window = window_bytes
        self._inflight = 0
        self._window_open = Gate(open=True)
        #: times the reader stopped reading (pacing, throttling), for the keepalive
        self.pauses = 0
        #: room-log position of the last data packet delivered (see first_delivery_of_packet)
        self._last_packet = (0, 0)
        #: data-packet acks: the highest packet number this socket sent that was appended,
        #: and the highest the router acknowledged (the client awaits those in between)
        self.packets_appended = 0
        self.packets_acked = 0
        #: streams this socket is receiving, so the gateway can end them itself if needed
        self.receiving: Set[str] = NOTHING
        #: streams this socket sends whose trailer is appended but not yet routed
        self.closing: Set[str] = NOTHING
        #: the router routed this connection's join (its joined frame went by)
        self.announced = False
        #: subscribe/unsubscribe requests appended and not yet acknowledged by the router:
        #: req -> (entry kind "s"/"u", stream kind, topic)
        self.pending_reqs: dict[int, tuple[str, str, str]] = {}
        #: (kind, topic) of the handlers it has registered, re-announced on a resync
        self.subscriptions: Set[tuple[str, str]] = NOTHING
        self.close_code: int | None = None
        self._closer: asyncio.Task[None] | None = None
        self.close_reason = ""
        #: the sender identity stamped on what it sends: blank for a hidden participant, as
        #: LiveKit blanks a hidden participant's identity on its data packets
        self._stamp = "" if ident.claims.video.hidden else ident.claims.identity
        #: session resume (services/gateway/resume.py): the client asked for marks; frames
        #: pushed since the last one, when it went, and the inbox position the client has
        #: acknowledged (this gateway trims its inbox no further)
        self.marks = False
        self.unmarked = 0
        self.marked_at = 0.0
        self.floor: tuple[int, int] | None = None
        self.touched: set[Connection] = set()

    @property
    def _extra(self) -> dict[str, str]:
        """What its log lines are about (fields of their own in ROOMSTREAMS_LOG_FORMAT=json);
        built when a line is logged, not held by every idle connection."""
        ident = self.ident
        return {"session": ident.session, "room": ident.room, "identity": ident.claims.identity}

    # -- toward the socket ------------------------------------------------------------------

    @property
    def queue_depth(self) -> int:
        return self._queue.qsize()

    def push(
        self,
        frame: bytes,
        *,
        opens: str = "",
        ends: str = "",
        joined: bool = False,
        ack: int | None = None,
    ) -> None:
        """Queue a frame for the socket; never blocks. A full queue disconnects the socket.

        ``joined`` / ``ack`` say what the frame is when the gateway must know it (the
        router's ``joined`` frame, an acknowledgement of request ``ack``): the router marks
        those inbox entries, so the gateway never guesses a frame's meaning from its bytes
        (frames are forwarded bytes a client may have shaped)."""
        if self.close_code is not None:
            return
        if joined:
            self.announced = True
        elif ack is not None:
            self.pending_reqs.pop(ack, None)
        if opens:
            self.receiving = added(self.receiving, opens)
        elif ends:
            discard(self.receiving, ends)
            discard(self.closing, ends)
        if self.marks:  # session resume: a mark follows (Gateway._send_marks)
            self.unmarked += 1
            if self.unmarked == 1:
                self.touched.add(self)
        if self._enqueue(frame):
            _stats.deliveries += 1
        else:
            logger.warning("send queue full; disconnecting slow consumer", extra=self._extra)
            self.close(CLOSE_SLOW_CONSUMER, "slow consumer: send queue full, receiver too slow")

    def _enqueue(self, frame: bytes) -> bool:
        """Queue a frame for the socket (False: the queue is full). The socket is written
        once for everything queued in this turn of the event loop, when the turn is over or
        when the inbox loop is done with its read (:class:`~.wire.Flushes`)."""
        try:
            self._queue.put_nowait(frame)
        except asyncio.QueueFull:
            return False
        if not self._flush_pending and self._drainer is None:
            self._flush_pending = True
            self._flushes.add(self)
        return True

    def push_packet(self, frame: bytes) -> None:
        """A data packet to deliver. A lossy one (``reliable=False``) is dropped when the
        send queue is half full: as LiveKit's lossy channel, it may be lost under pressure,
        rather than push a slow receiver towards being disconnected."""
        if not frame[1] & FLAG_RELIABLE and self._queue.qsize() * 2 >= self._queue.maxsize:
            return  # a lossy packet under pressure
        self.push(frame)

    def packets_routed(self, number: int) -> None:
        """The router routed this socket's numbered data packets up to ``number``: the
        client's publish_data calls up to it complete (one data_ack frame per router ack)."""
        if number > self.packets_acked:
            self.packets_acked = number
            self.push(data_ack_frame(number))

    def fail_packets(self, code: str, reason: str) -> None:
        """The numbered data packets appended but not acknowledged cannot be routed any
        more (Redis restarted empty, acknowledgements trimmed unread): their calls fail."""
        if self.packets_appended > self.packets_acked:
            first, self.packets_acked = self.packets_acked + 1, self.packets_appended
            _stats.errors[code] += 1
            frame = ErrorFrame(code=code, message=reason, packets=(first, self.packets_appended))
            self.push(frame.model_dump_json().encode())

    def first_delivery_of_packet(self, at: tuple[int, int]) -> bool:
        """A data packet at room-log position ``at``: False if this connection already got
        it (a new router re-routes what its predecessor may have routed before it died)."""
        if at <= self._last_packet:
            return False
        self._last_packet = at
        return True

    def end_receiving(self, code: str, reason: str) -> None:
        """End every stream this socket receives, here at the gateway (e.g. inbox lag)."""
        for sid in list(self.receiving):
            trailer = DeliveredTrailer(stream_id=sid, reason=reason, code=code)
            self.push(trailer.model_dump_json().encode(), ends=sid)

    def inbox_gap(self, reason: str) -> None:
        """Deliveries for this room were trimmed from the inbox before they were read: what
        this socket receives cannot complete, the router's confirmation of a trailer it sent
        may be among the lost (its close() must not wait for it), and so may acknowledgements
        (without them the pacing window would never open again)."""
        self.end_receiving(ErrorCode.LAGGED, reason)
        self._end_closing(ErrorCode.LAGGED, reason)
        self._reopen_window()
        self.fail_packets(ErrorCode.LAGGED, reason)  # their acks may be among the lost

    def _end_closing(self, code: str, reason: str) -> None:
        """Fail the close() of every stream whose trailer is still waiting to be routed."""
        for sid in sorted(self.closing):
            self.push(_error(code, reason, stream_id=sid), ends=sid)

    def _reopen_window(self) -> None:
        """Acknowledgements were (or may have been) lost: forget what is in flight."""
        self._inflight = 0
        self._window_open.set()

    def close(self, code: int, reason: str, why: str = "") -> None:
        """Close with WebSocket ``code``; the ``goaway`` frame before it says ``why`` (an
        :class:`ErrorCode`, default: the close code) and ``reason``."""
        if self.close_code is not None:
            return
        _stats.closes[code] += 1
        self.close_code, self.close_reason = code, reason
        goaway = GoAwayFrame(code=why or str(code), reason=reason).model_dump_json().encode()
        # kept, so the task cannot be collected before it ran
        self._closer = asyncio.get_running_loop().create_task(self._close(goaway, code, reason))

    async def _close(self, goaway: bytes, code: int, reason: str) -> None:
        try:
            # best effort: the queue may be full (slow consumer), then only the close frame goes
            if self._queue.empty():
                await asyncio.wait_for(self.ws.send(goaway, text=True), 1.0)
        except (ConnectionClosed, TimeoutError):
            pass
        # a close reason is at most 123 UTF-8 bytes
        await self.ws.close(code, reason.encode()[:120].decode(errors="ignore"))

    def keepalive(self, now: float, interval: float, timeout: float, slack: float) -> None:
        """Called about once a second by the gateway's keepalive loop (one for all
        connections, not a task each: memory and CPU per idle socket count). Pings every
        ``interval`` s; a pong ``timeout`` s late (judged at the first call after that)
        means the peer is frozen or gone: close. Only while this gateway reads the socket:
        when pacing or throttling stops the reads, the peer's pong waits in TCP behind its
        data, through no fault of its own (websockets' own keepalive cannot tell the two
        apart). ``slack``: the loop's period; a ping due before the next call goes now.

        No task, coroutine or context manager per ping: the ping frame is written through
        websockets' sans-I/O protocol, as :meth:`flush` writes frames, and the pong is the
        future websockets resolves when it arrives (``pending_pings``, websockets 16+)."""
        if self.close_code is not None:
            return
        pinging = self._pinging
        if pinging is not None:
            pong, sent_at, pauses = pinging
            if pong.done():
                self._pinging = None
            elif now - sent_at >= timeout:
                self._pinging = None
                if self.pauses == pauses and self._window_open.is_set():
                    logger.warning("no pong for %.1fs; closing", timeout, extra=self._extra)
                    self.close(1011, "keepalive ping timeout: the peer stopped answering")
                    return
                # we stopped reading meanwhile: no verdict
            else:
                return
        if not self._next_ping:  # first seen: its first ping an interval from now
            self._next_ping = now + interval
        if now + slack < self._next_ping:
            return
        self._next_ping = now + interval
        ws = self.ws
        if not self._window_open.is_set() or self._drainer is not None:
            return  # not reading it, or it is not reading us: no verdict either way
        if ws.protocol.state is not State.OPEN:
            return
        data = _PING.pack(self._ping_seq & 0xFFFFFFFF)
        self._ping_seq += 1
        pong = ws.loop.create_future()
        pong.add_done_callback(_retrieve)
        ws.pending_pings[data] = (pong, ws.loop.time())
        ws.protocol.send_ping(data)
        ws.send_data()
        self._pinging = (pong, now, self.pauses)

    def stop_pinging(self) -> None:
        pinging, self._pinging = self._pinging, None
        if pinging is not None and not pinging[0].done():
            pinging[0].cancel()

    def flush(self) -> None:
        """Write everything queued: each frame framed by websockets' sans-I/O protocol, the
        lot handed to the transport in one write, with no task, coroutine, lock or context
        manager per frame (as websockets' ``broadcast()`` does). Past the transport's write
        limit a drainer task waits for it, and meanwhile frames wait in the bounded queue,
        which closes a slow consumer when full: the backpressure ``send()`` had."""
        self._flush_pending = False
        if self._drainer is not None:
            return  # it writes what is queued once the transport has drained
        ws = self.ws
        if ws.protocol.state is not State.OPEN:
            return  # closing: nothing more goes out (the reader ends the connection)
        self._write_queued()
        if ws.paused:
            self._drainer = asyncio.get_running_loop().create_task(self._drain())

    def _write_queued(self) -> None:
        """Everything queued, in one transport write. Each frame's bytes are built once for
        all the sockets it goes to (:mod:`.wire`: unmasked, no extension negotiated), not
        by each connection's protocol; the state was checked OPEN just before, so no close
        frame can be among them."""
        q, frame_of = self._queue, WIRE.frame
        frames_sent, bytes_sent = _stats.frames_sent, _stats.bytes_sent
        out: list[bytes] = []
        while not q.empty():
            frame = q.get_nowait()
            out.append(frame_of(frame))
            kind = frame[0] if frame else 0  # counted by first byte: _stats, not labels
            frames_sent[kind] += 1
            bytes_sent[kind] += len(frame)
        if out:
            self.ws.transport.write(b"".join(out) if len(out) > 1 else out[0])

    async def _drain(self) -> None:
        ws = self.ws
        try:
            while True:
                await ws.drain()
                if ws.protocol.state is not State.OPEN or self._queue.empty():
                    return
                self._write_queued()
                if not ws.paused:
                    return
        finally:
            self._drainer = None

    def stop_writing(self) -> None:
        """The connection ended: a drainer still waiting goes."""
        if self._drainer is not None:
            self._drainer.cancel()

    # -- pacing -----------------------------------------------------------------------------

    def acked(self, nbytes: int) -> None:
        self._inflight = max(0, self._inflight - nbytes)  # a repeated ack must not go below 0
        if self._inflight < self._window:
            self._window_open.set()

    def _charge(self, nbytes: int) -> int:
        """Count an entry against the pacing window; returns what it was charged (the
        entry's size the router acknowledges). Every entry costs at least
        :data:`MIN_ENTRY_CHARGE`: a window of tiny frames would otherwise let a hundred
        thousand entries wait in the room log ahead of everyone else's."""
        charged = max(nbytes, MIN_ENTRY_CHARGE)
        self._inflight += charged
        if self._inflight >= self._window:
            self._window_open.clear()
        return charged

    # -- from the socket --------------------------------------------------------------------

    def _entry(self, e: LogEntry) -> None:
        self._seq += 1
        e.seq = self._seq
        self._append(self.ident.log_key, e)

    def append_join(self, gateway: str, *, resync: bool = False) -> None:
        c = self.ident.claims
        info = ParticipantInfo(
            identity=c.identity, name=c.name, metadata=c.metadata, attributes=c.attributes
        )
        perms = Permissions(
            can_publish_data=c.video.can_publish_data,
            can_subscribe=c.video.can_subscribe,
            hidden=c.video.hidden,
        )
        # LiveKit's participant fields: sid, kind, what the token lets it update
        perms = perms.model_copy(update={"can_update_metadata": c.video.can_update_own_metadata})
        kind = "agent" if c.is_agent else c.kind
        info = info.model_copy(
            update={"sid": f"PA_{self.session}", "kind": kind, "permission": perms}
        )
        self._entry(
            LogEntry(
                kind="j",
                session=self.session,
                identity=c.identity,
                gateway=gateway,
                can_subscribe=c.video.can_subscribe,
                data=info.model_dump_json().encode(),
                permissions=perms.model_dump_json().encode(),
                resync=resync,
                announced=self.announced or not resync,
                window=self._window,
                resumable=self.marks,
            )
        )

    def resync(
        self,
        gateway: str,
        reason: str = "the router of this room restarted; streams in flight were lost",
    ) -> None:
        """The router of this room changed and lost its state (or Redis restarted empty):
        streams in flight cannot complete, so end them here (both directions); then
        re-announce the participant and its handlers (marked as re-announcements: the router
        folds them ahead of what it holds back until every gateway has answered)."""
        self.end_receiving(ErrorCode.ROUTER_RESTARTED, reason)
        for sid in self._out.open_ids:
            self._out.abort(sid, ErrorCode.ROUTER_RESTARTED, reason)
            self.push(_error(ErrorCode.ROUTER_RESTARTED, reason, stream_id=sid))
        # closed by the sender, but the old router may never have routed the trailer: the
        # new one never will, and the sender's close() must not wait for it forever
        self._end_closing(ErrorCode.ROUTER_RESTARTED, reason)
        # what the old router never acknowledged, the new one never will
        self._reopen_window()
        self.append_join(gateway, resync=True)
        # requests the old router never acknowledged are replayed, in order, for the new one
        # to answer (the client awaits them); they end in the current subscriptions
        pending = sorted(self.pending_reqs.items())
        replayed = {(kind, topic) for _, (_, kind, topic) in pending}
        for kind, topic in sorted(self.subscriptions - replayed):
            self._resync_entry("s", kind, topic, None)
        for req, (k, kind, topic) in pending:
            self._resync_entry(k, kind, topic, req)

    def _resync_entry(self, k: str, kind: str, topic: str, req: int | None) -> None:
        self._entry(
            LogEntry(
                kind=k, session=self.session, topic=topic, stream_kind=kind, req=req, resync=True
            )
        )

    def append_leave(self, reason: str) -> None:
        self._entry(LogEntry(kind="l", session=self.session, reason=reason))

    def append_suspend(self, reason: str) -> None:
        """Session resume: the socket is gone but the client may resume (the participant
        stays for the resume window; its streams end at their readers)."""
        self._entry(LogEntry(kind="sp", session=self.session, reason=reason))

    def mark(self, at: bytes, now: float) -> None:
        """Session resume: tell the client every delivery up to inbox entry ``at`` went."""
        self.unmarked, self.marked_at = 0, now
        if self.floor is None:
            self.floor = _position(at)
        if self.close_code is None:
            if not self._enqueue(b'{"type":"mark","at":"' + at + b'"}'):
                self.close(CLOSE_SLOW_CONSUMER, "slow consumer: send queue full, receiver too slow")

    def _seen(self, raw: bytes) -> None:
        """Session resume: the client got the mark ``at``: the inbox may go up to there."""
        try:
            at = _position(SeenFrame.model_validate_json(raw).at.encode())
        except (ValidationError, ValueError):
            raise FrameRejected(ErrorCode.BAD_FRAME, "bad seen frame") from None
        if self.floor is None or at > self.floor:
            self.floor = at

    async def reader(self) -> None:
        ws, meter, monotonic = self.ws, self._meter, time.monotonic
        while True:
            if not self._window_open.is_set():
                self.pauses += 1  # the keepalive must not blame the peer for our pause
                await self._window_open.wait()
            raw = await ws.recv(decode=False)
            _stats.frames_received += 1
            _stats.bytes_received += len(raw)
            verdict = meter.charge(len(raw), monotonic())
            self.handle(raw)
            if verdict.wait:
                await self._throttle(verdict)
                if verdict.close or (meter.throttling and ws.protocol.state is State.CLOSED):
                    # closed for flooding, or gone while throttled: what it sent after that
                    # is not handled, not even the frames websockets already parsed and
                    # queued (at the reduced rate a flooder's queue would take minutes)
                    return

    async def _throttle(self, verdict: FloodVerdict) -> None:
        """Over its rate: stop reading this socket for a while (TCP pushes back); tell the
        client once per spell; close it when it keeps flooding."""
        self.pauses += 1
        rates = self._limits.rates
        if verdict.close:
            logger.warning("closing a connection that kept flooding", extra=self._extra)
            reason = f"rate limited: over {rates.frames_per_second:g} frames/s for too long"
            self.push(_error(ErrorCode.RATE_LIMITED, reason))
            self.close(CLOSE_RATE_LIMITED, reason, ErrorCode.RATE_LIMITED)
            await self.ws.wait_closed()
            return
        if verdict.warn:
            logger.info("throttling a connection over its rate", extra=self._extra)
            self.push(
                _error(
                    ErrorCode.RATE_LIMITED,
                    f"over {rates.frames_per_second:g} frames/s: reading is slowed to "
                    f"{rates.frames_per_second * rates.penalty:g} frames/s until you keep "
                    f"to that for a second; {rates.close_after * rates.frames_per_second:g} "
                    "more frames before that and the connection is closed",
                )
            )
        await asyncio.sleep(verdict.wait)

    def handle(self, raw: bytes) -> None:
        """Validate one client frame and append it, or answer an error frame."""
        try:
            self._handle(raw)
        except Overloaded as exc:
            self.push(_error(ErrorCode.OVERLOADED, str(exc)))
            self.close(CLOSE_TRY_AGAIN_LATER, "gateway overloaded: Redis is not keeping up")
        except FrameRejected as rej:
            self.push(_error(rej.code, rej.message, stream_id=rej.stream_id, req=rej.req))
            if rej.abort is not None:
                _stats.streams_aborted[rej.code] += 1
                data = rej.abort.model_dump_json().encode()
                self._entry(
                    LogEntry(
                        kind="t", session=self.session, stream_id=rej.stream_id or "", data=data
                    )
                )
        except Exception:
            # a frame the checks above did not foresee: refused, logged, nothing else hurt
            logger.exception("frame could not be handled: %.120r", raw, extra=self._extra)
            self.push(_error(ErrorCode.INTERNAL_ERROR, "the gateway could not handle this frame"))

    def _handle(self, raw: bytes) -> None:
        if len(raw) > MAX_FRAME_BYTES:
            raise FrameRejected(
                ErrorCode.FRAME_TOO_LARGE, f"frame of {len(raw)} bytes exceeds {MAX_FRAME_BYTES}"
            )
        if raw[:1] == bytes((BYTE_CHUNK,)):
            self._byte_chunk(raw)
            return
        if raw[:1] == bytes((DATA_PACKET,)):
            self._data_packet(raw)
            return
        if raw[:14] == SEEN_PREFIX:  # session resume
            self._seen(raw)
            return
        try:
            raw.decode("utf-8")
        except UnicodeDecodeError as exc:
            self._bad_text(raw, f"frame is not valid UTF-8: {exc.reason}", ErrorCode.BAD_ENCODING)
        try:
            frame = client_frame_adapter.validate_json(raw, strict=True)
        except ValidationError as exc:
            code, message = _classify(exc, raw)
            if code == ErrorCode.BAD_UTF8:
                self._bad_text(raw, message, ErrorCode.BAD_UTF8)
            raise FrameRejected(code, message) from None
        if isinstance(frame, ChunkFrame):
            self._chunk(frame, raw)
        elif isinstance(frame, HeaderFrame):
            self._header(frame, raw)
        elif isinstance(frame, TrailerFrame):
            self._trailer(frame, raw)
        elif isinstance(frame, UpdateParticipantFrame):
            self._update_participant(frame)
        elif isinstance(frame, RpcRequestFrame | RpcAckFrame | RpcResponseFrame):
            self._rpc(frame)
        else:
            self._subscription(frame)

    def _bad_text(self, raw: bytes, message: str, default: str) -> None:
        """Undecodable text: if it names an open stream's chunk, that stream ends too."""
        obj = _salvage(raw)
        if obj is None or obj.get("type") != "chunk" or not isinstance(obj.get("stream_id"), str):
            raise FrameRejected(default, message)
        sid = str(obj["stream_id"])
        self._may_publish(sid)
        raise self._out.abort(sid, ErrorCode.BAD_UTF8, message)

    def _may_publish(self, stream_id: str | None) -> None:
        if not self.ident.claims.video.can_publish_data:
            raise FrameRejected(
                ErrorCode.PERMISSION_DENIED,
                "this token does not allow publishing data (canPublishData=false)",
                stream_id=stream_id,
            )

    def _subscription(self, f: SubscribeFrame | UnsubscribeFrame) -> None:
        _check_topic(f.topic, req=f.req)
        kind = "s" if isinstance(f, SubscribeFrame) else "u"
        lim = self._limits
        if f.req is not None and len(self.pending_reqs) >= lim.max_pending_requests:
            raise FrameRejected(
                ErrorCode.TOO_MANY_REQUESTS,
                f"{lim.max_pending_requests} handler registrations are already waiting for "
                "the router; wait for their acknowledgements",
                req=f.req,
            )
        if (
            kind == "s"
            and (f.kind, f.topic) not in self.subscriptions
            and len(self.subscriptions) >= lim.max_subscriptions
        ):
            raise FrameRejected(
                ErrorCode.TOO_MANY_REQUESTS,
                f"at most {lim.max_subscriptions} handlers may be registered per connection",
                req=f.req,
            )
        if kind == "s":
            self.subscriptions = added(self.subscriptions, (f.kind, f.topic))
        else:
            discard(self.subscriptions, (f.kind, f.topic))
        self._entry(
            LogEntry(kind=kind, session=self.session, topic=f.topic, stream_kind=f.kind, req=f.req)
        )
        if f.req is not None:
            self.pending_reqs[f.req] = (kind, f.kind, f.topic)

    def _header(self, h: HeaderFrame, raw: bytes) -> None:
        self._may_publish(h.stream_id)
        if len(raw) > MAX_HEADER_BYTES:
            raise FrameRejected(
                ErrorCode.HEADER_TOO_LARGE,
                f"header of {len(raw)} bytes exceeds {MAX_HEADER_BYTES}",
                stream_id=h.stream_id,
            )
        _check_topic(h.topic, stream_id=h.stream_id)
        if not h.stream_id or len(h.stream_id.encode()) > MAX_STREAM_ID_BYTES:
            raise FrameRejected(ErrorCode.BAD_FRAME, "stream_id must be 1 to 128 bytes")
        if any(not d or len(d.encode()) > MAX_IDENTITY_BYTES for d in h.destination_identities):
            raise FrameRejected(
                ErrorCode.BAD_FRAME,
                "destination identities must be non-empty",
                stream_id=h.stream_id,
            )
        if len(json.dumps(h.attributes)) > MAX_ATTRIBUTES_BYTES:
            raise FrameRejected(ErrorCode.BAD_FRAME, "attributes too large", stream_id=h.stream_id)
        if h.kind == "byte" and (problem := file_name_problem(h.name)) is not None:
            raise FrameRejected(
                ErrorCode.BAD_FRAME, f"bad byte stream name: {problem}", stream_id=h.stream_id
            )
        sender, generated = self._header_sender(h)
        self._out.header(h)
        delivered = DeliveredHeader(**{**h.model_dump(), "generated": generated}, sender=sender)
        data = delivered.model_dump_json().encode()
        charged = self._charge(len(data))
        self._entry(
            LogEntry(
                kind="h",
                session=self.session,
                stream_id=h.stream_id,
                topic=h.topic,
                stream_kind=h.kind,
                destinations=tuple(h.destination_identities),
                data=data,
                size=charged,
            )
        )

    def _header_sender(self, h: HeaderFrame) -> tuple[str, bool]:
        """Who the stream is delivered as: LiveKit's ``sender_identity`` lets an agent
        speak for another participant (the stream is then ``generated``); anyone else is
        refused it."""
        other = h.sender_identity
        claims = self.ident.claims
        if other is None or other == claims.identity:
            return self._stamp, h.generated
        if not claims.is_agent:
            raise FrameRejected(
                ErrorCode.PERMISSION_DENIED,
                "sender_identity is for agents only (a token of kind 'agent' or with the "
                "agent grant)",
                stream_id=h.stream_id,
            )
        if not other or len(other.encode()) > MAX_IDENTITY_BYTES:
            raise FrameRejected(
                ErrorCode.BAD_FRAME, "sender_identity must be 1 to 256 bytes", stream_id=h.stream_id
            )
        return other, True

    def _update_participant(self, f: UpdateParticipantFrame) -> None:
        """LiveKit's set_name/set_metadata/set_attributes: with the token's
        canUpdateOwnMetadata grant and within LiveKit's limits; the router merges it."""
        claims = self.ident.claims
        if not claims.video.can_update_own_metadata:
            raise FrameRejected(
                ErrorCode.PERMISSION_DENIED,
                "this token does not allow updating its own metadata (canUpdateOwnMetadata)",
                req=f.req,
            )
        limits = (
            ("name", f.name, MAX_PARTICIPANT_NAME_BYTES),
            ("metadata", f.metadata, MAX_PARTICIPANT_METADATA_BYTES),
        )
        for what, value, limit in limits:
            if value is not None and _utf8_len(value) > limit:
                raise FrameRejected(
                    ErrorCode.METADATA_TOO_LARGE, f"{what} exceeds {limit} bytes", req=f.req
                )
        attrs = f.attributes or {}
        size = sum(_utf8_len(k) + _utf8_len(v) for k, v in attrs.items())
        if size > MAX_PARTICIPANT_ATTRIBUTES_BYTES:
            raise FrameRejected(
                ErrorCode.METADATA_TOO_LARGE,
                f"attributes of {size} bytes exceed {MAX_PARTICIPANT_ATTRIBUTES_BYTES}",
                req=f.req,
            )
        if any(not k for k in attrs):
            raise FrameRejected(ErrorCode.BAD_FRAME, "attribute keys must not be empty", req=f.req)
        update = UpdateParticipantFrame(name=f.name, metadata=f.metadata, attributes=f.attributes)
        data = update.model_dump_json(exclude_none=True, exclude={"type", "req"}).encode()
        charged = self._charge(len(data))
        self._entry(
            LogEntry(
                kind="m",
                session=self.session,
                identity=claims.identity,
                data=data,
                size=charged,
                req=f.req,
            )
        )

    def _rpc(self, f: RpcRequestFrame | RpcAckFrame | RpcResponseFrame) -> None:
        """An RPC frame (see ``protocol/frames.py``): stamped with who sent it and appended
        for the router to route to ``destination``. A payload over LiveKit's 15 KiB is
        answered here (request) or replaced by LiveKit's error (response)."""
        self._may_publish(None)
        me = self._stamp or self.ident.claims.identity
        if not f.destination or len(f.destination.encode()) > MAX_IDENTITY_BYTES:
            raise FrameRejected(ErrorCode.BAD_FRAME, "rpc destination must be 1 to 256 bytes")
        delivered: DeliveredRpcRequest | DeliveredRpcAck | DeliveredRpcResponse
        if isinstance(f, RpcRequestFrame):
            if not f.id or len(f.id.encode()) > MAX_STREAM_ID_BYTES:
                raise FrameRejected(ErrorCode.BAD_FRAME, "rpc request id must be 1 to 128 bytes")
            if _utf8_len(f.payload) > MAX_RPC_PAYLOAD_BYTES:
                too_large = DeliveredRpcResponse(
                    request_id=f.id,
                    destination=me,
                    error=RpcErrorCode.REQUEST_PAYLOAD_TOO_LARGE.error(),
                )
                self.push(too_large.model_dump_json().encode())
                return
            delivered = DeliveredRpcRequest(**f.model_dump(), caller=me)
            rid, what = f.id, "request"
        elif isinstance(f, RpcAckFrame):
            delivered = DeliveredRpcAck(**f.model_dump(), sender=me)
            rid, what = f.request_id, "ack"
        else:
            if f.payload is not None and _utf8_len(f.payload) > MAX_RPC_PAYLOAD_BYTES:
                f = RpcResponseFrame(
                    request_id=f.request_id,
                    destination=f.destination,
                    error=RpcErrorCode.RESPONSE_PAYLOAD_TOO_LARGE.error(),
                )
            delivered = DeliveredRpcResponse(**f.model_dump(), sender=me)
            rid, what = f.request_id, "response"
        data = delivered.model_dump_json().encode()
        charged = self._charge(len(data))
        self._entry(
            LogEntry(
                kind="rp",
                session=self.session,
                identity=f.destination,
                stream_id=rid,
                topic=what,
                data=data,
                size=charged,
            )
        )

    def _chunk(self, c: ChunkFrame, raw: bytes) -> None:
        self._may_publish(c.stream_id)
        self._out.chunk(c)
        # re-serialised, never the client's bytes: whatever the client wrote (repeated keys,
        # odd spacing), every later reader parses exactly the frame validated here
        data = _CHUNK.dump_json(c)
        charged = self._charge(len(data))
        self._entry(
            LogEntry(kind="c", session=self.session, stream_id=c.stream_id, data=data, size=charged)
        )

    def _byte_chunk(self, raw: bytes) -> None:
        """A binary byte chunk: stored and delivered as the client's bytes."""
        try:
            c = decode_byte_chunk(raw)
        except BadBinaryFrame as exc:
            raise FrameRejected(ErrorCode.BAD_FRAME, f"malformed byte chunk: {exc}") from None
        self._may_publish(c.stream_id)
        self._out.byte_chunk(c.stream_id, c.chunk_index, len(c.payload))
        charged = self._charge(len(raw))
        self._entry(
            LogEntry(kind="c", session=self.session, stream_id=c.stream_id, data=raw, size=charged)
        )

    def _data_packet(self, raw: bytes) -> None:
        """A data packet: re-emitted with the sender's identity stamped in its meta. A
        numbered one that is refused fails its sender's call (the error names it)."""
        try:
            p = decode_data_packet(raw)
        except BadBinaryFrame as exc:
            self._may_publish(None)
            raise FrameRejected(ErrorCode.BAD_FRAME, f"malformed data packet: {exc}") from None
        try:
            self._data_packet_checked(p)
        except FrameRejected as rej:
            if not p.number:
                raise
            _stats.errors[rej.code] += 1
            frame = ErrorFrame(code=rej.code, message=rej.message, packets=(p.number, p.number))
            self.push(frame.model_dump_json().encode())

    def _data_packet_checked(self, p: DataPacketFrame) -> None:
        self._may_publish(None)
        try:
            if len(p.meta) > MAX_DATA_META_BYTES:
                raise BadBinaryFrame(f"meta of {len(p.meta)} bytes exceeds {MAX_DATA_META_BYTES}")
            meta = DataMeta.model_validate_json(p.meta)
        except (BadBinaryFrame, ValidationError) as exc:
            raise FrameRejected(ErrorCode.BAD_FRAME, f"malformed data packet: {exc}") from None
        if len(p.payload) > MAX_DATA_BYTES:
            raise FrameRejected(
                ErrorCode.DATA_TOO_LARGE,
                f"data packet payload of {len(p.payload)} bytes exceeds {MAX_DATA_BYTES}",
            )
        if len(meta.topic.encode("utf-8", "replace")) > MAX_TOPIC_BYTES:
            raise FrameRejected(ErrorCode.BAD_TOPIC, f"topic longer than {MAX_TOPIC_BYTES} bytes")
        if any(not d or len(d.encode()) > MAX_IDENTITY_BYTES for d in meta.destination_identities):
            raise FrameRejected(ErrorCode.BAD_FRAME, "destination identities must be non-empty")
        delivered = DeliveredDataMeta(
            topic=meta.topic,
            destination_identities=meta.destination_identities,
            sender=self._stamp,
        )
        data = encode_data_packet(
            delivered.model_dump_json().encode(), p.payload, reliable=p.reliable
        )
        charged = self._charge(len(data))
        self._entry(
            LogEntry(
                kind="p",
                session=self.session,
                topic=meta.topic,
                destinations=tuple(meta.destination_identities),
                data=data,
                size=charged,
                packet=p.number,
            )
        )
        if p.number:
            self.packets_appended = p.number

    def _trailer(self, t: TrailerFrame, raw: bytes) -> None:
        self._may_publish(t.stream_id)
        self._out.trailer(t)
        self.closing = added(self.closing, t.stream_id)
        data = _TRAILER.dump_json(t)  # re-serialised, as chunks are
        charged = self._charge(len(data))
        self._entry(
            LogEntry(kind="t", session=self.session, stream_id=t.stream_id, data=data, size=charged)
        )
