"""services.gateway.wire: frames built once, the same bytes websockets' protocol sends; the
sockets with frames queued, written together."""

from __future__ import annotations

import asyncio

import pytest
from websockets.protocol import Side
from websockets.server import ServerProtocol

from services.gateway.wire import Flushes, WireFrames


def _as_protocol_sends(payload: bytes) -> bytes:
    p = ServerProtocol()
    p.state = p.state.__class__.OPEN
    p.side = Side.SERVER
    if payload[:1] == b"{":
        p.send_text(payload)
    else:
        p.send_binary(payload)
    return b"".join(p.data_to_send())


def test_frames_are_what_the_protocol_would_send() -> None:
    w = WireFrames()
    payloads = (b'{"type":"chunk"}', b"\x02\x00\x00\x02{}x", b"{" + b"x" * 200, b"\x01" * 70_000)
    for payload in payloads:
        assert w.frame(payload) == _as_protocol_sends(payload)


def test_the_same_payload_object_is_built_once_and_the_bound_holds() -> None:
    w = WireFrames(limit_bytes=1000)
    p = b'{"type":"chunk","content":"x"}'
    first = w.frame(p)
    assert w.frame(p) is first  # remembered by identity
    other = bytes(bytearray(p))  # equal, another object: built again, same bytes
    assert w.frame(other) == first and w.frame(other) is not first
    big = b"\x02" * 900
    w.frame(big)  # over the bound: what was remembered is dropped
    assert w.frame(p) is not first and w.frame(p) == first


class _Socket:
    def __init__(self, log: list[str], name: str, fail: bool = False) -> None:
        self.log, self.name, self.fail = log, name, fail

    def flush(self) -> None:
        self.log.append(self.name)
        if self.fail:
            raise RuntimeError("boom")


async def test_the_sockets_queued_in_one_turn_are_written_once_each_when_it_ends() -> None:
    log: list[str] = []
    flushes = Flushes()
    flushes.add(_Socket(log, "a"))
    flushes.add(_Socket(log, "b"))
    assert log == []  # not before the turn is over
    await asyncio.sleep(0)
    assert log == ["a", "b"]
    await asyncio.sleep(0)
    assert log == ["a", "b"]  # once


async def test_now_writes_at_once_and_the_turns_end_finds_nothing_left() -> None:
    log: list[str] = []
    flushes = Flushes()
    flushes.add(_Socket(log, "a"))
    flushes.now()
    assert log == ["a"]
    await asyncio.sleep(0)
    assert log == ["a"]
    flushes.add(_Socket(log, "b"))  # a later turn schedules again
    await asyncio.sleep(0)
    assert log == ["a", "b"]


async def test_one_socket_failing_does_not_keep_the_others_frames(
    caplog: pytest.LogCaptureFixture,
) -> None:
    log: list[str] = []
    flushes = Flushes()
    flushes.add(_Socket(log, "a", fail=True))
    flushes.add(_Socket(log, "b"))
    flushes.now()
    assert log == ["a", "b"]
    assert "writing a socket's queued frames failed" in caplog.text
