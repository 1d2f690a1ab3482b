"""The system under test, started by the benchmark itself: a private Redis-compatible
server (or, ``redis="cluster"``, a private three-master Redis Cluster), one router (or
``routers`` of them, sharing the partitions) and two gateways, each its own process, all on
127.0.0.1.

Nothing here reads ``ROOMSTREAMS_*`` settings from the caller's environment: they are
removed from the children's environment and replaced, so a benchmark can never reach a
deployment that the shell happens to point at.
"""

from __future__ import annotations

import contextlib
import ctypes
import importlib.util
import json
import os
import secrets
import signal
import subprocess
import sys
import time
import urllib.request
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any

import psutil
import redis

from .._redis_cluster import LocalRedisCluster
from .._redis_server import LocalRedisServer, free_port
from .._redisio import sync_client
from ..protocol.keys import lease_key
from ..token import AccessToken, VideoGrants

__all__ = ["HOST", "REDIS_KINDS", "BenchSystem", "Service", "repo_root", "rss_bytes"]

HOST = "127.0.0.1"
API_KEY = "bench-key"
PARTITIONS = 16
_READY_TIMEOUT = 30.0
_STOP_TIMEOUT = 10.0
#: what ``BenchSystem(redis=...)`` can start
REDIS_KINDS = ("standalone", "cluster")


def repo_root() -> Path | None:
    """The checkout holding ``services/`` (the router and gateway packages), if found."""
    spec = importlib.util.find_spec("services")
    if spec is None or not spec.submodule_search_locations:
        return None
    return Path(next(iter(spec.submodule_search_locations))).resolve().parent


def rss_bytes(pid: int) -> int:
    """Resident set size of a process, in bytes (0 if it is gone)."""
    try:
        return int(psutil.Process(pid).memory_info().rss)
    except (psutil.NoSuchProcess, psutil.AccessDenied, psutil.ZombieProcess):
        return 0


def _die_with_parent() -> None:  # pragma: no cover - runs in the child before exec
    """Linux: SIGTERM this child when the benchmark process dies, so no service outlives it."""
    if sys.platform.startswith("linux"):
        with contextlib.suppress(Exception):
            ctypes.CDLL(None).prctl(1, signal.SIGTERM)  # PR_SET_PDEATHSIG


def _child_stdout() -> int | IO[Any]:
    """Children must not write to our stdout (it carries the one JSON document)."""
    try:
        return sys.stderr.fileno()
    except (AttributeError, OSError, ValueError):
        return subprocess.DEVNULL


#: the caller's settings that reach the services (A/B runs)
_PASSED_THROUGH = frozenset({"ROOMSTREAMS_EVENT_LOOP", "ROOMSTREAMS_RESUME_WINDOW"})


@dataclass
class Service:
    name: str
    proc: subprocess.Popen[bytes]
    port: int = 0

    @property
    def pid(self) -> int:
        return self.proc.pid

    @property
    def url(self) -> str:
        return f"ws://{HOST}:{self.port}"


def _stop_procs(procs: Sequence[subprocess.Popen[bytes]]) -> None:
    """SIGTERM, then SIGKILL whatever has not exited ``_STOP_TIMEOUT`` seconds later."""
    for p in procs:
        if p.poll() is None:
            with contextlib.suppress(OSError):
                p.terminate()
    deadline = time.monotonic() + _STOP_TIMEOUT
    for p in procs:
        try:
            p.wait(max(0.1, deadline - time.monotonic()))
        except subprocess.TimeoutExpired:
            print(
                f"bench: {p.args!r} (pid {p.pid}) still running "
                f"{_STOP_TIMEOUT:g} s after SIGTERM; killing it",
                file=sys.stderr,
                flush=True,
            )
            p.kill()
            p.wait()


#: the routers' counters :meth:`BenchSystem.router_counters` reads
_ROUTER_COUNTERS = ("leases_lost", "takeovers", "partitions_acquired")


