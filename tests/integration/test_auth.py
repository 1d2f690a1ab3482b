"""Who may connect: the gateway accepts a WebSocket only with a valid access token for a
room, refuses every other handshake with HTTP 401/403 and a reason before any frame flows,
and stamps the token's identity on what the participant sends."""

from __future__ import annotations

import asyncio
import json
import time
import urllib.request
from collections.abc import Callable
from datetime import timedelta
from typing import Any
from urllib.parse import quote

import jwt
import pytest
import websockets
from websockets.exceptions import InvalidStatus

import roomstreams
from roomstreams import AccessToken, VideoGrants

from .helpers import Collector, RawClient

OTHER_SECRET = "another-secret-that-is-also-long-enough-0123456789"


def key_and_secret(system: Any) -> tuple[str, str]:
    return system.env["ROOMSTREAMS_API_KEY"], system.env["ROOMSTREAMS_API_SECRET"]


def hand_made(system: Any, claims: dict[str, Any], *, secret: str | None = None) -> str:
    """A token built with pyjwt directly (LiveKit's claim shape), signed HS256."""
    _, api_secret = key_and_secret(system)
    return jwt.encode(claims, secret or api_secret, algorithm="HS256")


def lk_claims(system: Any, room: str, identity: str, **over: Any) -> dict[str, Any]:
    """Claims as LiveKit's server SDKs write them."""
    api_key, _ = key_and_secret(system)
    now = int(time.time())
    claims: dict[str, Any] = {
        "iss": api_key,
        "sub": identity,
        "nbf": now,
        "exp": now + 600,
        "video": {
            "room": room,
            "roomJoin": True,
            "canPublishData": True,
            "canSubscribe": True,
        },
    }
    claims.update(over)
    return claims


# name -> (token builder(system, room), HTTP status, words of the reason)
Refusal = tuple[Callable[[Any, str], str], int, str]
REFUSALS: dict[str, Refusal] = {
    "missing token": (lambda s, r: "", 401, "missing access token"),
    "bad signature": (
        lambda s, r: (
            AccessToken(key_and_secret(s)[0], OTHER_SECRET)
            .with_identity("eve")
            .with_grants(VideoGrants(room=r, room_join=True))
            .to_jwt()
        ),
        401,
        "signature",
    ),
    "expired": (
        lambda s, r: (
            AccessToken(*key_and_secret(s))
            .with_identity("eve")
            .with_grants(VideoGrants(room=r, room_join=True))
            .with_ttl(timedelta(seconds=-60))
            .to_jwt()
        ),
        401,
        "expired",
    ),
    "nbf in the future": (
        lambda s, r: hand_made(s, lk_claims(s, r, "eve", nbf=int(time.time()) + 3600)),
        401,
        "not valid yet",
    ),
    "no roomJoin": (lambda s, r: s.token(r, "eve", room_join=False), 403, "roomJoin"),
    "no room": (
        lambda s, r: (
            AccessToken(*key_and_secret(s))
            .with_identity("eve")
            .with_grants(VideoGrants(room="", room_join=True))
            .to_jwt()
        ),
        403,
        "no room",
    ),
    "wrong API key": (
        lambda s, r: (
            AccessToken("not-our-key", key_and_secret(s)[1])
            .with_identity("eve")
            .with_grants(VideoGrants(room=r, room_join=True))
            .to_jwt()
        ),
        401,
        "another API key",
    ),
    "no identity": (
        lambda s, r: hand_made(s, {k: v for k, v in lk_claims(s, r, "").items() if k != "sub"}),
        403,
        "identity",
    ),
    "no exp": (
        lambda s, r: hand_made(s, {k: v for k, v in lk_claims(s, r, "eve").items() if k != "exp"}),
        401,
        "exp",
    ),
    "alg none": (
        lambda s, r: jwt.encode(lk_claims(s, r, "eve"), "", algorithm="none"),
        401,
        "invalid token",
    ),
    "not a JWT": (lambda s, r: "not.a.jwt", 401, "invalid token"),
}


