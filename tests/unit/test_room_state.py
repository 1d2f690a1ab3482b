"""The router's room fold (``RoomState.apply``): log entries in, deliveries out."""

from __future__ import annotations

import pytest

from roomstreams.core.room import RoomState
from roomstreams.protocol.entries import LogEntry
from roomstreams.protocol.frames import ErrorCode

from ._room_helpers import LogWriter, RecordingSink


@pytest.fixture
def room() -> RoomState:
    return RoomState("demo")


@pytest.fixture
def sink() -> RecordingSink:
    return RecordingSink()


@pytest.fixture
def log() -> LogWriter:
    return LogWriter()


def apply(room: RoomState, sink: RecordingSink, *entries: LogEntry) -> None:
    for e in entries:
        room.apply(e, sink)


@pytest.fixture
def chat(room: RoomState, sink: RecordingSink, log: LogWriter) -> RoomState:
    """alice (sender) on gw1; bob on gw1 and carol on gw2 both handle text topic "chat"."""
    apply(
        room,
        sink,
        log.join("s-alice", "alice", "gw1"),
        log.join("s-bob", "bob", "gw1"),
        log.join("s-carol", "carol", "gw2"),
        log.subscribe("s-bob", "chat"),
        log.subscribe("s-carol", "chat"),
    )
    sink.clear()
    return room


# -- join ---------------------------------------------------------------------------------


def test_first_joiner_gets_joined_with_no_participants(
    room: RoomState, sink: RecordingSink, log: LogWriter
) -> None:
    apply(room, sink, log.join("s-alice", "alice", "gw1", name="Alice"))

    assert len(sink.deliveries) == 1
    d = sink.deliveries[0]
    assert (d.gateway, d.sessions) == ("gw1", ("s-alice",))
    frame = d.frame
    # LiveKit's fields (the room's sid, the participant's sid, kind and permission) are
    # tested through the system in test_livekit_room.py
    assert frame.pop("room_sid") == room.sid and room.sid.startswith("RM_")
    assert frame["permissions"].pop("can_update_metadata") is False
    for key in ("sid", "kind", "permission"):
        frame["participant"].pop(key)
    assert frame == {
        "type": "joined",
        "room": "demo",
        "session": "s-alice",
        "participant": {"identity": "alice", "name": "Alice", "metadata": "", "attributes": {}},
        "permissions": {"can_publish_data": True, "can_subscribe": True, "hidden": False},
        "participants": [],
    }
    assert not room.empty
    assert set(room.members) == {"s-alice"}


def test_join_lists_existing_participants_and_announces_to_others(
    room: RoomState, sink: RecordingSink, log: LogWriter
) -> None:
    apply(room, sink, log.join("s-alice", "alice", "gw1"), log.join("s-bob", "bob", "gw2"))
    sink.clear()

    apply(room, sink, log.join("s-carol", "carol", "gw3", can_subscribe=False))

    joined = sink.to("s-carol")
    assert len(joined) == 1
    assert joined[0]["type"] == "joined"
    assert joined[0]["session"] == "s-carol"
    assert [p["identity"] for p in joined[0]["participants"]] == ["alice", "bob"]
    assert joined[0]["permissions"]["can_subscribe"] is False
    for other in ("s-alice", "s-bob"):
        frames = sink.to(other)
        assert len(frames) == 1
        assert frames[0]["type"] == "participant_joined"
        assert frames[0]["participant"]["identity"] == "carol"
    # participant_joined goes to each other gateway once, naming its sessions
    announced = [d for d in sink.deliveries if d.type == "participant_joined"]
    assert sorted((d.gateway, d.sessions) for d in announced) == [
        ("gw1", ("s-alice",)),
        ("gw2", ("s-bob",)),
    ]


def test_join_of_a_session_already_in_the_room_is_ignored(
    room: RoomState, sink: RecordingSink, log: LogWriter
) -> None:
    apply(room, sink, log.join("s-alice", "alice"), log.join("s-bob", "bob"))
    sink.clear()

    apply(room, sink, log.join("s-bob", "bob"))

    assert sink.deliveries == []
    assert sink.closes == []
    assert set(room.members) == {"s-alice", "s-bob"}


# -- recipients are frozen at header time -------------------------------------------------


