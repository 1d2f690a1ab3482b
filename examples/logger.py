"""A room logger: a backend service that joins every room while people are in it and writes
every text stream it receives to a JSON Lines file, one line per complete message::

    {"room": "demo", "stream_id": "...", "sender": "alice", "topic": "chat",
     "timestamp": 1767225600000, "attributes": {}, "reply_to_id": null,
     "text": "hello", "aborted": false, "code": null, "reason": null}

A stream that ended abnormally (sender left, closed with a reason, connection lost) is logged
too, with the text received so far, ``"aborted": true`` and its code and reason.

A participant receives only the topics it has a handler for: the logger logs ``chat`` and the
topics given with ``--topics a,b`` (or ``ROOMSTREAMS_LOGGER_TOPICS``).

Run it next to a system (``roomstreams up`` prints the Redis URL it started)::

    ROOMSTREAMS_REDIS_URL=redis://127.0.0.1:<port>/0 python examples/logger.py rooms.jsonl

It finds and leaves rooms like ``examples/agent.py`` (room lifecycle events in the consumer
group ``room-logger``; joins only while a person is there; its token carries the attribute
``roomstreams.agent`` so that other backends don't stay for it). It never publishes.

Environment: ``ROOMSTREAMS_URL`` (``ws://127.0.0.1:7880``), ``ROOMSTREAMS_REDIS_URL``,
``ROOMSTREAMS_API_KEY`` / ``ROOMSTREAMS_API_SECRET`` (dev defaults),
``ROOMSTREAMS_LOGGER_FILE`` (``rooms.jsonl``; the argument wins), ``ROOMSTREAMS_LOGGER_TOPICS``.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import logging
import os
import signal
import socket
from collections.abc import Callable, Sequence
from datetime import timedelta
from pathlib import Path
from typing import IO, Any

from faststream.redis import RedisBroker

import roomstreams
from roomstreams.api import ApiError, RoomService
from roomstreams.cli import DEV_API_KEY, DEV_API_SECRET
from roomstreams.events import RoomEvent, room_events

__all__ = ["AGENT_ATTRIBUTE", "RoomLogger", "main"]

logger = logging.getLogger("examples.logger")

#: Token attribute of backend participants (same as examples/agent.py).
AGENT_ATTRIBUTE = "roomstreams.agent"


def is_person(attributes: dict[str, str]) -> bool:
    return AGENT_ATTRIBUTE not in attributes


class RoomLogger:
    """Joins rooms as participant ``identity`` and appends each text stream on ``topics``
    (``chat`` always among them) to ``path``.

    ``await room_logger.run(stop)`` runs until ``stop`` is set. ``ready``, ``on_joined`` and
    ``on_left`` as in :class:`examples.agent.Agent`; ``on_record(record)``, if set, is called
    after each line is written and flushed.
    """

    def __init__(
        self,
        path: str | os.PathLike[str],
        *,
        url: str,
        redis_url: str,
        api_key: str,
        api_secret: str,
        topics: Sequence[str] = (),
        identity: str = "logger",
        group: str = "room-logger",
        consumer: str | None = None,
    ) -> None:
        self.path = Path(path)
        self.url = url
        self.redis_url = redis_url
        self.api_key = api_key
        self.api_secret = api_secret
        self.topics = list(dict.fromkeys(["chat", *(t for t in topics if t)]))
        self.identity = identity
        self.group = group
        self.consumer = consumer or f"{socket.gethostname()}-{os.getpid()}"
        self.ready = asyncio.Event()
        self.on_joined: Callable[[str], object] | None = None
        self.on_left: Callable[[str], object] | None = None
        self.on_record: Callable[[dict[str, Any]], object] | None = None
        self._visits: dict[str, asyncio.Event] = {}
        self._file: IO[str] | None = None
        self._write_lock = asyncio.Lock()

    @classmethod
    def from_env(cls, path: str | None = None, topics: str | None = None) -> RoomLogger:
        env = os.environ.get
        topics = env("ROOMSTREAMS_LOGGER_TOPICS", "") if topics is None else topics
        return cls(
            path or env("ROOMSTREAMS_LOGGER_FILE", "rooms.jsonl"),
            url=env("ROOMSTREAMS_URL", "ws://127.0.0.1:7880"),
            redis_url=env("ROOMSTREAMS_REDIS_URL", "redis://127.0.0.1:6379/0"),
            api_key=env("ROOMSTREAMS_API_KEY", DEV_API_KEY),
            api_secret=env("ROOMSTREAMS_API_SECRET", DEV_API_SECRET),
            topics=[t.strip() for t in topics.split(",")],
        )

    # -- lifecycle ------------------------------------------------------------------------

    async def run(self, stop: asyncio.Event) -> None:
        self._file = await asyncio.to_thread(self.path.open, "a", encoding="utf-8")
        try:
            # One task group owns the per-room tasks: leaving it means every room was left
            # (and every stream it was reading logged, aborted if need be).
            async with asyncio.TaskGroup() as rooms:
                broker = RedisBroker(self.redis_url, log_level=logging.DEBUG)

                async def on_event(event: RoomEvent) -> None:
                    self._on_event(event, rooms)

                # acknowledged when on_event returns: it only starts the room's task
                sub = room_events(group=self.group, consumer=self.consumer)
                broker.subscriber(stream=sub)(on_event)

                async with broker:
                    await broker.start()
                    logger.info("logging topics %s to %s", ", ".join(self.topics), self.path)
                    self.ready.set()
                    await stop.wait()
                for leave in self._visits.values():
                    leave.set()
        finally:
            file, self._file = self._file, None
            await asyncio.to_thread(file.close)

    def _on_event(self, event: RoomEvent, rooms: asyncio.TaskGroup) -> None:
        if event.event == "room_finished":
            if (leave := self._visits.get(event.room)) is not None:
                leave.set()
            return
        if event.event not in ("room_started", "participant_joined"):
            return
        if event.identity == self.identity or event.room in self._visits:
            return  # our own join; or already there
        leave = asyncio.Event()
        self._visits[event.room] = leave
        rooms.create_task(self._visit(event.room, leave), name=f"logger:{event.room}")

    async def _visit(self, room_name: str, leave: asyncio.Event) -> None:
        try:
            if await self._people_in(room_name):
                await self._serve(room_name, leave)
        except Exception:
            logger.exception("room %s: the logger failed there", room_name)
        finally:
            if self._visits.get(room_name) is leave:
                del self._visits[room_name]

    async def _people_in(self, room_name: str) -> bool:
        try:
            async with RoomService(self.url, self.api_key, self.api_secret) as api:
                participants = await api.list_participants(room_name)
        except ApiError as exc:
            if exc.code == "not_found":
                return False
            raise
        return any(p.identity != self.identity and is_person(p.attributes) for p in participants)

    def _token(self, room_name: str) -> str:
        grants = roomstreams.VideoGrants(room=room_name, room_join=True, can_publish_data=False)
        return (
            roomstreams.AccessToken(self.api_key, self.api_secret)
            .with_identity(self.identity)
            .with_name("Room logger")
            .with_attributes({AGENT_ATTRIBUTE: "logger"})
            .with_grants(grants)
            .with_ttl(timedelta(hours=6))
            .to_jwt()
        )

    async def _serve(self, room_name: str, leave: asyncio.Event) -> None:
        # The room's handler tasks are ours, not the Room's (which cancels its own when it
        # disconnects): the streams still open when the logger leaves end as aborted
        # (connection closed) and are still logged before this task group exits.
        async with asyncio.TaskGroup() as streams:

            def on_stream(reader: roomstreams.TextStreamReader, sender: str) -> None:
                streams.create_task(self._record(room_name, reader, sender))

            room = roomstreams.Room()
            for topic in self.topics:
                room.register_text_stream_handler(topic, on_stream)

            def leave_if_alone(*_: object) -> None:
                if not any(is_person(p.attributes) for p in room.remote_participants.values()):
                    leave.set()

            room.on("participant_disconnected", leave_if_alone)
            room.on("reconnected", leave_if_alone)
            room.on("disconnected", lambda reason: leave.set())
            try:
                await room.connect(self.url, self._token(room_name))
            except roomstreams.ConnectError as exc:
                logger.warning("could not join room %s: %s", room_name, exc)
                return
            try:
                logger.info("joined room %s", room_name)
                leave_if_alone()
                if self.on_joined is not None:
                    self.on_joined(room_name)
                await leave.wait()
            finally:
                await room.disconnect()
        logger.info("left room %s", room_name)
        if self.on_left is not None:
            self.on_left(room_name)

    # -- the log --------------------------------------------------------------------------

    async def _record(
        self, room_name: str, reader: roomstreams.TextStreamReader, sender: str
    ) -> None:
        try:
            await self._log_stream(room_name, reader, sender)
        except Exception:  # a failed line must not take the room's other streams down
            logger.exception("room %s: could not log stream %s", room_name, reader.info.id)

    async def _log_stream(
        self, room_name: str, reader: roomstreams.TextStreamReader, sender: str
    ) -> None:
        chunks: list[str] = []
        aborted: roomstreams.StreamAborted | None = None
        try:
            async for chunk in reader:
                chunks.append(chunk)
        except roomstreams.StreamAborted as exc:
            aborted = exc
        info = reader.info
        await self._write(
            {
                "room": room_name,
                "stream_id": info.stream_id,
                "sender": sender,
                "topic": info.topic,
                "timestamp": info.timestamp,
                "attributes": info.attributes,  # the header's, updated by the trailer's
                "reply_to_id": info.reply_to_id,
                "text": "".join(chunks),
                "aborted": aborted is not None,
                "code": aborted.code if aborted else None,
                "reason": aborted.reason if aborted else None,
            }
        )

    async def _write(self, record: dict[str, Any]) -> None:
        line = json.dumps(record, ensure_ascii=False) + "\n"
        async with self._write_lock:  # whole lines, in the order messages completed
            file = self._file
            if file is None:
                return
            await asyncio.to_thread(_append, file, line)
        if self.on_record is not None:
            self.on_record(record)


def _append(file: IO[str], line: str) -> None:
    file.write(line)
    file.flush()


async def _main(args: argparse.Namespace) -> None:
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    await RoomLogger.from_env(args.path, args.topics).run(stop)


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description="Log every text stream of every room.")
    parser.add_argument("path", nargs="?", help="JSON Lines file to append to")
    parser.add_argument("--topics", help="comma-separated topics to log besides chat")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(message)s")
    asyncio.run(_main(args))


if __name__ == "__main__":
    main()
