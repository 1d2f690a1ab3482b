"""A participant with a valid token attacks the services (issue: one crafted frame killed a
gateway). Each test checks the attack fails with a clear error to the attacker, that the
services keep running, and that an honest pair is unaffected.

Attackers speak raw frames (:class:`RawClient`); honest participants are ``roomstreams.Room``s.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import time
import urllib.error
import urllib.request
import uuid
from typing import Any

import pytest
import redis.asyncio as aioredis
import websockets
from websockets.exceptions import ConnectionClosed, InvalidStatus

import roomstreams
import roomstreams.api
from roomstreams import AccessToken, VideoGrants
from roomstreams.protocol.keys import inbox_key, room_log_key

from .conftest import API_KEY, API_SECRET, System
from .helpers import Collector, RawClient, raw_connect_fixture

TOPIC = "chat"

raw_connect = raw_connect_fixture(RawClient)


def new_id(prefix: str = "s") -> str:
    return f"{prefix}-{uuid.uuid4().hex[:12]}"


def header(sid: str, topic: str = TOPIC, **extra: Any) -> dict[str, Any]:
    return {"type": "header", "stream_id": sid, "topic": topic, "timestamp": 1, **extra}


def gateway_id(s: System, i: int) -> str:
    with urllib.request.urlopen(f"http://127.0.0.1:{s.ports[i]}/healthz", timeout=2) as r:
        return str(json.loads(r.read())["gateway"])


def assert_services_alive(s: System) -> None:
    for p in [*s.gateways, *([s.router] if s.router else [])]:
        assert p.poll() is None, f"a service exited with {p.returncode}"
    for port in s.ports:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/healthz", timeout=2) as r:
            assert r.status == 200


async def honest_exchange(alice: roomstreams.Room, col: Collector, text: str = "") -> None:
    """Alice sends bob (whose handler is ``col``) a stream; it arrives whole."""
    text = text or f"honest {uuid.uuid4().hex} üñí€😀"
    info = await alice.local_participant.send_text(text, topic=TOPIC)
    rec = await col.wait_done(info.stream_id)
    assert rec.error is None and rec.text == text and rec.identity == "alice"


def token(room: str, identity: str, **grants: Any) -> str:
    g = VideoGrants(room=room, room_join=True, **grants)
    return AccessToken(API_KEY, API_SECRET).with_identity(identity).with_grants(g).to_jwt()


# ---- one meaning per frame ---------------------------------------------------------------


async def test_a_chunk_with_repeated_keys_reaches_receivers_as_one_canonical_chunk(
    system: System, raw_connect: Any
) -> None:
    """The frame that killed a gateway: a chunk whose JSON repeats ``type``. Receivers get
    the chunk the sending gateway validated, re-serialised, never the attacker's bytes."""
    bob = await raw_connect("bob", gateway=1)
    await bob.subscribe(TOPIC, req=1)
    eve = await raw_connect("eve", gateway=0)
    sid = new_id()
    await eve.send(header(sid))
    crafted = '{"type":"ack","type":"chunk","stream_id":"' + sid
    crafted += '","chunk_index":0,"content":"x"}'
    # bob has a registration pending while the crafted chunk reaches his gateway
    await bob.send({"type": "subscribe", "topic": "other", "req": 2})
    await eve.send(crafted)
    await bob.expect("header", stream_id=sid)
    raw = await asyncio.wait_for(bob.ws.recv(), 5)
    while json.loads(raw).get("type") == "ack":
        raw = await asyncio.wait_for(bob.ws.recv(), 5)
    assert raw == f'{{"type":"chunk","stream_id":"{sid}","chunk_index":0,"content":"x"}}'
    await eve.send({"type": "trailer", "stream_id": sid, "reason": "", "reason ": "x"})
    err = await eve.expect("error")  # an unknown field: refused, not forwarded
    assert err["code"] == "bad_frame"
    await eve.send({"type": "trailer", "stream_id": sid})
    f = await bob.expect("trailer", stream_id=sid)
    assert f.get("code", "") == ""
    assert_services_alive(system)
    # and bob's gateway still answers registrations
    await bob.subscribe("later", req=3)


