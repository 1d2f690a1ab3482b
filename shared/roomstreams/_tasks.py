"""Stopping background tasks reliably.

On Python 3.11, ``asyncio.wait_for`` can swallow a cancellation that arrives while the
operation it waits on completes (CPython gh-86296, fixed in 3.12). redis-py wraps socket
writes in it, so one ``cancel()`` of a loop that talks to Redis may be lost: the loop goes
on and whoever awaits it waits forever. Loops therefore also check a stop flag, and
:func:`cancel_and_wait` cancels again until the tasks have ended.
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterable
from typing import Any

__all__ = ["cancel_and_wait"]


async def cancel_and_wait(
    tasks: Iterable[asyncio.Task[Any]], *, timeout: float = 5.0
) -> set[asyncio.Task[Any]]:
    """Cancel ``tasks`` and wait until they end, cancelling again every 50 ms while any is
    still running. Returns the tasks that were still running after ``timeout`` seconds."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    pending = {t for t in tasks if not t.done()}
    while pending:
        for t in pending:
            t.cancel()
        remaining = deadline - loop.time()
        if remaining <= 0:
            break
        _, pending = await asyncio.wait(pending, timeout=min(0.05, remaining))
    for t in tasks:
        if t.done() and not t.cancelled():
            t.exception()  # retrieved: an error at shutdown is not worth a warning at exit
    return pending
