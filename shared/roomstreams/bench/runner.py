"""Runs the benchmark: starts the system, runs the selected workloads, prints one JSON
document and stops everything (also on error or SIGTERM)."""

from __future__ import annotations

import asyncio
import contextlib
import datetime
import importlib.metadata
import json
import os
import platform
import resource
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Awaitable, Callable, Iterator
from pathlib import Path
from types import FrameType
from typing import Any

import psutil

from .bytedata import w5_bytes, w6_data
from .flood import wflood
from .floors import run_floors
from .rooms import w7_many_rooms, w8_idle
from .stats import rnd
from .system import REDIS_KINDS, BenchSystem, repo_root
from .w1p import w1p_latency
from .w3p import w3p_fanout
from .workloads import w1_latency, w2_throughput, w3_fanout, w4_memory

__all__ = ["PEERS", "RECEIVERS", "TARGETS", "WORKLOADS", "parse_workloads", "run", "run_cli"]

#: the system's own processes in a workload's CPU report, by name (redis, redis1, router,
#: router1, gateway0, ...; the rest are clients)
SERVER_PREFIXES = ("redis", "router", "gateway")
#: what W3p's receiver processes run: this package's client, or the TypeScript one
RECEIVERS = ("python", "node")
WORKLOADS = ("floors", "w1", "w1p", "w2", "w3", "w3p", "w4", "w5", "w6", "wflood", "w7", "w8")
#: workloads that ``all`` leaves out: minutes each, and tens of thousands of sockets
_ONLY_BY_NAME = ("w7", "w8")

#: Per-workload time limits (seconds); a workload past its limit is reported as an error.
_LIMITS = {
    "floors": 120.0,
    "w1": 90.0,
    "w1p": 120.0,
    "w2": 400.0,
    "w3": 240.0,
    "w3p": 300.0,
    "w4": 900.0,
    "w5": 400.0,
    "w6": 90.0,
    "wflood": 180.0,  # 15 measurements of 5 s, 12 of them beside a flooder process
    "w7": 1800.0,
    "w8": 1800.0,
}

#: The per-connection flood limits, lifted for every workload but ``wflood`` (which
#: restarts the gateways with the defaults): a single bench sender goes faster than the
#: default 2000 frames/s allows a participant.
LIFTED_LIMITS = {
    "ROOMSTREAMS_MAX_FRAMES_PER_SECOND": "1000000",
    "ROOMSTREAMS_MAX_BYTES_PER_SECOND": "1e12",
}

TARGETS: dict[str, float] = {
    "w1_p50_ms_max": 1.0,
    "w1_p99_ms_max": 3.0,
    "w2_mb_per_s_min": 60.0,
    "w3_deliveries_per_s_min": 50_000,
    "w4_kb_per_connection_max": 25.0,
    "w5_mb_per_s_min": 100.0,
    "w5_growth_mb_max": 64.0,
}

PEERS: dict[str, dict[str, float]] = {
    "socket.io (Node) + Redis streams adapter": {
        "w1_p50_ms": 0.25,
        "w1_p99_ms": 2.3,
        "w2_mb_per_s": 51,
        "w3_deliveries_per_s": 250_000,
        "w4_kb_per_connection": 15,
    },
    "python-socketio + Redis manager": {
        "w1_p50_ms": 0.64,
        "w1_p99_ms": 0.93,
        "w2_mb_per_s": 55,
        "w3_deliveries_per_s": 25_000,
        "w4_kb_per_connection": 43,
    },
}


def _say(msg: str) -> None:
    print(f"bench: {msg}", file=sys.stderr, flush=True)


def parse_workloads(spec: str) -> list[str]:
    """``"all"`` or a comma list of ``floors,w1,w1p,w2,w3,w3p,w4,w5,w6`` -> the workloads, in
    run order."""
    names = {s.strip().lower() for s in spec.split(",") if s.strip()}
    if not names or "all" in names:
        return [w for w in WORKLOADS if w not in _ONLY_BY_NAME or w in names]
    unknown = names - set(WORKLOADS)
    if unknown:
        raise ValueError(
            f"unknown workload(s) {', '.join(sorted(unknown))}; "
            f"choose from {', '.join(WORKLOADS)} or all"
        )
    return [w for w in WORKLOADS if w in names]


# -- environment ------------------------------------------------------------------------------


