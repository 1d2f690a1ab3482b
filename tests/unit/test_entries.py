"""Room-log entries: ``encode_log_entry`` and ``LogEntry.from_fields`` are inverses."""

from __future__ import annotations

import pytest

from roomstreams.protocol.entries import EntryKind, LogEntry, encode_log_entry


def as_redis_returns(fields: dict[bytes | str, bytes | str | int]) -> dict[bytes, bytes]:
    """What XREAD gives back for an XADD of ``fields`` (redis-py, decode_responses=False)."""

    def b(v: bytes | str | int) -> bytes:
        if isinstance(v, bytes):
            return v
        if isinstance(v, bool):  # redis-py refuses bools: encode_log_entry must not use them
            raise TypeError(f"bool field value {v!r}")
        if isinstance(v, int):
            return str(v).encode()
        return v.encode("utf-8")

    return {b(k): b(v) for k, v in fields.items()}


ENTRIES = [
    LogEntry(
        kind="j",
        session="sess-1",
        seq=1,
        identity="zoë",
        gateway="gw-a",
        can_subscribe=True,
        data=b'{"identity":"zo\xc3\xab","name":"Zo\xc3\xab"}',
        permissions=b'{"can_publish_data":false,"can_subscribe":true}',
    ),
    LogEntry(
        kind="j", session="sess-2", seq=1, identity="bob", gateway="gw-b", can_subscribe=False
    ),
    LogEntry(kind="l", session="sess-1", seq=9, reason="client closed: bye 👋"),
    LogEntry(kind="l", session="sess-1", seq=9),
    LogEntry(kind="r", session="api", identity="zoë", reason="kicked by the moderator"),
    LogEntry(kind="r", session="api", identity="bob"),
    LogEntry(kind="s", session="sess-1", seq=2, topic="chat", stream_kind="text", req=5),
    LogEntry(kind="s", session="sess-1", seq=2, topic="files", stream_kind="byte", req=0),
    LogEntry(kind="s", session="sess-1", seq=2, topic="chat"),
    LogEntry(kind="u", session="sess-1", seq=3, topic="chat", stream_kind="byte", req=12),
    LogEntry(kind="u", session="sess-1", seq=3, topic="chat"),
    LogEntry(
        kind="h",
        session="sess-1",
        seq=4,
        stream_id="st-1",
        topic="chat",
        stream_kind="text",
        destinations=("bob", "zoë"),
        data=b'{"type":"header"}',
        size=17,
    ),
    LogEntry(
        kind="h",
        session="sess-1",
        seq=4,
        stream_id="st-2",
        topic="files",
        stream_kind="byte",
        data=b"{}",
        size=2,
    ),
    LogEntry(
        kind="c",
        session="sess-1",
        seq=5,
        stream_id="st-1",
        data='{"type":"chunk","content":"ü"}'.encode(),
        size=31,
    ),
    LogEntry(kind="t", session="sess-1", seq=6, stream_id="st-1", data=b"{}", size=0),
    LogEntry(
        kind="p",
        session="sess-1",
        seq=7,
        topic="cursor",
        destinations=("bob",),
        data=bytes(range(256)),  # binary frames survive as they are
        size=256,
    ),
    LogEntry(kind="p", session="sess-1", seq=8, topic="", data=b"\x02\x00", size=2),
    # re-announced to a router that took the partition over
    LogEntry(
        kind="j",
        session="sess-1",
        seq=10,
        identity="zoë",
        gateway="gw-a",
        resync=True,
        window=65536,
    ),
    LogEntry(
        kind="j",
        session="sess-3",
        seq=4,
        identity="carol",
        gateway="gw-b",
        resync=True,
        announced=False,
    ),
    LogEntry(kind="s", session="sess-1", seq=11, topic="chat", resync=True),
    LogEntry(kind="rd", session="", gateway="gw-a", epoch="3"),
    LogEntry(kind="rd", session="", gateway="gw-a", epoch="3", data=b'["lobby", "zo\xc3\xab"]'),
    # participant updates: from a participant's gateway (with a request id), and from the
    # server API (session "api", none)
    LogEntry(
        kind="m", session="sess-1", seq=12, identity="zoë", data=b'{"name":"Z"}', size=12, req=3
    ),
    LogEntry(kind="m", session="api", identity="bob", data=b'{"attributes":{"a":""}}'),
    LogEntry(kind="dc", session="", gateway="gw-a", stream_id="st-1", data=b"sess-2 sess-3"),
    # session resume: a suspended member, a move (and a resumable join)
    LogEntry(kind="sp", session="sess-1", seq=14, reason="gateway shutting down"),
    LogEntry(
        kind="mv",
        session="gw-b.7",
        seq=1,
        identity="alice",
        gateway="gw-b",
        data=b"gw-a.3",
        window=65536,
    ),
    LogEntry(kind="j", session="sess-4", seq=1, identity="dan", gateway="gw-a", resumable=True),
    LogEntry(
        kind="rp",
        session="sess-1",
        seq=13,
        identity="bob",
        stream_id="req-1",
        topic="request",
        data=b'{"type":"rpc_request"}',
        size=22,
    ),
]


@pytest.mark.parametrize("entry", ENTRIES, ids=lambda e: e.kind)
def test_round_trip(entry: LogEntry) -> None:
    fields = encode_log_entry(entry)
    assert LogEntry.from_fields(as_redis_returns(fields)) == entry


def test_every_kind_is_covered() -> None:
    kinds = {v for k, v in vars(EntryKind).items() if not k.startswith("_")}
    assert {"j", "l", "s", "u", "h", "c", "t"} <= kinds
    assert {e.kind for e in ENTRIES} == kinds, "a kind of entry without a round-trip case"


def test_encoded_field_names_are_short() -> None:
    [entry] = [e for e in ENTRIES if e.kind == "h" and e.destinations]
    fields = encode_log_entry(entry)
    assert fields["k"] == "h"
    assert fields["s"] == "sess-1"
    assert fields["q"] == 4
    assert set(fields) == {"k", "s", "q", "sid", "d", "n", "tp", "kd", "ds"}


def test_missing_optional_fields_take_defaults() -> None:
    e = LogEntry.from_fields({b"k": b"s", b"s": b"x", b"tp": b"chat"})
    assert (e.seq, e.stream_kind, e.req) == (0, "text", None)
    j = LogEntry.from_fields({b"k": b"j", b"s": b"x", b"i": b"id", b"g": b"gw"})
    assert (j.can_subscribe, j.data, j.permissions) == (True, b"{}", b"{}")