async def test_an_ack_lookalike_in_content_changes_nothing(
    system: System, raw_connect: Any
) -> None:
    bob = await raw_connect("bob", gateway=1)
    await bob.subscribe(TOPIC, req=1)
    eve = await raw_connect("eve", gateway=0)
    sid = new_id()
    await eve.send(header(sid))
    await eve.send({"type": "chunk", "stream_id": sid, "chunk_index": 0, "content": '{"req":1}'})
    await bob.send({"type": "subscribe", "topic": "x", "req": 9})
    await eve.send({"type": "trailer", "stream_id": sid})
    f = await bob.expect("chunk", stream_id=sid)
    assert f["content"] == '{"req":1}'
    if not any(f.get("type") == "ack" and f.get("req") == 9 for f in bob.frames):
        await bob.expect("ack", req=9)
    assert_services_alive(system)


# ---- no single entry takes a service down ------------------------------------------------


async def test_poisoned_inbox_entries_are_skipped_and_nobody_else_is_affected(
    system: System, connect: Any, room_name: str
) -> None:
    col = Collector()
    bob = await connect("bob", gateway=1, handlers={TOPIC: col})
    alice = await connect("alice", gateway=0)
    r = aioredis.Redis.from_url(system.redis_url)
    try:
        inbox = inbox_key(gateway_id(system, 1))
        session = next(iter(bob.remote_participants)) if bob.remote_participants else "x"
        for fields in [
            {"d": b"no recipients"},
            {"to": "nobody", "d": b"{}", "ak": b"not a number"},
            {"to": session, "ak": b"1"},  # no frame
            {"k": "a", "d": b"not json"},
            {"k": "a", "d": b'{"s": "NaN"}'},
            {"k": "x", "d": b"{"},
            {"k": "r", "p": b"not a partition"},
            {"p": b"3", "e": b"x", "q": b"y", "to": "a", "d": b"z"},
            {"zz": b"\xff\xfe"},
        ]:
            await r.xadd(inbox, fields)  # type: ignore[arg-type]
    finally:
        await r.aclose()
    await honest_exchange(alice, col)
    assert_services_alive(system)


async def test_poisoned_room_log_entries_are_skipped_and_the_room_goes_on(
    system: System, connect: Any, room_name: str
) -> None:
    col = Collector()
    bob = await connect("bob", gateway=1, handlers={TOPIC: col})
    alice = await connect("alice", gateway=0)
    other_col = Collector()
    other = f"{room_name}-other"
    carol = await connect("carol", gateway=1, room=other, handlers={TOPIC: other_col})
    dave = await connect("dave", gateway=0, room=other)
    gw = gateway_id(system, 0)
    r = aioredis.Redis.from_url(system.redis_url)
    try:
        log = room_log_key(room_name, system.partitions)
        for fields in [
            {"k": "h", "s": "x"},  # no stream id
            {"k": "c", "s": "x", "q": "not a number", "sid": "a", "d": "b"},
            {"no kind": "at all"},
            {"k": "j", "s": "fake-1", "i": "mallory", "g": gw, "d": "not json"},
            {"k": "j", "s": "fake-2", "i": "mallory", "g": gw, "d": "{}", "pm": "[1]"},
            {"k": "p", "s": "fake-3", "d": b"\x02", "ds": "{not json"},
            {"k": "zz", "s": "fake-4"},
        ]:
            await r.xadd(log, fields)  # type: ignore[arg-type]
    finally:
        await r.aclose()
    await honest_exchange(alice, col)
    assert "mallory" not in bob.remote_participants
    await honest_exchange_in(dave, other_col)
    assert "dave" in carol.remote_participants
    assert_services_alive(system)


async def honest_exchange_in(sender: roomstreams.Room, col: Collector) -> None:
    text = f"other room {uuid.uuid4().hex}"
    info = await sender.local_participant.send_text(text, topic=TOPIC)
    rec = await col.wait_done(info.stream_id)
    assert rec.error is None and rec.text == text


