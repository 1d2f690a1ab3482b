"""An echo agent: a backend service that joins every room while people are in it and answers
each message on the ``chat`` topic with a reply streamed word by word, the way an LLM agent
streams tokens. There is no model: the reply to "hello brave new world" is
"you said: world new brave hello", one word per ``write``.

Run it next to a system (``roomstreams up`` prints the Redis URL it started)::

    roomstreams up
    ROOMSTREAMS_REDIS_URL=redis://127.0.0.1:<port>/0 python examples/agent.py
    roomstreams listen --room demo &              # a person in room "demo"
    roomstreams send --room demo "hello brave new world"

How it finds rooms: the router publishes room lifecycle events (``roomstreams.events``); the
agent consumes them in the FastStream consumer group ``echo-agent``, so agent processes
sharing the group share the rooms, and one that restarts misses nothing it had not
acknowledged.

When it joins: on ``room_started``, and on ``participant_joined`` of someone else in a room
it is not in (a person coming back to a room the agent left, which does not start again
while it lingers for ``ROOMSTREAMS_ROOM_EMPTY_TTL``). Only if a person is there (server API
``list_participants``): backend participants carry the token attribute ``roomstreams.agent``
and don't count. So the agent never reacts to its own join nor to another backend's (the
logger's), and two backends cannot keep a room alive between them.

When it leaves: when only backend participants are left, when the room finishes, or when the
agent stops.

Environment: ``ROOMSTREAMS_URL`` (a gateway, ``ws://127.0.0.1:7880``),
``ROOMSTREAMS_REDIS_URL`` (``redis://127.0.0.1:6379/0``), ``ROOMSTREAMS_API_KEY`` /
``ROOMSTREAMS_API_SECRET`` (the dev defaults of ``roomstreams up``),
``ROOMSTREAMS_AGENT_IDENTITY`` (``agent``), ``ROOMSTREAMS_AGENT_WORD_DELAY`` (seconds between
two words, ``0.05``).
"""

from __future__ import annotations

import asyncio
import logging
import os
import signal
import socket
from collections.abc import Callable, Iterator
from datetime import timedelta

from faststream.redis import RedisBroker

import roomstreams
from roomstreams.api import ApiError, RoomService
from roomstreams.cli import DEV_API_KEY, DEV_API_SECRET
from roomstreams.events import RoomEvent, room_events

__all__ = ["AGENT_ATTRIBUTE", "Agent", "main", "reply_words"]

logger = logging.getLogger("examples.agent")

#: Token attribute of backend participants (agent, logger): participants without it are
#: people, the only ones worth staying in a room for.
AGENT_ATTRIBUTE = "roomstreams.agent"


def is_person(attributes: dict[str, str]) -> bool:
    return AGENT_ATTRIBUTE not in attributes


def reply_words(text: str) -> Iterator[str]:
    """The reply to ``text``, a word at a time (each after the first with its leading space):
    "you said:" then the words of ``text`` in reverse order."""
    words = ["you", "said:", *reversed(text.split())]
    for i, word in enumerate(words):
        yield word if i == 0 else " " + word


