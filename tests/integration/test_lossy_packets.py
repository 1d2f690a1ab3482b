"""``reliable=False`` packets may be dropped under pressure, as LiveKit's lossy channel: a
receiving gateway drops them for a socket whose send queue is half full, instead of letting
the queue fill and closing the receiver as a slow consumer (what reliable packets do)."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Callable

import pytest
import websockets
from websockets.asyncio.client import ClientConnection

import roomstreams

from .conftest import System

pytestmark = pytest.mark.slow

PAYLOAD = b"x" * 15000
N = 1500  # 22 MB: more than the loopback TCP buffers hold


async def _stalled_receiver(s: System, room: str) -> ClientConnection:
    """A raw socket that joins and then reads nothing (until the test drains it)."""
    url = f"{s.urls[1]}/rtc?access_token={s.token(room, 'slow')}"
    ws = await websockets.connect(url, max_size=1 << 20, max_queue=4)
    while json.loads(await ws.recv())["type"] != "joined":
        pass
    return ws


async def _drain(ws: ClientConnection) -> tuple[int, int | None]:
    """Read what arrives until 2 s of silence: (data packets, close code or None)."""
    got = 0
    try:
        while True:
            msg = await asyncio.wait_for(ws.recv(), 2)
            got += isinstance(msg, bytes)
    except TimeoutError:
        return got, None
    except websockets.ConnectionClosed as exc:
        return got, exc.rcvd.code if exc.rcvd else None


async def test_lossy_packets_are_dropped_for_a_congested_receiver_not_its_connection(
    system_factory: Callable[..., System], room_name: str
) -> None:
    s = system_factory(gateways=2, ROOMSTREAMS_SEND_QUEUE_FRAMES="16")
    sender = roomstreams.Room()
    await sender.connect(s.urls[0], s.token(room_name, "sender"))
    try:
        ws = await _stalled_receiver(s, room_name)
        for _ in range(N):
            await sender.local_participant.publish_data(PAYLOAD, reliable=False, topic="t")
        got, closed = await _drain(ws)
        await ws.close()
        assert closed is None, f"the receiver was closed ({closed})"
        assert 0 < got < N  # some dropped, the connection kept

        # the same flood of reliable packets fills the queue: the receiver is disconnected
        ws = await _stalled_receiver(s, f"{room_name}-r")
        other = roomstreams.Room()
        await other.connect(s.urls[0], s.token(f"{room_name}-r", "sender"))
        publish = other.local_participant.publish_data
        sent = asyncio.gather(*(publish(PAYLOAD, topic="t") for _ in range(N)))
        got, closed = await _drain(ws)
        await asyncio.wait_for(sent, 60)  # routed (delivered to the gateway): acknowledged
        await other.disconnect()
        assert closed == 4008  # slow consumer
    finally:
        await sender.disconnect()
