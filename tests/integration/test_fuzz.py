"""Fuzzing the gateways with hypothesis: generated and mutated hostile frames from several raw
connections while an honest pair in the same room exchanges checksummed streams.

Every fuzz item is bad by construction (wrong types, repeated keys, huge or negative
numbers, unknown or other senders' stream ids, chunks before headers, trailers twice,
invalid UTF-8, lone surrogates, truncated binary frames, deep nesting, non-JSON, random
bytes). After each item the attacker sends a probe (a trailer for a stream that never
existed), whose ``unknown_stream`` error marks the end of the item's answers, so the test
knows each item got at least one error frame of its own.

Asserted: no service exits or stops answering; the honest pair receives every stream whole
and in order, with no error; every bad item got an error frame; the gateways' memory is back
near its baseline afterwards. ``ROOMSTREAMS_FUZZ_EXAMPLES`` sets the run's size (the default
run sends a few thousand frames; ``tests/tools/fuzz_long.sh``-style long runs raise it).
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import json
import os
import struct
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import psutil
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import roomstreams
from roomstreams import AccessToken, VideoGrants

from .conftest import API_KEY, API_SECRET, System, _private_db, make_env
from .helpers import RawClient

TOPIC = "chat"  # the honest pair's topic
FUZZ_TOPIC = "fuzz"  # what the attackers' own (valid) headers use: nobody handles it
EXAMPLES = int(os.environ.get("ROOMSTREAMS_FUZZ_EXAMPLES", "25"))
ATTACKERS = 3

pytestmark = pytest.mark.slow


# ---- what the attackers send -------------------------------------------------------------

Frame = str | bytes


@dataclass(frozen=True)
class Item:
    """A few frames that together are bad: at least one error frame must come back."""

    what: str
    frames: tuple[Frame, ...]


def _sid(draw: st.DrawFn) -> str:
    return "f-" + draw(st.text("abcdef0123456789", min_size=4, max_size=12))


def _j(obj: Any) -> str:
    return json.dumps(obj)


TEMPLATES: dict[str, dict[str, Any]] = {
    "header": {"type": "header", "stream_id": "x", "topic": FUZZ_TOPIC, "timestamp": 1},
    "chunk": {"type": "chunk", "stream_id": "x", "chunk_index": 0, "content": "c"},
    "trailer": {"type": "trailer", "stream_id": "x", "reason": ""},
    "subscribe": {"type": "subscribe", "topic": FUZZ_TOPIC, "kind": "text", "req": 1},
}
# wrong-typed values for each field (strict validation: none of these may pass)
WRONG: dict[str, list[Any]] = {
    "stream_id": [1, None, ["x"], {"a": 1}, True],
    "topic": [2, None, ["t"], {}, False],
    "timestamp": ["1", 1.5, None, [], True],
    "chunk_index": ["0", 0.5, None, [0], True, -1, -(2**70)],
    "content": [3, None, ["c"], {"c": 1}],
    "reason": [4, ["r"], {"r": 1}, True],
    "kind": ["video", 1, None],
    "req": ["1", 1.5, [1], {}],
    "type": ["ack", "joined", "closed", 1, None, "", "HEADER"],
}


@st.composite
def wrong_type(draw: st.DrawFn) -> Item:
    name = draw(st.sampled_from(sorted(TEMPLATES)))
    frame = dict(TEMPLATES[name])
    frame["stream_id" if "stream_id" in frame else "topic"] = _sid(draw)
    field = draw(st.sampled_from([f for f in frame if f in WRONG]))
    frame[field] = draw(st.sampled_from(WRONG[field]))
    return Item(f"wrong type: {name}.{field}", (_j(frame),))


@st.composite
def repeated_keys(draw: st.DrawFn) -> Item:
    """A key twice; the frame is bad whichever copy a parser takes (an unknown stream)."""
    sid = _sid(draw)
    first = draw(st.sampled_from(["ack", "joined", "header", "closed", "chunk"]))
    last = draw(st.sampled_from(["chunk", "trailer"]))
    body = f'"stream_id":"{sid}","chunk_index":0,"content":"x"'
    if last == "trailer":
        body = f'"stream_id":"{sid}"'
    order = draw(st.booleans())
    raw = (
        f'{{"type":"{first}","type":"{last}",{body}}}'
        if order
        else f'{{"type":"{last}",{body},"stream_id":"{_sid(draw)}"}}'
    )
    return Item("repeated keys", (raw,))


@st.composite
def repeated_keys_delivered(draw: st.DrawFn) -> Item:
    """The frame that used to kill a gateway: on an open stream of the honest pair's topic,
    so it reaches bob (whose handler registrations are often pending); the stream's second
    trailer is the bad frame that must get an error."""
    sid = _sid(draw)
    first = draw(st.sampled_from(["ack", "joined", "closed", "goaway", "header"]))
    crafted = f'{{"type":"{first}","type":"chunk","stream_id":"{sid}","chunk_index":0,'
    crafted += draw(st.sampled_from(['"content":"x"}', '"content":"x","req":1}']))
    h = _j({**TEMPLATES["header"], "stream_id": sid, "topic": TOPIC})
    t = _j({"type": "trailer", "stream_id": sid})
    return Item("repeated keys, delivered", (h, crafted, t, t))


@st.composite
def huge_numbers(draw: st.DrawFn) -> Item:
    sid = _sid(draw)
    n = draw(st.sampled_from([2**64, 2**200, -1, -(2**63), 10**400]))
    frames: list[Frame] = [_j({**TEMPLATES["header"], "stream_id": sid})]
    choice = draw(st.sampled_from(["index", "total", "raw"]))
    if choice == "index":
        frames.append(_j({**TEMPLATES["chunk"], "stream_id": sid, "chunk_index": n}))
    elif choice == "total":
        frames = [_j({**TEMPLATES["header"], "stream_id": sid, "total_length": -abs(n)})]
    else:
        frames.append(f'{{"type":"chunk","stream_id":"{sid}","chunk_index":1e999,"content":""}}')
    frames.append(_j({"type": "trailer", "stream_id": sid, "reason": "fuzz"}))
    return Item(f"number {choice}", tuple(frames))


@st.composite
def stream_misuse(draw: st.DrawFn) -> Item:
    sid = _sid(draw)
    kind = draw(st.sampled_from(["chunk-first", "trailer-twice", "gap", "byte-on-text"]))
    h = _j({**TEMPLATES["header"], "stream_id": sid})
    c = {**TEMPLATES["chunk"], "stream_id": sid}
    t = _j({"type": "trailer", "stream_id": sid})
    frames: tuple[Frame, ...]
    if kind == "chunk-first":
        frames = (_j(c),)
    elif kind == "trailer-twice":
        frames = (h, t, t)
    elif kind == "gap":
        frames = (h, _j({**c, "chunk_index": draw(st.integers(1, 50))}))
    else:
        frames = (h, byte_chunk(sid, 0, b"bytes"))
    return Item(kind, frames)


def byte_chunk(sid: str, index: int, payload: bytes) -> bytes:
    s = sid.encode()
    return bytes((0x01, len(s))) + s + struct.pack(">I", index) + payload


@st.composite
def encoding(draw: st.DrawFn) -> Item:
    sid = _sid(draw)
    kind = draw(st.sampled_from(["utf8", "surrogate", "nested", "non-json", "empty"]))
    if kind == "utf8":
        bad = draw(st.sampled_from([b"\xff", b"\xc3\x28", b"\xed\xa0\x80", b"\xf8\x88\x80"]))
        frame: Frame = b'{"type":"chunk","stream_id":"' + sid.encode() + b'","content":"' + bad
        frame += b'","chunk_index":0}'
    elif kind == "surrogate":
        frame = '{"type":"subscribe","topic":"\\ud800x","req":1}'
    elif kind == "nested":
        depth = draw(st.integers(200, 6000))
        frame = draw(st.sampled_from(["[", '{"a":'])) * depth
    elif kind == "non-json":
        frame = draw(st.text(min_size=1, max_size=40).filter(lambda s: not _is_json(s)))
    else:
        frame = b""
    return Item(f"encoding {kind}", (frame,))


def _is_json(s: str) -> bool:
    try:
        json.loads(s)
    except ValueError:
        return False
    return True


@st.composite
def binary(draw: st.DrawFn) -> Item:
    kind = draw(st.sampled_from(["chunk-truncated", "packet-truncated", "flags", "random"]))
    if kind == "chunk-truncated":
        full = byte_chunk(_sid(draw), 0, b"payload")
        frame = full[: draw(st.integers(1, len(full) - 8))]
    elif kind == "packet-truncated":
        meta = b'{"topic":"t"}'
        full = bytes((0x02, 1)) + struct.pack(">H", len(meta) + 40) + meta
        frame = full[: draw(st.integers(1, len(full)))]
    elif kind == "flags":
        meta = b"{}"
        frame = bytes((0x02, draw(st.integers(2, 255)))) + struct.pack(">H", 2) + meta + b"x"
    else:
        first = draw(st.sampled_from([0x00, 0x01, 0x03, 0x7B, 0xFF]))
        frame = bytes((first,)) + draw(st.binary(max_size=60))
        if first == 0x01 and len(frame) >= 2 and frame[1] > 0 and len(frame) >= 6 + frame[1]:
            frame = frame[:2] + b"\xff" + frame[3:]  # an invalid stream id: never a real one
    return Item(f"binary {kind}", (frame,))


#: replaced, when the frame is sent, by the id of the stream the honest sender is writing
VICTIM = "__victim__"


@st.composite
def others_streams(draw: st.DrawFn) -> Item:
    """Chunks and trailers on the stream the honest sender is writing right now."""
    frame = draw(
        st.sampled_from(
            [
                _j({"type": "chunk", "stream_id": VICTIM, "chunk_index": 0, "content": "EVE"}),
                _j({"type": "chunk", "stream_id": VICTIM, "chunk_index": 1, "content": "EVE"}),
                _j({"type": "trailer", "stream_id": VICTIM, "reason": "eve ends it"}),
                _j({"type": "trailer", "stream_id": VICTIM}),
                byte_chunk(VICTIM, 0, b"EVE"),
            ]
        )
    )
    return Item("another's stream", (frame,))


def _aimed(frame: Frame, victim: str) -> Frame:
    if isinstance(frame, str):
        return frame.replace(VICTIM, victim)
    if VICTIM.encode() in frame:
        return byte_chunk(victim, 0, b"EVE")
    return frame


def items() -> st.SearchStrategy[Item]:
    return st.one_of(
        wrong_type(),
        repeated_keys(),
        repeated_keys_delivered(),
        huge_numbers(),
        stream_misuse(),
        encoding(),
        binary(),
        others_streams(),
    )


# ---- the scene ---------------------------------------------------------------------------


def _token(room: str, identity: str) -> str:
    g = VideoGrants(room=room, room_join=True)
    return AccessToken(API_KEY, API_SECRET).with_identity(identity).with_grants(g).to_jwt()


@pytest.fixture(scope="module")
def fuzz_system(redis_url: str) -> Iterator[System]:
    url = _private_db(redis_url)
    s = System(url, make_env(url))
    try:
        s.start_router()
        s.start_gateway()
        s.start_gateway()
        yield s
    finally:
        s.stop()


def _rss(s: System) -> int:
    return sum(psutil.Process(p.pid).memory_info().rss for p in s.gateways)


class Honest:
    """Alice streams checksummed texts to bob for as long as the fuzzing lasts."""

    def __init__(self, alice: roomstreams.Room, bob: roomstreams.Room) -> None:
        self.alice, self.bob = alice, bob
        self.sent: list[tuple[str, str]] = []  # (stream id, text)
        self.received: dict[str, tuple[str, str, str]] = {}  # id -> (sender, text, digest)
        self.order: list[str] = []
        self.errors: list[BaseException] = []
        self.current: list[str] = []  # the id alice writes right now, for the attackers

    async def handler(self, reader: roomstreams.TextStreamReader, identity: str) -> None:
        sid = reader.info.stream_id
        if identity != "alice":  # an attacker's stream: read it, whatever it holds
            with contextlib.suppress(roomstreams.StreamAborted):
                await reader.read_all()
            return
        self.order.append(sid)
        try:
            text = await reader.read_all()
        except roomstreams.StreamAborted as exc:
            self.errors.append(exc)
            return
        self.received[sid] = (identity, text, reader.info.attributes.get("sha256", ""))

    async def churn(self, stop: asyncio.Event) -> None:
        """Bob registers and unregisters a handler over and over, so that his gateway often
        has registrations pending when attackers' frames reach him."""
        n = 0
        while not stop.is_set():
            n += 1
            await self.bob.register_text_stream_handler(f"churn-{n}", self.handler)
            await self.bob.unregister_text_stream_handler(f"churn-{n}")

    async def run(self, stop: asyncio.Event) -> None:
        i = 0
        while not stop.is_set():
            i += 1
            parts = [f"{i}:{uuid.uuid4().hex} ü€😀 " * (1 + i % 5) for _ in range(3)]
            text = "".join(parts)
            digest = hashlib.sha256(text.encode()).hexdigest()
            writer = await self.alice.local_participant.stream_text(
                topic=TOPIC, attributes={"sha256": digest}
            )
            self.current[:] = [writer.info.stream_id]
            for p in parts:
                await writer.write(p)
            await writer.close()
            self.sent.append((writer.info.stream_id, text))