class Agent:
    """Joins rooms as participant ``identity`` and answers each text stream on ``topic``.

    ``await agent.run(stop)`` runs until ``stop`` is set, then leaves every room and returns.
    ``ready`` is set once its consumer group is subscribed (events published from then on
    reach it); ``on_joined(room)`` / ``on_left(room)``, if set, are called when it is in a
    room (its handler in effect) and when it has left it.
    """

    def __init__(
        self,
        *,
        url: str,
        redis_url: str,
        api_key: str,
        api_secret: str,
        identity: str = "agent",
        topic: str = "chat",
        group: str = "echo-agent",
        consumer: str | None = None,
        word_delay: float = 0.0,
    ) -> None:
        self.url = url
        self.redis_url = redis_url
        self.api_key = api_key
        self.api_secret = api_secret
        self.identity = identity
        self.topic = topic
        self.group = group
        self.consumer = consumer or f"{socket.gethostname()}-{os.getpid()}"
        self.word_delay = word_delay
        self.ready = asyncio.Event()
        self.on_joined: Callable[[str], object] | None = None
        self.on_left: Callable[[str], object] | None = None
        #: rooms it is in or on its way to, each with the event that makes it leave
        self._visits: dict[str, asyncio.Event] = {}

    @classmethod
    def from_env(cls) -> Agent:
        env = os.environ.get
        return cls(
            url=env("ROOMSTREAMS_URL", "ws://127.0.0.1:7880"),
            redis_url=env("ROOMSTREAMS_REDIS_URL", "redis://127.0.0.1:6379/0"),
            api_key=env("ROOMSTREAMS_API_KEY", DEV_API_KEY),
            api_secret=env("ROOMSTREAMS_API_SECRET", DEV_API_SECRET),
            identity=env("ROOMSTREAMS_AGENT_IDENTITY", "agent"),
            word_delay=float(env("ROOMSTREAMS_AGENT_WORD_DELAY", "0.05")),
        )

    # -- lifecycle ------------------------------------------------------------------------

    async def run(self, stop: asyncio.Event) -> None:
        # One task group owns the per-room tasks: leaving run() means every room was left.
        async with asyncio.TaskGroup() as rooms:
            broker = RedisBroker(self.redis_url, log_level=logging.DEBUG)

            async def on_event(event: RoomEvent) -> None:
                self._on_event(event, rooms)

            # acknowledged when on_event returns: it only starts the room's task
            sub = room_events(group=self.group, consumer=self.consumer)
            broker.subscriber(stream=sub)(on_event)

            async with broker:
                await broker.start()  # creates the consumer group if it is new
                logger.info("agent %r waiting for rooms (group %r)", self.identity, self.group)
                self.ready.set()
                await stop.wait()
            # the broker is stopped: no new visits; end the current ones
            for leave in self._visits.values():
                leave.set()
        logger.info("agent %r stopped", self.identity)

    def _on_event(self, event: RoomEvent, rooms: asyncio.TaskGroup) -> None:
        if event.event == "room_finished":
            if (leave := self._visits.get(event.room)) is not None:
                leave.set()
            return
        if event.event not in ("room_started", "participant_joined"):
            return
        if event.identity == self.identity:
            return  # our own join is never a reason to join
        if event.room in self._visits:
            return  # already there, or on the way
        leave = asyncio.Event()
        self._visits[event.room] = leave
        rooms.create_task(self._visit(event.room, leave), name=f"agent:{event.room}")

    async def _visit(self, room_name: str, leave: asyncio.Event) -> None:
        """One room, from deciding to join to having left. Never raises: a room that fails
        must not take the others down with the task group."""
        try:
            if await self._people_in(room_name):
                await self._serve(room_name, leave)
        except Exception:
            logger.exception("room %s: the agent failed there", room_name)
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
            .with_name("Echo agent")
            .with_attributes({AGENT_ATTRIBUTE: "echo"})
            .with_grants(roomstreams.VideoGrants(room=room_name, room_join=True))
            .with_ttl(timedelta(hours=6))
            .to_jwt()
        )

    async def _serve(self, room_name: str, leave: asyncio.Event) -> None:
        room = roomstreams.Room()
        room.register_text_stream_handler(
            self.topic, lambda reader, sender: self._answer(room, reader, sender)
        )

        def leave_if_alone(*_: object) -> None:
            if not any(is_person(p.attributes) for p in room.remote_participants.values()):
                leave.set()

        room.on("participant_disconnected", leave_if_alone)
        room.on("reconnected", leave_if_alone)
        room.on("disconnected", lambda reason: leave.set())  # gave up reconnecting, removed
        try:
            await room.connect(self.url, self._token(room_name))
        except roomstreams.ConnectError as exc:
            logger.warning("could not join room %s: %s", room_name, exc)
            return
        try:
            logger.info("joined room %s", room_name)
            leave_if_alone()  # the person may have left already
            if self.on_joined is not None:
                self.on_joined(room_name)
            await leave.wait()
        finally:
            await room.disconnect()
            logger.info("left room %s", room_name)
            if self.on_left is not None:
                self.on_left(room_name)

    # -- the answer -----------------------------------------------------------------------

    async def _answer(
        self, room: roomstreams.Room, reader: roomstreams.TextStreamReader, sender: str
    ) -> None:
        info = reader.info
        try:
            text = await reader.read_all()
        except roomstreams.StreamAborted as exc:
            logger.info("no answer to %s from %s: %s", info.stream_id, sender, exc)
            return
        if info.generated:
            return  # another agent's output: answering it could make two agents loop
        # A stream ends at its receivers only once closed: ``async with`` closes it, and
        # abnormally (receivers see StreamAborted) if writing fails half-way.
        writer = await room.local_participant.stream_text(
            topic=self.topic, reply_to_id=info.stream_id, generated=True
        )
        async with writer:
            for word in reply_words(text):
                await writer.write(word)
                if self.word_delay:
                    await asyncio.sleep(self.word_delay)


async def _main() -> None:
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    await Agent.from_env().run(stop)


def main() -> None:
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(message)s")
    asyncio.run(_main())


if __name__ == "__main__":
    main()
