"""First contact with the ``roomstreams`` command (issue 13): every newcomer mistake gets one
line saying what is wrong and what to do, exit code 2, no traceback, never the token; ``listen``
and ``send`` pick unique identities and say which; a ``send`` cut by Ctrl-C ends its stream
with a reason a person understands. Real processes, against the real system."""

from __future__ import annotations

import asyncio
import os
import re
import signal
import subprocess
import sys
from pathlib import Path

import pytest

import roomstreams
from roomstreams._redis_server import free_port
from roomstreams.cli import INTERRUPTED_REASON

from .conftest import API_KEY, API_SECRET, System

pytestmark = pytest.mark.slow

ROOT = Path(__file__).resolve().parents[2]
CLI = [sys.executable, "-m", "roomstreams.cli"]


def _env() -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("ROOMSTREAMS_")}
    env.update(
        NO_COLOR="1",
        ROOMSTREAMS_API_KEY=API_KEY,
        ROOMSTREAMS_API_SECRET=API_SECRET,
        PYTHONPATH=os.pathsep.join([str(ROOT / "shared"), str(ROOT)]),
    )
    return env


def _cli(*args: str, stdin: str = "") -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [*CLI, *args], input=stdin, capture_output=True, text=True, env=_env(), cwd=ROOT, timeout=30
    )


def _one_line_error(out: subprocess.CompletedProcess[str], *needles: str) -> str:
    assert out.returncode == 2, (out.returncode, out.stderr)
    assert "Traceback" not in out.stderr
    lines = [ln for ln in out.stderr.splitlines() if ln.strip()]
    errors = [ln for ln in lines if ln.startswith("error: ")]
    assert len(errors) == 1, out.stderr
    for needle in needles:
        assert needle in errors[0], errors[0]
    assert "eyJ" not in out.stderr, "a token (JWT) was printed"
    return errors[0]


@pytest.mark.parametrize(
    ("args", "needles"),
    [
        (["up", "--log-level", "loud"], ["'loud' is not a log level", "INFO"]),
        (["up", "--port", "70000"], ["--port", "65535", "roomstreams up --help"]),
        (["up", "--port", "65535", "--gateways", "2"], ["lower --port"]),
        (["up", "--api-port", "0"], ["--api-port"]),
        (["send", "--room", "r", "--url", "localhost:7880", "hi"], ["not a gateway URL", "ws://"]),
        (["listen", "--room", "r", "--url", "ws://h:99999"], ["port"]),
        (["send", "--room", "r", "--identity", "", "hi"], ["--identity must not be empty"]),
        (["listen", "--room", "r", "--identity", " "], ["--identity must not be empty"]),
        (["token", "--room", "r", "--identity", ""], ["--identity must not be empty"]),
        (["send", "hi"], ["Missing option '--room'", "roomstreams send --help"]),
        (["no-such-command"], ["No such command"]),
    ],
)
def test_usage_mistakes_are_one_line(args: list[str], needles: list[str]) -> None:
    _one_line_error(_cli(*args), *needles)


def test_unreachable_things_are_one_line_without_the_token() -> None:
    nowhere = free_port()
    _one_line_error(
        _cli("up", "--redis-url", f"redis://:hunter2@127.0.0.1:{nowhere}/0"),
        "cannot reach Redis",
        ":***@",
        "leave out --redis-url",
    )
    assert (
        "hunter2" not in _cli("up", "--redis-url", f"redis://:hunter2@127.0.0.1:{nowhere}/0").stderr
    )
    # http:// is taken for ws:// (as LiveKit's SDKs do); the token never shows
    for url in (f"http://127.0.0.1:{nowhere}", f"ws://127.0.0.1:{nowhere}"):
        _one_line_error(
            _cli("send", "--room", "r", "--url", url, "--create", "hi"), "roomstreams up"
        )
        _one_line_error(_cli("listen", "--room", "r", "--url", url), "roomstreams up")
    _one_line_error(_cli("rooms", "--api-url", f"http://127.0.0.1:{nowhere}"), "--api-url")


def test_version() -> None:
    import roomstreams as pkg

    out = _cli("--version")
    assert (out.returncode, out.stdout.strip()) == (0, f"roomstreams {pkg.__version__}")


def test_license_file_matches_pyproject() -> None:
    text = (ROOT / "LICENSE").read_text()
    assert "Apache License" in text and "Version 2.0, January 2004" in text
    assert 'license = "Apache-2.0"' in (ROOT / "pyproject.toml").read_text()


async def test_http_url_and_unique_default_identities(system: System, room_name: str) -> None:
    got: asyncio.Queue[tuple[str, str]] = asyncio.Queue()

    async def on_chat(reader: roomstreams.TextStreamReader, identity: str) -> None:
        got.put_nowait((identity, await reader.read_all()))

    bob = roomstreams.Room()
    bob.register_text_stream_handler("chat", on_chat)
    await bob.connect(system.urls[0], system.token(room_name, "bob"))
    try:
        http_url = system.urls[1].replace("ws://", "http://")
        said = []
        for _ in range(2):
            out = await asyncio.to_thread(
                _cli, "send", "--room", room_name, "--url", http_url, "hello"
            )
            assert out.returncode == 0, out.stderr
            m = re.search(r"sender identity: (sender-[0-9a-f]{4})", out.stderr)
            assert m, out.stderr
            said.append(m.group(1))
        seen = [await asyncio.wait_for(got.get(), 10) for _ in range(2)]
        assert seen == [(said[0], "hello"), (said[1], "hello")]
        assert said[0] != said[1] or pytest.skip("the two random identities collided (1/65536)")
    finally:
        await bob.disconnect()


async def test_ctrl_c_in_send_gives_receivers_a_readable_reason(
    system: System, room_name: str
) -> None:
    chunks: asyncio.Queue[str] = asyncio.Queue()
    ended: asyncio.Future[roomstreams.StreamAborted] = asyncio.get_running_loop().create_future()

    async def on_chat(reader: roomstreams.TextStreamReader, identity: str) -> None:
        try:
            async for chunk in reader:
                chunks.put_nowait(chunk)
        except roomstreams.StreamAborted as exc:
            ended.set_result(exc)

    bob = roomstreams.Room()
    bob.register_text_stream_handler("chat", on_chat)
    await bob.connect(system.urls[0], system.token(room_name, "bob"))
    proc = await asyncio.create_subprocess_exec(
        *CLI,
        "send",
        "--room",
        room_name,
        "--url",
        system.urls[1],
        stdin=asyncio.subprocess.PIPE,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
        env=_env(),
        cwd=ROOT,
    )
    try:
        assert proc.stdin is not None
        proc.stdin.write(b"the first half of a long ")
        await proc.stdin.drain()
        assert await asyncio.wait_for(chunks.get(), 15) == "the first half of a long "
        proc.send_signal(signal.SIGINT)  # Ctrl-C
        exc = await asyncio.wait_for(ended, 15)
        assert exc.reason == INTERRUPTED_REASON, exc.reason
        assert "CancelledError" not in exc.reason
        _, err = await asyncio.wait_for(proc.communicate(), 15)
        assert proc.returncode == 130
        assert "Traceback" not in err.decode()
        assert "interrupted: the stream was ended for its receivers" in err.decode()
    finally:
        if proc.returncode is None:
            proc.kill()
            await proc.wait()
        await bob.disconnect()