@pytest.mark.parametrize("case", list(REFUSALS))
async def test_room_connect_refused(case: str, system: Any, room_name: str) -> None:
    build, status, words = REFUSALS[case]
    room = roomstreams.Room()
    with pytest.raises(roomstreams.AuthError) as exc_info:
        await room.connect(system.urls[0], build(system, room_name))
    msg = str(exc_info.value)
    assert str(status) in msg
    assert words.lower() in msg.lower(), msg
    assert not room.isconnected()
    assert room.local_participant.identity == ""
    await room.disconnect()


@pytest.mark.parametrize("case", list(REFUSALS))
async def test_raw_handshake_refused_with_status(case: str, system: Any, room_name: str) -> None:
    build, status, words = REFUSALS[case]
    token = build(system, room_name)
    with pytest.raises(InvalidStatus) as exc_info:
        await websockets.connect(f"{system.urls[1]}/rtc?access_token={quote(token)}")
    resp = exc_info.value.response
    assert resp.status_code == status
    assert words.lower() in resp.body.decode().lower(), resp.body


async def test_refused_connections_never_reach_the_room(
    system: Any, room_name: str, connect: Any
) -> None:
    """Nothing of a refused handshake flows: no one in the room sees it join."""
    bob = await connect("bob", gateway=0)
    joined: asyncio.Queue[str] = asyncio.Queue()
    bob.on("participant_connected", lambda p: joined.put_nowait(p.identity))
    for case, (build, _, _) in REFUSALS.items():
        token = build(system, room_name)
        for url in system.urls:
            with pytest.raises(roomstreams.AuthError):
                await roomstreams.Room().connect(url, token)
            with pytest.raises(InvalidStatus):
                await websockets.connect(
                    f"{url}/rtc", additional_headers={"Authorization": f"Bearer {token}"}
                )
        assert joined.empty(), case
    # a later valid join on each gateway is the first and only thing bob sees
    await connect("carol", gateway=0)
    await connect("dave", gateway=1)
    got = {await asyncio.wait_for(joined.get(), 5) for _ in range(2)}
    assert got == {"carol", "dave"}
    assert joined.empty()
    assert bob.remote_participants.keys() == {"carol", "dave"}


@pytest.mark.parametrize("scheme", ["Bearer", "bearer"])
async def test_token_in_authorization_header(scheme: str, system: Any, room_name: str) -> None:
    token = system.token(room_name, "hdr-user")
    ws = await websockets.connect(
        f"{system.urls[1]}/rtc", additional_headers={"Authorization": f"{scheme} {token}"}
    )
    try:
        c = RawClient(ws)
        joined = await c.expect("joined")
        assert joined["room"] == room_name
        assert joined["participant"]["identity"] == "hdr-user"
        await c.subscribe("chat")  # and the socket works
    finally:
        await ws.close()


async def test_bad_token_in_authorization_header_refused(system: Any, room_name: str) -> None:
    token = AccessToken(key_and_secret(system)[0], OTHER_SECRET).with_identity("eve")
    jwt_ = token.with_grants(VideoGrants(room=room_name, room_join=True)).to_jwt()
    with pytest.raises(InvalidStatus) as exc_info:
        await websockets.connect(
            f"{system.urls[0]}/rtc", additional_headers={"Authorization": f"Bearer {jwt_}"}
        )
    assert exc_info.value.response.status_code == 401


async def test_healthz(system: Any) -> None:
    def get(port: int) -> tuple[int, dict[str, Any]]:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/healthz", timeout=5) as r:
            body: dict[str, Any] = json.loads(r.read())
            return r.status, body

    for port in system.ports:
        status, body = await asyncio.to_thread(get, port)
        assert status == 200
        assert body["status"] == "ok"
        assert isinstance(body["gateway"], str) and body["gateway"]
        assert isinstance(body["connections"], int)