def test_header_goes_to_subscribed_members_other_than_the_sender(
    room: RoomState, sink: RecordingSink, log: LogWriter
) -> None:
    apply(
        room,
        sink,
        log.join("s-alice", "alice"),
        log.join("s-bob", "bob"),  # handles "chat": receives
        log.join("s-carol", "carol"),  # handles another topic
        log.join("s-dave", "dave"),  # handles "chat" as a byte topic only
        log.join("s-erin", "erin", can_subscribe=False),  # handles "chat" but cannot subscribe
        log.join("s-frank", "frank"),  # no handler at all
        log.subscribe("s-alice", "chat"),  # the sender's own handler does not count
        log.subscribe("s-bob", "chat"),
        log.subscribe("s-carol", "news"),
        log.subscribe("s-dave", "chat", kind="byte"),
        log.subscribe("s-erin", "chat"),
    )
    sink.clear()

    apply(room, sink, log.header("s-alice", "st1", "chat"))

    assert len(sink.deliveries) == 1
    d = sink.deliveries[0]
    assert d.sessions == ("s-bob",)
    assert d.opens == "st1"
    assert d.ends == ""
    assert d.frame["type"] == "header"
    assert d.frame["sender"] == "alice"
    assert room.streams["st1"].recipients == {"s-bob"}


def test_byte_header_goes_to_byte_handlers_only(
    room: RoomState, sink: RecordingSink, log: LogWriter
) -> None:
    apply(
        room,
        sink,
        log.join("s-alice", "alice"),
        log.join("s-bob", "bob"),
        log.join("s-carol", "carol"),
        log.subscribe("s-bob", "files", kind="text"),
        log.subscribe("s-carol", "files", kind="byte"),
    )
    sink.clear()

    apply(room, sink, log.header("s-alice", "b1", "files", kind="byte"))

    opened = [d for d in sink.deliveries if d.opens == "b1"]
    assert [d.sessions for d in opened] == [("s-carol",)]


def test_destination_identities_narrow_the_recipients(
    chat: RoomState, sink: RecordingSink, log: LogWriter
) -> None:
    apply(chat, sink, log.header("s-alice", "st1", "chat", destinations=("carol",)))

    assert [d.sessions for d in sink.deliveries] == [("s-carol",)]


def test_destination_without_a_handler_receives_nothing(
    chat: RoomState, sink: RecordingSink, log: LogWriter
) -> None:
    apply(
        chat,
        sink,
        log.join("s-dave", "dave"),
        log.header("s-alice", "st1", "chat", destinations=("dave", "nobody")),
    )
    sink.clear()
    apply(chat, sink, log.chunk("s-alice", "st1", 0), log.trailer("s-alice", "st1"))

    assert sink.to("s-dave") == []
    assert chat.streams == {}  # (closed)


def test_subscribing_after_the_header_does_not_add_a_recipient(
    chat: RoomState, sink: RecordingSink, log: LogWriter
) -> None:
    apply(
        chat,
        sink,
        log.join("s-dave", "dave"),
        log.header("s-alice", "st1", "chat"),
        # dave's gateway had no registration of his when the header came: it declined
        LogEntry(kind="dc", session="", gateway="gw1", stream_id="st1", data=b"s-dave"),
        log.subscribe("s-dave", "chat"),
    )
    sink.clear()

    apply(chat, sink, log.chunk("s-alice", "st1", 0), log.trailer("s-alice", "st1"))

    assert sink.to("s-dave") == []
    assert sink.types_to("s-bob") == ["chunk", "trailer"]


def test_unsubscribing_after_the_header_keeps_the_recipient(
    chat: RoomState, sink: RecordingSink, log: LogWriter
) -> None:
    apply(chat, sink, log.header("s-alice", "st1", "chat"), log.unsubscribe("s-bob", "chat"))
    sink.clear()

    apply(chat, sink, log.chunk("s-alice", "st1", 0), log.trailer("s-alice", "st1"))

    assert sink.types_to("s-bob") == ["chunk", "trailer"]
    # ... but the next stream no longer reaches bob
    sink.clear()
    apply(chat, sink, log.header("s-alice", "st2", "chat"))
    assert sink.to("s-bob") == []
    assert sink.types_to("s-carol") == ["header"]


# -- chunks and trailers --------------------------------------------------------------------


