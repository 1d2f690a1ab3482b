"""services.gateway.wire: frames built once, the same bytes websockets' protocol sends."""

from __future__ import annotations

from websockets.protocol import Side
from websockets.server import ServerProtocol

from services.gateway.wire import WireFrames


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
