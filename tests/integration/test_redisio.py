"""The services' Redis client (``roomstreams._redisio.client``) against a real server: no
per-reply timeout, TCP keepalive on, and the typed stream helpers."""

from __future__ import annotations

import socket

import pytest

from roomstreams._redisio import client, last_id, xread, xrevrange

from .helpers import wait_for_state


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


async def test_a_cluster_read_goes_on_when_the_node_the_client_first_asked_dies() -> None:
    """redis-py finds XREAD's keys by asking a node (``COMMAND GETKEYS``: XREAD's keys are
    "movable"), the node it asked when it first connected, and it does so outside its
    retry loop: once that master died, every read failed at once, even of a key on a live
    master, and nothing refreshed the client's view (a gateway's inbox stayed unread for
    the rest of a failover test). The services' ``xread`` names the key's node itself."""
    import signal

    from redis.crc import key_slot

    from roomstreams._redis_cluster import LocalRedisCluster
    from roomstreams._redis_server import find_redis_server

    try:
        binary = find_redis_server()
    except RuntimeError as exc:
        pytest.skip(f"no redis/valkey server binary to start a local cluster: {exc}")
    # the default node timeout (5 s) leaves the other masters serving while the test runs
    with LocalRedisCluster(binary) as cluster:
        r = client(cluster.url)
        try:
            await r.initialize()
            first = r.get_default_node()
            victim = next(n for n in cluster.nodes if n.port == first.port)
            key = next(
                k
                for k in (f"test:getkeys:{i}" for i in range(1000))
                if cluster.master_of_slot(key_slot(k.encode())) is not victim
            )
            entry = await r.xadd(key, {"n": "1"})
            assert victim.process is not None
            victim.process.send_signal(signal.SIGKILL)
            victim.process.wait(10)
            [(k, entries)] = await xread(r, {key: "0-0"}, block=None, count=10)
            assert (k, [i for i, _ in entries]) == (key.encode(), [entry])
        finally:
            await r.aclose()


async def test_a_pinned_connection_is_kept_dropped_on_error_and_never_shared(
    redis_url: str, room_name: str
) -> None:
    """``Pinned``: one connection taken from the pool and kept across batches; an error
    reply drops it (no reply left unread) and the next batch connects again; a call made
    while a blocking read is in flight on it goes through the pool instead of waiting
    behind the read (or interleaving with it)."""
    import asyncio

    from roomstreams._redisio import Pinned

    name = f"test-pinned-{room_name}"
    r = client(redis_url, name)
    key = f"test:pinned:{room_name}"
    pinned = Pinned(r)
    try:
        await pinned.execute([("XADD", key, "*", "n", "1")])
        kept = pinned._conn
        assert kept is not None and kept.is_connected
        await pinned.execute([("XADD", key, "*", "n", "2")])
        assert pinned._conn is kept  # the same connection, not one from the pool each time
        [(_, entries)] = await pinned.xread({key: "0-0"}, block=None, count=10)
        assert [f[b"n"] for _, f in entries] == [b"1", b"2"]

        with pytest.raises(Exception, match=r"WRONGTYPE|wrong kind"):
            await pinned.execute([("HSET", key, "f", "v")])  # a stream, not a hash
        assert not kept.is_connected  # dropped: nothing left unread on it
        assert (await pinned.execute([("XLEN", key)])) == [2]  # connects again

        blocked = asyncio.create_task(pinned.xread({key: "$"}, block=5000, count=1))


        async def read_blocks_in_redis() -> bool:
            return any(c["name"] == name and c["cmd"] == "xread" for c in await r.client_list())

        await wait_for_state(read_blocks_in_redis, 5, "the kept connection's read to block")
        # meanwhile: through the pool, at once (the kept connection is busy)
        third = await asyncio.wait_for(pinned.execute([("XADD", key, "*", "n", "3")]), 2)
        [(_, got)] = await asyncio.wait_for(blocked, 5)
        assert [i for i, _ in got] == third
    finally:
        await pinned.release()
        await r.delete(key)
        await r.aclose()