def test_chunks_and_trailer_go_to_the_frozen_set_one_delivery_per_gateway(
    chat: RoomState, sink: RecordingSink, log: LogWriter
) -> None:
    apply(chat, sink, log.join("s-dave", "dave", "gw2"), log.subscribe("s-dave", "chat"))
    sink.clear()

    header = log.header("s-alice", "st1", "chat")
    chunk = log.chunk("s-alice", "st1", 0, "hello")
    trailer = log.trailer("s-alice", "st1")
    for entry, opens, ends in ((header, "st1", ""), (chunk, "", ""), (trailer, "", "st1")):
        sink.clear()
        apply(chat, sink, entry)
        out = [d for d in sink.deliveries if d.sessions != ("s-alice",)]
        assert sorted(d.gateway for d in out) == ["gw1", "gw2"]  # one delivery per gateway
        by_gw = {d.gateway: set(d.sessions) for d in out}
        assert by_gw == {"gw1": {"s-bob"}, "gw2": {"s-carol", "s-dave"}}
        for d in out:
            assert d.raw == entry.data  # the logged frame bytes, not re-encoded
            assert (d.opens, d.ends) == (opens, ends)


def test_trailer_sends_closed_to_the_sender_and_forgets_the_stream(
    chat: RoomState, sink: RecordingSink, log: LogWriter
) -> None:
    apply(chat, sink, log.header("s-alice", "st1", "chat"))
    sink.clear()

    apply(chat, sink, log.trailer("s-alice", "st1"))

    assert sink.to("s-alice") == [{"type": "closed", "stream_id": "st1"}]
    # marked as ending st1, so the sender's gateway stops waiting for the trailer's routing
    [closed] = [d for d in sink.deliveries if d.sessions == ("s-alice",)]
    assert closed.ends == "st1"
    assert "st1" not in chat.streams
    # a chunk after the trailer goes nowhere
    sink.clear()
    apply(chat, sink, log.chunk("s-alice", "st1", 0))
    assert sink.deliveries == []


def test_chunk_of_another_senders_stream_is_not_delivered(
    chat: RoomState, sink: RecordingSink, log: LogWriter
) -> None:
    apply(chat, sink, log.header("s-alice", "st1", "chat"))
    sink.clear()

    apply(chat, sink, log.chunk("s-bob", "st1", 0), log.trailer("s-bob", "st1"))

    assert sink.deliveries == []
    assert "st1" in chat.streams


def test_late_joiner_gets_nothing_of_an_open_stream(
    chat: RoomState, sink: RecordingSink, log: LogWriter
) -> None:
    apply(chat, sink, log.header("s-alice", "st1", "chat"), log.chunk("s-alice", "st1", 0))
    apply(chat, sink, log.join("s-erin", "erin", "gw1"), log.subscribe("s-erin", "chat"))
    sink.clear()

    apply(chat, sink, log.chunk("s-alice", "st1", 1), log.trailer("s-alice", "st1"))

    assert sink.to("s-erin") == []
    assert sink.types_to("s-bob") == ["chunk", "trailer"]
    # the next stream reaches erin
    sink.clear()
    apply(chat, sink, log.header("s-alice", "st2", "chat"))
    assert sink.types_to("s-erin") == ["header"]


def test_member_who_leaves_stops_receiving(
    chat: RoomState, sink: RecordingSink, log: LogWriter
) -> None:
    apply(chat, sink, log.header("s-alice", "st1", "chat"), log.chunk("s-alice", "st1", 0))
    sink.clear()

    apply(chat, sink, log.leave("s-bob", "bye"))

    assert sink.to("s-bob") == []
    for s in ("s-alice", "s-carol"):
        assert sink.to(s) == [{"type": "participant_left", "identity": "bob", "reason": "bye"}]
    assert "s-bob" not in chat.members

    sink.clear()
    apply(chat, sink, log.chunk("s-alice", "st1", 1), log.trailer("s-alice", "st1"))
    assert sink.to("s-bob") == []
    assert sink.types_to("s-carol") == ["chunk", "trailer"]


def test_entries_of_a_member_who_left_are_ignored(
    chat: RoomState, sink: RecordingSink, log: LogWriter
) -> None:
    apply(chat, sink, log.leave("s-bob"))
    sink.clear()

    apply(
        chat,
        sink,
        log.subscribe("s-bob", "chat", req=1),
        log.header("s-bob", "sb", "chat"),
        log.chunk("s-bob", "sb", 0),
        log.leave("s-bob"),
    )

    assert sink.deliveries == []
    assert sink.acks == []
    assert "sb" not in chat.streams


