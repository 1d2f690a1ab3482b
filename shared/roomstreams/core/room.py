"""The router's room fold, sans-I/O: room-log entries in, deliveries out.

A room's state (members, their handler topics, the open streams and who receives each) is a
pure function of its log. :meth:`RoomState.apply` folds one entry and tells a :class:`Sink`
what to deliver to which sessions on which gateway. The spec's rules live here:

* recipients of a stream are frozen when its header is applied: members other than the
  sender, with ``can_subscribe``, with a handler for the topic (of the stream's kind), narrowed
  to ``destination_identities`` when given. Chunks and the trailer go to that set only, minus
  members that left. A late joiner gets nothing of a stream opened before it joined.
* handler order = header order, reader close order = trailer order: both are log order.
* a sender that leaves mid-stream: its open streams end with an abnormal trailer.
* a data packet (no stream state) goes to the members other than the sender with
  ``can_subscribe``, narrowed to ``destination_identities`` when given, whatever their
  handlers, in log order with the room's other traffic.

After a router takeover the state is rebuilt from re-announcements (joins flagged
``resync``), silently: the participants already know each other. :meth:`RoomState.settle`
then reconciles presence with what the previous router had: members it knew that nobody
re-announced have left (the others are told), and members whose join it never routed are
announced (their own joined frame, and to the others).
"""

from __future__ import annotations

import secrets
from collections import defaultdict
from dataclasses import dataclass, field
from typing import Protocol

from ..protocol.entries import LogEntry
from ..protocol.frames import (
    AckFrame,
    ClosedFrame,
    DeliveredRpcResponse,
    DeliveredTrailer,
    ErrorCode,
    ErrorFrame,
    GoAwayFrame,
    JoinedFrame,
    ParticipantInfo,
    ParticipantJoinedFrame,
    ParticipantLeftFrame,
    ParticipantUpdatedFrame,
    Permissions,
    ResumedFrame,
    UpdateParticipantFrame,
)
from ..protocol.limits import MAX_PARTICIPANT_ATTRIBUTES_BYTES
from ..protocol.rpc import RpcErrorCode

__all__ = ["SERVER_SESSION", "Maybe", "Member", "OpenStream", "RoomState", "Sink"]

#: the session of room-log entries the server API appends (a remove, a data packet)
SERVER_SESSION = "api"


class Sink(Protocol):
    """Where the fold's output goes (the router's batch, or a list in tests)."""

    def deliver(
        self,
        gateway: str,
        sessions: list[str],
        frame: bytes,
        *,
        opens: str = "",
        ends: str = "",
        maybe: Maybe | None = None,
        joined: bool = False,
        ack: int | None = None,
    ) -> None:
        """Deliver ``frame`` to ``sessions``. ``opens``/``ends`` name the stream it opens or
        ends; ``joined`` marks the member's own joined frame and ``ack`` the acknowledgement
        of request ``ack``: the gateway acts on those marks, never on the frame's bytes."""
        ...

    def ack(self, gateway: str, session: str, nbytes: int) -> None: ...

    def packets_routed(self, gateway: str, session: str, number: int) -> None:
        """The sender's numbered data packets up to ``number`` are routed (data-packet
        acks): the sink tells its gateway the highest number once per wake-up."""
        ...

    def close_sessions(self, gateway: str, sessions: list[str], frame: bytes) -> None: ...

    def moved(
        self, old_gateway: str, old_session: str, gateway: str, session: str, frame: bytes
    ) -> None:
        """Session resume: ``old_session`` is ``session`` on ``gateway`` from now on. The
        sink puts a marker in the old gateway's inbox (where the old session's deliveries
        stop) and ``frame`` (the ``resumed`` frame) in the new one's, flagged."""
        ...

    def resume_refused(self, gateway: str, session: str, frame: bytes) -> None:
        """Session resume refused: ``frame`` (a goaway) to ``session``, flagged."""
        ...

    def presence(
        self,
        room: str,
        session: str,
        identity: str,
        info: bytes | None,
        reason: str = "",
        *,
        announce: bool = True,
    ) -> None:
        """A member joined (``info`` is its ParticipantInfo JSON) or left (``info`` None);
        ``announce`` is False for a member re-announced to a new router (no event)."""
        ...