def _git(*args: str) -> str | None:
    root = repo_root()
    try:
        out = subprocess.run(
            ["git", *args],
            cwd=root,
            capture_output=True,
            text=True,
            timeout=10,
            check=True,
        )
    except (OSError, subprocess.SubprocessError):
        return None
    return out.stdout.strip()


def _cpu_model() -> str | None:
    with contextlib.suppress(OSError):
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    return platform.processor() or None


def _version(dist: str) -> str | None:
    try:
        return importlib.metadata.version(dist)
    except importlib.metadata.PackageNotFoundError:
        return None


def environment(system: BenchSystem | None) -> dict[str, Any]:
    commit = _git("rev-parse", "--short", "HEAD")
    dirty = _git("status", "--porcelain", "--untracked-files=no")
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    env: dict[str, Any] = {
        "cpu_count": os.cpu_count(),
        "cpu_count_physical": psutil.cpu_count(logical=False),
        "cpu_model": _cpu_model(),
        "memory_total_gb": rnd(psutil.virtual_memory().total / 1e9, 1),
        "platform": platform.platform(),
        "python": platform.python_version(),
        "python_implementation": platform.python_implementation(),
        "packages": {
            d: _version(d) for d in ("roomstreams", "websockets", "redis", "hiredis", "pydantic")
        },
        "commit": commit,
        "worktree_dirty": bool(dirty) if dirty is not None else None,
        "fd_limit": [soft, hard],
        "load_average_at_start": [rnd(x, 2) for x in os.getloadavg()],
    }
    if system is not None and system.router is not None:
        with contextlib.suppress(Exception):
            env["routers_partitions"] = system.routers_partitions()
    if system is not None and system.redis_cluster is not None:
        try:
            env["redis_server"] = {**system.server_info(), "redis_mode": "cluster"}
        except Exception as exc:
            env["redis_server"] = {"error": repr(exc)}
        env["redis_binary"] = system.redis_cluster.binary
        env["redis_cluster_masters"] = system.redis_cluster.masters
    if system is not None and system.redis_server is not None:
        try:
            env["redis_server"] = system.server_info()
        except Exception as exc:
            env["redis_server"] = {"error": repr(exc)}
        env["redis_binary"] = system.redis_server.binary
    return env


def _raise_fd_limit() -> None:
    """W4 holds thousands of sockets in this process (and children inherit the limit)."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    want = hard if hard != resource.RLIM_INFINITY else 1 << 20
    if soft == resource.RLIM_INFINITY or soft >= want:
        return
    with contextlib.suppress(ValueError, OSError):
        resource.setrlimit(resource.RLIMIT_NOFILE, (want, hard))


@contextlib.contextmanager
def _sigterm_exits() -> Iterator[None]:
    """SIGTERM raises SystemExit, so the ``finally`` that stops the system runs."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return

    def on_term(_sig: int, _frame: FrameType | None) -> None:
        raise SystemExit(128 + signal.SIGTERM)

    previous = signal.signal(signal.SIGTERM, on_term)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)


# -- derived figures ----------------------------------------------------------------------------


def _get(doc: dict[str, Any], *path: str) -> Any:
    cur: Any = doc
    for p in path:
        if not isinstance(cur, dict) or p not in cur:
            return None
        cur = cur[p]
    return cur


def _ratio(a: Any, b: Any) -> float | None:
    if isinstance(a, int | float) and isinstance(b, int | float) and b > 0:
        return rnd(a / b, 2)
    return None