def test_sender_leaving_mid_stream_aborts_its_open_streams(
    chat: RoomState, sink: RecordingSink, log: LogWriter
) -> None:
    apply(
        chat,
        sink,
        log.subscribe("s-alice", "chat"),
        log.header("s-alice", "st1", "chat"),
        log.header("s-alice", "st2", "chat", destinations=("carol",)),
        log.header("s-bob", "other", "chat"),  # bob's stream to alice and carol
    )
    sink.clear()

    apply(chat, sink, log.leave("s-alice", "network went away"))

    aborts = [d for d in sink.deliveries if d.type == "trailer"]
    assert sorted((d.ends, d.sessions) for d in aborts) == [
        ("st1", ("s-bob",)),
        ("st1", ("s-carol",)),
        ("st2", ("s-carol",)),
    ]
    for d in aborts:
        assert d.frame["code"] == ErrorCode.SENDER_LEFT
        assert "alice" in d.frame["reason"]
        assert "network went away" in d.frame["reason"]
    # bob: the abort before the departure notice
    assert sink.types_to("s-bob") == ["trailer", "participant_left"]
    assert set(chat.streams) == {"other"}
    assert chat.streams["other"].recipients == {"s-carol"}


def test_sender_leaving_without_reason_still_names_the_sender(
    chat: RoomState, sink: RecordingSink, log: LogWriter
) -> None:
    apply(chat, sink, log.header("s-alice", "st1", "chat"))
    sink.clear()

    apply(chat, sink, log.leave("s-alice"))

    trailer = sink.to("s-bob")[0]
    assert trailer["type"] == "trailer"
    assert trailer["stream_id"] == "st1"
    assert trailer["code"] == "sender_left"
    assert "alice" in trailer["reason"]


# -- errors and acks ----------------------------------------------------------------------


def test_reused_open_stream_id_is_an_error_to_the_sender(
    chat: RoomState, sink: RecordingSink, log: LogWriter
) -> None:
    apply(chat, sink, log.header("s-alice", "st1", "chat"))
    sink.clear()

    apply(chat, sink, log.header("s-alice", "st1", "chat"), log.header("s-bob", "st1", "chat"))

    for sender in ("s-alice", "s-bob"):
        frames = sink.to(sender)
        assert len(frames) == 1
        assert frames[0]["type"] == "error"
        assert frames[0]["code"] == ErrorCode.STREAM_ID_IN_USE
        assert frames[0]["stream_id"] == "st1"
    assert sink.to("s-carol") == []
    assert chat.streams["st1"].sender == "s-alice"
    assert all(d.opens == "" for d in sink.deliveries)


def test_subscribe_and_unsubscribe_with_req_are_acknowledged(
    chat: RoomState, sink: RecordingSink, log: LogWriter
) -> None:
    apply(
        chat,
        sink,
        log.subscribe("s-bob", "news", req=7),
        log.subscribe("s-bob", "files", kind="byte"),  # no req: no ack
        log.unsubscribe("s-bob", "news", req=0),
    )

    assert sink.to("s-bob") == [{"type": "ack", "req": 7}, {"type": "ack", "req": 0}]
    assert [(d.gateway, d.sessions) for d in sink.deliveries] == [("gw1", ("s-bob",))] * 2
    assert chat.members["s-bob"].topics == {"text": {"chat"}, "byte": {"files"}}


def test_acks_sum_the_sizes_of_headers_chunks_and_trailers(
    chat: RoomState, sink: RecordingSink, log: LogWriter
) -> None:
    entries = [
        log.header("s-carol", "st1", "chat"),
        log.chunk("s-carol", "st1", 0, "hello"),
        log.chunk("s-carol", "st1", 1, "wörld" * 50),
        log.header("s-carol", "st1", "chat"),  # refused (id in use), still acked
        log.trailer("s-carol", "st1"),
        log.chunk("s-carol", "gone", 0),  # unknown stream, still acked
    ]
    apply(chat, sink, *entries)

    assert sink.acked("s-carol") == sum(e.size for e in entries)
    assert {(gw, s) for gw, s, _ in sink.acks} == {("gw2", "s-carol")}
    assert all(n > 0 for _, _, n in sink.acks)
    assert len(sink.acks) == len(entries)


