"""A partition worker on a real Redis, driven step by step by a test (``_step``), and the
private database it runs in."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from typing import Any

import pytest
import redis.asyncio as aioredis

from roomstreams._redisio import client
from roomstreams.protocol.entries import encode_log_entry
from roomstreams.protocol.keys import (
    inbox_key,
    lease_key,
    partition_ctl_key,
    partition_of,
    room_log_key,
)
from services.router.partition import PartitionWorker
from services.router.settings import RouterSettings

from ..unit._room_helpers import LogWriter
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


async def worker_routing_to_bob(
    url: str, r: aioredis.Redis, **options: Any
) -> tuple[PartitionWorker, aioredis.Redis, LogWriter, str, str]:
    """A partition worker (epoch 1) of partition 0 with a room where alice's streams on
    "chat" reach bob on gateway gw-b; returns it with the room's log key and bob's inbox."""
    settings = RouterSettings(
        redis_url=url,
        api_key="k",
        api_secret="s" * 32,
        partitions=PARTITIONS,
        lease_ms=500,
        **options,
    )
    room = next(f"room-{i}" for i in range(1000) if partition_of(f"room-{i}", PARTITIONS) == 0)
    key, inbox = room_log_key(room, PARTITIONS), inbox_key("gw-b")
    assert await r.incr(f"{lease_key(0)}:fence") == 1
    conn = client(url)
    worker = PartitionWorker(0, 1, settings, conn)
    log = LogWriter()
    await r.xadd(partition_ctl_key(0), {"room": room})
    for e in (
        log.join("s-alice", "alice", "gw-a"),
        log.join("s-bob", "bob", "gw-b"),
        log.subscribe("s-bob", "chat"),
        log.header("s-alice", "st-1", "chat"),
    ):
        await r.xadd(key, encode_log_entry(e))  # type: ignore[arg-type]
    async with asyncio.timeout(10):
        while not any(f.get(b"so") == b"st-1" for _, f in await r.xrange(inbox)):
            await worker._step()
    return worker, conn, log, key, inbox
