"""Session resume on the gateway (docs/reliability.md, "Session resume").

A client that opened its socket with ``marks=1`` gets a ``mark`` frame now and then: every
delivery from this gateway's inbox up to that entry went before it. It acknowledges marks
(``seen``), and the gateway trims its inbox no further than the oldest one acknowledged.

When its socket drops (or its gateway dies or drains), the client connects to any gateway
with ``resume=1`` and sends a ``resume`` frame first: its session, its last mark, the
streams it is receiving and its handlers. This gateway (:class:`Resumer`):

1. checks that the old gateway's inbox still holds the mark (else: refused at once);
2. appends an ``mv`` entry to the room log; the router checks the identity and that the
   member is still there, renames it to the new session on this gateway, puts a ``mv``
   marker in the old inbox (the old session's deliveries stop there) and answers with a
   ``resumed`` delivery (or a refusal) in this gateway's inbox;
3. replays the old inbox from the mark up to the marker, entries addressed to the old
   session, while what this inbox holds for the new session is held back;
4. sends ``resumed`` and what was held, and the connection goes live.

The client drops what it had already received after its mark (it keeps those frames until
the next mark and matches the replay against them, in order), so nothing is lost or
repeated. Refused (window passed, inbox trimmed, another identity): close code 4011 with a
``goaway`` ``resume_failed``; the client joins afresh.
"""

from __future__ import annotations

import asyncio
import json
import logging
import re
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, cast

from pydantic import ValidationError
from redis.exceptions import RedisError
from websockets.asyncio.server import ServerConnection

from roomstreams._redisio import xread
from roomstreams.protocol.entries import LogEntry
from roomstreams.protocol.frames import ErrorCode, ResumedFrame, ResumeFrame
from roomstreams.protocol.keys import inbox_key

from .connection import CLOSE_SLOW_CONSUMER, Connection, _position

if TYPE_CHECKING:
    from .server import Gateway

__all__ = ["CLOSE_RESUME_FAILED", "ResumeRefused", "Resumer"]

logger = logging.getLogger("gateway.resume")

#: Close code when a resume is refused (the client joins afresh).
CLOSE_RESUME_FAILED = 4011
#: Entries of the new session held back while the old inbox is replayed; past it the
#: connection closes as a slow consumer (the replay from Redis is fast; this is a bound).
MAX_HELD = 20_000
_SESSION = re.compile(r"^[0-9a-f]{1,32}\.[0-9]{1,18}$")
_ENTRY_ID = re.compile(r"^[0-9]{1,20}-[0-9]{1,20}$")
_PAGE = 500
_Entries = list[tuple[bytes, dict[bytes, bytes]]]


class ResumeRefused(Exception):
    """The resume cannot be done; ``str(exc)`` says why (sent to the client)."""


@dataclass
class _Pending:
    conn: Connection
    answer: asyncio.Future[tuple[bytes, dict[bytes, bytes]]]
    held: list[dict[bytes, bytes]] = field(default_factory=list)


def parse_resume(raw: str | bytes) -> ResumeFrame:
    try:
        req = ResumeFrame.model_validate_json(raw)
    except ValidationError:
        raise ResumeRefused("the first frame of a resume must be a valid resume frame") from None
    if not _SESSION.match(req.session) or not _ENTRY_ID.match(req.at):
        raise ResumeRefused("bad session or position in the resume frame")
    return req