def test_subscriptions_joins_and_leaves_are_not_acked(
    room: RoomState, sink: RecordingSink, log: LogWriter
) -> None:
    apply(
        room,
        sink,
        log.join("s-alice", "alice"),
        log.subscribe("s-alice", "chat", req=1),
        log.leave("s-alice"),
    )

    assert sink.acks == []
    assert room.empty


def test_entries_from_unknown_sessions_are_ignored(
    chat: RoomState, sink: RecordingSink, log: LogWriter
) -> None:
    apply(chat, sink, log.header("s-alice", "st1", "chat"))
    sink.clear()
    before = (set(chat.members), set(chat.streams))

    apply(
        chat,
        sink,
        log.subscribe("s-ghost", "chat", req=3),
        log.header("s-ghost", "g1", "chat"),
        log.chunk("s-ghost", "st1", 0),
        log.trailer("s-ghost", "st1"),
        log.unsubscribe("s-ghost", "chat", req=4),
        log.leave("s-ghost"),
    )

    assert sink.deliveries == []
    assert sink.acks == []
    assert sink.closes == []
    assert (set(chat.members), set(chat.streams)) == before


# -- sequence gaps (router lagged) ----------------------------------------------------------


def test_seq_gap_aborts_the_senders_open_streams_with_lagged(
    chat: RoomState, sink: RecordingSink, log: LogWriter
) -> None:
    apply(
        chat,
        sink,
        log.header("s-alice", "st1", "chat"),
        log.chunk("s-alice", "st1", 0),
        log.header("s-bob", "bob1", "chat"),
    )
    sink.clear()

    log.skip("s-alice", 2)  # two of alice's entries were trimmed unread
    apply(chat, sink, log.header("s-alice", "st2", "chat"))

    aborts = [d for d in sink.deliveries if d.ends]
    assert sorted(d.sessions for d in aborts) == [("s-bob",), ("s-carol",)]
    for d in aborts:
        assert d.ends == "st1"
        assert d.frame["type"] == "trailer"
        assert d.frame["code"] == ErrorCode.LAGGED
        assert "2 entries" in d.frame["reason"]
    # (besides the error that fails data packets possibly lost, test_room_packet_acks.py)
    errors = [f for f in sink.to("s-alice") if f["type"] == "error" and not f["packets"]]
    assert len(errors) == 1
    assert errors[0]["code"] == ErrorCode.LAGGED
    assert errors[0]["stream_id"] == "st1"
    # bob's stream is not affected; the entry after the gap is applied
    assert set(chat.streams) == {"bob1", "st2"}
    assert [d.sessions for d in sink.deliveries if d.opens == "st2"] != []
    # and the sequence continues from the new number: no second abort
    sink.clear()
    apply(chat, sink, log.chunk("s-alice", "st2", 0))
    assert [d.type for d in sink.deliveries] == ["chunk", "chunk"]


def test_seq_gap_chunk_of_the_aborted_stream_is_dropped(
    chat: RoomState, sink: RecordingSink, log: LogWriter
) -> None:
    apply(chat, sink, log.header("s-alice", "st1", "chat"), log.chunk("s-alice", "st1", 0))
    sink.clear()

    log.skip("s-alice", 1)
    chunk = log.chunk("s-alice", "st1", 2)
    apply(chat, sink, chunk)

    assert sink.types_to("s-bob") == ["trailer"]
    assert sink.to("s-bob")[0]["code"] == "lagged"
    assert sink.acked("s-alice") == chunk.size


def test_no_seq_no_gap_check(chat: RoomState, sink: RecordingSink, log: LogWriter) -> None:
    apply(chat, sink, log.header("s-alice", "st1", "chat"))
    sink.clear()

    apply(chat, sink, LogEntry(kind="s", session="s-alice", seq=0, topic="x"))
    apply(chat, sink, log.chunk("s-alice", "st1", 0))

    assert all(d.type == "chunk" for d in sink.deliveries)


# -- duplicate identity, dead gateway ---------------------------------------------------------


