"""A tiny soak run (``roomstreams.bench.soak``): a few participants, streams and packets, one
fault (Redis restarted empty), and the verdict: nothing lost, duplicated, reordered,
corrupted or hung. The full run (50 participants, three faults) is a script, not part of the
suite: ``python -m roomstreams.bench.soak --seconds 60 --json`` (docs/reliability.md)."""

from __future__ import annotations

import pytest

from roomstreams.bench.soak import run_soak

pytestmark = pytest.mark.slow


@pytest.mark.timeout(90)
async def test_a_tiny_soak_through_a_redis_restart_loses_nothing() -> None:
    report = await run_soak(
        [
            "--seconds", "6",
            "--participants", "6",
            "--rooms", "2",
            "--gateways", "2",
            "--streams", "12",
            "--chunks", "3",
            "--chunk-interval", "0.3",
            "--packet-interval", "0.5",
            "--faults", "redis",
            "--drain", "10",
        ]
    )  # fmt: skip
    steady, after = report["phases"]["steady"], report["phases"]["redis_restarted"]
    assert [f["phase"] for f in report["faults"]] == ["redis_restarted"]
    # traffic on both sides of the fault, and it arrived
    assert steady["streams_sent"] and steady["packets_sent"] and steady["delivered"]
    assert after["streams_sent"] and after["packets_sent"] and after["delivered"]
    for phase in (steady, after):
        for what in ("lost", "duplicated", "reordered", "corrupted", "hung"):
            assert phase[what] == 0, (what, phase)
    assert not any(report["receiver_totals"].values()), report["receiver_totals"]
    assert report["ok"]
