"""Access tokens in LiveKit's claim shape (HS256 JWT), so tokens minted by LiveKit's server
SDKs work unchanged: ``iss`` = API key, ``sub`` = identity, ``nbf``/``exp``, ``name``,
``metadata``, ``attributes``, ``kind`` and a ``video`` grant with ``room``, ``roomJoin``,
``roomAdmin``, ``roomList``, ``roomCreate``, ``canPublishData``, ``canSubscribe``,
``canUpdateOwnMetadata``, ``hidden``, ``agent`` (camelCase, as LiveKit writes them).

Claims are type-checked and length-limited when a token is verified (LiveKit refuses such
tokens at the door too): a claim of the wrong type, over its limit (:data:`CLAIM_LIMITS`), or
holding text that is not valid Unicode (a lone surrogate from a ``\\ud800`` escape) is an
:class:`~roomstreams.exceptions.AuthError` naming the claim."""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any

import jwt

from .exceptions import AuthError

__all__ = [
    "CLAIM_LIMITS",
    "PARTICIPANT_KINDS",
    "AccessToken",
    "Claims",
    "VideoGrants",
    "verify_token",
]

DEFAULT_TTL = timedelta(hours=6)
_LEEWAY_S = 10

#: Longest value of each claim, in UTF-8 bytes (LiveKit's server defaults: identities, names
#: and room names of 256, metadata and attributes of 64000 in all).
CLAIM_LIMITS: dict[str, int] = {
    "sub": 256,
    "room": 256,
    "name": 256,
    "metadata": 64_000,
    "attributes": 64_000,
}
#: LiveKit's participant kinds, as the ``kind`` claim names them.
PARTICIPANT_KINDS = frozenset({"standard", "ingress", "egress", "sip", "agent"})


def _text(c: dict[str, Any], key: str, label: str | None = None) -> str:
    """A string claim (absent: ""), type-checked, valid Unicode, within its limit."""
    v = c.get(key, "")
    name = label or key
    if v is None:
        return ""
    if not isinstance(v, str):
        raise AuthError(f"claim {name!r} must be a string, not {type(v).__name__}")
    try:
        n = len(v.encode("utf-8"))
    except UnicodeEncodeError:
        raise AuthError(f"claim {name!r} is not valid Unicode (lone surrogate)") from None
    limit = CLAIM_LIMITS.get(key)
    if limit is not None and n > limit:
        raise AuthError(f"claim {name!r} of {n} bytes exceeds {limit}")
    return v


def _attributes(c: dict[str, Any]) -> dict[str, str]:
    v = c.get("attributes")
    if v is None:
        return {}
    if not isinstance(v, dict):
        raise AuthError(f"claim 'attributes' must be an object, not {type(v).__name__}")
    out: dict[str, str] = {}
    total = 0
    for k, val in v.items():
        if not isinstance(val, str):
            raise AuthError(f"attribute {k!r} must be a string, not {type(val).__name__}")
        try:
            total += len(k.encode("utf-8")) + len(val.encode("utf-8"))
        except UnicodeEncodeError:
            raise AuthError("claim 'attributes' is not valid Unicode (lone surrogate)") from None
        out[k] = val
    if total > CLAIM_LIMITS["attributes"]:
        raise AuthError(f"claim 'attributes' of {total} bytes exceeds {CLAIM_LIMITS['attributes']}")
    return out


@dataclass(slots=True)
class VideoGrants:
    room: str = ""
    room_join: bool = False
    room_admin: bool = False
    room_list: bool = False
    room_create: bool = False
    can_publish_data: bool = True
    can_subscribe: bool = True
    #: may change its own name, metadata and attributes (LiveKit's default: no)
    can_update_own_metadata: bool = False
    #: not announced to the others, not listed, its packets carry no identity
    hidden: bool = False
    #: an agent (LiveKit sets it on agent dispatch tokens)
    agent: bool = False
    #: LiveKit's media grants, accepted so that LiveKit code building grants runs
    #: unchanged; there is no media here, so they change nothing
    can_publish: bool = True
    recorder: bool = False

    def to_claims(self) -> dict[str, Any]:
        claims: dict[str, Any] = {
            "room": self.room,
            "roomJoin": self.room_join,
            "roomAdmin": self.room_admin,
            "roomList": self.room_list,
            "canPublishData": self.can_publish_data,
            "canSubscribe": self.can_subscribe,
        }
        # only when set, as LiveKit's SDKs omit false grants
        for key, value in (
            ("roomCreate", self.room_create),
            ("canUpdateOwnMetadata", self.can_update_own_metadata),
            ("hidden", self.hidden),
            ("agent", self.agent),
            ("recorder", self.recorder),
        ):
            if value:
                claims[key] = True
        if not self.can_publish:
            claims["canPublish"] = False
        return claims

    @staticmethod
    def _flag(c: dict[str, Any], key: str, default: bool) -> bool:
        v = c.get(key, default)
        if not isinstance(v, bool):
            raise AuthError(f"grant {key!r} must be a boolean")
        return v

    @classmethod
    def from_claims(cls, c: dict[str, Any]) -> VideoGrants:
        return cls(
            room=_text(c, "room"),
            room_join=cls._flag(c, "roomJoin", False),
            room_admin=cls._flag(c, "roomAdmin", False),
            room_list=cls._flag(c, "roomList", False),
            room_create=cls._flag(c, "roomCreate", False),
            # LiveKit defaults both to true when absent
            can_publish_data=cls._flag(c, "canPublishData", True),
            can_subscribe=cls._flag(c, "canSubscribe", True),
            can_update_own_metadata=cls._flag(c, "canUpdateOwnMetadata", False),
            hidden=cls._flag(c, "hidden", False),
            agent=cls._flag(c, "agent", False),
            can_publish=cls._flag(c, "canPublish", True),
            recorder=cls._flag(c, "recorder", False),
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
    #: LiveKit's participant kind: "standard", "agent", ... (the ``kind`` claim; an ``agent``
    #: grant makes it "agent" too)
    kind: str = "standard"

    @property
    def is_agent(self) -> bool:
        return self.kind == "agent" or self.video.agent


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
        self.kind = ""

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

    def with_kind(self, kind: str) -> AccessToken:
        """LiveKit's participant kind (``"agent"`` for an agent)."""
        if kind not in PARTICIPANT_KINDS:
            raise ValueError(f"kind must be one of {sorted(PARTICIPANT_KINDS)}")
        self.kind = kind
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
        if self.kind:
            claims["kind"] = self.kind
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
    if video is not None and not isinstance(video, dict):
        raise AuthError(f"claim 'video' must be an object, not {type(video).__name__}")
    kind = _text(c, "kind") or "standard"
    if kind not in PARTICIPANT_KINDS:
        raise AuthError(f"claim 'kind' must be one of {sorted(PARTICIPANT_KINDS)}, not {kind!r}")
    return Claims(
        api_key=_text(c, "iss"),
        identity=_text(c, "sub"),
        video=VideoGrants.from_claims(video or {}),
        name=_text(c, "name"),
        metadata=_text(c, "metadata"),
        attributes=_attributes(c),
        kind=kind,
    )
