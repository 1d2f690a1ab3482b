"""roomstreams: realtime text and byte streams, and data packets, between the participants of
a room, over Redis Streams.

import roomstreams

room = roomstreams.Room()
await room.connect("ws://127.0.0.1:7880", token)
info = await room.local_participant.send_text("hello", topic="chat")
"""

from .client import (
    ByteStreamHandler,
    ByteStreamInfo,
    ByteStreamReader,
    ByteStreamWriter,
    ConnectionState,
    DataPacket,
    DataPacketKind,
    DataStreamOptions,
    EventEmitter,
    LocalParticipant,
    Participant,
    ParticipantKind,
    ParticipantPermission,
    Registration,
    RemoteParticipant,
    Room,
    RoomOptions,
    RpcHandler,
    RpcInvocationData,
    StreamState,
    TextStreamHandler,
    TextStreamInfo,
    TextStreamReader,
    TextStreamWriter,
    TokenSource,
)
from .exceptions import (
    AuthError,
    ConnectError,
    ConnectionClosed,
    PermissionDenied,
    RoomStreamsError,
    RpcError,
    ServerError,
    StreamAborted,
    StreamClosed,
    StreamError,
    StreamSizeMismatch,
    UnsafeFileName,
)
from .token import AccessToken, Claims, VideoGrants, verify_token

__version__ = "0.1.0"

__all__ = [
    "AccessToken",
    "AuthError",
    "ByteStreamHandler",
    "ByteStreamInfo",
    "ByteStreamReader",
    "ByteStreamWriter",
    "Claims",
    "ConnectError",
    "ConnectionClosed",
    "ConnectionState",
    "DataPacket",
    "DataPacketKind",
    "DataStreamOptions",
    "EventEmitter",
    "LocalParticipant",
    "Participant",
    "ParticipantKind",
    "ParticipantPermission",
    "PermissionDenied",
    "Registration",
    "RemoteParticipant",
    "Room",
    "RoomOptions",
    "RoomStreamsError",
    "RpcError",
    "RpcHandler",
    "RpcInvocationData",
    "ServerError",
    "StreamAborted",
    "StreamClosed",
    "StreamError",
    "StreamSizeMismatch",
    "StreamState",
    "TextStreamHandler",
    "TextStreamInfo",
    "TextStreamReader",
    "TextStreamWriter",
    "TokenSource",
    "UnsafeFileName",
    "VideoGrants",
    "__version__",
    "verify_token",
]
