"""Small statistics helpers for the benchmark: percentiles and latency summaries."""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from typing import Any

__all__ = ["latency_summary", "percentile", "rnd"]


def percentile(sorted_values: Sequence[float], q: float) -> float:
    """The ``q`` quantile (0..1) of already sorted values, linear interpolation between
    closest ranks (numpy's default). Raises ``ValueError`` on an empty sequence."""
    if not sorted_values:
        raise ValueError("percentile of no values")
    k = (len(sorted_values) - 1) * q
    lo = math.floor(k)
    hi = min(lo + 1, len(sorted_values) - 1)
    return sorted_values[lo] + (sorted_values[hi] - sorted_values[lo]) * (k - lo)


def rnd(x: float | None, digits: int = 3) -> float | None:
    """Round for the report; ``None`` and non-finite values become ``None`` (valid JSON)."""
    if x is None or not math.isfinite(x):
        return None
    return round(x, digits)


def latency_summary(seconds: Iterable[float]) -> dict[str, Any]:
    """``{"n", "p50_ms", "p99_ms", "max_ms", "mean_ms"}`` of latencies given in seconds."""
    vals = sorted(seconds)
    if not vals:
        return {"n": 0, "p50_ms": None, "p99_ms": None, "max_ms": None, "mean_ms": None}
    ms = 1000.0
    return {
        "n": len(vals),
        "p50_ms": rnd(percentile(vals, 0.50) * ms),
        "p99_ms": rnd(percentile(vals, 0.99) * ms),
        "max_ms": rnd(vals[-1] * ms),
        "mean_ms": rnd(sum(vals) / len(vals) * ms),
    }
