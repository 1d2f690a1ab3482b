"""The client's replay filter (session resume): what the new gateway replays from the last
mark is matched, in order, against what the client received since that mark."""

from __future__ import annotations

from roomstreams.client.room import _Replay


def _deliver(received: list[str | bytes], replayed: list[str | bytes]) -> list[str | bytes]:
    """What the application gets from a replay: the frames not already received."""
    r = _Replay(received)
    return [m for m in replayed if not r.repeat(m)]


def test_what_was_received_is_dropped_and_the_rest_delivered() -> None:
    received: list[str | bytes] = ["c0", "c1"]
    assert _deliver(received, ["c0", "c1", "c2", "c3"]) == ["c2", "c3"]


def test_identical_frames_count_one_by_one() -> None:
    """Two identical data packets, one received before the cut: the second one comes."""
    p = b"\x02\x01same packet"
    assert _deliver([p], [p, p]) == [p]
    assert _deliver([p, p], [p, p, p]) == [p]


def test_frames_the_old_gateway_made_up_are_skipped_over() -> None:
    """Errors, data acks, goaway from the old gateway are never replayed (not in its inbox)."""
    received: list[str | bytes] = ["c0", '{"type":"data_ack","n":3}', "c1", '{"type":"goaway"}']
    assert _deliver(received, ["c0", "c1", "c2"]) == ["c2"]


def test_a_frame_the_old_gateway_dropped_comes_late_not_twice() -> None:
    """A lossy packet the old gateway dropped for a congested socket is replayed: delivered
    once (late), and what came after it is still recognised."""
    received: list[str | bytes] = [b"p1", b"p3"]
    assert _deliver(received, [b"p1", b"p2", b"p3", b"p4"]) == [b"p2", b"p4"]


def test_nothing_received_since_the_mark_delivers_everything() -> None:
    assert _deliver([], ["a", "b"]) == ["a", "b"]
