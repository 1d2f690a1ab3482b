"""A room logger: a backend service that joins every room while people are in it and writes
every text stream it receives to a JSON Lines file, one line per complete message::

    {"room": "demo", "stream_id": "...", "sender": "alice", "topic": "chat",
     "timestamp": 1767225600000, "attributes": {}, "reply_to_id": null,
     "text": "hello", "aborted": false, "code": null, "reason": null}

A stream that ended abnormally (sender left, closed with a reason, connection lost) is logged
too, with the text received so far, ``"aborted": true`` and its code and reason.

A participant receives only the topics it has a handler for: the logger logs ``chat`` and the
topics given with ``--topics a,b`` (or ``ROOMSTREAMS_LOGGER_TOPICS``).

Run it next to a system (on the machine of a ``roomstreams up`` it finds that system by
itself; elsewhere set ``ROOMSTREAMS_REDIS_URL``, as ``roomstreams up`` prints)::

    python examples/logger.py rooms.jsonl

It finds and leaves rooms like ``examples/agent.py`` (examples/_visitor.py: room lifecycle
events in the consumer group ``room-logger``; joins only while a person is there; its token
carries the attribute ``roomstreams.agent`` so that other backends don't stay for it). It
never publishes.

Environment: ``ROOMSTREAMS_URL`` (``ws://127.0.0.1:7880``), ``ROOMSTREAMS_REDIS_URL``,
``ROOMSTREAMS_API_KEY`` / ``ROOMSTREAMS_API_SECRET`` (dev defaults),
``ROOMSTREAMS_LOGGER_FILE`` (``rooms.jsonl``; the argument wins), ``ROOMSTREAMS_LOGGER_TOPICS``.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import logging
import os
from collections.abc import AsyncIterator, Callable, Sequence
from pathlib import Path
from typing import IO, Any

import roomstreams

try:
    from ._visitor import AGENT_ATTRIBUTE, RoomVisitor, env_settings, run_until_signalled
except ImportError:  # run as a script (python examples/logger.py): no package
    from _visitor import (  # type: ignore[import-not-found,no-redef]
        AGENT_ATTRIBUTE,
        RoomVisitor,
        env_settings,
        run_until_signalled,
    )

__all__ = ["AGENT_ATTRIBUTE", "RoomLogger", "main"]

logger = logging.getLogger("examples.logger")


class RoomLogger(RoomVisitor):
    """Joins rooms as participant ``identity`` and appends each text stream on ``topics``
    (``chat`` always among them) to ``path``.

    ``settings``, ``await room_logger.run(stop)``, ``ready``, ``on_joined`` and ``on_left``:
    see :class:`RoomVisitor`; ``on_record(record)``, if set, is called after each line is
    written and flushed.
    """

    kind = "logger"
    display_name = "Room logger"
    badge = "logger"
    log = logger

    def __init__(
        self,
        path: str | os.PathLike[str],
        *,
        identity: str = "logger",
        group: str = "room-logger",
        topics: Sequence[str] = (),
        **settings: Any,
    ) -> None:
        super().__init__(identity=identity, group=group, **settings)
        self.path = Path(path)
        self.topics = list(dict.fromkeys(["chat", *(t for t in topics if t)]))
        self.on_record: Callable[[dict[str, Any]], object] | None = None
        self._file: IO[str] | None = None
        self._write_lock = asyncio.Lock()

    @classmethod
    def from_env(cls, path: str | None = None, topics: str | None = None) -> RoomLogger:
        env = os.environ.get
        topics = env("ROOMSTREAMS_LOGGER_TOPICS", "") if topics is None else topics
        return cls(
            path or env("ROOMSTREAMS_LOGGER_FILE", "rooms.jsonl"),
            **env_settings(),
            topics=[t.strip() for t in topics.split(",")],
        )

    async def run(self, stop: asyncio.Event) -> None:
        self._file = await asyncio.to_thread(self.path.open, "a", encoding="utf-8")
        try:
            # leaving it means every room was left, and every stream it was reading logged
            # (aborted if need be)
            await super().run(stop)
        finally:
            file, self._file = self._file, None
            await asyncio.to_thread(file.close)

    def _announce(self) -> None:
        logger.info("logging topics %s to %s", ", ".join(self.topics), self.path)

    def _grants(self, room_name: str) -> roomstreams.VideoGrants:
        return roomstreams.VideoGrants(room=room_name, room_join=True, can_publish_data=False)

    @contextlib.asynccontextmanager
    async def _room(self, room_name: str) -> AsyncIterator[roomstreams.Room]:
        # The room's handler tasks are ours, not the Room's (which cancels its own when it
        # disconnects): the streams still open when the logger leaves end as aborted
        # (connection closed) and are still logged before this task group exits.
        async with asyncio.TaskGroup() as streams:

            def on_stream(reader: roomstreams.TextStreamReader, sender: str) -> None:
                streams.create_task(self._record(room_name, reader, sender))

            room = roomstreams.Room()
            for topic in self.topics:
                room.register_text_stream_handler(topic, on_stream)
            yield room

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


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description="Log every text stream of every room.")
    parser.add_argument("path", nargs="?", help="JSON Lines file to append to")
    parser.add_argument("--topics", help="comma-separated topics to log besides chat")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(message)s")
    asyncio.run(run_until_signalled(lambda: RoomLogger.from_env(args.path, args.topics)))


if __name__ == "__main__":
    main()
