"""The services' Redis connections (standalone or Redis Cluster, chosen from the URL) and
typed wrappers over the redis-py stream commands they use (redis-py's own annotations are
too loose for ``mypy --strict``).

A URL ``redis://`` / ``rediss://`` / ``unix://`` names one standalone server, as always.
``redis+cluster://host:port[,host:port...]`` (or ``rediss+cluster://``) names a Redis
Cluster by one or more seed nodes: the client discovers the rest and follows the slots
(``MOVED``/``ASK``) as they move. Every multi-key command the services send stays within one
hash slot (see :mod:`roomstreams.protocol.keys`); pipelines that span slots go through
redis-py's cluster pipeline, which splits them per node."""

from __future__ import annotations

import socket
from collections.abc import Mapping, Sequence
from typing import Any, TypeAlias, cast
from urllib.parse import unquote, urlsplit

import hiredis
import redis
import redis.asyncio as aioredis
import redis.cluster
from redis.asyncio.cluster import ClusterNode, RedisCluster

__all__ = [
    "CLUSTER_SCHEMES",
    "Client",
    "Command",
    "Pinned",
    "StreamEntries",
    "SyncClient",
    "client",
    "cluster_seeds",
    "execute",
    "is_cluster_url",
    "last_id",
    "parse_xread",
    "server_run_id",
    "sync_client",
    "xadd_command",
    "xread",
    "xread_command",
    "xrevrange",
]

#: A client of either kind: every command the services send works on both.
Client: TypeAlias = aioredis.Redis | RedisCluster
SyncClient: TypeAlias = redis.Redis | redis.cluster.RedisCluster

#: URL scheme of a Redis Cluster -> the scheme of its nodes' connections
CLUSTER_SCHEMES = {"redis+cluster": "redis", "rediss+cluster": "rediss"}

Fields = dict[bytes, bytes]
StreamEntries = list[tuple[bytes, list[tuple[bytes, Fields]]]]
#: one command as its arguments: ``("XADD", key, "*", field, value)``
Command = tuple[bytes | str | int | float, ...]


def is_cluster_url(url: str) -> bool:
    """Does ``url`` name a Redis Cluster (``redis+cluster://`` or ``rediss+cluster://``)?"""
    return url.split("://", 1)[0].lower() in CLUSTER_SCHEMES


def cluster_seeds(url: str) -> tuple[str, list[tuple[str, int]]]:
    """``redis+cluster://u:p@h1:1,h2:2/?q`` -> (``redis://u:p@h1:1/?q``, [(h1, 1), (h2, 2)]):
    the URL of the first seed in the nodes' own scheme (credentials and options apply to
    every node) and all seeds. A database other than 0 is an error: a cluster has only 0."""
    scheme, rest = url.split("://", 1)
    node_scheme = CLUSTER_SCHEMES.get(scheme.lower())
    if node_scheme is None:
        raise ValueError(f"not a Redis Cluster URL (redis+cluster://...): {url!r}")
    cut = min((i for i in (rest.find("/"), rest.find("?")) if i >= 0), default=len(rest))
    netloc, tail = rest[:cut], rest[cut:]
    auth, at, hosts = netloc.rpartition("@")
    seeds: list[tuple[str, int]] = []
    for hostport in hosts.split(","):
        try:
            parts = urlsplit(f"//{hostport}")
            seed = (unquote(parts.hostname or ""), parts.port or 6379)
        except ValueError as exc:
            raise ValueError(f"bad seed {hostport!r} in Redis Cluster URL: {exc}") from None
        if not seed[0]:
            raise ValueError(f"a Redis Cluster URL needs host:port seeds: {url!r}")
        seeds.append(seed)
    db = tail.split("?", 1)[0].strip("/")
    if db not in ("", "0"):
        raise ValueError(f"a Redis Cluster has only database 0, not {db!r}")
    node_url = f"{node_scheme}://{auth}{at}{hosts.split(',', 1)[0]}{tail}"
    return node_url, seeds


def xread_command(
    streams: Mapping[str, bytes | str], *, block: int | None, count: int | None
) -> Command:
    """``XREAD [COUNT n] [BLOCK ms] STREAMS k1 k2 ... id1 id2 ...`` as a :data:`Command`."""
    args: list[bytes | str | int | float] = ["XREAD"]
    if count is not None:
        args += ["COUNT", count]
    if block is not None:
        args += ["BLOCK", block]
    args.append("STREAMS")
    args.extend(streams.keys())
    args.extend(streams.values())
    return tuple(args)


