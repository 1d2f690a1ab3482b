"""What the example backends (examples/agent.py, examples/logger.py) share: finding the rooms
people are in and visiting them while they are there.

A :class:`RoomVisitor` consumes the router's room lifecycle events (``roomstreams.events``) in
its FastStream consumer group, so processes sharing the group share the rooms, and one that
restarts misses nothing it had not acknowledged.

When it joins: on ``room_started``, and on ``participant_joined`` of someone else in a room
it is not in (a person coming back to a room it left, which does not start again while it
lingers for ``ROOMSTREAMS_ROOM_EMPTY_TTL``); and, at start, in every room that already has
participants (server API ``list_rooms``). It subscribes first, then lists: a join that comes
after the list is an event it gets, one before it is in the list, so none is missed (a room in
both is visited once). Only if a person is there (server API
``list_participants``): backend participants carry the token attribute
:data:`AGENT_ATTRIBUTE` and don't count. So a visitor never reacts to its own join nor to
another backend's, and two backends cannot keep a room alive between them.

When it leaves: when only backend participants are left, when the room finishes, or when it
stops.

A subclass says what it does in a room (:meth:`RoomVisitor._room`: the
:class:`roomstreams.Room` it joins, with its handlers registered), and who it is there
(``kind``, ``display_name``, ``badge``, :meth:`RoomVisitor._grants`).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import signal
import socket
import sys
from collections.abc import Callable
from datetime import timedelta
from typing import Any, ClassVar

import redis.asyncio as aioredis
from faststream.redis import RedisBroker
from redis.exceptions import RedisError

import roomstreams
from roomstreams._devstate import read_state
from roomstreams.api import ApiError, RoomService
from roomstreams.cli import DEV_API_KEY, DEV_API_SECRET
from roomstreams.events import RoomEvent, room_events

__all__ = [
    "AGENT_ATTRIBUTE",
    "RoomVisitor",
    "env_settings",
    "is_person",
    "run_until_signalled",
]

#: Token attribute of backend participants (agent, logger): participants without it are
#: people, the only ones worth staying in a room for.
AGENT_ATTRIBUTE = "roomstreams.agent"


def is_person(attributes: dict[str, str]) -> bool:
    return AGENT_ATTRIBUTE not in attributes


def env_settings() -> dict[str, Any]:
    """The connection settings from the environment (``ROOMSTREAMS_URL``,
    ``ROOMSTREAMS_REDIS_URL``, ``ROOMSTREAMS_API_KEY`` / ``ROOMSTREAMS_API_SECRET``), as
    keyword arguments of a :class:`RoomVisitor`. What the environment leaves out comes from
    the ``roomstreams up`` running on this machine, if one is (``roomstreams._devstate``),
    else from its defaults."""
    env = os.environ.get
    up = read_state() or {}
    return {
        "url": env("ROOMSTREAMS_URL", up.get("url", "ws://127.0.0.1:7880")),
        "redis_url": env("ROOMSTREAMS_REDIS_URL", up.get("redis_url", "redis://127.0.0.1:6379/0")),
        "api_key": env("ROOMSTREAMS_API_KEY", up.get("api_key", DEV_API_KEY)),
        "api_secret": env("ROOMSTREAMS_API_SECRET", up.get("api_secret", DEV_API_SECRET)),
    }


async def _check_redis(url: str) -> None:
    """One line and exit code 2, not a traceback, when Redis is not where we look."""
    client = aioredis.Redis.from_url(url, socket_connect_timeout=3, socket_timeout=3)
    try:
        await client.ping()
    except (RedisError, OSError) as exc:
        print(
            f"error: cannot reach Redis at {url} ({exc}): start `roomstreams up` on this machine"
            " (the examples find it), or set ROOMSTREAMS_REDIS_URL to the URL it prints",
            file=sys.stderr,
        )
        raise SystemExit(2) from None
    finally:
        await client.aclose()


class RoomVisitor:
    """Joins rooms as participant ``identity`` while people are in them.

    ``await visitor.run(stop)`` runs until ``stop`` is set, then leaves every room and returns.
    ``ready`` is set once its consumer group is subscribed (events published from then on
    reach it); ``on_joined(room)`` / ``on_left(room)``, if set, are called when it is in a
    room (its handlers in effect) and when it has left it.
    """

    #: names it in task names and log messages ("agent", "logger")
    kind: ClassVar[str]
    #: its participant name, and the value of its :data:`AGENT_ATTRIBUTE`
    display_name: ClassVar[str]
    badge: ClassVar[str]
    log: ClassVar[logging.Logger]

    def __init__(
        self,
        *,
        url: str,
        redis_url: str,
        api_key: str,
        api_secret: str,
        identity: str,
        group: str,
        consumer: str | None = None,
    ) -> None:
        self.url = url
        self.redis_url = redis_url
        self.api_key = api_key
        self.api_secret = api_secret
        self.identity = identity
        self.group = group
        self.consumer = consumer or f"{socket.gethostname()}-{os.getpid()}"
        self.ready = asyncio.Event()
        self.on_joined: Callable[[str], object] | None = None
        self.on_left: Callable[[str], object] | None = None
        #: rooms it is in or on its way to, each with the event that makes it leave
        self._visits: dict[str, asyncio.Event] = {}

    # -- what a subclass does -------------------------------------------------------------

    def _room(self, room_name: str) -> contextlib.AbstractAsyncContextManager[roomstreams.Room]:
        """A room to join, its handlers registered; the block is the visit (it ends once the
        room was left), and the visit is reported left after it."""
        raise NotImplementedError

    def _grants(self, room_name: str) -> roomstreams.VideoGrants:
        return roomstreams.VideoGrants(room=room_name, room_join=True)

    def _announce(self) -> None:
        """Logs, once subscribed to room events, what it is about to do."""

    # -- lifecycle ------------------------------------------------------------------------

    async def run(self, stop: asyncio.Event) -> None:
        # One task group owns the per-room tasks: leaving it means every room was left.
        async with asyncio.TaskGroup() as rooms:
            broker = RedisBroker(self.redis_url, log_level=logging.DEBUG)

            async def on_event(event: RoomEvent) -> None:
                self._on_event(event, rooms)

            # acknowledged when on_event returns: it only starts the room's task
            sub = room_events(group=self.group, consumer=self.consumer)
            broker.subscriber(stream=sub)(on_event)

            async with broker:
                await broker.start()  # creates the consumer group if it is new
                self._announce()
                await self._visit_existing(rooms)
                self.ready.set()
                await stop.wait()
            # the broker is stopped: no new visits; end the current ones
            for leave in self._visits.values():
                leave.set()

    def _on_event(self, event: RoomEvent, rooms: asyncio.TaskGroup) -> None:
        if event.event == "room_finished":
            if (leave := self._visits.get(event.room)) is not None:
                leave.set()
            return
        if event.event not in ("room_started", "participant_joined"):
            return
        if event.identity == self.identity:
            return  # our own join is never a reason to join
        self._start_visit(event.room, rooms)

    async def _visit_existing(self, rooms: asyncio.TaskGroup) -> None:
        """Rooms that had participants before it subscribed (it started late, or again)."""
        try:
            async with RoomService(self.url, self.api_key, self.api_secret) as api:
                existing = [r.name for r in await api.list_rooms() if r.num_participants]
        except roomstreams.RoomStreamsError as exc:
            self.log.warning("could not list the rooms that exist already: %s", exc)
            return
        for name in existing:
            self._start_visit(name, rooms)

    def _start_visit(self, room_name: str, rooms: asyncio.TaskGroup) -> None:
        if room_name in self._visits:
            return  # already there, or on the way
        leave = asyncio.Event()
        self._visits[room_name] = leave
        rooms.create_task(self._visit(room_name, leave), name=f"{self.kind}:{room_name}")

    async def _visit(self, room_name: str, leave: asyncio.Event) -> None:
        """One room, from deciding to join to having left. Never raises: a room that fails
        must not take the others down with the task group."""
        try:
            if await self._people_in(room_name):
                await self._serve(room_name, leave)
        except Exception:
            self.log.exception("room %s: the %s failed there", room_name, self.kind)
        finally:
            if self._visits.get(room_name) is leave:
                del self._visits[room_name]

    async def _people_in(self, room_name: str) -> bool:
        try:
            async with RoomService(self.url, self.api_key, self.api_secret) as api:
                participants = await api.list_participants(room_name)
        except ApiError as exc:
            if exc.code == "not_found":
                return False  # gone already
            raise
        return any(p.identity != self.identity and is_person(p.attributes) for p in participants)

    def _token(self, room_name: str) -> str:
        return (
            roomstreams.AccessToken(self.api_key, self.api_secret)
            .with_identity(self.identity)
            .with_name(self.display_name)
            .with_attributes({AGENT_ATTRIBUTE: self.badge})
            .with_grants(self._grants(room_name))
            .with_ttl(timedelta(hours=6))
            .to_jwt()
        )

    async def _serve(self, room_name: str, leave: asyncio.Event) -> None:
        joined = False
        try:
            async with self._room(room_name) as room:

                def leave_if_alone(*_: object) -> None:
                    if not any(is_person(p.attributes) for p in room.remote_participants.values()):
                        leave.set()

                room.on("participant_disconnected", leave_if_alone)
                room.on("reconnected", leave_if_alone)
                # gave up reconnecting, or removed
                room.on("disconnected", lambda reason: leave.set())
                try:
                    await room.connect(self.url, self._token(room_name))
                except roomstreams.ConnectError as exc:
                    self.log.warning("could not join room %s: %s", room_name, exc)
                    return
                joined = True
                try:
                    self.log.info("joined room %s", room_name)
                    leave_if_alone()  # the person may have left already
                    if self.on_joined is not None:
                        self.on_joined(room_name)
                    await leave.wait()
                finally:
                    await room.disconnect()
        finally:
            if joined:
                self.log.info("left room %s", room_name)
                if self.on_left is not None:
                    self.on_left(room_name)


async def run_until_signalled(make: Callable[[], RoomVisitor]) -> None:
    """Runs the visitor ``make()`` returns until SIGINT or SIGTERM."""
    visitor = make()
    await _check_redis(visitor.redis_url)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    await visitor.run(stop)
