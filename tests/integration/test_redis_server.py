"""The test Redis (``redis_url`` / ``redis_client``) supports what roomstreams relies on,
and ``LocalRedisServer`` starts and stops cleanly."""

from __future__ import annotations

import asyncio
import socket
import uuid
from pathlib import Path
from typing import Any

import pytest
import redis
import redis.asyncio
from redis.crc import key_slot

from roomstreams._redis_server import (
    ENV_REDIS_SERVER,
    LocalRedisServer,
    find_redis_server,
    free_port,
)


def unique_prefix() -> str:
    # The server may be shared ($ROOMSTREAMS_TEST_REDIS_URL) and is never flushed.
    return f"rstest:{uuid.uuid4().hex}"


async def wait_until_blocked(observer: redis.asyncio.Redis, client_name: str) -> None:
    """Return once the connection named ``client_name`` is blocked in XREAD on the server."""
    while True:
        for info in await observer.client_list():
            if info.get("name") == client_name and "b" in info.get("flags", ""):
                assert info.get("cmd") == "xread", info
                return


# -- the server behind the fixtures ------------------------------------------------------


async def test_blocked_xread_wakes_up_on_concurrent_xadd(
    redis_client: redis.asyncio.Redis, redis_url: str
) -> None:
    key = f"{unique_prefix()}:{{p1}}:text"
    reader_name = f"reader-{uuid.uuid4().hex[:12]}"
    reader = redis.asyncio.Redis.from_url(redis_url, client_name=reader_name)
    try:

        async def blocking_read() -> Any:
            return await reader.xread({key: "$"}, count=10, block=10_000)

        read = asyncio.create_task(blocking_read())
        async with asyncio.timeout(5):
            await wait_until_blocked(redis_client, reader_name)
        assert not read.done()

        entry_id = await redis_client.xadd(key, {b"text": b"hello"})

        async with asyncio.timeout(5):
            result = await read
    finally:
        await reader.aclose()

    assert result == [[key.encode(), [(entry_id, {b"text": b"hello"})]]]


async def test_xadd_maxlen_approximate_trims(redis_client: redis.asyncio.Redis) -> None:
    key = f"{unique_prefix()}:{{p1}}:text"
    maxlen, total = 10, 1000
    pipe = redis_client.pipeline(transaction=False)
    for i in range(total):
        pipe.xadd(key, {b"i": str(i).encode()}, maxlen=maxlen, approximate=True)
    await pipe.execute()

    length = await redis_client.xlen(key)
    # "~" only drops whole radix-tree nodes (stream-node-max-entries, 100 by default),
    # so the length lands somewhere in [maxlen, maxlen + node size).
    assert maxlen <= length < total
    assert length <= maxlen + 100
    newest = await redis_client.xrevrange(key, count=1)
    assert newest is not None
    assert newest[0][1] == {b"i": str(total - 1).encode()}


async def test_xtrim_minid_removes_older_entries(redis_client: redis.asyncio.Redis) -> None:
    key = f"{unique_prefix()}:{{p1}}:text"
    for ms in range(1, 11):
        await redis_client.xadd(key, {b"n": str(ms).encode()}, id=f"{ms}-0")

    removed = await redis_client.xtrim(key, minid="6-0", approximate=False)

    assert removed == 5
    entries = await redis_client.xrange(key)
    assert entries is not None
    assert [entry_id for entry_id, _ in entries] == [f"{ms}-0".encode() for ms in range(6, 11)]


async def test_multi_key_xread_with_shared_hash_tag(redis_client: redis.asyncio.Redis) -> None:
    prefix = unique_prefix()
    text_key, bytes_key = f"{prefix}:{{p1}}:text", f"{prefix}:{{p1}}:bytes"
    # Same hash tag => same cluster slot, so one XREAD over both keys is cluster-safe.
    assert key_slot(text_key.encode()) == key_slot(bytes_key.encode())

    text_id = await redis_client.xadd(text_key, {b"text": b"hi"})
    bytes_id = await redis_client.xadd(bytes_key, {b"chunk": b"\x00\x01\xff"})

    result = await redis_client.xread({text_key: "0-0", bytes_key: "0-0"}, block=1000)

    assert dict(result) == {
        text_key.encode(): [(text_id, {b"text": b"hi"})],
        bytes_key.encode(): [(bytes_id, {b"chunk": b"\x00\x01\xff"})],
    }


# -- LocalRedisServer ----------------------------------------------------------------------


def port_is_free(port: int) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind(("127.0.0.1", port))
        except OSError:
            return False
        return True


def test_local_server_starts_and_stops() -> None:
    server = LocalRedisServer()
    assert server.process is None

    with server:
        process = server.process
        assert process is not None and process.poll() is None
        assert server.url == f"redis://127.0.0.1:{server.port}/0"
        assert not port_is_free(server.port)
        client = redis.Redis.from_url(server.url)
        try:
            assert client.ping() is True
            assert client.config_get("save") == {"save": ""}
            assert client.config_get("appendonly") == {"appendonly": "no"}
            data_dir = Path(client.config_get("dir")["dir"])
            assert data_dir.is_dir()
        finally:
            client.close()

    assert process.poll() is not None  # the process is gone (and reaped)
    assert server.process is None
    assert port_is_free(server.port)
    assert not data_dir.exists()
    server.stop()  # idempotent


def test_local_server_explicit_port_and_extra_args() -> None:
    port = free_port()
    with LocalRedisServer(port=port, extra_args=["--maxmemory", "16mb"]) as server:
        assert server.port == port
        client = redis.Redis.from_url(server.url)
        try:
            assert client.config_get("maxmemory") == {"maxmemory": str(16 * 1024 * 1024)}
        finally:
            client.close()


def test_local_server_failure_reports_server_output() -> None:
    server = LocalRedisServer(extra_args=["--no-such-directive", "1"])
    with pytest.raises(RuntimeError, match="no-such-directive"):
        server.start()
    assert server.process is None


def test_find_redis_server_honours_env(monkeypatch: pytest.MonkeyPatch) -> None:
    binary = find_redis_server()
    monkeypatch.setenv(ENV_REDIS_SERVER, binary)
    assert find_redis_server() == binary
    monkeypatch.setenv(ENV_REDIS_SERVER, "/nonexistent/redis-server")
    with pytest.raises(RuntimeError, match=ENV_REDIS_SERVER):
        find_redis_server()
