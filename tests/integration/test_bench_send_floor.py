"""The benchmark's socket-send floor (``floors.socket_send``): its figures are benchmarks,
not asserted; what is tested is that it sends what it says to a reader process and reports
the sending thread's CPU for both pacings."""

from __future__ import annotations

from roomstreams.bench.floors import send_floor


async def test_the_send_floor_reports_the_cpu_of_each_send() -> None:
    report = await send_floor(rounds=100, sockets=5)
    assert report["sockets"] == 5 and report["sends"] == 500
    assert report["cpu_us_per_send_paced_1ms"] > 0
    assert report["cpu_us_per_send_flat_out"] > 0
