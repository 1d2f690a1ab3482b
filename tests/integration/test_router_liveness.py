"""The router judges a gateway dead by the heartbeat stream, not by how far it has got in
consuming it: a router busy with a burst of joins (its heartbeat consumer behind) must not
drop a gateway that is beating, and still drops one that is not. Real Redis, the router's
own judging pass (``Router.judge_gateways``), in this process."""

from __future__ import annotations

import time
from collections.abc import AsyncIterator

import pytest
import redis.asyncio as aioredis

from roomstreams.protocol.keys import GATEWAY_EVENTS
from services.router.app import Router
from services.router.settings import RouterSettings

from .conftest import _private_db


@pytest.fixture
async def router(redis_url: str) -> AsyncIterator[tuple[Router, aioredis.Redis]]:
    url = _private_db(redis_url)
    r = aioredis.Redis.from_url(url)
    settings = RouterSettings(
        redis_url=url, api_key="k", api_secret="s" * 32, partitions=4, gateway_timeout=2.0
    )
    rt = Router(settings)
    try:
        yield rt, r
    finally:
        await rt._r.aclose()
        await r.aclose()


async def test_a_beating_gateway_is_kept_though_its_beats_were_not_consumed(
    router: tuple[Router, aioredis.Redis],
) -> None:
    rt, r = router
    long_ago = time.monotonic() - 60
    # as this router last consumed them: both silent for a minute
    rt._gateways = {"busy": long_ago, "dead": long_ago}
    # the stream itself: "busy" beat a moment ago; "dead" beat long before the timeout
    old = int((time.time() - 60) * 1000)
    await r.xadd(GATEWAY_EVENTS, {"g": "dead", "ev": "beat"}, id=f"{old}-0")
    await r.xadd(GATEWAY_EVENTS, {"g": "busy", "ev": "beat"})
    assert await rt.judge_gateways() == ["dead"]
    assert "busy" in rt._gateways and "dead" not in rt._gateways
    assert time.monotonic() - rt._gateways["busy"] < 1.0  # counted as heard from now
    assert rt._dropped == {"dead"}


async def test_a_gateway_that_said_bye_is_dropped_even_if_it_beat_before(
    router: tuple[Router, aioredis.Redis],
) -> None:
    rt, r = router
    rt._gateways = {"gone": time.monotonic() - 60}
    await r.xadd(GATEWAY_EVENTS, {"g": "gone", "ev": "beat"})
    await r.xadd(GATEWAY_EVENTS, {"g": "gone", "ev": "bye"})
    assert await rt.judge_gateways() == ["gone"]
