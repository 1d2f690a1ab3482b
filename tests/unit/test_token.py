"""Access tokens in LiveKit's claim shape, and their verification."""

from __future__ import annotations

import time
from datetime import timedelta
from typing import Any

import jwt
import pytest

from roomstreams.exceptions import AuthError
from roomstreams.token import AccessToken, Claims, VideoGrants, verify_token

API_KEY = "APIdemoKey123"
# HS256 keys shorter than 32 bytes make pyjwt warn (an error under filterwarnings=error)
API_SECRET = "a-demo-secret-that-is-long-enough-for-hs256-0123456789"
OTHER_SECRET = "another-secret-that-is-also-long-enough-for-hs256-9876"


def alice_token(**grants: Any) -> AccessToken:
    return (
        AccessToken(API_KEY, API_SECRET)
        .with_identity("alice")
        .with_name("Alice")
        .with_grants(VideoGrants(room="demo", room_join=True, **grants))
    )


def livekit_claims(**overrides: Any) -> dict[str, Any]:
    """Claims as LiveKit's server SDKs write them (livekit-api / livekit-server-sdk-js)."""
    now = int(time.time())
    claims: dict[str, Any] = {
        "iss": API_KEY,
        "sub": "bob",
        "nbf": now,
        "exp": now + 3600,
        "jti": "bob",
        "name": "Bob",
        "metadata": '{"role": "viewer"}',
        "attributes": {"team": "blue"},
        "kind": "standard",
        "video": {
            "room": "demo",
            "roomJoin": True,
            "canPublish": True,
            "canPublishData": True,
            "canSubscribe": True,
            "canUpdateOwnMetadata": False,
            "hidden": False,
        },
        "sip": {},
        "sha256": "",
    }
    claims.update(overrides)
    return claims


def sign(claims: dict[str, Any], secret: str = API_SECRET) -> str:
    return jwt.encode(claims, secret, algorithm="HS256")


def test_access_token_has_livekit_claim_shape() -> None:
    before = int(time.time())
    token = alice_token(can_subscribe=False).with_ttl(timedelta(minutes=10)).to_jwt()

    assert jwt.get_unverified_header(token)["alg"] == "HS256"
    claims = jwt.decode(token, API_SECRET, algorithms=["HS256"], issuer=API_KEY)
    assert claims["iss"] == API_KEY
    assert claims["sub"] == "alice"
    assert claims["name"] == "Alice"
    assert before <= claims["nbf"] <= int(time.time())
    assert claims["exp"] == claims["nbf"] + 600
    assert claims["video"] == {
        "room": "demo",
        "roomJoin": True,
        "roomAdmin": False,
        "roomList": False,
        "canPublishData": True,
        "canSubscribe": False,
    }


def test_optional_claims_only_when_set() -> None:
    plain = jwt.decode(alice_token().to_jwt(), API_SECRET, algorithms=["HS256"])
    assert "metadata" not in plain and "attributes" not in plain

    full = alice_token().with_metadata('{"x": 1}').with_attributes({"team": "red"}).to_jwt()
    claims = jwt.decode(full, API_SECRET, algorithms=["HS256"])
    assert claims["metadata"] == '{"x": 1}'
    assert claims["attributes"] == {"team": "red"}


def test_verify_accepts_our_token() -> None:
    token = alice_token(can_publish_data=False).with_attributes({"team": "red"}).to_jwt()

    c = verify_token(token, API_KEY, API_SECRET)

    assert isinstance(c, Claims)
    assert (c.api_key, c.identity, c.name, c.metadata) == (API_KEY, "alice", "Alice", "")
    assert c.attributes == {"team": "red"}
    assert c.video == VideoGrants(room="demo", room_join=True, can_publish_data=False)


def test_verify_accepts_a_token_minted_as_livekit_does() -> None:
    c = verify_token(sign(livekit_claims()), API_KEY, API_SECRET)

    assert c.identity == "bob"
    assert c.name == "Bob"
    assert c.metadata == '{"role": "viewer"}'
    assert c.attributes == {"team": "blue"}
    assert c.video.room == "demo"
    assert c.video.room_join is True
    assert c.video.can_publish_data is True
    assert c.video.can_subscribe is True


