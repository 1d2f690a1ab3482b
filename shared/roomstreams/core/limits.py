"""Per-connection flood limits, sans-I/O: what a gateway charges for each frame a client sends,
and how long it must stop reading that socket to keep the client within its rates.

Token buckets, each with a burst of one second's worth: small frames per second, bulk frames
per second and bytes per second. A frame that finds its bucket empty is still taken (it was
already read), but the reader then waits until the deficit is paid back: the socket is not
read meanwhile, TCP pushes back, and the client's sends slow down to the allowed rate.

A frame costs the services about the same whatever its size, but big frames are how
uploads go (15000-byte chunks): frames of :data:`BULK_FRAME_BYTES` or more have a bucket of
their own, four times the frame rate (a connection allowed 2000 frames/s can still stream
8000 full chunks a second, about 120 MB/s), held to the byte rate, never closed for, and an
upload never uses up the allowance of the small frames sent beside it (a trailer, a chat
message).

Only small frames start a throttling spell. The first small frame over the rate tells the
client (``rate_limited``) and, for as long as the spell lasts, the connection gets
``penalty`` of its frame rate (a tenth by default): a client that ignores the rate costs the
services a tenth of what one that keeps to it may, instead of the whole rate. The spell ends
once the client has kept within that reduced rate for a second (its bucket is full again).
The frames sent over the rate add up during the spell, and past ``close_after`` seconds'
worth of them (``close_after * frames_per_second``: 10,000 at the gateway's defaults, the
same budget a client had when a throttled one kept the whole rate) the connection is
closed. A burst, or a big upload, is slowed, never cut; a client that floods small frames on
and on is told, throttled hard, then closed.
"""

from __future__ import annotations

from dataclasses import dataclass

__all__ = ["BULK_FRAME_BYTES", "THROTTLE_TICK", "FloodVerdict", "RateLimits", "RateMeter"]

#: Frames at least this large are bulk: a bucket of their own, 4x the frame rate.
BULK_FRAME_BYTES = 4096
_BULK_FACTOR = 4.0
#: a throttled connection is read in batches this many seconds apart
THROTTLE_TICK = 0.05


@dataclass(frozen=True, slots=True)
class RateLimits:
    frames_per_second: float
    bytes_per_second: float
    #: seconds' worth of frames (at ``frames_per_second``) a connection may send over its
    #: rate in one spell before it is closed
    close_after: float
    #: the share of ``frames_per_second`` a connection gets during a throttling spell
    penalty: float = 0.1


@dataclass(frozen=True, slots=True)
class FloodVerdict:
    #: seconds to stop reading the socket (0: go on at once)
    wait: float
    #: the first throttle of a spell: tell the client
    warn: bool = False
    #: over its rate by more than ``close_after`` seconds' worth of frames: close it
    close: bool = False


_GO = FloodVerdict(0.0)


class RateMeter:
    """The buckets of one connection. ``charge(nbytes, now)`` for each frame read."""

    __slots__ = ("_bulk", "_bytes", "_excess", "_last", "_small", "_spell", "limits")

    def __init__(self, limits: RateLimits, now: float) -> None:
        self.limits = limits
        self._small = limits.frames_per_second
        self._bulk = limits.frames_per_second * _BULK_FACTOR
        self._bytes = limits.bytes_per_second
        self._last = now
        #: in a throttling spell: small frames get ``penalty`` of the rate
        self._spell = False
        #: small frames sent during the current spell (over the rate, or the spell ends)
        self._excess = 0

    @property
    def throttling(self) -> bool:
        """Whether the connection is in a throttling spell (held to the reduced rate)."""
        return self._spell

    def charge(self, nbytes: int, now: float) -> FloodVerdict:
        lim = self.limits
        elapsed = now - self._last
        self._last = now
        rate = lim.frames_per_second * (lim.penalty if self._spell else 1.0)
        small = min(rate, self._small + elapsed * rate)
        if self._spell and small >= rate:
            # within the reduced rate for a second: the spell is over
            self._spell, self._excess = False, 0
        bulk_rate = lim.frames_per_second * _BULK_FACTOR
        bulk = min(bulk_rate, self._bulk + elapsed * bulk_rate)
        size = min(lim.bytes_per_second, self._bytes + elapsed * lim.bytes_per_second) - nbytes
        is_small = nbytes < BULK_FRAME_BYTES
        if is_small:
            small -= 1.0
            if self._spell:
                self._excess += 1
        else:
            bulk -= 1.0
        self._small, self._bulk, self._bytes = small, bulk, size
        if small >= 0 and bulk >= 0 and size >= 0:
            return _GO
        warn = False
        small_wait = -small / rate if small < 0 else 0.0
        if small_wait > 0 and is_small:
            if not self._spell:
                # the spell starts: from now on the deficit is paid back at the reduced rate
                self._spell, warn = True, True
                rate = lim.frames_per_second * lim.penalty
            # wait until a tick's worth of frames is allowed again, then read them in one
            # go: the gateway appends them in one write and the router routes them in one
            # wake-up (a frame per wait costs the services a wake-up per frame)
            small_wait = (max(1.0, rate * THROTTLE_TICK) - small) / rate
        wait = max(
            small_wait,
            -bulk / bulk_rate if bulk < 0 else 0.0,
            -size / lim.bytes_per_second if size < 0 else 0.0,
        )
        close = self._excess > lim.close_after * lim.frames_per_second
        return FloodVerdict(wait, warn=warn, close=close)
