"""Structured logs: ``ROOMSTREAMS_LOG_FORMAT=json`` makes every line a service writes on
stderr one JSON object, with the ids passed in ``extra`` as fields; startup is quiet at INFO
(one line for the router's partitions, not one per partition)."""

from __future__ import annotations

import json
import logging
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any

import pytest

import roomstreams
from roomstreams._logging import TextFormatter
from roomstreams._redis_server import free_port
from tests.integration.conftest import (
    ROOT,
    System,
    _private_db,
    _wait_healthy,
    _wait_ready,
    _wait_router,
    end_processes,
    make_env,
)


def _spawn(module: str, env: dict[str, str], err: IO[bytes]) -> subprocess.Popen[bytes]:
    return subprocess.Popen([sys.executable, "-m", module], env=env, cwd=ROOT, stderr=err)


def _records(path: Path) -> list[dict[str, Any]]:
    lines = path.read_text().splitlines()
    assert lines, f"{path.name} is empty"
    out = []
    for line in lines:
        try:
            rec = json.loads(line)
        except ValueError:
            pytest.fail(f"{path.name}: not a JSON line: {line!r}")
        assert isinstance(rec, dict) and {"time", "level", "logger", "message"} <= rec.keys(), line
        out.append(rec)
    return out


@dataclass
class JsonSystem:
    system: System
    logs: dict[str, Path]
    procs: list[subprocess.Popen[bytes]] = field(default_factory=list)

    def stop(self) -> dict[str, list[dict[str, Any]]]:
        """Stop the services (SIGTERM: they drain and exit) and parse what they wrote."""
        end_processes(*self.procs)
        return {name: _records(path) for name, path in self.logs.items()}


@pytest.fixture
def json_system(redis_url: str, tmp_path: Path) -> Iterator[JsonSystem]:
    url = _private_db(redis_url)
    env = make_env(url, ROOMSTREAMS_LOG_FORMAT="json", ROOMSTREAMS_LOG_LEVEL="INFO")
    s = JsonSystem(System(url, env), {"router": tmp_path / "r.log", "gateway": tmp_path / "g.log"})
    with s.logs["router"].open("wb") as rerr, s.logs["gateway"].open("wb") as gerr:
        try:
            router = _spawn("services.router", env, rerr)
            s.procs.append(router)
            _wait_router(url, s.system.partitions, router)
            _wait_ready(f"{s.system.api_url}/readyz", router)
            port = free_port()
            # a low frame rate, so that a short burst gets a connection's own log line
            gw_env = {**env, "ROOMSTREAMS_GATEWAY_PORT": str(port)}
            gw_env["ROOMSTREAMS_MAX_FRAMES_PER_SECOND"] = "20"
            # throttled at half of it (not a tenth): the burst is read in well under the
            # 5 s after which a throttled connection is closed
            gw_env["ROOMSTREAMS_FLOOD_PENALTY"] = "0.5"
            gw = _spawn("services.gateway", gw_env, gerr)
            s.procs.append(gw)
            _wait_healthy(port, gw)
            s.system.ports.append(port)
            yield s
        finally:
            end_processes(*s.procs)


async def test_json_lines_carry_session_room_and_identity(
    json_system: JsonSystem, room_name: str
) -> None:
    system = json_system.system
    async with roomstreams.Room() as room:
        await room.connect(system.urls[0], system.token(room_name, "alice"))
        for _ in range(30):  # over 20 frames/s: the gateway throttles this connection
            await room.local_participant.publish_data(b"x", reliable=False)
        await room.local_participant.publish_data(b"x")  # acked: every frame before was read
    logs = json_system.stop()  # every line of both services parsed as JSON

    gw = logs["gateway"]
    connected = [r for r in gw if r["message"].startswith("connected ")]
    assert len(connected) == 1, gw
    line = connected[0]
    assert line["level"] == "INFO" and line["logger"] == "gateway.server"
    assert line["room"] == room_name and line["identity"] == "alice"
    assert line["session"] and line["session"] in line["message"]
    left = [r for r in gw if r["message"].startswith("disconnected ")]
    assert [r["session"] for r in left] == [line["session"]]
    assert [r["room"] for r in left] == [room_name]
    throttled = [r for r in gw if r["message"] == "throttling a connection over its rate"]
    assert throttled, gw  # a connection's own line (gateway.connection) has the ids too
    assert throttled[0]["logger"] == "gateway.connection"
    assert (throttled[0]["session"], throttled[0]["room"], throttled[0]["identity"]) == (
        line["session"],
        room_name,
        "alice",
    )

    # startup at INFO: one line for the partitions, none per partition
    router = logs["router"]
    owned = [r for r in router if "partition" in r["message"] and "owned" in r["message"]]
    assert owned == [], owned
    summary = [r for r in router if "owns" in r["message"] and "partitions" in r["message"]]
    assert len(summary) == 1, router
    assert f"owns {system.partitions} partitions" in summary[0]["message"]


def test_text_format_shows_the_context_keys() -> None:
    rec = logging.makeLogRecord(
        {"msg": "send queue full", "levelname": "WARNING", "name": "gateway.connection"}
    )
    rec.__dict__.update(session="s1", room="demo")
    assert TextFormatter().format(rec).endswith("send queue full [session=s1 room=demo]")


@pytest.mark.parametrize(
    "argv",
    [["-m", "roomstreams.cli", "up"], ["-m", "services.gateway"], ["-m", "services.router"]],
)
def test_an_unknown_log_format_is_one_line_and_exit_2(argv: list[str]) -> None:
    env = make_env("redis://127.0.0.1:1/0", ROOMSTREAMS_LOG_FORMAT="yaml")
    proc = subprocess.run(
        [sys.executable, *argv], env=env, cwd=ROOT, capture_output=True, text=True, timeout=30
    )
    assert proc.returncode == 2, proc.stderr
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1, lines
    assert "ROOMSTREAMS_LOG_FORMAT='yaml' is not a log format: use text or json" in lines[0]
