"""The services' Redis client (``roomstreams._redisio.client``) against a real server: no
per-reply timeout, TCP keepalive on, and the typed stream helpers."""

from __future__ import annotations

import socket

import pytest

from roomstreams._redisio import client, last_id, xread, xrevrange


@pytest.mark.skipif(not hasattr(socket, "TCP_KEEPIDLE"), reason="Linux keepalive options")
async def test_connections_probe_a_silent_path_with_tcp_keepalive(redis_url: str) -> None:
    r = client(redis_url)
    try:
        assert await r.ping()
        conn = await r.connection_pool.get_connection()
        try:
            sock = conn._writer.get_extra_info("socket")  # type: ignore[union-attr]
            assert sock.getsockopt(socket.SOL_SOCKET, socket.SO_KEEPALIVE) == 1
            assert sock.getsockopt(socket.IPPROTO_TCP, socket.TCP_KEEPIDLE) == 5
            assert sock.getsockopt(socket.IPPROTO_TCP, socket.TCP_KEEPINTVL) == 2
            assert sock.getsockopt(socket.IPPROTO_TCP, socket.TCP_KEEPCNT) == 3
            assert conn.socket_timeout is None
        finally:
            await r.connection_pool.release(conn)
    finally:
        await r.aclose()


async def test_connections_carry_the_name_given(redis_url: str, room_name: str) -> None:
    name = f"roomstreams-test-{room_name}"
    r = client(redis_url, name)
    try:
        assert await r.ping()
        assert [c["name"] for c in await r.client_list() if c["name"] == name] == [name]
    finally:
        await r.aclose()


async def test_stream_helpers_read_what_was_appended(redis_url: str, room_name: str) -> None:
    r = client(redis_url)
    key = f"test:{room_name}"
    try:
        assert await last_id(r, key) is None
        first = await r.xadd(key, {"n": "1"})
        second = await r.xadd(key, {"n": "2"})
        assert await last_id(r, key) == second
        [(k, entries)] = await xread(r, {key: "0-0"}, block=100, count=10)
        assert k == key.encode()
        assert [(i, f[b"n"]) for i, f in entries] == [(first, b"1"), (second, b"2")]
        assert [i for i, _ in await xrevrange(r, key, "+", "-")] == [second, first]
        assert await xread(r, {key: second}, block=50, count=10) == []
    finally:
        await r.delete(key)
        await r.aclose()
