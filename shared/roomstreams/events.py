"""Room lifecycle events, for backend services that act on rooms (LiveKit's webhooks and
agent dispatch): the router publishes them on the Redis stream ``rs:room-events`` through
FastStream; consume them with FastStream and a consumer group, so that a service that falls
behind or restarts misses nothing it has not acknowledged:

    from faststream import FastStream
    from roomstreams.events import RoomEvent, broker, room_events

    broker = broker("redis://127.0.0.1:6379/0")  # or redis+cluster://host:port,...

    @broker.subscriber(stream=room_events(group="agents", consumer="agent-1"))
    async def on_event(event: RoomEvent) -> None:
        if event.event == "room_started":
            ...

    app = FastStream(broker)

:func:`broker` is FastStream's ``RedisBroker`` for a standalone server, its
``RedisClusterBroker`` for a ``redis+cluster://`` URL (the stream is one key: on a cluster
it lives on whichever node owns its slot, and the broker follows it there).
"""

from __future__ import annotations

from typing import Any, Literal

from faststream.redis import RedisBroker, RedisClusterBroker, StreamSub
from faststream.redis.publisher.usecase import StreamPublisher
from pydantic import BaseModel, ConfigDict

from ._redisio import cluster_seeds, is_cluster_url
from .protocol.keys import ROOM_EVENTS

__all__ = [
    "ROOM_EVENTS",
    "ROOM_EVENTS_MAXLEN",
    "RoomEvent",
    "broker",
    "room_events",
    "room_events_claimer",
    "room_events_publisher",
]


def broker(url: str, **options: Any) -> RedisBroker:
    """FastStream's broker for ``url``: a ``RedisBroker`` on ``redis://`` (``rediss://``,
    ``unix://``), a ``RedisClusterBroker`` (a ``RedisBroker`` too) on ``redis+cluster://``
    seeds; ``options`` go to the broker (``logger``, ``log_level``, ...)."""
    if is_cluster_url(url):
        node_url, seeds = cluster_seeds(url)
        return RedisClusterBroker(node_url, startup_nodes=seeds, **options)
    return RedisBroker(url, **options)


class RoomEvent(BaseModel):
    """One entry of the ``rs:room-events`` stream: a room started or finished, or a
    participant joined or left it (the router publishes them as it routes the room log)."""

    model_config = ConfigDict(use_attribute_docstrings=True)

    event: Literal["room_started", "participant_joined", "participant_left", "room_finished"]
    """What happened."""
    room: str
    """The room's name."""
    t: str
    """When, in milliseconds since the epoch, as a string (a Redis stream field)."""
    identity: str = ""
    """The participant, for ``participant_joined`` / ``participant_left``."""
    reason: str = ""
    """Why a participant left (``participant_left``), e.g. ``disconnected``, ``removed``."""


#: what the router writes on each entry (approximate MAXLEN: old events are trimmed)
ROOM_EVENTS_MAXLEN = 100_000


def room_events_publisher(broker: RedisBroker) -> StreamPublisher:
    """The router's typed publisher of :class:`RoomEvent` on ``rs:room-events`` (FastStream
    puts its payload model in the AsyncAPI document: ``roomstreams docs asyncapi``)."""
    return broker.publisher(
        stream=StreamSub(ROOM_EVENTS, maxlen=ROOM_EVENTS_MAXLEN),
        schema=RoomEvent,
        title="rs:room-events:publish",
        description="The router appends one entry per room lifecycle event (XADD, "
        f"MAXLEN ~{ROOM_EVENTS_MAXLEN}); entries stay until trimmed, so consumer groups "
        "that fall behind or restart miss nothing.",
    )


def room_events(*, group: str, consumer: str) -> StreamSub:
    """A FastStream subscription to the room events in consumer group ``group``.

    An entry is acknowledged when the handler returns. A consumer that restarts continues
    after the last entry its group was given, so nothing published meanwhile is missed.
    An entry whose handler raised (or whose consumer died mid-way) stays pending: subscribe
    :func:`room_events_claimer` too, and it is handed over once idle."""
    return StreamSub(ROOM_EVENTS, group=group, consumer=consumer)


def room_events_claimer(*, group: str, consumer: str, idle_ms: int = 30_000) -> StreamSub:
    """Claims (``XAUTOCLAIM``) entries of ``group`` left unacknowledged for ``idle_ms``."""
    return StreamSub(ROOM_EVENTS, group=group, consumer=consumer, min_idle_time=idle_ms)