def xadd_command(
    key: str, fields: Mapping[Any, bytes | str | int | float], *, maxlen: int
) -> Command:
    """``XADD key MAXLEN ~ n * f1 v1 ...`` as a :data:`Command`."""
    args: list[bytes | str | int | float] = ["XADD", key, "MAXLEN", "~", maxlen, "*"]
    for k, v in fields.items():
        args += [k, v]
    return tuple(args)


def parse_xread(reply: Any) -> StreamEntries:
    """An ``XREAD`` reply (RESP3: a map of key -> entries; RESP2: a list of [key, entries];
    nil when nothing came) -> :data:`StreamEntries`."""
    if not reply:
        return []
    out: StreamEntries = []
    for key, entries in reply.items() if isinstance(reply, dict) else reply:
        parsed = []
        for entry_id, flat in entries:
            it = iter(flat)
            parsed.append((entry_id, dict(zip(it, it, strict=True))))
        out.append((key, parsed))
    return out


async def execute(r: Client, commands: Sequence[Command]) -> list[Any]:
    """Send ``commands`` as one pipeline (not a transaction) and return their replies.

    On a standalone server the commands go straight through one pooled connection: packed
    together, written once, the raw replies read back (bytes, ints, nested lists: no
    response callbacks). redis-py's ``Pipeline`` costs about as much CPU again as the
    round trip itself (measured: 158 µs against 76 µs for the same two commands), and the
    services' hot paths are one such pipeline per wake-up. Any error (an error reply too)
    drops the connection, so no reply is left unread on it, and is raised. On a cluster,
    redis-py's cluster pipeline splits the commands per node, replies parsed as usual."""
    if isinstance(r, RedisCluster):
        async with r.pipeline(transaction=False) as pipe:
            for cmd in commands:
                pipe.execute_command(*cmd)
            return await pipe.execute()
    pool = r.connection_pool
    conn = await pool.get_connection()  # type: ignore[no-untyped-call]
    try:
        return await _send(conn, commands)
    finally:
        await pool.release(conn)


async def _send(conn: aioredis.Connection, commands: Sequence[Command]) -> list[Any]:
    """Write ``commands`` at once on ``conn`` and read their raw replies; any error drops
    the connection (no reply left unread on it; it connects again when next used)."""
    try:
        await conn.send_packed_command(conn.pack_commands(commands), check_health=False)
        return [await conn.read_response() for _ in commands]
    except BaseException:
        await conn.disconnect()
        raise


class Pinned:
    """A loop's own connection from ``r``'s pool, for a loop that sends one command batch
    at a time and waits for its replies (a partition worker, a gateway's append and inbox
    loops). Taking a connection from redis-py's pool and giving it back costs about 20 µs
    of CPU a round trip (its pool, re-auth and event machinery): a third of what the
    round trip itself costs, paid on every wake-up of the hot path. Here the connection
    is taken once and kept; an error (or a cancellation) drops it, and the next batch
    connects again. A call made while another is in flight, and every call on a cluster,
    goes through :func:`execute` as usual."""

    __slots__ = ("_busy", "_conn", "r")

    def __init__(self, r: Client) -> None:
        self.r = r
        self._conn: aioredis.Connection | None = None
        self._busy = False

    async def execute(self, commands: Sequence[Command]) -> list[Any]:
        """:func:`execute` on the kept connection."""
        return await self._run(commands)

    async def _run(self, commands: Sequence[Command]) -> list[Any]:
        r = self.r
        if self._busy or isinstance(r, RedisCluster):
            return await execute(r, commands)
        self._busy = True
        try:
            conn = self._conn
            if conn is None:
                conn = self._conn = await r.connection_pool.get_connection()  # type: ignore[no-untyped-call]
            return await _send(conn, commands)
        finally:
            self._busy = False

    async def xread(
        self, streams: Mapping[str, bytes | str], *, block: int | None, count: int | None
    ) -> StreamEntries:
        """:func:`xread` on the kept connection."""
        if self._busy or isinstance(self.r, RedisCluster):
            return await xread(self.r, streams, block=block, count=count)
        (reply,) = await self._run([xread_command(streams, block=block, count=count)])
        return parse_xread(reply)

    async def release(self) -> None:
        """Give the connection back to the pool (closing the client closes it too)."""
        conn, self._conn = self._conn, None
        if conn is not None:
            await self.r.connection_pool.release(conn)  # type: ignore[union-attr]


