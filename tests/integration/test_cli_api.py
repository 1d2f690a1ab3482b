"""``roomstreams rooms`` / ``roomstreams participants``: the server API (LiveKit's RoomService
over Twirp on the router's HTTP port) from a shell, as real processes against the real system."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

import roomstreams
from roomstreams import AccessToken, VideoGrants
from roomstreams._redis_server import free_port

from .conftest import API_KEY, API_SECRET, System

pytestmark = pytest.mark.slow

ROOT = Path(__file__).resolve().parents[2]


def _cli(*args: str) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("ROOMSTREAMS_")}
    env.update(
        NO_COLOR="1",
        PYTHONPATH=os.pathsep.join([str(ROOT / "shared"), str(ROOT)]),
        ROOMSTREAMS_API_KEY=API_KEY,
        ROOMSTREAMS_API_SECRET=API_SECRET,
    )
    return subprocess.run(
        [sys.executable, "-m", "roomstreams.cli", *args],
        capture_output=True,
        text=True,
        env=env,
        cwd=ROOT,
        timeout=30,
    )


async def test_rooms_and_participants_commands(system: System, room_name: str) -> None:
    alice = roomstreams.Room()
    tok = (
        AccessToken(API_KEY, API_SECRET)
        .with_identity("alice")
        .with_name("Alice")
        .with_attributes({"role": "host"})
        .with_grants(VideoGrants(room=room_name, room_join=True))
        .to_jwt()
    )
    await alice.connect(system.urls[0], tok)
    try:
        out = _cli("rooms", "--api-url", system.api_url)
        assert out.returncode == 0, out.stderr
        lines = out.stdout.splitlines()
        assert lines[0].split() == ["ROOM", "PARTICIPANTS", "CREATED"]
        mine = [ln.split() for ln in lines if ln.startswith(room_name + " ")]
        assert mine and mine[0][1] == "1"

        # LiveKit's SDKs take ws:// for the API host too
        as_ws = system.api_url.replace("http://", "ws://")
        out = _cli("rooms", "--json", "--api-url", as_ws)
        assert out.returncode == 0, out.stderr
        rows = {d["name"]: d for d in map(json.loads, out.stdout.splitlines())}
        assert rows[room_name]["num_participants"] == 1

        out = _cli("participants", "--room", room_name, "--api-url", system.api_url)
        assert out.returncode == 0, out.stderr
        assert out.stdout.splitlines()[1].split() == ["alice", "Alice", "role=host"]
        out = _cli("participants", "--room", room_name, "--json", "--api-url", system.api_url)
        (only,) = [json.loads(ln) for ln in out.stdout.splitlines()]
        assert (only["identity"], only["name"], only["attributes"]) == (
            "alice",
            "Alice",
            {"role": "host"},
        )
        out = _cli(
            "participants", "--room", "nobody-here-" + room_name, "--api-url", system.api_url
        )
        assert out.returncode == 0 and out.stdout == "" and "nobody in room" in out.stderr
    finally:
        await alice.disconnect()


def test_rooms_command_errors_are_one_line() -> None:
    out = _cli("rooms", "--api-url", f"http://127.0.0.1:{free_port()}")
    assert out.returncode != 0
    assert "could not reach the server API" in out.stderr
    assert "Traceback" not in out.stderr and len(out.stderr.strip().splitlines()) == 1
