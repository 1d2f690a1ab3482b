"""``python -m roomstreams.bench.echo``: a raw WebSocket echo server on 127.0.0.1 (websockets'
asyncio implementation, no compression), for the benchmark's WebSocket floor. Prints its
port on the first line of stdout, then echoes every message until SIGTERM/SIGINT or until its
standard input closes (so it never outlives the benchmark).

Not imported by the package: ``python -m`` must find it unimported."""

from __future__ import annotations

import asyncio
import signal

from websockets.asyncio.server import ServerConnection, serve

from roomstreams.bench.child import watch_stdin

HOST = "127.0.0.1"


async def echo(ws: ServerConnection) -> None:
    async for message in ws:
        await ws.send(message)


async def main() -> None:
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    async with serve(echo, HOST, 0, compression=None, max_queue=64) as server:
        port = next(iter(server.sockets)).getsockname()[1]
        print(port, flush=True)
        watch_stdin(loop, stop)
        await stop.wait()


if __name__ == "__main__":
    asyncio.run(main())
