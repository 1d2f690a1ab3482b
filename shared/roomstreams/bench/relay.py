"""``python -m roomstreams.bench.relay ROLE REDIS_URL [WS]``: one hop of W1's path with nothing of
roomstreams on it, for the benchmark's relay floor (``floors.relay`` in the report).

W1's path is four processes: a gateway takes the client's frame and appends it to the room's
stream, the router reads it and appends it to the receiving gateway's inbox, that gateway
reads it and writes it to the receiver's socket, and Redis in between. These three relays
do the least each hop can do, with the libraries and the event loop the services use
(websockets, redis-py with hiredis on one kept connection, uvloop):

* ``in``: a WebSocket server; each message is one ``XADD`` to ``relay:a``, awaited.
* ``mid``: a blocking ``XREAD`` of ``relay:a``; each wake-up's entries go to ``relay:b`` in
  one pipeline with the next read (as the router's partition worker does).
* ``out``: a WebSocket server for one receiver and a blocking ``XREAD`` of ``relay:b``;
  each entry is sent to the receiver (websockets' ``send()``).

``WS`` is ``websockets`` (the default: what the gateway uses) or ``picows`` (a WebSocket
library written in Cython, the issue's candidate for a faster one; ``pip install picows``):
the ``in`` and ``out`` relays then use picows' server, the same hops otherwise, so the two
floors side by side show what the library alone costs per message.

What the services spend per chunk beyond these is their own work: validation, routing,
ordering, acknowledgements, fencing, metrics. Prints its port (``in``, ``out``) or 0 on the
first line of stdout, then relays until SIGTERM/SIGINT or until its standard input closes.

Not imported by the package: ``python -m`` must find it unimported."""

from __future__ import annotations

import asyncio
import signal
import sys
from collections.abc import Awaitable, Callable
from typing import Any

from websockets.asyncio.server import ServerConnection, serve

from .._loop import run
from .._redisio import Pinned, client, parse_xread, xadd_command, xread_command
from .child import watch_stdin

HOST = "127.0.0.1"
A, B = "relay:a", "relay:b"
MAXLEN = 10_000
ROLES = ("in", "mid", "out")
LIBRARIES = ("websockets", "picows")


async def _relay_in(url: str, ready: asyncio.Future[int]) -> None:
    r = client(url, "relay-in")
    conn = Pinned(r)

    async def handler(ws: ServerConnection) -> None:
        async for message in ws:
            await conn.execute([xadd_command(A, {"d": message}, maxlen=MAXLEN)])

    async with serve(handler, HOST, 0, compression=None, max_queue=64) as server:
        ready.set_result(next(iter(server.sockets)).getsockname()[1])
        await asyncio.Future()  # until cancelled


async def _relay_mid(url: str, ready: asyncio.Future[int]) -> None:
    conn = Pinned(client(url, "relay-mid"))
    last: bytes | str = "0-0"
    ready.set_result(0)
    resp = await conn.xread({A: last}, block=1000, count=1000)
    while True:
        cmds: list[Any] = []
        for _key, entries in resp:
            for entry_id, fields in entries:
                cmds.append(xadd_command(B, fields, maxlen=MAXLEN))
                last = entry_id
        cmds.append(xread_command({A: last}, block=1000, count=1000))
        replies = await conn.execute(cmds)
        resp = parse_xread(replies[-1])


async def _relay_out(url: str, ready: asyncio.Future[int]) -> None:
    conn = Pinned(client(url, "relay-out"))
    receiver: asyncio.Future[ServerConnection] = asyncio.get_running_loop().create_future()

    async def handler(ws: ServerConnection) -> None:
        if not receiver.done():
            receiver.set_result(ws)
        await ws.wait_closed()

    async with serve(handler, HOST, 0, compression=None, max_queue=64) as server:
        ready.set_result(next(iter(server.sockets)).getsockname()[1])
        ws = await receiver
        last: bytes | str = "0-0"
        while True:
            for _key, entries in await conn.xread({B: last}, block=1000, count=1000):
                for entry_id, fields in entries:
                    await ws.send(fields[b"d"], text=True)
                    last = entry_id


