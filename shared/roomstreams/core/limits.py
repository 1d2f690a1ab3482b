"""Per-connection flood limits, sans-I/O: what a gateway charges for each frame a client sends,
and how long it must stop reading that socket to keep the client within its rates.

Two token buckets, frames per second and bytes per second, each with a burst of one second's
worth. A frame that finds a bucket empty is still taken (it was already read), but the
reader then waits until the deficit is paid back: the socket is not read meanwhile, TCP
pushes back, and the client's sends slow down to the allowed rate.

Frames cost the services far more than bytes do, so only the frame rate can end a
connection: time spent throttled for frames adds up while the client stays over that rate
(forgiven once the frame bucket is full again), and past ``close_after`` seconds the
connection is closed. A burst, or a big upload that runs at the byte rate, is slowed, never
cut; a client that floods frames for seconds on end is told (``rate_limited``), throttled,
then closed.
"""

from __future__ import annotations

from dataclasses import dataclass

__all__ = ["FloodVerdict", "RateLimits", "RateMeter"]


@dataclass(frozen=True, slots=True)
class RateLimits:
    frames_per_second: float
    bytes_per_second: float
    #: seconds a connection may spend throttled in a row before it is closed
    close_after: float


@dataclass(frozen=True, slots=True)
class FloodVerdict:
    #: seconds to stop reading the socket (0: go on at once)
    wait: float
    #: the first throttle of a spell: tell the client
    warn: bool = False
    #: throttled for longer than ``close_after``: close the connection
    close: bool = False


_GO = FloodVerdict(0.0)


class RateMeter:
    """The buckets of one connection. ``charge(nbytes, now)`` for each frame read."""

    __slots__ = ("_bytes", "_frames", "_last", "_throttled", "_warned", "limits")

    def __init__(self, limits: RateLimits, now: float) -> None:
        self.limits = limits
        self._frames = limits.frames_per_second
        self._bytes = limits.bytes_per_second
        self._last = now
        #: seconds spent throttled in the current spell
        self._throttled = 0.0
        self._warned = False

    def charge(self, nbytes: int, now: float) -> FloodVerdict:
        lim = self.limits
        elapsed = now - self._last
        self._last = now
        frames = min(lim.frames_per_second, self._frames + elapsed * lim.frames_per_second)
        size = min(lim.bytes_per_second, self._bytes + elapsed * lim.bytes_per_second)
        if frames >= lim.frames_per_second:
            # the frame bucket refilled: the client kept within its rate for a while
            self._throttled = 0.0
            self._warned = False
        frames -= 1
        size -= nbytes
        self._frames, self._bytes = frames, size
        if frames >= 0 and size >= 0:
            return _GO
        frame_wait = max(0.0, -frames / lim.frames_per_second)
        wait = max(frame_wait, -size / lim.bytes_per_second)
        self._throttled += frame_wait
        warn = frame_wait > 0 and not self._warned
        self._warned = self._warned or warn
        return FloodVerdict(wait, warn=warn, close=self._throttled > lim.close_after)