async def test_json_nested_thousands_deep_is_bad_json(system: System, raw_connect: Any) -> None:
    eve = await raw_connect("eve", gateway=0)
    for frame in ["[" * 5000, '{"type":"chunk","content":' + "[" * 5000 + "]" * 5000 + "}"]:
        await eve.send(frame)
        f = await eve.expect("error")
        assert f["code"] in ("bad_json", "bad_frame"), f
        assert len(f["message"]) > 10
    await eve.subscribe(TOPIC, req=1)  # still connected and served
    assert_services_alive(system)


# ---- grants and claims at the door -------------------------------------------------------


def _refusal(url: str, tok: str) -> tuple[int, str]:
    try:
        urllib.request.urlopen(f"{url}/rtc?access_token={tok}", timeout=2)
    except urllib.error.HTTPError as exc:
        with exc:
            return exc.code, exc.read().decode()
    raise AssertionError("the gateway accepted the token")


@pytest.mark.parametrize(
    ("claims", "words"),
    [
        ({"sub": "eve\ud800"}, "not valid unicode"),
        ({"name": "\ud800"}, "not valid unicode"),
        ({"metadata": "\udfff"}, "not valid unicode"),
        ({"attributes": {"a": "\ud800"}}, "not valid unicode"),
        ({"video": {"room": "r\ud800", "roomJoin": True}}, "not valid unicode"),
        ({"video": {"room": ["x"], "roomJoin": True}}, "'room' must be a string"),
        ({"sub": "e" * 4096}, "'sub' of 4096 bytes exceeds 256"),
    ],
)
async def test_bad_claims_are_refused_at_the_upgrade(
    system: System, claims: dict[str, Any], words: str
) -> None:
    import jwt

    now = int(time.time())
    c: dict[str, Any] = {
        "iss": API_KEY,
        "sub": "eve",
        "nbf": now,
        "exp": now + 600,
        "video": {"room": "r", "roomJoin": True},
        **claims,
    }
    tok = jwt.encode(c, API_SECRET, algorithm="HS256")
    http = system.urls[0].replace("ws://", "http://")
    status, body = _refusal(http, tok)
    assert status == 401
    assert words in body.lower()
    assert_services_alive(system)


async def test_hidden_participant_is_not_announced_listed_or_named(
    system: System, connect: Any, room_name: str, rooms: list[roomstreams.Room]
) -> None:
    col = Collector()
    bob = await connect("bob", gateway=1, handlers={TOPIC: col})
    joined: list[str] = []
    bob.on("participant_connected", lambda p: joined.append(p.identity))
    packets: list[roomstreams.DataPacket] = []
    bob.on("data_received", packets.append)
    ghost = roomstreams.Room()
    rooms.append(ghost)
    await ghost.connect(system.urls[0], token(room_name, "ghost", hidden=True))
    assert "bob" in ghost.remote_participants  # a hidden participant sees the others
    alice = await connect("alice", gateway=0)
    await ghost.local_participant.publish_data(b"boo", topic="t")
    info = await ghost.local_participant.send_text("from nobody", topic=TOPIC)
    rec = await col.wait_done(info.stream_id)
    assert rec.text == "from nobody"
    assert rec.identity == ""  # identity blanked, as LiveKit does
    await honest_exchange(alice, col)  # after the packet in log order
    assert [p.payload for p in packets] == [b"boo"]
    assert packets[0].participant_identity == ""
    assert joined == ["alice"]
    assert "ghost" not in bob.remote_participants
    assert "ghost" not in alice.remote_participants
    async with roomstreams.api.RoomService(system.urls[0], API_KEY, API_SECRET) as api:
        listed = await api.list_participants(room_name)
    assert sorted(p.identity for p in listed) == ["alice", "bob"]
    left: list[str] = []
    bob.on("participant_disconnected", lambda p: left.append(p.identity))
    await ghost.disconnect()
    await alice.disconnect()
    await _until(lambda: left == ["alice"])


async def _until(pred: Any, timeout: float = 5.0) -> None:
    """Until ``pred()`` holds (events that arrive through the room's callbacks)."""
    deadline = time.monotonic() + timeout
    while not pred():
        assert time.monotonic() < deadline, "timed out"
        await asyncio.sleep(0.01)


