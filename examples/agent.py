"""An echo agent: a backend service that joins every room while people are in it and answers
each message on the ``lk.chat`` topic (the chat page of ``roomstreams up``, LiveKit's chat
components) or the ``chat`` topic (``roomstreams send``) with a reply streamed word by word on
the same topic, the way an LLM agent streams tokens. There is no model: the reply to
"hello brave new world" is "you said: world new brave hello", one word per ``write``.

Run it next to a system: on the machine of a ``roomstreams up`` it finds that system by
itself; elsewhere set ``ROOMSTREAMS_REDIS_URL`` (``roomstreams up`` prints the line)::

    roomstreams up
    python examples/agent.py
    roomstreams listen --room demo &              # a person in room "demo"
    roomstreams send --room demo "hello brave new world"

or open the chat page of ``roomstreams up`` (http://127.0.0.1:7880/), join room "demo" and
watch the reply grow in the page word by word.

How it finds, joins and leaves rooms (examples/_visitor.py, shared with examples/logger.py):
room lifecycle events in the FastStream consumer group ``echo-agent``, so agent processes
sharing the group share the rooms; it joins a room only while a person is there, and its
token carries the attribute ``roomstreams.agent`` so that other backends (the logger) don't
stay for it, nor it for them.

Environment: ``ROOMSTREAMS_URL`` (a gateway, ``ws://127.0.0.1:7880``),
``ROOMSTREAMS_REDIS_URL`` (``redis://127.0.0.1:6379/0``), ``ROOMSTREAMS_API_KEY`` /
``ROOMSTREAMS_API_SECRET`` (the dev defaults of ``roomstreams up``),
``ROOMSTREAMS_AGENT_IDENTITY`` (``agent``), ``ROOMSTREAMS_AGENT_WORD_DELAY`` (seconds between
two words, ``0.05``).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
from collections.abc import AsyncIterator, Iterator
from typing import Any

import roomstreams

try:
    from ._visitor import AGENT_ATTRIBUTE, RoomVisitor, env_settings, run_until_signalled
except ImportError:  # run as a script (python examples/agent.py): no package
    from _visitor import (  # type: ignore[import-not-found,no-redef]
        AGENT_ATTRIBUTE,
        RoomVisitor,
        env_settings,
        run_until_signalled,
    )

__all__ = ["AGENT_ATTRIBUTE", "Agent", "main", "reply_words"]

logger = logging.getLogger("examples.agent")


def reply_words(text: str) -> Iterator[str]:
    """The reply to ``text``, a word at a time (each after the first with its leading space):
    "you said:" then the words of ``text`` in reverse order."""
    words = ["you", "said:", *reversed(text.split())]
    for i, word in enumerate(words):
        yield word if i == 0 else " " + word


class Agent(RoomVisitor):
    """Joins rooms as participant ``identity`` and answers each text stream on one of
    ``topics``, on its topic.

    ``settings`` (``url``, ``redis_url``, ``api_key``, ``api_secret``, ``consumer``),
    ``await agent.run(stop)``, ``ready``, ``on_joined`` and ``on_left``: see
    :class:`RoomVisitor`.
    """

    kind = "agent"
    display_name = "Echo agent"
    badge = "echo"
    log = logger

    def __init__(
        self,
        *,
        identity: str = "agent",
        group: str = "echo-agent",
        topics: tuple[str, ...] = ("lk.chat", "chat"),
        word_delay: float = 0.0,
        **settings: Any,
    ) -> None:
        super().__init__(identity=identity, group=group, **settings)
        self.topics = topics
        self.word_delay = word_delay

    @classmethod
    def from_env(cls) -> Agent:
        env = os.environ.get
        return cls(
            **env_settings(),
            identity=env("ROOMSTREAMS_AGENT_IDENTITY", "agent"),
            word_delay=float(env("ROOMSTREAMS_AGENT_WORD_DELAY", "0.05")),
        )

    async def run(self, stop: asyncio.Event) -> None:
        await super().run(stop)
        logger.info("agent %r stopped", self.identity)

    def _announce(self) -> None:
        logger.info("agent %r waiting for rooms (group %r)", self.identity, self.group)

    @contextlib.asynccontextmanager
    async def _room(self, room_name: str) -> AsyncIterator[roomstreams.Room]:
        room = roomstreams.Room()
        for topic in self.topics:
            room.register_text_stream_handler(
                topic, lambda reader, sender: self._answer(room, reader, sender)
            )
        yield room

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
            topic=info.topic, reply_to_id=info.stream_id, generated=True
        )
        async with writer:
            for word in reply_words(text):
                await writer.write(word)
                if self.word_delay:
                    await asyncio.sleep(self.word_delay)


def main() -> None:
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(message)s")
    asyncio.run(run_until_signalled(Agent.from_env))


if __name__ == "__main__":
    main()
