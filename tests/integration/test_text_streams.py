"""The spec's behaviours, end to end through real gateways, router and Redis."""

from __future__ import annotations

import asyncio
import time
from typing import Any

import pytest

import roomstreams
from roomstreams.client.streams import StreamReaderBase
from roomstreams.protocol.limits import MAX_CHUNK_BYTES

from .helpers import Collector, RawClient


async def test_send_text_reaches_handler_on_other_gateway(connect: Any) -> None:
    col = Collector()
    bob = await connect("bob", gateway=1, handlers={"chat": col})
    alice = await connect("alice", gateway=0)
    before = int(time.time() * 1000)
    info = await alice.local_participant.send_text(
        "hello bob", topic="chat", attributes={"lang": "en"}
    )
    rec = await col.wait_done(info.stream_id)
    assert rec.identity == "alice"
    assert rec.text == "hello bob"
    assert rec.error is None
    assert rec.info.id == info.id == info.stream_id
    assert rec.info.topic == "chat"
    assert rec.info.size == len(b"hello bob")
    assert rec.info.attributes == {"lang": "en"}
    assert rec.info.mime_type == "text/plain"
    assert before <= rec.info.timestamp <= int(time.time() * 1000)
    assert bob.remote_participants.keys() == {"alice"}


async def test_send_text_is_chunked_without_splitting_characters(connect: Any) -> None:
    col = Collector()
    await connect("bob", handlers={"chat": col})
    alice = await connect("alice", gateway=1)
    text = ("añ€😀" * 60_000)[:200_001]  # 1-, 2-, 3- and 4-byte characters, ~600 KB
    info = await alice.local_participant.send_text(text, topic="chat")
    rec = await col.wait_done(info.stream_id)
    assert rec.text == text
    assert info.size == rec.info.size == len(text.encode())
    assert len(rec.chunks) > 1
    assert all(0 < len(c.encode()) <= MAX_CHUNK_BYTES for c in rec.chunks)


async def test_stream_text_yields_chunks_as_written(connect: Any) -> None:
    col = Collector()
    await connect("bob", gateway=1, handlers={"chat": col})
    alice = await connect("alice")
    parts = ["Lorem ", "ipsum ", "dolor ", "sit ", "amet..."]
    writer = await alice.local_participant.stream_text(topic="chat")
    for p in parts:
        await writer.write(p)
    await writer.close()
    rec = await col.wait_done(writer.stream_id)
    assert rec.chunks == parts
    assert rec.info.size is None
    with pytest.raises(roomstreams.StreamClosed):
        await writer.write("more")
    with pytest.raises(RuntimeError):  # closing twice raises, as in LiveKit
        await writer.close()


async def test_read_all_returns_whole_text(connect: Any) -> None:
    got: asyncio.Queue[tuple[str, str]] = asyncio.Queue()

    async def handler(reader: roomstreams.TextStreamReader, identity: str) -> None:
        await got.put((identity, await reader.read_all()))

    await connect("bob", handlers={"chat": handler})
    alice = await connect("alice", gateway=1)
    await alice.local_participant.send_text("x" * 40_000, topic="chat")
    assert await asyncio.wait_for(got.get(), 5) == ("alice", "x" * 40_000)


async def test_plain_function_handler(connect: Any) -> None:
    seen: asyncio.Queue[str] = asyncio.Queue()

    def handler(reader: roomstreams.TextStreamReader, identity: str) -> None:
        seen.put_nowait(f"{identity}:{reader.info.topic}")

    await connect("bob", handlers={"chat": handler})
    alice = await connect("alice")
    await alice.local_participant.send_text("hi", topic="chat")
    assert await asyncio.wait_for(seen.get(), 5) == "alice:chat"


async def test_total_size_too_few_bytes_ends_abnormally(connect: Any) -> None:
    col = Collector()
    await connect("bob", handlers={"chat": col})
    alice = await connect("alice", gateway=1)
    writer = await alice.local_participant.stream_text(topic="chat", total_size=10)
    await writer.write("12345")
    with pytest.raises(roomstreams.StreamSizeMismatch):
        await writer.close()
    rec = await col.wait_done(writer.stream_id)
    assert isinstance(rec.error, roomstreams.StreamAborted)
    assert rec.error.code == "size_mismatch"
    assert rec.info.size == 10


