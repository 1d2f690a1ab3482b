"""Runs the compose topology as local processes, from the rendered compose model, so
compose.yaml cannot drift from what the code accepts: each service's command and
environment come from ``docker-compose config``; service host names map to loopback;
Redis, the router and three gateway replicas run that way, with this suite's TCP balancer
standing in for the ``lb`` service, and a text stream passes between participants on
different replicas."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Iterator
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import pytest

import roomstreams
from roomstreams import AccessToken, VideoGrants
from roomstreams._redis_server import LocalRedisServer, find_redis_server, free_port

from .conftest import ROOT, _wait_healthy, _wait_router
from .helpers import Collector
from .lb import TcpBalancer
from .test_compose_config import API_KEY, API_SECRET, _render

pytestmark = pytest.mark.slow
REPLICAS = 3


@pytest.fixture(scope="module")
def rendered(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    proc = _render(
        tmp_path_factory.mktemp("topology"),
        ROOMSTREAMS_API_KEY=API_KEY,
        ROOMSTREAMS_API_SECRET=API_SECRET,
        ROOMSTREAMS_LOG_LEVEL="WARNING",
    )
    assert proc.returncode == 0, proc.stderr
    model: dict[str, Any] = json.loads(proc.stdout)
    return model


def _local(argv: list[str]) -> list[str]:
    """A container command as a local one: the image's ``python`` is this interpreter."""
    return [sys.executable, *argv[1:]] if argv and argv[0] == "python" else list(argv)


def _loopback(env: dict[str, str], hosts: dict[str, str]) -> dict[str, str]:
    """Replace compose service host names in URLs with their local address."""
    out = {}
    for k, v in env.items():
        parts = urlsplit(v) if "://" in v else None
        if parts is not None and parts.hostname in hosts:
            netloc = hosts[parts.hostname]
            v = urlunsplit(parts._replace(netloc=netloc))
        out[k] = v
    return out


@pytest.fixture
def topology(rendered: dict[str, Any]) -> Iterator[tuple[list[int], dict[str, str]]]:
    svcs = rendered["services"]
    # redis: the compose command, run with the local binary on a free port
    redis_cmd = svcs["redis"]["command"]
    assert redis_cmd[0] == "redis-server"
    redis_args = redis_cmd[1:]
    procs: list[subprocess.Popen[bytes]] = []
    with LocalRedisServer(find_redis_server(), extra_args=redis_args) as redis:
        hosts = {"redis": f"127.0.0.1:{redis.port}"}
        base = dict(os.environ)
        base["PYTHONPATH"] = os.pathsep.join([str(ROOT / "shared"), str(ROOT)])
        try:
            router_env = _loopback(svcs["router"]["environment"], hosts)
            router = subprocess.Popen(
                _local(svcs["router"]["command"]), env={**base, **router_env}, cwd=ROOT
            )
            procs.append(router)
            _wait_router(router_env["ROOMSTREAMS_REDIS_URL"], 16, router)
            ports = []
            for _ in range(REPLICAS):
                gw_env = _loopback(svcs["gateway"]["environment"], hosts)
                # each replica is its own host in compose; here they share loopback, so
                # the container port (7880) becomes a free port and the bind address local
                assert gw_env["ROOMSTREAMS_GATEWAY_PORT"] == "7880"
                port = free_port()
                gw_env.update(
                    ROOMSTREAMS_GATEWAY_PORT=str(port), ROOMSTREAMS_GATEWAY_HOST="127.0.0.1"
                )
                gw = subprocess.Popen(
                    _local(svcs["gateway"]["command"]), env={**base, **gw_env}, cwd=ROOT
                )
                procs.append(gw)
                _wait_healthy(port, gw)
                ports.append(port)
            yield ports, router_env
        finally:
            for p in procs:
                p.terminate()
            for p in procs:
                try:
                    p.wait(10)
                except subprocess.TimeoutExpired:
                    p.kill()


async def test_compose_topology_passes_a_stream_between_replicas(
    topology: tuple[list[int], dict[str, str]], room_name: str
) -> None:
    ports, env = topology
    key, secret = env["ROOMSTREAMS_API_KEY"], env["ROOMSTREAMS_API_SECRET"]

    def token(identity: str) -> str:
        grants = VideoGrants(room=room_name, room_join=True)
        return AccessToken(key, secret).with_identity(identity).with_grants(grants).to_jwt()

    async with TcpBalancer(ports) as lb:
        col = Collector()
        bob = roomstreams.Room()
        bob.register_text_stream_handler("chat", col)
        await bob.connect(lb.url, token("bob"))
        alice = roomstreams.Room()
        await alice.connect(lb.url, token("alice"))
        assert lb.chosen[0] != lb.chosen[1]  # different replicas
        info = await alice.local_participant.send_text("through compose", topic="chat")
        rec = await col.wait_done(info.stream_id)
        assert rec.text == "through compose" and rec.identity == "alice"
        await alice.disconnect()
        await bob.disconnect()
