"""Workloads W1-W4 (W5 and W6, the binary paths, are in ``bytedata.py``). Each runs in
rooms of its own, with the sender on gateway 0 and the receivers on gateway 1 (W3:
receivers on both), and measures from the benchmark process, which holds every participant
(so ``time.perf_counter`` is one clock for both ends).

Chunks carry their sequence number in their first 10 characters; the sender notes
``perf_counter()`` just before ``writer.write()``, the receiver just after its iterator
yields the chunk.
"""

from __future__ import annotations

import asyncio
import sys
import time
import uuid
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import psutil

from ..client import Room, TextStreamHandler, TextStreamReader, TextStreamWriter
from ..exceptions import StreamAborted
from .stats import latency_summary, rnd
from .system import BenchSystem, rss_bytes

__all__ = ["w1_latency", "w2_throughput", "w3_fanout", "w4_memory"]

TOPIC = "bench"
CHUNK_BYTES = 100
SEQ_DIGITS = 10
_FILLER = "." * CHUNK_BYTES
MB = 1_000_000
KB = 1_000
CONNECT_TIMEOUT = 30.0


def chunk_text(seq: int) -> str:
    head = f"{seq:0{SEQ_DIGITS}d}"
    return head + _FILLER[: CHUNK_BYTES - len(head)]


def new_room(tag: str) -> str:
    return f"bench-{tag}-{uuid.uuid4().hex[:12]}"


def _say(msg: str) -> None:
    print(f"bench: {msg}", file=sys.stderr, flush=True)


# -- participants ---------------------------------------------------------------------------


async def connect(
    system: BenchSystem,
    gateway: int,
    room: str,
    identity: str,
    handler: TextStreamHandler | None = None,
) -> Room:
    r = Room()
    if handler is not None:
        r.register_text_stream_handler(TOPIC, handler)
    await r.connect(system.urls[gateway], system.token(room, identity), timeout=CONNECT_TIMEOUT)
    return r


async def bounded(concurrency: int, jobs: Sequence[Callable[[], Awaitable[Room]]]) -> list[Room]:
    """Run ``jobs`` at most ``concurrency`` at a time; all results or the first error (the
    rooms already connected are disconnected then)."""
    sem = asyncio.Semaphore(concurrency)
    done: list[Room] = []

    async def one(job: Callable[[], Awaitable[Room]]) -> Room:
        async with sem:
            room = await job()
            done.append(room)
            return room

    try:
        return list(await asyncio.gather(*(one(j) for j in jobs)))
    except BaseException:
        await disconnect_all(done)
        raise


async def disconnect_all(rooms: Sequence[Room], concurrency: int = 100) -> None:
    """Disconnect every room, bounded in concurrency and in time; never raises."""
    sem = asyncio.Semaphore(concurrency)

    async def one(r: Room) -> None:
        async with sem:
            try:
                async with asyncio.timeout(10):
                    await r.disconnect()
            except Exception:
                pass

    await asyncio.gather(*(one(r) for r in rooms), return_exceptions=True)


# -- sequence-numbered streams ----------------------------------------------------------------


@dataclass
class Receiver:
    count: int = 0
    next_seq: int = 0
    in_order: bool = True
    ended: bool = False
    error: str | None = None
    last_at: float = 0.0
    latencies: list[float] = field(default_factory=list)


class StreamRun:
    """One sequence-numbered stream and what each of its receivers got."""

    def __init__(self, total: int, receivers: int, measure_from: int = 0) -> None:
        self.total = total
        self.sent = [0.0] * total
        self.expected_receivers = receivers
        self.measure_from = measure_from
        self.receivers: dict[str, Receiver] = {}
        self.all_done = asyncio.Event()
        self._finished = 0

    async def consume(self, name: str, reader: TextStreamReader) -> None:
        rx = self.receivers.setdefault(name, Receiver())
        sent, measure_from, lat = self.sent, self.measure_from, rx.latencies
        perf = time.perf_counter
        try:
            async for chunk in reader:
                now = perf()
                seq = int(chunk[:SEQ_DIGITS])
                if seq != rx.next_seq:
                    rx.in_order = False
                rx.next_seq = seq + 1
                rx.count += 1
                rx.last_at = now
                if seq >= measure_from:
                    lat.append(now - sent[seq])
        except StreamAborted as exc:
            rx.error = f"{exc.code}: {exc}"
        except Exception as exc:
            rx.error = repr(exc)
        else:
            rx.ended = True
        finally:
            self._finished += 1
            if self._finished >= self.expected_receivers:
                self.all_done.set()

    def complete(self) -> bool:
        """Every expected receiver got every chunk, in order, and a normal end."""
        return len(self.receivers) >= self.expected_receivers and all(
            r.ended and r.in_order and r.error is None and r.count == self.total
            for r in self.receivers.values()
        )

    def errors(self) -> list[str]:
        return sorted({r.error for r in self.receivers.values() if r.error})[:5]

    def latencies(self) -> list[float]:
        out: list[float] = []
        for r in self.receivers.values():
            out.extend(r.latencies)
        return out


