"""WebSocket frames between a participant and a gateway: pydantic models, one JSON text frame
each, discriminated by ``type``.

Field names follow LiveKit's ``DataStream.Header/Chunk/Trailer`` where they exist
(``stream_id``, ``topic``, ``timestamp``, ``total_length``, ``mime_type``, ``attributes``,
``chunk_index``, ``content``, ``reason``).

Client -> gateway: ``subscribe``, ``unsubscribe``, ``header``, ``chunk``, ``trailer``,
``update_participant``, ``rpc_request``, ``rpc_ack``, ``rpc_response``.
Gateway -> client: ``joined``, ``participant_joined``, ``participant_left``, ``ack``,
``header`` (with ``sender`` stamped by the gateway), ``chunk``, ``trailer`` (with ``code``
when the stream ended abnormally), ``closed`` (the sender's trailer was routed), ``error``,
``goaway``.

Byte-stream chunks and data packets are binary frames (first byte ``0x01``/``0x02``, never
``{``), defined in :mod:`roomstreams.protocol.binary`; byte streams use the same ``header``
and ``trailer`` frames as text streams, with ``kind="byte"`` and a ``name``.

Participant updates (LiveKit's ``set_attributes``/``set_metadata``/``set_name``)::

    client:  {"type":"update_participant","req":7,"attributes":{"k":"v"}}   (and/or name, metadata)
    all:     {"type":"participant_updated","participant":{ParticipantInfo},
              "changed_attributes":{"k":"v"}}     (to every member, the sender included)
    sender:  {"type":"ack","req":7}    or an ``error`` with that ``req``

Only with the token's ``canUpdateOwnMetadata`` grant (``permission_denied``). Attributes are
merged into the current ones; an empty value deletes the key. Limits (LiveKit's): name 256,
metadata 64000, attributes 64000 UTF-8 bytes in all (``metadata_too_large``).

RPC (LiveKit's ``perform_rpc``/``register_rpc_method``), routed like a destination-filtered
data packet, through the room log::

    caller:  {"type":"rpc_request","id":"<uuid>","destination":"bob","method":"greet",
              "payload":"...","response_timeout_ms":8000,"version":1}
    bob:     the same with "caller":"alice" (stamped by the caller's gateway)
    bob:     {"type":"rpc_ack","request_id":"<uuid>","destination":"alice"}  (at once)
    bob:     {"type":"rpc_response","request_id":"<uuid>","destination":"alice",
              "payload":"..."}  or  "error":{"code":1500,"message":"...","data":null}
    caller:  the ack and the response, with "sender":"bob"

A request to an identity that is not in the room is answered by the router with an
``rpc_response`` whose error is 1401 (recipient not found); a payload over 15360 UTF-8 bytes
by the gateway with 1402 (request) or 1504 (response). The caller times out on its own:
no ack within 7 s (1501), no response within ``response_timeout`` (1502), and fails at once
with 1503 when the destination leaves the room.
"""

from __future__ import annotations

from typing import Annotated, Final, Literal

from pydantic import BaseModel, ConfigDict, Field, TypeAdapter

__all__ = [
    "ACK_PREFIX",
    "JOINED_PREFIX",
    "AckFrame",
    "ChunkFrame",
    "ClientFrame",
    "ClosedFrame",
    "DataAckFrame",
    "DeliveredHeader",
    "DeliveredRpcAck",
    "DeliveredRpcRequest",
    "DeliveredRpcResponse",
    "DeliveredTrailer",
    "ErrorCode",
    "ErrorFrame",
    "GoAwayFrame",
    "HeaderFrame",
    "JoinedFrame",
    "ParticipantInfo",
    "ParticipantJoinedFrame",
    "ParticipantLeftFrame",
    "ParticipantUpdatedFrame",
    "Permissions",
    "RpcAckFrame",
    "RpcError",
    "RpcRequestFrame",
    "RpcResponseFrame",
    "ServerFrame",
    "StreamKind",
    "SubscribeFrame",
    "TrailerFrame",
    "UnsubscribeFrame",
    "UpdateParticipantFrame",
    "client_frame_adapter",
    "data_ack_frame",
    "server_frame_adapter",
]

