"""Process supervisor behind ``roomstreams up``: a whole system on one machine.

Starts (optionally) a local Redis, one router and N gateways as child processes
(``python -m services.router`` / ``python -m services.gateway``), waits until every one is
ready, watches them, and stops them in order: gateways (they drain), router (it releases its
partition leases), then Redis.

Children are started with SIGINT blocked, so a Ctrl-C in the terminal (which signals the
whole foreground process group) reaches only the supervisor; it then stops the children
itself, in order, with SIGTERM (SIGKILL after a timeout).
"""

from __future__ import annotations

import contextlib
import importlib.util
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import redis

from ._redis_server import LocalRedisServer, die_with_parent
from ._redisio import SyncClient, sync_client
from .protocol.keys import lease_key

__all__ = ["ChildExit", "LaunchError", "Launcher", "SystemConfig"]


class LaunchError(RuntimeError):
    """The system could not be started (a child died, a port was taken, a timeout)."""


@dataclass(frozen=True)
class SystemConfig:
    api_key: str
    api_secret: str
    redis_url: str | None = None  # None: start a local redis-server
    gateways: int = 1
    host: str = "127.0.0.1"
    port: int = 7880  # gateway i listens on port + i
    #: the router's HTTP port: the server API (LiveKit's RoomService over Twirp), health
    api_port: int = 7890
    partitions: int = 16
    log_level: str = "INFO"
    ready_timeout: float = 60.0
    stop_timeout: float = 10.0
    #: the local development mode: gateways serve the chat page and sign tokens for it
    dev_page: bool = True


@dataclass(frozen=True)
class ChildExit:
    name: str
    returncode: int


@dataclass
class _Child:
    name: str
    process: subprocess.Popen[bytes]
    is_ready: Callable[[], bool]
    ready: bool = False


class Launcher:
    """``start()``, ``wait_ready()``, ``wait()``, ``stop()``; ``request_stop()`` is safe to call
    from a signal handler (it only sets a flag the waiting loops check)."""

    def __init__(self, config: SystemConfig) -> None:
        self.config = config
        self.redis_server: LocalRedisServer | None = None
        self.redis_url: str = config.redis_url or ""
        self._router: _Child | None = None
        self._gateways: list[_Child] = []
        self._stop_requested = False
        self._redis: SyncClient | None = None  # for the router's readiness check

    # -- public API -------------------------------------------------------------------------

    @property
    def gateway_urls(self) -> list[str]:
        host = _connect_host(self.config.host)
        return [f"ws://{host}:{self.config.port + i}" for i in range(self.config.gateways)]

    @property
    def api_url(self) -> str:
        """The server API (LiveKit's RoomService over Twirp) on the router's HTTP port."""
        return f"http://{_connect_host(self.config.host)}:{self.config.api_port}"

    @property
    def pids(self) -> dict[str, int]:
        """Name -> PID of every running child (Redis included when started here)."""
        out = {c.name: c.process.pid for c in self._children()}
        if self.redis_server is not None and self.redis_server.process is not None:
            out["redis"] = self.redis_server.process.pid
        return out

    def start(self) -> None:
        """Start Redis (unless a URL was given), the router and the gateways; don't wait."""
        cfg = self.config
        for port in [*range(cfg.port, cfg.port + cfg.gateways), cfg.api_port]:
            if not _port_is_free(cfg.host, port):
                raise LaunchError(f"port {port} on {cfg.host} is already in use")
        with _sigint_blocked():
            if self.redis_url == "":
                self.redis_server = LocalRedisServer().start()
                self.redis_url = self.redis_server.url
            router = self._spawn(
                "services.router",
                ROOMSTREAMS_ROUTER_HTTP_HOST=cfg.host,
                ROOMSTREAMS_ROUTER_HTTP_PORT=str(cfg.api_port),
            )
            api_ready = _healthz_checker(cfg.host, cfg.api_port, "/readyz")
            self._router = _Child("router", router, lambda: self._router_ready() and api_ready())
            for i in range(cfg.gateways):
                port = cfg.port + i
                proc = self._spawn(
                    "services.gateway", ROOMSTREAMS_GATEWAY_PORT=str(port), **self._dev_env()
                )
                self._gateways.append(
                    _Child(f"gateway {i} (port {port})", proc, _healthz_checker(cfg.host, port))
                )

    def wait_ready(self) -> bool:
        """Block until every child is ready (True) or a stop was requested (False).

        Raises:
            LaunchError: a child exited or was not ready within ``ready_timeout``.
        """
        deadline = time.monotonic() + self.config.ready_timeout
        try:
            while not self._stop_requested:
                if (exited := self.exited()) is not None:
                    raise LaunchError(
                        f"{exited.name} exited with code {exited.returncode} during startup"
                    )
                for child in self._children():
                    child.ready = child.ready or child.is_ready()
                if all(c.ready for c in self._children()):
                    return True
                if time.monotonic() > deadline:
                    waiting = ", ".join(c.name for c in self._children() if not c.ready)
                    raise LaunchError(
                        f"not ready after {self.config.ready_timeout:.0f}s: {waiting}"
                    )
                time.sleep(0.05)
            return False
        finally:
            if self._redis is not None:
                self._redis.close()
                self._redis = None

    def wait(self, poll_interval: float = 0.1) -> ChildExit | None:
        """Block until a child exits (returned) or a stop was requested (None)."""
        while not self._stop_requested:
            if (exited := self.exited()) is not None:
                return exited
            time.sleep(poll_interval)
        return None

    def exited(self) -> ChildExit | None:
        """The first child (Redis included) found to have exited, if any."""
        for child in self._children():
            if (code := child.process.poll()) is not None:
                return ChildExit(child.name, code)
        if self.redis_server is not None and self.redis_server.process is not None:
            if (code := self.redis_server.process.poll()) is not None:
                return ChildExit("redis", code)
        return None

    def request_stop(self) -> None:
        self._stop_requested = True

    def stop(self) -> None:
        """Stop gateways, then the router, then Redis: SIGTERM, wait, SIGKILL. Idempotent."""
        self.request_stop()
        _terminate([c.process for c in self._gateways], self.config.stop_timeout)
        if self._router is not None:
            _terminate([self._router.process], self.config.stop_timeout)
        if self.redis_server is not None:
            self.redis_server.stop()

    # -- internals --------------------------------------------------------------------------

    def _dev_env(self) -> dict[str, str]:
        """The local development mode: each gateway serves the chat page and its token
        endpoint, and lets in browser connections from every gateway's page (and the
        origins already in ``ROOMSTREAMS_ALLOWED_ORIGINS``)."""
        cfg = self.config
        if not cfg.dev_page:
            return {}
        hosts = sorted({"127.0.0.1", "localhost", _connect_host(cfg.host)})
        pages = [f"http://{h}:{cfg.port + i}" for i in range(cfg.gateways) for h in hosts]
        given = os.environ.get("ROOMSTREAMS_ALLOWED_ORIGINS", "")
        return {
            "ROOMSTREAMS_DEV_TOKEN_ENDPOINT": "1",
            "ROOMSTREAMS_ALLOWED_ORIGINS": ",".join([given, *pages] if given else pages),
        }

    def _children(self) -> list[_Child]:
        return [*([self._router] if self._router is not None else []), *self._gateways]

    def _spawn(self, module: str, **extra_env: str) -> subprocess.Popen[bytes]:
        cfg = self.config
        env = {
            **os.environ,
            "ROOMSTREAMS_REDIS_URL": self.redis_url,
            "ROOMSTREAMS_API_KEY": cfg.api_key,
            "ROOMSTREAMS_API_SECRET": cfg.api_secret,
            "ROOMSTREAMS_PARTITIONS": str(cfg.partitions),
            "ROOMSTREAMS_LOG_LEVEL": cfg.log_level,
            "ROOMSTREAMS_GATEWAY_HOST": cfg.host,
            **extra_env,
        }
        # The child's logs go to our stderr, so that our stdout carries only our own report.
        return subprocess.Popen(
            [sys.executable, "-m", module],
            env=env,
            cwd=_services_root(),
            stdin=subprocess.DEVNULL,
            stdout=sys.stderr.fileno(),
            preexec_fn=die_with_parent,
        )

    def _router_ready(self) -> bool:
        """Ready when every partition's lease is held (by this router or, on a shared Redis,
        by another live one: lease values are router ids that are not published)."""
        if self._redis is None:
            self._redis = sync_client(self.redis_url, socket_timeout=2, socket_connect_timeout=2)
        try:
            pipe = self._redis.pipeline(transaction=False)
            for p in range(self.config.partitions):
                pipe.exists(lease_key(p))
            return all(pipe.execute())
        except redis.RedisError:
            return False