def seq_handler(name: str, runs: dict[str, StreamRun]) -> TextStreamHandler:
    """A handler for participant ``name`` that feeds the run of each stream it receives."""

    async def handler(reader: TextStreamReader, _sender: str) -> None:
        run = runs.get(reader.info.stream_id)
        if run is None:
            async for _ in reader:
                pass
            return
        await run.consume(name, reader)

    return handler


async def paced_send(writer: TextStreamWriter, run: StreamRun, rate: float) -> dict[str, Any]:
    """Write ``run.total`` chunks at ``rate``/s against absolute deadlines (loop time); when
    behind, catch up without sleeping, but still yield once per chunk."""
    loop = asyncio.get_running_loop()
    sent = run.sent
    start = loop.time() + 0.01
    behind = 0
    for i in range(run.total):
        delay = start + i / rate - loop.time()
        if delay > 0:
            await asyncio.sleep(delay)
        else:
            if delay < -0.005:
                behind += 1
            await asyncio.sleep(0)
        text = chunk_text(i)
        sent[i] = time.perf_counter()
        await writer.write(text)
    span = sent[-1] - sent[0] if run.total > 1 else 0.0
    return {
        "chunks_sent": run.total,
        "send_rate_achieved_per_s": rnd((run.total - 1) / span, 1) if span > 0 else None,
        "chunks_sent_over_5ms_late": behind,
    }


# -- W1 ---------------------------------------------------------------------------------------


async def w1_latency(system: BenchSystem, *, quick: bool) -> dict[str, Any]:
    warmup_s, measure_s = (0.3, 1.5) if quick else (1.0, 5.0)
    rate = 1000
    n_warm = int(warmup_s * rate)
    run = StreamRun(n_warm + int(measure_s * rate), receivers=1, measure_from=n_warm)
    runs: dict[str, StreamRun] = {}
    room = new_room("w1")
    rooms: list[Room] = []
    try:
        rooms.append(await connect(system, 1, room, "rx", seq_handler("rx", runs)))
        sender = await connect(system, 0, room, "tx")
        rooms.append(sender)
        sid = str(uuid.uuid4())
        runs[sid] = run
        writer = await sender.local_participant.stream_text(topic=TOPIC, stream_id=sid)
        meter = CpuMeter(system.pids())
        pace = await paced_send(writer, run, rate)
        await writer.close()
        async with asyncio.timeout(30):
            await run.all_done.wait()
        cpu = meter.stop(run.total, "chunk")
    finally:
        await disconnect_all(rooms)
    lat = run.latencies()
    return {
        "rate_per_s": rate,
        "chunk_bytes": CHUNK_BYTES,
        "warmup_s": warmup_s,
        "measure_s": measure_s,
        **pace,
        "chunks_measured": len(lat),
        "delivered_all_in_order": run.complete(),
        "errors": run.errors(),
        **latency_summary(lat),
        **cpu,
    }


# -- W2 ---------------------------------------------------------------------------------------


