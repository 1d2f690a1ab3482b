"""One backoff for every retry loop (client reconnects, Redis retries, confirmation polls).

Exponential with a cap and, by default, *full jitter*: attempt ``n`` waits a uniform random
time in ``[0, min(cap, first * factor**n)]``. Jitter is what keeps the clients of a drained
or restarted gateway from coming back in lockstep (each picks its own point in the window),
and spreads the Redis retries of many gateways after a blip. ``jitter=False`` gives the
plain doubling sequence, for polls where only one caller waits.

    backoff = Backoff(first=0.1, cap=2.0)
    while True:
        try:
            return await attempt()
        except TransientError:
            await backoff.sleep()

Pass ``rng=random.Random(seed)`` for a reproducible sequence (tests).
"""

from __future__ import annotations

import asyncio
import random

__all__ = ["Backoff"]


#: the default source of jitter
_SHARED = random.Random()

class Backoff:
    """Delays for successive attempts: :meth:`next` returns one and advances;
    :meth:`reset` after a success starts the sequence over."""

    __slots__ = ("_ceiling", "_rng", "cap", "factor", "first", "jitter")

    def __init__(
        self,
        first: float,
        cap: float,
        *,
        factor: float = 2.0,
        jitter: bool = True,
        rng: random.Random | None = None,
    ) -> None:
        if first <= 0 or cap < first:
            raise ValueError(f"backoff needs 0 < first <= cap (got first={first}, cap={cap})")
        if factor < 1:
            raise ValueError(f"backoff factor must be >= 1 (got {factor})")
        self.first = first
        self.cap = cap
        self.factor = factor
        self.jitter = jitter
        # one generator for all (a new Random() seeds itself from os.urandom: a system call
        # per Backoff, and the hot paths make one per batch in case it fails)
        self._rng = rng if rng is not None else _SHARED
        self._ceiling = first

    @property
    def ceiling(self) -> float:
        """The upper bound of the next delay (without jitter: the next delay itself)."""
        return self._ceiling

    def next(self) -> float:
        """The delay before the next attempt, in seconds; the window then grows."""
        ceiling = self._ceiling
        self._ceiling = min(ceiling * self.factor, self.cap)
        return self._rng.uniform(0.0, ceiling) if self.jitter else ceiling

    def reset(self) -> None:
        """Start over from ``first`` (call after an attempt succeeded)."""
        self._ceiling = self.first

    async def sleep(self) -> float:
        """Sleep for :meth:`next` seconds; returns the delay slept."""
        delay = self.next()
        await asyncio.sleep(delay)
        return delay
