"""The gateway's websockets connection parses a socket's data a slice per loop turn
(services/gateway/reading.py): every frame still arrives, whole and in order, and one read
of thousands of tiny frames no longer queues them all at once."""

from __future__ import annotations

import asyncio
import os
import struct

import pytest
import websockets
from websockets.asyncio.server import ServerConnection, serve
from websockets.frames import Frame, Opcode

from services.gateway.reading import READ_SLICE, SlicedConnection

MAX_QUEUE = 64


def _frames(payloads: list[bytes]) -> bytes:
    return b"".join(
        Frame(Opcode.BINARY, p).serialize(mask=True, extensions=[])
        for p in payloads
    )


async def _run(payloads: list[bytes]) -> list[bytes]:
    """Serve one connection with SlicedConnection; the client writes every frame in one
    write and closes; the handler reads them all."""
    got: list[bytes] = []
    done = asyncio.Event()

    async def handler(ws: ServerConnection) -> None:
        async for msg in ws:
            assert isinstance(msg, bytes)
            got.append(msg)
        done.set()

    async with serve(
        handler,
        "127.0.0.1",
        0,
        create_connection=SlicedConnection,
        max_queue=MAX_QUEUE,
        max_size=1 << 21,
        compression=None,
    ) as server:
        port = next(iter(server.sockets)).getsockname()[1]
        async with websockets.connect(f"ws://127.0.0.1:{port}", compression=None) as client:
            client.transport.write(_frames(payloads))  # one write: reads of 256 KiB
        # the client closes after its frames: the handler's loop ends with the close
        async with asyncio.timeout(30):
            await done.wait()
    return got


async def test_tiny_frames_in_one_write_arrive_whole_and_in_order() -> None:
    payloads = [struct.pack(">I", i) for i in range(40_000)]  # ~400 KB of 10-byte frames
    assert await _run(payloads) == payloads


async def test_frames_across_slice_boundaries_and_big_frames_arrive_intact() -> None:
    sizes = [1, READ_SLICE - 7, READ_SLICE, READ_SLICE + 1, 3, 1 << 20, 125, 126, 65536, 2]
    payloads = [os.urandom(n) for n in sizes * 3]
    assert await _run(payloads) == payloads


@pytest.mark.parametrize("cls", [ServerConnection, SlicedConnection])
async def test_what_one_read_returns_is_not_all_queued_at_once(cls: type[ServerConnection]) -> None:
    """30,000 tiny frames written at once, read only once they are all in the server's
    kernel buffer: plain websockets parses each 256 KiB read whole and queues thousands
    of frames past its ``max_queue``; sliced, the queue stays within one slice's worth of
    frames over the high-water mark."""
    peak = 0
    release, finished = asyncio.Event(), asyncio.Event()
    n = 30_000
    payloads = [struct.pack(">I", i) for i in range(n)]
    got: list[bytes] = []

    async def handler(ws: ServerConnection) -> None:
        nonlocal peak
        await release.wait()
        for _ in range(n):
            msg = await ws.recv()
            assert isinstance(msg, bytes)
            got.append(msg)
            peak = max(peak, len(ws.recv_messages.frames))
        finished.set()

    async with serve(handler, "127.0.0.1", 0, create_connection=cls, max_queue=MAX_QUEUE) as srv:
        port = next(iter(srv.sockets)).getsockname()[1]
        # write_limit 0: send() returns once everything is handed to the kernel
        url = f"ws://127.0.0.1:{port}"
        async with websockets.connect(url, compression=None, write_limit=0) as client:
            client.transport.write(_frames(payloads[:-1]))
            await client.send(payloads[-1])
            release.set()
            async with asyncio.timeout(30):
                await finished.wait()
    assert got == payloads
    bound = MAX_QUEUE + READ_SLICE // 10 + 1  # a 4-byte payload is a 10-byte masked frame
    if cls is SlicedConnection:
        assert peak <= bound, peak
    else:  # what slicing buys
        assert peak > 4 * bound, peak
