"""W5 and W6: the binary paths. W5 sends one file as a byte stream (``send_file``), W6
publishes data packets (``publish_data``). Like W1-W4, each runs in a room of its own with
the sender on gateway 0 and the receiver on gateway 1, both in the benchmark process (one
``time.perf_counter`` clock for both ends).
"""

from __future__ import annotations

import asyncio
import hashlib
import os
import struct
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ..client import ByteStreamReader, DataPacket, Room
from ..exceptions import StreamAborted
from .stats import latency_summary, rnd
from .system import BenchSystem
from .workloads import (
    CONNECT_TIMEOUT,
    MB,
    TOPIC,
    CpuMeter,
    RssSampler,
    _say,
    disconnect_all,
    new_room,
)

__all__ = ["PACKET_BYTES", "w5_bytes", "w6_data"]

#: Bytes of random data written to the temporary file per step (and hashed as written).
_WRITE_BLOCK = 1024 * 1024
#: W6: every packet is this long; it starts with ``_PKT`` (sequence number, perf_counter).
PACKET_BYTES = 100
_PKT = struct.Struct("<Qd")
_PAD = b"." * (PACKET_BYTES - _PKT.size)


# -- W5 ---------------------------------------------------------------------------------------


def _write_random_file(path: Path, size: int) -> str:
    """Write ``size`` random bytes to ``path``; their sha256 (hex)."""
    h = hashlib.sha256()
    with open(path, "xb") as f:
        left = size
        while left > 0:
            block = os.urandom(min(_WRITE_BLOCK, left))
            h.update(block)
            f.write(block)
            left -= len(block)
    return h.hexdigest()


@dataclass
class _ByteReceipt:
    """What the W5 receiver got."""

    stream_id: str
    bytes: int = 0
    chunks: int = 0
    first_at: float = 0.0
    last_at: float = 0.0
    hash_s: float = 0.0
    sha256: str | None = None
    ended: bool = False
    errors: list[str] = field(default_factory=list)
    done: asyncio.Event = field(default_factory=asyncio.Event)

    async def consume(self, reader: ByteStreamReader, _sender: str) -> None:
        if reader.info.stream_id != self.stream_id:
            async for _ in reader:  # not ours (there is none in a fresh room): drain it
                pass
            return
        h = hashlib.sha256()
        perf = time.perf_counter
        try:
            async for chunk in reader:
                now = perf()
                if not self.chunks:
                    self.first_at = now
                h.update(chunk)
                self.hash_s += perf() - now
                self.bytes += len(chunk)
                self.chunks += 1
                self.last_at = now
        except StreamAborted as exc:
            self.errors.append(f"{exc.code}: {exc}")
        except Exception as exc:
            self.errors.append(repr(exc))
        else:
            self.ended = True
        finally:
            self.sha256 = h.hexdigest()
            self.done.set()


async def _connect_bytes(
    system: BenchSystem,
    gateway: int,
    room: str,
    identity: str,
    receipt: _ByteReceipt | None = None,
) -> Room:
    r = Room()
    if receipt is not None:
        r.register_byte_stream_handler(TOPIC, receipt.consume)
    await r.connect(system.urls[gateway], system.token(room, identity), timeout=CONNECT_TIMEOUT)
    return r


