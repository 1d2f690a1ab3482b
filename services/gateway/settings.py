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
    #: WebSocket keepalive: a ping every ``ping_interval`` seconds; a connection whose pong
    #: is ``ping_timeout`` seconds late is closed (the close handshake waits at most
    #: ``close_timeout``), the participant leaves and the streams it was sending end at
    #: every reader (``sender_left``). So a frozen peer is given up within 10 s by default
    #: (LiveKit: 15 s).
    ping_interval: float = Field(default=4.0, gt=0)
    ping_timeout: float = Field(default=4.0, gt=0)
    close_timeout: float = Field(default=2.0, gt=0)
    #: Session resume: how long a resuming connection may take to send its resume frame,
    #: and the router to answer and the old inbox to be replayed (then it is refused).
    resume_handshake_timeout: float = Field(default=10.0, gt=0)
    # -- flood limits, per connection (docs/security.md) -----------------------------------
    #: Small frames a connection may send per second (burst: one second's worth; frames of
    #: 4 KiB or more have their own allowance, four times this, so uploads in 15000-byte
    #: chunks reach ~120 MB/s). Over it, the gateway tells the client once
    #: (``rate_limited``) and reads the socket at ``flood_penalty`` of the rate until the
    #: client has kept to that for a second; once it has sent ``flood_close_after``
    #: seconds' worth of frames (10,000 at the defaults) in one spell, it is closed (4029).
    max_frames_per_second: float = Field(default=2000, gt=0)
    #: Bytes a connection may send per second (throttled, never closed for it).
    max_bytes_per_second: float = Field(default=256 * 1024 * 1024, gt=0)
    flood_close_after: float = Field(default=5.0, gt=0)
    flood_penalty: float = Field(default=0.1, gt=0, le=1)
    #: Streams one connection may have open at once (``too_many_streams``).
    max_open_streams: int = Field(default=256, ge=1)
    #: Handler registrations waiting for the router, and handlers registered, per
    #: connection (``too_many_requests``).
    max_pending_requests: int = Field(default=64, ge=1)
    max_subscriptions: int = Field(default=1024, ge=1)
    #: Connections of one identity in one room on this gateway (HTTP 429 past it). LiveKit
    #: replaces an older connection with a newer one; more at once is a reconnect storm.
    max_connections_per_identity: int = Field(default=4, ge=1)
    #: Connections on this gateway whose join the router has not answered yet (HTTP 503
    #: past it).
    max_joining_connections: int = Field(default=1000, ge=1)
    #: Browser origins allowed to open WebSockets (comma-separated patterns, ``*`` a
    #: wildcard, ``*`` alone: any origin). The gateway's own origin is always allowed; a
    #: request without ``Origin`` (not a browser) is too. Others get 403.
    allowed_origins: str = ""
    #: Local development only (``roomstreams up`` sets it): serve the chat page at ``/`` and
    #: sign tokens for it at ``/dev/token`` for anyone on this machine.
    dev_token_endpoint: bool = False
