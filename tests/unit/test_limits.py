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
    assert m.throttling
    # one frame over, paid back at a tenth of 100/s, and one more frame's worth allowed
    # before reading again: two tenths of a second
    assert abs(v.wait - 0.2) < 1e-9
    assert not m.charge(1, 0.0).warn  # told once per spell


def test_a_throttled_connection_is_held_to_a_tenth_of_its_rate() -> None:
    m = RateMeter(RateLimits(100, 1e9, close_after=100.0), now=0.0)
    t, n = 0.0, 0
    while t < 10.0:  # as fast as the meter lets it, for 10 s
        t += m.charge(1, t).wait
        n += 1
    # the burst of 100, then 10/s (not 100/s) for the rest
    assert 100 + 85 < n < 100 + 115


def test_a_throttled_connection_is_read_in_batches() -> None:
    m = RateMeter(RateLimits(2000, 1e9, close_after=100.0), now=0.0)
    t, waits = 0.0, []
    for _ in range(2000 + 200 * 3):  # the burst, then three seconds at 200/s
        v = m.charge(1, t)
        t += v.wait
        if v.wait:
            waits.append(v.wait)
    # a pause a twentieth of a second long for every ten frames, not one per frame
    assert 55 <= len(waits) <= 62
    assert all(w >= 0.049 for w in waits)


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
    # the burst at once, then two seconds' worth of frames over the rate (200), at the
    # tenth it is held to: twenty seconds
    assert 19.0 < closed_at < 21.5


def test_a_flooder_that_calms_down_is_forgiven() -> None:
    m = RateMeter(LIMITS, now=0.0)
    t = 0.0
    for _ in range(115):  # the burst, then 1.5 s throttled
        t += m.charge(1, t).wait
    assert m.throttling
    t += 1.0  # quiet for a second: the spell is over
    assert m.charge(1, t).wait == 0
    assert not m.throttling
    t += 1.0  # back to the full rate: another burst, another 1.5 s throttled, no close
    for _ in range(115):
        v = m.charge(1, t)
        assert not v.close
        t += v.wait


def test_keeping_to_the_reduced_rate_ends_the_spell_without_a_pause() -> None:
    m = RateMeter(LIMITS, now=0.0)
    t = 0.0
    for _ in range(101):
        t += m.charge(1, t).wait
    assert m.throttling
    for _ in range(30):  # 5 frames/s: within the tenth
        t += 0.2
        assert not m.charge(1, t).close
    assert not m.throttling


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


def test_an_upload_does_not_use_up_the_small_frames_allowance() -> None:
    m = RateMeter(RateLimits(100, 1e12, close_after=1.0), now=0.0)
    t = 0.0
    for _ in range(800):  # 2 s of 15000-byte chunks as fast as allowed
        t += m.charge(15_000, t).wait
    v = m.charge(20, t)  # the trailer, or a chat message beside the upload
    assert v.wait == 0 and not v.warn and not m.throttling


def test_a_one_off_burst_of_twice_the_budget_is_slowed_not_closed() -> None:
    # e.g. a client publishing 5,000 packets at once at the defaults (2000/s, 5 s: a budget
    # of 10,000 frames over the rate): slowed to a tenth, never closed
    m = RateMeter(LIMITS, now=0.0)  # 100/s, close after 2 s' worth (200 frames)
    t = 0.0
    for _ in range(100 + 190):
        v = m.charge(1, t)
        assert not v.close
        t += v.wait
    assert m.throttling
