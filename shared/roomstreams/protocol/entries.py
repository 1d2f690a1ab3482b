"""Entries of the Redis streams: the room log (gateway -> router) and the gateway inboxes
(router -> gateway). Short field names; payloads that reach a participant are stored as the
exact frame bytes to deliver (JSON, or binary for byte chunks and data packets: see
``binary.py``), so neither the router nor the receiving gateway re-encodes them.

Room log fields: ``k`` kind, ``s`` session, ``q`` per-session sequence number (to detect
entries trimmed before they were read), and per kind:

=====  ==========================================================================
kind   fields
=====  ==========================================================================
``j``  join: ``i`` identity, ``g`` gateway, ``c`` can_subscribe (1/0), ``d`` ParticipantInfo
       JSON, ``pm`` Permissions JSON, ``w`` the connection's pacing window; re-announced,
       ``an`` 0 when the previous router never routed the original join
``l``  leave: ``r`` reason
``r``  remove (from the server API; ``s`` is ``api``): ``i`` identity, ``r`` reason
``s``  subscribe: ``kd`` kind, ``tp`` topic, ``rq`` request id (optional)
``u``  unsubscribe: same fields
``h``  header: ``sid``, ``tp``, ``kd``, ``ds`` destinations (JSON list, optional), ``n``
       bytes, ``d`` the DeliveredHeader frame
``c``  chunk: ``sid``, ``n``, ``d`` the ChunkFrame (text) or the binary byte chunk frame
``t``  trailer: ``sid``, ``n``, ``d`` the DeliveredTrailer frame
``p``  data packet: ``tp`` topic, ``ds`` destinations (JSON list, optional), ``n`` bytes,
       ``d`` the binary data packet frame to deliver (sender stamped), ``pn`` the sender's
       packet number when it awaits an acknowledgement (optional)
``rd`` resync done (``s`` empty): gateway ``g`` has re-announced its participants of this
       room to the router of epoch ``e``
``m``  participant update: ``i`` identity, ``d`` JSON of the new values
       ``{"name"?, "metadata"?, "attributes"?}`` (attributes merged into the current ones,
       "" deletes a key), ``rq`` request id (optional), ``n`` bytes
``rp`` RPC frame: ``i`` destination identity, ``sid`` request id, ``tp`` ``request``/
       ``ack``/``response``, ``d`` the frame to deliver (caller/sender stamped), ``n`` bytes
``sp`` suspended (session resume): the member's connection dropped or its gateway drains;
       it stays for the resume window (``r`` reason), its open streams end at their readers
``mv`` moved (session resume): ``s`` the new session on gateway ``g``, ``d`` the old
       session it resumes, ``i`` the identity in the new connection's token (must match),
       ``w`` the new connection's pacing window
``dc`` declined (``s`` empty): gateway ``g`` did not give stream ``sid``'s header to the
       maybe-recipients ``d`` (space-separated sessions; no handler for its topic when the
       header arrived): the router stops sending them its chunks
=====  ==========================================================================

A participant update comes from the participant's gateway (``s`` its session, ``i`` its
identity, after the ``canUpdateOwnMetadata`` and size checks) or from the server side with
``s`` = ``api`` (no request id; the router applies it to every member with identity ``i``).
The router folds it into the member's info, so late joiners get the new values in their
``joined`` frame, and sends ``participant_updated`` to every member, in log order with the
room's streams (the updater gets its ``ack`` right after).

A join may carry ``rz`` = 1: the client can resume its session (see ``sp``/``mv``).

Any entry may carry ``rs`` = 1: it re-announces state (a join, a subscription) to a router
that took the partition over, and is folded ahead of entries held back meanwhile.

The partition control stream has ``room`` entries (a room was started on a gateway) and
``rd`` entries: gateway ``g`` answered the resync of epoch ``e``; ``d`` is the JSON list of
the rooms it re-announced, each of which also gets an ``rd`` entry in its log once its
re-announcements are appended.

Inbox fields: ``to`` space-separated session ids, ``d`` frame, ``so``/``se`` stream id
opened/ended by this frame (the gateway tracks what each socket is receiving), ``p``
partition, ``e`` router epoch, ``q`` sequence per (partition, epoch). Kind ``k``: absent for a
delivery, ``a`` for pacing acknowledgements (``d`` = JSON {session: bytes}; ``pk`` = JSON
{session: highest numbered data packet routed}, batched per router wake-up), ``x`` to close
the sessions in ``to`` (``d`` = GoAwayFrame), ``mv`` (session resume) in the old gateway's
inbox: session ``to`` moved to session ``d``, nothing more for it comes to this inbox. A
delivery flagged ``rsm`` answers a resume (``d`` the ``resumed`` frame, or with ``rsf`` the
refusal: a GoAwayFrame).
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Final

__all__ = ["EntryKind", "LogEntry", "encode_log_entry"]

Fields = dict[bytes | str, bytes | str | int]


class EntryKind:
    JOIN: Final = "j"
    LEAVE: Final = "l"
    SUBSCRIBE: Final = "s"
    UNSUBSCRIBE: Final = "u"
    HEADER: Final = "h"
    CHUNK: Final = "c"
    TRAILER: Final = "t"
    REMOVE: Final = "r"
    DATA: Final = "p"
    RESYNC_DONE: Final = "rd"
    UPDATE: Final = "m"
    RPC: Final = "rp"
    DECLINED: Final = "dc"
    SUSPEND: Final = "sp"
    MOVE: Final = "mv"


@dataclass(slots=True)
class LogEntry:
    """One decoded room-log entry."""

    kind: str
    session: str
    seq: int = 0
    stream_id: str = ""
    data: bytes = b""
    size: int = 0
    topic: str = ""
    stream_kind: str = "text"
    destinations: tuple[str, ...] = ()
    identity: str = ""
    gateway: str = ""
    can_subscribe: bool = True
    permissions: bytes = b"{}"
    req: int | None = None
    reason: str = ""
    #: re-announced (a join, a subscription) to a router that took the partition over
    resync: bool = False
    #: the router epoch a resync-done entry answers
    epoch: str = ""
    #: a re-announced join: whether the previous router had routed the original join
    announced: bool = True
    #: the joining connection's pacing window in bytes (the router acknowledges in quarters)
    window: int = 0
    #: a data packet's number (its sender awaits the router's acknowledgement), 0: none
    packet: int = 0
    #: a join: the client can resume its session (session resume)
    resumable: bool = False
    extra: dict[str, str] = field(default_factory=dict)
    #: the entry's id in its room log, set by the router when it reads it (never written)
    entry_id: bytes = b""

    @classmethod
    def from_fields(cls, f: Mapping[bytes, bytes]) -> LogEntry:
        kind = f[b"k"].decode()
        e = cls(kind=kind, session=f[b"s"].decode(), seq=int(f.get(b"q", b"0")))
        if kind in ("h", "c", "t"):
            e.stream_id = f[b"sid"].decode()
            e.data = f[b"d"]
            e.size = int(f.get(b"n", b"0"))
            if kind == "h":
                e.topic = f[b"tp"].decode()
                e.stream_kind = f.get(b"kd", b"text").decode()
                ds = f.get(b"ds")
                if ds:
                    e.destinations = tuple(json.loads(ds))
        elif kind in ("s", "u"):
            e.topic = f[b"tp"].decode()
            e.stream_kind = f.get(b"kd", b"text").decode()
            rq = f.get(b"rq")
            e.req = int(rq) if rq else None
        elif kind == "j":
            e.identity = f[b"i"].decode()
            e.gateway = f[b"g"].decode()
            e.can_subscribe = f.get(b"c", b"1") == b"1"
            e.data = f.get(b"d", b"{}")
            e.permissions = f.get(b"pm", b"{}")
            e.announced = f.get(b"an") != b"0"
            e.window = int(f.get(b"w", b"0"))
            e.resumable = f.get(b"rz") == b"1"
        elif kind == "mv":  # session resume
            e.identity = f[b"i"].decode()
            e.gateway = f[b"g"].decode()
            e.data = f[b"d"]
            e.window = int(f.get(b"w", b"0"))
        elif kind in ("l", "sp"):
            e.reason = f.get(b"r", b"").decode()
        elif kind == "r":
            e.identity = f[b"i"].decode()
            e.reason = f.get(b"r", b"").decode()
        elif kind == "p":
            e.topic = f.get(b"tp", b"").decode()
            e.data = f[b"d"]
            e.size = int(f.get(b"n", b"0"))
            ds = f.get(b"ds")
            if ds:
                e.destinations = tuple(json.loads(ds))
            pn = f.get(b"pn")
            if pn:
                e.packet = int(pn)
        elif kind == "rd":
            e.gateway = f[b"g"].decode()
            e.epoch = f[b"e"].decode()
            e.data = f.get(b"d", b"")
        elif kind == "m":
            e.identity = f[b"i"].decode()
            e.data = f[b"d"]
            e.size = int(f.get(b"n", b"0"))
            rq = f.get(b"rq")
            e.req = int(rq) if rq else None
        elif kind == "rp":
            e.identity = f[b"i"].decode()
            e.stream_id = f[b"sid"].decode()
            e.topic = f.get(b"tp", b"request").decode()
            e.data = f[b"d"]
            e.size = int(f.get(b"n", b"0"))
        elif kind == "dc":
            e.gateway = f[b"g"].decode()
            e.stream_id = f[b"sid"].decode()
            e.data = f[b"d"]
        e.resync = f.get(b"rs") == b"1"
        return e


def encode_log_entry(e: LogEntry) -> Fields:
    """The XADD fields of a room-log entry (inverse of :meth:`LogEntry.from_fields`)."""
    f: Fields = {"k": e.kind, "s": e.session, "q": e.seq}
    if e.kind in ("h", "c", "t"):
        f["sid"] = e.stream_id
        f["d"] = e.data
        f["n"] = e.size
        if e.kind == "h":
            f["tp"] = e.topic
            f["kd"] = e.stream_kind
            if e.destinations:
                f["ds"] = json.dumps(list(e.destinations))
    elif e.kind in ("s", "u"):
        f["tp"] = e.topic
        f["kd"] = e.stream_kind
        if e.req is not None:
            f["rq"] = e.req
    elif e.kind == "j":
        f["i"] = e.identity
        f["g"] = e.gateway
        f["c"] = b"1" if e.can_subscribe else b"0"
        f["d"] = e.data
        f["pm"] = e.permissions
        if not e.announced:
            f["an"] = b"0"
        if e.window:
            f["w"] = e.window
        if e.resumable:
            f["rz"] = b"1"
    elif e.kind == "mv":  # session resume
        f["i"] = e.identity
        f["g"] = e.gateway
        f["d"] = e.data
        f["w"] = e.window
    elif e.kind in ("l", "sp"):
        f["r"] = e.reason
    elif e.kind == "r":
        f["i"] = e.identity
        f["r"] = e.reason
    elif e.kind == "p":
        f["tp"] = e.topic
        f["d"] = e.data
        f["n"] = e.size
        if e.destinations:
            f["ds"] = json.dumps(list(e.destinations))
        if e.packet:
            f["pn"] = e.packet
    elif e.kind == "rd":
        f["g"] = e.gateway
        f["e"] = e.epoch
        if e.data:
            f["d"] = e.data
    elif e.kind == "m":
        f["i"] = e.identity
        f["d"] = e.data
        f["n"] = e.size
        if e.req is not None:
            f["rq"] = e.req
    elif e.kind == "rp":
        f["i"] = e.identity
        f["sid"] = e.stream_id
        f["tp"] = e.topic
        f["d"] = e.data
        f["n"] = e.size
    elif e.kind == "dc":
        f["g"] = e.gateway
        f["sid"] = e.stream_id
        f["d"] = e.data
    if e.resync:
        f["rs"] = b"1"
    return f