async def test_duplicate_identity_and_removal_close_with_distinct_codes(
    system: System, room_name: str
) -> None:
    url = system.urls[0]
    first = await RawClient.connect(url, token(room_name, "alice"))
    second = await RawClient.connect(system.urls[1], token(room_name, "alice"))
    goaway = await first.expect("goaway")
    assert goaway["code"] == "duplicate_identity"
    assert "same identity" in goaway["reason"]
    with pytest.raises(ConnectionClosed) as exc:
        await first.recv()
    assert exc.value.rcvd is not None and exc.value.rcvd.code == 4010
    async with roomstreams.api.RoomService(url, API_KEY, API_SECRET) as api:
        await api.remove_participant(room_name, "alice")
    goaway = await second.expect("goaway")
    assert goaway["code"] == "removed"
    with pytest.raises(ConnectionClosed) as exc:
        await second.recv()
    assert exc.value.rcvd is not None and exc.value.rcvd.code == 4009


async def test_client_room_ends_for_good_when_replaced(system: System, room_name: str) -> None:
    first = roomstreams.Room()
    ended: list[str] = []
    first.on("disconnected", lambda *a: ended.append(str(a[0]) if a else ""))
    await first.connect(system.urls[0], token(room_name, "alice"))
    second = roomstreams.Room()
    await second.connect(system.urls[1], token(room_name, "alice"))
    try:
        await _until(lambda: len(ended) == 1)  # no reconnect: it would replace the other
        assert "alice" not in second.remote_participants
    finally:
        await first.disconnect()
        await second.disconnect()


# ---- identities and rooms cannot be crossed -----------------------------------------------

IMPERSONATION_FIELDS = ["sender", "identity", "participant_identity", "session", "code"]


@pytest.mark.parametrize("field", IMPERSONATION_FIELDS)
async def test_no_frame_field_lets_a_client_act_as_another(
    system: System, raw_connect: Any, connect: Any, field: str
) -> None:
    col = Collector()
    await connect("bob", gateway=1, handlers={TOPIC: col})
    eve = await raw_connect("eve", gateway=0)
    sid = new_id()
    frames: list[dict[str, Any]] = [
        header(sid, **{field: "bob"}),
        {"type": "subscribe", "topic": TOPIC, "req": 5, field: "bob"},
        {"type": "unsubscribe", "topic": TOPIC, "req": 6, field: "bob"},
    ]
    await eve.send(header(sid))
    frames += [
        {"type": "chunk", "stream_id": sid, "chunk_index": 0, "content": "x", field: "bob"},
        {"type": "trailer", "stream_id": sid, field: "bob"},
    ]
    for f in frames:
        await eve.send(f)
        err = await eve.expect("error")
        assert err["code"] == "bad_frame", err
    await eve.send({"type": "trailer", "stream_id": sid})
    rec = await col.wait_done(sid)
    assert rec.identity == "eve" and rec.text == ""


async def test_a_client_cannot_write_into_or_end_another_participants_stream(
    system: System, raw_connect: Any, connect: Any
) -> None:
    col = Collector()
    await connect("bob", gateway=1, handlers={TOPIC: col})
    alice = await raw_connect("alice", gateway=0)
    eve = await raw_connect("eve", gateway=1)
    sid = new_id()
    await alice.send(header(sid))
    await alice.send({"type": "chunk", "stream_id": sid, "chunk_index": 0, "content": "a"})
    await col.wait_count(1)
    await eve.send({"type": "chunk", "stream_id": sid, "chunk_index": 1, "content": "EVE"})
    assert (await eve.expect("error"))["code"] == "unknown_stream"
    await eve.send({"type": "trailer", "stream_id": sid, "reason": "eve ends it"})
    assert (await eve.expect("error"))["code"] == "unknown_stream"
    await eve.send(header(sid))  # the same id, to hijack it in the room
    assert (await eve.expect("error", stream_id=sid))["code"] == "stream_id_in_use"
    await alice.send({"type": "chunk", "stream_id": sid, "chunk_index": 1, "content": "b"})
    await alice.send({"type": "trailer", "stream_id": sid})
    rec = await col.wait_done(sid)
    assert rec.error is None and rec.text == "ab" and rec.identity == "alice"