async def xread(
    r: Client,
    streams: Mapping[str, bytes | str],
    *,
    block: int | None,
    count: int | None,
) -> StreamEntries:
    """``XREAD [COUNT n] [BLOCK ms] STREAMS ...``: [(key, [(id, fields), ...]), ...].
    On a cluster every key must hash to one slot (the services' reads always do)."""
    command = xread_command(streams, block=block, count=count)
    if isinstance(r, RedisCluster):
        # The keys share one slot: name its node. Left to find the slot itself, redis-py
        # asks which keys XREAD names (COMMAND GETKEYS, XREAD's keys are "movable") of
        # the node it asked when it first connected, outside its retry loop: once that
        # master died, every read failed at once and nothing refreshed the client's view
        # of the cluster, so a gateway whose inbox read went through it was deaf after a
        # failover until something else failed. Naming the node, a failed read marks the
        # view stale (redis-py refreshes it before the next command), as other commands do.
        await r.initialize()  # a no-op unless the last command failed on a node
        node = r.get_node_from_key(next(iter(streams)))
        resp: Any = await r.execute_command(*command, target_nodes=node)
        return cast(StreamEntries, resp or [])
    (reply,) = await execute(r, [command])
    return parse_xread(reply)


async def xrevrange(
    r: Client, key: str, end: str = "+", start: str = "-", *, count: int | None = None
) -> list[tuple[bytes, Fields]]:
    """``XREVRANGE key end start [COUNT n]``: newest first."""
    resp: Any = await r.xrevrange(key, end, start, count=count)
    return cast(list[tuple[bytes, Fields]], resp or [])


async def last_id(r: Client, key: str) -> bytes | None:
    """Id of the newest entry of a stream, or None if it is empty or missing."""
    newest = await xrevrange(r, key, count=1)
    return newest[0][0] if newest else None


async def server_run_id(r: Client, key: str) -> str:
    """``run_id`` of the server that holds ``key`` (new at every start of that server; on a
    cluster, also new when the key's slot moves to another node or fails over to a replica)."""
    info: Any
    if isinstance(r, RedisCluster):
        await r.initialize()  # a no-op once the slots are known
        node = r.get_node_from_key(key)
        info = await r.info("server", target_nodes=node)
    else:
        info = await r.info("server")
    return str(info.get("run_id", ""))


class _HiredisPackingConnection(aioredis.Connection):
    """redis-py's asyncio connection, packing commands with hiredis (C) instead of Python:
    the services' hot path is a pipeline of XADDs per wake-up, and packing was the largest
    single cost in it."""

    def pack_command(self, *args: Any) -> list[bytes]:
        name = args[0]
        if isinstance(name, str) and " " not in name:
            try:
                return [hiredis.pack_command(args)]
            except TypeError:  # a type hiredis does not pack: let redis-py encode it
                pass
        packed: list[bytes] = super().pack_command(*args)
        return packed


def _keepalive_options() -> dict[int, int]:
    """TCP keepalive probing after 5 s idle, every 2 s, given up after 3 unanswered: a path to
    Redis that dies silently fails a blocked read within about 11 s (where the platform
    has the options; elsewhere the system's keepalive defaults apply)."""
    names = {"TCP_KEEPIDLE": 5, "TCP_KEEPINTVL": 2, "TCP_KEEPCNT": 3}
    return {getattr(socket, n): v for n, v in names.items() if hasattr(socket, n)}


def client(url: str, name: str | None = None) -> Client:
    """A Redis client for the services' hot paths (hiredis packing on plain ``redis://``),
    its connections named ``name`` in ``CLIENT LIST``; a :class:`RedisCluster` for a
    ``redis+cluster://`` URL.

    No per-reply socket timeout: redis-py wraps every reply read of a pipeline in its own
    ``asyncio.timeout``, a measurable cost per entry (blocking reads pass their own). TCP
    keepalive instead notices a dead path to Redis, at no cost per command."""
    options: dict[str, Any] = {
        "client_name": name,
        "socket_timeout": None,
        "socket_keepalive": True,
        "socket_keepalive_options": _keepalive_options(),
    }
    if is_cluster_url(url):
        node_url, seeds = cluster_seeds(url)
        cluster = RedisCluster.from_url(
            node_url,
            startup_nodes=[ClusterNode(h, p) for h, p in seeds],
            **options,
        )
        return cluster
    if urlsplit(url).scheme == "redis":
        pool = aioredis.ConnectionPool.from_url(
            url, connection_class=_HiredisPackingConnection, **options
        )
        return aioredis.Redis.from_pool(pool)  # closing the client closes the pool
    return aioredis.Redis.from_url(url, **options)


def sync_client(url: str, **options: Any) -> SyncClient:
    """A blocking client (CLI checks, tests) for either kind of URL; ``options`` go to
    redis-py (``socket_timeout``, ``decode_responses``, ...)."""
    if is_cluster_url(url):
        node_url, seeds = cluster_seeds(url)
        nodes = [redis.cluster.ClusterNode(h, p) for h, p in seeds]  # type: ignore[no-untyped-call]
        return redis.cluster.RedisCluster.from_url(node_url, startup_nodes=nodes, **options)
    return redis.Redis.from_url(url, **options)