class RssSampler:
    """Samples the RSS of the system's processes every ``interval`` seconds."""

    def __init__(self, pids: dict[str, int], interval: float = 0.05) -> None:
        self.pids = pids
        self.interval = interval
        self.baseline = self.sample()
        self.peak = dict(self.baseline)
        self.samples = 0
        #: the longest time between two samples (the event loop may delay one when busy)
        self.max_gap = 0.0
        self._last_at = 0.0
        self._task: asyncio.Task[None] | None = None

    def sample(self) -> dict[str, int]:
        return {name: rss_bytes(pid) for name, pid in self.pids.items()}

    def _take(self) -> dict[str, int]:
        now = self.sample()
        at = time.perf_counter()
        if self._last_at:
            self.max_gap = max(self.max_gap, at - self._last_at)
        self._last_at = at
        self.samples += 1
        for name, v in now.items():
            self.peak[name] = max(self.peak[name], v)
        return now

    async def _loop(self) -> None:
        loop = asyncio.get_running_loop()
        next_at = loop.time()
        while True:
            self._take()
            next_at += self.interval
            await asyncio.sleep(max(0.0, next_at - loop.time()))

    def start(self) -> None:
        self.baseline = self.sample()
        self.peak = dict(self.baseline)
        self._last_at = 0.0
        self.max_gap = 0.0
        self._task = asyncio.get_running_loop().create_task(self._loop())

    async def stop(self) -> dict[str, int]:
        if self._task is not None:
            self._task.cancel()
            await asyncio.gather(self._task, return_exceptions=True)
        return self._take()

    def report(self, end: dict[str, int]) -> dict[str, dict[str, float | None]]:
        return {
            name: {
                "baseline_mb": rnd(self.baseline[name] / MB, 1),
                "peak_mb": rnd(self.peak[name] / MB, 1),
                "growth_mb": rnd((self.peak[name] - self.baseline[name]) / MB, 1),
                "end_mb": rnd(end[name] / MB, 1),
            }
            for name in self.pids
        }


class CpuMeter:
    """CPU time (user + system) each process of the system used between ``start`` and
    ``stop``, as a percentage of one core (the machine's ceiling is 100 x cores)."""

    def __init__(self, pids: dict[str, int]) -> None:
        self.pids = pids
        self._t0 = 0.0
        self._c0: dict[str, float] = {}
        self._end: tuple[float, dict[str, float]] | None = None
        self.start()

    @staticmethod
    def _machine_busy() -> float:
        t = psutil.cpu_times()
        return float(sum(t) - t.idle - getattr(t, "iowait", 0.0))

    def _times(self) -> dict[str, float]:
        out: dict[str, float] = {"_machine": self._machine_busy()}
        for name, pid in self.pids.items():
            try:
                t = psutil.Process(pid).cpu_times()
                out[name] = float(t.user + t.system)
            except (psutil.NoSuchProcess, psutil.AccessDenied, psutil.ZombieProcess):
                out[name] = 0.0
        return out

    def start(self) -> None:
        self._t0 = time.perf_counter()
        self._c0 = self._times()
        self._end = None

    def freeze(self) -> None:
        """End the measurement now; a later ``stop`` reports up to here (for when the units
        are known only after more work, e.g. W3p's reports from the receiver processes)."""
        self._end = (time.perf_counter() - self._t0, self._times())

    def stop(self, units: float = 0.0, unit: str = "chunk") -> dict[str, Any]:
        """Percent of one core per process; with ``units``, also CPU microseconds per unit."""
        if self._end is not None:
            wall, c1 = self._end
        else:
            wall, c1 = time.perf_counter() - self._t0, self._times()
        used = {n: max(0.0, c1[n] - self._c0.get(n, 0.0)) for n in self.pids}
        machine = c1["_machine"] - self._c0["_machine"]
        ours = sum(used.values())
        out: dict[str, Any] = {
            "cpu_wall_s": rnd(wall, 2),
            "cpu_percent_of_one_core": {n: rnd(u / wall * 100, 1) for n, u in used.items()},
            "cpu_percent_total": rnd(ours / wall * 100, 1),
            # everything else running on the machine meanwhile (ceiling: 100 x cores)
            "cpu_percent_other_processes": rnd(max(0.0, machine - ours) / wall * 100, 1),
        }
        if units > 0:
            out[f"cpu_us_per_{unit}"] = {n: rnd(u / units * 1e6, 1) for n, u in used.items()}
        return out


