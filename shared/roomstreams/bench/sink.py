"""``python -m roomstreams.bench.sink``: a TCP server on 127.0.0.1 that reads and drops
whatever its clients send, for the benchmark's send floor (``floors.socket_send``). Prints
its port on the first line of stdout, then reads until SIGTERM/SIGINT or until its standard
input closes (so it never outlives the benchmark).

Not imported by the package: ``python -m`` must find it unimported."""

from __future__ import annotations

import asyncio
import signal

from roomstreams.bench.child import watch_stdin

HOST = "127.0.0.1"


class _Drop(asyncio.Protocol):
    def data_received(self, data: bytes) -> None:
        pass


async def main() -> None:
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    server = await loop.create_server(_Drop, HOST, 0)
    async with server:
        print(server.sockets[0].getsockname()[1], flush=True)
        watch_stdin(loop, stop)
        await stop.wait()


if __name__ == "__main__":
    asyncio.run(main())
