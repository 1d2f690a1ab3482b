"""The asyncio client library: rooms, participants, stream readers and writers."""

from .participant import LocalParticipant, RemoteParticipant
from .room import ConnectionState, Registration, Room, TextStreamHandler
from .streams import StreamState, TextStreamInfo, TextStreamReader, TextStreamWriter

__all__ = [
    "ConnectionState",
    "LocalParticipant",
    "Registration",
    "RemoteParticipant",
    "Room",
    "StreamState",
    "TextStreamHandler",
    "TextStreamInfo",
    "TextStreamReader",
    "TextStreamWriter",
]
