"""The router service: a FastStream app (lifespan, gateway liveness, room lifecycle events)
around the room-log read loops, one per owned partition.

Partitions are owned under a lease (``SET NX PX``) with a fencing token (``INCR``) that
stamps every inbox entry, so a gateway can tell two owners of a partition apart.

Routers share the partitions: each one registers in ``rs:routers`` (a sorted set scored by
the expiry of its registration, renewed with its leases) and owns at most an even share
(``partitions // routers``, one more for the first ``partitions % routers`` by id). A router
that joins takes free partitions up to its share; the others hand partitions over until
they are down to theirs, quiet ones first (a partition with no stream open moves at once, a
busy one within ``handover_wait``): the worker stops after its current read, its position
is already written, and the new owner takes over as after a failure (hold-back, fencing),
so nothing logged is skipped. A router that stops (SIGTERM) deregisters and releases its
leases; one that dies (SIGKILL) lets them lapse; either way the others' share grows and
they take the partitions.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import secrets
import time
from typing import Any

from faststream import FastStream
from faststream.redis import RedisBroker, StreamSub
from redis.asyncio.cluster import RedisCluster
from redis.exceptions import NoScriptError, RedisError

from roomstreams._redisio import Client, Command, execute
from roomstreams._redisio import client as redis_client
from roomstreams._tasks import cancel_and_wait
from roomstreams.events import ROOM_EVENTS_MAXLEN, room_events_publisher
from roomstreams.events import broker as make_broker
from roomstreams.protocol.keys import GATEWAY_EVENTS, ROOM_EVENTS, ROUTERS, inbox_key, lease_key
from services.api.http import ApiHttpServer
from services.observability import ROUTER as _stats
from services.observability import router_metrics

from .partition import PartitionWorker, live_gateways
from .settings import RouterSettings

__all__ = ["Router", "create_app"]

logger = logging.getLogger("router.app")

# Renew our lease. If it expired (we stalled) and nobody took it meanwhile, nobody else can
# have read the partition, so our room state is still right: take it back.
_RENEW = """
local owner = redis.call('GET', KEYS[1])
if owner == ARGV[1] then
  return redis.call('PEXPIRE', KEYS[1], ARGV[2])
end
if not owner and tonumber(redis.call('GET', KEYS[2])) == tonumber(ARGV[3]) then
  redis.call('SET', KEYS[1], ARGV[1], 'PX', ARGV[2])
  return 2
end
return 0
"""
# Register (or renew) this router until now + ARGV[2] ms by the server's clock, forget the
# routers whose registration lapsed, and list the live ones.
_REGISTER = """
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
redis.call('ZADD', KEYS[1], now + tonumber(ARGV[2]), ARGV[1])
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', now)
return redis.call('ZRANGE', KEYS[1], 0, -1)
"""
_RELEASE = """
if redis.call('GET', KEYS[1]) == ARGV[1] then
  return redis.call('DEL', KEYS[1])
