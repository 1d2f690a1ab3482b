"""The running system for integration tests: a real router and real gateways, each its own
process (``python -m services.router`` / ``python -m services.gateway``), on the session's
real Redis. Tests use unique room names, so one system serves the whole session; tests that
stop, pause or kill processes build their own with ``system_factory``."""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
import time
import urllib.request
import uuid
from collections.abc import AsyncIterator, Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest

import roomstreams
from roomstreams import AccessToken, VideoGrants
from roomstreams._redis_cluster import LocalRedisCluster
from roomstreams._redis_server import free_port
from roomstreams._redisio import sync_client
from roomstreams.protocol.keys import lease_key
from tests.conftest import redis_kinds

#: suites whose tests run on a standalone Redis and on a Redis Cluster (``redis_kind``)
BOTH_REDIS_KINDS = {
    "test_text_streams",
    "test_byte_streams",
    "test_data_packets",
    "test_failover",
    "test_scaling",
    "test_redis_cluster",
}


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    module = metafunc.module.__name__.rsplit(".", 1)[-1]
    if "redis_kind" in metafunc.fixturenames and module in BOTH_REDIS_KINDS:
        metafunc.parametrize("redis_kind", redis_kinds(), indirect=True, scope="session")


ROOT = Path(__file__).resolve().parents[2]
API_KEY = "test-key"
API_SECRET = "test-secret-that-is-long-enough-for-hs256-0123456789"


@dataclass
class System:
    redis_url: str
    env: dict[str, str]
    router: subprocess.Popen[bytes] | None = None
    gateways: list[subprocess.Popen[bytes]] = field(default_factory=list)
    ports: list[int] = field(default_factory=list)
    partitions: int = 16
    #: the Redis Cluster it runs on (None: a standalone server)
    cluster: LocalRedisCluster | None = None

    @property
    def urls(self) -> list[str]:
        return [f"ws://127.0.0.1:{p}" for p in self.ports]

    @property
    def api_url(self) -> str:
        """The router's HTTP port (LiveKit's RoomService over Twirp, health)."""
        return f"http://127.0.0.1:{self.env['ROOMSTREAMS_ROUTER_HTTP_PORT']}"

    def token(
        self,
        room: str,
        identity: str,
        *,
        can_publish_data: bool = True,
        can_subscribe: bool = True,
        room_join: bool = True,
        name: str = "",
    ) -> str:
        grants = VideoGrants(
            room=room,
            room_join=room_join,
            can_publish_data=can_publish_data,
            can_subscribe=can_subscribe,
        )
        t = AccessToken(API_KEY, API_SECRET).with_identity(identity).with_grants(grants)
        if name:
            t = t.with_name(name)
        return t.to_jwt()

    def start_router(self, **env: str) -> subprocess.Popen[bytes]:
        self.router = _spawn("services.router", {**self.env, **env})
        _wait_router(self.redis_url, self.partitions, self.router)
        _wait_ready(f"{self.api_url}/readyz", self.router)
        return self.router

    def start_gateway(self, **env: str) -> int:
        port = free_port()
        proc = _spawn(
            "services.gateway", {**self.env, "ROOMSTREAMS_GATEWAY_PORT": str(port), **env}
        )
        _wait_healthy(port, proc)
        self.gateways.append(proc)
        self.ports.append(port)
        return port

    def stop(self) -> None:
        end_processes(*self.gateways, *([self.router] if self.router else []))


def end_processes(*procs: subprocess.Popen[bytes]) -> None:
    """SIGTERM each (SIGCONT first: it may be stopped), wait, SIGKILL what is left."""
    for p in procs:
        if p.poll() is None:
            p.send_signal(signal.SIGCONT)
            p.terminate()
    for p in procs:
        try:
            p.wait(10)
        except subprocess.TimeoutExpired:
            p.kill()
            p.wait()


def _spawn(module: str, env: dict[str, str]) -> subprocess.Popen[bytes]:
    return subprocess.Popen([sys.executable, "-m", module], env=env, cwd=ROOT)


def _wait_healthy(port: int, proc: subprocess.Popen[bytes], timeout: float = 20) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"gateway exited with {proc.returncode} before becoming healthy")
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{port}/healthz", timeout=1) as resp:
                if resp.status == 200:
                    return
        except OSError:
            time.sleep(0.05)
    raise RuntimeError(f"gateway on port {port} not healthy after {timeout}s")


def _wait_ready(url: str, proc: subprocess.Popen[bytes], timeout: float = 20) -> None:
    """The router's HTTP port answers ``/readyz`` (a standby finds its primary's there)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"router exited with {proc.returncode}")
        try:
            with urllib.request.urlopen(url, timeout=1) as resp:
                if resp.status == 200:
                    return
        except OSError:
            time.sleep(0.05)
    raise RuntimeError(f"{url} not ready after {timeout}s")


def _wait_router(
    url: str, partitions: int, proc: subprocess.Popen[bytes], timeout: float = 20
) -> None:
    """Ready when it holds every partition's lease."""
    r = sync_client(url)
    try:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if proc.poll() is not None:
                raise RuntimeError(f"router exited with {proc.returncode}")
            if all(r.exists(lease_key(p)) for p in range(partitions)):
                return
            time.sleep(0.05)
        raise RuntimeError("router did not take its partitions in time")
    finally:
        r.close()


