"""The ``roomstreams`` command, run as a real process: ``token``, ``--help`` and ``up`` (a
real local Redis or the test Redis, a real router and real gateways)."""

from __future__ import annotations

import asyncio
import os
import queue
import re
import signal
import socket
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Protocol
from urllib.parse import urlsplit

import jwt
import psutil
import pytest
import redis

import roomstreams
from roomstreams import AccessToken, VideoGrants, verify_token
from roomstreams._redis_server import free_port
from roomstreams.cli import DEV_API_KEY, DEV_API_SECRET, READY_LINE

ROOT = Path(__file__).resolve().parents[2]
CLI = [sys.executable, "-m", "roomstreams.cli"]  # what the console script runs: cli.main()
SECRET = "cli-test-secret-that-is-long-enough-for-hs256-0123456789"
_ANSI = re.compile(r"\x1b\[[0-9;]*m")


def _env(**extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("ROOMSTREAMS_API_")}
    env.update(
        NO_COLOR="1",
        PYTHONPATH=os.pathsep.join([str(ROOT / "shared"), str(ROOT)]),
    )
    env.update(extra)
    return env


def _cli(*args: str, **env: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [*CLI, *args], capture_output=True, text=True, env=_env(**env), cwd=ROOT, timeout=30
    )


def _port_is_free(port: int) -> bool:
    """Nobody listens on 127.0.0.1:port (SO_REUSEADDR: TIME_WAIT leftovers don't count)."""
    with socket.socket() as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind(("127.0.0.1", port))
        except OSError:
            return False
    return True


def _free_port_pair() -> int:
    """A port ``base`` such that base and base + 1 are both free (right now)."""
    for _ in range(100):
        base = free_port()
        if base < 65535 and _port_is_free(base + 1):
            return base
    raise RuntimeError("no two consecutive free ports found")


# -- token ----------------------------------------------------------------------------------


