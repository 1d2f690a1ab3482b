"""Bad input from a participant, end to end: the gateway answers an ``error`` frame with the
right code (and ``stream_id`` / ``req`` when the frame names one), the offending connection
stays usable, and the other participants are unaffected; a stream the fault killed ends
abnormally at its receivers instead of hanging.

The offender is a :class:`RawClient` ("alice", gateway 0) speaking raw frames; the bystander
is a real ``roomstreams.Room`` ("bob", gateway 1) with a :class:`Collector` on ``chat``."""

from __future__ import annotations

import asyncio
import contextlib
import json
import time
import urllib.request
import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

import pytest
from websockets.exceptions import ConnectionClosed

import roomstreams
from roomstreams.protocol.limits import (
    MAX_CHUNK_BYTES,
    MAX_FRAME_BYTES,
    MAX_HEADER_BYTES,
    MAX_TOPIC_BYTES,
)

from .helpers import Collector, RawClient, raw_connect_fixture

TOPIC = "chat"
WS_MAX_SIZE = 1 << 20  # the gateway's websockets ``max_size``


# ---- frames --------------------------------------------------------------------------------


def new_id(prefix: str = "s") -> str:
    return f"{prefix}-{uuid.uuid4().hex[:12]}"


def header(sid: str, topic: str = TOPIC, **extra: Any) -> dict[str, Any]:
    return {
        "type": "header",
        "stream_id": sid,
        "topic": topic,
        "timestamp": int(time.time() * 1000),
        **extra,
    }


def chunk(sid: str, index: int, content: str) -> dict[str, Any]:
    return {"type": "chunk", "stream_id": sid, "chunk_index": index, "content": content}


def trailer(sid: str, reason: str = "") -> dict[str, Any]:
    return {"type": "trailer", "stream_id": sid, "reason": reason}


# ---- the scene: an offender, a bystander ---------------------------------------------------


@dataclass
class Scene:
    sender: RawClient  # "alice", gateway 0: sends the bad frames
    receiver: roomstreams.Room  # "bob", gateway 1: must be unaffected
    col: Collector  # bob's handler on TOPIC
    room_errors: list[BaseException] = field(default_factory=list)
    identity: str = "alice"


raw_connect = raw_connect_fixture(RawClient)


@pytest.fixture
def scene(connect: Any, raw_connect: Any) -> Callable[..., Awaitable[Scene]]:
    async def _scene(**grants: bool) -> Scene:
        col = Collector()
        bob = await connect("bob", gateway=1, handlers={TOPIC: col})
        s = Scene(sender=await raw_connect("alice", gateway=0, **grants), receiver=bob, col=col)
        bob.on("error", s.room_errors.append)
        if grants.get("can_subscribe", True):
            await s.sender.subscribe(TOPIC, req=1)
        return s

    return _scene


# ---- waiting -------------------------------------------------------------------------------


async def expect_error(c: RawClient, code: str, *words: str) -> dict[str, Any]:
    """The next ``error`` frame: it has ``code`` and a message naming each of ``words``."""
    f = await c.expect("error")
    assert f["code"] == code, f
    assert isinstance(f["message"], str) and len(f["message"]) >= 10, f
    for w in words:
        assert w.lower() in f["message"].lower(), (w, f)
    return f


def errors_of(c: RawClient) -> list[str]:
    return [f["code"] for f in c.frames if f.get("type") == "error"]


async def wait_closed(c: RawClient, sid: str, timeout: float = 5.0) -> None:
    """The router routed ``sid``'s trailer; fail fast if the stream was refused instead."""
    async with asyncio.timeout(timeout):
        while True:
            f = await c.recv(timeout)
            if f.get("stream_id") != sid:
                continue
            if f["type"] == "closed":
                return
            if f["type"] == "error":
                pytest.fail(f"a valid stream was refused: {f}")


