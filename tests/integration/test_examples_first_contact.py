"""A backend example started without a Redis URL: next to a ``roomstreams up`` it finds that
system by itself (the file ``up`` writes); with nothing there it says so in one line (exit 2).
Real processes: ``roomstreams up`` (its own Redis, router, gateway) and ``examples/agent.py``."""

from __future__ import annotations

import asyncio
import os
import signal
import socket
import stat
import sys
from pathlib import Path

import pytest

import roomstreams
from roomstreams import AccessToken, VideoGrants
from roomstreams._redis_server import free_port
from roomstreams.cli import DEV_API_KEY, DEV_API_SECRET, READY_LINE

pytestmark = pytest.mark.slow

ROOT = Path(__file__).resolve().parents[2]
TIMEOUT = 40.0


def _env(runtime_dir: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("ROOMSTREAMS_")}
    env.update(
        NO_COLOR="1",
        XDG_RUNTIME_DIR=str(runtime_dir),
        PYTHONPATH=os.pathsep.join([str(ROOT / "shared"), str(ROOT)]),
    )
    return env


def _default_redis_answers() -> bool:
    with socket.socket() as s:
        s.settimeout(0.5)
        return s.connect_ex(("127.0.0.1", 6379)) == 0


async def test_agent_without_a_redis_url_or_a_running_up_says_what_to_do(tmp_path: Path) -> None:
    if _default_redis_answers():
        pytest.skip("something listens on 127.0.0.1:6379 here: the agent would use it")
    proc = await asyncio.create_subprocess_exec(
        sys.executable,
        "examples/agent.py",
        env=_env(tmp_path),
        cwd=ROOT,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    _, err = await asyncio.wait_for(proc.communicate(), TIMEOUT)
    lines = [ln for ln in err.decode().splitlines() if ln.strip()]
    assert proc.returncode == 2, lines
    assert "Traceback" not in err.decode()
    assert len(lines) == 1 and lines[0].startswith(
        "error: cannot reach Redis at redis://127.0.0.1:6379"
    )
    assert "roomstreams up" in lines[0] and "ROOMSTREAMS_REDIS_URL" in lines[0]


async def _run_cli(runtime_dir: Path, *args: str) -> str:
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "roomstreams.cli", *args, env=_env(runtime_dir), cwd=ROOT,
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
    )  # fmt: skip
    out, err = await asyncio.wait_for(proc.communicate(), TIMEOUT)
    assert proc.returncode == 0, err.decode()
    return out.decode()


async def _stop(proc: asyncio.subprocess.Process) -> int:
    if proc.returncode is None:
        proc.send_signal(signal.SIGINT)
        try:
            await asyncio.wait_for(proc.wait(), 20)
        except TimeoutError:
            proc.kill()
            await proc.wait()
    assert proc.returncode is not None
    return proc.returncode


async def test_agent_finds_the_system_of_roomstreams_up(tmp_path: Path, room_name: str) -> None:
    port, api_port = free_port(), free_port()
    up = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "roomstreams.cli", "up", "--log-level", "WARNING",
        "--port", str(port), "--api-port", str(api_port),
        env=_env(tmp_path), cwd=ROOT,
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.DEVNULL,
    )  # fmt: skip
    agent: asyncio.subprocess.Process | None = None
    person = roomstreams.Room()
    try:
        assert up.stdout is not None
        summary: list[str] = []
        async with asyncio.timeout(TIMEOUT):
            while READY_LINE not in (line := (await up.stdout.readline()).decode()):
                assert line, "up exited: " + "".join(summary)
                summary.append(line)
        assert any("export ROOMSTREAMS_REDIS_URL=redis://" in ln for ln in summary), summary
        state = tmp_path / "roomstreams" / "up.json"
        assert state.is_file() and stat.S_IMODE(state.stat().st_mode) == 0o600

        replies: asyncio.Queue[tuple[str, str]] = asyncio.Queue()

        async def on_chat(reader: roomstreams.TextStreamReader, identity: str) -> None:
            replies.put_nowait((identity, await reader.read_all()))

        person.register_text_stream_handler("chat", on_chat)
        token = (
            AccessToken(DEV_API_KEY, DEV_API_SECRET)
            .with_identity("alice")
            .with_grants(VideoGrants(room=room_name, room_join=True))
            .to_jwt()
        )
        await person.connect(f"ws://127.0.0.1:{port}", token)
        joined = asyncio.get_running_loop().create_future()
        person.on(
            "participant_connected",
            lambda p: p.identity == "agent" and not joined.done() and joined.set_result(None),
        )
        # no ROOMSTREAMS_* variable at all: it reads what up wrote
        agent = await asyncio.create_subprocess_exec(
            sys.executable, "examples/agent.py", env=_env(tmp_path), cwd=ROOT,
            stdout=asyncio.subprocess.DEVNULL, stderr=asyncio.subprocess.DEVNULL,
        )  # fmt: skip
        await asyncio.wait_for(joined, TIMEOUT)
        await person.local_participant.send_text("hi there", topic="chat")
        assert await asyncio.wait_for(replies.get(), TIMEOUT) == ("agent", "you said: there hi")
        # the CLI finds it too: no --url / --api-url, though up's ports are not the defaults
        rooms = await _run_cli(tmp_path, "rooms", "--json")
        assert room_name in rooms, rooms
        await _run_cli(tmp_path, "send", "--room", room_name, "--identity", "cli", "from the cli")
        while (got := await asyncio.wait_for(replies.get(), TIMEOUT))[0] != "cli":
            pass  # the agent's answers to it may come first
        assert got == ("cli", "from the cli")
    finally:
        await person.disconnect()
        if agent is not None:
            await _stop(agent)
        assert await _stop(up) == 0
    assert not (tmp_path / "roomstreams" / "up.json").exists()