async def _attack(eve: RawClient, batch: list[Item], tag: str, victim: list[str]) -> list[str]:
    """Send each item then a probe; return the items that got no error frame."""
    for n, item in enumerate(batch):
        for frame in item.frames:
            await eve.ws.send(_aimed(frame, victim[0] if victim else "none"))
        await eve.send({"type": "trailer", "stream_id": f"probe-{tag}-{n}"})
    unanswered: list[str] = []
    errors_since_probe = 0
    n = 0
    while n < len(batch):
        f = await eve.recv(timeout=20)
        if f.get("type") != "error":
            continue
        if f.get("stream_id") == f"probe-{tag}-{n}":
            assert f["code"] == "unknown_stream", f
            if errors_since_probe == 0:
                unanswered.append(batch[n].what)
            errors_since_probe = 0
            n += 1
        else:
            assert f["code"] and len(f["message"]) >= 8, f
            errors_since_probe += 1
    return unanswered


async def _scene(s: System, examples: list[list[Item]]) -> None:
    room = f"fuzz-{uuid.uuid4().hex[:8]}"
    bob = roomstreams.Room()
    alice = roomstreams.Room()
    room_errors: list[object] = []
    honest = Honest(alice, bob)
    bob.register_text_stream_handler(TOPIC, honest.handler)
    await bob.connect(s.urls[1], _token(room, "bob"))
    await alice.connect(s.urls[0], _token(room, "alice"))
    for r in (alice, bob):
        r.on("error", room_errors.append)
    eves = [
        await RawClient.connect(s.urls[i % 2], _token(room, f"eve{i}")) for i in range(ATTACKERS)
    ]
    stop = asyncio.Event()
    honest_task = asyncio.create_task(honest.run(stop))
    churn_task = asyncio.create_task(honest.churn(stop))
    try:
        await _settle(lambda: len(bob.remote_participants) == ATTACKERS + 1)
        for k, batch in enumerate(examples):
            parts = [batch[i::ATTACKERS] for i in range(ATTACKERS)]
            results = await asyncio.gather(
                *(
                    _attack(e, p, f"{k}.{i}", honest.current)
                    for i, (e, p) in enumerate(zip(eves, parts, strict=True))
                )
            )
            unanswered = [w for r in results for w in r]
            assert unanswered == [], f"bad frames that got no error: {unanswered}"
        # every attacker is still connected (bad frames close nothing)
        assert {f"eve{i}" for i in range(ATTACKERS)} <= set(bob.remote_participants)
        stop.set()
        await asyncio.wait_for(honest_task, 20)
        await asyncio.wait_for(churn_task, 20)
        # the honest pair: everything sent arrived, whole, in order, from alice, no error
        await _settle(lambda: len(honest.received) >= len(honest.sent))
        assert honest.errors == [] and room_errors == []
        assert honest.order == [sid for sid, _ in honest.sent]
        for sid, text in honest.sent:
            sender, got, digest = honest.received[sid]
            assert sender == "alice" and got == text
            assert digest == hashlib.sha256(got.encode()).hexdigest()
        assert len(honest.sent) >= 1
    finally:
        stop.set()
        honest_task.cancel()
        churn_task.cancel()
        await asyncio.gather(honest_task, churn_task, return_exceptions=True)
        for e in eves:
            await e.close()
        await alice.disconnect()
        await bob.disconnect()


async def _settle(pred: Any, timeout: float = 10.0) -> None:
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while not pred():
        assert loop.time() < deadline, "timed out"
        await asyncio.sleep(0.02)


def test_fuzzed_frames_hurt_nobody(fuzz_system: System) -> None:
    s = fuzz_system
    baseline = _rss(s)
    frames_sent = [0]

    @settings(
        max_examples=EXAMPLES,
        deadline=None,
        database=None,
        suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
    )
    @given(st.lists(st.lists(items(), min_size=20, max_size=60), min_size=1, max_size=3))
    def run(examples: list[list[Item]]) -> None:
        frames_sent[0] += sum(len(i.frames) + 1 for b in examples for i in b)
        asyncio.run(_scene(s, examples))

    run()
    for p in [*s.gateways, s.router]:
        assert p is not None and p.poll() is None, "a service exited"
    grown = _rss(s) - baseline
    print(f"fuzz: {frames_sent[0]} frames; gateway RSS grew by {grown / 1e6:.1f} MB")
    assert frames_sent[0] >= 1000 or EXAMPLES < 25
    assert grown < 32e6, f"gateways grew by {grown / 1e6:.1f} MB"
