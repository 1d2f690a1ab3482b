"""Helpers for byte-stream and data-packet tests: a byte stream collector, and a raw client
that also understands binary frames (byte chunks, data packets)."""

from __future__ import annotations

import asyncio
import json
from dataclasses import dataclass, field
from typing import Any

import roomstreams
from roomstreams.protocol.binary import (
    BYTE_CHUNK,
    DataMeta,
    decode_byte_chunk,
    decode_data_packet,
    encode_data_packet,
    is_binary,
)

from .helpers import RawClient, StreamCollector


@dataclass
class ReceivedBytes:
    identity: str
    reader: roomstreams.ByteStreamReader
    chunks: list[bytes] = field(default_factory=list)
    error: BaseException | None = None
    done: asyncio.Event = field(default_factory=asyncio.Event)

    @property
    def info(self) -> roomstreams.ByteStreamInfo:
        return self.reader.info

    @property
    def data(self) -> bytes:
        return b"".join(self.chunks)


class ByteCollector(StreamCollector[ReceivedBytes]):
    """A byte stream handler that records every stream and its chunks."""

    async def __call__(self, reader: roomstreams.ByteStreamReader, identity: str) -> None:
        rec = ReceivedBytes(identity, reader)
        await self._opened_stream(reader.info.stream_id, rec)
        try:
            async for chunk in reader:
                assert isinstance(chunk, bytes)
                rec.chunks.append(chunk)
        except roomstreams.StreamAborted as exc:
            rec.error = exc
        rec.done.set()


class BinRawClient(RawClient):
    """A raw participant whose received binary frames are decoded into dicts:
    ``{"type": "byte_chunk", "stream_id", "chunk_index", "payload", "raw"}`` and
    ``{"type": "data", "meta", "payload", "reliable", "raw"}``. ``binary`` records whether
    each received WebSocket message was a binary one."""

    def __init__(self, ws: Any) -> None:
        super().__init__(ws)
        self.binary: list[bool] = []

    def decode(self, msg: str | bytes) -> dict[str, Any]:
        self.binary.append(isinstance(msg, bytes))
        f: dict[str, Any]
        if isinstance(msg, bytes) and is_binary(msg):
            if msg[0] == BYTE_CHUNK:
                c = decode_byte_chunk(msg)
                f = {
                    "type": "byte_chunk",
                    "stream_id": c.stream_id,
                    "chunk_index": c.chunk_index,
                    "payload": c.payload,
                    "raw": msg,
                }
            else:
                p = decode_data_packet(msg)
                f = {
                    "type": "data",
                    "meta": json.loads(p.meta),
                    "payload": p.payload,
                    "reliable": p.reliable,
                    "raw": msg,
                }
        else:
            f = json.loads(msg)
            f["_binary_message"] = isinstance(msg, bytes)
        return f

    async def send_data(
        self,
        payload: bytes,
        *,
        topic: str = "",
        destination_identities: list[str] | None = None,
        reliable: bool = True,
    ) -> None:
        meta = DataMeta(topic=topic, destination_identities=destination_identities or [])
        await self.ws.send(
            encode_data_packet(meta.model_dump_json().encode(), payload, reliable=reliable)
        )

    def errors(self) -> list[str]:
        return [str(f["code"]) for f in self.frames if f.get("type") == "error"]
