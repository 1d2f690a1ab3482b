"""The bench's W7/W8 selection and its system options (no system is started)."""

from __future__ import annotations

import pytest

from roomstreams.bench.runner import WORKLOADS, parse_workloads, run
from roomstreams.bench.system import BenchSystem


def test_all_leaves_the_many_rooms_workloads_out_and_names_pick_them() -> None:
    assert "w7" in WORKLOADS and "w8" in WORKLOADS
    assert "w7" not in parse_workloads("all") and "w8" not in parse_workloads("all")
    assert parse_workloads("w8,w7,w1") == ["w1", "w7", "w8"]


def test_bad_system_options_are_refused_before_anything_starts() -> None:
    with pytest.raises(ValueError, match="redis must be one of"):
        run("w1", redis="sentinel")
    with pytest.raises(ValueError, match="at least 1"):
        run("w1", routers=0)
    with pytest.raises(ValueError, match="redis must be one of"):
        BenchSystem(redis="sentinel").start()
