"""roomstreams.client.connection: how frames leave. An open socket that takes writes gets the
frame written at once (websockets' framing, without its ``send()`` machinery); a socket
whose buffer is full goes through ``send()`` and waits for it to drain; a broken transport
is a ``ConnectionClosed``, never a frame sent twice. Against a real websockets server."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator

import pytest
from websockets.asyncio.server import ServerConnection, serve
from websockets.exceptions import ConnectionClosed as WsConnectionClosed

from roomstreams.client.connection import Connection
from roomstreams.exceptions import ConnectionClosed


@pytest.fixture
async def server() -> AsyncIterator[tuple[str, asyncio.Queue[str | bytes]]]:
    got: asyncio.Queue[str | bytes] = asyncio.Queue()

    async def handler(ws: ServerConnection) -> None:
        with contextlib.suppress(WsConnectionClosed):  # the last test breaks the socket
            async for message in ws:
                got.put_nowait(message)

    async with serve(handler, "127.0.0.1", 0, compression=None) as srv:
        port = next(iter(srv.sockets)).getsockname()[1]
        yield f"ws://127.0.0.1:{port}", got


async def _open(url: str) -> Connection:
    conn = Connection()
    await conn.open(url, "token", timeout=5)
    return conn


async def test_text_and_binary_frames_arrive_as_sent_and_in_order(
    server: tuple[str, asyncio.Queue[str | bytes]],
) -> None:
    url, got = server
    conn = await _open(url)
    try:
        for i in range(100):
            await conn.send(f'{{"n":{i}}}')
        await conn.send(b"\x01binary")
        received = [await asyncio.wait_for(got.get(), 5) for _ in range(101)]
        assert received[:100] == [f'{{"n":{i}}}' for i in range(100)]
        assert received[100] == b"\x01binary"  # bytes go as a binary frame
    finally:
        await conn.close_socket()


async def test_a_full_buffer_makes_the_send_wait_until_it_drains(
    server: tuple[str, asyncio.Queue[str | bytes]],
) -> None:
    url, got = server
    conn = await _open(url)
    ws = conn.ws
    assert ws is not None
    try:
        ws.pause_writing()  # what the transport calls above its high-water mark
        sending = asyncio.create_task(conn.send('{"after":"drain"}'))
        await asyncio.sleep(0.05)
        assert not sending.done()  # waiting for the buffer, as websockets' send() does
        ws.resume_writing()
        await asyncio.wait_for(sending, 5)
        assert await asyncio.wait_for(got.get(), 5) == '{"after":"drain"}'
    finally:
        await conn.close_socket()


async def test_a_transport_that_fails_to_write_is_a_closed_connection(
    server: tuple[str, asyncio.Queue[str | bytes]], monkeypatch: pytest.MonkeyPatch
) -> None:
    url, got = server
    conn = await _open(url)
    ws = conn.ws
    assert ws is not None

    def broken(_data: bytes) -> None:
        raise OSError("the network is gone")

    monkeypatch.setattr(ws.transport, "write", broken)
    with pytest.raises(ConnectionClosed, match="connection lost"):
        await conn.send('{"lost":true}')
    assert ws.transport.is_closing()  # aborted: nothing else is written on it
    monkeypatch.undo()
    await asyncio.wait_for(ws.wait_closed(), 5)
    with pytest.raises(ConnectionClosed):
        await conn.send('{"again":true}')
    await conn.close_socket()
    assert got.empty()  # neither frame went out, none twice
