"""W-flood: what one flooding participant costs honest ones (issue: a participant sending
tiny frames as fast as it can multiplied the latency of honest pairs on its gateway 50-80x).

An honest pair (sender on gateway 0, receiver on gateway 1) streams 100-byte chunks at
200/s and its latency is measured alone, with a flooder in the same room on gateway 0, and
with the flooder in another room on gateway 0; each case three times (once with
``--quick``), and the ratio is of the median p99s. The flooder is a process of its own
(``python -m roomstreams.bench.flooder URL TOKEN MODE SECONDS``) speaking raw frames as fast as
its socket takes them: ``tiny`` (minimal data packets), ``streams`` (headers of new streams),
``big`` (90 KiB data-packet frames, refused as too large) or ``mixed``. The gateway's
per-connection limits throttle it (``rate_limited``, then a tenth of the frame rate); the
close (4029) comes once it has sent its budget of frames over the rate, about 50 s in at the
defaults, after the measurement (the flooder's ``close_code`` is then null).

The flooder runs at the lowest CPU priority (``nice 19``): an attacker's CPU is its own
machine's, but here it shares two cores with the services, and a process writing frames
into its socket buffers as fast as they take them keeps a whole core busy for seconds. What
is measured is what the flood costs the services, not what the flooding process costs the
machine.
"""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import sys
import uuid
from typing import Any

from ..client import Room
from .stats import latency_summary, rnd
from .system import BenchSystem
from .workloads import StreamRun, connect, disconnect_all, new_room, paced_send, seq_handler

__all__ = ["wflood"]

RATE = 200


async def _measure(system: BenchSystem, room: str, seconds: float) -> dict[str, Any]:
    runs: dict[str, StreamRun] = {}
    n = int(seconds * RATE)
    run = StreamRun(n + RATE // 2, receivers=1, measure_from=RATE // 2)
    rooms: list[Room] = []
    try:
        rooms.append(
            await connect(system, 1, room, f"rx-{uuid.uuid4().hex[:4]}", seq_handler("rx", runs))
        )
        sender = await connect(system, 0, room, f"tx-{uuid.uuid4().hex[:4]}")
        rooms.append(sender)
        sid = str(uuid.uuid4())
        runs[sid] = run
        writer = await sender.local_participant.stream_text(topic="bench", stream_id=sid)
        await paced_send(writer, run, RATE)
        await writer.close()
        async with asyncio.timeout(60):
            await run.all_done.wait()
    finally:
        await disconnect_all(rooms)
    return {**latency_summary(run.latencies()), "complete": run.complete()}


def _start_flooder(
    system: BenchSystem, room: str, mode: str, seconds: float
) -> subprocess.Popen[bytes]:
    token = system.token(room, f"flooder-{uuid.uuid4().hex[:4]}")
    return subprocess.Popen(
        [
            sys.executable,
            "-m",
            "roomstreams.bench.flooder",
            system.urls[0],
            token,
            mode,
            str(seconds),
        ],
        stdout=subprocess.PIPE,
        preexec_fn=_lowest_priority,  # a nice() call in the child: nothing that locks
    )


def _lowest_priority() -> None:  # pragma: no cover - runs in the child before exec
    os.nice(19)


async def wflood(system: BenchSystem, *, quick: bool) -> dict[str, Any]:
    """Measured on gateways with the default limits (restarted for it, then restored)."""
    lifted = system.gateway_env
    system.gateway_env = {}
    try:
        for i in range(len(system.gateway_services)):
            await asyncio.to_thread(system.restart_gateway, i)
        return await _wflood(system, quick=quick)
    finally:
        system.gateway_env = lifted
        for i in range(len(system.gateway_services)):
            await asyncio.to_thread(system.restart_gateway, i)


async def _wflood(system: BenchSystem, *, quick: bool) -> dict[str, Any]:
    """Each case ``repeats`` times (alone included, interleaved with the floods so a slow
    spell of the machine hits every case alike); the ratio is of the median p99s."""
    seconds = 2.0 if quick else 5.0
    repeats = 1 if quick else 3
    out: dict[str, Any] = {
        "rate_per_s": RATE,
        "measure_s": seconds,
        "limits": "defaults",
        "repeats": repeats,
        "flooder_nice": 19,
    }
    cases = ["alone"] + [f"{m}_{w}" for m in ("tiny", "mixed") for w in ("same_room", "other_room")]
    runs: dict[str, list[dict[str, Any]]] = {c: [] for c in cases}
    for _ in range(repeats):
        for case in cases:
            if case == "alone":
                runs[case].append(await _measure(system, new_room("flood-alone"), seconds))
                continue
            mode, where = case.split("_", 1)
            room = new_room(f"flood-{where}")
            flood_room = room if where == "same_room" else new_room("flood-target")
            # flooding from before the measurement (0.5 s) until just after it ends
            proc = _start_flooder(system, flood_room, mode, seconds + 1.5)
            await asyncio.sleep(0.5)  # the flooder is connected and flooding
            try:
                got = await _measure(system, room, seconds)
            finally:
                stdout, _ = await asyncio.to_thread(proc.communicate, timeout=30)
            got["flooder"] = json.loads(stdout.decode() or "{}")
            runs[case].append(got)
    base = _median_p99(runs["alone"])
    for case in cases:
        p99 = _median_p99(runs[case])
        nearest: dict[str, Any] = min(
            runs[case], key=lambda r: abs((r.get("p99_ms") or 0.0) - (p99 or 0.0))
        )
        out[case] = {
            **nearest,
            "p99_ms_runs": [r.get("p99_ms") for r in runs[case]],
            "p99_ms_median": p99,
            "complete_all": all(r.get("complete") for r in runs[case]),
        }
        if case != "alone":
            out[case]["p99_ratio_to_alone"] = rnd(p99 / base, 2) if base and p99 else None
    return out


def _median_p99(runs: list[dict[str, Any]]) -> float | None:
    values = sorted(r["p99_ms"] for r in runs if r.get("p99_ms") is not None)
    return values[len(values) // 2] if values else None
