"""Access tokens in LiveKit's claim shape (HS256 JWT), so tokens minted by LiveKit's server
SDKs work unchanged: ``iss`` = API key, ``sub`` = identity, ``nbf``/``exp``, ``name``,
``metadata``, ``attributes`` and a ``video`` grant with ``room``, ``roomJoin``,
``canPublishData``, ``canSubscribe`` (camelCase, as LiveKit writes them)."""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any

import jwt

from .exceptions import AuthError

__all__ = ["AccessToken", "Claims", "VideoGrants", "verify_token"]

DEFAULT_TTL = timedelta(hours=6)
_LEEWAY_S = 10


@dataclass(slots=True)
class VideoGrants:
    room: str = ""
    room_join: bool = False
    room_admin: bool = False
    room_list: bool = False
    can_publish_data: bool = True
    can_subscribe: bool = True

    def to_claims(self) -> dict[str, Any]:
        return {
            "room": self.room,
            "roomJoin": self.room_join,
            "roomAdmin": self.room_admin,
            "roomList": self.room_list,
            "canPublishData": self.can_publish_data,
            "canSubscribe": self.can_subscribe,
        }

    @staticmethod
    def _flag(c: dict[str, Any], key: str, default: bool) -> bool:
        v = c.get(key, default)
        if not isinstance(v, bool):
            raise AuthError(f"grant {key!r} must be a boolean")
        return v

    @classmethod
    def from_claims(cls, c: dict[str, Any]) -> VideoGrants:
        return cls(
            room=str(c.get("room", "")),
            room_join=cls._flag(c, "roomJoin", False),
            room_admin=cls._flag(c, "roomAdmin", False),
            room_list=cls._flag(c, "roomList", False),
            # LiveKit defaults both to true when absent
            can_publish_data=cls._flag(c, "canPublishData", True),
            can_subscribe=cls._flag(c, "canSubscribe", True),
        )


@dataclass(slots=True)
class Claims:
    """What a verified token says."""

    api_key: str
    identity: str
    video: VideoGrants
    name: str = ""
    metadata: str = ""
    attributes: dict[str, str] = field(default_factory=dict)


class AccessToken:
    """Builds a token: ``AccessToken(key, secret).with_identity("alice")
    .with_grants(VideoGrants(room_join=True, room="demo")).to_jwt()``."""

    def __init__(self, api_key: str, api_secret: str) -> None:
        if not api_key or not api_secret:
            raise ValueError("api_key and api_secret are required")
        self.api_key = api_key
        self.api_secret = api_secret
        self.identity = ""
        self.name = ""
        self.metadata = ""
        self.attributes: dict[str, str] = {}
        self.grants = VideoGrants()
        self.ttl = DEFAULT_TTL

    def with_identity(self, identity: str) -> AccessToken:
        self.identity = identity
        return self

    def with_name(self, name: str) -> AccessToken:
        self.name = name
        return self

    def with_metadata(self, metadata: str) -> AccessToken:
        self.metadata = metadata
        return self

    def with_attributes(self, attributes: dict[str, str]) -> AccessToken:
        self.attributes = dict(attributes)
        return self

    def with_grants(self, grants: VideoGrants) -> AccessToken:
        self.grants = grants
        return self

    def with_ttl(self, ttl: timedelta) -> AccessToken:
        self.ttl = ttl
        return self

    def to_jwt(self) -> str:
        if self.grants.room_join and not self.identity:
            raise ValueError("identity is required for a token that joins a room")
        now = int(time.time())
        claims: dict[str, Any] = {
            "iss": self.api_key,
            "sub": self.identity,
            "nbf": now,
            "exp": now + int(self.ttl.total_seconds()),
            "video": self.grants.to_claims(),
        }
        if self.name:
            claims["name"] = self.name
        if self.metadata:
            claims["metadata"] = self.metadata
        if self.attributes:
            claims["attributes"] = self.attributes
        return jwt.encode(claims, self.api_secret, algorithm="HS256")


def verify_token(token: str, api_key: str, api_secret: str) -> Claims:
    """Check signature, issuer, ``exp`` and ``nbf``; raise :class:`AuthError` with a reason."""
    try:
        c = jwt.decode(
            token,
            api_secret,
            algorithms=["HS256"],
            issuer=api_key,
            leeway=_LEEWAY_S,
            options={"require": ["exp", "iss"]},
        )
    except jwt.ExpiredSignatureError as exc:
        raise AuthError("token expired") from exc
    except jwt.ImmatureSignatureError as exc:
        raise AuthError("token not valid yet (nbf)") from exc
    except jwt.InvalidIssuerError as exc:
        raise AuthError("token issued for another API key") from exc
    except jwt.InvalidSignatureError as exc:
        raise AuthError("token signature is invalid") from exc
    except jwt.PyJWTError as exc:
        raise AuthError(f"invalid token: {exc}") from exc
    video = c.get("video")
    attrs = c.get("attributes") or {}
    return Claims(
        api_key=str(c["iss"]),
        identity=str(c.get("sub", "")),
        video=VideoGrants.from_claims(video if isinstance(video, dict) else {}),
        name=str(c.get("name", "")),
        metadata=str(c.get("metadata", "")),
        attributes={str(k): str(v) for k, v in attrs.items()} if isinstance(attrs, dict) else {},
    )
