"""A room taken over by a new router: rebuilt from re-announced joins, silently, then
settled against what the previous router had (RoomState.settle)."""

from __future__ import annotations

from roomstreams.core.room import RoomState

from ._room_helpers import LogWriter, RecordingSink


def taken_over(sink: RecordingSink, log: LogWriter, *rejoins: tuple[str, str, bool]) -> RoomState:
    room = RoomState("demo", settled=False)
    for session, identity, announced in rejoins:
        room.apply(log.rejoin(session, identity, announced=announced), sink)
    return room


def test_re_announced_members_are_routed_to_without_a_word_to_anyone() -> None:
    sink, log = RecordingSink(), LogWriter()
    room = taken_over(sink, log, ("s-alice", "alice", True), ("s-bob", "bob", True))
    room.apply(log.subscribe("s-bob", "chat"), sink)
    assert sink.deliveries == []
    assert sink.silent == ["s-alice", "s-bob"]
    room.settle({"s-alice": "alice", "s-bob": "bob"}, sink)
    assert sink.deliveries == []  # nobody left, nobody new
    room.apply(log.header("s-alice", "st1", "chat"), sink)
    assert sink.types_to("s-bob") == ["header"]


def test_who_the_previous_router_had_and_nobody_re_announced_has_left() -> None:
    sink, log = RecordingSink(), LogWriter()
    room = taken_over(sink, log, ("s-alice", "alice", True), ("s-bob2", "bob", True))
    sink.clear()
    # dave left while no router ran; bob reconnected meanwhile (new session, same identity)
    room.settle({"s-alice": "alice", "s-bob": "bob", "s-dave": "dave"}, sink)
    left = {"type": "participant_left", "identity": "dave"}
    for s in ("s-alice", "s-bob2"):
        [frame] = sink.to(s)
        assert {k: frame[k] for k in left} == left
        assert "restarting" in frame["reason"]
    assert [(p[1], p[2], p[3]) for p in sink.presences] == [("s-dave", "dave", None)]
    assert sink.silent == []  # a room event, participant_left


def test_a_join_the_previous_router_never_routed_is_announced_when_the_room_settles() -> None:
    sink, log = RecordingSink(), LogWriter()
    room = taken_over(
        sink,
        log,
        ("s-alice", "alice", True),
        ("s-carol", "carol", False),  # joined while no router ran
        ("s-erin", "erin", False),  # her too
    )
    assert sink.deliveries == []  # nothing before the room settles
    room.settle({"s-alice": "alice", "s-dave": "dave"}, sink)

    carol, erin, alice = sink.to("s-carol"), sink.to("s-erin"), sink.to("s-alice")
    # carol's own joined frame: the members already there, neither dave (gone) nor erin
    # (announced to her next, like any later join)
    assert carol[0]["type"] == "joined"
    assert [p["identity"] for p in carol[0]["participants"]] == ["alice"]
    assert [(f["type"], f["participant"]["identity"]) for f in carol[1:]] == [
        ("participant_joined", "erin")
    ]
    assert erin[0]["type"] == "joined"
    assert sorted(p["identity"] for p in erin[0]["participants"]) == ["alice", "carol"]
    assert len(erin) == 1
    # alice: dave left, then carol and erin joined, each once
    assert [f["type"] for f in alice] == ["participant_left"] + ["participant_joined"] * 2
    assert [f["participant"]["identity"] for f in alice[1:]] == ["carol", "erin"]
    # the re-announcements were silent; settling reports dave's leave and carol's and
    # erin's joins (room events)
    assert sink.silent == ["s-alice", "s-carol", "s-erin"]
    settled = [(p[2], p[3] is not None) for p in sink.presences[3:]]
    assert settled == [("dave", False), ("carol", True), ("erin", True)]


def test_a_member_re_announced_after_the_room_settled_is_announced_to_the_others() -> None:
    sink, log = RecordingSink(), LogWriter()
    room = taken_over(sink, log, ("s-alice", "alice", True))
    # bob's gateway answered too late: he was reported gone
    room.settle({"s-alice": "alice", "s-bob": "bob"}, sink)
    sink.clear()
    room.apply(log.rejoin("s-bob", "bob"), sink)
    [frame] = sink.to("s-alice")
    assert (frame["type"], frame["participant"]["identity"]) == ("participant_joined", "bob")
    assert sink.to("s-bob") == []  # bob's client never saw itself leave
    assert "s-bob" in room.members


def test_settling_twice_changes_nothing() -> None:
    sink, log = RecordingSink(), LogWriter()
    room = taken_over(sink, log, ("s-alice", "alice", True), ("s-carol", "carol", False))
    room.settle({"s-alice": "alice", "s-dave": "dave"}, sink)
    sink.clear()
    room.settle({}, sink)
    assert sink.deliveries == [] and sink.presences == []


def test_a_never_routed_join_re_announced_after_the_room_settled_is_a_plain_join() -> None:
    sink, log = RecordingSink(), LogWriter()
    room = taken_over(sink, log, ("s-alice", "alice", True))
    room.settle({"s-alice": "alice"}, sink)
    sink.clear()
    room.apply(log.rejoin("s-carol", "carol", announced=False), sink)
    [joined] = sink.to("s-carol")
    assert joined["type"] == "joined"
    assert [p["identity"] for p in joined["participants"]] == ["alice"]
    [frame] = sink.to("s-alice")
    assert (frame["type"], frame["participant"]["identity"]) == ("participant_joined", "carol")