@pytest.mark.parametrize(
    "suffix",
    ["{p1}", "}", "{", ":room:x", "*", "?", "[a-z]", "é漢字😀", "x" * 200, "a:members:b"],
)
async def test_room_names_with_key_syntax_stay_apart(
    system: System, rooms: list[roomstreams.Room], suffix: str
) -> None:
    base = f"r{uuid.uuid4().hex[:6]}"
    names = [base, base + suffix]
    cols = [Collector(), Collector()]
    senders = []
    for name, col in zip(names, cols, strict=True):
        bob, alice = roomstreams.Room(), roomstreams.Room()
        rooms += [bob, alice]
        bob.register_text_stream_handler(TOPIC, col)
        await bob.connect(system.urls[1], token(name, "bob"))
        await alice.connect(system.urls[0], token(name, "alice"))
        assert list(alice.remote_participants) == ["bob"]
        senders.append(alice)
    for i, alice in enumerate(senders):
        await honest_exchange(alice, cols[i], f"to room {i}")
    assert [len(c.streams) for c in cols] == [1, 1]


# ---- floods ------------------------------------------------------------------------------


async def test_a_flooder_is_throttled_told_and_closed_while_others_go_on(
    system_factory: Any,
) -> None:
    s = system_factory(ROOMSTREAMS_MAX_FRAMES_PER_SECOND="200", ROOMSTREAMS_FLOOD_CLOSE_AFTER="1.0")
    room = f"flood-{uuid.uuid4().hex[:8]}"
    col = Collector()
    bob = roomstreams.Room()
    bob.register_text_stream_handler(TOPIC, col)
    await bob.connect(s.urls[0], token(room, "bob"))
    alice = roomstreams.Room()
    await alice.connect(s.urls[0], token(room, "alice"))
    eve = await RawClient.connect(s.urls[0], token(room, "eve"))
    try:
        started = time.monotonic()

        async def flood() -> None:
            payload = b"\x02\x01\x00\x02{}x"  # a tiny data packet
            # the gateway closes it (4029); writing on, the flooder may see a reset first
            with pytest.raises((ConnectionClosed, ConnectionResetError)):
                while True:
                    await eve.ws.send(payload)

        flooding = asyncio.create_task(flood())
        err = await eve.expect("error", timeout=20)
        assert err["code"] == "rate_limited" and "frames/s" in err["message"]
        await honest_exchange(alice, col)
        await asyncio.wait_for(flooding, 30)
        assert time.monotonic() - started > 1.0  # throttled first, closed after
        with contextlib.suppress(ConnectionClosed, ConnectionResetError, TimeoutError):
            while True:
                await eve.recv(timeout=5)  # what is left until the close
        assert eve.ws.close_code in (4029, None)  # None: reset before the close frame
        if eve.ws.close_code is None:
            assert eve.ws.state.name == "CLOSED"
        await honest_exchange(alice, col)
        assert_services_alive(s)
    finally:
        await bob.disconnect()
        await alice.disconnect()


async def test_the_bench_flooder_ends_on_time_though_its_gateway_throttles_it(
    system_factory: Any,
) -> None:
    """``roomstreams bench``'s wflood runs its flooder as a process and waits for it: a
    throttled flooder's sends wait on a socket the gateway drains at a tenth of the rate,
    and the flood close comes ~50 s in, so a flooder that only looked at the clock between
    sends (and closed cleanly, behind its backlog) outlived the bench's wait and the
    workload failed. It stops at its deadline and drops the connection."""
    import subprocess
    import sys

    s = system_factory(gateways=1, ROOMSTREAMS_MAX_FRAMES_PER_SECOND="200")
    room = f"flooder-{uuid.uuid4().hex[:8]}"
    seconds = 3.0
    started = time.monotonic()
    done = await asyncio.to_thread(
        subprocess.run,
        [sys.executable, "-m", "roomstreams.bench.flooder", s.urls[0], token(room, "eve"),
         "tiny", str(seconds)],
        capture_output=True,
        timeout=30,
        check=True,
    )  # fmt: skip
    took = time.monotonic() - started
    report = json.loads(done.stdout)
    assert report["frames_sent"] > 200  # it flooded
    assert report["error_codes"].get("rate_limited", 0) >= 1  # and was told
    assert report["close_code"] is None  # not closed: it stopped on its own
    assert took < seconds + 5, took
    assert_services_alive(s)


