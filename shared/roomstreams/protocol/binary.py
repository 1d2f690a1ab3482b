"""Binary WebSocket frames: byte-stream chunks and data packets, without text encoding.

Every JSON frame of the protocol starts with ``{``. A binary frame starts with a type byte
(never ``{``), so a reader tells them apart by the first byte alone, and a gateway writes a
frame to a socket as a binary WebSocket message iff its first byte is not ``{``.

Byte chunk (``0x01``), client -> gateway, stored as-is in the room log and delivered as-is::

    0x01 | u8 len(stream_id) | stream_id (UTF-8) | u32 BE chunk_index | payload

``payload`` is at most :data:`~roomstreams.protocol.limits.MAX_CHUNK_BYTES` (15000) bytes.
The gateway checks the stream is an open byte stream of that socket and that chunk indexes
count from 0 without gaps (see ``core/outgoing.py``), exactly as for text chunks.

Data packet (``0x02``)::

    0x02 | u8 flags | [u32 BE packet number] | u16 BE len(meta) | meta (JSON) | payload

``flags`` bit 0 is ``reliable``; bit 1 (``numbered``, from a client only) says a packet
number follows: the sender wants the router's acknowledgement (a ``data_ack`` frame naming
the highest number routed, see ``frames.py``). Numbers count 1, 2, ... per connection in the
order the frames are sent; only reliable packets are numbered. The other bits are 0.
From the client, ``meta`` is :class:`DataMeta`
``{"topic": "...", "destination_identities": [...]}``; the gateway re-emits the packet for
receivers with :class:`DeliveredDataMeta`, the sender's identity (from its token) stamped as
``sender``, never numbered. ``payload`` is at most
:data:`~roomstreams.protocol.limits.MAX_DATA_BYTES` (15 KiB) bytes.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass
from typing import Final

from pydantic import BaseModel, ConfigDict, Field

from .limits import MAX_STREAM_ID_BYTES

__all__ = [
    "BYTE_CHUNK",
    "DATA_PACKET",
    "FLAG_NUMBERED",
    "FLAG_RELIABLE",
    "BadBinaryFrame",
    "ByteChunk",
    "DataMeta",
    "DataPacketFrame",
    "DeliveredDataMeta",
    "decode_byte_chunk",
    "decode_data_packet",
    "encode_byte_chunk",
    "encode_data_packet",
    "is_binary",
]

BYTE_CHUNK: Final = 0x01
DATA_PACKET: Final = 0x02
FLAG_RELIABLE: Final = 0x01
#: a u32 packet number follows the flags: the sender awaits the router's acknowledgement
FLAG_NUMBERED: Final = 0x02

_U32 = struct.Struct(">I")
_U16 = struct.Struct(">H")


class BadBinaryFrame(ValueError):
    """A binary frame that does not follow the layout above."""


def is_binary(frame: bytes) -> bool:
    """True for a frame of this module (its first byte is a known type byte)."""
    return bool(frame) and frame[0] in (BYTE_CHUNK, DATA_PACKET)


# ---- byte chunks -------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class ByteChunk:
    stream_id: str
    chunk_index: int
    payload: bytes


def encode_byte_chunk(stream_id: str, chunk_index: int, payload: bytes | memoryview) -> bytes:
    sid = stream_id.encode("utf-8")
    if not 0 < len(sid) <= min(255, MAX_STREAM_ID_BYTES):
        raise ValueError(f"stream id must be 1 to {MAX_STREAM_ID_BYTES} UTF-8 bytes")
    return b"".join((bytes((BYTE_CHUNK, len(sid))), sid, _U32.pack(chunk_index), payload))


def decode_byte_chunk(frame: bytes) -> ByteChunk:
    """Parse a byte chunk frame; :class:`BadBinaryFrame` when it is malformed."""
    if len(frame) < 2 or frame[0] != BYTE_CHUNK:
        raise BadBinaryFrame("not a byte chunk frame")
    n = frame[1]
    end = 2 + n
    if n == 0 or len(frame) < end + 4:
        raise BadBinaryFrame("byte chunk frame too short for its stream id and chunk index")
    try:
        sid = frame[2:end].decode("utf-8")
    except UnicodeDecodeError:
        raise BadBinaryFrame("byte chunk stream id is not valid UTF-8") from None
    (index,) = _U32.unpack_from(frame, end)
    return ByteChunk(sid, index, frame[end + 4 :])


# ---- data packets ------------------------------------------------------------------------


class DataMeta(BaseModel):
    """The JSON meta of a data packet as a client sends it."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    topic: str = ""
    destination_identities: list[str] = Field(default_factory=list)


class DeliveredDataMeta(DataMeta):
    """The meta as a receiver sees it: the gateway stamped the sender's identity."""

    sender: str


@dataclass(frozen=True, slots=True)
class DataPacketFrame:
    flags: int
    meta: bytes
    payload: bytes
    #: the sender's packet number (0: not numbered, no acknowledgement wanted)
    number: int = 0

    @property
    def reliable(self) -> bool:
        return bool(self.flags & FLAG_RELIABLE)


def encode_data_packet(
    meta: bytes, payload: bytes, *, reliable: bool = True, number: int = 0
) -> bytes:
    """``number`` > 0 numbers the packet (a client's reliable packet awaiting its ack)."""
    if len(meta) > 0xFFFF:
        raise ValueError("data packet meta longer than 65535 bytes")
    flags = FLAG_RELIABLE if reliable else 0
    if number:
        if not 0 < number <= 0xFFFFFFFF:
            raise ValueError("data packet number out of range")
        head = bytes((DATA_PACKET, flags | FLAG_NUMBERED)) + _U32.pack(number)
    else:
        head = bytes((DATA_PACKET, flags))
    return b"".join((head, _U16.pack(len(meta)), meta, payload))


def decode_data_packet(frame: bytes) -> DataPacketFrame:
    """Split a data packet frame (the meta is not parsed); :class:`BadBinaryFrame` when it
    is malformed."""
    if len(frame) < 4 or frame[0] != DATA_PACKET:
        raise BadBinaryFrame("data packet frame too short")
    flags = frame[1]
    if flags & ~(FLAG_RELIABLE | FLAG_NUMBERED):
        raise BadBinaryFrame(f"unknown data packet flags 0x{flags:02x}")
    at, number = 2, 0
    if flags & FLAG_NUMBERED:
        if len(frame) < 8:
            raise BadBinaryFrame("data packet frame too short for its number")
        (number,) = _U32.unpack_from(frame, 2)
        if number == 0:
            raise BadBinaryFrame("data packet number 0 (numbers start at 1)")
        at = 6
    (n,) = _U16.unpack_from(frame, at)
    start = at + 2
    if len(frame) < start + n:
        raise BadBinaryFrame("data packet frame too short for its meta")
    return DataPacketFrame(
        flags, frame[start : start + n], frame[start + n :], number
    )
