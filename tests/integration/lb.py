"""A tiny TCP load balancer for tests, standing in for compose's HAProxy: round-robin over a
list of backends that can change while it runs; a backend that refuses is skipped."""

from __future__ import annotations

import asyncio
import contextlib
import itertools


class TcpBalancer:
    def __init__(self, backends: list[int]) -> None:
        self.backends = list(backends)
        self.chosen: list[int] = []  # backend port of each accepted connection, in order
        self._rr = itertools.count()
        self._server: asyncio.Server | None = None
        self._pipes: set[asyncio.Task[None]] = set()
        self.port = 0

    @property
    def url(self) -> str:
        return f"ws://127.0.0.1:{self.port}"

    async def __aenter__(self) -> TcpBalancer:
        self._server = await asyncio.start_server(self._accept, "127.0.0.1", 0)
        self.port = self._server.sockets[0].getsockname()[1]
        return self

    async def __aexit__(self, *exc: object) -> None:
        assert self._server is not None
        self._server.close()
        for t in list(self._pipes):
            t.cancel()
        await asyncio.gather(*self._pipes, return_exceptions=True)
        await self._server.wait_closed()

    async def _accept(self, cr: asyncio.StreamReader, cw: asyncio.StreamWriter) -> None:
        for _ in range(len(self.backends)):
            port = self.backends[next(self._rr) % len(self.backends)]
            try:
                br, bw = await asyncio.open_connection("127.0.0.1", port)
            except OSError:
                continue
            self.chosen.append(port)
            for src, dst in ((cr, bw), (br, cw)):
                t = asyncio.get_running_loop().create_task(self._pipe(src, dst))
                self._pipes.add(t)
                t.add_done_callback(self._pipes.discard)
            return
        cw.close()

    @staticmethod
    async def _pipe(src: asyncio.StreamReader, dst: asyncio.StreamWriter) -> None:
        try:
            while data := await src.read(65536):
                dst.write(data)
                await dst.drain()
        except (ConnectionError, OSError):
            pass
        finally:
            with contextlib.suppress(Exception):
                dst.close()
