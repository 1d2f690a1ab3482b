"""WebSocket frames: what the gateway accepts from clients, and what clients parse."""

from __future__ import annotations

import json
import typing
from typing import Any

import pytest
from pydantic import BaseModel, ValidationError

from roomstreams.protocol.frames import (
    ACK_PREFIX,
    JOINED_PREFIX,
    AckFrame,
    ChunkFrame,
    ClosedFrame,
    DataAckFrame,
    DeliveredHeader,
    DeliveredRpcAck,
    DeliveredRpcRequest,
    DeliveredRpcResponse,
    DeliveredTrailer,
    ErrorFrame,
    GoAwayFrame,
    HeaderFrame,
    JoinedFrame,
    ParticipantInfo,
    ParticipantJoinedFrame,
    ParticipantLeftFrame,
    ParticipantUpdatedFrame,
    Permissions,
    RpcError,
    ServerFrame,
    SubscribeFrame,
    TrailerFrame,
    UnsubscribeFrame,
    client_frame_adapter,
    data_ack_frame,
    server_frame_adapter,
)

HEADER = {"type": "header", "stream_id": "s1", "topic": "chat", "timestamp": 1}


def parse_client(obj: dict[str, Any]) -> object:
    return client_frame_adapter.validate_json(json.dumps(obj))


# -- client -> gateway --------------------------------------------------------------------


@pytest.mark.parametrize(
    ("obj", "cls"),
    [
        ({"type": "subscribe", "topic": "chat"}, SubscribeFrame),
        ({"type": "unsubscribe", "topic": "chat", "kind": "byte", "req": 3}, UnsubscribeFrame),
        (HEADER, HeaderFrame),
        ({"type": "chunk", "stream_id": "s1", "chunk_index": 0, "content": "hé😀"}, ChunkFrame),
        ({"type": "trailer", "stream_id": "s1", "reason": "stop"}, TrailerFrame),
    ],
)
def test_client_frames_parse_to_their_class(obj: dict[str, Any], cls: type) -> None:
    frame = parse_client(obj)
    assert type(frame) is cls
    for k, v in obj.items():
        assert getattr(frame, k) == v


def test_header_defaults() -> None:
    h = parse_client(HEADER)
    assert isinstance(h, HeaderFrame)
    assert (h.kind, h.mime_type, h.total_length, h.attributes) == ("text", "text/plain", None, {})
    assert h.destination_identities == []


@pytest.mark.parametrize(
    "obj",
    [
        {"type": "bogus", "topic": "chat"},
        {"type": "joined", "room": "r", "session": "s"},  # a server frame
        {"type": "closed", "stream_id": "s1"},
        {"topic": "chat"},  # no type at all
    ],
)
def test_unknown_or_missing_type_is_rejected(obj: dict[str, Any]) -> None:
    with pytest.raises(ValidationError):
        parse_client(obj)


@pytest.mark.parametrize(
    "obj",
    [
        {**HEADER, "sender": "mallory"},  # only the gateway stamps the sender
        {"type": "trailer", "stream_id": "s1", "code": "sender_left"},  # only the system sets code
        {"type": "chunk", "stream_id": "s1", "chunk_index": 0, "content": "x", "extra": 1},
        {"type": "subscribe", "topic": "chat", "handler": "f"},
    ],
)
def test_extra_fields_are_rejected(obj: dict[str, Any]) -> None:
    with pytest.raises(ValidationError) as exc:
        parse_client(obj)
    assert any(err["type"] == "extra_forbidden" for err in exc.value.errors())


@pytest.mark.parametrize(
    "obj",
    [
        {**HEADER, "timestamp": "yesterday"},
        {**HEADER, "topic": 5},
        {**HEADER, "kind": "audio"},
        {**HEADER, "total_length": -1},
        {**HEADER, "attributes": {"a": 1}},
        {**HEADER, "destination_identities": "bob"},
        {**HEADER, "operation_type": "explode"},
        {"type": "header", "stream_id": "s1", "topic": "chat"},  # no timestamp
        {"type": "chunk", "stream_id": "s1", "chunk_index": -1, "content": "x"},
        {"type": "chunk", "stream_id": "s1", "chunk_index": 1.5, "content": "x"},
        {"type": "chunk", "stream_id": "s1", "chunk_index": 0, "content": None},
        {"type": "chunk", "stream_id": "s1", "chunk_index": 0, "content": ["x"]},
        {"type": "subscribe", "topic": "chat", "req": "one"},
        {"type": "subscribe", "topic": ["chat"]},
        {"type": "trailer", "stream_id": None},
    ],
)
def test_wrong_types_are_rejected(obj: dict[str, Any]) -> None:
    with pytest.raises(ValidationError):
        parse_client(obj)


