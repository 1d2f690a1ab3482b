"""W3p: W3's fan-out with the receivers in processes of their own, as real clients would be.

One receiver process per gateway (``python -m roomstreams.bench.w3p_receivers``) hosts that
gateway's receivers; the sender stays in the benchmark process, on gateway 0. The rates, the
chunks and the ``sustained`` rule are W3's. What differs is the clock: ``perf_counter`` is
not comparable across processes, so the sender stamps every chunk with ``time.monotonic_ns()``
(``CLOCK_MONOTONIC``, one clock for every process of the machine on Linux) just before
``writer.write()``, and each receiver subtracts that stamp from its own ``monotonic_ns()``
taken just after its iterator yields the chunk.

A chunk: 10 digits of sequence number, 19 digits of the sender's ``monotonic_ns``, filler to
100 characters.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import json
import os
import shutil
import sys
import time
import uuid
from array import array
from pathlib import Path
from typing import Any

from ..client import Room, TextStreamWriter
from .stats import latency_summary, rnd
from .system import BenchSystem, _die_with_parent
from .workloads import (
    CHUNK_BYTES,
    CONNECT_TIMEOUT,
    SEQ_DIGITS,
    TOPIC,
    CpuMeter,
    _say,
    connect,
    disconnect_all,
    fanout_summary,
    new_room,
)

__all__ = [
    "SEQ_DIGITS",
    "STAMP_END",
    "TOPIC",
    "ReceiverProcess",
    "node_receivers_command",
    "stamped_chunk",
    "stamped_send",
    "w3p_fanout",
]

STAMP_DIGITS = 19  # an int64 of nanoseconds
STAMP_END = SEQ_DIGITS + STAMP_DIGITS
_FILLER = "." * (CHUNK_BYTES - STAMP_END)
_MODULE = "roomstreams.bench.w3p_receivers"
#: seconds a receiver process may take to start and connect its receivers
_READY_TIMEOUT = 90.0
#: seconds a receiver process may take to send a stream's report
_REPORT_TIMEOUT = 60.0
#: seconds a receiver process gets to disconnect and exit before SIGTERM, then SIGKILL
_QUIT_TIMEOUT = 15.0
_TERM_TIMEOUT = 5.0
#: the longest protocol line (a report: 8 bytes of base64 per latency, about 2.7 MB at 5000/s)
_LINE_LIMIT = 256 * 1024 * 1024


def node_receivers_command() -> list[str]:
    """The TypeScript client's receiver process (``shared/js/bench/receivers.mjs``, on the
    built ``shared/js/dist``), which speaks this module's protocol; raises ``RuntimeError``
    saying what is missing when it cannot run here."""
    js = Path(__file__).resolve().parents[2] / "js"
    script, dist = js / "bench" / "receivers.mjs", js / "dist" / "roomstreams.js"
    node = shutil.which("node")
    if node is None:
        raise RuntimeError("node is not on PATH: Node receivers need Node 20 or later")
    if not script.is_file():
        raise RuntimeError(f"{script} is missing (Node receivers run from a source checkout)")
    if not dist.is_file():
        raise RuntimeError(f"{dist} is missing: cd {js} && npm ci && npm run build")
    return [node, str(script)]


def stamped_chunk(seq: int, ns: int) -> str:
    return f"{seq:0{SEQ_DIGITS}d}{ns:0{STAMP_DIGITS}d}{_FILLER}"


class ReceiverProcess:
    """One ``w3p_receivers`` child: start, commands, events, and a stop that always ends it."""

    def __init__(
        self,
        gateway: int,
        specs: list[tuple[str, str, str]],
        command: list[str] | None = None,
    ) -> None:
        self.gateway = gateway
        self.specs = specs
        #: the program to run: this module's Python receivers by default, or another client
        #: speaking the same protocol (``node_receivers_command()``)
        self.command = command or [sys.executable, "-m", _MODULE]
        self.proc: asyncio.subprocess.Process | None = None
        self.pid = 0
        self._events: asyncio.Queue[dict[str, Any] | None] = asyncio.Queue()
        self._reader: asyncio.Task[None] | None = None

    @property
    def label(self) -> str:
        return f"receivers_gw{self.gateway}"

    async def start(self) -> None:
        env = {k: v for k, v in os.environ.items() if not k.startswith("ROOMSTREAMS_")}
        self.proc = await asyncio.create_subprocess_exec(
            *self.command,
            stdin=asyncio.subprocess.PIPE,
            stdout=asyncio.subprocess.PIPE,
            env=env,
            limit=_LINE_LIMIT,
            preexec_fn=_die_with_parent,
        )
        self.pid = self.proc.pid
        self._reader = asyncio.get_running_loop().create_task(self._read())
        await self._send(
            {
                "receivers": [list(s) for s in self.specs],
                "concurrency": 25,
                "connect_timeout": CONNECT_TIMEOUT,
            }
        )

    async def _read(self) -> None:
        assert self.proc is not None and self.proc.stdout is not None
        try:
            while line := await self.proc.stdout.readline():
                try:
                    msg = json.loads(line)
                except ValueError:
                    msg = {"event": "error", "error": f"not a protocol line: {line[:80]!r}"}
                self._events.put_nowait(msg)
        finally:
            self._events.put_nowait(None)

    async def _send(self, msg: dict[str, Any]) -> None:
        assert self.proc is not None and self.proc.stdin is not None
        self.proc.stdin.write((json.dumps(msg) + "\n").encode())
        await self.proc.stdin.drain()

    async def expect(self, event: str, sid: str | None = None) -> dict[str, Any]:
        """The next event ``event`` (for stream ``sid``); other events are dropped (a stream's
        ``finished`` may arrive after its wait timed out)."""
        while True:
            msg = await self._events.get()
            if msg is None:
                self._events.put_nowait(None)
                rc = self.proc.returncode if self.proc is not None else None
                raise RuntimeError(f"{self.label} (pid {self.pid}) ended its output, rc={rc}")
            if msg.get("event") == "error":
                raise RuntimeError(f"{self.label}: {msg.get('error')}")
            if msg.get("event") == event and (sid is None or msg.get("sid") == sid):
                return msg

    async def report(self, sid: str) -> dict[str, Any]:
        await self._send({"cmd": "report", "sid": sid})
        async with asyncio.timeout(_REPORT_TIMEOUT):
            return await self.expect("report", sid)

    async def stop(self) -> None:
        """Ask it to quit (its receivers disconnect), then SIGTERM, then SIGKILL; never
        raises, and kills it even when cancelled."""
        proc = self.proc
        if proc is None:
            return
        try:
            if proc.returncode is None:
                with contextlib.suppress(Exception):
                    await asyncio.wait_for(self._send({"cmd": "quit"}), 2)
                if proc.stdin is not None:
                    proc.stdin.close()
                try:
                    await asyncio.wait_for(proc.wait(), _QUIT_TIMEOUT)
                except TimeoutError:
                    _say(f"w3p: {self.label} (pid {proc.pid}) did not quit; SIGTERM")
                    with contextlib.suppress(ProcessLookupError):
                        proc.terminate()
                    try:
                        await asyncio.wait_for(proc.wait(), _TERM_TIMEOUT)
                    except TimeoutError:
                        _say(f"w3p: {self.label} (pid {proc.pid}) still running; SIGKILL")
        except Exception:
            pass
        finally:
            if proc.returncode is None:
                with contextlib.suppress(ProcessLookupError):
                    proc.kill()
            if self._reader is not None:
                self._reader.cancel()


async def _stop_all(procs: list[ReceiverProcess]) -> None:
    await asyncio.gather(*(p.stop() for p in procs), return_exceptions=True)


async def _each(procs: list[ReceiverProcess], event: str, sid: str | None = None) -> list[Any]:
    """``event`` from every process; the first error cancels the other waits."""
    tasks = [asyncio.ensure_future(p.expect(event, sid)) for p in procs]
    try:
        return list(await asyncio.gather(*tasks))
    finally:
        for t in tasks:
            t.cancel()


async def stamped_send(writer: TextStreamWriter, total: int, rate: float) -> dict[str, Any]:
    """W3's pacing (absolute ``loop.time()`` deadlines; when behind, catch up without
    sleeping but yield once per chunk), with each chunk stamped with ``monotonic_ns()``
    just before ``writer.write()``."""
    loop = asyncio.get_running_loop()
    clock = time.monotonic_ns
    start = loop.time() + 0.01
    behind = 0
    first_ns = last_ns = 0
    for i in range(total):
        delay = start + i / rate - loop.time()
        if delay > 0:
            await asyncio.sleep(delay)
        else:
            if delay < -0.005:
                behind += 1
            await asyncio.sleep(0)
        last_ns = clock()
        if i == 0:
            first_ns = last_ns
        await writer.write(stamped_chunk(i, last_ns))
    span = (last_ns - first_ns) / 1e9
    return {
        "chunks_sent": total,
        "send_rate_achieved_per_s": rnd((total - 1) / span, 1) if span > 0 else None,
        "chunks_sent_over_5ms_late": behind,
        "_first_ns": first_ns,
    }


async def w3p_fanout(
    system: BenchSystem, *, quick: bool, receivers: str = "python"
) -> dict[str, Any]:
    """``receivers``: ``"python"`` (this package's client) or ``"node"`` (the TypeScript
    client, ``shared/js/bench/receivers.mjs``) in the receiver processes."""
    if receivers not in ("python", "node"):
        raise ValueError(f"receivers must be 'python' or 'node', not {receivers!r}")
    command = node_receivers_command() if receivers == "node" else None
    n_rx = 10 if quick else 50
    per_rate_s = 1.0 if quick else 2.0
    rates = [500, 1000, 2000, 5000]
    p99_limit_ms = 50.0
    room = new_room("w3p")
    names = [f"rx{i:02d}" for i in range(n_rx)]
    urls = system.urls
    procs = [
        ReceiverProcess(
            gw,
            [(n, urls[gw], system.token(room, n)) for i, n in enumerate(names) if i % 2 == gw],
            command,
        )
        for gw in (0, 1)
    ]
    rooms: list[Room] = []
    results: list[dict[str, Any]] = []
    ready: list[dict[str, Any]] = []
    try:
        _say(f"w3p: starting {len(procs)} receiver processes ({n_rx} receivers)")
        for p in procs:
            await p.start()
        async with asyncio.timeout(_READY_TIMEOUT):
            ready = await _each(procs, "ready")
        sender = await connect(system, 0, room, "tx")
        rooms.append(sender)
        pids = {**system.pids(), **{p.label: p.pid for p in procs}}
        failed = False
        for rate in rates:
            if failed:
                results.append(
                    {"rate_per_s": rate, "skipped": "a lower rate left deliveries undelivered"}
                )
                continue
            _say(f"w3p: {rate} chunks/s to {n_rx} receivers in {len(procs)} processes")
            res = await _w3p_rate(sender, procs, pids, rate, per_rate_s, n_rx, p99_limit_ms)
            results.append(res)
            failed = not res["all_delivered_in_order"] or bool(res["problems"])
            await asyncio.sleep(0.5)
    finally:
        try:
            await disconnect_all(rooms)
        finally:
            await _stop_all(procs)
    return {
        "receivers": n_rx,
        "receivers_per_gateway": [len(p.specs) for p in procs],
        "receiver_processes": [
            {
                "process": p.label,
                "gateway": p.gateway,
                "receivers": len(p.specs),
                "connected_at_start": r.get("connected"),
            }
            for p, r in zip(procs, ready, strict=True)
        ],
        "sender_process": "bench",
        "receiver_client": receivers,
        "clock": "time.monotonic_ns (CLOCK_MONOTONIC, system-wide on Linux), stamped in each "
        "chunk by the sender just before write, read by the receiver just after the chunk",
        **fanout_summary(results, n_rx, per_rate_s, p99_limit_ms),
    }


async def _w3p_rate(
    sender: Room,
    procs: list[ReceiverProcess],
    pids: dict[str, int],
    rate: int,
    seconds: float,
    n_rx: int,
    p99_limit_ms: float,
) -> dict[str, Any]:
    total = int(rate * seconds)
    sid = str(uuid.uuid4())
    meter = CpuMeter(pids)
    writer = await sender.local_participant.stream_text(topic=TOPIC, stream_id=sid)
    pace = await stamped_send(writer, total, rate)
    first_ns = pace.pop("_first_ns")
    problems: list[str] = []
    drain_s = 15.0 + 2 * seconds
    try:
        async with asyncio.timeout(drain_s):
            await writer.close()
            await _each(procs, "finished", sid)
    except TimeoutError:
        problems.append(f"not all receivers finished within {drain_s:g} s after the last write")
    except Exception as exc:
        problems.append(f"writer or receiver process: {exc!r}")
    meter.freeze()
    receivers: dict[str, dict[str, Any]] = {}
    lat_ns = array("q")
    connected = 0
    for p in procs:
        try:
            rep = await p.report(sid)
        except Exception as exc:
            problems.append(f"{p.label} report: {exc!r}")
            continue
        receivers.update(rep["receivers"])
        lat_ns.frombytes(base64.b64decode(rep["latencies_ns"]))
        connected += int(rep["connected"])
    deliveries = sum(int(r["count"]) for r in receivers.values())
    cpu = meter.stop(deliveries, "delivery")
    summary = latency_summary(v / 1e9 for v in lat_ns)
    last_ns = max((int(r["last_ns"]) for r in receivers.values()), default=0)
    span = (last_ns - first_ns) / 1e9
    complete = len(receivers) >= n_rx and all(
        r["ended"] and r["in_order"] and r["error"] is None and r["count"] == total
        for r in receivers.values()
    )
    errors = sorted({str(r["error"]) for r in receivers.values() if r["error"]})[:5]
    p99 = summary["p99_ms"]
    kept_rate = (pace["send_rate_achieved_per_s"] or 0) >= 0.95 * rate
    return {
        "rate_per_s": rate,
        **pace,
        "deliveries_expected": total * n_rx,
        "deliveries": deliveries,
        "deliveries_per_s": rnd(deliveries / span, 0) if span > 0 else None,
        "all_delivered_in_order": complete,
        **summary,
        "sustained": complete and p99 is not None and p99 < p99_limit_ms and kept_rate,
        "problems": problems + errors,
        "receivers_still_connected": connected,
        **cpu,
    }