async def w2_throughput(system: BenchSystem, *, quick: bool) -> dict[str, Any]:
    size = 5 * MB if quick else 20 * MB
    pattern = "The quick brown fox jumps over the lazy dog 0123456789. "
    text = (pattern * (size // len(pattern) + 1))[:size]
    got = {"bytes": 0, "chunks": 0}
    last_at = 0.0
    done = asyncio.Event()
    error: list[str] = []

    async def handler(reader: TextStreamReader, _sender: str) -> None:
        nonlocal last_at
        try:
            async for chunk in reader:
                got["bytes"] += len(chunk)
                got["chunks"] += 1
                last_at = time.perf_counter()
        except StreamAborted as exc:
            error.append(f"{exc.code}: {exc}")
        finally:
            done.set()

    room = new_room("w2")
    rooms: list[Room] = []
    sampler: RssSampler | None = None
    try:
        rooms.append(await connect(system, 1, room, "rx", handler))
        sender = await connect(system, 0, room, "tx")
        rooms.append(sender)
        await asyncio.sleep(0.5)  # let the joins settle before the baseline
        sampler = RssSampler(system.pids())
        sampler.start()
        meter = CpuMeter(system.pids())
        t0 = time.perf_counter()
        send = asyncio.get_running_loop().create_task(
            sender.local_participant.send_text(text, topic=TOPIC)
        )
        async with asyncio.timeout(300):
            await done.wait()
            await send
        returned_at = time.perf_counter()
        cpu = meter.stop(size / MB, "mb")
        end = await sampler.stop()
    finally:
        if sampler is not None:
            await sampler.stop()
        await disconnect_all(rooms)
    seconds = last_at - t0
    return {
        "payload_mb": size / MB,
        "received_mb": got["bytes"] / MB,
        "received_chunks": got["chunks"],
        "complete": got["bytes"] == size and not error,
        "errors": error,
        "seconds": rnd(seconds),
        "mb_per_s": rnd(size / MB / seconds, 2) if seconds > 0 else None,
        "send_text_returned_s": rnd(returned_at - t0),
        "rss_samples": sampler.samples,
        "rss_interval_s": sampler.interval,
        "memory": sampler.report(end),
        **cpu,
    }


# -- W3 ---------------------------------------------------------------------------------------


async def w3_fanout(system: BenchSystem, *, quick: bool) -> dict[str, Any]:
    n_rx = 10 if quick else 50
    per_rate_s = 1.0 if quick else 2.0
    rates = [500, 1000, 2000, 5000]
    p99_limit_ms = 50.0
    runs: dict[str, StreamRun] = {}
    room = new_room("w3")
    names = [f"rx{i:02d}" for i in range(n_rx)]
    receivers: list[Room] = []
    rooms: list[Room] = []
    results: list[dict[str, Any]] = []
    try:

        def job(i: int, name: str) -> Callable[[], Awaitable[Room]]:
            return lambda: connect(system, i % 2, room, name, seq_handler(name, runs))

        receivers = await bounded(25, [job(i, n) for i, n in enumerate(names)])
        rooms.extend(receivers)
        sender = await connect(system, 0, room, "tx")
        rooms.append(sender)
        failed = False
        for rate in rates:
            if failed:
                results.append(
                    {"rate_per_s": rate, "skipped": "a lower rate left deliveries undelivered"}
                )
                continue
            _say(f"w3: {rate} chunks/s to {n_rx} receivers")
            res = await _w3_rate(system, sender, runs, rate, per_rate_s, n_rx, p99_limit_ms)
            res["receivers_still_connected"] = sum(r.isconnected() for r in receivers)
            results.append(res)
            # a rate that missed the latency bound but delivered everything leaves nothing
            # behind, so the next one starts clean; one that did not deliver everything does
            failed = not res["all_delivered_in_order"] or bool(res["problems"])
            await asyncio.sleep(0.5)
    finally:
        await disconnect_all(rooms)
    return {
        "receivers": n_rx,
        "receivers_per_gateway": [len(names[0::2]), len(names[1::2])],
        **fanout_summary(results, n_rx, per_rate_s, p99_limit_ms),
    }


def fanout_summary(
    results: list[dict[str, Any]], n_rx: int, per_rate_s: float, p99_limit_ms: float
) -> dict[str, Any]:
    """The part of a fan-out report (W3, W3p) that ranks the rates."""
    sustained = [r for r in results if r.get("sustained")]
    best = sustained[-1] if sustained else None
    return {
        "chunk_bytes": CHUNK_BYTES,
        "seconds_per_rate": per_rate_s,
        "sustained_means": f"every chunk delivered in order to every receiver, p99 < "
        f"{p99_limit_ms:g} ms, sender kept >= 95% of the rate",
        "rates": results,
        "highest_sustained_rate_per_s": best["rate_per_s"] if best else None,
        "deliveries_per_s_at_highest": best["rate_per_s"] * n_rx if best else None,
        "measured_deliveries_per_s_at_highest": best["deliveries_per_s"] if best else None,
    }


async def _w3_rate(
    system: BenchSystem,
    sender: Room,
    runs: dict[str, StreamRun],
    rate: int,
    seconds: float,
    n_rx: int,
    p99_limit_ms: float,
) -> dict[str, Any]:
    run = StreamRun(int(rate * seconds), receivers=n_rx)
    sid = str(uuid.uuid4())
    runs[sid] = run
    meter = CpuMeter(system.pids())
    writer = await sender.local_participant.stream_text(topic=TOPIC, stream_id=sid)
    pace = await paced_send(writer, run, rate)
    problems: list[str] = []
    drain_s = 15.0 + 2 * seconds
    try:
        async with asyncio.timeout(drain_s):
            await writer.close()
            await run.all_done.wait()
    except TimeoutError:
        problems.append(f"not all receivers finished within {drain_s:g} s after the last write")
    except Exception as exc:
        problems.append(f"writer: {exc!r}")
    lat = run.latencies()
    deliveries = sum(r.count for r in run.receivers.values())
    cpu = meter.stop(deliveries, "delivery")
    summary = latency_summary(lat)
    last = max((r.last_at for r in run.receivers.values()), default=0.0)
    span = last - run.sent[0]
    complete = run.complete()
    p99 = summary["p99_ms"]
    kept_rate = (pace["send_rate_achieved_per_s"] or 0) >= 0.95 * rate
    return {
        "rate_per_s": rate,
        **pace,
        "deliveries_expected": run.total * n_rx,
        "deliveries": deliveries,
        "deliveries_per_s": rnd(deliveries / span, 0) if span > 0 else None,
        "all_delivered_in_order": complete,
        **summary,
        "sustained": complete and p99 is not None and p99 < p99_limit_ms and kept_rate,
        "problems": problems + run.errors(),
        **cpu,
    }


# -- W4 ---------------------------------------------------------------------------------------


async def w4_memory(system: BenchSystem, *, quick: bool, restart: bool = True) -> dict[str, Any]:
    n = 200 if quick else 2000
    gw = 1
    if restart:
        # a fresh gateway 1: memory freed by earlier workloads cannot hide the cost per socket
        await asyncio.to_thread(system.restart_gateway, gw)
    pids = system.pids()
    watch = {k: pids[k] for k in (f"gateway{gw}", "router", "redis")}
    rooms: list[Room] = []
    try:
        warm_room = new_room("w4warm")
        for who in ("a", "b"):  # one pair first, so first-use costs are in the baseline
            rooms.append(await connect(system, gw, warm_room, who))
        await asyncio.sleep(1.0)
        before = {k: rss_bytes(p) for k, p in watch.items()}
        # Redis by what it holds (INFO used_memory): its RSS does not grow into pages that
        # earlier workloads' data freed (0.0 KB per participant in a full run)
        redis_before = await asyncio.to_thread(system.redis_used_memory)
        prefix = new_room("w4")

        def job(i: int) -> Callable[[], Awaitable[Room]]:
            return lambda: connect(system, gw, f"{prefix}-{i // 2}", f"p{i % 2}")

        t0 = time.perf_counter()
        async with asyncio.timeout(600):
            pair_rooms = await bounded(50, [job(i) for i in range(n)])
        connect_s = time.perf_counter() - t0
        rooms.extend(pair_rooms)
        connected = sum(r.isconnected() for r in pair_rooms)
        await asyncio.sleep(1.0)
        gateway_says = await asyncio.to_thread(system.gateway_connections, gw)
        after = {k: rss_bytes(p) for k, p in watch.items()}
        redis_after = await asyncio.to_thread(system.redis_used_memory)
        still = sum(r.isconnected() for r in pair_rooms)
    finally:
        await disconnect_all(rooms)
    per = {k: rnd((after[k] - before[k]) / n / KB, 2) for k in watch}
    per["redis"] = rnd((redis_after - redis_before) / n / KB, 2)
    return {
        "participants": n,
        "rooms": n // 2,
        "gateway": gw,
        "gateway_restarted_before": restart,
        "connect_concurrency": 50,
        "connect_s": rnd(connect_s, 2),
        "connects_per_s": rnd(n / connect_s, 1) if connect_s > 0 else None,
        "connected": connected,
        "still_connected_at_measurement": still,
        "gateway_reported_connections": gateway_says,
        "gateway_rss_before_mb": rnd(before[f"gateway{gw}"] / MB, 1),
        "gateway_rss_after_mb": rnd(after[f"gateway{gw}"] / MB, 1),
        "gateway_kb_per_connection": per[f"gateway{gw}"],
        "router_kb_per_participant": per["router"],
        "redis_kb_per_participant": per["redis"],
    }
