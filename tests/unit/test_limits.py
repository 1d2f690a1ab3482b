"""The per-connection flood meter (sans-I/O): token buckets for frames and bytes."""

from __future__ import annotations

from roomstreams.core.limits import RateLimits, RateMeter

LIMITS = RateLimits(frames_per_second=100, bytes_per_second=10_000, close_after=2.0)


def test_within_the_rates_nothing_waits() -> None:
    m = RateMeter(LIMITS, now=0.0)
    t = 0.0
    for _ in range(1000):  # 50 frames/s of 100 bytes, for 20 s
        t += 0.02
        v = m.charge(100, t)
        assert v.wait == 0 and not v.warn and not v.close


def test_a_burst_of_one_seconds_worth_passes_then_frames_wait() -> None:
    m = RateMeter(LIMITS, now=0.0)
    verdicts = [m.charge(1, 0.0) for _ in range(100)]
    assert all(v.wait == 0 for v in verdicts)
    v = m.charge(1, 0.0)
    assert v.wait > 0 and v.warn and not v.close
    assert abs(v.wait - 0.01) < 1e-9  # one frame over at 100/s: a hundredth of a second
    assert not m.charge(1, 0.0).warn  # told once per spell


def test_a_flood_that_goes_on_is_closed_after_close_after_seconds_throttled() -> None:
    m = RateMeter(LIMITS, now=0.0)
    t, closed_at = 0.0, None
    for _ in range(10_000):
        v = m.charge(1, t)
        t += v.wait  # the reader waits as told, then reads the next frame at once
        if v.close:
            closed_at = t
            break
    assert closed_at is not None
    assert 2.0 < closed_at < 4.0  # one second of burst, then two of throttling


def test_a_flooder_that_calms_down_is_forgiven() -> None:
    m = RateMeter(LIMITS, now=0.0)
    t = 0.0
    for _ in range(250):  # 1.5 s throttled
        t += m.charge(1, t).wait
    t += 2.0  # quiet: the bucket refills
    assert m.charge(1, t).wait == 0
    for _ in range(250):
        v = m.charge(1, t)
        assert not v.close
        t += v.wait


def test_bytes_over_the_rate_slow_down_but_never_close() -> None:
    m = RateMeter(LIMITS, now=0.0)
    t = 0.0
    for _ in range(200):  # 5000-byte frames at 2/s allowed: 100 s of upload
        v = m.charge(5_000, t)
        assert not v.close and not v.warn
        t += v.wait + 0.001
    assert t > 95  # held to the byte rate


def test_bulk_frames_count_a_quarter_and_never_close() -> None:
    m = RateMeter(RateLimits(100, 1e12, close_after=1.0), now=0.0)
    t = 0.0
    for _ in range(4000):  # 15000-byte chunks as fast as allowed: 400/s, for 10 s
        v = m.charge(15_000, t)
        assert not v.close and not v.warn
        t += v.wait
    assert 8.0 < t < 11.0  # held to 4 x the frame rate
