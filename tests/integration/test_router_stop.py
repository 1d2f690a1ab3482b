"""The router stops cleanly even when a cancellation is lost, and a partition worker that
stalled past its lease stops routing once another router owns the partition.

On Python 3.11 a cancellation can be swallowed inside redis-py (``asyncio.wait_for``,
CPython gh-86296). A router stopped while it was acquiring partitions then kept its lease
loop running: it took the partitions back after releasing them, and the process never
exited. The swallow is simulated here at the exact point it happens (inside a command of
the lease loop); the Redis server and the router are real."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest
import redis.asyncio as aioredis

from roomstreams._redisio import Pinned
from roomstreams.protocol.entries import encode_log_entry
from roomstreams.protocol.keys import lease_key
from services.router.app import Router
from services.router.settings import RouterSettings

from .partition_worker import PARTITIONS, private_redis, worker_routing_to_bob

__all__ = ["private_redis"]  # a fixture of this module


async def test_stop_ends_a_lease_loop_that_swallowed_its_cancellation(
    private_redis: tuple[str, aioredis.Redis],
) -> None:
    url, r = private_redis
    # another (dead) router's leases, about to lapse
    for p in range(PARTITIONS):
        await r.set(lease_key(p), "dead", px=600)
    settings = RouterSettings(
        redis_url=url, api_key="k", api_secret="s" * 32, partitions=PARTITIONS, lease_ms=600
    )
    router = Router(settings)
    real_set = router._r.set
    in_acquire = asyncio.Event()

    async def set_that_swallows_one_cancellation(*args: Any, **kwargs: Any) -> Any:
        result = await real_set(*args, **kwargs)
        if result and not in_acquire.is_set():
            in_acquire.set()
            try:
                await asyncio.sleep(3600)  # where the cancellation lands
            except asyncio.CancelledError:
                pass  # ...and is lost
        return result

    router._r.set = set_that_swallows_one_cancellation  # type: ignore[method-assign]
    await router.start()
    try:
        assert router.owned == []
        # the dead router's leases lapse; the lease loop takes partition 0 and is inside
        # that command when the stop comes
        await asyncio.wait_for(in_acquire.wait(), 10)
    finally:
        await asyncio.wait_for(router.stop(), 10)  # TimeoutError: the stop hung
    # nothing was taken after the stop: every lease is free for the next router
    await asyncio.sleep(settings.lease_ms / 1000)  # a lease loop still alive would act now
    held = [p for p in range(PARTITIONS) if await r.get(lease_key(p)) is not None]
    assert held == []
    assert router.owned == []


@pytest.mark.parametrize("fused", [False, True], ids=["read-alone", "read-with-writes"])
@pytest.mark.parametrize("taken_over", [True, False], ids=["taken-over", "still-owner"])
async def test_a_worker_that_stalled_past_its_lease_routes_nothing_once_deposed(
    private_redis: tuple[str, aioredis.Redis],
    monkeypatch: pytest.MonkeyPatch,
    taken_over: bool,
    fused: bool,
) -> None:
    """Its read returns long after it should have (the process stalled): if the fencing
    counter moved on meanwhile, another router owns the partition, and the worker routes
    nothing of what it read and stops. If it did not, the worker goes on as before. The
    read is either a read alone or the one that goes with a wake-up's writes (standalone
    Redis: the next read rides in the flush's pipeline)."""
    url, r = private_redis
    worker, conn, log, key, inbox = await worker_routing_to_bob(url, r)
    try:

        async def stall() -> None:
            if taken_over:
                await r.incr(f"{lease_key(0)}:fence")  # the standby took the partition
            await asyncio.sleep(1.0 + 0.5 / 2 + 0.1)  # longer than block + half the lease

        # the worker's read loop goes through its own connection (Pinned)
        real_xread, real_execute = Pinned.xread, Pinned.execute

        async def stalling_xread(self: Pinned, *args: Any, **kwargs: Any) -> Any:
            resp = await real_xread(self, *args, **kwargs)
            if not fused:
                await stall()
            return resp

        async def stalling_execute(self: Pinned, cmds: Any) -> Any:
            replies = await real_execute(self, cmds)
            if fused and cmds and cmds[-1][0] == "XREAD":
                await stall()
            return replies

        monkeypatch.setattr(Pinned, "xread", stalling_xread)
        monkeypatch.setattr(Pinned, "execute", stalling_execute)
        worker._next = None  # the next step reads alone
        if fused:  # a wake-up with writes, which carry the next read: a stream to bob
            await r.xadd(key, encode_log_entry(log.header("s-alice", "st-x", "chat")))  # type: ignore[arg-type]
            await worker._step()
            assert worker.running is not taken_over
            if taken_over:
                assert worker._next is None  # what the stalled read returned is dropped
                return
        await r.xadd(key, encode_log_entry(log.header("s-alice", "st-2", "chat")))  # type: ignore[arg-type]
        await worker._step()
        if fused:  # the header came with the last step's writes: routed at the next one
            await worker._step()
        routed = any(f.get(b"so") == b"st-2" for _, f in await r.xrange(inbox))
        assert routed is not taken_over
        assert worker.running is not taken_over
    finally:
        await conn.aclose()
