"""The router's fold of what the server API appends (session ``api``): a data packet with no
sender goes to every member with ``canSubscribe`` (narrowed to its destinations), nobody is
acknowledged or told of unknown destinations."""

from __future__ import annotations

from roomstreams.core.room import SERVER_SESSION, RoomState
from roomstreams.protocol.binary import DeliveredDataMeta, encode_data_packet
from roomstreams.protocol.entries import LogEntry

from ._room_helpers import LogWriter, RecordingSink


def _server_packet(dests: tuple[str, ...] = ()) -> LogEntry:
    meta = DeliveredDataMeta(topic="t", destination_identities=list(dests), sender="")
    data = encode_data_packet(meta.model_dump_json().encode(), b"payload")
    return LogEntry(
        kind="p", session=SERVER_SESSION, topic="t", destinations=dests, data=data, size=len(data)
    )


def _room() -> tuple[RoomState, RecordingSink]:
    room, sink, log = RoomState("demo"), RecordingSink(), LogWriter()
    for e in (
        log.join("s-alice", "alice", "gw1"),
        log.join("s-bob", "bob", "gw2"),
        log.join("s-mute", "mute", "gw1", can_subscribe=False),
    ):
        room.apply(e, sink)
    sink.deliveries.clear()
    return room, sink


def test_a_server_packet_reaches_every_member_that_subscribes() -> None:
    room, sink = _room()
    packet = _server_packet()
    room.apply(packet, sink)
    got = {(d.gateway, d.sessions) for d in sink.deliveries}
    assert got == {("gw1", ("s-alice",)), ("gw2", ("s-bob",))}
    assert all(d.raw == packet.data for d in sink.deliveries)
    assert sink.acks == []


def test_a_server_packet_to_destinations_and_to_nobody_known() -> None:
    room, sink = _room()
    room.apply(_server_packet(("bob", "mute")), sink)
    assert [(d.gateway, d.sessions) for d in sink.deliveries] == [("gw2", ("s-bob",))]
    sink.deliveries.clear()
    room.apply(_server_packet(("nobody",)), sink)
    assert sink.deliveries == []  # no sender to tell: nothing at all
