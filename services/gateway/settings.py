"""Gateway configuration (environment variables, prefix ``ROOMSTREAMS_``)."""

from __future__ import annotations

from pydantic import Field

from roomstreams.config import CommonSettings

__all__ = ["GatewaySettings"]


class GatewaySettings(CommonSettings):
    gateway_host: str = "127.0.0.1"
    gateway_port: int = Field(default=7880, ge=0, le=65535)
    #: Frames waiting for one socket. A receiver that lets it fill is disconnected
    #: (close code 4008, "slow consumer") so that nobody else slows down.
    send_queue_frames: int = Field(default=2048, ge=8)
    #: Bytes one connection may have appended to its room log and not yet routed: the
    #: gateway stops reading that socket until the router catches up (pacing).
    window_bytes: int = Field(default=1 << 20, ge=16_384)
    #: Entries from clients waiting to be appended to Redis, across all connections; past
    #: it, a connection that sends data is closed with 1013 (try again later).
    append_queue_limit: int = Field(default=65_536, ge=16)
    #: Seconds between liveness beats to the router.
    heartbeat_interval: float = Field(default=1.0, gt=0)
    #: Browser origins allowed to open WebSockets (comma-separated patterns, ``*`` a
    #: wildcard, ``*`` alone: any origin). The gateway's own origin is always allowed; a
    #: request without ``Origin`` (not a browser) is too. Others get 403.
    allowed_origins: str = ""
    #: Local development only (``roomstreams up`` sets it): serve the chat page at ``/`` and
    #: sign tokens for it at ``/dev/token`` for anyone on this machine.
    dev_token_endpoint: bool = False
