"""W1p: W1 with its receiver in a process of its own, as a real participant would be.

W1 holds both ends in the benchmark process: the sender's timer and its writes share one
event loop with the receiver's reads, and a chunk that arrives while the next one is being
written waits for that write (traced: the receiving end's p90 is several times its p50).
W1p takes the receiver out: one receiver on gateway 1 in a W3p receiver process
(``python -m roomstreams.bench.w3p_receivers``), the sender alone in the benchmark process
on gateway 0. Rate, chunk size, warm-up and duration are W1's; latency is W3p's
``CLOCK_MONOTONIC`` stamp (written into each chunk just before ``writer.write()``, read
just after the receiver's ``async for`` yields it). W1 stays the issue's figure; W1p says
how much of W1's distance from its floor is the benchmark sharing a loop between the two
participants.
"""

from __future__ import annotations

import asyncio
import base64
import uuid
from array import array
from typing import Any

from .stats import latency_summary
from .system import BenchSystem
from .w3p import ReceiverProcess, stamped_send
from .workloads import CHUNK_BYTES, TOPIC, CpuMeter, connect, disconnect_all, new_room

__all__ = ["w1p_latency"]

_READY_TIMEOUT = 60.0
_FINISH_TIMEOUT = 30.0


async def w1p_latency(system: BenchSystem, *, quick: bool) -> dict[str, Any]:
    warmup_s, measure_s = (0.3, 1.5) if quick else (1.0, 5.0)  # W1's
    rate = 1000
    n_warm = int(warmup_s * rate)
    total = n_warm + int(measure_s * rate)
    room = new_room("w1p")
    receiver = ReceiverProcess(1, [("rx", system.urls[1], system.token(room, "rx"))])
    rooms = []
    try:
        await receiver.start()
        async with asyncio.timeout(_READY_TIMEOUT):
            await receiver.expect("ready")
        sender = await connect(system, 0, room, "tx")
        rooms.append(sender)
        sid = str(uuid.uuid4())
        writer = await sender.local_participant.stream_text(topic=TOPIC, stream_id=sid)
        meter = CpuMeter({**system.pids(), receiver.label: receiver.pid})
        pace = await stamped_send(writer, total, rate)
        pace.pop("_first_ns")
        async with asyncio.timeout(_FINISH_TIMEOUT):
            await writer.close()
            await receiver.expect("finished", sid)
        cpu = meter.stop(total, "chunk")
        report = await receiver.report(sid)
    finally:
        try:
            await disconnect_all(rooms)
        finally:
            await receiver.stop()
    rx = report["receivers"].get("rx", {})
    lat_ns = array("q")
    lat_ns.frombytes(base64.b64decode(report["latencies_ns"]))
    complete = (
        bool(rx.get("ended") and rx.get("in_order") and rx.get("error") is None)
        and rx.get("count") == total
    )
    return {
        "rate_per_s": rate,
        "chunk_bytes": CHUNK_BYTES,
        "warmup_s": warmup_s,
        "measure_s": measure_s,
        "receiver_process": receiver.label,
        **pace,
        # one receiver, in order: its latencies are in sequence order
        "chunks_measured": max(0, len(lat_ns) - n_warm),
        "delivered_all_in_order": complete,
        "errors": [rx["error"]] if rx.get("error") else [],
        **latency_summary(v / 1e9 for v in lat_ns[n_warm:]),
        **cpu,
    }
