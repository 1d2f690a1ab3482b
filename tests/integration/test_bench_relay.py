"""The benchmark's relay floors (``floors.relay``, ``floors.relay_picows``): W1's path built
of three bare relay processes and a Redis of its own, the WebSocket relays on websockets or
on picows. Their figures are benchmarks, not asserted; what is tested is that each carries
every message, in order, and reports each process's CPU."""

from __future__ import annotations

import pytest

from roomstreams.bench.floors import relay_floor


@pytest.mark.parametrize("library", ["websockets", "picows"])
async def test_the_bare_relays_carry_every_message_and_report_each_process(library: str) -> None:
    report = await relay_floor(warmup_s=0.1, measure_s=0.4, rate=1000, library=library)
    assert report["websocket_library"] == library
    assert report["n"] == 400  # every measured message came through (else: a timeout)
    assert report["in_order"] is True
    assert set(report["cpu_us_per_chunk"]) == {
        "redis", "bench", "relay_in", "relay_mid", "relay_out",
    }  # fmt: skip
    assert all(v > 0 for v in report["cpu_us_per_chunk"].values())
