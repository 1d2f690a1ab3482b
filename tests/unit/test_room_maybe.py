"""Maybe-recipients in the router's fold: members without a handler for a stream's topic
when its header is routed get the header marked *maybe* (their gateway decides). The router
keeps the stream's later frames until each is resolved: a registration folded afterwards
replays them and makes it a recipient, a decline from its gateway forgets it. Nothing extra
when everyone has the handler."""

from __future__ import annotations

import json

from roomstreams.core.room import MAYBE_HOLD_BYTES, RoomState
from roomstreams.protocol.entries import LogEntry

from ._room_helpers import LogWriter, RecordingSink


def _room() -> tuple[RoomState, RecordingSink, LogWriter]:
    room, sink, log = RoomState("demo"), RecordingSink(), LogWriter()
    for e in (
        log.join("s-alice", "alice", "gw1"),
        log.join("s-bob", "bob", "gw1"),  # a handler for chat
        log.join("s-carol", "carol", "gw2"),  # none yet: registers as the stream begins
        log.join("s-dave", "dave", "gw2"),  # none, and does not want one
        log.subscribe("s-bob", "chat"),
    ):
        room.apply(e, sink)
    sink.clear()
    sink.maybes.clear()
    return room, sink, log


def _decline(sessions: str, stream_id: str = "st") -> LogEntry:
    return LogEntry(
        kind="dc", session="", gateway="gw2", stream_id=stream_id, data=sessions.encode()
    )


def _to(sink: RecordingSink, session: str) -> list[tuple[str, str]]:
    """(type, content or "") of what ``session`` was sent as a definite recipient."""
    out = []
    for d in sink.deliveries:
        if session in d.sessions:
            f = d.frame
            out.append((str(f["type"]), str(f.get("content", ""))))
    return out


def test_the_header_goes_to_maybe_recipients_the_chunks_wait() -> None:
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
    assert sink.maybes == []  # no chunk travels to a gateway that may not want it
    assert not any(d.gateway == "gw2" for d in sink.deliveries)


def test_a_registration_folded_after_the_header_replays_and_joins() -> None:
    room, sink, log = _room()
    room.apply(log.header("s-alice", "st", "chat"), sink)
    room.apply(log.chunk("s-alice", "st", 0, "a"), sink)
    room.apply(log.chunk("s-alice", "st", 1, "b"), sink)
    sink.clear()
    room.apply(log.subscribe("s-carol", "chat"), sink)  # carol's gateway took the header
    room.apply(log.chunk("s-alice", "st", 2, "c"), sink)
    room.apply(log.trailer("s-alice", "st"), sink)
    assert [t for t in _to(sink, "s-carol") if t[0] != "ack"] == [
        ("chunk", "a"),
        ("chunk", "b"),
        ("chunk", "c"),
        ("trailer", ""),
    ]
    room.apply(_decline("s-dave"), sink)
    assert room.unresolved == {}


def test_a_stream_that_ends_before_resolution_is_kept_then_replayed() -> None:
    room, sink, log = _room()
    room.apply(log.header("s-alice", "st", "chat"), sink)
    room.apply(log.chunk("s-alice", "st", 0, "a"), sink)
    room.apply(log.trailer("s-alice", "st"), sink)
    assert "st" not in room.streams and "st" in room.unresolved
    sink.clear()
    room.apply(_decline("s-dave"), sink)
    room.apply(log.subscribe("s-carol", "chat"), sink)
    assert [t for t in _to(sink, "s-carol") if t[0] != "ack"] == [
        ("chunk", "a"),
        ("trailer", ""),
    ]
    trailer = [d for d in sink.deliveries if d.frame["type"] == "trailer"]
    assert [d.ends for d in trailer] == ["st"]  # its gateway stops tracking the stream
    assert room.unresolved == {}


def test_declined_recipients_get_nothing_more() -> None:
    room, sink, log = _room()
    room.apply(log.header("s-alice", "st", "chat"), sink)
    room.apply(_decline("s-carol s-dave"), sink)
    sink.clear()
    room.apply(log.chunk("s-alice", "st", 0), sink)
    room.apply(log.subscribe("s-carol", "chat"), sink)  # too late for this stream
    room.apply(log.trailer("s-alice", "st"), sink)
    assert [t for t in _to(sink, "s-carol") if t[0] != "ack"] == []
    assert room.unresolved == {} and "st" not in room.streams


def test_a_decline_for_an_ended_or_unknown_stream_is_ignored() -> None:
    room, sink, _log = _room()
    room.apply(_decline("s-x", "nope"), sink)
    assert sink.deliveries == [] and sink.maybes == []


def test_nothing_extra_when_every_receiver_has_the_handler() -> None:
    room, sink, log = _room()
    for s in ("s-carol", "s-dave"):
        room.apply(log.subscribe(s, "chat"), sink)
    sink.clear()
    room.apply(log.header("s-alice", "st", "chat"), sink)
    room.apply(log.chunk("s-alice", "st", 0), sink)
    room.apply(log.trailer("s-alice", "st"), sink)
    assert sink.maybes == [] and room.unresolved == {}
    assert room.streams == {}


def test_a_maybe_recipient_that_leaves_is_forgotten() -> None:
    room, sink, log = _room()
    room.apply(log.header("s-alice", "st", "chat"), sink)
    room.apply(log.trailer("s-alice", "st"), sink)
    room.apply(log.leave("s-dave"), sink)
    room.apply(log.leave("s-carol"), sink)
    assert room.unresolved == {}


def test_destinations_narrow_maybe_recipients_too() -> None:
    room, sink, log = _room()
    room.apply(log.header("s-alice", "st", "chat", destinations=("carol",)), sink)
    assert [(gw, m.sessions) for gw, m in sink.maybes] == [("gw2", ["s-carol"])]
    assert sink.deliveries == []  # bob has the handler but is not a destination


def test_past_the_hold_limit_maybe_recipients_are_given_up() -> None:
    room, sink, log = _room()
    room.apply(log.header("s-alice", "st", "chat"), sink)
    sink.maybes.clear()
    big = "x" * 15_000
    # one abnormal trailer for them (their gateway gives it to those that took the header)
    frames: list[bytes] = []
    record = sink.deliver

    def deliver(gateway: str, sessions: list[str], frame: bytes, **kw: object) -> None:
        if kw.get("maybe") is not None:
            frames.append(frame)
        record(gateway, sessions, frame, **kw)  # type: ignore[arg-type]

    sink.deliver = deliver  # type: ignore[method-assign]
    for i in range(MAYBE_HOLD_BYTES // 15_000 + 2):
        room.apply(log.chunk("s-alice", "st", i, big), sink)
    [(gw, maybe)] = sink.maybes
    assert gw == "gw2" and sorted(maybe.sessions) == ["s-carol", "s-dave"]
    [trailer] = frames
    assert json.loads(trailer)["type"] == "trailer" and json.loads(trailer)["code"] == "lagged"
    assert not any(d.gateway == "gw2" for d in sink.deliveries)
    st = room.streams["st"]
    assert st.maybe == set() and st.held == [] and st.held_bytes == 0
    sink.clear()
    room.apply(log.subscribe("s-carol", "chat"), sink)  # nothing to replay any more
    assert [t for t in _to(sink, "s-carol") if t[0] != "ack"] == []