# -- the same hops on picows (imported only when asked for) ----------------------------------


def _picows_server(
    on_text: Callable[[bytes], None] | None = None,
    on_connected: Callable[[Any], None] | None = None,
) -> Awaitable[Any]:
    """A picows server on ``HOST``: text frames to ``on_text``, each new client's transport
    to ``on_connected``, the close handshake answered."""
    import picows

    class Listener(picows.WSListener):
        def on_ws_connected(self, transport: Any) -> None:
            if on_connected is not None:
                on_connected(transport)

        def on_ws_frame(self, transport: Any, frame: Any) -> None:
            if frame.msg_type == picows.WSMsgType.TEXT and on_text is not None:
                on_text(frame.get_payload_as_bytes())
            elif frame.msg_type == picows.WSMsgType.CLOSE:
                transport.send_close(frame.get_close_code())
                transport.disconnect()

    return picows.ws_create_server(lambda _request: Listener(), HOST, 0)


async def _relay_in_picows(url: str, ready: asyncio.Future[int]) -> None:
    conn = Pinned(client(url, "relay-in"))
    # picows hands frames to a callback: they wait here for the one task that appends
    # them, each XADD awaited before the next (as the websockets relay's handler does)
    pending: asyncio.Queue[bytes] = asyncio.Queue()
    async with await _picows_server(on_text=pending.put_nowait) as server:
        ready.set_result(server.sockets[0].getsockname()[1])
        while True:
            message = await pending.get()
            await conn.execute([xadd_command(A, {"d": message}, maxlen=MAXLEN)])


async def _relay_out_picows(url: str, ready: asyncio.Future[int]) -> None:
    import picows

    conn = Pinned(client(url, "relay-out"))
    receiver: asyncio.Future[Any] = asyncio.get_running_loop().create_future()

    def connected(transport: Any) -> None:
        if not receiver.done():
            receiver.set_result(transport)

    async with await _picows_server(on_connected=connected) as server:
        ready.set_result(server.sockets[0].getsockname()[1])
        transport = await receiver
        text = picows.WSMsgType.TEXT
        last: bytes | str = "0-0"
        while True:
            for _key, entries in await conn.xread({B: last}, block=1000, count=1000):
                for entry_id, fields in entries:
                    transport.send(text, fields[b"d"])
                    last = entry_id


async def main(role: str, url: str, library: str = "websockets") -> None:
    roles = {"in": _relay_in, "mid": _relay_mid, "out": _relay_out}
    if library == "picows":
        roles.update({"in": _relay_in_picows, "out": _relay_out_picows})
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    ready: asyncio.Future[int] = loop.create_future()
    task = loop.create_task(roles[role](url, ready))
    waiting = loop.create_task(stop.wait())
    first: set[asyncio.Future[Any]] = {task, ready}
    await asyncio.wait(first, return_when=asyncio.FIRST_COMPLETED)
    if task.done():
        task.result()  # it failed before it was ready: say why
    print(ready.result(), flush=True)
    watch_stdin(loop, stop)
    await asyncio.wait([task, waiting], return_when=asyncio.FIRST_COMPLETED)
    task.cancel()
    waiting.cancel()
    await asyncio.gather(task, waiting, return_exceptions=True)


if __name__ == "__main__":
    args = sys.argv[1:]
    library = args[2] if len(args) == 3 else LIBRARIES[0]
    if len(args) not in (2, 3) or args[0] not in ROLES or library not in LIBRARIES:
        sys.exit(
            f"usage: python -m roomstreams.bench.relay {{{','.join(ROLES)}}} REDIS_URL "
            f"[{'|'.join(LIBRARIES)}]"
        )
    run(main(*args))