async def w5_bytes(system: BenchSystem, *, quick: bool) -> dict[str, Any]:
    size = 20 * MB if quick else 100 * MB
    rx = _ByteReceipt(stream_id=f"w5-{os.urandom(8).hex()}")
    with tempfile.TemporaryDirectory(prefix="roomstreams-bench-") as tmp:
        path = Path(tmp) / "w5.bin"
        t_file = time.perf_counter()
        sent_sha = await asyncio.to_thread(_write_random_file, path, size)
        _say(f"w5: wrote {size / MB:g} MB of random bytes in {time.perf_counter() - t_file:.2f} s")
        room = new_room("w5")
        rooms: list[Room] = []
        sampler: RssSampler | None = None
        end: dict[str, int] | None = None
        try:
            rooms.append(await _connect_bytes(system, 1, room, "rx", rx))
            sender = await _connect_bytes(system, 0, room, "tx")
            rooms.append(sender)
            await asyncio.sleep(0.5)  # let the joins settle before the baseline
            sampler = RssSampler(system.pids())
            sampler.start()
            meter = CpuMeter(system.pids())
            returned: list[float] = []
            t0 = time.perf_counter()
            send = asyncio.get_running_loop().create_task(
                sender.local_participant.send_file(path, topic=TOPIC, stream_id=rx.stream_id)
            )
            send.add_done_callback(lambda _: returned.append(time.perf_counter()))
            try:
                async with asyncio.timeout(300):
                    await send  # raises at once when the sender fails
                    await rx.done.wait()
            finally:
                if not send.done():
                    send.cancel()
                    await asyncio.gather(send, return_exceptions=True)
            cpu = meter.stop(size / MB, "mb")
            end = await sampler.stop()
        finally:
            if sampler is not None and end is None:
                await sampler.stop()
            await disconnect_all(rooms)
    seconds = rx.last_at - t0
    memory = sampler.report(end)
    growth = {n: m["growth_mb"] for n, m in memory.items() if m["growth_mb"] is not None}
    worst = max(growth, key=lambda n: growth[n]) if growth else None
    intact = rx.sha256 == sent_sha and rx.bytes == size
    return {
        "payload_mb": size / MB,
        "received_mb": rx.bytes / MB,
        "received_chunks": rx.chunks,
        "sha256_sent": sent_sha,
        "sha256_received": rx.sha256,
        "sha256_match": rx.sha256 == sent_sha,
        "complete": intact and rx.ended and not rx.errors,
        "errors": rx.errors[:5],
        "seconds": rnd(seconds),
        "mb_per_s": rnd(size / MB / seconds, 2) if seconds > 0 else None,
        "first_chunk_after_s": rnd(rx.first_at - t0) if rx.chunks else None,
        "send_file_returned_s": rnd(returned[0] - t0),
        "receiver_hash_s": rnd(rx.hash_s),
        "rss_samples": sampler.samples,
        "rss_interval_s": sampler.interval,
        "rss_max_gap_s": rnd(sampler.max_gap, 3),
        "memory": memory,
        "max_growth_mb": growth[worst] if worst is not None else None,
        "max_growth_process": worst,
        **cpu,
    }


# -- W6 ---------------------------------------------------------------------------------------


@dataclass
class _PacketReceipt:
    """What the W6 receiver got."""

    total: int
    measure_from: int
    sender: str
    count: int = 0
    next_seq: int = 0
    in_order: bool = True
    last_at: float = 0.0
    foreign: int = 0
    malformed: int = 0
    latencies: list[float] = field(default_factory=list)
    done: asyncio.Event = field(default_factory=asyncio.Event)

    def callback(self) -> Callable[[DataPacket], None]:
        perf = time.perf_counter
        unpack = _PKT.unpack_from
        lat = self.latencies

        def on_data(packet: DataPacket) -> None:
            now = perf()
            payload = packet.payload
            if packet.topic != TOPIC or packet.participant_identity != self.sender:
                self.foreign += 1
                return
            if len(payload) != PACKET_BYTES:
                self.malformed += 1
                return
            seq, sent_at = unpack(payload)
            if seq != self.next_seq:
                self.in_order = False
            self.next_seq = seq + 1
            self.count += 1
            self.last_at = now
            if seq >= self.measure_from:
                lat.append(now - sent_at)
            if self.count >= self.total:
                self.done.set()

        return on_data

    def complete(self) -> bool:
        return (
            self.count == self.total
            and self.in_order
            and self.next_seq == self.total
            and not self.malformed
        )


