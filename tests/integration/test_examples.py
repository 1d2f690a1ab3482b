"""The example backend services (examples/agent.py, examples/logger.py), run in-process against
a real system of their own (a private Redis DB, so room events are theirs alone)."""

from __future__ import annotations

import asyncio
import contextlib
import json
from collections import Counter
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

import roomstreams
from examples.agent import Agent, reply_words
from examples.logger import RoomLogger
from roomstreams.events import RoomEvent

from .conftest import API_KEY, API_SECRET, System
from .helpers import Collector

pytestmark = pytest.mark.slow

TIMEOUT = 15.0


@dataclass
class Backends:
    agent: Agent
    log: RoomLogger
    #: (who, "joined" | "left", room), as the hooks report them
    moves: asyncio.Queue[tuple[str, str, str]] = field(default_factory=asyncio.Queue)
    seen: list[tuple[str, str, str]] = field(default_factory=list)
    records: asyncio.Queue[dict[str, Any]] = field(default_factory=asyncio.Queue)

    async def expect(self, *moves: tuple[str, str, str], times: int = 1) -> None:
        """Wait until each of ``moves`` was reported ``times`` times (in any order)."""
        async with asyncio.timeout(TIMEOUT):
            while any(self.seen.count(m) < times for m in moves):
                self.seen.append(await self.moves.get())

    async def next_records(self, n: int) -> list[dict[str, Any]]:
        async with asyncio.timeout(TIMEOUT):
            return [await self.records.get() for _ in range(n)]


@contextlib.asynccontextmanager
async def running_backends(
    s: System, path: Path, topics: list[str] | None = None
) -> AsyncIterator[Backends]:
    """Agent (on gateway 0) and logger (on gateway 1) running until the block ends; then
    stopped, and their ``run`` must return (every room left) in time."""
    agent = Agent(url=s.urls[0], redis_url=s.redis_url, api_key=API_KEY, api_secret=API_SECRET)
    log = RoomLogger(
        path,
        url=s.urls[1],
        redis_url=s.redis_url,
        api_key=API_KEY,
        api_secret=API_SECRET,
        topics=topics or [],
    )
    b = Backends(agent, log)

    def hook(who: str, what: str) -> Callable[[str], None]:
        return lambda room: b.moves.put_nowait((who, what, room))

    agent.on_joined, agent.on_left = hook("agent", "joined"), hook("agent", "left")
    log.on_joined, log.on_left = hook("logger", "joined"), hook("logger", "left")
    log.on_record = b.records.put_nowait
    stop = asyncio.Event()
    tasks = [asyncio.create_task(agent.run(stop)), asyncio.create_task(log.run(stop))]
    try:
        # ready: their consumer groups exist, every room event from now on reaches them
        ready = [asyncio.ensure_future(x.ready.wait()) for x in (agent, log)]
        async with asyncio.timeout(TIMEOUT):
            while not all(r.done() for r in ready):
                await asyncio.wait([*ready, *tasks], return_when=asyncio.FIRST_COMPLETED)
                for t in tasks:
                    if t.done():
                        t.result()  # raises what made it fail
                        raise AssertionError("a backend returned before it was stopped")
        yield b
    finally:
        stop.set()
        async with asyncio.timeout(TIMEOUT):
            await asyncio.gather(*tasks)


async def _join(
    s: System, room: str, identity: str, handlers: dict[str, Collector]
) -> roomstreams.Room:
    r = roomstreams.Room()
    for topic, h in handlers.items():
        r.register_text_stream_handler(topic, h)
    await r.connect(s.urls[1], s.token(room, identity))
    return r


