"""A sender whose process freezes mid-stream (SIGSTOP: its socket stays open but answers
nothing, as behind a dead NAT mapping) is given up once it misses the gateway's pings: it
leaves, and its open stream ends at the reader with ``sender_left`` instead of hanging."""

from __future__ import annotations

import asyncio
import signal
import subprocess
import sys
import time
import uuid
from typing import Any

import roomstreams

from .helpers import Collector

SENDER = r"""
import asyncio, json, sys
import websockets

async def main(url):
    async with websockets.connect(url, compression=None, ping_interval=None) as ws:
        while json.loads(await ws.recv()).get("type") != "joined":
            pass
        sid = "frozen-" + sys.argv[2]
        await ws.send(json.dumps({"type": "header", "stream_id": sid, "topic": "chat",
                                  "timestamp": 1}))
        await ws.send(json.dumps({"type": "chunk", "stream_id": sid, "chunk_index": 0,
                                  "content": "before the freeze"}))
        print(sid, flush=True)
        await asyncio.Event().wait()

asyncio.run(main(sys.argv[1]))
"""


async def test_a_frozen_sender_is_given_up_and_its_stream_ends(system_factory: Any) -> None:
    s = system_factory(
        ROOMSTREAMS_PING_INTERVAL="0.5",
        ROOMSTREAMS_PING_TIMEOUT="0.5",
        ROOMSTREAMS_CLOSE_TIMEOUT="0.5",
    )
    room = f"frozen-{uuid.uuid4().hex[:8]}"
    col = Collector()
    bob = roomstreams.Room()
    bob.register_text_stream_handler("chat", col)
    left = asyncio.Event()
    bob.on("participant_disconnected", lambda p: left.set() if p.identity == "frosty" else None)
    await bob.connect(s.urls[1], s.token(room, "bob"))
    url = f"{s.urls[0]}/rtc?access_token={s.token(room, 'frosty')}"
    proc = subprocess.Popen(  # noqa: ASYNC220 (started once, not waited on)
        [sys.executable, "-c", SENDER, url, uuid.uuid4().hex[:6]], stdout=subprocess.PIPE
    )
    try:
        assert proc.stdout is not None
        sid = (await asyncio.to_thread(proc.stdout.readline)).decode().strip()
        await col.wait_count(1)
        proc.send_signal(signal.SIGSTOP)
        frozen_at = time.monotonic()
        rec = await col.wait_done(sid, timeout=10)
        given_up = time.monotonic() - frozen_at
        assert isinstance(rec.error, roomstreams.StreamAborted)
        assert rec.error.code == "sender_left"
        assert "frosty" in str(rec.error)
        assert rec.text == "before the freeze"
        async with asyncio.timeout(5):
            await left.wait()
        assert "frosty" not in bob.remote_participants
        assert given_up < 4  # ping every 0.5 s, pong 0.5 s late, close 0.5 s: ~1.5 s
    finally:
        proc.kill()
        proc.wait()
        if proc.stdout is not None:
            proc.stdout.close()
        await bob.disconnect()


async def test_a_paced_sender_is_not_taken_for_a_frozen_one(system_factory: Any) -> None:
    """While the gateway itself stops reading a socket (its pacing window is full because the
    router is stalled), the sender's pongs wait in TCP behind its data: that must not count
    as a missed pong."""
    s = system_factory(
        ROOMSTREAMS_PING_INTERVAL="0.3",
        ROOMSTREAMS_PING_TIMEOUT="0.3",
        ROOMSTREAMS_CLOSE_TIMEOUT="0.3",
    )
    room = f"paced-{uuid.uuid4().hex[:8]}"
    col = Collector()
    bob, alice = roomstreams.Room(), roomstreams.Room()
    bob.register_text_stream_handler("chat", col)
    reconnects: list[str] = []
    alice.on("reconnecting", lambda *a: reconnects.append("alice"))
    await bob.connect(s.urls[1], s.token(room, "bob"))
    await alice.connect(s.urls[0], s.token(room, "alice"))
    assert s.router is not None
    text = "0123456789abcdef" * (4 * 1024 * 1024 // 16)  # 4 MiB: four pacing windows
    try:
        s.router.send_signal(signal.SIGSTOP)
        sending = asyncio.create_task(alice.local_participant.send_text(text, topic="chat"))
        done, _ = await asyncio.wait({sending}, timeout=3.0)  # ten ping periods, reads paused
        assert not done, "the window should hold the sender while the router is stopped"
        s.router.send_signal(signal.SIGCONT)
        info = await asyncio.wait_for(sending, 30)
        rec = await col.wait_done(info.stream_id, timeout=30)
        assert rec.error is None and rec.text == text
        assert reconnects == []
    finally:
        s.router.send_signal(signal.SIGCONT)
        await alice.disconnect()
        await bob.disconnect()
