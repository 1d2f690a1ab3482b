"""The gateway: terminates participant WebSockets, appends what they send to their room's
log, reads its own inbox and pushes deliveries to its sockets. It holds no room state."""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import json
import logging
import secrets
import time
import weakref
from collections import Counter
from http import HTTPStatus
from typing import Any
from urllib.parse import parse_qs, urlsplit

from redis.asyncio.cluster import RedisCluster
from redis.exceptions import RedisError
from websockets.asyncio.server import ServerConnection, serve
from websockets.datastructures import Headers
from websockets.exceptions import ConnectionClosed
from websockets.http11 import Request, Response

from roomstreams._redisio import Client, Pinned, server_run_id, xadd_command
from roomstreams._redisio import client as redis_client
from roomstreams._retry import Backoff
from roomstreams._tasks import cancel_and_wait
from roomstreams.core.limits import RateLimits
from roomstreams.exceptions import AuthError
from roomstreams.protocol.entries import LogEntry, encode_log_entry
from roomstreams.protocol.frames import ErrorCode
from roomstreams.protocol.keys import (
    GATEWAY_EVENTS,
    ctl_key_of_log_key,
    inbox_key,
    partition_ctl_key,
    partition_of,
    room_from_log_key,
    room_log_key,
)
from roomstreams.token import Claims, verify_token

from ..observability import GATEWAY as _stats
from ..observability import metrics_route
from .api import serve_api
from .connection import (
    CLOSE_DUPLICATE_IDENTITY,
    CLOSE_REMOVED,
    Connection,
    ConnectionLimits,
    Identity,
    Overloaded,
)
from .http import GatewayHttp
from .reading import SlicedConnection
from .resume import (
    CLOSE_RESUME_FAILED,
    Resumer,
    ResumeRefused,
    mark_sessions,
    read_resume_frame,
    trim_floor,
)
from .settings import GatewaySettings
from .wire import Flushes

__all__ = ["Gateway"]

logger = logging.getLogger("gateway.server")

_APPEND_BATCH = 512
_DATA_KINDS = frozenset("hctp")


def _log_position(entry_id: bytes) -> tuple[int, int]:
    ms, _, seq = entry_id.partition(b"-")
    return int(ms), int(seq or 0)


#: what a connection's handshake headers become once it is open (nothing reads them again)
_NO_HEADERS = Headers()


def _forget_handshake_headers(ws: ServerConnection) -> None:
    """Drop the opening handshake's request and response headers (about 2.8 KB per idle
    connection, measured with tracemalloc: a fifth of its memory)."""
    if ws.request is not None:
        ws.request.headers = _NO_HEADERS
    if ws.response is not None:
        ws.response.headers = _NO_HEADERS


def _retrieve(task: asyncio.Task[None]) -> None:
    """A socket's writer task ends with the connection; its exception says nothing new."""
    if not task.cancelled():
        task.exception()