async def send_stream(c: RawClient, sid: str, parts: list[str], topic: str = TOPIC) -> None:
    await c.send(header(sid, topic))
    for i, p in enumerate(parts):
        await c.send(chunk(sid, i, p))
    await c.send(trailer(sid))
    await wait_closed(c, sid)


async def read_stream(c: RawClient, sid: str, timeout: float = 5.0) -> tuple[str, str, str]:
    """(sender, text, trailer code) of the stream ``sid`` as a raw receiver sees it."""
    async with asyncio.timeout(timeout):
        h = await c.expect("header", stream_id=sid)
        text: list[str] = []
        while True:
            f = await c.recv(timeout)
            if f.get("stream_id") != sid:
                continue
            if f["type"] == "chunk":
                text.append(f["content"])
            elif f["type"] == "trailer":
                return h["sender"], "".join(text), f.get("code", "")


async def assert_still_usable(s: Scene, *, seen_before: list[str], can_send: bool = True) -> None:
    """The offender's connection still sends and receives; the bystander saw exactly the
    streams ``seen_before`` (plus the new one) and no error."""
    ids = list(seen_before)
    if can_send:
        sid = new_id("ok")
        parts = ["still ", "usable ", "ü€😀"]
        await send_stream(s.sender, sid, parts)
        rec = await s.col.wait_done(sid)
        assert rec.identity == s.identity
        assert rec.error is None
        assert rec.text == "".join(parts)
        ids.append(sid)
    info = await s.receiver.local_participant.send_text("and back", topic=TOPIC)
    assert await read_stream(s.sender, info.stream_id) == ("bob", "and back", "")
    # the bystander: still connected, nothing odd delivered, no error
    assert s.receiver.isconnected()
    assert s.identity in s.receiver.remote_participants
    assert s.room_errors == []
    assert [r.info.stream_id for r in s.col.streams] == ids


async def open_stream(s: Scene, first_chunk: str) -> str:
    """Open a stream with one chunk, and wait until bob's handler has it."""
    sid = new_id("open")
    await s.sender.send(header(sid))
    await s.sender.send(chunk(sid, 0, first_chunk))
    n = len(s.col.streams)
    await s.col.wait_count(n + 1)
    assert s.col.streams[-1].info.stream_id == sid
    return sid


def assert_aborted(rec: Any, code: str, sent: str) -> None:
    """``rec`` ended abnormally with ``code`` after reading a prefix of ``sent`` (a reader
    drops chunks it had not yet yielded when the abnormal end arrives)."""
    assert isinstance(rec.error, roomstreams.StreamAborted), rec.error
    assert rec.error.code == code
    assert sent.startswith(rec.text), (rec.text, sent)


# ---- malformed frames ----------------------------------------------------------------------


async def test_invalid_json(scene: Any) -> None:
    s = await scene()
    sid = await open_stream(s, "before ")
    bad = ["{not json", '{"type": "chunk", "stream_id": ', "", "}{", '{"type":"subscribe",}']
    for raw in bad:
        await s.sender.send(raw)
        await expect_error(s.sender, "bad_json", "JSON")
    # garbage that names no stream leaves the open stream intact
    await s.sender.send(chunk(sid, 1, "after"))
    await s.sender.send(trailer(sid))
    await wait_closed(s.sender, sid)
    rec = await s.col.wait_done(sid)
    assert rec.error is None and rec.text == "before after"
    await assert_still_usable(s, seen_before=[sid])
    assert errors_of(s.sender) == ["bad_json"] * len(bad)


async def test_invalid_escape_is_bad_json_not_bad_utf8(scene: Any) -> None:
    """``\\q`` is a JSON syntax error; nothing about it is UTF-8."""
    s = await scene()
    await s.sender.send('{"type": "subscribe", "topic": "a\\qb"}')
    await expect_error(s.sender, "bad_json", "JSON")
    await assert_still_usable(s, seen_before=[])


