"""Per-connection asyncio primitives at a fraction of the standard ones' memory: a gateway
holds thousands of idle connections, and an ``asyncio.Queue`` (three deques) or
``asyncio.Event`` (one deque) costs 0.7 KB per deque, measured with tracemalloc. These hold
at most one waiting future, for the one task that waits on them. And sets that cost
nothing until something is in them (an empty ``set`` is 224 bytes, and most connections'
stay empty)."""

from __future__ import annotations

import asyncio
from collections import deque
from collections.abc import Set
from typing import Any, TypeVar

__all__ = ["NOTHING", "Gate", "SendQueue", "added", "discard"]

_T = TypeVar("_T")

#: the shared empty set a connection's sets start as (:func:`added` replaces it)
NOTHING: frozenset[Any] = frozenset()


def added(items: Set[_T], item: _T) -> set[_T]:
    """``items`` with ``item`` in it: the same set, or a new one in place of :data:`NOTHING`
    (assign the result back)."""
    if isinstance(items, set):
        items.add(item)
        return items
    return {*items, item}


def discard(items: Set[_T], item: _T) -> None:
    """Take ``item`` out of ``items`` if it is there (:data:`NOTHING` holds nothing)."""
    if isinstance(items, set):
        items.discard(item)


class SendQueue:
    """Frames for one socket, at most ``maxsize``; ``put_nowait`` raises
    :class:`asyncio.QueueFull` past it (the caller closes a slow consumer). One task waits in
    :meth:`get` at a time (the connection's writer)."""

    __slots__ = ("_frames", "_waiter", "maxsize")

    def __init__(self, maxsize: int) -> None:
        self.maxsize = maxsize
        self._frames: deque[bytes] = deque()
        self._waiter: asyncio.Future[None] | None = None

    def qsize(self) -> int:
        return len(self._frames)

    def empty(self) -> bool:
        return not self._frames

    def put_nowait(self, frame: bytes) -> None:
        if len(self._frames) >= self.maxsize:
            raise asyncio.QueueFull
        self._frames.append(frame)
        waiter = self._waiter
        if waiter is not None and not waiter.done():
            waiter.set_result(None)

    def get_nowait(self) -> bytes:
        if not self._frames:
            raise asyncio.QueueEmpty
        return self._frames.popleft()

    async def get(self) -> bytes:
        while not self._frames:
            if self._waiter is not None:
                raise RuntimeError("SendQueue.get() awaited by two tasks")
            self._waiter = asyncio.get_running_loop().create_future()
            try:
                await self._waiter
            finally:
                self._waiter = None
        return self._frames.popleft()


class Gate:
    """``asyncio.Event`` for one waiter at a time (a connection's pacing window)."""

    __slots__ = ("_open", "_waiter")

    def __init__(self, *, open: bool = False) -> None:
        self._open = open
        self._waiter: asyncio.Future[None] | None = None

    def is_set(self) -> bool:
        return self._open

    def set(self) -> None:
        self._open = True
        waiter = self._waiter
        if waiter is not None and not waiter.done():
            waiter.set_result(None)

    def clear(self) -> None:
        self._open = False

    async def wait(self) -> None:
        while not self._open:
            if self._waiter is not None:
                raise RuntimeError("Gate.wait() awaited by two tasks")
            self._waiter = asyncio.get_running_loop().create_future()
            try:
                await self._waiter
            finally:
                self._waiter = None
