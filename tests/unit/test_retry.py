"""The one backoff of every retry loop: exponential, capped, full jitter."""

from __future__ import annotations

import random
import statistics

import pytest

from roomstreams._retry import Backoff


def test_without_jitter_it_doubles_up_to_the_cap() -> None:
    b = Backoff(0.05, 0.3, jitter=False)
    assert [b.next() for _ in range(6)] == [0.05, 0.1, 0.2, 0.3, 0.3, 0.3]
    b.reset()
    assert b.next() == 0.05


def test_full_jitter_draws_uniformly_below_the_growing_ceiling() -> None:
    b = Backoff(0.1, 2.0, rng=random.Random(7))
    ref = random.Random(7)
    ceilings = [0.1, 0.2, 0.4, 0.8, 1.6, 2.0, 2.0]
    got = [b.next() for _ in ceilings]
    assert got == [ref.uniform(0.0, c) for c in ceilings]  # reproducible with a seed
    assert all(0.0 <= d <= c for d, c in zip(got, ceilings, strict=True))
    assert b.ceiling == 2.0


def test_clients_cut_at_once_do_not_come_back_in_lockstep() -> None:
    # 200 clients of a drained gateway, each with its own backoff: their first and fifth
    # attempts are spread over the whole window instead of landing at the same instant
    seeds = random.Random(1)
    clients = [Backoff(0.1, 2.0, rng=random.Random(seeds.random())) for _ in range(200)]
    first = [c.next() for c in clients]
    for _ in range(3):
        for c in clients:
            c.next()
    fifth = [c.next() for c in clients]
    for delays, window in ((first, 0.1), (fifth, 1.6)):
        assert max(delays) <= window
        assert len({round(d, 6) for d in delays}) == len(delays)
        assert statistics.pstdev(delays) > window / 5  # uniform: sd = window / sqrt(12)
        assert min(delays) < window / 10 and max(delays) > window * 0.9


async def test_sleep_returns_the_delay_it_slept() -> None:
    b = Backoff(0.001, 0.002, jitter=False)
    assert await b.sleep() == 0.001
    assert await b.sleep() == 0.002


@pytest.mark.parametrize(("first", "cap", "factor"), [(0, 1, 2), (2, 1, 2), (0.1, 1, 0.5)])
def test_nonsense_parameters_are_refused(first: float, cap: float, factor: float) -> None:
    with pytest.raises(ValueError, match="backoff"):
        Backoff(first, cap, factor=factor)
