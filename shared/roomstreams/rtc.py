"""LiveKit's ``livekit.rtc`` names for what roomstreams has: code written for LiveKit's data
features changes ``from livekit import rtc`` to ``from roomstreams import rtc`` (and its URL and
token) and runs as it is. See docs/livekit.md for what each name does here, and what is not
here (media).

::

    from roomstreams import rtc

    room = rtc.Room()
    room.register_text_stream_handler("chat", handler)
    await room.connect(url, token, rtc.RoomOptions())
"""

from __future__ import annotations

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
    RemoteParticipant,
    Room,
    RoomOptions,
    RpcInvocationData,
    TextStreamHandler,
    TextStreamInfo,
    TextStreamReader,
    TextStreamWriter,
)
from .client.room import EventTypes
from .exceptions import ConnectError, RpcError, StreamError

__all__ = [
    "ByteStreamHandler",
    "ByteStreamInfo",
    "ByteStreamReader",
    "ByteStreamWriter",
    "ConnectError",
    "ConnectionState",
    "DataPacket",
    "DataPacketKind",
    "DataStreamOptions",
    "EventEmitter",
    "EventTypes",
    "LocalParticipant",
    "Participant",
    "ParticipantKind",
    "ParticipantPermission",
    "RemoteParticipant",
    "Room",
    "RoomOptions",
    "RpcError",
    "RpcInvocationData",
    "StreamError",
    "TextStreamHandler",
    "TextStreamInfo",
    "TextStreamReader",
    "TextStreamWriter",
]