StreamKind = Literal["text", "byte"]
OperationType = Literal["create", "update", "delete", "reaction"]


class ErrorCode:
    """The codes of ``error`` frames and of abnormal ``trailer`` frames."""

    BAD_JSON = "bad_json"
    BAD_ENCODING = "bad_encoding"
    BAD_FRAME = "bad_frame"
    FRAME_TOO_LARGE = "frame_too_large"
    HEADER_TOO_LARGE = "header_too_large"
    BAD_TOPIC = "bad_topic"
    UNKNOWN_STREAM = "unknown_stream"
    CHUNK_OUT_OF_ORDER = "chunk_out_of_order"
    CHUNK_TOO_LARGE = "chunk_too_large"
    BAD_UTF8 = "bad_utf8"
    STREAM_ID_IN_USE = "stream_id_in_use"
    SIZE_MISMATCH = "size_mismatch"
    PERMISSION_DENIED = "permission_denied"
    TOO_MANY_STREAMS = "too_many_streams"
    DATA_TOO_LARGE = "data_too_large"
    UNKNOWN_DESTINATION = "unknown_destination"
    # abnormal ends decided by the system rather than by a bad frame
    SENDER_LEFT = "sender_left"
    SENDER_REASON = "sender_reason"
    LAGGED = "lagged"
    SLOW_CONSUMER = "slow_consumer"
    DUPLICATE_IDENTITY = "duplicate_identity"
    REMOVED = "removed"
    ROUTER_RESTARTED = "router_restarted"
    OVERLOADED = "overloaded"
    CONNECTION_LOST = "connection_lost"
    #: a name, metadata or attributes update over LiveKit's limits
    METADATA_TOO_LARGE = "metadata_too_large"
    #: a stream over the receiver's ``DataStreamOptions.max_payload_byte_length`` (ended by
    #: the receiving client itself)
    PAYLOAD_TOO_LARGE = "payload_too_large"
    #: a bug or a malformed entry inside the system; what it concerned was rejected
    INTERNAL_ERROR = "internal_error"
    #: a connection over its limits (frames or bytes per second, open streams, pending
    #: requests); see docs/security.md
    RATE_LIMITED = "rate_limited"
    TOO_MANY_REQUESTS = "too_many_requests"
    #: session resume refused (window passed, the old inbox no longer holds the client's
    #: position, another identity, ...): the client joins afresh
    RESUME_FAILED = "resume_failed"