async def test_binary_frame_not_utf8(scene: Any) -> None:
    s = await scene()
    await s.sender.send(b"\xff\xfe\x00\x80 not text at all")
    f = await expect_error(s.sender, "bad_encoding", "UTF-8")
    assert f.get("stream_id") is None
    await assert_still_usable(s, seen_before=[])
    assert errors_of(s.sender) == ["bad_encoding"]


async def test_binary_chunk_with_invalid_utf8_content(scene: Any) -> None:
    s = await scene()
    sid = await open_stream(s, "fine ")
    raw = json.dumps(chunk(sid, 1, "BROKEN")).encode().replace(b"BROKEN", b"bad \xc3\x28 \xff")
    await s.sender.send(raw)  # bytes: a binary WebSocket frame
    err = await expect_error(s.sender, "bad_utf8", "UTF-8")
    await assert_still_usable(s, seen_before=[sid])
    # the fault is in a chunk of an open stream: it names the stream and ends it abnormally
    assert err.get("stream_id") == sid, err
    assert_aborted(await s.col.wait_done(sid), "bad_utf8", "fine ")


async def test_lone_surrogate_in_chunk_content(scene: Any) -> None:
    s = await scene()
    sid = new_id("sur")
    await s.sender.send(header(sid))
    # a valid surrogate pair escape is fine: json.dumps writes "\ud83d\ude00"
    await s.sender.send(json.dumps(chunk(sid, 0, "😀 ")))
    rec = (await s.col.wait_count(1))[0]
    lone = json.dumps(chunk(sid, 1, "x@")).replace("@", "\\ud800")
    assert lone.endswith('"x\\ud800"}')
    await s.sender.send(lone)
    err = await expect_error(s.sender, "bad_utf8")
    await assert_still_usable(s, seen_before=[sid])
    assert rec.chunks[:1] == ["😀 "]
    assert err.get("stream_id") == sid, err
    assert_aborted(await s.col.wait_done(sid), "bad_utf8", "😀 ")


async def test_unknown_frame_type(scene: Any) -> None:
    s = await scene()
    frames: list[dict[str, Any]] = [
        {"type": "ping"},
        {"type": "HEADER", "stream_id": "x", "topic": TOPIC, "timestamp": 1},
        # server-to-client frames are not client frames
        {"type": "closed", "stream_id": "x"},
        {"type": "error", "code": "bad_json", "message": "forged"},
        {"type": "joined", "room": "r", "session": "s"},
    ]
    for f in frames:
        await s.sender.send(f)
        await expect_error(s.sender, "bad_frame", f["type"])
    await assert_still_usable(s, seen_before=[])
    assert errors_of(s.sender) == ["bad_frame"] * len(frames)


async def test_missing_type(scene: Any) -> None:
    s = await scene()
    await s.sender.send({"stream_id": "x", "chunk_index": 0, "content": "hi"})
    await expect_error(s.sender, "bad_frame", "type")
    for not_an_object in ("[]", "42", "null", '"chunk"'):
        await s.sender.send(not_an_object)
        await expect_error(s.sender, "bad_frame")
    await assert_still_usable(s, seen_before=[])
    assert errors_of(s.sender) == ["bad_frame"] * 5


async def test_wrong_field_types(scene: Any) -> None:
    s = await scene()
    sid = new_id()
    cases: list[tuple[dict[str, Any], str]] = [
        ({**chunk(sid, 0, "x"), "chunk_index": "zero"}, "chunk_index"),
        ({**chunk(sid, 0, "x"), "chunk_index": -1}, "chunk_index"),
        ({**chunk(sid, 0, "x"), "chunk_index": 1.5}, "chunk_index"),
        ({**chunk(sid, 0, "x"), "content": 42}, "content"),
        ({**chunk(sid, 0, "x"), "stream_id": 7}, "stream_id"),
        ({**header(sid), "timestamp": "yesterday"}, "timestamp"),
        ({**header(sid), "attributes": ["a", "b"]}, "attributes"),
        ({**header(sid), "attributes": {"n": 1}}, "attributes"),
        ({**header(sid), "topic": None}, "topic"),
        ({**header(sid), "total_length": -5}, "total_length"),
        ({**header(sid), "kind": "video"}, "kind"),
        ({**trailer(sid), "reason": ["no"]}, "reason"),
        ({"type": "subscribe", "topic": TOPIC, "req": "one"}, "req"),
    ]
    for frame, name in cases:
        await s.sender.send(frame)
        await expect_error(s.sender, "bad_frame", name)
    # none of these opened the stream
    await s.sender.send(chunk(sid, 0, "x"))
    await expect_error(s.sender, "unknown_stream", sid)
    await assert_still_usable(s, seen_before=[])
    assert errors_of(s.sender) == ["bad_frame"] * len(cases) + ["unknown_stream"]


