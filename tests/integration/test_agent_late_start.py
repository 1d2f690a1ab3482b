"""A backend that starts after a room already has people learns of it (list + subscribe, no
missed join): the agent example answers in a room that existed before it started. Real
router, gateway and Redis (a private database: the room events are this test's alone)."""

from __future__ import annotations

import asyncio
from collections.abc import Callable

import pytest

import roomstreams
from examples.agent import Agent

from .conftest import API_KEY, API_SECRET, System
from .helpers import Collector

pytestmark = pytest.mark.slow

TIMEOUT = 15.0


async def test_agent_answers_in_a_room_that_existed_before_it_started(
    system_factory: Callable[..., System], room_name: str
) -> None:
    s = system_factory(gateways=1)
    chat = Collector()
    alice = roomstreams.Room()
    alice.register_text_stream_handler("chat", chat)
    await alice.connect(s.urls[0], s.token(room_name, "alice"))
    # the room's room_started event is long gone when the agent's consumer group is created
    later = f"{room_name}-later"
    agent = Agent(url=s.urls[0], redis_url=s.redis_url, api_key=API_KEY, api_secret=API_SECRET)
    joined: asyncio.Queue[str] = asyncio.Queue()
    agent.on_joined = joined.put_nowait
    stop = asyncio.Event()
    task = asyncio.create_task(agent.run(stop))
    bob = roomstreams.Room()
    try:
        async with asyncio.timeout(TIMEOUT):
            assert await joined.get() == room_name
        await alice.local_participant.send_text("hello old room", topic="chat")
        [reply] = await chat.wait_count(1, timeout=TIMEOUT)
        async with asyncio.timeout(TIMEOUT):
            await reply.done.wait()
        assert (reply.identity, reply.text) == ("agent", "you said: room old hello")
        # rooms started after it are still found through the events
        await bob.connect(s.urls[0], s.token(later, "bob"))
        async with asyncio.timeout(TIMEOUT):
            assert await joined.get() == later
        assert joined.empty()  # the first room was visited once, not once per source
    finally:
        stop.set()
        await bob.disconnect()
        await alice.disconnect()
        async with asyncio.timeout(TIMEOUT):
            await task