def _healthz_checker(host: str, port: int, path: str = "/healthz") -> Callable[[], bool]:
    url = f"http://{_connect_host(host)}:{port}{path}"
    opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))  # never via a proxy

    def check() -> bool:
        try:
            with opener.open(url, timeout=1) as resp:
                return bool(resp.status == 200)
        except OSError:  # refused, 503 while draining, timeout
            return False

    return check


def _terminate(processes: list[subprocess.Popen[bytes]], timeout: float) -> None:
    """SIGTERM them all, wait up to ``timeout`` for all together, SIGKILL the rest."""
    for p in processes:
        if p.poll() is None:
            p.terminate()
    deadline = time.monotonic() + timeout
    for p in processes:
        try:
            p.wait(max(0.0, deadline - time.monotonic()))
        except subprocess.TimeoutExpired:
            p.kill()
            p.wait()


@contextlib.contextmanager
def _sigint_blocked() -> Iterator[None]:
    """Block SIGINT while spawning: children inherit the mask (CPython keeps it across
    fork/exec), so a terminal Ctrl-C reaches only us. A SIGINT meanwhile stays pending and is
    delivered to us when the block ends."""
    old = signal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGINT})
    try:
        yield
    finally:
        signal.pthread_sigmask(signal.SIG_SETMASK, old)


def _services_root() -> str:
    """The directory holding the ``services`` package, used as the children's working
    directory so that ``python -m services...`` finds it (and not some other ``services``
    in the user's current directory)."""
    spec = importlib.util.find_spec("services")
    if spec is None or spec.origin is None:
        raise LaunchError("the 'services' package (router, gateway) is not importable")
    return str(Path(spec.origin).resolve().parent.parent)


def _connect_host(host: str) -> str:
    """Where to reach a server bound to ``host`` from this machine (as a URL host)."""
    if host in ("", "0.0.0.0"):
        return "127.0.0.1"
    if host == "::":
        return "[::1]"
    return f"[{host}]" if ":" in host else host


def _port_is_free(host: str, port: int) -> bool:
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    with socket.socket(family, socket.SOCK_STREAM) as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)  # as servers do
        try:
            sock.bind((host, port))
        except OSError:
            return False
    return True
