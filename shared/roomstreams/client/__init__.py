"""The asyncio client library: rooms, participants, stream readers and writers."""

from .bytestreams import ByteStreamInfo, ByteStreamReader, ByteStreamWriter
from .connection import ConnectionState
from .data import DataPacket, DataPacketKind
from .events import EventEmitter
from .participant import (
    LocalParticipant,
    Participant,
    ParticipantKind,
    ParticipantPermission,
    RemoteParticipant,
)
from .room import (
    ByteStreamHandler,
    DataStreamOptions,
    Registration,
    Room,
    RoomOptions,
    TextStreamHandler,
    TokenSource,
)
from .rpc import RpcHandler, RpcInvocationData
from .streams import StreamState, TextStreamInfo, TextStreamReader, TextStreamWriter

__all__ = [
    "ByteStreamHandler",
    "ByteStreamInfo",
    "ByteStreamReader",
    "ByteStreamWriter",
    "ConnectionState",
    "DataPacket",
    "DataPacketKind",
    "DataStreamOptions",
    "EventEmitter",
    "LocalParticipant",
    "Participant",
    "ParticipantKind",
    "ParticipantPermission",
    "Registration",
    "RemoteParticipant",
    "Room",
    "RoomOptions",
    "RpcHandler",
    "RpcInvocationData",
    "StreamState",
    "TextStreamHandler",
    "TextStreamInfo",
    "TextStreamReader",
    "TextStreamWriter",
    "TokenSource",
]
