"""LiveKit's Node server SDK (``livekit-server-sdk`` from npm, JSON Twirp) calls the
RoomService unchanged: one smoke run from Node against the real system."""

from __future__ import annotations

import asyncio
import json
import shutil
from pathlib import Path

import pytest

import roomstreams
from roomstreams import AccessToken, VideoGrants

from .conftest import API_KEY, API_SECRET, System

pytestmark = pytest.mark.slow

NODE_DIR = Path(__file__).resolve().parents[1] / "node_api"


@pytest.mark.skipif(shutil.which("node") is None, reason="Node.js is not installed")
@pytest.mark.skipif(
    not (NODE_DIR / "node_modules" / "livekit-server-sdk").is_dir(),
    reason="livekit-server-sdk is not installed: run `npm ci` in tests/node_api (.ci/run does)",
)
async def test_node_server_sdk_calls_the_room_service(system: System, room_name: str) -> None:
    alice = roomstreams.Room()
    got: asyncio.Queue[roomstreams.DataPacket] = asyncio.Queue()
    alice.on("data_received", got.put_nowait)
    tok = (
        AccessToken(API_KEY, API_SECRET)
        .with_identity("alice")
        .with_name("Alice")
        .with_grants(VideoGrants(room=room_name, room_join=True))
        .to_jwt()
    )
    await alice.connect(system.urls[0], tok)
    try:
        proc = await asyncio.create_subprocess_exec(
            "node",
            "smoke.mjs",
            system.api_url,
            API_KEY,
            API_SECRET,
            room_name,
            cwd=NODE_DIR,
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.PIPE,
        )
        out, err = await asyncio.wait_for(proc.communicate(), 30)
        assert proc.returncode == 0, err.decode()
        res = json.loads(out)
        assert [(r["name"], r["numParticipants"]) for r in res["rooms"]] == [(room_name, 1)]
        assert [(p["identity"], p["name"]) for p in res["participants"]] == [("alice", "Alice")]
        assert res["participants"][0]["sid"].startswith("PA_")
        assert res["updated"] == {"metadata": "from node", "attributes": {"via": "node"}}
        assert res["missing"] == {"code": "not_found", "status": 404}
        packet = await asyncio.wait_for(got.get(), 5)
        assert (packet.payload, packet.topic, packet.participant_identity) == (
            b"hello from node",
            "node",
            "",
        )
    finally:
        await alice.disconnect()