class Resumer:
    """The resumes in progress on one gateway."""

    def __init__(self, gateway: Gateway) -> None:
        self.gw = gateway
        self.pending: dict[str, _Pending] = {}

    # -- called by the inbox loop (synchronously, in inbox order) --------------------------

    def hold(self, entry_id: bytes, f: dict[bytes, bytes]) -> None:
        """An entry of this gateway's inbox that may concern a session being resumed: the
        router's answer resolves the wait; anything else for it is held back."""
        names = f.get(b"to", b"").decode().split()
        mb = f.get(b"mb")
        if mb is not None:
            names += mb.decode().split()
        for s in names:
            p = self.pending.get(s)
            if p is None:
                continue
            if b"rsm" in f:
                if not p.answer.done():
                    p.answer.set_result((entry_id, f))
                continue
            if len(p.held) >= MAX_HELD:
                p.conn.close(CLOSE_SLOW_CONSUMER, "slow consumer: too much held during a resume")
                continue
            p.held.append(f)

    # -- the resume ---------------------------------------------------------------------------

    async def resume(self, conn: Connection, req: ResumeFrame, timeout: float) -> None:
        """Steps 1 to 4 (module docstring). Raises :class:`ResumeRefused`."""
        gw, r = self.gw, self.gw._redis
        old_gw = req.session.split(".", 1)[0]
        old_inbox = inbox_key(old_gw)
        try:
            held_mark = await r.xrange(old_inbox, req.at, req.at)
        except RedisError as exc:
            raise ResumeRefused(f"Redis is not answering ({exc})") from None
        if not held_mark:
            raise ResumeRefused(
                "the old gateway's inbox no longer holds this position (trimmed, resume "
                "window passed, or Redis restarted)"
            )
        conn.receiving = {*conn.receiving, *req.receiving[:4096]}
        conn.subscriptions = {
            *conn.subscriptions,
            *((kind, topic) for kind, topic in req.handlers[: gw.settings.max_subscriptions]),
        }
        loop = asyncio.get_running_loop()
        pending = _Pending(conn, loop.create_future())
        self.pending[conn.session] = pending
        try:
            conn._entry(
                LogEntry(
                    kind="mv",
                    session=conn.session,
                    identity=conn.ident.claims.identity,
                    gateway=gw.id,
                    data=req.session.encode(),
                    window=gw.settings.window_bytes,
                )
            )
            async with asyncio.timeout(timeout):
                answer_id, answer = await asyncio.shield(pending.answer)
                if b"rsf" in answer:
                    raise ResumeRefused(_reason(answer[b"d"]))
                await self._replay(conn, old_inbox, req.session, req.at.encode())
        except TimeoutError:
            raise ResumeRefused("the resume did not complete in time") from None
        except RedisError as exc:
            raise ResumeRefused(f"Redis failed during the resume ({exc})") from None
        finally:
            self.pending.pop(conn.session, None)
        # live: resumed, then what was held, then the inbox loop's deliveries (no await
        # from here on, so nothing of the inbox loop comes in between)
        resumed = ResumedFrame(session=conn.session, at=answer_id.decode())
        conn.push(resumed.model_dump_json().encode())
        for f in pending.held:
            self._deliver(conn, f, conn.session)
        conn.announced = True
        conn.marks, conn.unmarked, conn.marked_at = True, 0, time.monotonic()
        conn.floor = _position(answer_id)
        gw.sessions[conn.session] = conn

    async def _replay(self, conn: Connection, inbox: str, old: str, at: bytes) -> None:
        """Deliver what the old inbox holds for session ``old`` after ``at``, up to the
        router's ``mv`` marker."""
        r = self.gw._redis
        last = at
        while True:
            page: _Entries = cast(_Entries, await r.xrange(inbox, b"(" + last, b"+", count=_PAGE))
            if not page:
                # the marker went out in the same router pipeline as the answer: it is
                # there or about to be; wait for it on the stream
                resp = await xread(r, {inbox: last}, block=1000, count=_PAGE)
                page = resp[0][1] if resp else []
            for entry_id, f in page:
                last = entry_id
                if f.get(b"k") == b"mv" and f.get(b"to", b"").decode() == old:
                    return
                if self._stale(f):
                    continue
                self._deliver(conn, f, old)

    def _stale(self, f: dict[bytes, bytes]) -> bool:
        """An entry of a router epoch this gateway has seen superseded (fencing)."""
        p, e = f.get(b"p", b""), f.get(b"e", b"")
        newest = self.gw._newest.get(p)
        return bool(e) and newest is not None and int(e) < int(newest)

    def _deliver(self, conn: Connection, f: dict[bytes, bytes], session: str) -> None:
        """One inbox entry for ``session`` (the old one during the replay), to ``conn``: as
        the gateway's dispatch does for one session."""
        kind = f.get(b"k")
        if kind == b"x":
            if session in f.get(b"to", b"").decode().split():
                conn.close(4009, _reason(f[b"d"]), ErrorCode.REMOVED)
            return
        if kind is not None or b"jn" in f or b"rsm" in f:
            return  # acks and markers concern the old connection; joined came long ago
        data = f[b"d"]
        so = f.get(b"so", b"").decode()
        se = f.get(b"se", b"").decode()
        if session in f.get(b"to", b"").decode().split():
            li = f.get(b"li")
            if li is not None:
                if conn.first_delivery_of_packet(_position(li)):
                    conn.push_packet(data)
                return
            ak = f.get(b"ak")
            conn.push(data, opens=so, ends=se, ack=int(ak) if ak is not None else None)
            return
        mb = f.get(b"mb")
        if mb is None or session not in mb.decode().split():
            return
        if so:  # a maybe-recipient (see Gateway._deliver_maybe)
            if (f[b"mk"].decode(), f[b"mt"].decode()) in conn.subscriptions:
                conn.push(data, opens=so)
            else:
                note = LogEntry(
                    kind="dc",
                    session="",
                    gateway=self.gw.id,
                    stream_id=so,
                    data=conn.session.encode(),
                )
                self.gw._append(conn.ident.log_key, note)
        elif f[b"ms"].decode() in conn.receiving:
            conn.push(data, ends=se)


def _reason(goaway: bytes) -> str:
    try:
        return str(json.loads(goaway).get("reason", "resume refused"))
    except (ValueError, AttributeError):
        return "resume refused"


def mark_sessions(touched: set[Connection], at: bytes, now: float, *, force: bool) -> None:
    """After a batch of inbox entries up to ``at``: a mark to each session that got frames,
    at most every 64 frames or 50 ms (``force``: to all of them)."""
    for conn in list(touched):
        if force or conn.unmarked >= 64 or now - conn.marked_at >= 0.05:
            touched.discard(conn)
            if conn.marks:
                conn.mark(at, now)


def trim_floor(
    conns: Callable[[], list[Connection]],
    last: bytes,
    now: float,
    *,
    held: Iterable[tuple[int, int]] = (),
) -> bytes:
    """How far the inbox may be trimmed: ``last``, or the oldest position a resumable
    session has acknowledged. A session that got nothing for a while is sent a mark at
    ``last`` (at most five times a second), so an idle client does not hold the trim back.
    ``held``: positions of suspended sessions (kept for the resume window)."""
    floor = min([_position(last), *held])
    for c in conns():
        if not c.marks or c.floor is None or c.floor >= floor:
            continue
        if c.unmarked == 0 and now - c.marked_at >= 0.2:
            c.mark(last, now)
        floor = min(floor, c.floor)
    return f"{floor[0]}-{floor[1]}".encode()


async def read_resume_frame(ws: ServerConnection, timeout: float) -> ResumeFrame:
    try:
        async with asyncio.timeout(timeout):
            raw = await ws.recv(decode=False)
    except TimeoutError:
        raise ResumeRefused("no resume frame") from None
    return parse_resume(raw)