def test_token_verifies_with_given_key_and_secret() -> None:
    result = _cli(
        "token", "--room", "lobby", "--identity", "alice", "--name", "Alice",
        "--ttl-minutes", "5", "--api-key", "k1", "--api-secret", SECRET, "--no-publish",
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    token = result.stdout.strip()
    assert "\n" not in token  # only the token on stdout: usable as TOKEN=$(roomstreams token ..)
    claims = verify_token(token, "k1", SECRET)
    assert claims.identity == "alice"
    assert claims.name == "Alice"
    assert claims.video.room == "lobby"
    assert claims.video.room_join
    assert not claims.video.can_publish_data
    assert claims.video.can_subscribe
    raw = jwt.decode(token, options={"verify_signature": False})
    assert raw["exp"] - raw["nbf"] == 5 * 60


def test_token_defaults_to_dev_credentials_and_env_overrides_them() -> None:
    default = _cli("token", "--room", "r1", "--identity", "bob", "--no-subscribe")
    assert default.returncode == 0, default.stderr
    claims = verify_token(default.stdout.strip(), DEV_API_KEY, DEV_API_SECRET)
    assert (claims.identity, claims.video.room) == ("bob", "r1")
    assert claims.video.can_publish_data
    assert not claims.video.can_subscribe
    raw = jwt.decode(default.stdout.strip(), options={"verify_signature": False})
    assert raw["exp"] - raw["nbf"] == 360 * 60

    env = {"ROOMSTREAMS_API_KEY": "envkey", "ROOMSTREAMS_API_SECRET": SECRET}
    overridden = _cli("token", "--room", "r2", "--identity", "carol", **env)
    assert overridden.returncode == 0, overridden.stderr
    claims = verify_token(overridden.stdout.strip(), "envkey", SECRET)
    assert (claims.identity, claims.video.room) == ("carol", "r2")


def test_help_lists_commands() -> None:
    result = _cli("--help", COLUMNS="120")
    assert result.returncode == 0, result.stderr
    for command in ("up", "token", "bench"):
        assert re.search(rf"^\W*{command}\s", result.stdout, re.MULTILINE), result.stdout


# -- up -------------------------------------------------------------------------------------


@dataclass
class Summary:
    """What ``roomstreams up`` printed before its ready line."""

    gateway_urls: list[str]
    redis_url: str
    api_key: str
    api_secret: str

    @classmethod
    def parse(cls, lines: list[str]) -> Summary:
        def value(label: str) -> str:
            for line in lines:
                if m := re.match(rf"\s*{label}\s+(\S+)", line):
                    return m.group(1)
            raise AssertionError(f"no {label!r} line in:\n" + "".join(lines))

        gateways = [m.group(1) for ln in lines if (m := re.match(r"\s*gateway \d+\s+(\S+)", ln))]
        return cls(gateways, value("redis"), value("api key"), value("api secret"))


class UpProcess:
    """``roomstreams up ...`` as a subprocess; stdout read line by line by a thread."""

    def __init__(self, args: list[str], stderr: IO[bytes]) -> None:
        self.stderr = stderr
        if "--api-port" not in args:  # the router's HTTP port: 7890 may be someone else's
            args = ["--api-port", str(free_port()), *args]
        self.proc = subprocess.Popen(
            [*CLI, "up", "--log-level", "WARNING", *args],
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=stderr,
            text=True,
            env=_env(),
            cwd=ROOT,
        )
        self.output: list[str] = []
        self._lines: queue.Queue[str | None] = queue.Queue()
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()

    def _read(self) -> None:
        assert self.proc.stdout is not None
        for line in self.proc.stdout:
            self._lines.put(_ANSI.sub("", line))
        self._lines.put(None)

    def diagnostics(self) -> str:
        self.stderr.flush()
        err = Path(self.stderr.name).read_text(errors="replace")[-4000:]
        return "stdout:\n" + "".join(self.output) + "\nstderr (tail):\n" + err

    def wait_ready(self, timeout: float = 40.0) -> Summary:
        """Read stdout until the ready line; fail on EOF or after ``timeout`` seconds."""
        deadline = time.monotonic() + timeout
        while True:
            try:
                line = self._lines.get(timeout=max(0.0, deadline - time.monotonic()))
            except queue.Empty:
                raise AssertionError(f"not ready after {timeout}s\n{self.diagnostics()}") from None
            if line is None:
                raise AssertionError(f"'up' exited before ready\n{self.diagnostics()}")
            self.output.append(line)
            if line.strip() == READY_LINE:
                return Summary.parse(self.output)

    def children(self) -> list[psutil.Process]:
        return list(psutil.Process(self.proc.pid).children(recursive=True))

    def stop(self, sig: signal.Signals = signal.SIGINT, timeout: float = 30.0) -> int:
        self.proc.send_signal(sig)
        return self.proc.wait(timeout)

    def close(self) -> None:
        if self.proc.poll() is None:  # a failed test: don't leave the system running
            for child in self.children():
                child.kill()
            self.proc.kill()
        self.proc.wait()
        self._reader.join(5)
        assert self.proc.stdout is not None
        self.proc.stdout.close()


class StartUp(Protocol):
    def __call__(self, *args: str) -> UpProcess: ...


@pytest.fixture
def start_up(tmp_path: Path) -> Iterator[StartUp]:
    started: list[UpProcess] = []
    logs: list[IO[bytes]] = []

    def start(*args: str) -> UpProcess:
        log = open(tmp_path / f"up-{len(logs)}.stderr", "wb")
        logs.append(log)
        up = UpProcess(list(args), log)
        started.append(up)
        return up

    yield start
    for up in started:
        up.close()
    for log in logs:
        log.close()


def _kind(p: psutil.Process) -> str:
    cmdline = " ".join(p.cmdline())
    for kind in ("services.router", "services.gateway", "redis-server", "valkey-server"):
        if kind in cmdline or kind in p.name():
            return kind.removeprefix("services.").replace("valkey", "redis")
    return cmdline


def _token(summary: Summary, room: str, identity: str) -> str:
    return (
        AccessToken(summary.api_key, summary.api_secret)
        .with_identity(identity)
        .with_grants(VideoGrants(room=room, room_join=True))
        .to_jwt()
    )


async def test_up_runs_a_system_and_stops_cleanly_on_sigint(start_up: StartUp) -> None:
    base = _free_port_pair()
    up = start_up("--gateways", "2", "--port", str(base))
    summary = await asyncio.to_thread(up.wait_ready)

    assert summary.gateway_urls == [f"ws://127.0.0.1:{base}", f"ws://127.0.0.1:{base + 1}"]
    assert (summary.api_key, summary.api_secret) == (DEV_API_KEY, DEV_API_SECRET)
    redis_port = urlsplit(summary.redis_url).port
    assert redis_port is not None
    children = up.children()
    assert sorted(_kind(p) for p in children) == ["gateway", "gateway", "redis-server", "router"]

    # A text stream from a participant on gateway 0 to one on gateway 1.
    room = f"cli-{uuid.uuid4().hex[:12]}"
    received: asyncio.Future[tuple[str, str]] = asyncio.get_running_loop().create_future()

    async def on_text(reader: roomstreams.TextStreamReader, identity: str) -> None:
        received.set_result((identity, await reader.read_all()))

    bob, alice = roomstreams.Room(), roomstreams.Room()
    bob.register_text_stream_handler("chat", on_text)
    try:
        await bob.connect(summary.gateway_urls[1], _token(summary, room, "bob"))
        await alice.connect(summary.gateway_urls[0], _token(summary, room, "alice"))
        await alice.local_participant.send_text("hello from the other gateway", topic="chat")
        assert await asyncio.wait_for(received, 10) == ("alice", "hello from the other gateway")
    finally:
        await alice.disconnect()
        await bob.disconnect()

    assert await asyncio.to_thread(up.stop, signal.SIGINT) == 0
    _, alive = psutil.wait_procs(children, timeout=5)
    assert alive == []
    for port in (base, base + 1, redis_port):
        assert _port_is_free(port), f"port {port} still in use"


def test_up_with_redis_url_starts_no_redis(start_up: StartUp, redis_url: str) -> None:
    base = free_port()
    up = start_up("--redis-url", redis_url, "--port", str(base))
    summary = up.wait_ready()

    assert summary.redis_url == redis_url
    assert summary.gateway_urls == [f"ws://127.0.0.1:{base}"]
    children = up.children()
    assert sorted(_kind(p) for p in children) == ["gateway", "router"]

    assert up.stop(signal.SIGTERM) == 0
    _, alive = psutil.wait_procs(children, timeout=5)
    assert alive == []
    assert _port_is_free(base)
    client = redis.Redis.from_url(redis_url)
    try:
        assert client.ping()  # the external Redis is left alone
    finally:
        client.close()


def test_up_stops_everything_when_a_child_dies(start_up: StartUp) -> None:
    up = start_up("--gateways", "2", "--port", str(_free_port_pair()))
    up.wait_ready()
    children = up.children()
    gateway = next(p for p in children if _kind(p) == "gateway")

    gateway.kill()
    assert up.proc.wait(30) == 1
    _, alive = psutil.wait_procs(children, timeout=5)
    assert alive == []
    assert "exited unexpectedly" in up.diagnostics()


def test_nothing_outlives_up_when_it_is_killed(start_up: StartUp) -> None:
    """SIGKILL gives `up` no chance to stop its children: the kernel does (parent-death
    signal), so no Redis, router or gateway is left running."""
    up = start_up("--gateways", "2", "--port", str(_free_port_pair()))
    up.wait_ready()
    children = up.children()
    assert {_kind(p) for p in children} == {"redis-server", "router", "gateway"}
    up.proc.kill()
    up.proc.wait()
    _, alive = psutil.wait_procs(children, timeout=10)
    assert alive == []