class Gateway:
    """One gateway process. ``await Gateway(settings).run()`` serves until :meth:`stop`."""

    def __init__(self, settings: GatewaySettings) -> None:
        self.settings = settings
        self.id = secrets.token_hex(4)
        self.inbox = inbox_key(self.id)
        self.sessions: dict[str, Connection] = {}
        self._claims: weakref.WeakKeyDictionary[ServerConnection, Claims] = (
            weakref.WeakKeyDictionary()
        )
        # session resume (resume.py): 1 = the client asked for marks, 2 = it resumes
        self._resume_flags: weakref.WeakKeyDictionary[ServerConnection, int] = (
            weakref.WeakKeyDictionary()
        )
        self._resumer = Resumer(self)
        self._touched: set[Connection] = set()
        self._kept_inbox = False
        self._entry_id = b""
        #: sessions whose socket dropped, kept for the resume window, and those of them that
        #: resumed meanwhile (here or on another gateway: the router's marker came)
        self._suspended: dict[str, Connection] = {}
        self._moved: set[str] = set()
        self._counter = itertools.count(1)
        self._api: weakref.WeakSet[ServerConnection] = weakref.WeakSet()
        # bounded in _append (data entries only)
        self._appends: asyncio.Queue[tuple[str, LogEntry]] = asyncio.Queue()
        #: the sockets with frames to write (Connection.flush), written together
        self._flushes = Flushes()
        self._stop = asyncio.Event()
        self._draining = False
        self._drained = asyncio.Event()
        self._closing = False
        self.port: int = settings.gateway_port
        self.ready = asyncio.Event()
        self._inbox_seq: dict[tuple[bytes, bytes], int] = {}
        #: per partition, the newest router epoch heard from, and the epochs fenced off
        self._newest: dict[bytes, bytes] = {}
        self._fenced: set[tuple[bytes, bytes]] = set()
        self._limits = ConnectionLimits(
            rates=RateLimits(
                frames_per_second=settings.max_frames_per_second,
                bytes_per_second=settings.max_bytes_per_second,
                close_after=settings.flood_close_after,
                penalty=settings.flood_penalty,
            ),
            max_open_streams=settings.max_open_streams,
            max_pending_requests=settings.max_pending_requests,
            max_subscriptions=settings.max_subscriptions,
        )
        #: connections per (room, identity), and those whose join is not answered yet
        self._per_identity: Counter[tuple[str, str]] = Counter()
        self._joining: set[Connection] = set()
        #: every open connection (the keepalive loop pings them)
        self._live: set[Connection] = set()
        self._redis = redis_client(settings.redis_url, f"roomstreams-gateway-{self.id}")
        self._inbox_redis = redis_client(settings.redis_url, f"roomstreams-gateway-{self.id}-inbox")
        # the append loop's and the inbox loop's own connections (no pool round trip each)
        self._append_conn = Pinned(self._redis)
        #: append batches go in MULTI/EXEC (standalone: a batch spans the partitions' slots)
        self._transactions = not isinstance(self._redis, RedisCluster)
        self._inbox_conn = Pinned(self._inbox_redis)
        self._http = GatewayHttp(
            api_key=settings.api_key,
            api_secret=settings.api_secret,
            allowed_origins=settings.allowed_origins,
            dev_token_endpoint=settings.dev_token_endpoint,
        )

    # -- lifecycle --------------------------------------------------------------------------

    def stop(self) -> None:
        self._stop.set()

    async def run(self) -> None:
        s = self.settings
        await self._redis.delete(self.inbox)
        async with asyncio.TaskGroup() as tg:
            tasks = [
                tg.create_task(self._inbox_loop()),
                tg.create_task(self._append_loop()),
                tg.create_task(self._heartbeat_loop()),
                tg.create_task(self._keepalive_loop()),
            ]
            async with serve(
                self._handler,
                s.gateway_host,
                s.gateway_port,
                process_request=metrics_route(self, self._process_request),  # + GET /metrics
                compression=None,
                max_size=1 << 20,
                max_queue=64,
                # a peer that stops answering pings (frozen, or a dead NAT mapping) is given
                # up within ping_interval + ping_timeout + close_timeout (the close handshake
                # it will not answer either): it leaves, its streams end. The pings are the
                # gateway's own (Connection.keepalive), not websockets': they must not
                # fire while the gateway itself stops reading the socket (pacing)
                ping_interval=None,
                close_timeout=s.close_timeout,
                # parsing bounded per loop turn: one read can no longer stall the gateway
                create_connection=SlicedConnection,
            ) as server:
                sock = next(iter(server.sockets))
                self.port = sock.getsockname()[1]
                logger.info("gateway %s listening on %s:%d", self.id, s.gateway_host, self.port)
                self.ready.set()
                await self._stop.wait()
                self._draining = True
                logger.info("gateway %s draining %d connections", self.id, len(self.sessions))
                for conn in list(self.sessions.values()):
                    conn.close(1012, "gateway shutting down; reconnect to another gateway")
                # handlers append their leave entries; wait for them, bounded
                if self.sessions:
                    with contextlib.suppress(TimeoutError):
                        await asyncio.wait_for(self._drained.wait(), 5.0)
                server.close()
            self._closing = True  # loops end; Redis writes stop retrying forever
            await self._flush_appends()
            with contextlib.suppress(RedisError):
                await self._redis.xadd(GATEWAY_EVENTS, {"g": self.id, "ev": "bye"}, maxlen=10_000)
                if not self._kept_inbox:  # session resume: replayed from until the window ends
                    await self._redis.delete(self.inbox)
            stuck = await cancel_and_wait(tasks)
            if stuck:
                logger.error("tasks did not stop: %s", sorted(t.get_name() for t in stuck))
        await self._redis.aclose()
        await self._inbox_redis.aclose()

    # -- HTTP: health and auth ----------------------------------------------------------------

    def _process_request(self, conn: ServerConnection, request: Request) -> Response | None:
        url = urlsplit(request.path)
        if url.path == "/healthz":
            body = json.dumps(
                {
                    "status": "draining" if self._draining else "ok",
                    "gateway": self.id,
                    "connections": len(self.sessions),
                }
            )
            status = HTTPStatus.SERVICE_UNAVAILABLE if self._draining else HTTPStatus.OK
            response = conn.respond(status, body + "\n")
            del response.headers["Content-Type"]  # a multi-dict: replace, don't add
            response.headers["Content-Type"] = "application/json"
            return response
        if self._draining:
            return conn.respond(HTTPStatus.SERVICE_UNAVAILABLE, "gateway is draining\n")
        if (page := self._http.handle(request, conn.remote_address)) is not None:
            return page  # a refused Origin, or the dev page and its token endpoint
        path = url.path.rstrip("/")
        if path not in ("/rtc", "/api"):
            return conn.respond(HTTPStatus.NOT_FOUND, "participants connect to /rtc\n")
        is_api = path == "/api"
        token = parse_qs(url.query).get("access_token", [""])[0]
        auth = request.headers.get("Authorization", "")
        if not token and auth.lower().startswith("bearer "):
            token = auth[7:].strip()
        if not token:
            return conn.respond(HTTPStatus.UNAUTHORIZED, "missing access token\n")
        try:
            claims = verify_token(token, self.settings.api_key, self.settings.api_secret)
        except AuthError as exc:
            return conn.respond(HTTPStatus.UNAUTHORIZED, f"{exc}\n")
        if is_api:
            if not (claims.video.room_admin or claims.video.room_list):
                return conn.respond(
                    HTTPStatus.FORBIDDEN, "token grants neither roomAdmin nor roomList\n"
                )
            self._claims[conn] = claims
            self._api.add(conn)
            return None
        if not claims.video.room_join:
            return conn.respond(HTTPStatus.FORBIDDEN, "token does not grant roomJoin\n")
        if not claims.video.room:
            return conn.respond(HTTPStatus.FORBIDDEN, "token names no room\n")
        if not claims.identity:
            return conn.respond(HTTPStatus.FORBIDDEN, "token has no identity (sub)\n")
        if refused := self._over_connection_limits(claims):
            status, why = refused
            return conn.respond(status, why)
        self._claims[conn] = claims
        query = parse_qs(url.query)  # session resume
        if query.get("marks") == ["1"] and self.settings.resume_window > 0:
            self._resume_flags[conn] = 2 if query.get("resume") == ["1"] else 1
        return None

    def _over_connection_limits(self, claims: Claims) -> tuple[HTTPStatus, str] | None:
        s = self.settings
        n = self._per_identity[(claims.video.room, claims.identity)]
        if n >= s.max_connections_per_identity:
            why = f"{n} connections of this identity are already open on this gateway"
            return HTTPStatus.TOO_MANY_REQUESTS, why + "\n"
        if len(self._joining) >= s.max_joining_connections:
            self._joining = {c for c in self._joining if not c.announced and c.close_code is None}
            if len(self._joining) >= s.max_joining_connections:
                why = f"{len(self._joining)} connections are waiting to join; try again later"
                return HTTPStatus.SERVICE_UNAVAILABLE, why + "\n"
        return None

    # -- sockets ----------------------------------------------------------------------------

    async def _handler(self, ws: ServerConnection) -> None:
        claims = self._claims.pop(ws)
        if ws in self._api:
            self._api.discard(ws)
            await serve_api(
                ws,
                claims,
                self._redis,
                self.settings.partitions,
                api_key=self.settings.api_key,
                api_secret=self.settings.api_secret,
            )
            return
        room = claims.video.room
        session = f"{self.id}.{next(self._counter)}"
        ident = Identity(
            session=session,
            room=room,
            partition=partition_of(room, self.settings.partitions),
            log_key=room_log_key(room, self.settings.partitions),
            claims=claims,
        )
        conn = Connection(
            ws,
            ident,
            self._append,
            self._flushes,
            send_queue_frames=self.settings.send_queue_frames,
            window_bytes=self.settings.window_bytes,
            limits=self._limits,
        )
        _stats.connected(ws.request.path if ws.request else "")
        _forget_handshake_headers(ws)
        extra = {"session": session, "room": room, "identity": claims.identity}
        # session resume: marks for this client; a resume joins nothing (resume.py)
        flag = self._resume_flags.pop(ws, 0)
        conn.touched, conn.marks, resuming = self._touched, flag == 1, flag == 2
        if not resuming:
            # counted only once its join is queued (a join that cannot be built ends here)
            conn.append_join(self.id)
            self.sessions[session] = conn
        who = (room, claims.identity)
        self._per_identity[who] += 1
        self._joining.add(conn)
        logger.info("connected %s to %s as %s", session, room, claims.identity, extra=extra)
        reason = "disconnected"
        # This task reads the socket, and is the only one a connection has: frames are
        # written when queued, at the end of the loop's turn (Connection.flush), with a
        # task only while the socket is slow; the keepalive loop pings every connection.
        s = self.settings
        self._live.add(conn)
        try:
            self._append(
                partition_ctl_key(ident.partition),
                LogEntry(kind="room", session=session, topic=room),
            )
            if resuming:  # session resume: goes live in self.sessions when replayed
                req = await read_resume_frame(ws, s.resume_handshake_timeout)
                await self._resumer.resume(conn, req, s.resume_handshake_timeout)
                logger.info("%s resumed session %s", session, req.session, extra=extra)
            await conn.reader()
            # it returns once closed for flooding, or gone while throttled
            reason = conn.close_reason or "connection lost while throttled"
        except ResumeRefused as exc:  # session resume: the client joins afresh
            reason = f"resume refused: {exc}"
            logger.info("resume refused for %s: %s", session, exc, extra=extra)
            conn.close(CLOSE_RESUME_FAILED, str(exc), ErrorCode.RESUME_FAILED)
            with contextlib.suppress(Exception):
                await asyncio.wait_for(ws.wait_closed(), s.close_timeout + 1)
        except ConnectionClosed as exc:
            rcvd = exc.rcvd
            if conn.close_code is not None:
                reason = conn.close_reason
            elif rcvd is None:
                reason = "connection lost"
            elif rcvd.code not in (1000, 1001):
                reason = f"connection closed ({rcvd.code} {rcvd.reason})".strip()
        finally:
            conn.stop_writing()
            conn.stop_pinging()
            self._live.discard(conn)
            self.sessions.pop(session, None)
            self._joining.discard(conn)
            self._per_identity[who] -= 1
            if not self._per_identity[who]:
                del self._per_identity[who]
            if self._draining and not self.sessions:
                self._drained.set()
            if conn.marks and self._draining and conn.close_code == 1012:
                # session resume: it may resume on another gateway; the inbox stays
                conn.append_suspend(reason)
                self._kept_inbox = True
            elif conn.marks and conn.close_code is None and reason != "disconnected":
                self._suspend(conn, reason)  # session resume: the socket dropped
            else:
                conn.append_leave(reason)
            logger.info("disconnected %s: %s", session, reason, extra=extra)

    def _suspend(self, conn: Connection, reason: str) -> None:
        """Session resume: a resumable client's socket dropped (no close from either
        side): the participant stays for the resume window, its inbox position is kept;
        unless it resumed meanwhile, it leaves when the window ends."""
        conn.append_suspend(reason)
        self._kept_inbox = True
        self._suspended[conn.session] = conn
        loop = asyncio.get_running_loop()
        loop.call_later(self.settings.resume_window, self._suspension_over, conn, reason)

    def _suspension_over(self, conn: Connection, reason: str) -> None:
        self._suspended.pop(conn.session, None)
        if conn.session in self._moved:
            self._moved.discard(conn.session)
        elif not self._closing:
            conn.append_leave(reason)

    # -- appends: one pipeline per batch, order preserved -------------------------------------

    def _append(self, key: str, entry: LogEntry) -> None:
        """Queue an entry for the append pipeline. Data from a client is refused past the
        bound (its connection is closed with 1013); joins and leaves are always taken, so
        presence never goes wrong."""
        if entry.kind in _DATA_KINDS and self._appends.qsize() >= self.settings.append_queue_limit:
            raise Overloaded(f"{self._appends.qsize()} entries waiting for Redis")
        self._appends.put_nowait((key, entry))
        _stats.appended[entry.kind] += 1
        _stats.appended_bytes[entry.kind] += len(entry.data)

    async def _flush_appends(self) -> None:
        while not self._appends.empty():
            await self._write_batch(self._take_batch(self._appends.get_nowait()))

    def _take_batch(self, first: tuple[str, LogEntry]) -> list[tuple[str, LogEntry]]:
        batch = [first]
        q = self._appends
        while len(batch) < _APPEND_BATCH and not q.empty():
            batch.append(q.get_nowait())
        return batch

    async def _write_batch(self, batch: list[tuple[str, LogEntry]]) -> None:
        maxlen = self.settings.log_maxlen
        backoff = Backoff(0.05, 2.0)
        # every room appended to is named on its partition's control stream too, after its
        # entries (same transaction or pipeline): the router may have set the room aside
        # (idle, or reading by notice: services.router.partition)
        wake = {k for k, _ in batch if ":room:" in k}
        cmds = [
            xadd_command(
                key, {"room": e.topic} if e.kind == "room" else encode_log_entry(e), maxlen=maxlen
            )
            for key, e in batch
        ]
        for key in wake:  # after the appends: the router finds them when it wakes
            room = {"room": room_from_log_key(key)}
            cmds.append(xadd_command(ctl_key_of_log_key(key), room, maxlen=maxlen))
        atomic = bool(wake) and self._transactions
        if atomic:
            # one transaction: a router blocked on the room and its control stream wakes
            # once, to the entries and their notices together (apart, the notices woke it
            # a second time for every append: +35 % of the router's CPU at W1). A cluster
            # cannot span the batch's slots in one: there the notices may wake it twice.
            cmds = [("MULTI",), *cmds, ("EXEC",)]
        while True:
            try:
                replies = await self._append_conn.execute(cmds)
                if atomic:
                    failed = [r for r in replies[-1] or () if isinstance(r, Exception)]
                    if failed:
                        raise failed[0]
                return
            except RedisError:
                if self._closing and backoff.ceiling > 0.4:
                    logger.error("shutting down without Redis: %d entries not appended", len(batch))
                    return
                delay = backoff.next()
                logger.exception("appending to Redis failed; retrying in %.2fs", delay)
                await asyncio.sleep(delay)

    async def _append_loop(self) -> None:
        while not self._closing:
            first = await self._appends.get()
            began = time.perf_counter()
            await self._write_batch(self._take_batch(first))
            _stats.append_pipeline.observe(time.perf_counter() - began)

    # -- inbox ------------------------------------------------------------------------------

    async def _inbox_loop(self) -> None:
        r = self._inbox_redis
        last = b"0-0"
        since_trim = 0
        server = await self._redis_run_id()
        while not self._closing:
            try:
                resp = await self._inbox_conn.xread({self.inbox: last}, block=1000, count=1000)
            except RedisError:
                logger.exception("reading inbox failed; retrying")
                await asyncio.sleep(0.2)
                run_id = await self._redis_run_id()
                while not run_id and not self._closing:
                    # Redis is not answering: wait until it does and compare its run_id
                    # then; reading the inbox again first would miss a restart (the read
                    # of an empty new server just blocks: no error to notice it by)
                    await asyncio.sleep(0.1)
                    run_id = await self._redis_run_id()
                if run_id and server and run_id != server and await self._inbox_kept(r):
                    # another server, with the data: on a cluster, the inbox's slot failed
                    # over to a replica. Nothing starts over (the routers that lost their
                    # node take their partitions over and ask for re-announcements)
                    logger.warning("the inbox's Redis node changed (run_id %s), data kept", run_id)
                elif run_id and server and run_id != server:
                    # a new Redis: its fencing counters and inbox numbering start over
                    logger.error("Redis restarted (run_id %s); router epochs start over", run_id)
                    self._newest.clear()
                    self._fenced.clear()
                    self._inbox_seq.clear()
                    last = b"0-0"
                    self._redis_restarted()
                server = run_id or server
                continue
            if not resp:
                if self._touched:  # session resume: quiet for a second, marks go now
                    mark_sessions(self._touched, last, time.monotonic(), force=True)
                if since_trim:  # session resume: trimmed when idle too (floors move on acks)
                    since_trim = await self._trim(last, since_trim)
                continue
            entries = resp[0][1]
            _stats.read_inbox(entries)  # once per read: count, position, delay
            for entry_id, fields in entries:
                self._dispatch_safely(entry_id, fields)
                last = entry_id
            if self._touched:  # session resume
                mark_sessions(self._touched, last, time.monotonic(), force=False)
            # the sockets' writes (one per socket) go out now, before the next read is sent:
            # behind it, each delivery waited for that read's write (W1, traced per hop:
            # inbox read to socket write 112 -> 45 µs with a turn of the loop first; written
            # here, with no turn and one callback for all sockets, not one each, 31 -> 29)
            self._flushes.now()
            since_trim += len(entries)
            if since_trim >= 200:
                since_trim = await self._trim(last, since_trim)

    async def _trim(self, last: bytes, since_trim: int) -> int:
        """Trim the inbox up to ``last``, or to the oldest position a resumable session has
        acknowledged (session resume); returns what counts as untrimmed: 0 when trimmed up to
        ``last``, 1 when a session's acknowledgement held the trim back (trimmed again when
        the inbox is next idle, or after the next 200 entries: counting the held-back ones
        again trimmed on every read, a command per delivery at W1's rate)."""
        floor = trim_floor(
            lambda: list(self.sessions.values()),
            last,
            time.monotonic(),
            held=[c.floor for c in self._suspended.values() if c.floor],
        )
        try:
            # the raw command path (as the reads and appends): redis-py's command machinery
            # cost more than the round trip
            await self._inbox_conn.execute([("XTRIM", self.inbox, "MINID", "~", floor)])
        except RedisError:  # the next read reconnects; the trim is retried later
            logger.warning("trimming the inbox failed")
            return since_trim
        return 0 if floor == last else 1

    async def _inbox_kept(self, r: Client) -> bool:
        """Does the server hold this gateway's inbox? A server that restarted empty does
        not; a replica promoted in its master's place does (once a delivery created it)."""
        try:
            return bool(await r.exists(self.inbox))
        except RedisError:
            return False

    async def _redis_run_id(self) -> str:
        """The Redis server's ``run_id`` (new at every start), or "" if it cannot be read."""
        try:
            return await server_run_id(self._inbox_redis, self.inbox)
        except RedisError:
            return ""

    def _fenced_off(self, p: bytes, e: bytes) -> bool:
        """Fencing: once a newer owner of the partition has spoken, a deposed router that
        still routes what it reads (it stalled past its lease) is not listened to. Called
        only when ``e`` is not the newest epoch already."""
        newest = self._newest.get(p)
        if newest is not None and int(e) < int(newest):
            if (p, e) not in self._fenced:
                self._fenced.add((p, e))
                logger.warning(
                    "partition %s: ignoring router epoch %s (epoch %s owns it)",
                    p.decode(),
                    e.decode(),
                    newest.decode(),
                )
            return True
        self._newest[p] = e
        return False

    def _dispatch_safely(self, entry_id: bytes, f: dict[bytes, bytes]) -> None:
        """One inbox entry, whatever it holds: a malformed entry (a bug, or something
        written to the inbox by hand) is logged and skipped; the loop and every other
        connection go on."""
        try:
            if self._resumer.pending:  # session resume: entries for a session being resumed
                self._entry_id = entry_id
            self._dispatch(f)
        except Exception:
            logger.exception("inbox entry %s could not be handled; skipped", entry_id.decode())

    def _dispatch(self, f: dict[bytes, bytes]) -> None:
        p, e, q = f.get(b"p", b""), f.get(b"e", b""), int(f.get(b"q", b"0"))
        if e and e != self._newest.get(p) and self._fenced_off(p, e):
            return
        if q:
            prev = self._inbox_seq.get((p, e))
            if prev is not None and q <= prev:
                return  # a repeat: the router retried a pipeline that had partly gone through
            self._inbox_seq[(p, e)] = q
            if prev is not None and q != prev + 1:
                lost = q - prev - 1
                reason = f"{lost} deliveries were trimmed before this gateway read them (lagged)"
                logger.error("inbox gap in partition %s: %s", p.decode(), reason)
                _stats.inbox_gaps += 1
                partition = int(p)
                for c in self.sessions.values():
                    if c.ident.partition == partition:
                        c.inbox_gap(reason)
        if self._resumer.pending:  # session resume: held for a session being resumed
            self._resumer.hold(self._entry_id, f)
        kind = f.get(b"k")
        sessions = self.sessions
        if kind is None:
            data = f[b"d"]
            so = f.get(b"so", b"").decode()
            se = f.get(b"se", b"").decode()
            joined = b"jn" in f
            ak = f.get(b"ak")
            ack = int(ak) if ak is not None else None
            li = f.get(b"li")
            if li is not None:  # a data packet: once per connection, even across takeovers
                at = _log_position(li)
                for s in f[b"to"].decode().split():
                    conn = sessions.get(s)
                    if conn is not None and conn.first_delivery_of_packet(at):
                        conn.push_packet(data)
                return
            for s in f[b"to"].decode().split():
                conn = sessions.get(s)
                if conn is not None:
                    conn.push(data, opens=so, ends=se, joined=joined, ack=ack)
            if b"mb" in f:  # maybe-recipients (see roomstreams.core.room.Maybe)
                self._deliver_maybe(f, data, so, se)
        elif kind == b"a":
            for s, n in json.loads(f[b"d"]).items():
                conn = sessions.get(s)
                if conn is not None:
                    conn.acked(int(n))
            pk = f.get(b"pk")
            if pk is not None:  # data-packet acks: numbered packets routed up to n
                for s, n in json.loads(pk).items():
                    conn = sessions.get(s)
                    if conn is not None:
                        conn.packets_routed(int(n))
        elif kind == b"r":
            self._resync(int(f[b"p"]), e.decode())
        elif kind == b"mv":  # session resume: a suspended session resumed
            moved = f[b"to"].decode()
            if moved in self._suspended:
                self._moved.add(moved)
        elif kind == b"x":
            goaway = json.loads(f[b"d"])
            reason = str(goaway.get("reason", "removed"))
            why = str(goaway.get("code", ""))
            to = f[b"to"].decode()
            if to == "*":  # the router had given this gateway up for dead
                for conn in list(sessions.values()):
                    conn.close(1012, reason)
                return
            code = (
                CLOSE_DUPLICATE_IDENTITY if why == ErrorCode.DUPLICATE_IDENTITY else CLOSE_REMOVED
            )
            for s in to.split():
                conn = sessions.get(s)
                if conn is not None:
                    conn.close(code, reason, why)

    def _deliver_maybe(self, f: dict[bytes, bytes], data: bytes, so: str, se: str) -> None:
        """A stream frame for sessions that had no handler for its topic when the router
        routed the header: a header goes to those whose socket has registered the stream's
        (kind, topic) by now (this gateway sees a registration one hop after the client made
        it, before the router does), a chunk or trailer to those that took the header."""
        sessions = self.sessions
        if so:
            key = (f[b"mk"].decode(), f[b"mt"].decode())
            declined: list[str] = []
            log_key = ""
            for s in f[b"mb"].decode().split():
                conn = sessions.get(s)
                if conn is not None:
                    log_key = conn.ident.log_key
                    if key in conn.subscriptions:
                        conn.push(data, opens=so)
                        continue
                declined.append(s)
            if declined and log_key:  # the router stops sending them this stream's chunks
                note = LogEntry(
                    kind="dc",
                    session="",
                    gateway=self.id,
                    stream_id=so,
                    data=" ".join(declined).encode(),
                )
                self._append(log_key, note)
            return
        sid = f[b"ms"].decode()
        for s in f[b"mb"].decode().split():
            conn = sessions.get(s)
            if conn is not None and sid in conn.receiving:
                conn.push(data, ends=se)

    def _redis_restarted(self) -> None:
        """Redis came back empty (no persistence): every room log, member list and lease is
        gone. Streams in flight end (``router_restarted``, saying why); each participant
        here is re-announced with its handlers, flagged as a re-announcement so nobody is
        told it joined anew, and each room is named again on its partition's control stream
        so the router (which starts over at epoch 1) reads it. The participants stay
        connected and go on exchanging streams."""
        reason = "Redis restarted; streams in flight were lost"
        _stats.redis_restarts += 1
        rooms: set[tuple[int, str]] = set()
        for conn in list(self.sessions.values()):
            conn.fail_packets(ErrorCode.ROUTER_RESTARTED, reason)  # lost with Redis
            conn.resync(self.id, reason)
            rooms.add((conn.ident.partition, conn.ident.room))
        for partition, room in sorted(rooms):
            entry = LogEntry(kind="room", session="", topic=room)
            self._append(partition_ctl_key(partition), entry)
        # and answer as to a takeover of epoch 1 (the first owner after the restart holds
        # what it reads until every live gateway has: resync-done entries in each room log,
        # then on every partition's control stream the rooms of this gateway there)
        n = self.settings.partitions
        for _partition, room in sorted(rooms):
            done = LogEntry(kind="rd", session="", gateway=self.id, epoch="1")
            self._append(room_log_key(room, n), done)
        for partition in range(n):
            listed = json.dumps(sorted(r for p, r in rooms if p == partition)).encode()
            done = LogEntry(kind="rd", session="", gateway=self.id, epoch="1", data=listed)
            self._append(partition_ctl_key(partition), done)
        if rooms:
            logger.warning(
                "re-announced %d participants in %d rooms after the Redis restart",
                len(self.sessions),
                len(rooms),
            )

    def _resync(self, partition: int, epoch: str) -> None:
        """A new router owns ``partition`` and knows nothing of its rooms: re-announce every
        participant here (join and handlers), mark each room's log when that is done, and
        tell the router on the partition's control stream which rooms to wait for. The
        router holds back the rooms' other entries until every gateway has answered, so a
        stream sent right after the failover still finds every handler."""
        _stats.resyncs += 1
        rooms: set[str] = set()
        for conn in list(self.sessions.values()):
            if conn.ident.partition == partition:
                conn.resync(self.id)
                rooms.add(conn.ident.room)
        n = self.settings.partitions
        for room in sorted(rooms):
            done = LogEntry(kind="rd", session="", gateway=self.id, epoch=epoch)
            self._append(room_log_key(room, n), done)
        listed = json.dumps(sorted(rooms)).encode()
        done = LogEntry(kind="rd", session="", gateway=self.id, epoch=epoch, data=listed)
        self._append(partition_ctl_key(partition), done)
        logger.info(
            "partition %d has a new router (epoch %s): %d rooms re-announced",
            partition,
            epoch,
            len(rooms),
        )

    # -- liveness ---------------------------------------------------------------------------

    async def _keepalive_loop(self) -> None:
        """One loop pings every connection (each when its ping is due), instead of a task
        per connection sleeping between pings."""
        s = self.settings
        loop = asyncio.get_running_loop()
        tick = min(1.0, s.ping_interval / 4, s.ping_timeout / 4)
        while not self._closing:
            await asyncio.sleep(tick)
            now = loop.time()
            for conn in list(self._live):
                conn.keepalive(now, s.ping_interval, s.ping_timeout, tick)

    async def _heartbeat_loop(self) -> None:
        interval = self.settings.heartbeat_interval
        fields: dict[Any, Any] = {"g": self.id, "ev": "hello"}
        while not self._closing:
            try:
                await self._redis.xadd(
                    GATEWAY_EVENTS,
                    {**fields, "t": int(time.time() * 1000)},
                    maxlen=10_000,
                    approximate=True,
                )
                fields["ev"] = "beat"
            except RedisError:
                logger.warning("heartbeat failed")
            await asyncio.sleep(interval)
