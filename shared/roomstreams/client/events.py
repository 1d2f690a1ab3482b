"""The client's event emitter, with LiveKit's calling rule: a callback is called with only as
many positional arguments as it accepts (all of them if it takes ``*args``), so
``room.on("reconnecting", lambda: ...)`` and ``room.on("disconnected", lambda reason: ...)``
both work. A callback may also be a coroutine function: its coroutine runs as a task the room
keeps (LiveKit refuses those; accepting them is a superset).

A callback that raises is logged, never propagated into the room.
"""

from __future__ import annotations

import inspect
import logging
from collections.abc import Awaitable, Callable
from typing import Any, TypeVar

__all__ = ["EventEmitter"]

logger = logging.getLogger("roomstreams.events")

F = TypeVar("F", bound=Callable[..., Any])


def _arity(callback: Callable[..., Any]) -> int | None:
    """How many positional arguments ``callback`` takes (None: any number)."""
    try:
        params = inspect.signature(callback).parameters.values()
    except (TypeError, ValueError):  # a builtin without a signature: pass everything
        return None
    if any(p.kind is p.VAR_POSITIONAL for p in params):
        return None
    return sum(1 for p in params if p.kind in (p.POSITIONAL_ONLY, p.POSITIONAL_OR_KEYWORD))


class EventEmitter:
    """``on`` / ``once`` / ``off`` / ``emit``; ``on`` and ``once`` also work as decorators."""

    def __init__(self) -> None:
        #: event -> [(callback as registered, callback to call, its arity)]
        self._listeners: dict[str, list[tuple[Callable[..., Any], Callable[..., Any], int | None]]]
        self._listeners = {}

    def on(self, event: str, callback: F | None = None) -> Any:
        """Call ``callback`` on every ``event``; without a callback, a decorator."""
        if callback is None:

            def deco(fn: F) -> F:
                self._add(event, fn, fn)
                return fn

            return deco
        self._add(event, callback, callback)
        return callback

    def once(self, event: str, callback: F | None = None) -> Any:
        """Call ``callback`` on the next ``event`` only; without a callback, a decorator."""
        if callback is None:

            def deco(fn: F) -> F:
                self.once(event, fn)
                return fn

            return deco
        cb = callback
        arity = _arity(cb)

        def fire(*args: Any) -> Any:
            self.off(event, cb)
            return cb(*(args if arity is None else args[:arity]))

        self._listeners.setdefault(event, []).append((cb, fire, None))
        return callback

    def off(self, event: str, callback: Callable[..., Any]) -> None:
        """Stop calling ``callback`` for ``event`` (no error if it was not registered)."""
        entries = self._listeners.get(event)
        if not entries:
            return
        for i, (registered, _call, _n) in enumerate(entries):
            if registered is callback:
                del entries[i]
                return

    def _add(self, event: str, registered: Callable[..., Any], call: Callable[..., Any]) -> None:
        self._listeners.setdefault(event, []).append((registered, call, _arity(call)))

    def emit(self, event: str, *args: Any) -> None:
        entries = self._listeners.get(event)
        if not entries:
            return
        for _registered, call, arity in list(entries):
            try:
                result = call(*(args if arity is None else args[:arity]))
                if inspect.isawaitable(result):
                    self._run_listener_task(result)
            except Exception:
                logger.exception("listener for %r raised", event)

    def _run_listener_task(self, aw: Awaitable[Any]) -> None:
        """Where a coroutine callback's coroutine runs (the room gives it to its connection)."""
        raise NotImplementedError
