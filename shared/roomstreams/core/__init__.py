"""Sans-I/O cores: the router's room fold, the gateway's per-connection stream checks, the
client's incoming-stream assembler. Plain classes: no await, no sockets, no Redis."""

from .room import Member, OpenStream, RoomState, Sink

__all__ = ["Member", "OpenStream", "RoomState", "Sink"]
