"""Participants: the local one (who sends) and the remote ones (who are in the room)."""

from __future__ import annotations

import asyncio
import contextlib
import enum
import os
import time
import uuid
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ..exceptions import PermissionDenied
from ..protocol.chunking import utf8_len
from ..protocol.frames import HeaderFrame, ParticipantInfo, Permissions, UpdateParticipantFrame
from . import bytestreams, data
from .bytestreams import DEFAULT_MIME_TYPE, ByteStreamInfo, ByteStreamWriter
from .rpc import H, Rpcs
from .streams import StreamState, TextStreamInfo, TextStreamWriter

if TYPE_CHECKING:
    from .connection import Connection

__all__ = [
    "LocalParticipant",
    "Participant",
    "ParticipantKind",
    "ParticipantPermission",
    "RemoteParticipant",
]


class ParticipantKind(enum.IntEnum):
    """LiveKit's ``ParticipantKind`` (same names and values), from the token's ``kind``
    claim (or its ``agent`` grant)."""

    PARTICIPANT_KIND_STANDARD = 0
    PARTICIPANT_KIND_INGRESS = 1
    PARTICIPANT_KIND_EGRESS = 2
    PARTICIPANT_KIND_SIP = 3
    PARTICIPANT_KIND_AGENT = 4
    # short names
    STANDARD = 0
    INGRESS = 1
    EGRESS = 2
    SIP = 3
    AGENT = 4

    @classmethod
    def from_claim(cls, kind: str) -> ParticipantKind:
        return cls.__members__.get(kind.upper(), cls.STANDARD)


@dataclass(slots=True)
class ParticipantPermission:
    """What a participant's token grants (LiveKit's ``ParticipantPermission``; no media
    here, so ``can_publish`` is always False)."""

    can_subscribe: bool = True
    can_publish_data: bool = True
    can_update_metadata: bool = False
    hidden: bool = False
    can_publish: bool = False

    @classmethod
    def from_frame(cls, p: Permissions | None) -> ParticipantPermission:
        if p is None:
            return cls()
        return cls(
            can_subscribe=p.can_subscribe,
            can_publish_data=p.can_publish_data,
            can_update_metadata=p.can_update_metadata,
            hidden=p.hidden,
        )


class Participant:
    """What local and remote participants share (LiveKit's ``Participant``)."""

    identity: str
    name: str
    metadata: str
    attributes: dict[str, str]
    sid: str
    kind: ParticipantKind
    permissions: ParticipantPermission

    def _apply(self, info: ParticipantInfo) -> None:
        self.identity, self.name, self.metadata = info.identity, info.name, info.metadata
        self.attributes = dict(info.attributes)
        self.sid = info.sid
        self.kind = ParticipantKind.from_claim(info.kind)
        self.permissions = ParticipantPermission.from_frame(info.permission)


@dataclass(slots=True, eq=False)
class RemoteParticipant(Participant):
    identity: str
    name: str = ""
    metadata: str = ""
    attributes: dict[str, str] = field(default_factory=dict)
    sid: str = ""
    kind: ParticipantKind = ParticipantKind.STANDARD
    permissions: ParticipantPermission = field(default_factory=ParticipantPermission)

    @classmethod
    def from_info(cls, info: ParticipantInfo) -> RemoteParticipant:
        p = cls(identity=info.identity)
        p._apply(info)
        return p


