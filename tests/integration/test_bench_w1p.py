"""The benchmark's W1p (W1 with its receiver in a process of its own): its figures are
benchmarks, not asserted; what is tested is that every chunk reaches the receiver process,
in order, and that each process's CPU is reported, the receiver's included."""

from __future__ import annotations

from roomstreams.bench.runner import run


def test_w1p_carries_every_chunk_to_a_receiver_in_its_own_process() -> None:
    doc = run("w1p", quick=True)
    w = doc["w1p"]
    assert "error" not in w, w.get("error")
    assert w["delivered_all_in_order"] is True
    assert w["chunks_measured"] == w["n"] == 1500  # quick: 1.5 s at 1000/s after warm-up
    assert w["receiver_process"] == "receivers_gw1"
    cpu = w["cpu_us_per_chunk"]
    assert {"bench", "receivers_gw1", "gateway0", "gateway1", "router", "redis"} <= set(cpu)
    assert cpu["receivers_gw1"] > 0
    assert doc["ratios"]["w1p_p50_over_path_floor"] is None  # no floors in this run