def test_livekit_grant_defaults_publish_and_subscribe_to_true() -> None:
    token = sign(livekit_claims(video={"room": "demo", "roomJoin": True}))
    c = verify_token(token, API_KEY, API_SECRET)
    assert (c.video.can_publish_data, c.video.can_subscribe) == (True, True)
    assert c.video.room_admin is False


def test_livekit_grant_false_permissions_are_kept() -> None:
    video = {"room": "demo", "roomJoin": True, "canPublishData": False, "canSubscribe": False}
    c = verify_token(sign(livekit_claims(video=video)), API_KEY, API_SECRET)
    assert (c.video.can_publish_data, c.video.can_subscribe) == (False, False)


def test_expired_token_is_refused() -> None:
    token = alice_token().with_ttl(timedelta(seconds=-60)).to_jwt()
    with pytest.raises(AuthError, match="expired"):
        verify_token(token, API_KEY, API_SECRET)


def test_just_expired_token_is_within_leeway() -> None:
    now = int(time.time())
    token = sign(livekit_claims(nbf=now - 100, exp=now - 2))
    assert verify_token(token, API_KEY, API_SECRET).identity == "bob"


def test_not_yet_valid_token_is_refused() -> None:
    now = int(time.time())
    token = sign(livekit_claims(nbf=now + 120, exp=now + 3600))
    with pytest.raises(AuthError, match=r"not valid yet"):
        verify_token(token, API_KEY, API_SECRET)


def test_nbf_slightly_ahead_is_within_leeway() -> None:
    now = int(time.time())
    token = sign(livekit_claims(nbf=now + 3, exp=now + 3600))
    assert verify_token(token, API_KEY, API_SECRET).identity == "bob"


def test_wrong_secret_is_refused() -> None:
    token = alice_token().to_jwt()
    with pytest.raises(AuthError, match="signature"):
        verify_token(token, API_KEY, OTHER_SECRET)


def test_wrong_issuer_is_refused() -> None:
    token = sign(livekit_claims(iss="APIsomeoneElse"))
    with pytest.raises(AuthError, match="another API key"):
        verify_token(token, API_KEY, API_SECRET)


@pytest.mark.parametrize("garbage", ["", "not-a-jwt", "a.b.c", "{}.{}.{}"])
def test_garbage_is_refused(garbage: str) -> None:
    with pytest.raises(AuthError, match="invalid token"):
        verify_token(garbage, API_KEY, API_SECRET)


def test_token_without_exp_is_refused() -> None:
    claims = livekit_claims()
    del claims["exp"]
    with pytest.raises(AuthError, match="exp"):
        verify_token(sign(claims), API_KEY, API_SECRET)


def test_unsigned_token_is_refused() -> None:
    token = jwt.encode(livekit_claims(), "", algorithm="none")
    with pytest.raises(AuthError):
        verify_token(token, API_KEY, API_SECRET)


def test_auth_error_chains_the_jwt_error() -> None:
    with pytest.raises(AuthError) as exc:
        verify_token("not-a-jwt", API_KEY, API_SECRET)
    assert isinstance(exc.value.__cause__, jwt.PyJWTError)


def test_access_token_needs_key_and_secret() -> None:
    with pytest.raises(ValueError):
        AccessToken("", API_SECRET)
    with pytest.raises(ValueError):
        AccessToken(API_KEY, "")


def test_room_join_needs_an_identity() -> None:
    token = AccessToken(API_KEY, API_SECRET).with_grants(VideoGrants(room="r", room_join=True))
    with pytest.raises(ValueError, match="identity"):
        token.to_jwt()


def test_video_grants_claims_round_trip() -> None:
    g = VideoGrants(room="r", room_join=True, room_admin=True, can_subscribe=False)
    assert VideoGrants.from_claims(g.to_claims()) == g