def test_duplicate_identity_join_replaces_the_old_session(
    chat: RoomState, sink: RecordingSink, log: LogWriter
) -> None:
    apply(chat, sink, log.header("s-alice", "st1", "chat"))
    sink.clear()

    apply(chat, sink, log.join("s-alice2", "alice", "gw3"))

    assert len(sink.closes) == 1
    gw, sessions, goaway = sink.closes[0]
    assert (gw, sessions) == ("gw1", ["s-alice"])
    assert goaway["type"] == "goaway"
    assert goaway["code"] == ErrorCode.DUPLICATE_IDENTITY
    # the old session's stream ends abnormally, then others see alice leave and rejoin
    assert sink.types_to("s-bob") == ["trailer", "participant_left", "participant_joined"]
    assert sink.to("s-bob")[0]["code"] == ErrorCode.SENDER_LEFT
    assert sink.to("s-bob")[1]["identity"] == "alice"
    assert sink.to("s-bob")[2]["participant"]["identity"] == "alice"
    assert sink.to("s-alice") == []
    joined = sink.to("s-alice2")
    assert [f["type"] for f in joined] == ["joined"]
    assert sorted(p["identity"] for p in joined[0]["participants"]) == ["bob", "carol"]
    assert set(chat.members) == {"s-alice2", "s-bob", "s-carol"}
    assert chat.streams == {}

    # the old session's entries are now ignored
    sink.clear()
    apply(chat, sink, log.header("s-alice", "late", "chat"))
    assert sink.deliveries == []
    assert sink.acks == []


def test_drop_gateway_removes_its_members(
    chat: RoomState, sink: RecordingSink, log: LogWriter
) -> None:
    apply(
        chat,
        sink,
        log.join("s-dave", "dave", "gw2"),
        log.subscribe("s-alice", "chat"),
        log.header("s-carol", "fromcarol", "chat"),
        log.header("s-alice", "fromalice", "chat"),
    )
    sink.clear()

    gone = chat.drop_gateway("gw2", "gateway gw2 died", sink)

    assert sorted(gone) == ["s-carol", "s-dave"]
    assert set(chat.members) == {"s-alice", "s-bob"}
    # carol's stream ended abnormally at alice and bob
    aborts = [d for d in sink.deliveries if d.ends == "fromcarol"]
    assert [(d.gateway, set(d.sessions)) for d in aborts] == [("gw1", {"s-alice", "s-bob"})]
    assert aborts[0].frame["code"] == ErrorCode.SENDER_LEFT
    for s in ("s-alice", "s-bob"):
        left = [f["identity"] for f in sink.to(s) if f["type"] == "participant_left"]
        assert sorted(left) == ["carol", "dave"]
        assert all(
            f["reason"] == "gateway gw2 died" for f in sink.to(s) if f["type"] == "participant_left"
        )
    # alice's stream now only reaches bob
    assert chat.streams["fromalice"].recipients == {"s-bob"}
    assert chat.streams["fromalice"].targets == {"gw1": ["s-bob"]}


def test_drop_unknown_gateway_does_nothing(chat: RoomState, sink: RecordingSink) -> None:
    assert chat.drop_gateway("gw-unknown", "?", sink) == []
    assert sink.deliveries == []
    assert len(chat.members) == 3


def test_room_is_empty_after_everyone_left(
    chat: RoomState, sink: RecordingSink, log: LogWriter
) -> None:
    assert not chat.empty
    apply(chat, sink, log.leave("s-alice"), log.leave("s-bob"))
    chat.drop_gateway("gw2", "dead", sink)

    assert chat.empty
    assert chat.streams == {}


# -- presence and removal by the server API ---------------------------------------------------


def test_presence_is_reported_on_join_and_leave(
    room: RoomState, sink: RecordingSink, log: LogWriter
) -> None:
    join = log.join("s-alice", "alice", "gw1", name="Alice")
    apply(room, sink, join, log.leave("s-alice", "bye"))

    assert sink.presences == [
        ("demo", "s-alice", "alice", join.data, ""),
        ("demo", "s-alice", "alice", None, "bye"),
    ]


def test_presence_on_duplicate_identity_and_dropped_gateway(
    chat: RoomState, sink: RecordingSink, log: LogWriter
) -> None:
    rejoin = log.join("s-alice2", "alice", "gw3")
    apply(chat, sink, rejoin)
    chat.drop_gateway("gw2", "dead", sink)

    assert [(s, info is not None) for _, s, _, info, _ in sink.presences] == [
        ("s-alice", False),
        ("s-alice2", True),
        ("s-carol", False),
    ]
    assert sink.presences[1][3] == rejoin.data