async def test_total_size_too_many_bytes_ends_abnormally(connect: Any) -> None:
    col = Collector()
    await connect("bob", handlers={"chat": col})
    alice = await connect("alice", gateway=1)
    writer = await alice.local_participant.stream_text(topic="chat", total_size=3)
    await writer.write("12345")
    rec = await col.wait_done(writer.stream_id)
    assert isinstance(rec.error, roomstreams.StreamAborted)
    assert rec.error.code == "size_mismatch"
    with pytest.raises(roomstreams.StreamSizeMismatch):
        await writer.close()


async def test_destination_identities_filter_at_the_server(
    connect: Any, system: Any, room_name: str
) -> None:
    col = Collector()
    await connect("bob", handlers={"chat": col})
    carol = await RawClient.connect(system.urls[1], system.token(room_name, "carol"))
    await carol.subscribe("chat")
    alice = await connect("alice", gateway=1)
    private = await alice.local_participant.send_text(
        "for bob only", topic="chat", destination_identities=["bob"]
    )
    public = await alice.local_participant.send_text("for all", topic="chat")
    assert (await col.wait_done(private.stream_id)).text == "for bob only"
    # carol's socket sees the public stream and never any frame of the private one
    header = await carol.expect("header")
    assert header["stream_id"] == public.stream_id
    await carol.expect("trailer", stream_id=public.stream_id)
    assert all(f.get("stream_id") != private.stream_id for f in carol.frames)
    await carol.close()


async def test_sender_never_receives_its_own_stream(connect: Any) -> None:
    a_col, b_col = Collector(), Collector()
    alice = await connect("alice", handlers={"chat": a_col})
    bob = await connect("bob", gateway=1, handlers={"chat": b_col})
    own = await alice.local_participant.send_text("mine", topic="chat")
    await b_col.wait_done(own.stream_id)
    barrier = await bob.local_participant.send_text("barrier", topic="chat")
    await a_col.wait_done(barrier.stream_id)
    assert [r.info.stream_id for r in a_col.streams] == [barrier.stream_id]


async def test_topic_routing_and_no_replay_for_late_handlers(connect: Any) -> None:
    col_a, col_b = Collector(), Collector()
    bob = await connect("bob", handlers={"a": col_a})
    alice = await connect("alice", gateway=1)
    early_b = await alice.local_participant.send_text("early b", topic="b")
    on_a = await alice.local_participant.send_text("on a", topic="a")
    await col_a.wait_done(on_a.stream_id)
    await bob.register_text_stream_handler("b", col_b)  # exact: in effect when awaited
    late_b = await alice.local_participant.send_text("late b", topic="b")
    await col_b.wait_done(late_b.stream_id)
    assert [r.info.stream_id for r in col_b.streams] == [late_b.stream_id]
    assert early_b.stream_id not in col_a.by_id
    await bob.unregister_text_stream_handler("b")
    gone = await alice.local_participant.send_text("after unregister", topic="b")
    barrier = await alice.local_participant.send_text("barrier", topic="a")
    await col_a.wait_done(barrier.stream_id)
    assert gone.stream_id not in col_b.by_id


async def test_no_handler_means_nothing_delivered_and_nothing_fails(connect: Any) -> None:
    await connect("bob")
    alice = await connect("alice", gateway=1)
    info = await alice.local_participant.send_text("into the void", topic="nobody")
    assert info.stream_id


async def test_second_handler_for_topic_raises(connect: Any) -> None:
    bob = await connect("bob", handlers={"chat": Collector()})
    with pytest.raises(ValueError, match="chat"):
        bob.register_text_stream_handler("chat", Collector())
    await bob.unregister_text_stream_handler("chat")
    await bob.register_text_stream_handler("chat", Collector())