def derived(doc: dict[str, Any]) -> tuple[dict[str, Any], dict[str, Any]]:
    """``(ratios, targets)`` from the figures in ``doc``."""
    w1_p50, w1_p99 = _get(doc, "w1", "p50_ms"), _get(doc, "w1", "p99_ms")
    redis_p50 = _get(doc, "floors", "redis_xadd_xread", "p50_ms")
    ws_p50 = _get(doc, "floors", "websocket_echo", "p50_ms")
    path_floor = None
    if isinstance(redis_p50, float) and isinstance(ws_p50, float):
        # client -> gateway (one WebSocket hop), gateway -> router and router -> gateway (two
        # Redis hops), gateway -> client (one WebSocket hop): one echo round trip + 2 Redis hops
        path_floor = rnd(ws_p50 + 2 * redis_p50)
    ratios: dict[str, Any] = {
        "w1_p50_over_redis_floor_p50": _ratio(w1_p50, redis_p50),
        "w1_p50_over_websocket_floor_p50": _ratio(w1_p50, ws_p50),
        "path_floor_p50_ms": path_floor,
        "path_floor_means": "websocket echo p50 + 2 x redis XADD->XREAD p50",
        "w1_p50_over_path_floor": _ratio(w1_p50, path_floor),
    }
    if "w1p" in doc:  # W1 with the receiver in its own process: the same floor
        ratios["w1p_p50_over_path_floor"] = _ratio(_get(doc, "w1p", "p50_ms"), path_floor)
        ratios["w1p_p50_over_w1_p50"] = _ratio(_get(doc, "w1p", "p50_ms"), w1_p50)
    relay = _get(doc, "floors", "relay")
    if isinstance(relay, dict) and "p50_ms" in relay:
        # W1 against the same path built of bare relays (floors.relay): what the services'
        # own work adds, in latency and in each process's CPU per chunk
        ratios["w1_p50_over_relay_p50"] = _ratio(w1_p50, relay.get("p50_ms"))
        ratios["w1_p99_over_relay_p99"] = _ratio(w1_p99, relay.get("p99_ms"))
        mine = _get(doc, "w1", "cpu_us_per_chunk") or {}
        bare = relay.get("cpu_us_per_chunk") or {}
        pairs = {"gateway0": "relay_in", "router": "relay_mid", "gateway1": "relay_out"}
        pairs.update({"redis": "redis", "bench": "bench"})
        if mine:
            ratios["w1_cpu_per_chunk_over_relay"] = {
                n: _ratio(mine.get(n), bare.get(r)) for n, r in pairs.items()
            }
    picows = _get(doc, "floors", "relay_picows")
    if isinstance(relay, dict) and isinstance(picows, dict) and "p50_ms" in picows:
        # the same bare path with picows in the two WebSocket relays: what the library costs
        ratios["relay_picows_p50_over_relay_p50"] = _ratio(
            picows.get("p50_ms"), relay.get("p50_ms")
        )
        ratios["relay_picows_p99_over_relay_p99"] = _ratio(
            picows.get("p99_ms"), relay.get("p99_ms")
        )
        bare = relay.get("cpu_us_per_chunk") or {}
        fast = picows.get("cpu_us_per_chunk") or {}
        ratios["relay_picows_cpu_per_chunk_over_relay"] = {
            n: _ratio(fast.get(n), v) for n, v in bare.items()
        }
    send = _get(doc, "floors", "socket_send", "cpu_us_per_send_paced_1ms")
    for w in ("w3", "w3p"):
        # the servers' CPU per delivery at 1000 chunks/s against one socket send()'s: a
        # delivery is at least one send (chunks 1 ms apart: nothing to batch per socket)
        at = [r for r in _get(doc, w, "rates") or [] if r.get("rate_per_s") == 1000]
        per = at[0].get("cpu_us_per_delivery") if at else None
        if isinstance(per, dict):
            servers = sum(v for k, v in per.items() if k.startswith(SERVER_PREFIXES))
            ratios[f"{w}_server_cpu_us_per_delivery_at_1000"] = rnd(servers, 2)
            ratios[f"{w}_server_cpu_per_delivery_over_send_floor"] = _ratio(servers, send)
    w2 = _get(doc, "w2", "mb_per_s")
    w3 = _get(doc, "w3", "deliveries_per_s_at_highest")
    w3p = _get(doc, "w3p", "deliveries_per_s_at_highest")
    w4 = _get(doc, "w4", "gateway_kb_per_connection")
    w5 = _get(doc, "w5", "mb_per_s")
    w5_growth = _get(doc, "w5", "max_growth_mb")
    w5_intact = _get(doc, "w5", "complete")
    w6_p50 = _get(doc, "w6", "p50_ms")
    if "w5" in doc:
        ratios["w5_mb_per_s_over_w2_mb_per_s"] = _ratio(w5, w2)
    if "w6" in doc:
        # a data packet takes the same path as a W1 chunk, so the same floor applies
        ratios["w6_p50_over_redis_floor_p50"] = _ratio(w6_p50, redis_p50)
        ratios["w6_p50_over_websocket_floor_p50"] = _ratio(w6_p50, ws_p50)
        ratios["w6_p50_over_path_floor"] = _ratio(w6_p50, path_floor)
        ratios["w6_p50_over_w1_p50"] = _ratio(w6_p50, w1_p50)

    def check(v: Any, ok: Callable[[float], bool]) -> bool | None:
        return ok(float(v)) if isinstance(v, int | float) else None

    targets = {
        **TARGETS,
        "met": {
            "w1_p50": check(w1_p50, lambda v: v < TARGETS["w1_p50_ms_max"]),
            "w1_p99": check(w1_p99, lambda v: v < TARGETS["w1_p99_ms_max"]),
            "w2": check(w2, lambda v: v >= TARGETS["w2_mb_per_s_min"]),
            "w3": check(w3, lambda v: v >= TARGETS["w3_deliveries_per_s_min"]),
            # the same target, with the receivers in processes of their own
            "w3p": check(w3p, lambda v: v >= TARGETS["w3_deliveries_per_s_min"]),
            "w4": check(w4, lambda v: v <= TARGETS["w4_kb_per_connection_max"]),
            # only a transfer that arrived whole (sha256 equal) counts
            "w5_mb_per_s": check(w5, lambda v: v >= TARGETS["w5_mb_per_s_min"])
            if w5_intact is not False
            else False,
            "w5_growth": check(w5_growth, lambda v: v <= TARGETS["w5_growth_mb_max"]),
        },
    }
    return ratios, targets


