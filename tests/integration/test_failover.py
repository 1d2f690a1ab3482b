"""A router dies: a standby router takes its partitions over (lease expiry), asks the
gateways to re-announce their participants, and the room goes on. Streams that were in
flight cannot complete and end abnormally; nothing hangs."""

from __future__ import annotations

import asyncio
import signal
from collections.abc import Callable

import pytest

import roomstreams

from .conftest import System, _spawn
from .helpers import Collector

pytestmark = pytest.mark.slow


async def test_standby_router_takes_over_and_rooms_go_on(
    system_factory: Callable[..., System], room_name: str
) -> None:
    s = system_factory(gateways=2, ROOMSTREAMS_LEASE_MS="1500", ROOMSTREAMS_LOG_LEVEL="INFO")
    standby = _spawn("services.router", s.env)
    a_col, b_col = Collector(), Collector()
    alice, bob, carol = roomstreams.Room(), roomstreams.Room(), roomstreams.Room()
    try:
        alice.register_text_stream_handler("chat", a_col)
        bob.register_text_stream_handler("chat", b_col)
        joined: asyncio.Queue[str] = asyncio.Queue()
        alice.on("participant_connected", lambda p: joined.put_nowait(p.identity))
        await alice.connect(s.urls[0], s.token(room_name, "alice"))
        await bob.connect(s.urls[1], s.token(room_name, "bob"))
        # alice learns of bob after bob's connect returns: wait for it, so that the join
        # awaited below can only be carol's
        assert await asyncio.wait_for(joined.get(), 10) == "bob"

        writer = await alice.local_participant.stream_text(topic="chat")
        await writer.write("in flight when the router dies")
        await b_col.wait_count(1)
        assert s.router is not None
        s.router.send_signal(signal.SIGKILL)

        # the stream in flight ends abnormally on both sides, with a reason
        rec = await b_col.wait_done(writer.stream_id, timeout=10)
        assert isinstance(rec.error, roomstreams.StreamAborted)
        assert rec.error.code == "router_restarted"
        with pytest.raises(roomstreams.StreamAborted) as aborted:
            await asyncio.wait_for(writer.close(), 10)
        assert aborted.value.code == "router_restarted"

        # the room goes on: same connections, handlers still in effect, both directions
        info = await alice.local_participant.send_text("after failover", topic="chat")
        assert (await b_col.wait_done(info.stream_id, timeout=10)).text == "after failover"
        back = await bob.local_participant.send_text("and back", topic="chat")
        assert (await a_col.wait_done(back.stream_id, timeout=10)).text == "and back"
        # membership changes are routed by the new owner
        await carol.connect(s.urls[1], s.token(room_name, "carol"))
        assert set(carol.remote_participants) == {"alice", "bob"}
        assert await asyncio.wait_for(joined.get(), 10) == "carol"
        assert joined.empty()
    finally:
        for r in (alice, bob, carol):
            await r.disconnect()
        standby.terminate()
        standby.wait(10)