async def test_handler_and_close_order_follow_the_sender(
    connect: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    # The spec's close order is the order readers are *closed* (their end recorded), which
    # the client does in trailer order; handler tasks may then finish in any order, and
    # may even start after their stream ended. So record the ends where they happen.
    closed_order: list[str] = []
    end = StreamReaderBase._end

    def recording_end(reader: Any, *args: Any, **kwargs: Any) -> None:
        if not reader.closed:
            closed_order.append(reader.info.stream_id)
        end(reader, *args, **kwargs)

    monkeypatch.setattr(StreamReaderBase, "_end", recording_end)
    col = Collector()
    await connect("bob", gateway=1, handlers={"chat": col})
    alice = await connect("alice")
    lp = alice.local_participant
    w1 = await lp.stream_text(topic="chat")
    w2 = await lp.stream_text(topic="chat")
    w3 = await lp.stream_text(topic="chat")
    for i in range(5):
        for w in (w3, w1, w2):
            await w.write(f"{w.stream_id[:4]}-{i};")
    await w2.close()
    await w3.close()
    await w1.close()
    for w in (w1, w2, w3):
        await col.wait_done(w.stream_id)
    assert [r.info.stream_id for r in col.streams] == [w1.stream_id, w2.stream_id, w3.stream_id]
    assert closed_order == [w2.stream_id, w3.stream_id, w1.stream_id]
    for w in (w1, w2, w3):
        assert col.by_id[w.stream_id].text == "".join(f"{w.stream_id[:4]}-{i};" for i in range(5))


async def test_many_concurrent_streams_from_many_senders(connect: Any) -> None:
    col = Collector()
    await connect("bob", handlers={"chat": col})
    senders = [await connect(f"s{i}", gateway=i % 2) for i in range(4)]

    async def send(room: roomstreams.Room, n: int) -> list[str]:
        writers = [await room.local_participant.stream_text(topic="chat") for _ in range(n)]
        for i in range(20):
            await asyncio.gather(*(w.write(f"{w.stream_id}:{i}|") for w in writers))
        for w in writers:
            await w.close()
        return [w.stream_id for w in writers]

    results = await asyncio.gather(*(send(s, 5) for s in senders))
    for ids in results:
        for sid in ids:
            rec = await col.wait_done(sid)
            assert rec.text == "".join(f"{sid}:{i}|" for i in range(20))
        # per sender, handlers ran in the order that sender opened its streams
        order = [r.info.stream_id for r in col.streams if r.info.stream_id in ids]
        assert order == ids


async def test_late_joiner_gets_nothing_of_an_open_stream(connect: Any) -> None:
    bob_col, carol_col = Collector(), Collector()
    await connect("bob", handlers={"chat": bob_col})
    alice = await connect("alice", gateway=1)
    writer = await alice.local_participant.stream_text(topic="chat")
    await writer.write("before carol ")
    await bob_col.wait_count(1)  # the header has been routed
    await connect("carol", handlers={"chat": carol_col})
    await writer.write("after carol")
    await writer.close()
    assert (await bob_col.wait_done(writer.stream_id)).text == "before carol after carol"
    nxt = await alice.local_participant.send_text("next", topic="chat")
    assert (await carol_col.wait_done(nxt.stream_id)).text == "next"
    assert [r.info.stream_id for r in carol_col.streams] == [nxt.stream_id]


async def test_sender_leaving_mid_stream_ends_it_abnormally(connect: Any) -> None:
    col = Collector()
    await connect("bob", handlers={"chat": col})
    alice = await connect("alice", gateway=1)
    carol = await connect("carol", gateway=1)
    a_w = await alice.local_participant.stream_text(topic="chat")
    c_w = await carol.local_participant.stream_text(topic="chat")
    await a_w.write("half")
    await c_w.write("carol goes on ")
    await col.wait_count(2)
    t0 = time.monotonic()
    await alice.disconnect()
    rec = await col.wait_done(a_w.stream_id, timeout=2.0)
    assert time.monotonic() - t0 < 2.0
    assert isinstance(rec.error, roomstreams.StreamAborted)
    assert rec.error.code == "sender_left"
    assert "alice" in str(rec.error)
    assert rec.text == "half"
    await c_w.write("and finishes")
    await c_w.close()
    other = await col.wait_done(c_w.stream_id)
    assert other.error is None and other.text == "carol goes on and finishes"


async def test_sender_connection_dying_ends_its_streams(connect: Any) -> None:
    col = Collector()
    await connect("bob", handlers={"chat": col})
    alice = await connect("alice", gateway=1)
    w = await alice.local_participant.stream_text(topic="chat")
    await w.write("partial")
    await col.wait_count(1)
    assert alice._conn.ws is not None
    alice._conn.ws.transport.abort()  # no close frame: the gateway sees the TCP connection die
    rec = await col.wait_done(w.stream_id, timeout=3.0)
    assert isinstance(rec.error, roomstreams.StreamAborted)
    assert rec.error.code == "sender_left" and "alice" in str(rec.error)


async def test_trailer_attributes_merge_and_close_reason(connect: Any) -> None:
    col = Collector()
    await connect("bob", handlers={"chat": col})
    alice = await connect("alice", gateway=1)
    w = await alice.local_participant.stream_text(topic="chat", attributes={"a": "1", "b": "1"})
    await w.write("x")
    await w.close(attributes={"b": "2", "c": "3"})
    rec = await col.wait_done(w.stream_id)
    assert rec.error is None
    assert rec.info.attributes == {"a": "1", "b": "2", "c": "3"}
    w2 = await alice.local_participant.stream_text(topic="chat")
    await w2.write("y")
    await w2.close(reason="generation cancelled")
    rec2 = await col.wait_done(w2.stream_id)
    assert isinstance(rec2.error, roomstreams.StreamAborted)
    assert rec2.error.reason == "generation cancelled"


async def test_writer_context_manager_aborts_when_body_raises(connect: Any) -> None:
    col = Collector()
    await connect("bob", handlers={"chat": col})
    alice = await connect("alice", gateway=1)
    with pytest.raises(RuntimeError):
        async with await alice.local_participant.stream_text(topic="chat") as w:
            await w.write("start")
            raise RuntimeError("llm crashed")
    rec = await col.wait_done(w.stream_id)
    assert isinstance(rec.error, roomstreams.StreamAborted)
    assert "llm crashed" in rec.error.reason


async def test_participant_events(connect: Any) -> None:
    bob = await connect("bob")
    joined: asyncio.Queue[str] = asyncio.Queue()
    left: asyncio.Queue[str] = asyncio.Queue()
    bob.on("participant_connected", lambda p: joined.put_nowait(p.identity))
    bob.on("participant_disconnected", lambda p: left.put_nowait(p.identity))
    alice = await connect("alice", gateway=1)
    assert await asyncio.wait_for(joined.get(), 5) == "alice"
    assert "alice" in bob.remote_participants
    assert alice.remote_participants.keys() == {"bob"}
    assert alice.local_participant.identity == "alice"
    await alice.disconnect()
    assert await asyncio.wait_for(left.get(), 5) == "alice"
    assert "alice" not in bob.remote_participants


async def test_can_subscribe_false_receives_nothing(connect: Any) -> None:
    mute, col = Collector(), Collector()
    await connect("mute", handlers={"chat": mute}, can_subscribe=False)
    await connect("bob", handlers={"chat": col})
    alice = await connect("alice", gateway=1)
    info = await alice.local_participant.send_text("hello", topic="chat")
    await col.wait_done(info.stream_id)
    assert mute.streams == []


async def test_can_publish_data_false_refuses_sends(connect: Any) -> None:
    quiet = await connect("quiet", can_publish_data=False)
    with pytest.raises(roomstreams.PermissionDenied):
        await quiet.local_participant.send_text("hi", topic="chat")
    with pytest.raises(roomstreams.PermissionDenied):
        await quiet.local_participant.stream_text(topic="chat")


async def test_concurrent_writes_on_one_writer_are_serialized(connect: Any) -> None:
    col = Collector()
    await connect("bob", handlers={"chat": col})
    alice = await connect("alice", gateway=1)
    w = await alice.local_participant.stream_text(topic="chat")
    blocks = [letter * 40_000 for letter in "abcde"]  # three chunks each
    await asyncio.gather(*(w.write(b) for b in blocks))
    await w.close()
    rec = await col.wait_done(w.stream_id)
    # each write's chunks are contiguous: the text is the blocks, whole, in some order
    text = rec.text
    got = [text[i : i + 40_000] for i in range(0, len(text), 40_000)]
    assert sorted(got) == blocks