# -- running ------------------------------------------------------------------------------------


def _counters_during(
    before: list[dict[str, float]], after: list[dict[str, float]]
) -> dict[str, list[int | None]]:
    """What each router's partition counters did during a workload: leases lost (a healthy
    router under load loses none), partitions taken over and acquired; None for a router
    that did not answer (wflood restarts the gateways, W4 gateway 1: never a router)."""
    out: dict[str, list[int | None]] = {}
    for key in ("leases_lost", "takeovers", "partitions_acquired"):
        out[key] = [
            int(a[key] - b[key]) if key in a and key in b else None
            for b, a in zip(before, after, strict=False)
        ]
    return out


async def _run_guarded(
    system: BenchSystem,
    selected: list[str],
    quick: bool,
    receivers: str = "python",
    rooms: int | None = None,
) -> dict[str, dict[str, Any]]:
    """SIGTERM/SIGINT cancel the run (so every workload's ``finally`` disconnects its
    participants while the system is still up), then end the process with SystemExit."""
    loop = asyncio.get_running_loop()
    task = asyncio.current_task()
    assert task is not None
    got: list[int] = []

    def on_signal(sig: int) -> None:
        if not got:
            _say(f"signal {sig}: stopping")
            got.append(sig)
            task.cancel()

    installed: list[int] = []
    if threading.current_thread() is threading.main_thread():
        for sig in (signal.SIGTERM, signal.SIGINT):
            with contextlib.suppress(NotImplementedError, RuntimeError, ValueError):
                loop.add_signal_handler(sig, on_signal, sig)
                installed.append(sig)
    try:
        return await _run_workloads(system, selected, quick, receivers, rooms)
    except asyncio.CancelledError:
        if got:
            raise SystemExit(128 + got[0]) from None
        raise
    finally:
        for installed_sig in installed:
            loop.remove_signal_handler(installed_sig)


async def _run_workloads(
    system: BenchSystem,
    selected: list[str],
    quick: bool,
    receivers: str = "python",
    rooms: int | None = None,
) -> dict[str, dict[str, Any]]:
    jobs: dict[str, Callable[[], Awaitable[dict[str, Any]]]] = {
        "floors": lambda: run_floors(system.redis_url, quick=quick),
        "w1": lambda: w1_latency(system, quick=quick),
        "w1p": lambda: w1p_latency(system, quick=quick),
        "w2": lambda: w2_throughput(system, quick=quick),
        "w3": lambda: w3_fanout(system, quick=quick),
        "w3p": lambda: w3p_fanout(system, quick=quick, receivers=receivers),
        "w4": lambda: w4_memory(system, quick=quick),
        "w5": lambda: w5_bytes(system, quick=quick),
        "w6": lambda: w6_data(system, quick=quick),
        "wflood": lambda: wflood(system, quick=quick),
        "w7": lambda: w7_many_rooms(system, quick=quick, rooms=rooms),
        "w8": lambda: w8_idle(system, quick=quick, rooms=rooms),
    }
    results: dict[str, dict[str, Any]] = {}
    for name in selected:
        _say(f"{name} ...")
        t0 = time.perf_counter()
        before = await asyncio.to_thread(system.router_counters)
        try:
            async with asyncio.timeout(_LIMITS[name]):
                results[name] = await jobs[name]()
        except Exception as exc:
            _say(f"{name} failed: {exc!r}")
            results[name] = {"error": repr(exc)}
        results[name]["workload_seconds"] = rnd(time.perf_counter() - t0, 1)
        after = await asyncio.to_thread(system.router_counters)
        results[name]["routers_during"] = _counters_during(before, after)
        _say(f"{name} done in {results[name]['workload_seconds']} s")
    return results