def make_env(redis_url: str, **extra: str) -> dict[str, str]:
    env = dict(os.environ)
    env.update(
        ROOMSTREAMS_REDIS_URL=redis_url,
        ROOMSTREAMS_API_KEY=API_KEY,
        ROOMSTREAMS_API_SECRET=API_SECRET,
        # the services' log level: WARNING keeps failures readable; RS_TEST_LOG_LEVEL=DEBUG
        # (or INFO) when chasing one
        ROOMSTREAMS_LOG_LEVEL=os.environ.get("RS_TEST_LOG_LEVEL", "WARNING"),
        ROOMSTREAMS_ROUTER_HTTP_PORT=str(free_port()),
        PYTHONPATH=os.pathsep.join([str(ROOT / "shared"), str(ROOT)]),
    )
    env.update(extra)
    return env


@pytest.fixture(scope="session")
def backend(
    redis_kind: str, request: pytest.FixtureRequest
) -> tuple[str, LocalRedisCluster | None]:
    """(URL, cluster) of what the session's systems run on: ``redis_url`` or, for
    ``redis_kind == "cluster"``, the session's Redis Cluster."""
    if redis_kind == "cluster":
        cluster: LocalRedisCluster = request.getfixturevalue("redis_cluster")
        return cluster.url, cluster
    return str(request.getfixturevalue("redis_url")), None


@pytest.fixture(scope="session")
def factory_cluster() -> Iterator[LocalRedisCluster]:
    """A second Redis Cluster for ``system_factory`` (a cluster has no databases to give each
    private system: this one is flushed for each; the session system keeps the other)."""
    from tests.conftest import _cluster_binary

    with LocalRedisCluster(_cluster_binary()) as cluster:
        yield cluster


@pytest.fixture(scope="session")
def system(backend: tuple[str, LocalRedisCluster | None]) -> Iterator[System]:
    """One router and two gateways for the whole session."""
    redis_url, cluster = backend
    sys_ = System(redis_url, make_env(redis_url), cluster=cluster)
    try:
        sys_.start_router()
        sys_.start_gateway()
        sys_.start_gateway()
        yield sys_
    finally:
        sys_.stop()


@pytest.fixture
def system_factory(
    redis_kind: str, request: pytest.FixtureRequest
) -> Iterator[Callable[..., System]]:
    """A private system (own Redis key space is shared; use unique rooms) with settings."""
    made: list[System] = []
    cluster: LocalRedisCluster | None = None
    if redis_kind == "cluster":
        cluster = request.getfixturevalue("factory_cluster")
    else:
        redis_url: str = request.getfixturevalue("redis_url")

    def make(*, gateways: int = 2, router: bool = True, **env: str) -> System:
        # a Redis database of its own, so its router owns its partitions (the session
        # system's router would otherwise hold every lease on the shared key space)
        if cluster is not None:
            if made:
                raise RuntimeError("one system per test on a cluster (it has no databases)")
            cluster.flushall()
            url = cluster.url
        else:
            url = _private_db(redis_url)
        s = System(url, make_env(url, **env), cluster=cluster)
        made.append(s)
        if router:
            s.start_router()
        for _ in range(gateways):
            s.start_gateway()
        return s

    yield make
    for s in made:
        s.stop()


_next_db = iter(range(1, 1_000_000))


def _private_db(url: str) -> str:
    db = next(_next_db) % 15 + 1
    private = url.rsplit("/", 1)[0] + f"/{db}"
    r = sync_client(private)
    try:
        r.flushdb()
    finally:
        r.close()
    return private


@pytest.fixture
def room_name() -> str:
    return f"room-{uuid.uuid4().hex[:12]}"


@pytest.fixture
async def rooms() -> AsyncIterator[list[roomstreams.Room]]:
    """Rooms a test connects; all disconnected at the end."""
    made: list[roomstreams.Room] = []
    yield made
    for r in made:
        await r.disconnect()


Connect = Callable[..., "asyncio.Future[roomstreams.Room]"]


@pytest.fixture
def connect(system: System, rooms: list[roomstreams.Room], room_name: str) -> Callable[..., object]:
    """``await connect("alice", gateway=1, handlers={"chat": h})`` -> a connected Room."""

    async def _connect(
        identity: str,
        *,
        gateway: int = 0,
        room: str | None = None,
        handlers: dict[str, roomstreams.TextStreamHandler] | None = None,
        sys_: System | None = None,
        **grants: bool,
    ) -> roomstreams.Room:
        s = sys_ or system
        r = roomstreams.Room()
        for topic, h in (handlers or {}).items():
            r.register_text_stream_handler(topic, h)
        await r.connect(s.urls[gateway], s.token(room or room_name, identity, **grants))
        rooms.append(r)
        return r

    return _connect