class LocalParticipant(Participant):
    """This connection's participant: ``send_text``/``stream_text``,
    ``send_file``/``send_bytes``/``stream_bytes`` and ``publish_data``."""

    def __init__(self, conn: Connection) -> None:
        self._conn = conn
        self.identity = ""
        self.name = ""
        self.metadata = ""
        self.attributes: dict[str, str] = {}
        self.sid = ""
        self.kind = ParticipantKind.STANDARD
        self.permissions = ParticipantPermission()
        self._rpc = Rpcs(conn)

    @property
    def can_publish_data(self) -> bool:
        return self.permissions.can_publish_data

    @property
    def can_subscribe(self) -> bool:
        return self.permissions.can_subscribe

    def _check_publish(self) -> None:
        if not self.can_publish_data:
            raise PermissionDenied("this token does not allow publishing data (canPublishData)")

    # -- name, metadata, attributes --------------------------------------------------------

    async def set_attributes(self, attributes: dict[str, str]) -> None:
        """Merge ``attributes`` into this participant's (an empty value deletes a key).
        Needs the token's ``canUpdateOwnMetadata`` grant. Returns once the router applied
        it: every participant (this one too) gets ``participant_attributes_changed``."""
        await self._update(attributes=dict(attributes))

    async def set_metadata(self, metadata: str) -> None:
        """Replace this participant's metadata (``canUpdateOwnMetadata``); the others get
        ``participant_metadata_changed``."""
        await self._update(metadata=metadata)

    async def set_name(self, name: str) -> None:
        """Replace this participant's name (``canUpdateOwnMetadata``); the others get
        ``participant_name_changed``."""
        await self._update(name=name)

    async def _update(self, **fields: Any) -> None:
        self._conn.ensure_connected()
        if not self.permissions.can_update_metadata:
            raise PermissionDenied(
                "this token does not allow updating its own metadata (canUpdateOwnMetadata)"
            )
        await self._conn.request(
            lambda req: UpdateParticipantFrame(req=req, **fields).model_dump_json(exclude_none=True)
        )

    # -- RPC -------------------------------------------------------------------------------

    def register_rpc_method(self, method_name: str, handler: H | None = None) -> Any:
        """Answer RPC calls of ``method_name`` with ``handler(RpcInvocationData)`` (plain or
        async; its return value is the response payload). Without a handler: a decorator.
        A handler may raise :class:`~roomstreams.RpcError` to answer with that error; any
        other exception answers 1500 (application error)."""
        return self._rpc.register(method_name, handler)

    def rpc_method(self, method_name: str) -> Any:
        """The decorator form under LiveKit's earlier name:
        ``@local_participant.rpc_method("greet")``."""
        return self._rpc.register(method_name)

    def unregister_rpc_method(self, method: str) -> None:
        self._rpc.handlers.pop(method, None)

    async def perform_rpc(
        self,
        *,
        destination_identity: str,
        method: str,
        payload: str,
        response_timeout: float | None = None,
    ) -> str:
        """Call ``method`` at ``destination_identity`` and return its response payload.
        Raises :class:`~roomstreams.RpcError` (LiveKit's codes): 1401 when nobody of that
        identity is in the room, 1503 when it leaves before answering, 1501/1502 on the
        timeouts (ack within 7 s, response within ``response_timeout``, 15 s by default),
        1402 for a payload over 15 KiB, or the handler's own error."""
        return await self._rpc.perform(
            destination_identity=destination_identity,
            method=method,
            payload=payload,
            response_timeout=response_timeout,
        )

    async def stream_text(
        self,
        *,
        topic: str = "",
        destination_identities: list[str] | None = None,
        attributes: dict[str, str] | None = None,
        total_size: int | None = None,
        stream_id: str | None = None,
        reply_to_id: str | None = None,
        operation_type: str = "create",
        version: int = 0,
        generated: bool = False,
        attached_stream_ids: list[str] | None = None,
        attachments: Sequence[str | os.PathLike[str]] | None = None,
        sender_identity: str | None = None,
        compress: bool = True,
    ) -> TextStreamWriter:
        """Open a text stream. Write to it, then close it: receivers' readers end only then.

        ``attachments`` are file paths, each sent as a byte stream on the same topic (and to
        the same destinations) right after the text stream's header, which lists their ids
        in ``attached_stream_ids``.

        ``sender_identity`` (LiveKit's): an agent may send the stream as another
        participant's (a transcription of what that participant said, say); receivers see
        that identity and ``generated``. Only for tokens of kind ``agent`` (or with the agent
        grant): others get a ``permission_denied`` error (the writer fails).

        ``compress`` is accepted for LiveKit's signature and ignored: roomstreams sends
        chunks as they are (nothing crosses a WebRTC data channel here)."""
        conn = self._conn
        conn.ensure_connected()
        self._check_publish()
        files = [Path(a) for a in attachments or ()]
        for f in files:
            if not await asyncio.to_thread(f.is_file):
                raise FileNotFoundError(f"attachment {str(f)!r} is not a file")
        file_ids = [str(uuid.uuid4()) for _ in files]
        attached_stream_ids = [*(attached_stream_ids or ()), *file_ids]
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
            sender_identity=sender_identity,
        )
        writer = TextStreamWriter(conn, info)
        await conn.open_writer(writer, header)
        try:
            for f, file_id in zip(files, file_ids, strict=True):
                await self.send_file(
                    f,
                    topic=topic,
                    destination_identities=destination_identities,
                    stream_id=file_id,
                )
        except BaseException as exc:
            if writer.state is StreamState.OPEN:
                with contextlib.suppress(Exception):
                    await asyncio.shield(writer.close(reason=f"attachment failed: {exc!r}"[:500]))
            raise
        return writer

    async def send_text(
        self,
        text: str,
        *,
        topic: str = "",
        destination_identities: list[str] | None = None,
        attributes: dict[str, str] | None = None,
        reply_to_id: str | None = None,
        attachments: Sequence[str | os.PathLike[str]] | None = None,
        sender_identity: str | None = None,
        compress: bool = True,
    ) -> TextStreamInfo:
        """Send a whole text (any size: it is chunked) as one stream; returns its info once
        the router has routed its end. ``attachments``: see :meth:`stream_text`."""
        writer = await self.stream_text(
            topic=topic,
            destination_identities=destination_identities,
            attributes=attributes,
            total_size=utf8_len(text),
            reply_to_id=reply_to_id,
            attachments=attachments,
            sender_identity=sender_identity,
        )
        async with writer:
            await writer.write(text)
        return writer.info

    # -- byte streams ----------------------------------------------------------------------

    async def stream_bytes(
        self,
        name: str,
        *,
        topic: str = "",
        total_size: int | None = None,
        mime_type: str = DEFAULT_MIME_TYPE,
        destination_identities: list[str] | None = None,
        attributes: dict[str, str] | None = None,
        stream_id: str | None = None,
        compress: bool = True,
    ) -> ByteStreamWriter:
        """Open a byte stream named ``name`` (a plain file name: no path). Write ``bytes`` to
        it, then close it: receivers' readers end only then."""
        self._conn.ensure_connected()
        self._check_publish()
        return await bytestreams.open_byte_stream(
            self._conn,
            name=name,
            topic=topic,
            mime_type=mime_type,
            total_size=total_size,
            destination_identities=destination_identities,
            attributes=attributes,
            stream_id=stream_id,
        )

    async def send_bytes(
        self,
        payload: bytes | bytearray | memoryview,
        *,
        name: str,
        topic: str = "",
        mime_type: str = DEFAULT_MIME_TYPE,
        destination_identities: list[str] | None = None,
        attributes: dict[str, str] | None = None,
        stream_id: str | None = None,
        compress: bool = True,
    ) -> ByteStreamInfo:
        """Send bytes in memory as one byte stream; returns its info once the router has
        routed its end."""
        view = memoryview(payload).cast("B")
        writer = await self.stream_bytes(
            name,
            topic=topic,
            total_size=len(view),
            mime_type=mime_type,
            destination_identities=destination_identities,
            attributes=attributes,
            stream_id=stream_id,
        )
        async with writer:
            await writer.write(view)
        return writer.info

    async def send_file(
        self,
        file_path: str | os.PathLike[str],
        *,
        topic: str = "",
        name: str | None = None,
        mime_type: str | None = None,
        destination_identities: list[str] | None = None,
        attributes: dict[str, str] | None = None,
        stream_id: str | None = None,
        compress: bool = True,
    ) -> ByteStreamInfo:
        """Send a file as one byte stream, read a block at a time (memory stays bounded
        whatever its size). The name is the file's (or ``name``), the MIME type guessed from
        it when not given, the size the file's. Returns the info once the router has routed
        the stream's end."""
        self._conn.ensure_connected()
        self._check_publish()
        return await bytestreams.send_file(
            self._conn,
            file_path,
            topic=topic,
            name=name,
            mime_type=mime_type,
            destination_identities=destination_identities,
            attributes=attributes,
            stream_id=stream_id,
        )

    # -- data packets ----------------------------------------------------------------------

    async def publish_data(
        self,
        payload: bytes | bytearray | memoryview | str,
        *,
        reliable: bool = True,
        destination_identities: list[str] | None = None,
        topic: str = "",
    ) -> None:
        """Send a data packet (``str`` is sent as UTF-8) to every other participant, or to
        ``destination_identities``; receivers get a ``data_received`` event. At most
        15 KiB, LiveKit's limit for reliable packets (``ValueError`` beyond).
        ``reliable=True`` returns once the router has routed the packet (its data-packet
        ack; concurrent calls share acks), or raises ``ConnectionClosed`` / ``ServerError``
        saying why it may not arrive; ``reliable=False`` returns once it is on the socket and
        may be dropped under pressure (LiveKit's lossy channel). See ``client/data.py``."""
        self._conn.ensure_connected()
        self._check_publish()
        await data.publish_data(
            self._conn,
            payload,
            reliable=reliable,
            destination_identities=destination_identities,
            topic=topic,
        )