@dataclass(slots=True)
class Member:
    session: str
    identity: str
    gateway: str
    info: ParticipantInfo
    can_subscribe: bool = True
    topics: dict[str, set[str]] = field(default_factory=lambda: {"text": set(), "byte": set()})
    last_seq: int = 0
    #: entries of this member were lost before routing at least once
    lagged: bool = False
    #: streams of this member the router ended abnormally (their trailer is still to come)
    aborted: set[str] = field(default_factory=set)
    #: routed bytes not yet acknowledged to its gateway, and the amount that triggers an
    #: acknowledgement: a quarter of the gateway's pacing window (0: acknowledge each entry)
    unacked: int = 0
    ack_every: int = 0
    #: its Permissions JSON, as its gateway stamped them from the token
    permissions: bytes = b"{}"
    #: a hidden participant (token grant ``hidden``): never announced to the others, not in
    #: their participant lists, not listed by the server API, no room events
    hidden: bool = False
    #: the highest number of its numbered data packets routed (acknowledged to it)
    packets: int = 0
    #: its client can resume the session (session resume: see :meth:`RoomState.suspend_gateway`)
    resumable: bool = False


#: Bytes of a stream's frames the router keeps for its unresolved maybe-recipients; past it,
#: they are given up (those that took the header get an abnormal trailer).
MAYBE_HOLD_BYTES = 1 << 20


@dataclass(frozen=True, slots=True)
class Maybe:
    """Sessions that get a stream's header only if their gateway says so: members that had
    no handler for the stream's topic when the router routed the header (their registration
    may be on its way). Their gateway delivers the header to those whose socket has
    registered (kind, topic) by the time it arrives, and appends a ``dc`` entry naming the
    others. The router keeps the stream's later frames meanwhile: a maybe-recipient whose
    ``subscribe`` it then folds (its gateway appended it before taking the header, so it
    comes before any decline) gets them replayed and becomes a recipient; a declined one is
    forgotten. So a handler registered without awaiting, right before a stream arrives,
    still gets all of it, and a participant without one gets no byte beyond the header's
    inbox entry. Also used for an abnormal trailer to maybe-recipients (the gateway gives it
    to those that took the header)."""

    sessions: list[str]
    stream_id: str
    kind: str
    topic: str


@dataclass(slots=True)
class OpenStream:
    stream_id: str
    sender: str  # session
    sender_identity: str
    sender_gateway: str
    recipients: set[str]
    targets: dict[str, list[str]]  # gateway -> sessions, derived from recipients
    #: members without a handler when the header was routed (see :class:`Maybe`)
    maybe: set[str] = field(default_factory=set)
    maybe_targets: dict[str, list[str]] = field(default_factory=dict)
    kind: str = "text"
    topic: str = ""
    #: frames routed since the header while maybe-recipients are unresolved: (frame, the
    #: stream id if it is the trailer)
    held: list[tuple[bytes, str]] = field(default_factory=list)
    held_bytes: int = 0


def _frame(model: object) -> bytes:
    if type(model) is ErrorFrame:  # counted for the router's /metrics (RoomState.errors)
        RoomState.errors[model.code] += 1
    return model.model_dump_json().encode()  # type: ignore[attr-defined,no-any-return]


