"""Maybe-recipients in the router's fold: members without a handler for a stream's topic
when its header is routed get its frames marked as *maybe* (their gateway decides), until
their gateway declines them; nothing extra when everyone has the handler."""

from __future__ import annotations

from roomstreams.core.room import RoomState
from roomstreams.protocol.entries import LogEntry

from ._room_helpers import LogWriter, RecordingSink


def _room() -> tuple[RoomState, RecordingSink, LogWriter]:
    room, sink, log = RoomState("demo"), RecordingSink(), LogWriter()
    for e in (
        log.join("s-alice", "alice", "gw1"),
        log.join("s-bob", "bob", "gw1"),  # a handler for chat
        log.join("s-carol", "carol", "gw2"),  # none (yet)
        log.join("s-dave", "dave", "gw2"),  # none, and does not want one
        log.subscribe("s-bob", "chat"),
    ):
        room.apply(e, sink)
    sink.clear()
    sink.maybes.clear()
    return room, sink, log


def test_members_without_the_handler_are_maybe_recipients() -> None:
    room, sink, log = _room()
    room.apply(log.header("s-alice", "st", "chat"), sink)
    assert [(d.gateway, d.sessions, d.opens) for d in sink.deliveries] == [
        ("gw1", ("s-bob",), "st")
    ]
    [(gw, maybe)] = sink.maybes
    assert gw == "gw2" and sorted(maybe.sessions) == ["s-carol", "s-dave"]
    assert (maybe.stream_id, maybe.kind, maybe.topic) == ("st", "text", "chat")
    sink.maybes.clear()
    room.apply(log.chunk("s-alice", "st", 0), sink)
    assert [gw for gw, _ in sink.maybes] == ["gw2"]  # chunks go to them too


def test_a_decline_stops_the_chunks() -> None:
    room, sink, log = _room()
    room.apply(log.header("s-alice", "st", "chat"), sink)
    sink.maybes.clear()
    # gw2: carol had registered by the time the header arrived, dave had not
    room.apply(LogEntry(kind="dc", session="", gateway="gw2", stream_id="st", data=b"s-dave"), sink)
    room.apply(log.chunk("s-alice", "st", 0), sink)
    assert [(gw, m.sessions) for gw, m in sink.maybes] == [("gw2", ["s-carol"])]
    sink.maybes.clear()
    room.apply(
        LogEntry(kind="dc", session="", gateway="gw2", stream_id="st", data=b"s-carol"), sink
    )
    sink.clear()
    room.apply(log.chunk("s-alice", "st", 1), sink)
    room.apply(log.trailer("s-alice", "st"), sink)
    assert sink.maybes == []
    assert {d.sessions for d in sink.deliveries if d.gateway == "gw1"} >= {("s-bob",)}
    assert not any(d.gateway == "gw2" for d in sink.deliveries)


def test_a_decline_for_an_ended_or_unknown_stream_is_ignored() -> None:
    room, sink, _log = _room()
    room.apply(LogEntry(kind="dc", session="", gateway="gw2", stream_id="nope", data=b"s-x"), sink)
    assert sink.deliveries == [] and sink.maybes == []


def test_nothing_extra_when_every_receiver_has_the_handler() -> None:
    room, sink, log = _room()
    for s in ("s-carol", "s-dave"):
        room.apply(log.subscribe(s, "chat"), sink)
    sink.clear()
    room.apply(log.header("s-alice", "st", "chat"), sink)
    room.apply(log.chunk("s-alice", "st", 0), sink)
    room.apply(log.trailer("s-alice", "st"), sink)
    assert sink.maybes == []


def test_a_maybe_recipient_that_leaves_is_dropped() -> None:
    room, sink, log = _room()
    room.apply(log.header("s-alice", "st", "chat"), sink)
    room.apply(log.leave("s-dave"), sink)
    sink.maybes.clear()
    room.apply(log.chunk("s-alice", "st", 0), sink)
    assert [(gw, m.sessions) for gw, m in sink.maybes] == [("gw2", ["s-carol"])]


def test_destinations_narrow_maybe_recipients_too() -> None:
    room, sink, log = _room()
    room.apply(log.header("s-alice", "st", "chat", destinations=("carol",)), sink)
    assert [(gw, m.sessions) for gw, m in sink.maybes] == [("gw2", ["s-carol"])]
    assert sink.deliveries == []  # bob has the handler but is not a destination
