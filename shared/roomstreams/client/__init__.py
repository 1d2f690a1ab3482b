"""The asyncio client library: rooms, participants, stream readers and writers."""

from .bytestreams import ByteStreamInfo, ByteStreamReader, ByteStreamWriter
from .data import DataPacket
from .participant import LocalParticipant, RemoteParticipant
from .room import (
    ByteStreamHandler,
    ConnectionState,
    Registration,
    Room,
    TextStreamHandler,
    TokenSource,
)
from .streams import StreamState, TextStreamInfo, TextStreamReader, TextStreamWriter

__all__ = [
    "ByteStreamHandler",
    "ByteStreamInfo",
    "ByteStreamReader",
    "ByteStreamWriter",
    "ConnectionState",
    "DataPacket",
    "LocalParticipant",
    "Registration",
    "RemoteParticipant",
    "Room",
    "StreamState",
    "TextStreamHandler",
    "TextStreamInfo",
    "TextStreamReader",
    "TextStreamWriter",
    "TokenSource",
]
