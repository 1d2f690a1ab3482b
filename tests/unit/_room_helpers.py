"""Test doubles for the router's room fold: a list-collecting sink and a room-log writer that
builds entries the way a gateway does (per-session sequence numbers, frame bytes as data)."""

from __future__ import annotations

import json
from collections import defaultdict
from dataclasses import dataclass, field
from typing import Any

from roomstreams.core.room import Maybe
from roomstreams.protocol.entries import LogEntry
from roomstreams.protocol.frames import (
    ChunkFrame,
    DeliveredHeader,
    ParticipantInfo,
    Permissions,
    TrailerFrame,
)


@dataclass(frozen=True)
class Delivery:
    gateway: str
    sessions: tuple[str, ...]
    raw: bytes
    opens: str = ""
    ends: str = ""
    #: index of the log entry being applied when this was delivered (set by the sink's user)
    at: int = -1

    @property
    def frame(self) -> dict[str, Any]:
        return json.loads(self.raw)  # type: ignore[no-any-return]

    @property
    def type(self) -> str:
        return str(self.frame["type"])


@dataclass
class RecordingSink:
    """A :class:`roomstreams.core.room.Sink` that records everything, in call order."""

    deliveries: list[Delivery] = field(default_factory=list)
    acks: list[tuple[str, str, int]] = field(default_factory=list)
    #: data-packet acks: (gateway, session, highest numbered packet routed)
    packet_acks: list[tuple[str, str, int]] = field(default_factory=list)
    closes: list[tuple[str, list[str], dict[str, Any]]] = field(default_factory=list)
    #: (room, session, identity, ParticipantInfo JSON or None for a departure, reason)
    presences: list[tuple[str, str, str, bytes | None, str]] = field(default_factory=list)
    #: the sessions of presence changes reported with ``announce=False`` (no room event)
    silent: list[str] = field(default_factory=list)
    #: maybe-recipients of stream frames (see roomstreams.core.room.Maybe), in call order
    maybes: list[tuple[str, Maybe]] = field(default_factory=list)
    #: stamped on each delivery as ``Delivery.at``
    at: int = -1

    def deliver(
        self,
        gateway: str,
        sessions: list[str],
        frame: bytes,
        *,
        opens: str = "",
        ends: str = "",
        joined: bool = False,
        ack: int | None = None,
        maybe: Maybe | None = None,
    ) -> None:
        assert isinstance(frame, bytes)
        if maybe is not None:
            self.maybes.append((gateway, maybe))
            if not sessions:
                return  # only maybe-recipients on this gateway
        # the marks say what the frame is: they must agree with its bytes
        kind = json.loads(frame)["type"] if frame[:1] == b"{" else "binary"
        assert joined == (kind == "joined"), frame
        assert (ack is not None) == (kind == "ack"), frame
        self.deliveries.append(
            Delivery(gateway, tuple(sessions), frame, opens=opens, ends=ends, at=self.at)
        )

    def ack(self, gateway: str, session: str, nbytes: int) -> None:
        self.acks.append((gateway, session, nbytes))

    def packets_routed(self, gateway: str, session: str, number: int) -> None:
        self.packet_acks.append((gateway, session, number))

    def close_sessions(self, gateway: str, sessions: list[str], frame: bytes) -> None:
        self.closes.append((gateway, list(sessions), json.loads(frame)))

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
        self.presences.append((room, session, identity, info, reason))
        if not announce:
            self.silent.append(session)

    # -- queries ---------------------------------------------------------------------------

    def to(self, session: str) -> list[dict[str, Any]]:
        """The frames delivered to ``session``, in order."""
        return [d.frame for d in self.deliveries if session in d.sessions]

    def types_to(self, session: str) -> list[str]:
        return [str(f["type"]) for f in self.to(session)]

    def acked(self, session: str) -> int:
        return sum(n for _, s, n in self.acks if s == session)

    def clear(self) -> None:
        self.deliveries.clear()
        self.acks.clear()
        self.packet_acks.clear()
        self.closes.clear()
        self.presences.clear()
        self.silent.clear()


