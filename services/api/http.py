"""The router's HTTP port (``ROOMSTREAMS_ROUTER_HTTP_PORT``, 7890): health (``/healthz``: the
process answers; ``/readyz``: started and Redis answers, whether it owns partitions or is a
standby), Prometheus metrics (``/metrics``) and LiveKit's ``RoomService`` over Twirp
(:mod:`services.api.twirp`). A small Starlette app served by uvicorn inside the router's
event loop; the router's own signal handling stays in charge (uvicorn's is switched off).

If the port is taken (a second router on the same host, a standby in tests) the router goes
on without it and says so in one ERROR line: routing does not depend on it."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import socket
from collections.abc import Awaitable, Callable, Iterator
from typing import Any

import uvicorn
from redis.exceptions import RedisError
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from roomstreams._redisio import Client
from roomstreams._redisio import client as redis_client
from roomstreams._tasks import cancel_and_wait

from .twirp import twirp_routes

__all__ = ["READY_PING_TIMEOUT", "ApiHttpServer", "create_http_app"]

logger = logging.getLogger("api.http")

#: /readyz answers 503 when Redis does not answer a PING within this many seconds
READY_PING_TIMEOUT = 2.0

#: renders /metrics with the server's Redis client: (body, content type)
Metrics = Callable[[Client], Awaitable[tuple[bytes, str]]]


def create_http_app(
    r: Client,
    *,
    api_key: str,
    api_secret: str,
    partitions: int,
    status: Callable[[], dict[str, Any]],
    ready: Callable[[], bool],
    metrics: Metrics | None = None,
) -> Starlette:
    """Health routes and the RoomService. ``status()`` adds fields to the health answers;
    ``ready()`` says whether the service is started and not stopping; ``metrics(r)``, when
    given, renders ``GET /metrics`` (Prometheus' text format, services/observability.py)."""

    async def healthz(request: Request) -> Response:
        return JSONResponse({"status": "ok", **status()})

    async def readyz(request: Request) -> Response:
        if not ready():
            return JSONResponse({"status": "not ready", **status()}, status_code=503)
        try:
            await asyncio.wait_for(r.ping(), READY_PING_TIMEOUT)
        except (RedisError, OSError, TimeoutError) as exc:
            body = {"status": "redis unreachable", "error": repr(exc), **status()}
            return JSONResponse(body, status_code=503)
        return JSONResponse({"status": "ready", **status()})

    async def metrics_page(request: Request) -> Response:
        assert metrics is not None
        body, content_type = await metrics(r)
        return Response(body, headers={"Content-Type": content_type})

    routes = [
        Route("/healthz", healthz, methods=["GET"]),
        Route("/readyz", readyz, methods=["GET"]),
        *([Route("/metrics", metrics_page, methods=["GET"])] if metrics is not None else []),
        *twirp_routes(
            r,
            api_key=api_key,
            api_secret=api_secret,
            partitions=partitions,
        ),
    ]
    return Starlette(routes=routes)


class _Server(uvicorn.Server):
    @contextlib.contextmanager
    def capture_signals(self) -> Iterator[None]:
        yield  # the host process handles SIGTERM/SIGINT and calls stop()


class ApiHttpServer:
    """Serves :func:`create_http_app` on ``host:port`` while the router runs."""

    def __init__(
        self,
        *,
        redis_url: str,
        host: str,
        port: int,
        api_key: str,
        api_secret: str,
        partitions: int,
        status: Callable[[], dict[str, Any]],
        name: str = "roomstreams-api",
        metrics: Metrics | None = None,
    ) -> None:
        self.host, self.port = host, port
        self._r = redis_client(redis_url, name)
        self._ready = False
        self.app = create_http_app(
            self._r,
            api_key=api_key,
            api_secret=api_secret,
            partitions=partitions,
            status=status,
            ready=lambda: self._ready,
            metrics=metrics,
        )
        self._server: _Server | None = None
        self._sock: socket.socket | None = None
        self._task: asyncio.Task[None] | None = None

    async def start(self) -> None:
        try:
            sock = socket.create_server((self.host, self.port), reuse_port=False)
        except OSError as exc:
            logger.error(
                "router HTTP port %s:%d unavailable (%s): no server API or health checks here",
                self.host,
                self.port,
                exc.strerror or exc,
            )
            return
        config = uvicorn.Config(
            self.app, log_config=None, log_level="warning", access_log=False, lifespan="off"
        )
        config.load()
        server = _Server(config)
        server.lifespan = config.lifespan_class(config)
        await server.startup(sockets=[sock])
        self._server, self._sock = server, sock
        self._task = asyncio.create_task(server.main_loop(), name="router-http")
        self.port = sock.getsockname()[1]
        self._ready = True
        logger.info("router HTTP on http://%s:%d (RoomService, health)", self.host, self.port)

    async def stop(self) -> None:
        self._ready = False
        server, task, sock = self._server, self._task, self._sock
        if server is not None and task is not None and sock is not None:
            server.should_exit = True
            with contextlib.suppress(asyncio.TimeoutError):
                await asyncio.wait_for(asyncio.shield(task), 2)
            await cancel_and_wait([task])
            with contextlib.suppress(asyncio.TimeoutError):
                await asyncio.wait_for(server.shutdown(sockets=[sock]), 5)
        await self._r.aclose()