class _Frame(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


# ---- client -> gateway -------------------------------------------------------------------


class SubscribeFrame(_Frame):
    """Register interest in a topic (a stream handler). ``req`` is echoed in the ``ack``."""

    type: Literal["subscribe"] = "subscribe"
    kind: StreamKind = "text"
    topic: str
    req: int | None = None


class UnsubscribeFrame(_Frame):
    type: Literal["unsubscribe"] = "unsubscribe"
    kind: StreamKind = "text"
    topic: str
    req: int | None = None


class HeaderFrame(_Frame):
    """Opens a stream."""

    type: Literal["header"] = "header"
    stream_id: str
    topic: str
    timestamp: int
    kind: StreamKind = "text"
    mime_type: str = "text/plain"
    total_length: Annotated[int, Field(ge=0)] | None = None
    attributes: dict[str, str] = Field(default_factory=dict)
    destination_identities: list[str] = Field(default_factory=list)
    # text stream extras
    operation_type: OperationType = "create"
    version: int = 0
    reply_to_id: str | None = None
    attached_stream_ids: list[str] = Field(default_factory=list)
    generated: bool = False
    # byte stream extras
    name: str | None = None
    #: LiveKit's ``sender_identity``: an agent speaking for another participant (the
    #: gateway refuses it for other tokens and delivers the stream as that identity's,
    #: ``generated``)
    sender_identity: str | None = None


class ChunkFrame(_Frame):
    type: Literal["chunk"] = "chunk"
    stream_id: str
    chunk_index: Annotated[int, Field(ge=0)]
    content: str


class TrailerFrame(_Frame):
    """Closes a stream. A non-empty ``reason`` ends it abnormally with that reason."""

    type: Literal["trailer"] = "trailer"
    stream_id: str
    reason: str = ""
    attributes: dict[str, str] = Field(default_factory=dict)


class UpdateParticipantFrame(_Frame):
    """Change this participant's name, metadata and/or attributes (merged; "" deletes)."""

    type: Literal["update_participant"] = "update_participant"
    req: int | None = None
    name: str | None = None
    metadata: str | None = None
    attributes: dict[str, str] | None = None


class RpcError(_Frame):
    """An RPC failure as it travels: LiveKit's code, message and data."""

    code: int
    message: str
    data: str | None = None


class RpcRequestFrame(_Frame):
    type: Literal["rpc_request"] = "rpc_request"
    id: str
    destination: str
    method: str
    payload: str = ""
    #: what the handler may take (the caller's timeout less the round trip), milliseconds
    response_timeout_ms: Annotated[int, Field(ge=0)] = 8000
    version: int = 1


class RpcAckFrame(_Frame):
    type: Literal["rpc_ack"] = "rpc_ack"
    request_id: str
    destination: str


class RpcResponseFrame(_Frame):
    type: Literal["rpc_response"] = "rpc_response"
    request_id: str
    destination: str
    payload: str | None = None
    error: RpcError | None = None


ClientFrame = Annotated[
    SubscribeFrame
    | UnsubscribeFrame
    | HeaderFrame
    | ChunkFrame
    | TrailerFrame
    | UpdateParticipantFrame
    | RpcRequestFrame
    | RpcAckFrame
    | RpcResponseFrame,
    Field(discriminator="type"),
]
client_frame_adapter: TypeAdapter[ClientFrame] = TypeAdapter(ClientFrame)


# ---- gateway -> client -------------------------------------------------------------------


class ParticipantInfo(_Frame):
    identity: str
    name: str = ""
    metadata: str = ""
    attributes: dict[str, str] = Field(default_factory=dict)
    #: LiveKit's participant sid (``PA_`` + the session), and kind ("standard", "agent", ...)
    sid: str = ""
    kind: str = "standard"
    #: what its token grants (LiveKit's ``ParticipantInfo.permission``)
    permission: Permissions | None = None


class Permissions(_Frame):
    can_publish_data: bool = True
    can_subscribe: bool = True
    #: LiveKit's ``canUpdateOwnMetadata``: may change its own name, metadata, attributes
    can_update_metadata: bool = False
    #: LiveKit's ``hidden``: the others are not told of this participant
    hidden: bool = False


class JoinedFrame(_Frame):
    """The router has the participant in the room: the connection is ready. Serialized,
    it starts with :data:`JOINED_PREFIX` (the gateway notes it passing by)."""

    type: Literal["joined"] = "joined"
    room: str
    session: str
    participant: ParticipantInfo
    permissions: Permissions
    participants: list[ParticipantInfo] = Field(default_factory=list)
    #: LiveKit's room sid (``RM_...``), new each time the room's state is created
    room_sid: str = ""


class ParticipantJoinedFrame(_Frame):
    type: Literal["participant_joined"] = "participant_joined"
    participant: ParticipantInfo


class ParticipantLeftFrame(_Frame):
    type: Literal["participant_left"] = "participant_left"
    identity: str
    reason: str = ""


class AckFrame(_Frame):
    """A subscribe/unsubscribe is in effect at the router. Serialized, it starts with
    :data:`ACK_PREFIX`."""

    type: Literal["ack"] = "ack"
    req: int


class DeliveredHeader(HeaderFrame):
    """A header as a receiver sees it: the gateway stamped the sender's identity."""

    sender: str


class DeliveredTrailer(TrailerFrame):
    """A trailer as a receiver sees it: ``code`` is set when the system ended the stream."""

    code: str = ""


class ClosedFrame(_Frame):
    """To the sender: the router routed the stream's trailer."""

    type: Literal["closed"] = "closed"
    stream_id: str


class ErrorFrame(_Frame):
    type: Literal["error"] = "error"
    code: str
    message: str
    stream_id: str | None = None
    req: int | None = None
    #: ``[first, last]``: the sender's numbered data packets in that range failed with this
    #: error (refused by the gateway, or lost before routing: Redis restarted, lag)
    packets: tuple[int, int] | None = None


class DataAckFrame(_Frame):
    """The router routed (delivered to the recipients' gateways) the sender's numbered data
    packets up to ``n``: cumulative, one per sender and router wake-up at most."""

    type: Literal["data_ack"] = "data_ack"
    n: int


def data_ack_frame(n: int) -> bytes:
    """``DataAckFrame(n=n)`` serialized, without pydantic (one per router wake-up per
    sender on the gateway's hot path)."""
    return b'{"type":"data_ack","n":%d}' % n


class GoAwayFrame(_Frame):
    """The gateway is about to close the connection; ``reason`` says why."""

    type: Literal["goaway"] = "goaway"
    code: str
    reason: str


class ParticipantUpdatedFrame(_Frame):
    """A participant's name, metadata or attributes changed (``participant`` is its new
    info; ``changed_attributes`` the keys that changed, "" for a deleted one)."""

    type: Literal["participant_updated"] = "participant_updated"
    participant: ParticipantInfo
    changed_attributes: dict[str, str] = Field(default_factory=dict)


class DeliveredRpcRequest(RpcRequestFrame):
    #: the caller's identity, stamped by its gateway
    caller: str


class DeliveredRpcAck(RpcAckFrame):
    sender: str = ""


class DeliveredRpcResponse(RpcResponseFrame):
    #: who answered ("" when the router answered for a recipient not in the room)
    sender: str = ""


# ---- session resume (docs/reliability.md) --------------------------------------------------
# Only between the Python client and the gateway, for connections opened with ``marks=1``;
# outside the discriminated unions (the client and the gateway recognise them by prefix, on
# the hot path a mark costs no validation).


class MarkFrame(_Frame):
    """Gateway -> client: every delivery from this gateway's inbox up to entry ``at`` was
    sent before this frame. The client resumes from the last mark it got."""

    type: Literal["mark"] = "mark"
    at: str


class SeenFrame(_Frame):
    """Client -> gateway: the last mark it got (its inbox may be trimmed up to there)."""

    type: Literal["seen"] = "seen"
    at: str


class ResumeFrame(_Frame):
    """Client -> gateway, the first frame of a connection opened with ``resume=1``: resume
    ``session`` from mark ``at`` (an entry id of the inbox of the gateway named by the
    session), receiving the streams ``receiving`` (still open at the client)."""

    type: Literal["resume"] = "resume"
    session: str
    at: str
    receiving: list[str] = Field(default_factory=list)
    #: (kind, topic) of its handlers
    handlers: list[tuple[str, str]] = Field(default_factory=list)


class ResumedFrame(_Frame):
    """Gateway -> client: the replay of what the old gateway had not delivered is over;
    ``session`` is the participant's session from now on, ``at`` its first mark."""

    type: Literal["resumed"] = "resumed"
    session: str
    at: str = ""


MARK_PREFIX: Final = '{"type":"mark"'
SEEN_PREFIX: Final = b'{"type":"seen"'
RESUMED_PREFIX: Final = '{"type":"resumed"'


ServerFrame = Annotated[
    JoinedFrame
    | ParticipantJoinedFrame
    | ParticipantLeftFrame
    | AckFrame
    | DataAckFrame
    | DeliveredHeader
    | ChunkFrame
    | DeliveredTrailer
    | ClosedFrame
    | ErrorFrame
    | GoAwayFrame
    | ParticipantUpdatedFrame
    | DeliveredRpcRequest
    | DeliveredRpcAck
    | DeliveredRpcResponse,
    Field(discriminator="type"),
]
server_frame_adapter: TypeAdapter[ServerFrame] = TypeAdapter(ServerFrame)


#: how a serialized :class:`JoinedFrame` starts (``type`` is its first field)
JOINED_PREFIX: Final = b'{"type":"joined"'
#: how a serialized :class:`AckFrame` starts
ACK_PREFIX: Final = b'{"type":"ack"'