class RoomState:
    """Members and open streams of one room."""

    #: process-wide counters the router's /metrics reads (services/observability.py):
    #: streams opened; streams ended by reason ("completed", "aborted_at_gateway", or the
    #: code the fold ended it with); error frames the fold sent, by code
    opened = 0
    ended: defaultdict[str, int] = defaultdict(int)
    errors: defaultdict[str, int] = defaultdict(int)

    def __init__(self, name: str, *, settled: bool = True) -> None:
        self.name = name
        #: LiveKit's room sid, new with each room state (a takeover starts a new one)
        self.sid = f"RM_{secrets.token_hex(6)}"
        #: streams that ended while maybe-recipients were unresolved (see :class:`Maybe`)
        self.unresolved: dict[str, OpenStream] = {}
        self.members: dict[str, Member] = {}
        self.streams: dict[str, OpenStream] = {}
        #: False for a room taken over from another router until :meth:`settle`
        self.settled = settled
        #: this state was rebuilt by a takeover (it started unsettled)
        self._taken_over = not settled
        #: re-announced members whose join the previous router never routed, to announce
        #: when the room settles
        self._unannounced: list[str] = []

    @property
    def empty(self) -> bool:
        return not self.members

    # -- helpers --------------------------------------------------------------------------

    def _group(self, sessions: set[str] | list[str]) -> dict[str, list[str]]:
        by_gw: dict[str, list[str]] = defaultdict(list)
        for s in sessions:
            m = self.members.get(s)
            if m is not None:
                by_gw[m.gateway].append(s)
        return dict(by_gw)

    def _broadcast(self, sink: Sink, frame: bytes, *, exclude: str) -> None:
        others = [s for s in self.members if s != exclude]
        for gw, sessions in self._group(others).items():
            sink.deliver(gw, sessions, frame)

    def _ack(self, m: Member, nbytes: int, sink: Sink) -> None:
        """Pacing: tell the sender's gateway what was routed, in steps of ``ack_every``.
        Never a deadlock: the gateway stops reading only with a full window in flight, and
        all but less than a quarter of it is still to be routed, which crosses the step."""
        m.unacked += nbytes
        if m.unacked >= m.ack_every and m.unacked:
            sink.ack(m.gateway, m.session, m.unacked)
            m.unacked = 0

    def _to(
        self,
        sink: Sink,
        member: Member,
        frame: bytes,
        *,
        ends: str = "",
        joined: bool = False,
        ack: int | None = None,
    ) -> None:
        sink.deliver(member.gateway, [member.session], frame, ends=ends, joined=joined, ack=ack)

    def _abort(self, sink: Sink, st: OpenStream, code: str, reason: str) -> None:
        """End ``st`` abnormally at its receivers and forget it."""
        if self.streams.pop(st.stream_id, None) is not None:
            RoomState.ended[code] += 1
        frame = _frame(DeliveredTrailer(stream_id=st.stream_id, reason=reason, code=code))
        for gw, sessions in st.targets.items():
            sink.deliver(gw, sessions, frame, ends=st.stream_id)
        if st.maybe:
            self._end_maybe(sink, st, frame)

    def _stream_deliver(self, sink: Sink, st: OpenStream, frame: bytes, *, ends: str = "") -> None:
        """A chunk or the trailer of ``st`` to its recipients; kept for its unresolved
        maybe-recipients, if any."""
        for gw, sessions in st.targets.items():
            sink.deliver(gw, sessions, frame, ends=ends)
        if st.maybe:  # never when every receiver had its handler in effect
            st.held.append((frame, ends))
            st.held_bytes += len(frame)
            if ends:
                self.unresolved[st.stream_id] = st
            if st.held_bytes > MAYBE_HOLD_BYTES:
                reason = "the stream outran the registration of its handler"
                trailer = DeliveredTrailer(
                    stream_id=st.stream_id, reason=reason, code=ErrorCode.LAGGED
                )
                self._end_maybe(sink, st, _frame(trailer))

    def _end_maybe(self, sink: Sink, st: OpenStream, trailer: bytes) -> None:
        """Give up the maybe-recipients of ``st``: those whose gateway gave them the header
        get ``trailer``."""
        for gw, sessions in st.maybe_targets.items():
            mb = Maybe(sessions, st.stream_id, st.kind, st.topic)
            sink.deliver(gw, [], trailer, ends=st.stream_id, maybe=mb)
        st.maybe.clear()
        self._resolved(st)

    def _resolved(self, st: OpenStream) -> None:
        """Recompute ``st``'s maybe-recipients; with none left, what was kept goes."""
        st.maybe_targets = self._group(st.maybe) if st.maybe else {}
        if not st.maybe:
            st.held.clear()
            st.held_bytes = 0
            self.unresolved.pop(st.stream_id, None)

    def _promote(self, m: Member, kind: str, topic: str, sink: Sink) -> None:
        """``m``'s registration of (kind, topic) is folded: streams it was a maybe-recipient
        of (its gateway gave it their header) replay what was kept, and it receives the rest."""
        for st in [*self.streams.values(), *self.unresolved.values()]:
            if m.session not in st.maybe or st.kind != kind or st.topic != topic:
                continue
            st.maybe.discard(m.session)
            for frame, ends in st.held:
                sink.deliver(m.gateway, [m.session], frame, ends=ends)
            if st.stream_id in self.streams:
                st.recipients.add(m.session)
                st.targets = self._group(st.recipients)
            self._resolved(st)

    # -- the fold -------------------------------------------------------------------------

    def apply(self, e: LogEntry, sink: Sink) -> None:
        kind = e.kind
        if kind == "j":
            self._join(e, sink)
            return
        if kind == "r":
            self.remove(e.identity, e.reason or "removed from the room", sink)
            return
        if kind == "dc":
            self._declined(e)
            return
        if kind == "mv":  # session resume: a new connection takes an existing member over
            self._move(e, sink)
            return
        if kind == "p" and e.session == SERVER_SESSION:
            self._server_packet(e, sink)
            return
        if kind == "m" and e.session == SERVER_SESSION:
            for target in [o for o in self.members.values() if o.identity == e.identity]:
                self._update_info(target, e.data, sink)
            return
        m = self.members.get(e.session)
        if m is None:
            return  # entry of a session that already left (or whose join was never seen)
        if e.seq and e.seq <= m.last_seq:
            return  # a repeat: the gateway retried an append that had gone through
        if e.seq and m.last_seq and e.seq != m.last_seq + 1:
            self._lagged(m, sink, e.seq)
        if e.seq:
            m.last_seq = e.seq
        if kind == "c":
            st = self.streams.get(e.stream_id)
            if st is not None and st.sender == e.session:
                self._stream_deliver(sink, st, e.data)
            self._ack(m, e.size, sink)
        elif kind == "h":
            self._header(m, e, sink)
        elif kind == "t":
            st = self.streams.get(e.stream_id)
            if st is not None and st.sender == e.session:
                del self.streams[e.stream_id]
                # a trailer the gateway appended for bad input carries no pacing charge
                RoomState.ended["completed" if e.size else "aborted_at_gateway"] += 1
                self._stream_deliver(sink, st, e.data, ends=e.stream_id)
                # ends=: the sender's gateway stops waiting for this trailer to be routed
                self._to(sink, m, _frame(ClosedFrame(stream_id=e.stream_id)), ends=e.stream_id)
            elif st is None and e.stream_id not in m.aborted:
                # its header was never routed (lost to trimming): the sender must not wait
                err = ErrorFrame(
                    code=ErrorCode.LAGGED if m.lagged else ErrorCode.UNKNOWN_STREAM,
                    message=f"stream {e.stream_id!r} was not routed: its header was lost",
                    stream_id=e.stream_id,
                )
                self._to(sink, m, _frame(err), ends=e.stream_id)
            m.aborted.discard(e.stream_id)
            self._ack(m, e.size, sink)
        elif kind in ("s", "u"):
            topics = m.topics.setdefault(e.stream_kind, set())
            if kind == "s":
                topics.add(e.topic)
                if self.streams or self.unresolved:
                    self._promote(m, e.stream_kind, e.topic, sink)
            else:
                topics.discard(e.topic)
            if e.req is not None:
                self._to(sink, m, _frame(AckFrame(req=e.req)), ack=e.req)
        elif kind == "l":
            self._leave(m, e.reason, sink)
        elif kind == "sp":  # session resume: its connection dropped
            self._suspend(m, e.reason, sink)
        elif kind == "p":
            self._packet(m, e, sink)
        elif kind == "m":
            self._update(m, e, sink)
        elif kind == "rp":
            self._rpc(m, e, sink)

    def apply_held(self, e: LogEntry, sink: Sink) -> None:
        """Fold an entry held back during a takeover (see the router's resync). Entries a
        member appended before its re-announcement carry older sequence numbers than its
        re-announced join: its stream entries are dropped (its gateway ended those streams
        when it re-announced, both ways), the rest (data packets, updates, registrations)
        are folded without the repeat check, so nothing sent meanwhile is lost."""
        m = self.members.get(e.session)
        if m is not None and e.seq and e.seq <= m.last_seq:
            if e.kind in ("h", "c", "t"):
                return
            e.seq = 0
        self.apply(e, sink)

    def reject(self, e: LogEntry, sink: Sink) -> None:
        """Folding ``e`` raised (a malformed entry): end what it concerns, clearly. Its
        stream ends abnormally at its receivers and its sender is told; a join that cannot
        be folded closes the joining connection (it would wait for ``joined`` forever)."""
        reason = f"the router could not handle a {e.kind!r} entry; it was rejected"
        st = self.streams.get(e.stream_id) if e.stream_id else None
        if st is not None and st.sender == e.session:
            self._abort(sink, st, ErrorCode.INTERNAL_ERROR, reason)
        m = self.members.get(e.session)
        if m is not None:
            err = ErrorFrame(
                code=ErrorCode.INTERNAL_ERROR, message=reason, stream_id=e.stream_id or None
            )
            self._to(sink, m, _frame(err), ends=e.stream_id)
        elif e.kind == "j" and e.gateway and e.session:
            goaway = GoAwayFrame(code=ErrorCode.INTERNAL_ERROR, reason=reason)
            sink.close_sessions(e.gateway, [e.session], _frame(goaway))

    def _join(self, e: LogEntry, sink: Sink) -> None:
        if e.session in self.members:
            return
        info = ParticipantInfo.model_validate_json(e.data)
        perms = Permissions.model_validate_json(e.permissions)
        if e.resync and e.announced:
            # re-announced to a router that took the partition over: the participant and
            # the others already know each other; only the router has to learn it again
            m = self._add(e, info, perms)
            if not self.settled or not self._taken_over:
                # (a room that was never taken over: Redis restarted empty and the gateways
                # re-announce everyone to a router starting afresh; nobody was told anything)
                self._presence(sink, m, e.data, announce=False)
                return
            # re-announced after the room settled (its gateway answered late): the others
            # were told it had left
            self._announce(sink, m)
            self._presence(sink, m, e.data)
            return
        if e.resync and not self.settled:
            # its join was never routed: announced when the room settles (once the room has
            # settled, such a join is folded as a plain one, below)
            m = self._add(e, info, perms)
            self._unannounced.append(e.session)
            self._presence(sink, m, e.data, announce=False)
            return
        for old in [m for m in self.members.values() if m.identity == e.identity]:
            # LiveKit's rule: a second connection with the same identity replaces the first.
            reason = "replaced by a newer connection with the same identity"
            self._leave(old, reason, sink)
            goaway = GoAwayFrame(code=ErrorCode.DUPLICATE_IDENTITY, reason=reason)
            sink.close_sessions(old.gateway, [old.session], _frame(goaway))
        others = [o.info for o in self.members.values() if not o.hidden]
        m = self._add(e, info, perms)
        joined = JoinedFrame(
            room=self.name,
            room_sid=self.sid,
            session=e.session,
            participant=info,
            permissions=perms,
            participants=others,
        )
        self._to(sink, m, _frame(joined), joined=True)
        self._announce(sink, m)
        self._presence(sink, m, e.data)

    def _add(self, e: LogEntry, info: ParticipantInfo, perms: Permissions) -> Member:
        m = Member(
            session=e.session,
            identity=e.identity,
            gateway=e.gateway,
            info=info,
            can_subscribe=e.can_subscribe,
            last_seq=e.seq,
            ack_every=e.window // 4,
            permissions=e.permissions,
            hidden=perms.hidden,
            resumable=e.resumable,
        )
        self.members[e.session] = m
        return m

    def _announce(self, sink: Sink, m: Member) -> None:
        """Tell the others that ``m`` joined (never for a hidden participant)."""
        if not m.hidden:
            frame = _frame(ParticipantJoinedFrame(participant=m.info))
            self._broadcast(sink, frame, exclude=m.session)

    def _presence(
        self,
        sink: Sink,
        m: Member,
        info: bytes | None,
        reason: str = "",
        *,
        announce: bool = True,
    ) -> None:
        """Record a join (``info``) or a leave (None) for listing and room events; a hidden
        participant is neither listed nor reported."""
        if not m.hidden:
            sink.presence(self.name, m.session, m.identity, info, reason, announce=announce)

    def settle(self, previous: dict[str, str], sink: Sink) -> None:
        """End of a takeover's re-announcements. ``previous`` is what the previous router
        had (session -> identity): who of it was not re-announced left while no router ran,
        and is gone for the others; whose join was never routed is announced now."""
        self.settled = True
        pending, self._unannounced = self._unannounced, []
        waiting = set(pending)  # not told anything before their own joined frame
        reason = "left while the room's router was restarting"
        present = {m.identity for m in self.members.values()}
        for session, identity in sorted(previous.items()):
            if session in self.members or identity in present:
                continue
            present.add(identity)  # one notice per identity
            left = _frame(ParticipantLeftFrame(identity=identity, reason=reason))
            told = [s for s in self.members if s not in waiting]
            for gw, sessions in self._group(told).items():
                sink.deliver(gw, sessions, left)
            sink.presence(self.name, session, identity, None, reason)
        for session in pending:
            waiting.discard(session)
            m = self.members.get(session)
            if m is None:
                continue
            others = [
                o.info
                for o in self.members.values()
                if o.session != session and o.session not in waiting and not o.hidden
            ]
            joined = JoinedFrame(
                room=self.name,
                room_sid=self.sid,
                session=session,
                participant=m.info,
                permissions=Permissions.model_validate_json(m.permissions),
                participants=others,
            )
            self._to(sink, m, _frame(joined), joined=True)
            if not m.hidden:
                notice = _frame(ParticipantJoinedFrame(participant=m.info))
                told = [s for s in self.members if s != session and s not in waiting]
                for gw, sessions in self._group(told).items():
                    sink.deliver(gw, sessions, notice)
            self._presence(sink, m, m.info.model_dump_json().encode())

    def _leave(self, m: Member, reason: str, sink: Sink) -> None:
        for st in [s for s in self.streams.values() if s.sender == m.session]:
            why = f"sender {m.identity!r} left the room mid-stream"
            self._abort(sink, st, ErrorCode.SENDER_LEFT, f"{why}: {reason}" if reason else why)
        del self.members[m.session]
        for st in self.streams.values():
            if m.session in st.recipients:
                st.recipients.discard(m.session)
                st.targets = self._group(st.recipients)
        for st in [*self.streams.values(), *self.unresolved.values()]:
            if m.session in st.maybe:
                st.maybe.discard(m.session)
                self._resolved(st)
        if not m.hidden:
            left = ParticipantLeftFrame(identity=m.identity, reason=reason)
            self._broadcast(sink, _frame(left), exclude=m.session)
        self._presence(sink, m, None, reason)

    def remove(self, identity: str, reason: str, sink: Sink) -> bool:
        """The server API removes a participant: its sockets are closed, it leaves."""
        found = [m for m in self.members.values() if m.identity == identity]
        for m in found:
            self._leave(m, reason, sink)
            goaway = GoAwayFrame(code=ErrorCode.REMOVED, reason=reason)
            sink.close_sessions(m.gateway, [m.session], _frame(goaway))
        return bool(found)

    def _header(self, m: Member, e: LogEntry, sink: Sink) -> None:
        self._ack(m, e.size, sink)
        if e.stream_id in self.streams:
            err = ErrorFrame(
                code=ErrorCode.STREAM_ID_IN_USE,
                message=f"stream id {e.stream_id!r} is already open in this room",
                stream_id=e.stream_id,
            )
            self._to(sink, m, _frame(err))
            return
        dests = set(e.destinations)
        recipients: set[str] = set()
        maybe: set[str] = set()
        topic, kind = e.topic, e.stream_kind
        for o in self.members.values():
            if o.session != m.session and o.can_subscribe and (not dests or o.identity in dests):
                # with a handler: a recipient; without: its registration may be on its way
                (recipients if topic in o.topics.get(kind, ()) else maybe).add(o.session)
        st = OpenStream(
            stream_id=e.stream_id,
            sender=m.session,
            sender_identity=m.identity,
            sender_gateway=m.gateway,
            recipients=recipients,
            targets=self._group(recipients),
            maybe=maybe,
            maybe_targets=self._group(maybe) if maybe else {},
            kind=kind,
            topic=topic,
        )
        self.streams[e.stream_id] = st
        RoomState.opened += 1
        maybe_targets = st.maybe_targets
        for gw in {**st.targets, **maybe_targets} if maybe_targets else st.targets:
            mb = maybe_targets.get(gw)
            sink.deliver(
                gw,
                st.targets.get(gw, []),
                e.data,
                opens=e.stream_id,
                maybe=Maybe(mb, st.stream_id, kind, topic) if mb else None,
            )

    def _server_packet(self, e: LogEntry, sink: Sink) -> None:
        """A data packet the server API sent (no sender): to every member with
        ``can_subscribe``, narrowed to ``destination_identities`` when given."""
        dests = set(e.destinations)
        recipients = [
            o.session
            for o in self.members.values()
            if o.can_subscribe and (not dests or o.identity in dests)
        ]
        for gw, sessions in self._group(recipients).items():
            sink.deliver(gw, sessions, e.data)

    def _packet(self, m: Member, e: LogEntry, sink: Sink) -> None:
        """A data packet: to every other member with ``can_subscribe`` (no handler needed),
        narrowed to ``destination_identities`` when given. Destinations that are not in the
        room get nothing; the sender is told with an ``unknown_destination`` error."""
        self._ack(m, e.size, sink)
        dests = set(e.destinations)
        recipients = [
            o.session
            for o in self.members.values()
            if o.session != m.session and o.can_subscribe and (not dests or o.identity in dests)
        ]
        for gw, sessions in self._group(recipients).items():
            sink.deliver(gw, sessions, e.data)
        if e.packet:  # its sender awaits the data-packet ack (cumulative, per wake-up)
            m.packets = max(m.packets, e.packet)
            sink.packets_routed(m.gateway, m.session, m.packets)
        unknown = dests - {o.identity for o in self.members.values()}
        if unknown:
            names = ", ".join(repr(i) for i in sorted(unknown))
            err = ErrorFrame(
                code=ErrorCode.UNKNOWN_DESTINATION,
                message=f"data packet not delivered to {names}: not in the room",
            )
            self._to(sink, m, _frame(err))

    def _declined(self, e: LogEntry) -> None:
        """A gateway did not give a stream's header to some of its maybe-recipients (they
        had no handler for the topic when it arrived): they get nothing more of it."""
        st = self.streams.get(e.stream_id) or self.unresolved.get(e.stream_id)
        if st is None or not st.maybe:
            return
        gone = st.maybe.intersection(e.data.decode().split())
        if gone:
            st.maybe -= gone
            self._resolved(st)

    def _update(self, m: Member, e: LogEntry, sink: Sink) -> None:
        """The participant changes its own name, metadata or attributes (its gateway checked
        the grant): everyone is told, then the participant gets its ``ack``."""
        self._ack(m, e.size, sink)
        problem = self._update_info(m, e.data, sink)
        if problem is not None:
            err = ErrorFrame(code=ErrorCode.METADATA_TOO_LARGE, message=problem, req=e.req)
            self._to(sink, m, _frame(err))
        elif e.req is not None:
            self._to(sink, m, _frame(AckFrame(req=e.req)), ack=e.req)

    def _update_info(self, m: Member, data: bytes, sink: Sink) -> str | None:
        """Fold an update (``{"name"?, "metadata"?, "attributes"?}``; attributes merged, ""
        deletes) into ``m``'s info and tell every member (a hidden one: only itself). Returns
        why it was refused (over LiveKit's limits), or None."""
        upd = UpdateParticipantFrame.model_validate_json(data)
        info = m.info
        attributes = dict(info.attributes)
        changed: dict[str, str] = {}
        for k, v in (upd.attributes or {}).items():
            if v == "":
                if attributes.pop(k, None) is not None:
                    changed[k] = ""
            elif attributes.get(k) != v:
                attributes[k] = changed[k] = v
        total = sum(len(k.encode()) + len(v.encode()) for k, v in attributes.items())
        if total > MAX_PARTICIPANT_ATTRIBUTES_BYTES:
            return f"attributes of {total} bytes exceed {MAX_PARTICIPANT_ATTRIBUTES_BYTES}"
        update: dict[str, object] = {}
        if upd.name is not None and upd.name != info.name:
            update["name"] = upd.name
        if upd.metadata is not None and upd.metadata != info.metadata:
            update["metadata"] = upd.metadata
        if changed:
            update["attributes"] = attributes
        if not update:
            return None
        m.info = info.model_copy(update=update)
        frame = _frame(ParticipantUpdatedFrame(participant=m.info, changed_attributes=changed))
        told = [m.session] if m.hidden else list(self.members)
        for gw, sessions in self._group(told).items():
            sink.deliver(gw, sessions, frame)
        self._presence(sink, m, m.info.model_dump_json().encode(), announce=False)
        return None

    def _rpc(self, m: Member, e: LogEntry, sink: Sink) -> None:
        """An RPC frame to the member(s) with identity ``e.identity``. A request for an
        identity not in the room is answered at once (LiveKit's 1401, recipient not found)."""
        self._ack(m, e.size, sink)
        to = [o.session for o in self.members.values() if o.identity == e.identity]
        if to:
            for gw, sessions in self._group(to).items():
                sink.deliver(gw, sessions, e.data)
        elif e.topic == "request":
            resp = DeliveredRpcResponse(
                request_id=e.stream_id,
                destination=m.identity,
                error=RpcErrorCode.RECIPIENT_NOT_FOUND.error(),
            )
            self._to(sink, m, _frame(resp))

    def _lagged(self, m: Member, sink: Sink, seq: int) -> None:
        """Entries of ``m`` were trimmed before the router read them."""
        lost = seq - m.last_seq - 1
        reason = f"{lost} entries from {m.identity!r} were lost before routing (router lagged)"
        m.lagged = True
        # numbered data packets after the last one routed may be among the lost: their
        # calls fail (some may still come, after the gap: reported, never silently lost)
        gone = ErrorFrame(
            code=ErrorCode.LAGGED, message=reason, packets=(m.packets + 1, 0xFFFFFFFF)
        )
        self._to(sink, m, _frame(gone))
        for st in [s for s in self.streams.values() if s.sender == m.session]:
            self._abort(sink, st, ErrorCode.LAGGED, reason)
            m.aborted.add(st.stream_id)
            err = ErrorFrame(code=ErrorCode.LAGGED, message=reason, stream_id=st.stream_id)
            self._to(sink, m, _frame(err))

    # -- session resume ---------------------------------------------------------------------

    def _suspend(self, m: Member, reason: str, sink: Sink) -> None:
        """``m``'s connection dropped, or its gateway died or drains, and its client may
        resume: it stays a member, unannounced, and what is routed to it keeps going to its
        gateway's inbox (a resume replays it from there). The streams it was sending cannot
        go on (what its gateway had not appended is lost): they end at their readers."""
        for st in [s for s in self.streams.values() if s.sender == m.session]:
            why = f"sender {m.identity!r} lost its connection mid-stream"
            self._abort(sink, st, ErrorCode.SENDER_LEFT, f"{why}: {reason}" if reason else why)
            m.aborted.add(st.stream_id)

    def suspend_gateway(self, gateway: str, reason: str, sink: Sink) -> list[str]:
        """A gateway died or drained and the resume window is on: its members whose clients
        can resume are suspended (:meth:`_suspend`), the others leave. Returns the sessions
        that left; :meth:`drop_gateway` after the window makes the rest leave."""
        gone = []
        for m in [m for m in self.members.values() if m.gateway == gateway]:
            if m.resumable:
                self._suspend(m, reason, sink)
            else:
                self._leave(m, reason, sink)
                gone.append(m.session)
        return gone

    def _move(self, e: LogEntry, sink: Sink) -> None:
        """A resume: session ``e.session`` on gateway ``e.gateway`` takes over member
        ``e.data`` (its old session), if that member is still here, has the identity of the
        new connection's token and can resume. Nobody is told: for the others it never left.
        Its handlers and the streams it receives stay; the streams it was sending end (they
        cannot go on: what its old gateway had not appended is lost)."""
        if e.session in self.members:
            return  # a repeat
        old = e.data.decode()
        m = self.members.get(old)
        if m is None:
            problem = f"session {old!r} has ended (resume window passed, or it left)"
        elif m.identity != e.identity:
            problem = "that session belongs to another identity"
        elif not m.resumable:
            problem = "that session cannot be resumed"
        else:
            problem = ""
        if m is None or problem:
            goaway = GoAwayFrame(code=ErrorCode.RESUME_FAILED, reason=f"cannot resume: {problem}")
            sink.resume_refused(e.gateway, e.session, _frame(goaway))
            return
        self._suspend(m, "its connection was lost; it resumed its session", sink)
        old_gateway = m.gateway
        del self.members[old]
        m.session, m.gateway = e.session, e.gateway
        m.last_seq, m.unacked, m.ack_every = e.seq, 0, e.window // 4
        m.aborted.clear()
        m.lagged = False
        self.members[e.session] = m
        for st in [*self.streams.values(), *self.unresolved.values()]:
            if old in st.recipients:
                st.recipients.discard(old)
                st.recipients.add(e.session)
                st.targets = self._group(st.recipients)
            if old in st.maybe:
                st.maybe.discard(old)
                st.maybe.add(e.session)
                st.maybe_targets = self._group(st.maybe)
        sink.moved(old_gateway, old, e.gateway, e.session, _frame(ResumedFrame(session=e.session)))
        if not m.hidden:  # the members hash follows the session; no room event
            sink.presence(self.name, old, m.identity, None, announce=False)
            info = m.info.model_dump_json().encode()
            sink.presence(self.name, e.session, m.identity, info, announce=False)

    def drop_gateway(self, gateway: str, reason: str, sink: Sink) -> list[str]:
        """A gateway died: its members leave. Returns their sessions."""
        gone = [m for m in self.members.values() if m.gateway == gateway]
        for m in gone:
            self._leave(m, reason, sink)
        return [m.session for m in gone]