def test_remove_entry_closes_every_session_of_the_identity(
    chat: RoomState, sink: RecordingSink, log: LogWriter
) -> None:
    apply(chat, sink, log.header("s-carol", "st1", "chat"))
    sink.clear()

    apply(chat, sink, log.remove("carol", "kicked"))

    assert "s-carol" not in chat.members
    assert len(sink.closes) == 1
    gw, sessions, goaway = sink.closes[0]
    assert (gw, sessions) == ("gw2", ["s-carol"])
    assert goaway["type"] == "goaway"
    assert goaway["code"] == "removed"
    assert goaway["reason"] == "kicked"
    assert sink.types_to("s-bob") == ["trailer", "participant_left"]
    assert sink.to("s-bob")[0]["code"] == ErrorCode.SENDER_LEFT
    assert sink.to("s-bob")[1] == {
        "type": "participant_left",
        "identity": "carol",
        "reason": "kicked",
    }
    assert [(s, info, r) for _, s, _, info, r in sink.presences] == [("s-carol", None, "kicked")]


def test_remove_without_reason_says_removed(
    chat: RoomState, sink: RecordingSink, log: LogWriter
) -> None:
    apply(chat, sink, log.remove("bob"))

    assert sink.closes[0][2]["reason"]
    assert sink.to("s-alice")[0]["reason"] == sink.closes[0][2]["reason"]


def test_remove_of_an_absent_identity_does_nothing(chat: RoomState, sink: RecordingSink) -> None:
    assert chat.remove("nobody", "why", sink) is False
    assert sink.deliveries == []
    assert sink.closes == []
    assert sink.presences == []
    assert chat.remove("bob", "why", sink) is True
    assert set(chat.members) == {"s-alice", "s-carol"}


# -- data packets -------------------------------------------------------------------------------


def test_data_packet_goes_to_every_other_member_who_can_subscribe(
    chat: RoomState, sink: RecordingSink, log: LogWriter
) -> None:
    apply(chat, sink, log.join("s-dave", "dave", "gw2", can_subscribe=False))
    sink.clear()
    packet = log.packet("s-alice", b"\x02bin")

    apply(chat, sink, packet)

    # no handler needed; the sender and members without can_subscribe get nothing
    assert sorted((d.gateway, d.sessions) for d in sink.deliveries) == [
        ("gw1", ("s-bob",)),
        ("gw2", ("s-carol",)),
    ]
    assert all(d.raw == b"\x02bin" and not d.opens and not d.ends for d in sink.deliveries)
    assert sink.acks == [("gw1", "s-alice", 4)]


def test_data_packet_to_destinations_reports_the_absent_ones(
    chat: RoomState, sink: RecordingSink, log: LogWriter
) -> None:
    packet = log.packet("s-alice", b"\x02x", destinations=("carol", "zed"))

    apply(chat, sink, packet)

    assert [d.sessions for d in sink.deliveries if d.raw == b"\x02x"] == [("s-carol",)]
    [error] = sink.to("s-alice")
    assert error["type"] == "error"
    assert error["code"] == "unknown_destination"
    assert "zed" in error["message"] and "carol" not in error["message"]


def test_acks_are_coalesced_to_a_quarter_of_the_senders_window(
    room: RoomState, sink: RecordingSink, log: LogWriter
) -> None:
    join = log.join("s-eve", "eve", "gw3")
    join.window = 4000  # acknowledge in steps of 1000 bytes
    apply(room, sink, join, log.header("s-eve", "st", "chat"))
    sink.clear()
    chunks = [log.chunk("s-eve", "st", i, "x" * 300) for i in range(10)]
    apply(room, sink, *chunks)
    total = sum(c.size for c in chunks)
    # fewer acks than entries, each at least a step, and what is left is less than a step
    assert 0 < len(sink.acks) < len(chunks)
    assert all(n >= 1000 for _, _, n in sink.acks)
    assert 0 <= total - sink.acked("s-eve") < 1000
    # no deadlock: a sender with a full window in flight always gets an ack as it drains
    assert total - sink.acked("s-eve") < join.window


def test_a_repeated_entry_is_dropped(chat: RoomState, sink: RecordingSink, log: LogWriter) -> None:
    header = log.header("s-carol", "st1", "chat")
    chunk = log.chunk("s-carol", "st1", 0, "once")
    apply(chat, sink, header, chunk)
    sink.clear()
    apply(chat, sink, chunk)  # the gateway's retried pipeline appended it twice
    assert sink.deliveries == []
    assert sink.acks == []
