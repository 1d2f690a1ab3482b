"""Session resume in the router's fold: a suspended member stays (nobody told), its sent
streams end; a move renames it to a session on another gateway, marks the old inbox, and
routes what follows there; a move by another identity, or of a gone session, is refused."""

from __future__ import annotations

import json
from dataclasses import dataclass, field

from roomstreams.core.room import RoomState
from roomstreams.protocol.entries import LogEntry

from ._room_helpers import LogWriter, RecordingSink


@dataclass
class ResumeSink(RecordingSink):
    moves: list[tuple[str, str, str, str, dict[str, object]]] = field(default_factory=list)
    refusals: list[tuple[str, str, dict[str, object]]] = field(default_factory=list)

    def moved(
        self, old_gateway: str, old_session: str, gateway: str, session: str, frame: bytes
    ) -> None:
        self.moves.append((old_gateway, old_session, gateway, session, json.loads(frame)))

    def resume_refused(self, gateway: str, session: str, frame: bytes) -> None:
        self.refusals.append((gateway, session, json.loads(frame)))


def _room(log: LogWriter, sink: ResumeSink) -> RoomState:
    room = RoomState("lobby")
    for e in (log.join("a.1", "alice", "gwA"), log.join("b.1", "bob", "gwB")):
        e.resumable = True
        room.apply(e, sink)
    room.apply(log.subscribe("a.1", "chat"), sink)
    room.apply(log.subscribe("b.1", "chat"), sink)
    sink.clear()
    return room


def _move(new: str, old: str, identity: str, gateway: str = "gwB") -> LogEntry:
    return LogEntry(
        kind="mv",
        session=new,
        seq=1,
        identity=identity,
        gateway=gateway,
        data=old.encode(),
        window=1 << 20,
    )


def test_a_move_renames_the_member_silently_and_routes_there() -> None:
    log, sink = LogWriter(), ResumeSink()
    room = _room(log, sink)
    room.apply(log.header("b.1", "st-1", "chat"), sink)  # alice receives st-1 on gwA
    room.apply(log.chunk("b.1", "st-1", 0), sink)
    assert [d.gateway for d in sink.deliveries] == ["gwA", "gwA"]
    sink.clear()
    room.apply(_move("b.9", "a.1", "alice"), sink)
    assert sink.moves == [
        ("gwA", "a.1", "gwB", "b.9", {"type": "resumed", "session": "b.9", "at": ""})
    ]
    assert sink.deliveries == []  # bob is told nothing: alice never left
    assert set(room.members) == {"b.9", "b.1"}
    assert room.members["b.9"].identity == "alice" and room.members["b.9"].gateway == "gwB"
    assert sorted(sink.silent) == ["a.1", "b.9"]  # the members hash follows, no room event
    # the rest of st-1 and what comes next go to the new session on gwB
    room.apply(log.chunk("b.1", "st-1", 1), sink)
    room.apply(log.trailer("b.1", "st-1"), sink)
    room.apply(log.header("b.1", "st-2", "chat"), sink)  # her handler is still known
    assert [(d.gateway, d.sessions) for d in sink.deliveries if "b.9" in d.sessions] == [
        ("gwB", ("b.9",))
    ] * 3
    # her own entries now come from the new session, numbered from the move on
    w = LogWriter()
    w.seq["b.9"] = 1
    room.apply(w.header("b.9", "st-3", "chat"), sink)
    assert any(d.opens == "st-3" and d.sessions == ("b.1",) for d in sink.deliveries)


def test_a_suspended_members_streams_end_and_it_stays() -> None:
    log, sink = LogWriter(), ResumeSink()
    room = _room(log, sink)
    room.apply(log.header("a.1", "up", "chat"), sink)
    sink.clear()
    gone = room.suspend_gateway("gwA", "gateway gwA stopped responding", sink)
    assert gone == []
    [end] = [d for d in sink.deliveries if d.ends == "up"]
    assert end.frame["code"] == "sender_left" and "lost its connection" in end.frame["reason"]
    assert end.sessions == ("b.1",)
    assert "a.1" in room.members
    assert not [d for d in sink.deliveries if d.type == "participant_left"]
    # past the window its gateway is dropped: it leaves as before
    room.drop_gateway("gwA", "gateway gwA stopped responding", sink)
    assert "a.1" not in room.members
    assert [d.type for d in sink.deliveries][-1] == "participant_left"


def test_a_member_that_cannot_resume_leaves_at_once() -> None:
    log, sink = LogWriter(), ResumeSink()
    room = RoomState("lobby")
    room.apply(log.join("a.1", "alice", "gwA"), sink)  # not resumable (no marks asked)
    room.apply(log.join("b.1", "bob", "gwB"), sink)
    assert room.suspend_gateway("gwA", "gone", sink) == ["a.1"]
    room.apply(_move("b.9", "a.1", "alice"), sink)
    assert sink.refusals and sink.refusals[0][2]["code"] == "resume_failed"


def test_another_identity_cannot_take_a_session() -> None:
    log, sink = LogWriter(), ResumeSink()
    room = _room(log, sink)
    room.apply(_move("b.9", "a.1", "mallory"), sink)
    assert sink.moves == []
    [(gw, session, goaway)] = sink.refusals
    assert (gw, session, goaway["code"]) == ("gwB", "b.9", "resume_failed")
    assert "another identity" in str(goaway["reason"])
    assert "a.1" in room.members and "b.9" not in room.members


def test_a_session_that_ended_is_refused() -> None:
    log, sink = LogWriter(), ResumeSink()
    room = _room(log, sink)
    room.apply(log.leave("a.1", "gone"), sink)
    room.apply(_move("b.9", "a.1", "alice"), sink)
    assert sink.moves == [] and sink.refusals[0][2]["code"] == "resume_failed"
