"""Redis key names. Every key of a room carries its partition's hash tag, so that one
router can read all rooms of a partition with one multi-key command, also on Redis Cluster."""

from __future__ import annotations

import zlib

__all__ = [
    "GATEWAY_EVENTS",
    "ROOMS",
    "ROOM_EVENTS",
    "ROUTERS",
    "ctl_key_of_log_key",
    "inbox_key",
    "lease_key",
    "members_key",
    "partition_ctl_key",
    "partition_of",
    "positions_key",
    "room_from_log_key",
    "room_log_key",
]

#: Gateways announce themselves (hello, heartbeat, bye) on this stream.
GATEWAY_EVENTS = "rs:gateways"
#: The router publishes room lifecycle events (room started/finished, participant joined/left).
ROOM_EVENTS = "rs:room-events"
#: Hash of live rooms: room name -> JSON {"created": ms, "partition": n}, kept by the router.
ROOMS = "rs:rooms"
#: Sorted set of live routers: router id -> when its registration lapses (ms, server clock).
ROUTERS = "rs:routers"


def partition_of(room: str, partitions: int) -> int:
    """The partition a room belongs to: stable across processes and restarts."""
    return zlib.crc32(room.encode("utf-8")) % partitions


def room_log_key(room: str, partitions: int) -> str:
    return f"rs:{{p{partition_of(room, partitions)}}}:room:{room}"


def members_key(room: str, partitions: int) -> str:
    """Hash of a room's members: session -> ParticipantInfo JSON, kept by the router."""
    return f"rs:{{p{partition_of(room, partitions)}}}:members:{room}"


def room_from_log_key(key: str) -> str:
    return key.split(":room:", 1)[1]


def partition_ctl_key(partition: int) -> str:
    """Control stream of a partition: a gateway appends a room's name when it joins someone to
    it, which wakes the router's blocked read so it starts reading that room's log."""
    return f"rs:{{p{partition}}}:ctl"


def ctl_key_of_log_key(log_key: str) -> str:
    """The control stream of the partition a room log key belongs to (same hash tag)."""
    tag, sep, _ = log_key.partition("}:")
    if not sep:
        raise ValueError(f"not a partitioned key: {log_key!r}")
    return f"{tag}}}:ctl"


def positions_key(partition: int) -> str:
    """Hash of a partition's read positions: room log key -> the id of the last entry the
    router routed. A router that takes the partition over starts from there, so what was
    appended while no router ran is routed, not skipped."""
    return f"rs:{{p{partition}}}:pos"


def lease_key(partition: int) -> str:
    return f"rs:{{p{partition}}}:lease"


def inbox_key(gateway_id: str) -> str:
    return f"rs:{{gw:{gateway_id}}}:inbox"
