"""Data-packet acks in the router's fold: a numbered (reliable) packet is acknowledged to its
sender once routed, cumulatively (the router's batch keeps the highest number per sender and
wake-up); a gap in the sender's entries fails the packets that may be among the lost."""

from __future__ import annotations

from roomstreams.core.room import RoomState
from roomstreams.protocol.frames import ErrorCode

from ._room_helpers import LogWriter, RecordingSink


def _room(sink: RecordingSink, log: LogWriter) -> RoomState:
    room = RoomState("demo")
    for e in (log.join("s-alice", "alice", "gw1"), log.join("s-bob", "bob", "gw2")):
        room.apply(e, sink)
    sink.clear()
    return room


def test_numbered_packets_are_acknowledged_after_their_deliveries() -> None:
    sink, log = RecordingSink(), LogWriter()
    room = _room(sink, log)
    for n in (1, 2, 3):
        room.apply(log.packet("s-alice", b"\x02p%d" % n, number=n), sink)
    # every packet reached bob, and each routed packet raised alice's acknowledged number
    assert [d.raw for d in sink.deliveries] == [b"\x02p1", b"\x02p2", b"\x02p3"]
    assert sink.packet_acks == [("gw1", "s-alice", 1), ("gw1", "s-alice", 2), ("gw1", "s-alice", 3)]
    assert room.members["s-alice"].packets == 3
    # nothing travels to the sender itself for an ack: its gateway builds the frame
    assert sink.to("s-alice") == []


def test_unnumbered_packets_and_server_packets_are_not_acknowledged() -> None:
    sink, log = RecordingSink(), LogWriter()
    room = _room(sink, log)
    room.apply(log.packet("s-alice", b"\x02lossy"), sink)
    server = log.packet("api", b"\x02srv")
    server.seq = 0
    room.apply(server, sink)
    assert len(sink.deliveries) == 3  # bob; then alice and bob for the server's packet
    assert sink.packet_acks == []


def test_a_packet_to_an_absent_destination_is_still_acknowledged() -> None:
    # routed (to nobody): the call completes; the sender is told by an error frame
    sink, log = RecordingSink(), LogWriter()
    room = _room(sink, log)
    room.apply(log.packet("s-alice", b"\x02x", destinations=("zed",), number=1), sink)
    assert sink.packet_acks == [("gw1", "s-alice", 1)]
    assert sink.types_to("s-alice") == ["error"]


def test_a_repeated_append_is_not_routed_or_acknowledged_twice() -> None:
    sink, log = RecordingSink(), LogWriter()
    room = _room(sink, log)
    e = log.packet("s-alice", b"\x02x", number=1)
    room.apply(e, sink)
    room.apply(e, sink)  # the gateway retried an append that had gone through
    assert len(sink.deliveries) == 1
    assert sink.packet_acks == [("gw1", "s-alice", 1)]


def test_entries_lost_before_routing_fail_the_packets_after_the_last_acknowledged() -> None:
    sink, log = RecordingSink(), LogWriter()
    room = _room(sink, log)
    room.apply(log.packet("s-alice", b"\x02a", number=1), sink)
    log.skip("s-alice", 2)  # packets 2 and 3 trimmed before the router read them
    room.apply(log.packet("s-alice", b"\x02d", number=4), sink)
    [lost] = sink.to("s-alice")
    assert lost["type"] == "error" and lost["code"] == ErrorCode.LAGGED
    assert lost["packets"][0] == 2  # from the first unacknowledged one on
    # then 4 is routed and acknowledged: the client fails 2 and 3 before it sees ack 4
    assert sink.packet_acks[-1] == ("gw1", "s-alice", 4)
    assert [d.raw for d in sink.deliveries if d.sessions == ("s-bob",)] == [b"\x02a", b"\x02d"]