def test_bad_json_is_rejected() -> None:
    with pytest.raises(ValidationError):
        client_frame_adapter.validate_json(b'{"type": "chunk", ')


def test_client_frames_are_immutable() -> None:
    frame = ChunkFrame(stream_id="s1", chunk_index=0, content="x")
    with pytest.raises(ValidationError):
        frame.content = "y"  # type: ignore[misc]


# -- gateway -> client --------------------------------------------------------------------

INFO = ParticipantInfo(identity="alice", name="Alice", metadata="{}", attributes={"a": "b"})
SERVER_FRAMES: list[BaseModel] = [
    JoinedFrame(
        room="demo",
        session="sess",
        participant=INFO,
        permissions=Permissions(can_publish_data=False),
        participants=[ParticipantInfo(identity="bob")],
    ),
    ParticipantJoinedFrame(participant=INFO),
    ParticipantLeftFrame(identity="alice", reason="bye"),
    AckFrame(req=0),
    DeliveredHeader(
        stream_id="s1",
        topic="chat",
        timestamp=1_700_000_000_000,
        total_length=12,
        attributes={"k": "v"},
        destination_identities=["bob"],
        reply_to_id="s0",
        generated=True,
        sender="alice",
    ),
    DeliveredHeader(
        stream_id="b1", topic="files", timestamp=0, kind="byte", name="a.bin", sender="bob"
    ),
    ChunkFrame(stream_id="s1", chunk_index=3, content='quotes " and \\ and \n and 😀'),
    DeliveredTrailer(stream_id="s1", attributes={"k": "w"}),
    DeliveredTrailer(stream_id="s1", reason="sender left", code="sender_left"),
    ClosedFrame(stream_id="s1"),
    ErrorFrame(code="unknown_stream", message="no such stream", stream_id="s9", req=4),
    ErrorFrame(code="lagged", message="lost before routing", packets=(3, 7)),
    DataAckFrame(n=12),
    GoAwayFrame(code="duplicate_identity", reason="replaced"),
    ParticipantUpdatedFrame(participant=INFO, changed_attributes={"a": "b", "gone": ""}),
    DeliveredRpcRequest(id="r1", destination="bob", method="greet", payload="hi", caller="alice"),
    DeliveredRpcAck(request_id="r1", destination="alice", sender="bob"),
    DeliveredRpcResponse(
        request_id="r1",
        destination="alice",
        error=RpcError(code=1500, message="Application error in method handler"),
        sender="bob",
    ),
]


@pytest.mark.parametrize("frame", SERVER_FRAMES, ids=lambda f: type(f).__name__)
def test_server_frames_round_trip(frame: BaseModel) -> None:
    parsed = server_frame_adapter.validate_json(frame.model_dump_json())
    assert type(parsed) is type(frame)
    assert parsed == frame


def test_every_server_frame_class_is_round_tripped() -> None:
    union = typing.get_args(ServerFrame)[0]
    classes = set(typing.get_args(union))
    assert classes == {type(f) for f in SERVER_FRAMES}


def test_server_frames_reject_extra_fields() -> None:
    with pytest.raises(ValidationError):
        server_frame_adapter.validate_python({"type": "closed", "stream_id": "s1", "x": 1})


def test_delivered_header_requires_a_sender() -> None:
    with pytest.raises(ValidationError):
        server_frame_adapter.validate_python(HEADER)


def test_serialized_joined_and_ack_frames_start_with_the_prefixes_gateways_look_for() -> None:
    frame = JoinedFrame(
        room="r",
        session="s",
        participant=ParticipantInfo(identity="alice"),
        permissions=Permissions(),
    )
    assert frame.model_dump_json().encode().startswith(JOINED_PREFIX)
    assert AckFrame(req=7).model_dump_json().encode().startswith(ACK_PREFIX)


def test_data_ack_frame_bytes_are_the_models() -> None:
    for n in (1, 70000, 2**32 - 1):
        assert data_ack_frame(n) == DataAckFrame(n=n).model_dump_json().encode()
        assert server_frame_adapter.validate_json(data_ack_frame(n)) == DataAckFrame(n=n)
