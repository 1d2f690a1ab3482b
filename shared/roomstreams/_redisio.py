"""Typed wrappers over the redis-py stream commands the services use (redis-py's own
annotations are too loose for ``mypy --strict``)."""

from __future__ import annotations

import socket
from collections.abc import Mapping
from typing import Any, cast
from urllib.parse import urlsplit

import hiredis
import redis.asyncio as aioredis

__all__ = ["StreamEntries", "client", "last_id", "xread", "xrevrange"]

Fields = dict[bytes, bytes]
StreamEntries = list[tuple[bytes, list[tuple[bytes, Fields]]]]


async def xread(
    r: aioredis.Redis,
    streams: Mapping[str, bytes | str],
    *,
    block: int | None,
    count: int | None,
) -> StreamEntries:
    """``XREAD [COUNT n] [BLOCK ms] STREAMS ...``: [(key, [(id, fields), ...]), ...]."""
    resp: Any = await r.xread(dict(streams), block=block, count=count)  # type: ignore[arg-type]
    return cast(StreamEntries, resp or [])


async def xrevrange(
    r: aioredis.Redis, key: str, end: str = "+", start: str = "-", *, count: int | None = None
) -> list[tuple[bytes, Fields]]:
    """``XREVRANGE key end start [COUNT n]``: newest first."""
    resp: Any = await r.xrevrange(key, end, start, count=count)
    return cast(list[tuple[bytes, Fields]], resp or [])


async def last_id(r: aioredis.Redis, key: str) -> bytes | None:
    """Id of the newest entry of a stream, or None if it is empty or missing."""
    newest = await xrevrange(r, key, count=1)
    return newest[0][0] if newest else None


class _HiredisPackingConnection(aioredis.Connection):
    """redis-py's asyncio connection, packing commands with hiredis (C) instead of Python:
    the services' hot path is a pipeline of XADDs per wake-up, and packing was the largest
    single cost in it."""

    def pack_command(self, *args: Any) -> list[bytes]:
        name = args[0]
        if isinstance(name, str) and " " not in name:
            try:
                return [hiredis.pack_command(args)]
            except TypeError:  # a type hiredis does not pack: let redis-py encode it
                pass
        packed: list[bytes] = super().pack_command(*args)
        return packed


def _keepalive_options() -> dict[int, int]:
    """TCP keepalive probing after 5 s idle, every 2 s, given up after 3 unanswered: a path to
    Redis that dies silently fails a blocked read within about 11 s (where the platform
    has the options; elsewhere the system's keepalive defaults apply)."""
    names = {"TCP_KEEPIDLE": 5, "TCP_KEEPINTVL": 2, "TCP_KEEPCNT": 3}
    return {getattr(socket, n): v for n, v in names.items() if hasattr(socket, n)}


def client(url: str, name: str | None = None) -> aioredis.Redis:
    """A Redis client for the services' hot paths (hiredis packing on plain ``redis://``),
    its connections named ``name`` in ``CLIENT LIST``.

    No per-reply socket timeout: redis-py wraps every reply read of a pipeline in its own
    ``asyncio.timeout``, a measurable cost per entry (blocking reads pass their own). TCP
    keepalive instead notices a dead path to Redis, at no cost per command."""
    options: dict[str, Any] = {
        "client_name": name,
        "socket_timeout": None,
        "socket_keepalive": True,
        "socket_keepalive_options": _keepalive_options(),
    }
    if urlsplit(url).scheme == "redis":
        pool = aioredis.ConnectionPool.from_url(
            url, connection_class=_HiredisPackingConnection, **options
        )
        return aioredis.Redis.from_pool(pool)  # closing the client closes the pool
    return aioredis.Redis.from_url(url, **options)
