"""Router configuration (environment variables, prefix ``ROOMSTREAMS_``)."""

from __future__ import annotations

from pydantic import Field

from roomstreams.config import CommonSettings

__all__ = ["RouterSettings"]


class RouterSettings(CommonSettings):
    #: A partition lease lasts this long unless renewed (renewed every quarter second, or
    #: every third of it if that is shorter); a standby tries to take free partitions as
    #: often. So a router killed with SIGKILL is replaced within about 1.5-1.75 s, and a
    #: healthy router keeps its partitions unless its event loop stalls for over a second.
    lease_ms: int = Field(default=1500, ge=500)
    #: An empty room's keys are deleted this many seconds after its last participant left.
    room_empty_ttl: float = Field(default=5.0, ge=0)
    #: A gateway that sent no heartbeat for this long is considered dead: its participants
    #: leave their rooms and their open streams end abnormally.
    gateway_timeout: float = Field(default=5.0, gt=0)
    #: After taking a partition over, how long to wait for the live gateways to re-announce
    #: their participants before routing what was sent meanwhile (it is held, not lost).
    resync_timeout: float = Field(default=5.0, gt=0)
    #: How often the idle rooms' logs are read without blocking, to back up the gateways'
    #: wake notices (see ``room_idle_after``).
    idle_sweep: float = Field(default=15.0, gt=0)
    #: A partition's blocking read names its active rooms while they are at most this many
    #: (each named room costs Redis ~1.2 µs per wake-up); past it, until they fall to half,
    #: a room is named only in the read after a gateway's notice of an append to it (one
    #: more round trip for that room, nothing for the quiet ones).
    named_rooms_max: int = Field(default=32, ge=0)
    #: When a router joins, the others hand partitions over to it: one with no stream open
    #: at once, a busy one after waiting this long for its streams to end (those still open
    #: then end with ``router_restarted``).
    handover_wait: float = Field(default=10.0, ge=0)
    #: Entries read per room per wake-up.
    read_count: int = Field(default=512, ge=1)
    #: The router's HTTP port: LiveKit's RoomService over Twirp, ``/healthz``, ``/readyz``.
    router_http_host: str = "127.0.0.1"
    router_http_port: int = Field(default=7890, ge=0, le=65535)
