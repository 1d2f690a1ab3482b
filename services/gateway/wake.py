"""Wake notices for idle rooms (the gateway's half of the router's active-room index).

The router names only *active* rooms in a partition's blocking XREAD: a room whose log had
no entry for ``room_idle_after`` seconds leaves the read, so ten thousand idle rooms cost a
wake-up nothing. A room comes back when its name appears on the partition's control stream.
This gateway puts it there whenever it appends to a room it has not appended to for
``room_idle_after / 4`` seconds (or ever, since it started).

Why no append can be missed: say the gateway skips the notice for an append at time ``n``
because it appended to the same room at ``a > n - idle/4``. The router read that earlier
entry at some ``r >= a`` and may idle the room only at a ``d`` with ``d - r > idle``, so
``d > n + 3 * idle / 4``: for three quarters of ``room_idle_after`` after the new append the
room was still named in every read (which block at most a second), and one of them returned
the entry, which moved ``r`` past ``n``. The router also sweeps its idle rooms now and then
(``idle_sweep``), so even a stall of the router longer than that is only a delay.
"""

from __future__ import annotations

__all__ = ["WakeNotices"]


class WakeNotices:
    """Sans-I/O: which room-log appends need a notice on the control stream too."""

    def __init__(self, room_idle_after: float) -> None:
        self._every = room_idle_after / 4
        self._last: dict[str, float] = {}
        self._pruned = 0.0

    def needed(self, log_key: str, now: float) -> bool:
        """Called (with the same ``now``) for each append of a batch before it is written:
        True if the router may have idled the room, so a notice must go with it."""
        last = self._last.get(log_key)
        self._last[log_key] = now
        if now - self._pruned > self._every * 4:
            self._prune(now)
        return last is None or now - last >= self._every

    def __len__(self) -> int:
        """How many rooms it remembers."""
        return len(self._last)

    def _prune(self, now: float) -> None:
        """Forget rooms not appended to for a while (a missing room means "notify")."""
        self._pruned = now
        stale = [k for k, t in self._last.items() if now - t >= self._every]
        for k in stale:
            del self._last[k]
