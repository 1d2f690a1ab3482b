"""Data packets: ``LocalParticipant.publish_data`` and the ``data_received`` event.

A data packet is one binary frame (:mod:`roomstreams.protocol.binary`) of at most
:data:`~roomstreams.protocol.limits.MAX_DATA_BYTES` (15 KiB, 15360) bytes of payload. It goes
through the room log like everything else, so it is ordered with the room's other traffic,
and reaches every other member with ``canSubscribe`` (narrowed to ``destination_identities``
when given), no handler needed::

    @room.on("data_received")
    def on_data(packet: roomstreams.DataPacket) -> None:
        print(packet.participant_identity, packet.topic, packet.payload)

The callback gets one :class:`DataPacket` (LiveKit's Python SDK shape) and may be a
coroutine function.

``publish_data(reliable=True)`` (the default) returns once the router has routed the packet
(delivered it to the recipients' gateways): each such packet is numbered, the router
acknowledges the highest number it routed once per wake-up, and up to
:data:`~roomstreams.client.connection.PACKET_WINDOW` calls are in flight at once, so
concurrent calls share acknowledgements (a loop that awaits each call waits one round trip
per packet: use tasks or ``asyncio.gather`` for bursts). A call fails with
:class:`~roomstreams.ConnectionClosed` if the connection drops before the ack (the packet may
or may not have been delivered), or :class:`~roomstreams.ServerError` if the gateway refused
it or it was lost before routing (Redis restarted empty: ``router_restarted``; lag:
``lagged``). ``reliable=False`` returns once the packet is on the socket, as LiveKit's lossy
channel; it goes through the room log too, in order, but a receiving gateway drops it when
that receiver's send queue is congested (half full).
"""

from __future__ import annotations

import enum
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from ..protocol.binary import DataMeta, DeliveredDataMeta, decode_data_packet, encode_data_packet
from ..protocol.limits import MAX_DATA_BYTES

if TYPE_CHECKING:
    from .connection import Connection
    from .participant import RemoteParticipant

__all__ = ["DataPacket", "DataPacketKind"]


class DataPacketKind(enum.IntEnum):
    """LiveKit's ``DataPacketKind`` (same names and values)."""

    KIND_LOSSY = 0
    KIND_RELIABLE = 1


@dataclass(slots=True)
class DataPacket:
    """A data packet as a receiver gets it."""

    payload: bytes
    #: who sent it (stamped by the sender's gateway from its token)
    participant_identity: str
    topic: str = ""
    reliable: bool = True
    destination_identities: list[str] = field(default_factory=list)
    #: the sender, if this room knows it as a remote participant
    participant: RemoteParticipant | None = None

    @property
    def data(self) -> bytes:
        """Same as :attr:`payload` (LiveKit's name)."""
        return self.payload

    @property
    def kind(self) -> DataPacketKind:
        """LiveKit's name for :attr:`reliable`."""
        return DataPacketKind.KIND_RELIABLE if self.reliable else DataPacketKind.KIND_LOSSY


async def publish_data(
    conn: Connection,
    payload: bytes | bytearray | memoryview | str,
    *,
    reliable: bool = True,
    destination_identities: list[str] | None = None,
    topic: str = "",
) -> None:
    conn.ensure_connected()
    data = payload.encode("utf-8") if isinstance(payload, str) else bytes(payload)
    if len(data) > MAX_DATA_BYTES:
        raise ValueError(f"data packet of {len(data)} bytes exceeds {MAX_DATA_BYTES} bytes")
    meta = DataMeta(topic=topic, destination_identities=list(destination_identities or []))
    raw_meta = meta.model_dump_json().encode()
    if not reliable:
        await conn.send(encode_data_packet(raw_meta, data, reliable=False))
        return
    await conn.send_packet(lambda n: encode_data_packet(raw_meta, data, number=n))


def packet_from_frame(frame: bytes, participants: dict[str, RemoteParticipant]) -> DataPacket:
    """Decode a delivered data packet frame (raises ``ValueError`` when malformed)."""
    p = decode_data_packet(frame)
    meta = DeliveredDataMeta.model_validate_json(p.meta)
    return DataPacket(
        payload=p.payload,
        participant_identity=meta.sender,
        topic=meta.topic,
        reliable=p.reliable,
        destination_identities=list(meta.destination_identities),
        participant=participants.get(meta.sender),
    )
