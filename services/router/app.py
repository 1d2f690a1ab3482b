"""The router service: a FastStream app (lifespan, gateway liveness, room lifecycle events)
around the room-log read loops, one per owned partition.

Partitions are owned under a lease (``SET NX PX``) with a fencing token (``INCR``) that
stamps every inbox entry, so a gateway can tell two owners of a partition apart. A router
takes every free partition; a second router is a hot standby that takes over the partitions
of one that stops renewing.
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
from redis.exceptions import RedisError

from roomstreams._redisio import Client
from roomstreams._redisio import client as redis_client
from roomstreams._tasks import cancel_and_wait
from roomstreams.events import ROOM_EVENTS_MAXLEN, room_events_publisher
from roomstreams.events import broker as make_broker
from roomstreams.protocol.keys import GATEWAY_EVENTS, ROOM_EVENTS, inbox_key, lease_key
from services.api.http import ApiHttpServer

from .partition import PartitionWorker
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
_RELEASE = """
if redis.call('GET', KEYS[1]) == ARGV[1] then
  return redis.call('DEL', KEYS[1])
end
return 0
"""


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
        self._tasks: list[asyncio.Task[None]] = []
        self._cleanup: set[asyncio.Task[None]] = set()
        self._dropped: set[str] = set()
        #: set once stop() begins: no partition is acquired after it, loops end
        self._stopping = False
        self._renew = self._r.register_script(_RENEW)
        self._release = self._r.register_script(_RELEASE)

    @property
    def owned(self) -> list[int]:
        return sorted(self._workers)

    async def start(self) -> None:
        await self._acquire()
        self._tasks = [
            asyncio.create_task(self._lease_loop(), name="router-leases"),
            asyncio.create_task(self._events_loop(), name="router-events"),
            asyncio.create_task(self._liveness_loop(), name="router-liveness"),
        ]
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
        for p, (_, _task, conn) in workers:
            with contextlib.suppress(RedisError):
                await conn.aclose()
                await self._release(keys=[lease_key(p)], args=[self.id])
        await self._r.aclose()

    # -- leases -----------------------------------------------------------------------------

    async def _acquire(self) -> None:
        for p in range(self.s.partitions):
            if self._stopping:
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
                task.add_done_callback(self._worker_done)
                self._workers[p] = (w, task, conn)

    def _worker_done(self, task: asyncio.Task[None]) -> None:
        if task.cancelled():
            return
        exc = task.exception()
        if exc is not None:
            logger.error("partition worker %s crashed", task.get_name(), exc_info=exc)
            # The lease is released so that this or another router takes the partition over.
            for p, (_, t, _conn) in list(self._workers.items()):
                if t is task:
                    del self._workers[p]
                    release = asyncio.get_running_loop().create_task(
                        self._release(keys=[lease_key(p)], args=[self.id])
                    )
                    self._cleanup.add(release)
                    release.add_done_callback(self._cleanup.discard)

    async def _lease_loop(self) -> None:
        period = min(self.s.lease_ms / 3000, 0.25)
        while not self._stopping:
            await asyncio.sleep(period)
            try:
                for p in list(self._workers):
                    key, epoch = lease_key(p), self._workers[p][0].epoch
                    ok = await self._renew(
                        keys=[key, f"{key}:fence"], args=[self.id, self.s.lease_ms, epoch]
                    )
                    if not ok:
                        logger.error("lost the lease on partition %d", p)
                        w, task, conn = self._workers.pop(p)
                        w.running = False  # in case the cancellation is swallowed
                        task.cancel()
                        await conn.aclose()
                await self._acquire()
            except RedisError:
                logger.exception("lease renewal failed")

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
        for w, _, _ in self._workers.values():
            w.drop_gateway(gw, reason)
        # nothing of a dead gateway stays behind: its inbox goes (deliveries still queued
        # for it would reach nobody)
        task = asyncio.get_running_loop().create_task(self._forget_gateway(gw))
        self._cleanup.add(task)
        task.add_done_callback(self._cleanup.discard)

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
            now = time.monotonic()
            for gw, seen in list(self._gateways.items()):
                if now - seen > timeout:
                    logger.warning("gateway %s missed heartbeats for %.1fs; dropping", gw, timeout)
                    del self._gateways[gw]
                    self._dropped.add(gw)
                    self._drop(gw, f"gateway {gw} stopped responding")

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
        name=f"roomstreams-router-{router.id}-api",
    )
    app.after_startup(router.start)
    app.after_startup(http.start)
    app.on_shutdown(http.stop)
    app.on_shutdown(router.stop)
    return app, router