async def test_agent_streams_a_reply_and_logger_logs_every_message(
    system_factory: Callable[..., System], room_name: str, tmp_path: Path
) -> None:
    s = system_factory(gateways=2)
    path = tmp_path / "rooms.jsonl"
    async with running_backends(s, path, topics=["notes"]) as b:
        chat = Collector()
        alice = await _join(s, room_name, "alice", {"chat": chat})
        # the room started with alice: both join it, their handlers in effect when reported
        await b.expect(("agent", "joined", room_name), ("logger", "joined", room_name))
        assert alice.remote_participants.keys() == {"agent", "logger"}

        sent = await alice.local_participant.send_text(
            "hello brave new world", topic="chat", attributes={"lang": "en"}
        )
        [reply] = await chat.wait_count(1, timeout=TIMEOUT)
        async with asyncio.timeout(TIMEOUT):
            await reply.done.wait()
        assert reply.error is None
        assert reply.identity == "agent"
        assert reply.text == "you said: world new brave hello"
        assert reply.chunks == ["you", " said:", " world", " new", " brave", " hello"]
        assert reply.info.reply_to_id == sent.stream_id
        assert reply.info.generated
        assert reply.info.topic == "chat"

        # a topic the logger has no handler for never reaches it; "notes" does, and a stream
        # that ends abnormally is logged with what arrived and why
        await alice.local_participant.send_text("not logged", topic="other")
        writer = await alice.local_participant.stream_text(topic="notes")
        await writer.write("half a th")
        await writer.close(reason="changed my mind")

        mine, answer, note = await b.next_records(3)
        await alice.disconnect()
        # nobody but backends left: both leave (neither keeps the room alive for the other)
        await b.expect(("agent", "left", room_name), ("logger", "left", room_name))

    assert mine == {
        "room": room_name,
        "stream_id": sent.stream_id,
        "sender": "alice",
        "topic": "chat",
        "timestamp": sent.timestamp,
        "attributes": {"lang": "en"},
        "reply_to_id": None,
        "text": "hello brave new world",
        "aborted": False,
        "code": None,
        "reason": None,
    }
    assert answer == {
        "room": room_name,
        "stream_id": reply.info.stream_id,
        "sender": "agent",
        "topic": "chat",
        "timestamp": reply.info.timestamp,
        "attributes": {},
        "reply_to_id": sent.stream_id,
        "text": "you said: world new brave hello",
        "aborted": False,
        "code": None,
        "reason": None,
    }
    assert note["stream_id"] == writer.stream_id
    assert (note["sender"], note["topic"], note["text"]) == ("alice", "notes", "half a th")
    assert (note["aborted"], note["reason"]) == (True, "changed my mind")
    assert note["code"]
    lines = path.read_text(encoding="utf-8").splitlines()
    assert [json.loads(line) for line in lines] == [mine, answer, note]
    assert b.records.empty()
    # one visit each: neither reacted to its own join nor to the other's
    assert Counter(b.seen) == {
        ("agent", "joined", room_name): 1,
        ("logger", "joined", room_name): 1,
        ("agent", "left", room_name): 1,
        ("logger", "left", room_name): 1,
    }


async def test_backends_come_back_when_a_person_returns_to_a_lingering_room(
    system_factory: Callable[..., System], room_name: str, tmp_path: Path
) -> None:
    # the room outlives its last participant by 30 s: coming back does not start it again
    s = system_factory(gateways=2, ROOMSTREAMS_ROOM_EMPTY_TTL="30")
    async with running_backends(s, tmp_path / "rooms.jsonl") as b:
        bob = await _join(s, room_name, "bob", {})
        await b.expect(("agent", "joined", room_name), ("logger", "joined", room_name))
        await bob.disconnect()
        await b.expect(("agent", "left", room_name), ("logger", "left", room_name))

        chat = Collector()
        bob = await _join(s, room_name, "bob", {"chat": chat})
        # no room_started this time: they come back on bob's participant_joined
        await b.expect(("agent", "joined", room_name), ("logger", "joined", room_name), times=2)
        await bob.local_participant.send_text("again", topic="chat")
        [reply] = await chat.wait_count(1, timeout=TIMEOUT)
        async with asyncio.timeout(TIMEOUT):
            await reply.done.wait()
        assert reply.text == "you said: again"
        await bob.disconnect()


async def test_agent_ignores_its_own_join_and_finished_rooms_it_is_not_in(tmp_path: Path) -> None:
    agent = Agent(url="ws://127.0.0.1:9", redis_url="redis://127.0.0.1:9/0", api_key="k",
                  api_secret="s" * 32)  # fmt: skip
    events = [
        RoomEvent(event="participant_joined", room="r", t="0", identity="agent"),
        RoomEvent(event="room_finished", room="r", t="0"),
        RoomEvent(event="participant_left", room="r", t="0", identity="x"),
    ]
    async with asyncio.TaskGroup() as tg:
        for event in events:
            agent._on_event(event, tg)
        assert agent._visits == {}
    assert "".join(reply_words("a b  c\nd")) == "you said: d c b a"
