"""Participants: the local one (who sends) and the remote ones (who are in the room)."""

from __future__ import annotations

import time
import uuid
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from ..exceptions import PermissionDenied
from ..protocol.chunking import utf8_len
from ..protocol.frames import HeaderFrame
from .streams import TextStreamInfo, TextStreamWriter

if TYPE_CHECKING:
    from .room import Room

__all__ = ["LocalParticipant", "RemoteParticipant"]


@dataclass(slots=True)
class RemoteParticipant:
    identity: str
    name: str = ""
    metadata: str = ""
    attributes: dict[str, str] = field(default_factory=dict)


class LocalParticipant:
    """This connection's participant: ``send_text`` and ``stream_text``."""

    def __init__(self, room: Room) -> None:
        self._room = room
        self.identity = ""
        self.name = ""
        self.metadata = ""
        self.attributes: dict[str, str] = {}
        self.can_publish_data = True
        self.can_subscribe = True

    async def stream_text(
        self,
        *,
        topic: str,
        destination_identities: list[str] | None = None,
        attributes: dict[str, str] | None = None,
        total_size: int | None = None,
        stream_id: str | None = None,
        reply_to_id: str | None = None,
        operation_type: str = "create",
        version: int = 0,
        generated: bool = False,
        attached_stream_ids: list[str] | None = None,
    ) -> TextStreamWriter:
        """Open a text stream. Write to it, then close it: receivers' readers end only then."""
        room = self._room
        room._ensure_connected()
        if not self.can_publish_data:
            raise PermissionDenied("this token does not allow publishing data (canPublishData)")
        info = TextStreamInfo(
            stream_id=stream_id or str(uuid.uuid4()),
            topic=topic,
            timestamp=int(time.time() * 1000),
            size=total_size,
            attributes=dict(attributes or {}),
            destination_identities=list(destination_identities or []),
            operation_type=operation_type,
            version=version,
            reply_to_id=reply_to_id,
            attached_stream_ids=list(attached_stream_ids or []),
            generated=generated,
        )
        header = HeaderFrame(
            stream_id=info.stream_id,
            topic=topic,
            timestamp=info.timestamp,
            total_length=total_size,
            attributes=info.attributes,
            destination_identities=info.destination_identities,
            operation_type=operation_type,
            version=version,
            reply_to_id=reply_to_id,
            attached_stream_ids=info.attached_stream_ids,
            generated=generated,
        )
        writer = TextStreamWriter(room, info, room._send)
        room._writers[info.stream_id] = writer
        try:
            await room._send(header.model_dump_json())
        except BaseException:
            room._forget_writer(info.stream_id)
            raise
        return writer

    async def send_text(
        self,
        text: str,
        *,
        topic: str,
        destination_identities: list[str] | None = None,
        attributes: dict[str, str] | None = None,
        reply_to_id: str | None = None,
    ) -> TextStreamInfo:
        """Send a whole text (any size: it is chunked) as one stream; returns its info once
        the router has routed its end."""
        writer = await self.stream_text(
            topic=topic,
            destination_identities=destination_identities,
            attributes=attributes,
            total_size=utf8_len(text),
            reply_to_id=reply_to_id,
        )
        async with writer:
            await writer.write(text)
        return writer.info