@dataclass
class BenchSystem:
    """Redis + router + ``gateways`` gateways. ``start()`` blocks until all are ready;
    ``stop()`` is idempotent and always safe to call (also after a failed start).

    ``launcher`` is put before ``-m services.<name>`` (default: this interpreter), e.g. to
    run a service under a profiler by hand."""

    gateways: int = 2
    log_level: str = "WARNING"
    launcher: Sequence[str] = field(default_factory=lambda: [sys.executable])
    api_secret: str = field(default_factory=lambda: secrets.token_hex(32))
    redis_server: LocalRedisServer | None = None
    router: Service | None = None
    gateway_services: list[Service] = field(default_factory=list)
    #: extra settings for the gateways (the runner lifts the per-connection flood limits,
    #: so that the throughput workloads measure the engine, not the default limits)
    gateway_env: dict[str, str] = field(default_factory=dict)
    #: routers to run: the first takes every partition, each later one its share of them
    routers: int = 1
    #: ``"standalone"`` (one server) or ``"cluster"`` (a local three-master Redis Cluster)
    redis: str = "standalone"
    redis_cluster: LocalRedisCluster | None = None
    #: the routers after the first (``router`` stays the first, for the workloads)
    more_routers: list[Service] = field(default_factory=list)

    # -- lifecycle --------------------------------------------------------------------------

    def start(self) -> BenchSystem:
        if self.redis not in REDIS_KINDS:
            raise ValueError(f"redis must be one of {', '.join(REDIS_KINDS)}, not {self.redis!r}")
        if self.redis == "cluster":
            self.redis_cluster = LocalRedisCluster().start()
        else:
            self.redis_server = LocalRedisServer().start()
        self.router = self._start_router("router")
        self._wait_router(self.router)
        for i in range(1, self.routers):
            self.more_routers.append(self._start_router(f"router{i}"))
        if self.routers > 1:
            self._wait_shared()
        for _ in range(self.gateways):
            self.gateway_services.append(self._start_gateway(len(self.gateway_services)))
        return self

    def stop(self) -> None:
        procs = [g.proc for g in self.gateway_services]
        self.gateway_services = []
        _stop_procs(procs)  # gateways first: they append their participants' leaves
        routers = [r.proc for r in [*([self.router] if self.router else []), *self.more_routers]]
        self.router, self.more_routers = None, []
        _stop_procs(routers)
        if self.redis_server is not None:
            self.redis_server.stop()
            self.redis_server = None
        if self.redis_cluster is not None:
            self.redis_cluster.stop()
            self.redis_cluster = None

    def restart_gateway(self, index: int) -> Service:
        """Replace gateway ``index`` with a fresh process (on a new port)."""
        old = self.gateway_services[index]
        _stop_procs([old.proc])
        self.gateway_services[index] = self._start_gateway(index)
        return self.gateway_services[index]

    # -- facts ------------------------------------------------------------------------------

    @property
    def redis_url(self) -> str:
        """What the services are given (``redis+cluster://...`` on a cluster)."""
        if self.redis_cluster is not None:
            return self.redis_cluster.url
        assert self.redis_server is not None, "system not started"
        return self.redis_server.url

    @property
    def node_urls(self) -> list[str]:
        """``redis://`` URLs of each server: the one standalone server, or every cluster
        master (for per-node facts: ``INFO``, the floors)."""
        if self.redis_cluster is not None:
            c = self.redis_cluster
            return [f"redis://{HOST}:{n.port}/0" for n in c.nodes[: c.masters]]
        return [self.redis_url]

    @property
    def api_url(self) -> str:
        """The first router's HTTP port (LiveKit's RoomService over Twirp)."""
        assert self.router is not None, "system not started"
        return f"http://{HOST}:{self.router.port}"

    def redis_used_memory(self) -> int:
        """``used_memory`` of the server, summed over the masters on a cluster (bytes)."""
        total = 0
        for url in self.node_urls:
            r = redis.Redis.from_url(url)
            try:
                total += int(r.info("memory")["used_memory"])
            finally:
                r.close()
        return total

    def routers_partitions(self) -> list[int]:
        """How many partitions each router says it owns (``/healthz``), in start order."""
        out = []
        for svc in [*([self.router] if self.router else []), *self.more_routers]:
            try:
                with urllib.request.urlopen(f"http://{HOST}:{svc.port}/healthz", timeout=5) as rs:
                    out.append(len(json.loads(rs.read()).get("partitions", [])))
            except OSError:
                out.append(-1)
        return out

    def router_counters(self) -> list[dict[str, float]]:
        """Each router's partition counters from its ``/metrics``, in start order:
        ``leases_lost`` (not renewed in time: a healthy router under load must lose none),
        ``takeovers`` and ``partitions_acquired``; an empty dict for a router that did not
        answer."""
        names = {f"roomstreams_router_{n}_total": n for n in _ROUTER_COUNTERS}
        out: list[dict[str, float]] = []
        for svc in [*([self.router] if self.router else []), *self.more_routers]:
            got: dict[str, float] = {}
            try:
                with urllib.request.urlopen(f"http://{HOST}:{svc.port}/metrics", timeout=5) as rs:
                    for line in rs.read().decode().splitlines():
                        name, _, value = line.partition(" ")
                        if name in names:
                            got[names[name]] = float(value)
            except OSError:
                pass
            out.append(got)
        return out

    @property
    def urls(self) -> list[str]:
        return [g.url for g in self.gateway_services]

    def pids(self) -> dict[str, int]:
        """Every process of the system, and the benchmark process itself (``bench``)."""
        out: dict[str, int] = {}
        if self.redis_server is not None and self.redis_server.process is not None:
            out["redis"] = self.redis_server.process.pid
        if self.redis_cluster is not None:  # redis, redis1, redis2: the masters
            for i, n in enumerate(self.redis_cluster.nodes):
                if n.process is not None:
                    out["redis" if i == 0 else f"redis{i}"] = n.process.pid
        if self.router is not None:
            out["router"] = self.router.pid
        for r in self.more_routers:
            out[r.name] = r.pid
        for i, g in enumerate(self.gateway_services):
            out[f"gateway{i}"] = g.pid
        out["bench"] = os.getpid()
        return out

    def token(self, room: str, identity: str) -> str:
        grants = VideoGrants(room=room, room_join=True, can_publish_data=True, can_subscribe=True)
        return (
            AccessToken(API_KEY, self.api_secret)
            .with_identity(identity)
            .with_grants(grants)
            .to_jwt()
        )

    def server_info(self) -> dict[str, str]:
        """``INFO server`` of the Redis-compatible server (name and versions)."""
        r = redis.Redis.from_url(self.node_urls[0], decode_responses=True)
        try:
            info: dict[str, Any] = r.info("server")
        finally:
            r.close()
        keys = ("server_name", "redis_version", "valkey_version", "redis_mode")
        return {k: str(info[k]) for k in keys if k in info}

    def gateway_connections(self, index: int) -> int:
        """What gateway ``index``'s /healthz says about its open connections."""
        url = f"http://{HOST}:{self.gateway_services[index].port}/healthz"
        with urllib.request.urlopen(url, timeout=5) as resp:
            return int(json.loads(resp.read())["connections"])

    # -- internals --------------------------------------------------------------------------

    def _env(self, extra: dict[str, str]) -> dict[str, str]:
        # nothing of the caller's ROOMSTREAMS_* reaches the services, but the loop choice
        # and the resume window (for A/B runs: ROOMSTREAMS_EVENT_LOOP=asyncio,
        # ROOMSTREAMS_RESUME_WINDOW=0: no marks)
        env = {
            k: v
            for k, v in os.environ.items()
            if not k.startswith("ROOMSTREAMS_") or k in _PASSED_THROUGH
        }
        root = repo_root()
        if root is not None:
            paths = [str(root / "shared"), str(root)]
            if env.get("PYTHONPATH"):
                paths.append(env["PYTHONPATH"])
            env["PYTHONPATH"] = os.pathsep.join(paths)
        env.update(
            ROOMSTREAMS_REDIS_URL=self.redis_url,
            ROOMSTREAMS_API_KEY=API_KEY,
            ROOMSTREAMS_API_SECRET=self.api_secret,
            ROOMSTREAMS_PARTITIONS=str(PARTITIONS),
            ROOMSTREAMS_LOG_LEVEL=self.log_level,
            ROOMSTREAMS_GATEWAY_HOST=HOST,
        )
        env.update(extra)
        return env

    def _spawn(self, name: str, extra_env: dict[str, str], port: int = 0) -> Service:
        root = repo_root()
        proc = subprocess.Popen(
            [*self.launcher, "-m", f"services.{name}"],
            env=self._env(extra_env),
            cwd=root,
            stdin=subprocess.DEVNULL,
            stdout=_child_stdout(),
            preexec_fn=_die_with_parent,
        )
        return Service(name, proc, port)

    def _start_router(self, name: str) -> Service:
        port = free_port()
        svc = self._spawn("router", {"ROOMSTREAMS_ROUTER_HTTP_PORT": str(port)}, port)
        svc.name = name
        return svc

    def _wait_shared(self) -> None:
        """Until every router owns at least its floor share of the partitions (the routers
        of this checkout share them); if they do not within the timeout, go on and let the
        report's ``routers_partitions`` say what they owned."""
        n = 1 + len(self.more_routers)
        deadline = time.monotonic() + _READY_TIMEOUT
        while time.monotonic() < deadline:
            owned = self.routers_partitions()
            if sum(owned) == PARTITIONS and min(owned) >= PARTITIONS // n:
                return
            time.sleep(0.1)
        print(
            f"bench: routers did not share the partitions within {_READY_TIMEOUT:g} s: "
            f"{self.routers_partitions()}",
            file=sys.stderr,
            flush=True,
        )

    def _start_gateway(self, index: int) -> Service:
        port = free_port()
        svc = self._spawn(
            "gateway", {**self.gateway_env, "ROOMSTREAMS_GATEWAY_PORT": str(port)}, port
        )
        svc.name = f"gateway{index}"
        try:
            self._wait_healthy(svc)
        except BaseException:
            _stop_procs([svc.proc])
            raise
        return svc

    def _wait_healthy(self, svc: Service) -> None:
        deadline = time.monotonic() + _READY_TIMEOUT
        url = f"http://{HOST}:{svc.port}/healthz"
        while time.monotonic() < deadline:
            if svc.proc.poll() is not None:
                raise RuntimeError(f"{svc.name} exited with {svc.proc.returncode} at startup")
            try:
                with urllib.request.urlopen(url, timeout=1) as resp:
                    if resp.status == 200:
                        return
            except OSError:
                time.sleep(0.05)
        raise RuntimeError(f"{svc.name} on port {svc.port} not healthy after {_READY_TIMEOUT}s")

    def _wait_router(self, svc: Service) -> None:
        """Ready when it holds the lease of every partition."""
        r = sync_client(self.redis_url)
        try:
            deadline = time.monotonic() + _READY_TIMEOUT
            while time.monotonic() < deadline:
                if svc.proc.poll() is not None:
                    raise RuntimeError(f"router exited with {svc.proc.returncode} at startup")
                if all(r.exists(lease_key(p)) for p in range(PARTITIONS)):
                    return
                time.sleep(0.05)
            raise RuntimeError(f"router did not take its partitions within {_READY_TIMEOUT}s")
        finally:
            r.close()
