"""The router stops cleanly even when a cancellation is lost.

On Python 3.11 a cancellation can be swallowed inside redis-py (``asyncio.wait_for``,
CPython gh-86296). A router stopped while it was acquiring partitions then kept its lease
loop running: it took the partitions back after releasing them, and the process never
exited. The swallow is simulated here at the exact point it happens (inside a command of
the lease loop); the Redis server and the router are real."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from typing import Any

import pytest
import redis.asyncio as aioredis

from roomstreams.protocol.keys import lease_key
from services.router.app import Router
from services.router.settings import RouterSettings

from .conftest import _private_db

PARTITIONS = 4


@pytest.fixture
async def private_redis(redis_url: str) -> AsyncIterator[tuple[str, aioredis.Redis]]:
    url = _private_db(redis_url)
    r = aioredis.Redis.from_url(url)
    try:
        yield url, r
    finally:
        await r.aclose()


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
