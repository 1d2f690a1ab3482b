"""The gateway's wake notices for idle rooms (services.gateway.wake)."""

from __future__ import annotations

from services.gateway.wake import WakeNotices


def test_first_append_to_a_room_is_announced() -> None:
    w = WakeNotices(room_idle_after=8.0)
    assert w.needed("rs:{p1}:room:a", 100.0)
    assert w.needed("rs:{p1}:room:b", 100.0)


def test_appends_closer_than_a_quarter_of_the_idle_time_are_not() -> None:
    w = WakeNotices(room_idle_after=8.0)
    assert w.needed("k", 100.0)
    assert not w.needed("k", 101.0)
    assert not w.needed("k", 102.9)  # measured from the last append, not the last notice
    assert not w.needed("k", 104.8)
    assert w.needed("k", 106.8)  # 2 s (a quarter of 8) since the last append


def test_pruning_forgets_only_rooms_that_would_be_announced_anyway() -> None:
    w = WakeNotices(room_idle_after=8.0)
    assert w.needed("old", 100.0)
    assert w.needed("recent", 108.5)
    assert w.needed("other", 109.0)  # prunes: "old" is forgotten, "recent" is not
    assert len(w) == 2
    assert not w.needed("recent", 109.2)
    assert w.needed("old", 109.5)