async def test_a_throttled_flooder_gets_a_tenth_of_its_rate_through(
    system_factory: Any,
) -> None:
    """What a flooder costs everyone else is what gets through: after its burst, a tenth of
    the frame rate (ROOMSTREAMS_FLOOD_PENALTY), counted where it lands, at a receiver."""
    s = system_factory(gateways=1, ROOMSTREAMS_MAX_FRAMES_PER_SECOND="200")
    room = f"penalty-{uuid.uuid4().hex[:8]}"
    arrivals: list[float] = []
    until = [float("inf")]
    enough = asyncio.Event()

    def arrived(_pkt: Any) -> None:
        arrivals.append(time.monotonic())
        if arrivals[-1] >= until[0]:
            enough.set()

    bob = roomstreams.Room()
    bob.on("data_received", arrived)
    await bob.connect(s.urls[0], token(room, "bob"))
    eve = await RawClient.connect(s.urls[0], token(room, "eve"))
    try:

        async def flood() -> None:
            with contextlib.suppress(ConnectionClosed, ConnectionResetError):
                while True:
                    await eve.ws.send(b"\x02\x01\x00\x02{}x")  # a tiny data packet

        flooding = asyncio.create_task(flood())
        err = await eve.expect("error", timeout=20)
        assert err["code"] == "rate_limited" and "20 frames/s" in err["message"]
        told = time.monotonic()
        until[0] = told + 4.0
        await asyncio.wait_for(enough.wait(), 20)  # 4 s after the warning
        flooding.cancel()
        after = [t for t in arrivals if told + 1.0 <= t < told + 4.0]
        # 3 s at 20/s is 60 (at the full rate it would be 600); batches of a tick's worth
        assert 30 <= len(after) <= 100, len(after)
        assert len([t for t in arrivals if t < told + 0.5]) >= 150  # the burst went through
        assert_services_alive(s)
    finally:
        # megabytes of flood queued both ways: no closing handshake to wait for
        eve.ws.transport.abort()
        await bob.disconnect()


async def test_stream_and_registration_caps(system_factory: Any) -> None:
    s = system_factory(
        gateways=1, ROOMSTREAMS_MAX_OPEN_STREAMS="3", ROOMSTREAMS_MAX_SUBSCRIPTIONS="2"
    )
    room = f"caps-{uuid.uuid4().hex[:8]}"
    eve = await RawClient.connect(s.urls[0], token(room, "eve"))
    for i in range(3):
        await eve.send(header(f"s{i}"))
    await eve.send(header("s3"))
    err = await eve.expect("error", stream_id="s3")
    assert err["code"] == "too_many_streams"
    await eve.subscribe("a", req=1)
    await eve.subscribe("b", req=2)
    await eve.send({"type": "subscribe", "topic": "c", "req": 3})
    err = await eve.expect("error", req=3)
    assert err["code"] == "too_many_requests"
    await eve.subscribe("a", req=4)  # the same handler again is no new one
    await eve.close()


async def test_connections_per_identity_are_capped(system_factory: Any) -> None:
    s = system_factory(gateways=1, ROOMSTREAMS_MAX_CONNECTIONS_PER_IDENTITY="1")
    room = f"cap-{uuid.uuid4().hex[:8]}"
    first = await RawClient.connect(s.urls[0], token(room, "alice"))
    with pytest.raises(InvalidStatus) as exc:
        await websockets.connect(f"{s.urls[0]}/rtc?access_token={token(room, 'alice')}")
    assert exc.value.response.status_code == 429
    assert b"connections of this identity" in exc.value.response.body
    other = await RawClient.connect(s.urls[0], token(room, "bob"))  # another identity: fine
    await first.close()
    await other.close()
