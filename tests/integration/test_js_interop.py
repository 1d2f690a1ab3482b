"""The TypeScript client (shared/js, built to dist/) against the real system, with Python
participants on the other side: JS to Python and Python to JS.

Each JS participant is a Node process (tests/js/agent.mjs) driven by JSON lines on its stdin;
it reports what it receives as JSON lines on stdout, and the tests wait on those lines.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import hashlib
import itertools
import json
import os
import re
import shutil
import signal
import subprocess
import sys
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path
from typing import Any

import pytest

import roomstreams

from .binary_helpers import ByteCollector
from .conftest import API_KEY, API_SECRET, System
from .helpers import Collector
from .lb import TcpBalancer

ROOT = Path(__file__).resolve().parents[2]
JS = ROOT / "shared" / "js"
DIST = JS / "dist" / "roomstreams.js"
AGENT = ROOT / "tests" / "js" / "agent.mjs"

# the first test may build the package (npm ci + npm run build) in its setup
pytestmark = pytest.mark.timeout(240)


def _newest_source() -> float:
    paths = [JS / "package.json", JS / "package-lock.json", JS / "scripts" / "build.mjs"]
    paths += list((JS / "src").rglob("*.ts"))
    return max(p.stat().st_mtime for p in paths if p.exists())


@pytest.fixture(scope="session")
def js_dist() -> Path:
    """The built package: ``npm ci`` when node_modules is missing, ``npm run build`` when
    dist is missing or older than the sources. Skipped only without node/npm."""
    node, npm = shutil.which("node"), shutil.which("npm")
    if node is None or npm is None:
        pytest.skip("node and npm are not on PATH: the TypeScript client cannot be built or run")
    major = int(
        subprocess.run([node, "--version"], capture_output=True, text=True).stdout[1:].split(".")[0]
    )
    if major < 20:
        pytest.skip(f"node {major} is too old: the TypeScript client needs Node 20 or later")
    if not (JS / "node_modules").is_dir():
        subprocess.run([npm, "ci", "--no-audit", "--no-fund"], cwd=JS, check=True)
    if not DIST.exists() or DIST.stat().st_mtime < _newest_source():
        subprocess.run([npm, "run", "build"], cwd=JS, check=True)
    return DIST


class JsError(AssertionError):
    def __init__(self, error: dict[str, Any]) -> None:
        super().__init__(f"{error.get('name')} ({error.get('code')}): {error.get('message')}")
        self.error = error


class Agent:
    """One Node participant; ``events`` is everything it printed, in order."""

    def __init__(self, proc: asyncio.subprocess.Process) -> None:
        self.proc = proc
        self.events: list[dict[str, Any]] = []
        self._seen = asyncio.Condition()
        self._ids = itertools.count(1)
        self._reader = asyncio.get_running_loop().create_task(self._read())

    @classmethod
    async def start(cls, dist: Path) -> Agent:
        proc = await asyncio.create_subprocess_exec(
            "node",
            str(AGENT),
            stdin=asyncio.subprocess.PIPE,
            stdout=asyncio.subprocess.PIPE,
            env={**os.environ, "ROOMSTREAMS_JS": str(dist)},
            limit=64 * 1024 * 1024,
        )
        agent = cls(proc)
        await agent.wait("ready")
        return agent

    async def _read(self) -> None:
        assert self.proc.stdout is not None
        while line := await self.proc.stdout.readline():
            ev = json.loads(line)
            async with self._seen:
                self.events.append(ev)
                self._seen.notify_all()
        async with self._seen:
            self.events.append({"ev": "exited"})
            self._seen.notify_all()

    def _find(self, ev: str, match: dict[str, Any], start: int) -> dict[str, Any] | None:
        for e in self.events[start:]:
            if e.get("ev") == ev and all(e.get(k) == v for k, v in match.items()):
                return e
            if e.get("ev") == "exited" and ev != "exited":
                raise AssertionError(f"the Node agent exited while waiting for {ev} {match}")
        return None

    async def wait(
        self, ev: str, timeout: float = 15.0, start: int = 0, **match: Any
    ) -> dict[str, Any]:
        """The first event ``ev`` (from index ``start``) whose fields equal ``match``."""
        async with asyncio.timeout(timeout):
            async with self._seen:
                found: dict[str, Any] | None = None

                def ready() -> bool:
                    nonlocal found
                    found = self._find(ev, match, start)
                    return found is not None

                await self._seen.wait_for(ready)
        assert found is not None
        return found

    async def wait_for(
        self, pred: Callable[[dict[str, Any]], bool], timeout: float = 15.0
    ) -> dict[str, Any]:
        """The first event for which ``pred`` is true."""
        async with asyncio.timeout(timeout), self._seen:
            await self._seen.wait_for(lambda: any(pred(e) for e in self.events))
        return next(e for e in self.events if pred(e))

    def all(self, ev: str, **match: Any) -> list[dict[str, Any]]:
        return [
            e
            for e in self.events
            if e.get("ev") == ev and all(e.get(k) == v for k, v in match.items())
        ]

    async def start_command(self, cmd: str, **args: Any) -> int:
        """Send a command without waiting for it; its id (its events and result carry it)."""
        cid = next(self._ids)
        assert self.proc.stdin is not None
        self.proc.stdin.write((json.dumps({"cmd": cmd, "id": cid, **args}) + "\n").encode())
        await self.proc.stdin.drain()
        return cid

    async def result(self, cmd: str, timeout: float = 30.0, **args: Any) -> dict[str, Any]:
        """Run a command; its whole result line (``ok``, ``value`` or ``error``)."""
        cid = await self.start_command(cmd, **args)
        return await self.wait("result", timeout=timeout, id=cid)

    async def call(self, cmd: str, timeout: float = 30.0, **args: Any) -> dict[str, Any]:
        r = await self.result(cmd, timeout, **args)
        if not r["ok"]:
            raise JsError(r["error"])
        value: dict[str, Any] = r["value"]
        return value

    async def fails(self, cmd: str, **args: Any) -> dict[str, Any]:
        r = await self.result(cmd, **args)
        assert not r["ok"], f"{cmd} should have failed: {r}"
        error: dict[str, Any] = r["error"]
        return error

    async def stop(self) -> None:
        if self.proc.returncode is None:
            assert self.proc.stdin is not None
            with contextlib.suppress(Exception):
                self.proc.stdin.close()
            try:
                await asyncio.wait_for(self.proc.wait(), 5)
            except TimeoutError:
                self.proc.kill()
                await self.proc.wait()
        with contextlib.suppress(Exception):
            await asyncio.wait_for(self._reader, 5)


StartAgent = Callable[..., Awaitable[Agent]]


@pytest.fixture
async def js(js_dist: Path) -> AsyncIterator[StartAgent]:
    """``await js("alice", url, token, text_topics=[...])`` -> a connected Node participant."""
    made: list[Agent] = []

    async def start(url: str, token: str, **connect: Any) -> Agent:
        agent = await Agent.start(js_dist)
        made.append(agent)
        await agent.call("connect", url=url, token=token, **connect)
        return agent

    yield start
    for a in made:
        await a.stop()


@pytest.fixture
async def py(
    system: System, room_name: str
) -> AsyncIterator[Callable[..., Awaitable[roomstreams.Room]]]:
    """``await py("bob", chat=Collector(), files=ByteCollector())`` -> a connected Python room
    (text handlers by keyword; a ByteCollector registers a byte handler)."""
    made: list[roomstreams.Room] = []

    async def join(
        identity: str,
        *,
        gateway: int = 1,
        url: str | None = None,
        s: System | None = None,
        **handlers: Any,
    ) -> roomstreams.Room:
        sys_ = s or system
        r = roomstreams.Room()
        for topic, h in handlers.items():
            if isinstance(h, ByteCollector):
                r.register_byte_stream_handler(topic, h)
            else:
                r.register_text_stream_handler(topic, h)
        await r.connect(url or sys_.urls[gateway], sys_.token(room_name, identity))
        made.append(r)
        return r

    yield join
    for r in made:
        await r.disconnect()


def _sha(data: str | bytes) -> str:
    return hashlib.sha256(data.encode() if isinstance(data, str) else data).hexdigest()


def _http(url: str) -> str:
    return "http://" + url.removeprefix("ws://")


# ---- text streams --------------------------------------------------------------------------


async def test_send_text_both_ways(system: System, room_name: str, js: StartAgent, py: Any) -> None:
    col = Collector()
    bob = await py("bob", chat=col)
    # an http:// URL is turned into ws:// (as LiveKit does)
    alice = await js(_http(system.urls[0]), system.token(room_name, "alice"), text_topics=["chat"])
    state = await alice.call("state")
    assert (
        state["state"] == "connected"
        and state["identity"] == "alice"
        and state["remote"] == ["bob"]
    )

    sent = await alice.call(
        "send_text", text="héllo from JS 😀", topic="chat", attributes={"k": "v"}
    )
    rec = await col.wait_done(sent["stream_id"])
    assert rec.identity == "alice" and rec.error is None
    assert rec.text == "héllo from JS 😀"
    assert rec.info.topic == "chat" and rec.info.attributes == {"k": "v"}
    assert rec.info.size == len("héllo from JS 😀".encode())
    assert sent["last_progress"] == 1

    info = await bob.local_participant.send_text(
        "hi from Python ✓", topic="chat", attributes={"a": "b"}
    )
    got = await alice.wait("text_done", stream_id=info.stream_id)
    assert got["text"] == "hi from Python ✓" and got["sender"] == "bob" and got["topic"] == "chat"
    assert got["attributes"] == {"a": "b"}


async def test_stream_text_arrives_as_it_is_written(
    system: System, room_name: str, js: StartAgent, py: Any
) -> None:
    chunks: asyncio.Queue[str | None] = asyncio.Queue()
    ends: list[roomstreams.TextStreamInfo] = []

    async def on_chat(reader: roomstreams.TextStreamReader, identity: str) -> None:
        async for chunk in reader:
            chunks.put_nowait(chunk)
        ends.append(reader.info)
        chunks.put_nowait(None)

    bob = await py("bob", chat=on_chat)
    alice = await js(
        system.urls[0], system.token(room_name, "alice"), text_topics=["chat"], mode="chunks"
    )

    sid = (await alice.call("open_stream", topic="chat"))["stream_id"]
    for word in ["token ", "by ", "token"]:
        await alice.call("write", stream_id=sid, text=word)
        # each word arrives on its own, before the next is written
        assert await asyncio.wait_for(chunks.get(), 10) == word
    assert not ends
    await alice.call("close", stream_id=sid, attributes={"final": "yes"})
    assert await asyncio.wait_for(chunks.get(), 10) is None
    assert ends[0].stream_id == sid
    assert ends[0].attributes == {"final": "yes"}  # trailer attributes merged

    writer = await bob.local_participant.stream_text(topic="chat")
    for i, word in enumerate(["Python ", "streams ", "too"]):
        await writer.write(word)
        chunk = await alice.wait("text_chunk", stream_id=writer.stream_id, index=i)
        assert chunk["text"] == word
    assert not alice.all("text_done", stream_id=writer.stream_id)
    await writer.close()
    done = await alice.wait("text_done", stream_id=writer.stream_id)
    assert done["text"] == "Python streams too" and done["chunks"] == 3


async def test_five_megabyte_text_both_ways(
    system: System, room_name: str, js: StartAgent, py: Any
) -> None:
    col = Collector()
    bob = await py("bob", chat=col)
    alice = await js(system.urls[0], system.token(room_name, "alice"), text_topics=["chat"])

    sent = await alice.call("send_text", big_text=5_000_000, topic="chat", timeout=60)
    rec = await col.wait_done(sent["stream_id"], timeout=60)
    assert rec.error is None
    assert _sha(rec.text) == sent["sha256"] and len(rec.text.encode()) == sent["bytes"] >= 5_000_000
    sizes = [len(c.encode()) for c in rec.chunks]
    assert max(sizes) <= 15_000 and len(sizes) >= 5_000_000 // 15_000
    assert sent["progress_calls"] >= len(sizes) and sent["last_progress"] == 1

    text = "Grüße, 世界! 🎈 " * 300_000  # ~5.4 MB of 1- to 4-byte characters
    info = await bob.local_participant.send_text(text, topic="chat")
    got = await alice.wait("text_done", stream_id=info.stream_id, timeout=60)
    assert got["sha256"] == _sha(text) and got["bytes"] == len(text.encode())


async def test_concurrent_streams_keep_their_order(
    system: System, room_name: str, js: StartAgent, py: Any
) -> None:
    col = Collector()
    bob = await py("bob", chat=col)
    alice = await js(
        system.urls[0], system.token(room_name, "alice"), text_topics=["chat"], mode="chunks"
    )

    ids = [(await alice.call("open_stream", topic="chat"))["stream_id"] for _ in range(3)]
    for round_ in range(3):
        for n, sid in enumerate(ids):
            await alice.call("write", stream_id=sid, text=f"s{n}r{round_};")
    for n in (1, 2, 0):
        await alice.call("close", stream_id=ids[n])
    for sid in ids:
        await col.wait_done(sid)
    assert [r.info.stream_id for r in col.streams] == ids  # handlers called in opening order
    assert col.ended == [ids[1], ids[2], ids[0]]  # readers end in closing order
    for n, sid in enumerate(ids):
        assert col.by_id[sid].text == "".join(f"s{n}r{r};" for r in range(3))

    writers = [await bob.local_participant.stream_text(topic="chat") for _ in range(3)]
    for round_ in range(2):
        for n, w in enumerate(writers):
            await w.write(f"p{n}r{round_};")
    for w in writers:  # every chunk consumed: what is left to see is the order of the ends
        await alice.wait("text_chunk", stream_id=w.stream_id, index=1)
    for n in (2, 0, 1):
        await writers[n].close()
    for w in writers:
        await alice.wait("text_done", stream_id=w.stream_id)
    wanted = [w.stream_id for w in writers]
    assert [e["stream_id"] for e in alice.all("text_open") if e["stream_id"] in wanted] == wanted
    done = [e for e in alice.all("text_done") if e["stream_id"] in wanted]
    assert [e["stream_id"] for e in done] == [wanted[2], wanted[0], wanted[1]]
    for e in done:
        n = wanted.index(e["stream_id"])
        assert e["text"] == f"p{n}r0;p{n}r1;"


async def test_destination_filtering_and_topics(
    system: System, room_name: str, js: StartAgent, py: Any
) -> None:
    bob_col, carol_col, bob_news = Collector(), Collector(), Collector()
    bob = await py("bob", chat=bob_col, news=bob_news)
    await py("carol", gateway=0, chat=carol_col)
    alice = await js(system.urls[0], system.token(room_name, "alice"), text_topics=["chat"])
    dave = await js(system.urls[1], system.token(room_name, "dave"), text_topics=["chat"])

    only_bob = await alice.call(
        "send_text", text="for bob only", topic="chat", destinations=["bob"]
    )
    other_topic = await alice.call("send_text", text="nobody listens here", topic="elsewhere")
    news = await alice.call("send_text", text="news for bob", topic="news")
    everyone = await alice.call("send_text", text="for everyone", topic="chat")
    assert (await bob_col.wait_done(only_bob["stream_id"])).text == "for bob only"
    assert (await bob_news.wait_done(news["stream_id"])).text == "news for bob"
    await bob_col.wait_done(everyone["stream_id"])
    await carol_col.wait_done(everyone["stream_id"])
    await dave.wait("text_done", stream_id=everyone["stream_id"])
    # the room log is ordered: had they received the filtered stream, it would have come first
    assert [r.info.stream_id for r in carol_col.streams] == [everyone["stream_id"]]
    assert [e["stream_id"] for e in dave.all("text_open")] == [everyone["stream_id"]]
    assert other_topic["stream_id"] not in bob_col.by_id

    to_dave = await bob.local_participant.send_text(
        "psst dave", topic="chat", destination_identities=["dave"]
    )
    to_all = await bob.local_participant.send_text("hello all", topic="chat")
    assert (await dave.wait("text_done", stream_id=to_dave.stream_id))["text"] == "psst dave"
    await alice.wait("text_done", stream_id=to_all.stream_id)
    assert [e["stream_id"] for e in alice.all("text_open")] == [to_all.stream_id]


async def test_sender_that_leaves_mid_stream(
    system: System, room_name: str, js: StartAgent, py: Any
) -> None:
    col = Collector()
    bob = await py("bob", chat=col)
    alice = await js(system.urls[0], system.token(room_name, "alice"), text_topics=["chat"])

    # JS closes with a reason: the Python reader fails with it
    sid = (await alice.call("open_stream", topic="chat"))["stream_id"]
    await alice.call("write", stream_id=sid, text="half a thought")
    await alice.call("close", stream_id=sid, reason="cancelled by the user")
    rec = await col.wait_done(sid)
    assert isinstance(rec.error, roomstreams.StreamAborted)
    assert rec.error.code == "sender_reason" and rec.error.reason == "cancelled by the user"
    assert rec.text == "half a thought"

    # Python leaves mid-stream: the JS reader fails saying why
    carol = await py("carol", gateway=0)
    w = await carol.local_participant.stream_text(topic="chat")
    await w.write("before leaving")
    await alice.wait("text_open", stream_id=w.stream_id)
    await carol.disconnect()
    err = await alice.wait("text_error", stream_id=w.stream_id)
    assert err["is_stream_aborted"] and err["error"]["name"] == "StreamAborted"
    assert err["error"]["code"] == "sender_left" and "carol" in err["error"]["message"]
    assert "sender_left" in err["error"]["message"] and err["received"] == "before leaving"

    # the JS process dies mid-stream: the Python reader fails saying why
    sid = (await alice.call("open_stream", topic="chat"))["stream_id"]
    await alice.call("write", stream_id=sid, text="about to vanish")
    await col.wait_count(2)
    alice.proc.send_signal(signal.SIGKILL)
    rec = await col.wait_done(sid, timeout=15)
    assert isinstance(rec.error, roomstreams.StreamAborted)
    assert rec.error.code == "sender_left" and "alice" in str(rec.error)
    assert rec.text == "about to vanish"
    del bob


async def test_a_big_send_holds_a_bounded_window_while_the_path_is_stalled(
    system_factory: Callable[..., System], room_name: str, js: StartAgent, py: Any
) -> None:
    """Pacing: with the sender's gateway stopped (SIGSTOP), TCP fills up and sendText waits
    with at most its send window (256 KiB) unsent in the socket, instead of queueing the
    whole text; once the gateway runs again, all of it arrives."""
    # the stall is on purpose: neither the router's heartbeat check nor the gateway's
    # keepalive (a ping outstanding when it stopped) may judge it
    s = system_factory(
        gateways=2,
        ROOMSTREAMS_GATEWAY_TIMEOUT="60",
        ROOMSTREAMS_PING_INTERVAL="60",
        ROOMSTREAMS_PING_TIMEOUT="60",
    )
    col = Collector()
    await py("bob", url=s.urls[1], s=s, chat=col)
    alice = await js(s.urls[0], s.token(room_name, "alice"), track_buffer=True)
    gateway = s.gateways[0]
    gateway.send_signal(signal.SIGSTOP)
    try:
        cid = await alice.start_command(
            "send_text", big_text=48_000_000, topic="chat", progress_events=True
        )
        # the kernel's socket buffers fill first; then the socket holds data unsent
        await alice.wait("backlog", timeout=60)
        # it stays stalled: no result while the gateway is stopped
        await asyncio.sleep(1.0)
        assert not alice.all("result", id=cid)
        progress = alice.all("progress", id=cid)
        assert progress[-1]["progress"] < 1
        assert max(e["max_buffered"] for e in progress) <= 256 * 1024 + 96 * 1024
    finally:
        gateway.send_signal(signal.SIGCONT)
    r = await alice.wait("result", timeout=120, id=cid)
    assert r["ok"], r
    sent = r["value"]
    assert sent["max_buffered"] <= 256 * 1024 + 96 * 1024
    rec = await col.wait_done(sent["stream_id"], timeout=120)
    assert rec.error is None and _sha(rec.text) == sent["sha256"]


# ---- byte streams and data packets ---------------------------------------------------------


async def test_send_file_both_ways(
    system: System, room_name: str, js: StartAgent, py: Any, tmp_path: Path
) -> None:
    files = ByteCollector()
    bob = await py("bob", files=files)
    alice = await js(system.urls[0], system.token(room_name, "alice"), byte_topics=["files"])

    payload = os.urandom(3 * 1024 * 1024 + 123)
    path = tmp_path / "photo.png"
    path.write_bytes(payload)
    sent = await alice.call("send_file", path=str(path), topic="files", timeout=60)
    assert (
        sent["name"] == "photo.png"
        and sent["mime_type"] == "image/png"
        and sent["size"] == len(payload)
    )
    assert sent["progress_calls"] > 1 and sent["last_progress"] == 1
    rec = await files.wait_done(sent["stream_id"], timeout=60)
    assert rec.error is None and rec.identity == "alice"
    assert _sha(rec.data) == _sha(payload)
    assert (
        rec.info.name == "photo.png"
        and rec.info.mime_type == "image/png"
        and rec.info.size == len(payload)
    )
    assert max(len(c) for c in rec.chunks) <= 15_000

    # bytes in memory with a name (Node without a File)
    small = await alice.call(
        "send_file", path=str(path), as_bytes=True, name="copy.bin", topic="files"
    )
    rec2 = await files.wait_done(small["stream_id"], timeout=60)
    assert _sha(rec2.data) == _sha(payload) and rec2.info.mime_type == "application/octet-stream"

    back = tmp_path / "report.pdf"
    back.write_bytes(os.urandom(2 * 1024 * 1024 + 7))
    info = await bob.local_participant.send_file(back, topic="files")
    got = await alice.wait("bytes_done", stream_id=info.stream_id, timeout=60)
    assert got["sha256"] == _sha(back.read_bytes()) and got["size"] == back.stat().st_size
    assert got["name"] == "report.pdf" and got["mime_type"] == "application/pdf"
    assert got["progress_calls"] > 1 and got["last_progress"] == 1


async def test_data_packets_both_ways(
    system: System, room_name: str, js: StartAgent, py: Any
) -> None:
    packets: asyncio.Queue[Any] = asyncio.Queue()
    bob = await py("bob")
    bob.on("data_received", packets.put_nowait)
    alice = await js(system.urls[0], system.token(room_name, "alice"))

    blob = bytes(range(256)) * 58  # 14848 bytes: just under the limit
    await alice.call(
        "publish", payload_b64=base64.b64encode(blob).decode(), topic="bin", reliable=False
    )
    await alice.call("publish", payload="text as UTF-8 ✓", topic="txt")
    p1 = await asyncio.wait_for(packets.get(), 10)
    p2 = await asyncio.wait_for(packets.get(), 10)
    assert (p1.payload, p1.topic, p1.participant_identity, p1.reliable) == (
        blob,
        "bin",
        "alice",
        False,
    )
    assert (p2.payload, p2.topic) == ("text as UTF-8 ✓".encode(), "txt")

    await bob.local_participant.publish_data(
        b"\x00\x01 from python", topic="t", destination_identities=["alice"]
    )
    got = await alice.wait("data")
    assert base64.b64decode(got["payload_b64"]) == b"\x00\x01 from python"
    assert (
        got["sender"] == "bob" and got["topic"] == "t" and got["kind"] == 0
    )  # DataPacket_Kind.RELIABLE


async def test_bad_input_gets_clear_errors_before_sending(
    system: System, room_name: str, js: StartAgent, py: Any, js_dist: Path
) -> None:
    col = Collector()
    bob = await py("bob", chat=col)
    bob_data: list[Any] = []
    bob.on("data_received", bob_data.append)
    alice = await js(system.urls[0], system.token(room_name, "alice"), text_topics=["chat"])

    err = await alice.fails("send_text", text="x", topic="t" * 257)
    assert (err["name"], err["code"], err["message"]) == (
        "InvalidInput",
        "bad_topic",
        "topic of 257 bytes exceeds 256",
    )
    err = await alice.fails(
        "publish", payload_b64=base64.b64encode(b"x" * 15_361).decode(), topic="t"
    )
    assert (
        err["code"] == "data_too_large"
        and err["message"] == "data packet of 15361 bytes exceeds 15360 bytes"
    )
    err = await alice.fails("send_text", text="x", topic="chat", destinations=[""])
    assert err["code"] == "bad_frame" and "destination identities" in err["message"]
    err = await alice.fails("send_file", path=str(AGENT), name="../../etc/passwd", topic="chat")
    assert err["name"] == "UnsafeFileName" and "path separator" in err["message"]
    err = await alice.fails("register", topic="x" * 300)
    assert err["code"] == "bad_topic"
    # nothing of it reached anyone: the next valid stream is the first bob sees
    ok = await alice.call("send_text", text="valid", topic="chat")
    await col.wait_done(ok["stream_id"])
    assert [r.info.stream_id for r in col.streams] == [ok["stream_id"]] and not bob_data

    # a refused token: AuthError with the gateway's reason (Node's ws lets us read it)
    agent = await Agent.start(js_dist)
    try:
        r = await agent.result("connect", url=system.urls[0], token="not-a-token")
        assert not r["ok"] and r["error"]["name"] == "AuthError"
        assert "401" in r["error"]["message"]
        nojoin = system.token(room_name, "eve", room_join=False)
        r = await agent.result("connect", url=system.urls[0], token=nojoin)
        assert r["error"]["name"] == "AuthError" and "roomJoin" in r["error"]["message"]
    finally:
        await agent.stop()


async def test_permission_denied_without_can_publish_data(
    system: System, room_name: str, js: StartAgent
) -> None:
    alice = await js(system.urls[0], system.token(room_name, "alice", can_publish_data=False))
    err = await alice.fails("send_text", text="x", topic="chat")
    assert err["name"] == "PermissionDenied" and "canPublishData" in err["message"]
    err = await alice.fails("publish", payload="x")
    assert err["name"] == "PermissionDenied"


# ---- reconnecting --------------------------------------------------------------------------


async def test_reconnect_after_its_gateway_is_killed(
    system_factory: Callable[..., System], room_name: str, js: StartAgent, py: Any
) -> None:
    s = system_factory(gateways=2, ROOMSTREAMS_GATEWAY_TIMEOUT="2")
    async with TcpBalancer(s.ports) as lb:
        alice = await js(
            lb.url, _updater_token(room_name, "alice"), text_topics=["chat"], byte_topics=["files"]
        )
        js_port = lb.chosen[0]
        other = s.ports[1 - s.ports.index(js_port)]
        col = Collector()
        bob = await py("bob", url=f"ws://127.0.0.1:{other}", s=s, chat=col)
        attrs: asyncio.Queue[dict[str, str]] = asyncio.Queue()
        bob.on("participant_attributes_changed", lambda ch, p: attrs.put_nowait(dict(p.attributes)))
        await alice.wait("participant_connected", identity="bob")
        await alice.call("set_attributes", attributes={"status": "online"})
        assert await asyncio.wait_for(attrs.get(), 10) == {"status": "online"}
        before = await bob.local_participant.send_text("before", topic="chat")
        await alice.wait("text_done", stream_id=before.stream_id)

        # alice is mid-stream to bob when her gateway dies
        sid = (await alice.call("open_stream", topic="chat"))["stream_id"]
        await alice.call("write", stream_id=sid, text="interrupted")
        await col.wait_count(1)
        left: list[str] = []
        bob.on("participant_disconnected", lambda p: left.append(p.identity))
        lb.backends.remove(js_port)
        s.gateways[s.ports.index(js_port)].send_signal(signal.SIGKILL)

        await alice.wait("reconnecting")
        # sent while she is away: in the dead gateway's inbox, replayed when she resumes
        during = await bob.local_participant.send_text("while you were away", topic="chat")
        rec = await col.wait_done(sid, timeout=15)  # bob's reader ends, saying why
        assert isinstance(rec.error, roomstreams.StreamAborted) and rec.error.code == "sender_left"
        reconnected = await alice.wait("reconnected", timeout=30)
        assert reconnected["remote"] == ["bob"]
        assert lb.chosen[-1] == other
        got = await alice.wait("text_done", stream_id=during.stream_id)
        assert got["text"] == "while you were away"
        # she resumed her session (session resume): bob never saw her leave
        assert left == []

        # her handlers were registered again on the new gateway: both directions work
        after = await bob.local_participant.send_text("after", topic="chat")
        assert (await alice.wait("text_done", stream_id=after.stream_id))["text"] == "after"
        sent = await alice.call("send_text", text="back again", topic="chat")
        assert (await col.wait_done(sent["stream_id"])).text == "back again"
        info = await bob.local_participant.send_bytes(b"\x00bytes too", name="b.bin", topic="files")
        got = await alice.wait("bytes_done", stream_id=info.stream_id)
        assert got["sha256"] == _sha(b"\x00bytes too")
        # the same participant: what she had set of herself is still hers, nobody was told
        assert attrs.empty()
        assert bob.remote_participants["alice"].attributes == {"status": "online"}
        assert alice.all("disconnected") == []
        assert len(alice.all("text_done", stream_id=during.stream_id)) == 1  # once
        await bob.disconnect()


# ---- the README --------------------------------------------------------------------------


async def test_readme_typescript_example_runs(
    system: System, room_name: str, js_dist: Path, py: Any, tmp_path: Path
) -> None:
    """The README's ten-line example (plain JS once its import is pointed at the build) runs
    in Node against the system: a Python participant receives its message."""
    readme = (ROOT / "README.md").read_text()
    blocks = re.findall(r"```ts\n(.*?)```", readme, re.S)
    assert blocks, "README has no ts example"
    code = blocks[0]
    for old, new in (
        ("'roomstreams'", json.dumps(js_dist.as_uri())),
        ("'ws://127.0.0.1:7880'", json.dumps(system.urls[0])),
    ):
        assert old in code, f"the README example no longer contains {old}"
        code = code.replace(old, new)
    token = system.token(room_name, "alice")
    script = tmp_path / "example.mjs"
    script.write_text(f"const token = {json.dumps(token)};\n{code}\nawait room.disconnect();\n")
    col = Collector()
    await py("bob", chat=col)
    proc = await asyncio.create_subprocess_exec(
        "node", str(script), stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE
    )
    _, err = await asyncio.wait_for(proc.communicate(), 30)
    assert proc.returncode == 0, err.decode()
    rec = (await col.wait_count(1))[0]
    await rec.done.wait()
    assert (rec.identity, rec.text) == ("alice", "hello")


# ---- the Node load client ------------------------------------------------------------------


async def test_node_receivers_speak_the_w3p_protocol(
    system: System, room_name: str, js_dist: Path
) -> None:
    """shared/js/bench/receivers.mjs is a drop-in W3p receiver process: two of them (one per
    gateway, 5 receivers each) get every stamped chunk of a Python sender, in order, and
    report them with their latencies."""
    from roomstreams.bench.w3p import (
        TOPIC,
        ReceiverProcess,
        node_receivers_command,
        stamped_send,
    )

    names = [f"rx{i}" for i in range(10)]
    procs = [
        ReceiverProcess(
            gw,
            [(n, system.urls[gw], system.token(room_name, n)) for n in names[gw::2]],
            command=node_receivers_command(),
        )
        for gw in (0, 1)
    ]
    sender = roomstreams.Room()
    try:
        for p in procs:
            await p.start()
        ready = [await asyncio.wait_for(p.expect("ready"), 30) for p in procs]
        assert [r["connected"] for r in ready] == [5, 5]
        await sender.connect(system.urls[0], system.token(room_name, "tx"))
        writer = await sender.local_participant.stream_text(topic=TOPIC)
        pace = await stamped_send(writer, 200, 400.0)
        await writer.close()
        for p in procs:
            await asyncio.wait_for(p.expect("finished", writer.stream_id), 30)
        reports = [await p.report(writer.stream_id) for p in procs]
    finally:
        await sender.disconnect()
        for p in procs:
            await p.stop()
    assert pace["chunks_sent"] == 200
    receivers = {k: v for r in reports for k, v in r["receivers"].items()}
    assert sorted(receivers) == sorted(names)
    for r in receivers.values():
        assert (r["count"], r["in_order"], r["ended"], r["error"]) == (200, True, True, None)
    lat = [x for r in reports for x in memoryview(base64.b64decode(r["latencies_ns"])).cast("q")]
    assert len(lat) == 2000 and all(0 < x < 10e9 for x in lat)
    assert all(p.proc is not None and p.proc.returncode == 0 for p in procs)


# ---- participant attributes and RPC --------------------------------------------------------


def _updater_token(room: str, identity: str) -> str:
    grants = roomstreams.VideoGrants(room=room, room_join=True, can_update_own_metadata=True)
    t = roomstreams.AccessToken(API_KEY, API_SECRET).with_identity(identity).with_grants(grants)
    return t.to_jwt()


async def test_attributes_metadata_and_name_both_ways(
    system: System, room_name: str, js: StartAgent
) -> None:
    bob = roomstreams.Room()
    changes: asyncio.Queue[tuple[str, Any]] = asyncio.Queue()
    bob.on("participant_attributes_changed", lambda ch, p: changes.put_nowait((p.identity, ch)))
    bob.on(
        "participant_metadata_changed", lambda p, old, new: changes.put_nowait((p.identity, new))
    )
    bob.on("participant_name_changed", lambda p, old, new: changes.put_nowait((p.identity, new)))
    await bob.connect(system.urls[1], _updater_token(room_name, "bob"))
    try:
        alice = await js(system.urls[0], _updater_token(room_name, "alice"))
        r = await alice.call("set_attributes", attributes={"mood": "happy", "lang": "fr"})
        assert r["attributes"] == {"mood": "happy", "lang": "fr"}
        assert await asyncio.wait_for(changes.get(), 10) == (
            "alice",
            {"mood": "happy", "lang": "fr"},
        )
        await alice.call("set_attributes", attributes={"lang": ""})  # "" deletes
        assert await asyncio.wait_for(changes.get(), 10) == ("alice", {"lang": ""})
        assert bob.remote_participants["alice"].attributes == {"mood": "happy"}
        await alice.call("set_metadata", metadata='{"seat": 3}')
        assert await asyncio.wait_for(changes.get(), 10) == ("alice", '{"seat": 3}')
        await alice.call("set_name", name="Alice L.")
        assert await asyncio.wait_for(changes.get(), 10) == ("alice", "Alice L.")
        # the JS side sees its own change too, as every participant does
        own = await alice.wait("attributes_changed", identity="alice")
        assert own["changed"] == {"mood": "happy", "lang": "fr"}

        await bob.local_participant.set_attributes({"role": "host"})
        got = await alice.wait("attributes_changed", identity="bob")
        assert got["changed"] == {"role": "host"} and got["attributes"] == {"role": "host"}
        await bob.local_participant.set_metadata("busy")
        got = await alice.wait("metadata_changed", identity="bob")
        assert (got["prev"], got["metadata"]) == ("", "busy")
        await bob.local_participant.set_name("Bob B.")
        assert (await alice.wait("name_changed", identity="bob"))["name"] == "Bob B."
        state = await alice.call("participants")
        assert state["remote"]["bob"]["attributes"] == {"role": "host"}
        assert state["remote"]["bob"]["sid"].startswith("PA_") and state["room_sid"].startswith(
            "RM_"
        )
        assert state["local"]["permissions"]["canUpdateMetadata"] is True

        # without the grant: refused before sending
        carol = await js(system.urls[0], system.token(room_name, "carol"))
        err = await carol.fails("set_attributes", attributes={"x": "y"})
        assert err["name"] == "PermissionDenied" and "canUpdateOwnMetadata" in err["message"]
    finally:
        await bob.disconnect()


async def test_rpc_both_ways(system: System, room_name: str, js: StartAgent) -> None:
    bob = roomstreams.Room()

    @bob.local_participant.register_rpc_method("greet")
    async def greet(data: roomstreams.RpcInvocationData) -> str:
        return f"hello {data.caller_identity}, you said {data.payload}"

    @bob.local_participant.register_rpc_method("refuse")
    def refuse(data: roomstreams.RpcInvocationData) -> str:
        raise roomstreams.RpcError(1234, "not today", "try tomorrow")

    await bob.connect(system.urls[1], system.token(room_name, "bob"))
    try:
        alice = await js(system.urls[0], system.token(room_name, "alice"))
        r = await alice.call("perform_rpc", destination="bob", method="greet", payload="hi ✓")
        assert r["payload"] == "hello alice, you said hi ✓"
        err = await alice.fails("perform_rpc", destination="bob", method="refuse", payload="")
        assert (err["name"], err["code"], err["message"], err["data"]) == (
            "RpcError",
            1234,
            "not today",
            "try tomorrow",
        )
        err = await alice.fails("perform_rpc", destination="bob", method="nope", payload="")
        assert err["code"] == 1400
        err = await alice.fails("perform_rpc", destination="nobody", method="greet", payload="")
        assert err["code"] == 1401 and err["message"] == "Recipient not found"
        err = await alice.fails(
            "perform_rpc", destination="bob", method="greet", payload="x" * (15 * 1024 + 1)
        )
        assert err["code"] == 1402

        await alice.call("rpc_register", method="echo")
        await alice.call("rpc_register", method="fail", behaviour="error", code=1777, message="m")
        await alice.call("rpc_register", method="bug", behaviour="throw")
        await alice.call("rpc_register", method="slow", behaviour="slow", ms=3000)
        lp = bob.local_participant
        reply = await lp.perform_rpc(destination_identity="alice", method="echo", payload="ping")
        assert reply == "bob said ping"
        called = await alice.wait("rpc_called", method="echo")
        assert called["caller"] == "bob" and called["timeout"] > 0
        with pytest.raises(roomstreams.RpcError) as exc:
            await lp.perform_rpc(destination_identity="alice", method="fail", payload="")
        assert (exc.value.code, exc.value.message) == (1777, "m")
        with pytest.raises(roomstreams.RpcError) as exc:
            await lp.perform_rpc(destination_identity="alice", method="bug", payload="")
        assert exc.value.code == 1500
        with pytest.raises(roomstreams.RpcError) as exc:
            await lp.perform_rpc(
                destination_identity="alice", method="slow", payload="", response_timeout=1.5
            )
        assert exc.value.code == 1502
        # the JS callee leaves mid-call: the Python caller fails at once with 1503
        n = len(alice.events)
        call = asyncio.ensure_future(
            lp.perform_rpc(destination_identity="alice", method="slow", payload="")
        )
        await alice.wait("rpc_called", method="slow", start=n)
        await alice.call("disconnect")
        with pytest.raises(roomstreams.RpcError) as exc:
            await asyncio.wait_for(call, 10)
        assert exc.value.code == 1503
    finally:
        await bob.disconnect()


def test_bench_receivers_option_is_checked() -> None:
    """`roomstreams bench --receivers node` picks the Node receivers for W3p (run above by
    test_node_receivers_speak_the_w3p_protocol); anything else is a usage error."""
    out = subprocess.run(
        [sys.executable, "-m", "roomstreams.cli", "bench", "--receivers", "java"],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert out.returncode == 2, out.stderr
    assert "'java' is not one of 'python', 'node'" in out.stderr
    with pytest.raises(ValueError, match="receivers must be one of python, node"):
        from roomstreams.bench import run

        run("w3p", receivers="java")