class LogWriter:
    """Builds room-log entries as gateways append them: each session numbers its entries
    1, 2, 3, ... (``skip`` simulates entries trimmed before the router read them)."""

    def __init__(self) -> None:
        self.seq: dict[str, int] = defaultdict(int)
        self.identity: dict[str, str] = {}

    def _next(self, session: str) -> int:
        self.seq[session] += 1
        return self.seq[session]

    def skip(self, session: str, n: int) -> None:
        """The next ``n`` entries of ``session`` are lost (the next one has a seq gap)."""
        self.seq[session] += n

    def join(
        self,
        session: str,
        identity: str,
        gateway: str = "gw1",
        *,
        can_subscribe: bool = True,
        can_publish_data: bool = True,
        name: str = "",
    ) -> LogEntry:
        self.identity[session] = identity
        info = ParticipantInfo(identity=identity, name=name)
        perms = Permissions(can_publish_data=can_publish_data, can_subscribe=can_subscribe)
        return LogEntry(
            kind="j",
            session=session,
            seq=self._next(session),
            identity=identity,
            gateway=gateway,
            can_subscribe=can_subscribe,
            data=info.model_dump_json().encode(),
            permissions=perms.model_dump_json().encode(),
        )

    def rejoin(
        self, session: str, identity: str, gateway: str = "gw1", *, announced: bool = True
    ) -> LogEntry:
        """A join re-announced to a router that took the partition over."""
        e = self.join(session, identity, gateway)
        e.resync, e.announced = True, announced
        return e

    def leave(self, session: str, reason: str = "") -> LogEntry:
        return LogEntry(kind="l", session=session, seq=self._next(session), reason=reason)

    def remove(self, identity: str, reason: str = "") -> LogEntry:
        """The server API removes a participant (not a participant's own entry: no seq)."""
        return LogEntry(kind="r", session="api", identity=identity, reason=reason)

    def subscribe(
        self, session: str, topic: str, kind: str = "text", req: int | None = None
    ) -> LogEntry:
        return LogEntry(
            kind="s",
            session=session,
            seq=self._next(session),
            topic=topic,
            stream_kind=kind,
            req=req,
        )

    def unsubscribe(
        self, session: str, topic: str, kind: str = "text", req: int | None = None
    ) -> LogEntry:
        return LogEntry(
            kind="u",
            session=session,
            seq=self._next(session),
            topic=topic,
            stream_kind=kind,
            req=req,
        )

    def header(
        self,
        session: str,
        stream_id: str,
        topic: str,
        *,
        kind: str = "text",
        destinations: tuple[str, ...] = (),
        attributes: dict[str, str] | None = None,
    ) -> LogEntry:
        h = DeliveredHeader(
            stream_id=stream_id,
            topic=topic,
            timestamp=1_700_000_000_000,
            kind=kind,
            name="file.bin" if kind == "byte" else None,
            attributes=attributes or {},
            destination_identities=list(destinations),
            sender=self.identity.get(session, "?"),
        )
        data = h.model_dump_json().encode()
        return LogEntry(
            kind="h",
            session=session,
            seq=self._next(session),
            stream_id=stream_id,
            topic=topic,
            stream_kind=kind,
            destinations=tuple(destinations),
            data=data,
            size=len(data),
        )

    def chunk(self, session: str, stream_id: str, index: int, content: str = "x") -> LogEntry:
        data = ChunkFrame(stream_id=stream_id, chunk_index=index, content=content)
        raw = data.model_dump_json().encode()
        return LogEntry(
            kind="c",
            session=session,
            seq=self._next(session),
            stream_id=stream_id,
            data=raw,
            size=len(raw),
        )

    def trailer(
        self,
        session: str,
        stream_id: str,
        reason: str = "",
        attributes: dict[str, str] | None = None,
    ) -> LogEntry:
        t = TrailerFrame(stream_id=stream_id, reason=reason, attributes=attributes or {})
        raw = t.model_dump_json().encode()
        return LogEntry(
            kind="t",
            session=session,
            seq=self._next(session),
            stream_id=stream_id,
            data=raw,
            size=len(raw),
        )

    def packet(
        self,
        session: str,
        data: bytes,
        *,
        topic: str = "",
        destinations: tuple[str, ...] = (),
        number: int = 0,
    ) -> LogEntry:
        """A data packet (``data`` is the binary frame to deliver, as the gateway stamped it;
        ``number``: its sender's packet number, awaiting the data-packet ack)."""
        return LogEntry(
            kind="p",
            session=session,
            seq=self._next(session),
            topic=topic,
            destinations=destinations,
            data=data,
            size=len(data),
            packet=number,
        )
