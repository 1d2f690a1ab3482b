"""Settings both services read from the environment (prefix ``ROOMSTREAMS_``)."""

from __future__ import annotations

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict

__all__ = ["CommonSettings"]


class CommonSettings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="ROOMSTREAMS_", extra="ignore")

    redis_url: str = "redis://127.0.0.1:6379/0"
    api_key: str = Field(min_length=1)
    api_secret: str = Field(min_length=1)
    #: Rooms hash into this many partitions; every router and gateway must agree on it.
    partitions: int = Field(default=16, ge=1, le=1024)
    log_level: str = "INFO"
    #: Safety cap on a room log (XADD MAXLEN ~). Readers trim what they processed long
    #: before; an entry is only lost to this cap when its reader stalls, and then the
    #: affected streams end abnormally with code ``lagged``.
    log_maxlen: int = Field(default=100_000, ge=10)
    #: Safety cap on a gateway inbox, same rule.
    inbox_maxlen: int = Field(default=100_000, ge=10)
    #: A room whose log had no entry for this many seconds leaves its partition's blocking
    #: read (its key is no longer named in every XREAD, so idle rooms cost nothing per
    #: wake-up). Gateways name every room they append to on the partition's control
    #: stream, which brings it back (see docs/architecture.md, "Idle rooms"). Only the
    #: router reads it.
    room_idle_after: float = Field(default=10.0, ge=1.0)
    #: Session resume: seconds a participant whose connection dropped (or whose gateway
    #: died or drained) stays in its room, unannounced, so that its client can reconnect to
    #: any gateway and carry on (``ROOMSTREAMS_RESUME_WINDOW``; 0 turns resume off). Past
    #: it, the participant leaves as before. Gateways and routers must agree on it.
    resume_window: float = Field(default=15.0, ge=0)