def run(
    workloads: str = "all",
    *,
    quick: bool = False,
    receivers: str = "python",
    rooms: int | None = None,
    routers: int = 1,
    redis: str = "standalone",
) -> dict[str, Any]:
    """Start the system, run ``workloads``, stop the system; the report as a dict.
    ``receivers``: W3p's receiver processes, ``"python"`` or ``"node"`` (the TypeScript
    client's ``shared/js/bench/receivers.mjs``). ``rooms``: W7's and W8's room count (default
    10,000 and 100,000). ``routers``: routers sharing the partitions. ``redis``:
    ``"standalone"`` or ``"cluster"`` (a local three-master Redis Cluster)."""
    selected = parse_workloads(workloads)
    if receivers not in RECEIVERS:
        raise ValueError(f"receivers must be one of {', '.join(RECEIVERS)}, not {receivers!r}")
    if redis not in REDIS_KINDS:
        raise ValueError(f"redis must be one of {', '.join(REDIS_KINDS)}, not {redis!r}")
    if routers < 1 or (rooms is not None and rooms < 1):
        raise ValueError("routers and rooms must be at least 1")
    started = time.perf_counter()
    date = datetime.datetime.now(datetime.UTC).replace(microsecond=0).isoformat()
    _raise_fd_limit()
    system = BenchSystem(gateway_env=dict(LIFTED_LIMITS), routers=routers, redis=redis)
    with _sigterm_exits():
        try:
            _say(f"starting redis ({redis}), {routers} router(s) and two gateways on 127.0.0.1 ...")
            system.start()
            env = environment(system)
            results = asyncio.run(_run_guarded(system, selected, quick, receivers, rooms))
        finally:
            _say("stopping the system ...")
            t_stop = time.perf_counter()
            system.stop()
            _say(f"stopped in {time.perf_counter() - t_stop:.1f} s")
    doc: dict[str, Any] = {
        "benchmark": "roomstreams",
        "date": date,
        "command": " ".join([Path(sys.argv[0]).name, *sys.argv[1:]]) if sys.argv else None,
        "call": f"run_cli(workloads={workloads!r}, quick={quick}, receivers={receivers!r}, "
        f"rooms={rooms!r}, routers={routers}, redis={redis!r})",
        "redis": redis,
        "routers": routers,
        "quick": quick,
        "workloads": selected,
        "units": "ms = milliseconds; MB = 10^6 bytes; KB = 10^3 bytes",
        "environment": env,
        **results,
    }
    doc["ratios"], doc["targets"] = derived(doc)
    doc["peers"] = PEERS
    doc["total_seconds"] = rnd(time.perf_counter() - started, 1)
    return doc


def run_cli(
    workloads: str = "all",
    out: Path | None = None,
    quick: bool = False,
    receivers: str = "python",
    rooms: int | None = None,
    routers: int = 1,
    redis: str = "standalone",
) -> None:
    """Run the benchmark; print the JSON report to stdout and, if ``out`` is given, write it
    there too. Progress goes to stderr, and last a short table for people (bench/summary.py)."""
    from .summary import summary_table

    doc = run(
        workloads, quick=quick, receivers=receivers, rooms=rooms, routers=routers, redis=redis
    )
    text = json.dumps(doc, indent=2)
    if out is not None:
        Path(out).write_text(text + "\n")
    sys.stdout.write(text + "\n")
    sys.stdout.flush()
    sys.stderr.write(summary_table(doc))
    sys.stderr.flush()