# ---- hostile claims: type-checked, length-limited, valid Unicode (refused at the door) ------


def _video(**extra: Any) -> dict[str, Any]:
    return {"room": "demo", "roomJoin": True, **extra}


@pytest.mark.parametrize(
    ("overrides", "match"),
    [
        ({"video": _video(room=["x"])}, "'room' must be a string"),
        ({"video": _video(room={"a": 1})}, "'room' must be a string"),
        ({"video": _video(room=7)}, "'room' must be a string"),
        ({"video": "demo"}, "'video' must be an object"),
        ({"name": 5}, "'name' must be a string"),
        ({"metadata": {"a": 1}}, "'metadata' must be a string"),
        ({"attributes": ["a"]}, "'attributes' must be an object"),
        ({"attributes": {"a": 1}}, "attribute 'a' must be a string"),
        ({"video": _video(roomAdmin="yes")}, "'roomAdmin' must be a boolean"),
        ({"video": _video(hidden=1)}, "'hidden' must be a boolean"),
        ({"kind": "robot"}, "'kind' must be one of"),
        ({"sub": "x" * 257}, "'sub' of 257 bytes exceeds 256"),
        ({"video": _video(room="r" * 257)}, "'room' of 257 bytes exceeds 256"),
        ({"name": "é" * 129}, "'name' of 258 bytes exceeds 256"),
        ({"metadata": "m" * 64_001}, "'metadata' of 64001 bytes exceeds 64000"),
        ({"attributes": {"k": "v" * 64_000}}, "'attributes' of 64001 bytes exceeds 64000"),
    ],
)
def test_bad_claims_are_refused_with_the_claim_named(overrides: dict[str, Any], match: str) -> None:
    with pytest.raises(AuthError, match=match):
        verify_token(sign(livekit_claims(**overrides)), API_KEY, API_SECRET)


@pytest.mark.parametrize(
    "overrides",
    [
        {"sub": "bob\ud800"},
        {"name": "\ud800"},
        {"metadata": "x\udfff"},
        {"attributes": {"team": "\ud800"}},
        {"attributes": {"\ud800": "x"}},
        {"video": _video(room="demo\ud800")},
    ],
)
def test_lone_surrogates_in_claims_are_refused(overrides: dict[str, Any]) -> None:
    # what a JSON "\ud800" escape decodes to: text that cannot be encoded as UTF-8
    token = jwt.encode(livekit_claims(**overrides), API_SECRET, algorithm="HS256")
    with pytest.raises(AuthError, match="not valid Unicode"):
        verify_token(token, API_KEY, API_SECRET)


def test_new_grants_and_kind_round_trip() -> None:
    g = VideoGrants(
        room="r", room_join=True, room_create=True, can_update_own_metadata=True, hidden=True
    )
    token = AccessToken(API_KEY, API_SECRET).with_identity("a").with_grants(g).with_kind("agent")
    c = verify_token(token.to_jwt(), API_KEY, API_SECRET)
    assert c.video == g
    assert c.kind == "agent" and c.is_agent
    plain = verify_token(alice_token().to_jwt(), API_KEY, API_SECRET)
    assert plain.kind == "standard" and not plain.is_agent
    assert not (plain.video.hidden or plain.video.can_update_own_metadata)


def test_agent_grant_makes_an_agent() -> None:
    c = verify_token(sign(livekit_claims(video=_video(agent=True))), API_KEY, API_SECRET)
    assert c.is_agent and c.kind == "standard"


def test_livekit_media_grants_are_accepted_and_round_trip() -> None:
    g = VideoGrants(room="r", room_join=True, can_publish=False, recorder=True)
    c = verify_token(
        AccessToken(API_KEY, API_SECRET).with_identity("a").with_grants(g).to_jwt(),
        API_KEY,
        API_SECRET,
    )
    assert c.video == g
    assert verify_token(sign(livekit_claims()), API_KEY, API_SECRET).video.can_publish