async def test_chunks_reach_receivers_schema_conformant(scene: Any, raw_connect: Any) -> None:
    """A chunk is forwarded as the client's bytes: whatever the gateway lets through must be
    a conforming frame (``chunk_index`` an integer), or receivers get a frame out of spec."""
    s = await scene()
    carol = await raw_connect("carol", gateway=1)
    await carol.subscribe(TOPIC)
    sid = new_id("lax")
    await s.sender.send(header(sid))
    await s.sender.send({**chunk(sid, 0, "x"), "chunk_index": "0"})
    await s.sender.send(trailer(sid))
    async with asyncio.timeout(5):
        await carol.expect("trailer", stream_id=sid)
    for f in carol.frames:
        if f.get("type") == "chunk" and f.get("stream_id") == sid:
            assert type(f["chunk_index"]) is int, f"delivered out of spec: {f}"


# ---- sizes ---------------------------------------------------------------------------------


async def test_frame_too_large(scene: Any) -> None:
    s = await scene()
    big = {"type": "subscribe", "topic": "x" * MAX_FRAME_BYTES}
    await s.sender.send(big)
    f = await expect_error(s.sender, "frame_too_large", str(MAX_FRAME_BYTES))
    assert f.get("stream_id") is None
    # the worst legitimate chunk (15000 bytes that JSON escapes 6x) is under the limit
    sid = new_id("worst")
    text = "\x01" * MAX_CHUNK_BYTES
    frame = json.dumps(chunk(sid, 0, text))
    assert len(frame) < MAX_FRAME_BYTES
    await s.sender.send(header(sid))
    await s.sender.send(frame)
    await s.sender.send(trailer(sid))
    await wait_closed(s.sender, sid)
    assert (await s.col.wait_done(sid)).text == text
    await assert_still_usable(s, seen_before=[sid])
    assert errors_of(s.sender) == ["frame_too_large"]


async def test_header_too_large(scene: Any) -> None:
    s = await scene()
    sid = new_id("big")
    h = header(sid, attributes={"blob": "x" * (MAX_HEADER_BYTES + 1)})
    assert len(json.dumps(h)) < MAX_FRAME_BYTES  # it is the header limit that applies
    await s.sender.send(h)
    f = await expect_error(s.sender, "header_too_large", str(MAX_HEADER_BYTES))
    assert f["stream_id"] == sid
    # the stream was never opened
    await s.sender.send(chunk(sid, 0, "x"))
    await expect_error(s.sender, "unknown_stream", sid)
    await assert_still_usable(s, seen_before=[])
    assert errors_of(s.sender) == ["header_too_large", "unknown_stream"]


