"""The router's lease loop outlives what happens to its workers meanwhile. On a Redis
Cluster the renewals are one call each, so a worker can stop between two of them (its
slot failed over to a replica: it stops to be taken afresh); the loop then looked the
stopped worker up, failed with a KeyError and ended without a word, and the partitions
were never taken again (no stream went through for the rest of a failover test). A real
cluster of its own (the session's has a system routing on it), the router in this process."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Iterator
from typing import Any

import pytest

from roomstreams._redis_cluster import LocalRedisCluster
from services.router.app import Router
from services.router.settings import RouterSettings

from .helpers import wait_for_state


@pytest.fixture
def cluster() -> Iterator[LocalRedisCluster]:
    from tests.conftest import _cluster_binary

    with LocalRedisCluster(_cluster_binary()) as c:
        yield c


@pytest.fixture
async def router(cluster: LocalRedisCluster) -> AsyncIterator[Router]:
    settings = RouterSettings(redis_url=cluster.url, api_key="k", api_secret="s" * 32, partitions=4)
    rt = Router(settings)
    await rt.start()
    try:
        yield rt
    finally:
        await rt.stop()


async def _owns_all(rt: Router, timeout: float) -> None:
    async def owns_all() -> bool:
        return len(rt.owned) == rt.s.partitions

    await wait_for_state(owns_all, timeout, "the router to own every partition")


async def test_a_worker_that_stops_during_the_renewals_is_taken_afresh(router: Router) -> None:
    rt = router
    await _owns_all(rt, 10)
    victim = max(rt.owned)
    old_worker, old_task, _ = rt._workers[victim]
    renew = rt._renew
    stopped = asyncio.Event()

    async def renew_while_a_worker_stops(*, keys: list[str], args: list[Any]) -> Any:
        if not stopped.is_set():
            stopped.set()
            # what a worker does when its Redis node changed under it (data kept): it
            # stops, and the router takes the partition afresh
            old_worker.running, old_worker.retake = False, True
            await asyncio.wait_for(asyncio.shield(old_task), 5)
        return await renew(keys=keys, args=args)

    rt._renew = renew_while_a_worker_stops  # type: ignore[method-assign]
    await asyncio.wait_for(stopped.wait(), 5)

    # taken again, by a new worker at the next epoch, and the lease loop still runs
    async def taken_afresh() -> bool:
        return victim in rt._workers and rt._workers[victim][0] is not old_worker

    await wait_for_state(taken_afresh, 10, f"partition {victim} taken afresh")
    new_worker = rt._workers[victim][0]
    assert int(new_worker.epoch) > int(old_worker.epoch)
    lease_loop = next(t for t in rt._tasks if t.get_name() == "router-leases")
    assert not lease_loop.done()
    await _owns_all(rt, 5)