async def _paced_publish(sender: Room, total: int, rate: float) -> dict[str, Any]:
    """Publish ``total`` packets at ``rate``/s against absolute deadlines (loop time), like
    W1's ``paced_send``; each payload carries its sequence number and the ``perf_counter``
    taken just before ``publish_data``. Each call runs as a task (``publish_data`` returns
    once the router acknowledged the packet, about a round trip: awaited one by one, the
    pace could not be kept), and the time each call took is the ack latency."""
    loop = asyncio.get_running_loop()
    publish = sender.local_participant.publish_data
    perf, pack = time.perf_counter, _PKT.pack
    start = loop.time() + 0.01
    behind = 0
    first = last = 0.0
    acks: list[float] = []
    calls: list[asyncio.Task[None]] = []

    async def one(payload: bytes, t: float) -> None:
        await publish(payload, topic=TOPIC)
        acks.append(perf() - t)

    for i in range(total):
        delay = start + i / rate - loop.time()
        if delay > 0:
            await asyncio.sleep(delay)
        else:
            if delay < -0.005:
                behind += 1
            await asyncio.sleep(0)
        t = perf()
        calls.append(asyncio.ensure_future(one(pack(i, t) + _PAD, t)))
        if i == 0:
            first = t
        last = t
    await asyncio.gather(*calls)
    span = last - first
    ack = latency_summary(acks)
    return {
        "packets_sent": total,
        "send_rate_achieved_per_s": rnd((total - 1) / span, 1) if span > 0 else None,
        "packets_sent_over_5ms_late": behind,
        "ack_p50_ms": ack.get("p50_ms"),
        "ack_p99_ms": ack.get("p99_ms"),
    }


async def _publish_rates(sender: Room, n: int) -> dict[str, Any]:
    """Packets per second a sender gets: awaiting each call in a loop (one acknowledgement
    round trip per packet), and ``n`` calls at once (acknowledgements shared)."""
    publish = sender.local_participant.publish_data
    perf = time.perf_counter
    loop_n = max(50, n // 5)
    t = perf()
    for i in range(loop_n):
        await publish(_PKT.pack(10**9 + i, 0.0) + _PAD, topic="w6-rate")
    looped = perf() - t
    t = perf()
    await asyncio.gather(
        *(publish(_PKT.pack(2 * 10**9 + i, 0.0) + _PAD, topic="w6-rate") for i in range(n))
    )
    burst = perf() - t
    return {
        "awaited_loop_packets_per_s": rnd(loop_n / looped, 1),
        "concurrent_burst_packets": n,
        "concurrent_burst_packets_per_s": rnd(n / burst, 1),
    }


async def w6_data(system: BenchSystem, *, quick: bool) -> dict[str, Any]:
    warmup_s, measure_s = (0.3, 1.5) if quick else (1.0, 5.0)
    rate = 1000
    n_warm = int(warmup_s * rate)
    total = n_warm + int(measure_s * rate)
    rx = _PacketReceipt(total=total, measure_from=n_warm, sender="tx")
    room = new_room("w6")
    rooms: list[Room] = []
    problems: list[str] = []
    foreign = 0
    try:
        receiver = Room()
        receiver.on("data_received", rx.callback())
        await receiver.connect(system.urls[1], system.token(room, "rx"), timeout=CONNECT_TIMEOUT)
        rooms.append(receiver)
        sender = Room()
        await sender.connect(system.urls[0], system.token(room, "tx"), timeout=CONNECT_TIMEOUT)
        rooms.append(sender)
        meter = CpuMeter(system.pids())
        pace = await _paced_publish(sender, total, rate)
        try:
            async with asyncio.timeout(30):
                await rx.done.wait()
        except TimeoutError:
            problems.append(f"{total - rx.count} packets not received 30 s after the last one")
        cpu = meter.stop(total, "packet")
        foreign = rx.foreign  # (the rate measures below use a topic of their own)
        rates = await _publish_rates(sender, 500 if quick else 2000)
    finally:
        await disconnect_all(rooms)
    if foreign:
        problems.append(f"{foreign} packets from another sender or topic")
    if rx.malformed:
        problems.append(f"{rx.malformed} packets of the wrong length")
    return {
        "rate_per_s": rate,
        "payload_bytes": PACKET_BYTES,
        "warmup_s": warmup_s,
        "measure_s": measure_s,
        **pace,
        "packets_received": rx.count,
        "packets_measured": len(rx.latencies),
        "delivered_all_in_order": rx.complete(),
        "problems": problems,
        **latency_summary(rx.latencies),
        **cpu,
        **rates,
    }
