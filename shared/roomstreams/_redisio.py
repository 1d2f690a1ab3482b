"""Typed wrappers over the redis-py stream commands the services use (redis-py's own
annotations are too loose for ``mypy --strict``)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, cast

import redis.asyncio as aioredis

__all__ = ["StreamEntries", "xread"]

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