async def test_livekit_shaped_token_connects(
    system: Any, room_name: str, connect: Any, rooms: list[roomstreams.Room]
) -> None:
    """A token as LiveKit's server SDKs mint it, built by hand with pyjwt: camelCase video
    grant, extra claims and grants this system does not use are ignored."""
    col = Collector()
    await connect("bob", gateway=0, handlers={"chat": col})
    claims = lk_claims(
        system,
        room_name,
        "lk-user",
        name="LiveKit User",
        metadata='{"role": "agent"}',
        attributes={"team": "blue"},
        jti="lk-user",
        kind="standard",
        sha256="",
    )
    claims["video"].update(canPublish=True, canPublishSources=["microphone"], hidden=False)
    room = roomstreams.Room()
    rooms.append(room)
    await room.connect(system.urls[1], hand_made(system, claims))
    lp = room.local_participant
    assert (lp.identity, lp.name, lp.metadata) == ("lk-user", "LiveKit User", '{"role": "agent"}')
    assert lp.attributes == {"team": "blue"}
    assert lp.can_publish_data and lp.can_subscribe
    assert room.name == room_name
    info = await lp.send_text("hello from a LiveKit token", topic="chat")
    rec = await col.wait_done(info.stream_id)
    assert rec.identity == "lk-user"
    assert rec.text == "hello from a LiveKit token"


async def test_non_boolean_grants_never_grant_more(
    system: Any, room_name: str, connect: Any
) -> None:
    """``"canPublishData": "false"`` is not a grant to publish: the gateway must refuse the
    token or treat the permission as absent (fail closed)."""
    col = Collector()
    await connect("bob", gateway=0, handlers={"chat": col})
    claims = lk_claims(system, room_name, "stringy")
    claims["video"]["canPublishData"] = "false"
    try:
        c = await RawClient.connect(system.urls[1], hand_made(system, claims))
    except InvalidStatus as exc:
        assert exc.response.status_code in (401, 403)
        return
    try:
        await c.send({"type": "header", "stream_id": "stringy-1", "topic": "chat", "timestamp": 1})
        await c.send({"type": "chunk", "stream_id": "stringy-1", "chunk_index": 0, "content": "x"})
        await c.send({"type": "trailer", "stream_id": "stringy-1"})
        async with asyncio.timeout(5):
            while (f := await c.recv())["type"] not in ("error", "closed"):
                pass
        assert f["type"] == "error", "a token with canPublishData='false' published a stream"
        assert f["code"] == "permission_denied", f
        assert "stringy-1" not in col.by_id
    finally:
        await c.close()


async def test_sender_is_the_token_identity(system: Any, room_name: str, connect: Any) -> None:
    """The delivered header's ``sender`` is the identity in the token, whatever the client
    tries (a query parameter, a different display name)."""
    col = Collector()
    await connect("bob", gateway=1, handlers={"chat": col})
    carol = await RawClient.connect(system.urls[1], system.token(room_name, "carol"))
    try:
        await carol.subscribe("chat")
        token = system.token(room_name, "alice-in-token", name="Mallory")
        ws = await websockets.connect(
            f"{system.urls[0]}/rtc?access_token={token}&identity=mallory&sender=mallory"
        )
        alice = RawClient(ws)
        try:
            joined = await alice.expect("joined")
            assert joined["participant"]["identity"] == "alice-in-token"
            await alice.send(
                {"type": "header", "stream_id": "stamp-1", "topic": "chat", "timestamp": 1}
            )
            await alice.send(
                {"type": "chunk", "stream_id": "stamp-1", "chunk_index": 0, "content": "hi"}
            )
            await alice.send({"type": "trailer", "stream_id": "stamp-1"})
            await alice.expect("closed", stream_id="stamp-1")
        finally:
            await alice.close()
        rec = await col.wait_done("stamp-1")
        assert rec.identity == "alice-in-token"
        assert rec.text == "hi"
        h = await carol.expect("header", stream_id="stamp-1")
        assert h["sender"] == "alice-in-token"
    finally:
        await carol.close()


async def test_only_known_paths_are_served(system: Any, room_name: str) -> None:
    token = system.token(room_name, "alice")
    with pytest.raises(websockets.InvalidStatus) as exc:
        await websockets.connect(f"{system.urls[0]}/elsewhere?access_token={token}")
    assert exc.value.response.status_code == 404

    def healthz() -> tuple[str, dict[str, Any]]:
        url = f"http://127.0.0.1:{system.ports[0]}/healthz"
        with urllib.request.urlopen(url, timeout=5) as r:
            return r.headers["Content-Type"], json.loads(r.read())

    content_type, body = await asyncio.to_thread(healthz)
    assert content_type == "application/json"
    assert body["status"] == "ok"
