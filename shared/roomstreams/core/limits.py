"""Per-connection flood limits, sans-I/O: what a gateway charges for each frame a client sends,
and how long it must stop reading that socket to keep the client within its rates.

Two token buckets, frames per second and bytes per second, each with a burst of one second's
worth. A frame that finds a bucket empty is still taken (it was already read), but the
reader then waits until the deficit is paid back: the socket is not read meanwhile, TCP
pushes back, and the client's sends slow down to the allowed rate.

A frame costs the services about the same whatever its size, but big frames are how
uploads go (15000-byte chunks): a frame of :data:`BULK_FRAME_BYTES` or more counts as a
quarter of a frame, so a connection allowed 2000 frames/s can still stream 8000 full chunks
a second (about 120 MB/s), while a flood of tiny frames is held to 2000.

Only small frames can end a connection: time spent throttled for them adds up while the
client stays over the frame rate (forgiven once the frame bucket is full again), and past
``close_after`` seconds the connection is closed. A burst, or a big upload, is slowed, never
cut; a client that floods small frames for seconds on end is told (``rate_limited``),
throttled, then closed.
"""

from __future__ import annotations

from dataclasses import dataclass

__all__ = ["BULK_FRAME_BYTES", "FloodVerdict", "RateLimits", "RateMeter"]

#: Frames at least this large count as a quarter of a frame against the frame rate.
BULK_FRAME_BYTES = 4096
_BULK_COST = 0.25


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
        small = nbytes < BULK_FRAME_BYTES
        frames -= 1.0 if small else _BULK_COST
        size -= nbytes
        self._frames, self._bytes = frames, size
        if frames >= 0 and size >= 0:
            return _GO
        frame_wait = max(0.0, -frames / lim.frames_per_second) if small else 0.0
        wait = max(-frames / lim.frames_per_second, -size / lim.bytes_per_second)
        self._throttled += frame_wait
        warn = frame_wait > 0 and not self._warned
        self._warned = self._warned or warn
        return FloodVerdict(wait, warn=warn, close=self._throttled > lim.close_after)