end
return 0
"""


#: after a Redis error, how much longer than the gateway timeout no gateway is given up for
#: dead: FastStream's stream subscriber waits 5 s after a failed read before it reads again
_HEARTBEAT_GRACE_S = 6.0


class Router:
    def __init__(self, settings: RouterSettings, broker: RedisBroker | None = None) -> None:
        self.s = settings
        self.id = secrets.token_hex(4)
        self.broker = broker
        #: typed (RoomEvent): FastStream's AsyncAPI document shows what backends consume
        self._events_pub = room_events_publisher(broker) if broker is not None else None
        self._r = redis_client(settings.redis_url, f"roomstreams-router-{self.id}")
        self._workers: dict[int, tuple[PartitionWorker, asyncio.Task[None], Client]] = {}
        self._events: asyncio.Queue[dict[str, str]] = asyncio.Queue(maxsize=100_000)
        self._gateways: dict[str, float] = {}
        #: when this router last failed to reach Redis (heartbeat grace, see _liveness_loop)
        self._redis_error_at = -1e9
        self._tasks: list[asyncio.Task[None]] = []
        self._cleanup: set[asyncio.Task[None]] = set()
        #: each worker task's own connection, closed when the task ends, however it ends (a
        #: worker cancelled while a command was under way can reconnect a closed client)
        self._conns: dict[asyncio.Task[None], Client] = {}
        self._dropped: set[str] = set()
        #: set once stop() begins: no partition is acquired after it, loops end
        self._stopping = False
        self._renew = self._r.register_script(_RENEW)
        self._release = self._r.register_script(_RELEASE)
        self._register = self._r.register_script(_REGISTER)
        #: live routers, as last counted (this one included), and this one's place among
        #: them by id
        self.routers = 1
        self._rank = 0
        #: since when this router owns more than its share (None: it does not)
        self._over_since: float | None = None
        self._handing_over: set[asyncio.Task[None]] = set()

    @property
    def owned(self) -> list[int]:
        return sorted(self._workers)

    @property
    def share(self) -> int:
        """How many partitions this router may own: an even split among the live ones (the
        first ``partitions % routers`` by id take one more)."""
        n = max(1, self.routers)
        return self.s.partitions // n + (1 if self._rank < self.s.partitions % n else 0)

    async def start(self) -> None:
        await self._count_routers()
        await self._acquire()
        self._tasks = [
            asyncio.create_task(self._lease_loop(), name="router-leases"),
            asyncio.create_task(self._events_loop(), name="router-events"),
            asyncio.create_task(self._liveness_loop(), name="router-liveness"),
        ]
        for task in self._tasks:
            task.add_done_callback(self._loop_done)
        logger.info("router %s started; owns %d partitions", self.id, len(self._workers))

    async def stop(self) -> None:
        self._stopping = True
        # the lease loop first, so that it cannot start a worker after this snapshot
        stuck = await cancel_and_wait(self._tasks, timeout=3.0)
        workers = list(self._workers.items())
        self._workers.clear()
        for _, (w, _task, _conn) in workers:
            w.running = False  # a read that swallows the cancellation still ends with the flag
        stuck |= await cancel_and_wait([task for _, (_, task, _) in workers], timeout=3.0)
        if stuck:
            logger.error("tasks did not stop: %s", sorted(t.get_name() for t in stuck))
        stuck |= await cancel_and_wait(list(self._handing_over), timeout=3.0)
        for p, (_, _task, conn) in workers:
            with contextlib.suppress(RedisError):
                await conn.aclose()
                await self._release(keys=[lease_key(p)], args=[self.id])
        with contextlib.suppress(RedisError):  # the others' share grows at once
            await self._r.zrem(ROUTERS, self.id)
        await self._r.aclose()

    # -- leases -----------------------------------------------------------------------------

    async def _count_routers(self) -> None:
        live = await self._register(keys=[ROUTERS], args=[self.id, self.s.lease_ms])
        ids = sorted(i.decode() if isinstance(i, bytes) else str(i) for i in live)
        self.routers = len(ids)
        self._rank = ids.index(self.id) if self.id in ids else 0

    async def _acquire(self) -> None:
        # start at a place of this router's own, so that routers joining together do not
        # all race for partition 0, 1, ...
        start = int(self.id, 16) % self.s.partitions
        for i in range(self.s.partitions):
            p = (start + i) % self.s.partitions
            if self._stopping or len(self._workers) >= self.share:
                return
            if p in self._workers:
                continue
            if await self._r.set(lease_key(p), self.id, nx=True, px=self.s.lease_ms):
                epoch = await self._r.incr(f"{lease_key(p)}:fence")
                if self._stopping:  # stop() began meanwhile: hand the partition back
                    await self._release(keys=[lease_key(p)], args=[self.id])
                    return
                conn = redis_client(self.s.redis_url, f"roomstreams-router-{self.id}-p{p}")
                w = PartitionWorker(p, epoch, self.s, conn, self._events, self.saw_gateway)
                task = asyncio.create_task(w.run(), name=f"partition-{p}")
                self._conns[task] = conn
                task.add_done_callback(self._worker_done)
                self._workers[p] = (w, task, conn)
                _stats.partitions_acquired += 1
                _stats.takeovers += epoch > 1

    def _loop_done(self, task: asyncio.Task[None]) -> None:
        """The router's own loops run until stop(): one that ends before is a bug, said
        loudly (a lease loop that died silently once left partitions unowned for good)."""
        if task.cancelled() or self._stopping:
            return
        logger.critical(
            "router loop %s ended unexpectedly", task.get_name(), exc_info=task.exception()
        )

    def _worker_done(self, task: asyncio.Task[None]) -> None:
        """A partition worker ended. Its connection is closed in every case. If it ended on
        its own (it crashed, or it stopped because the server under it changed: Redis
        restarted, or on a cluster its slot failed over to a replica, which keeps the
        lease), its lease is released too and the partition is taken afresh, as a takeover
        (a worker stopped on purpose, by a hand-over, a lost lease or stop(), is no longer
        listed in ``_workers``)."""
        conn = self._conns.pop(task, None)
        release: int | None = None
        if not task.cancelled():
            exc = task.exception()
            for p, (w, t, _conn) in list(self._workers.items()):
                if t is not task:
                    continue
                if exc is None and not w.retake:
                    # deposed (another router took the partition while this one stalled):
                    # the lease loop lets it go at its next renewal, as for a lost lease
                    conn = None
                    break
                if exc is not None:
                    logger.error("partition worker %s crashed", task.get_name(), exc_info=exc)
                else:
                    logger.warning("partition %d: worker stopped; taking the partition afresh", p)
                del self._workers[p]
                release = p

        async def cleanup() -> None:
            with contextlib.suppress(RedisError):
                if conn is not None:
                    await conn.aclose()
                if release is not None:
                    await self._release(keys=[lease_key(release)], args=[self.id])

        done = asyncio.get_running_loop().create_task(cleanup())
        self._cleanup.add(done)
        done.add_done_callback(self._cleanup.discard)

    async def _lease_loop(self) -> None:
        period = min(self.s.lease_ms / 3000, 0.25)
        while not self._stopping:
            await asyncio.sleep(period)
            try:
                owned = [(p, w) for p, (w, _t, _c) in self._workers.items()]
                for (p, w), ok in zip(owned, await self._renew_all(owned), strict=True):
                    # a worker may have stopped during the renewals (on a cluster they are
                    # one call each): its partition is no longer this worker's to give up
                    if not ok and self._workers.get(p, (None,))[0] is w:
                        logger.error("lost the lease on partition %d", p)
                        _stats.leases_lost += 1
                        w, task, conn = self._workers.pop(p)
                        w.running = False  # in case the cancellation is swallowed
                        task.cancel()
                        await conn.aclose()
                await self._count_routers()
                self._rebalance()
                await self._acquire()
            except RedisError:
                self._redis_error_at = time.monotonic()  # heartbeat grace
                logger.exception("lease renewal failed")
            except Exception:
                # never the end of the loop: a router that stops renewing keeps routing
                # until its leases lapse, then nobody owns its partitions if it was alone
                logger.exception("lease loop: unexpected error; going on")

    async def _renew_all(self, partitions: list[tuple[int, PartitionWorker]]) -> list[Any]:
        """Renew the leases of ``partitions``: on a standalone server in one pipeline of
        ``EVALSHA`` (one round trip a tick, not one per partition: that was most of an idle
        router's CPU), on a cluster one call each (the keys live on different nodes). A
        server that does not know the script yet (it restarted) gets it by the one-by-one
        path, which loads it."""

        def keys_args(p: int, w: PartitionWorker) -> tuple[list[str], list[str | int]]:
            key = lease_key(p)
            return [key, f"{key}:fence"], [self.id, self.s.lease_ms, w.epoch]

        if not isinstance(self._r, RedisCluster):
            cmds: list[Command] = []
            for p, w in partitions:
                keys, args = keys_args(p, w)
                cmds.append(("EVALSHA", self._renew.sha, len(keys), *keys, *args))
            try:
                return await execute(self._r, cmds)
            except NoScriptError:
                pass
        out: list[Any] = []
        for p, w in partitions:
            keys, args = keys_args(p, w)
            out.append(await self._renew(keys=keys, args=args))
        return out

    def _rebalance(self) -> None:
        """Owning more than the share (a router joined): hand partitions over, those with
        no stream open at once, the busiest last, any that are left after
        ``handover_wait``."""
        excess = len(self._workers) - self.share
        if excess <= 0:
            self._over_since = None
            return
        now = time.monotonic()
        if self._over_since is None:
            self._over_since = now
        patient = now - self._over_since < self.s.handover_wait
        candidates = sorted(
            (w.open_streams(), p) for p, (w, _, _) in self._workers.items() if w.settled
        )
        for streams, p in candidates[:excess]:
            if streams and patient:
                break
            w, task, conn = self._workers.pop(p)
            _stats.handovers += 1
            logger.info(
                "handing partition %d over (%d routers; %d streams open)", p, self.routers, streams
            )
            handover = asyncio.get_running_loop().create_task(self._hand_over(p, w, task, conn))
            self._handing_over.add(handover)
            handover.add_done_callback(self._handing_over.discard)

    async def _hand_over(
        self, p: int, w: PartitionWorker, task: asyncio.Task[None], conn: Client
    ) -> None:
        """Stop the worker after its current read and flush (its position is written with
        every flush), then free the lease for the router that is short of partitions."""
        w.running = False
        try:
            await asyncio.wait_for(asyncio.shield(task), timeout=self.s.lease_ms / 1000)
        except (TimeoutError, Exception):
            task.cancel()
        try:
            await self._release(keys=[lease_key(p)], args=[self.id])
        except RedisError:
            logger.warning("could not release partition %d; its lease lapses", p)
        finally:
            await conn.aclose()

    # -- gateway liveness ---------------------------------------------------------------------

    def gateway_event(self, body: dict[str, Any]) -> None:
        gw, ev = str(body.get("g", "")), str(body.get("ev", ""))
        if not gw:
            return
        if ev == "bye":
            self._gateways.pop(gw, None)
            self._drop(gw, "gateway shut down")
        elif gw in self._dropped:
            # it was only stalled, but its participants have left their rooms meanwhile:
            # tell it to close their sockets so the clients reconnect and rejoin
            self._dropped.discard(gw)
            task = asyncio.get_running_loop().create_task(self._reset_gateway(gw))
            self._cleanup.add(task)
            task.add_done_callback(self._cleanup.discard)
        else:
            self._gateways[gw] = time.monotonic()

    def saw_gateway(self, gw: str) -> None:
        """A join names this gateway: watch it even if its heartbeats never come (it may
        have died before this router started), so its participants cannot linger."""
        if gw not in self._gateways and gw not in self._dropped:
            self._gateways[gw] = time.monotonic()

    def _drop(self, gw: str, reason: str) -> None:
        window = self.s.resume_window
        if window > 0:  # session resume: its resumable members stay for the window
            for w, _, _ in self._workers.values():
                w.suspend_gateway(gw, reason)
            later = asyncio.get_running_loop().create_task(self._drop_after(gw, reason, window))
            self._cleanup.add(later)
            later.add_done_callback(self._cleanup.discard)
            return
        for w, _, _ in self._workers.values():
            w.drop_gateway(gw, reason)
        # nothing of a dead gateway stays behind: its inbox goes (deliveries still queued
        # for it would reach nobody)
        task = asyncio.get_running_loop().create_task(self._forget_gateway(gw))
        self._cleanup.add(task)
        task.add_done_callback(self._cleanup.discard)

    async def _drop_after(self, gw: str, reason: str, window: float) -> None:
        """Session resume: past the window, the members still on the gone gateway leave
        (those that resumed are elsewhere now), then its inbox goes: a resume replays from
        it until then."""
        await asyncio.sleep(window)
        for w, _, _ in self._workers.values():
            w.drop_gateway(gw, reason)
        await self._forget_gateway(gw)

    async def _reset_gateway(self, gw: str) -> None:
        reason = "gateway lost contact with the router; reconnect"
        frame = json.dumps({"type": "goaway", "code": "1012", "reason": reason})
        try:
            await self._r.xadd(inbox_key(gw), {"k": "x", "to": "*", "d": frame})
        except RedisError:
            logger.warning("could not reset gateway %s", gw)

    async def _forget_gateway(self, gw: str) -> None:
        # let the partition workers route the leaves first (they wake at least every second)
        await asyncio.sleep(self.s.gateway_timeout / 2 + 1.0)
        try:
            await self._r.delete(inbox_key(gw))
        except RedisError:
            logger.warning("could not delete the inbox of gateway %s", gw)

    async def _liveness_loop(self) -> None:
        timeout = self.s.gateway_timeout
        while not self._stopping:
            await asyncio.sleep(min(1.0, timeout / 4))
            if time.monotonic() - self._redis_error_at < timeout + _HEARTBEAT_GRACE_S:
                # heartbeat grace: Redis just failed (restarted?): beats could not arrive, and
                # FastStream's subscriber backs off 5 s after a fetch error; judging now
                # dropped every live gateway (their participants left, then reconnected)
                continue
            try:
                await self.judge_gateways()
            except Exception:
                logger.exception("liveness loop: unexpected error; going on")

    async def judge_gateways(self) -> list[str]:
        """Drop the gateways that sent no heartbeat for ``gateway_timeout``; the ones dropped.

        A gateway that looks silent is looked up in the heartbeat stream itself first: this
        router may only be behind in consuming the beats (busy with a burst of joins), and
        dropping a live gateway ends every stream of every participant on it."""
        timeout, now = self.s.gateway_timeout, time.monotonic()
        stale = [gw for gw, seen in self._gateways.items() if now - seen > timeout]
        if not stale:
            return []
        try:
            alive = await live_gateways(self._r, timeout)
        except RedisError:
            return []  # cannot tell: judged on the next round
        dropped = []
        for gw in stale:
            if gw not in self._gateways:
                continue
            if gw in alive:
                self._gateways[gw] = time.monotonic()
                continue
            logger.warning("gateway %s missed heartbeats for %.1fs; dropping", gw, timeout)
            del self._gateways[gw]
            self._dropped.add(gw)
            self._drop(gw, f"gateway {gw} stopped responding")
            dropped.append(gw)
        return dropped

    # -- room lifecycle events ------------------------------------------------------------------

    async def _events_loop(self) -> None:
        while not self._stopping:
            ev = await self._events.get()
            try:
                if self._events_pub is not None:  # typed publisher: MAXLEN ~ROOM_EVENTS_MAXLEN
                    await self._events_pub.publish(ev)
                else:
                    await self._r.xadd(ROOM_EVENTS, ev, maxlen=ROOM_EVENTS_MAXLEN, approximate=True)  # type: ignore[arg-type]
            except RedisError:
                logger.exception("publishing a room event failed")


def create_app(settings: RouterSettings | None = None) -> tuple[FastStream, Router]:
    s = settings or RouterSettings()
    # consumed heartbeats are logged at DEBUG: one INFO line per beat would drown the log
    broker = make_broker(
        s.redis_url, logger=logging.getLogger("router.broker"), log_level=logging.DEBUG
    )
    router = Router(s, broker)

    @broker.subscriber(stream=StreamSub(GATEWAY_EVENTS, last_id="$"))
    async def on_gateway_event(body: dict[str, Any]) -> None:
        router.gateway_event(body)

    app = FastStream(broker, logger=logging.getLogger("router.faststream"))
    http = ApiHttpServer(
        redis_url=s.redis_url,
        host=s.router_http_host,
        port=s.router_http_port,
        api_key=s.api_key,
        api_secret=s.api_secret,
        partitions=s.partitions,
        status=lambda: {"router": router.id, "partitions": router.owned},
        metrics=router_metrics(router),  # GET /metrics (services/observability.py)
        name=f"roomstreams-router-{router.id}-api",
    )
    app.after_startup(router.start)
    app.after_startup(http.start)
    app.on_shutdown(http.stop)
    app.on_shutdown(router.stop)
    return app, router
