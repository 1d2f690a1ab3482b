"""Reading by notice, a room the idle sweep finds entries in is read, even when its notice
came in the read that was in flight during the sweep.

Found in W7 at 10,000 rooms (2026-12-03): the sweep (a backup for missed notices) ran
between a read going out and its reply being handled. It found a room set aside with a new
entry and put it back among the named rooms; the reply then handled held that entry's
notice, which found the room not set aside and did nothing, and the step set every room not
named again aside, that one too, before any read had named it: the entry waited for the
next notice of that room (none, for a room gone quiet) and every later sweep did the same.
A real Redis; the worker is driven step by step and the race is made to happen."""

from __future__ import annotations

import asyncio

import redis.asyncio as aioredis

from roomstreams.protocol.entries import encode_log_entry
from roomstreams.protocol.keys import partition_ctl_key, room_from_log_key

from .helpers import wait_for_state
from .partition_worker import private_redis, worker_routing_to_bob

__all__ = ["private_redis"]  # a fixture of this module


async def _append_with_notice(r: aioredis.Redis, key: str, fields: dict[str, bytes]) -> None:
    """As a gateway appends on a standalone server: the entry and its notice, atomically."""
    async with r.pipeline(transaction=True) as pipe:
        pipe.xadd(key, fields)  # type: ignore[arg-type]
        pipe.xadd(partition_ctl_key(0), {"room": room_from_log_key(key)})
        await pipe.execute()


async def _blocked_reads(r: aioredis.Redis) -> bool:
    clients = await r.client_list()
    return any(c.get("cmd") == "xread" and "b" in c.get("flags", "") for c in clients)


async def _routed(r: aioredis.Redis, inbox: str, index: int) -> bool:
    return any(b'"chunk_index":%d' % index in f.get(b"d", b"") for _, f in await r.xrange(inbox))


async def test_a_room_the_sweep_brings_back_is_read_though_its_notice_came_meanwhile(
    private_redis: tuple[str, aioredis.Redis],
) -> None:
    url, r = private_redis
    worker, conn, log, key, inbox = await worker_routing_to_bob(
        url, r, named_rooms_max=0, idle_sweep=0.01
    )
    try:
        worker.by_notice = True  # as with more than named_rooms_max active rooms
        await _append_with_notice(r, key, encode_log_entry(log.chunk("s-alice", "st-1", 0)))
        async with asyncio.timeout(10):
            while key not in worker.idle or not await _routed(r, inbox, 0):
                await worker._step()  # read, routed and set aside after the read
        worker._next = None  # the next step reads alone (not with a flush's writes)
        await _append_with_notice(r, key, encode_log_entry(log.chunk("s-alice", "st-1", 1)))
        await worker._step()  # the notice: the room is named in the next read
        assert key in worker.last
        # the race: the sweep is due; the step reads the entry, sets the room aside and
        # flushes with its next read, which does not name it; while that read is blocked
        # in Redis, the room gets another entry and its notice
        worker._idle_checked = worker._swept = 0.0
        stepping = asyncio.create_task(worker._step())
        # (the blocked read is Redis's state: no event to wait on)
        await wait_for_state(lambda: _blocked_reads(r), 10, "the step's read to block")
        await _append_with_notice(r, key, encode_log_entry(log.chunk("s-alice", "st-1", 2)))
        await stepping
        assert await _routed(r, inbox, 1)
        # it happened as in W7: the sweep found the entry and brought the room back, and
        # the reply waiting to be handled holds the notice
        assert key in worker.last and key not in worker.idle
        assert worker._next and worker._next[0][0].decode() == partition_ctl_key(0)
        worker._swept = float("inf")  # no more sweeps: only the reads may find the entry
        for _ in range(3):  # each step blocks at most a second
            await worker._step()
            if await _routed(r, inbox, 2):
                break
        assert await _routed(r, inbox, 2), "the entry the sweep found was never read"
    finally:
        await conn.aclose()