async def test_chunk_too_large(scene: Any) -> None:
    s = await scene()
    sid = new_id("big")
    exact = "€" * (MAX_CHUNK_BYTES // 3)  # exactly 15000 bytes: allowed
    over = "€" * (MAX_CHUNK_BYTES // 3 + 1)  # 15003 bytes in 5001 characters: bytes count
    await s.sender.send(header(sid))
    await s.sender.send(chunk(sid, 0, exact))
    await s.sender.send(chunk(sid, 1, over))
    f = await expect_error(s.sender, "chunk_too_large", str(MAX_CHUNK_BYTES), "15003")
    assert f["stream_id"] == sid
    assert_aborted(await s.col.wait_done(sid), "chunk_too_large", exact)
    # the stream is gone at the gateway too
    await s.sender.send(chunk(sid, 2, "x"))
    await expect_error(s.sender, "unknown_stream", sid)
    await assert_still_usable(s, seen_before=[sid])
    assert errors_of(s.sender) == ["chunk_too_large", "unknown_stream"]


# ---- topics --------------------------------------------------------------------------------

# (the empty topic is LiveKit's default: allowed, see test_livekit_streams.py)
BAD_TOPICS = ["t" * (MAX_TOPIC_BYTES + 1), "é" * (MAX_TOPIC_BYTES // 2 + 1)]


async def test_bad_topic_on_header(scene: Any) -> None:
    s = await scene()
    errs: list[tuple[str, dict[str, Any]]] = []
    for topic in BAD_TOPICS:
        sid = new_id("topic")
        await s.sender.send(header(sid, topic=topic))
        errs.append((sid, await expect_error(s.sender, "bad_topic", "topic")))
    # a topic of exactly MAX_TOPIC_BYTES is fine
    longest = "t" * MAX_TOPIC_BYTES
    col2 = Collector()
    await s.receiver.register_text_stream_handler(longest, col2)
    sid = new_id("longest")
    await send_stream(s.sender, sid, ["ok"], topic=longest)
    assert (await col2.wait_done(sid)).text == "ok"
    await assert_still_usable(s, seen_before=[])
    assert errors_of(s.sender) == ["bad_topic"] * len(BAD_TOPICS)
    # a refused header names its stream, like every other header refusal
    for sid, err in errs:
        assert err.get("stream_id") == sid, err


async def test_bad_topic_on_subscribe(scene: Any) -> None:
    s = await scene()
    errs: list[tuple[int, dict[str, Any]]] = []
    for i, topic in enumerate(BAD_TOPICS):
        for what in ("subscribe", "unsubscribe"):
            req = 100 + 2 * i + (what == "unsubscribe")
            await s.sender.send({"type": what, "topic": topic, "req": req})
            errs.append((req, await expect_error(s.sender, "bad_topic", "topic")))
    await assert_still_usable(s, seen_before=[])
    assert errors_of(s.sender) == ["bad_topic"] * len(BAD_TOPICS) * 2
    # no ack came for the refused requests ...
    assert not any(f.get("type") == "ack" and f.get("req", 0) >= 100 for f in s.sender.frames)
    # ... so the error must carry the request id, or the requester can never match it
    for req, err in errs:
        assert err.get("req") == req, err


async def test_sdk_handler_with_bad_topic_fails_instead_of_hanging(connect: Any) -> None:
    bob = await connect("bob")

    async def handler(reader: roomstreams.TextStreamReader, identity: str) -> None:
        pass

    try:
        async with asyncio.timeout(5):
            with pytest.raises(roomstreams.ServerError) as exc_info:
                await bob.register_text_stream_handler("t" * (MAX_TOPIC_BYTES + 1), handler)
    except TimeoutError:
        pytest.fail("register_text_stream_handler never completed: the refusal was not matched")
    assert exc_info.value.code == "bad_topic"


# ---- stream bookkeeping --------------------------------------------------------------------


async def test_unknown_stream(scene: Any) -> None:
    s = await scene()
    sid = new_id("ghost")
    await s.sender.send(chunk(sid, 0, "boo"))
    f = await expect_error(s.sender, "unknown_stream", sid)
    assert f["stream_id"] == sid
    await s.sender.send(trailer(sid))
    f = await expect_error(s.sender, "unknown_stream", sid)
    assert f["stream_id"] == sid
    await assert_still_usable(s, seen_before=[])
    assert errors_of(s.sender) == ["unknown_stream"] * 2


async def test_chunk_index_gap(scene: Any) -> None:
    s = await scene()
    sid = await open_stream(s, "a")
    await s.sender.send(chunk(sid, 2, "c"))
    f = await expect_error(s.sender, "chunk_out_of_order", "2", "expected 1")
    assert f["stream_id"] == sid
    assert_aborted(await s.col.wait_done(sid), "chunk_out_of_order", "a")
    # the stream is gone: the missing chunk can no longer be sent
    await s.sender.send(chunk(sid, 1, "b"))
    await expect_error(s.sender, "unknown_stream", sid)
    await assert_still_usable(s, seen_before=[sid])
    assert errors_of(s.sender) == ["chunk_out_of_order", "unknown_stream"]


async def test_chunk_index_repeat(scene: Any) -> None:
    s = await scene()
    sid = await open_stream(s, "a")
    await s.sender.send(chunk(sid, 1, "b"))
    await s.sender.send(chunk(sid, 1, "b"))
    f = await expect_error(s.sender, "chunk_out_of_order", "1", "repeats")
    assert f["stream_id"] == sid
    assert_aborted(await s.col.wait_done(sid), "chunk_out_of_order", "ab")
    await s.sender.send(trailer(sid))
    await expect_error(s.sender, "unknown_stream", sid)
    await assert_still_usable(s, seen_before=[sid])
    assert errors_of(s.sender) == ["chunk_out_of_order", "unknown_stream"]


async def test_stream_id_reused_after_close(scene: Any) -> None:
    s = await scene()
    sid = new_id("once")
    await send_stream(s.sender, sid, ["first"])
    assert (await s.col.wait_done(sid)).text == "first"
    await s.sender.send(header(sid))
    f = await expect_error(s.sender, "stream_id_in_use", sid)
    assert f["stream_id"] == sid
    # the refused header opened nothing
    await s.sender.send(chunk(sid, 0, "second"))
    await expect_error(s.sender, "unknown_stream", sid)
    await assert_still_usable(s, seen_before=[sid])
    assert errors_of(s.sender) == ["stream_id_in_use", "unknown_stream"]


async def test_stream_id_in_use_by_another_participant(scene: Any, connect: Any) -> None:
    """Router-level check: another sender's open stream id is refused, and nothing the
    second sender sends under that id reaches the first stream's receivers."""
    s = await scene()
    carol = await connect("carol", gateway=1)
    sid = new_id("shared")
    w = await carol.local_participant.stream_text(topic=TOPIC, stream_id=sid)
    await w.write("carol: ")
    rec = (await s.col.wait_count(1))[0]
    assert rec.info.stream_id == sid and rec.identity == "carol"
    await s.sender.send(header(sid))
    f = await expect_error(s.sender, "stream_id_in_use", sid)
    assert f["stream_id"] == sid
    # try to hijack it anyway; a subscribe ack proves the router has seen all of it
    await s.sender.send(chunk(sid, 0, "EVIL"))
    await s.sender.send(chunk(sid, 1, "EVIL"))
    await s.sender.send(trailer(sid, reason="hijacked"))
    await s.sender.subscribe("barrier", req=99)
    await w.write("mine")
    await w.close()
    rec = await s.col.wait_done(sid)
    assert rec.error is None
    assert rec.text == "carol: mine"
    assert rec.identity == "carol"
    await assert_still_usable(s, seen_before=[sid])
    assert errors_of(s.sender) == ["stream_id_in_use"]


# ---- identity and permissions --------------------------------------------------------------


async def test_forged_sender_is_refused(scene: Any, raw_connect: Any) -> None:
    s = await scene()
    carol = await raw_connect("carol", gateway=1)
    await carol.subscribe(TOPIC)
    forged = new_id("forged")
    await s.sender.send(header(forged, sender="bob"))
    f = await expect_error(s.sender, "bad_frame", "sender")
    # nor can a chunk or trailer carry one
    sid = await open_stream(s, "real ")
    await s.sender.send({**chunk(sid, 1, "x"), "sender": "bob"})
    await expect_error(s.sender, "bad_frame", "sender")
    await s.sender.send({**trailer(sid), "sender": "bob"})
    await expect_error(s.sender, "bad_frame", "sender")
    await s.sender.send(chunk(sid, 1, "stream"))
    await s.sender.send(trailer(sid))
    await wait_closed(s.sender, sid)
    rec = await s.col.wait_done(sid)
    assert (rec.identity, rec.text, rec.error) == ("alice", "real stream", None)
    await s.sender.send(chunk(forged, 0, "x"))
    await expect_error(s.sender, "unknown_stream", forged)
    assert f.get("stream_id") in (None, forged)
    # what a raw receiver saw: the one real stream, its header stamped with the token
    # identity, no sender anywhere else, nothing of the forged stream
    async with asyncio.timeout(5):
        await carol.expect("trailer", stream_id=sid)
    headers = [f for f in carol.frames if f.get("type") == "header"]
    assert [(h["stream_id"], h["sender"]) for h in headers] == [(sid, "alice")]
    assert all("sender" not in f for f in carol.frames if f.get("type") != "header")
    assert all(f.get("stream_id") != forged for f in carol.frames)
    await assert_still_usable(s, seen_before=[sid])


async def test_publish_without_permission(scene: Any) -> None:
    s = await scene(can_publish_data=False)
    sid = new_id("denied")
    await s.sender.send(header(sid))
    f = await expect_error(s.sender, "permission_denied", "canPublishData")
    assert f["stream_id"] == sid
    await s.sender.send(chunk(sid, 0, "x"))
    assert (await expect_error(s.sender, "permission_denied"))["stream_id"] == sid
    await s.sender.send(trailer(sid))
    assert (await expect_error(s.sender, "permission_denied"))["stream_id"] == sid
    # still a full participant otherwise: it receives
    await assert_still_usable(s, seen_before=[], can_send=False)
    assert errors_of(s.sender) == ["permission_denied"] * 3


# ---- beyond the WebSocket limit ------------------------------------------------------------


async def test_message_over_websocket_max_size_closes_only_that_connection(
    scene: Any, connect: Any, system: Any
) -> None:
    """A message over the gateway's WebSocket ``max_size`` (1 MiB) is not a frame the gateway
    can answer: the websockets library fails the connection with close code 1009 (message too
    big). The participant leaves (its open stream ends with ``sender_left``); the gateway
    goes on serving everyone else."""
    s = await scene()
    left: asyncio.Queue[str] = asyncio.Queue()
    s.receiver.on("participant_disconnected", lambda p: left.put_nowait(p.identity))
    sid = await open_stream(s, "partial")
    with contextlib.suppress(ConnectionClosed):
        await s.sender.ws.send("x" * (WS_MAX_SIZE + 1))
    with pytest.raises(ConnectionClosed) as exc_info:
        while True:
            await s.sender.recv(timeout=5)
    assert exc_info.value.rcvd is not None
    assert exc_info.value.rcvd.code == 1009  # CloseCode.MESSAGE_TOO_BIG
    # the bystander: the half-sent stream ends abnormally, the offender leaves
    assert_aborted(await s.col.wait_done(sid), "sender_left", "partial")
    assert await asyncio.wait_for(left.get(), 5) == "alice"
    assert s.receiver.isconnected() and s.room_errors == []
    # the same gateway serves new and existing connections
    dave = await connect("dave", gateway=0)
    info = await dave.local_participant.send_text("gateway 0 still serves", topic=TOPIC)
    assert (await s.col.wait_done(info.stream_id)).text == "gateway 0 still serves"

    def healthz() -> dict[str, Any]:
        with urllib.request.urlopen(f"http://127.0.0.1:{system.ports[0]}/healthz") as r:
            assert r.status == 200
            body: dict[str, Any] = json.loads(r.read())
            return body

    assert (await asyncio.to_thread(healthz))["status"] == "ok"
