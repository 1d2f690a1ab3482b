"""The WebSocket server API scopes grants as LiveKit does (issue 14): ``roomAdmin`` acts on the
token's own room only, ``roomList`` lists rooms but not participants. Real router, gateways
and Redis; raw WebSocket requests with hand-made tokens."""

from __future__ import annotations

import asyncio
import json
from typing import Any

import pytest
import websockets

import roomstreams
from roomstreams import AccessToken, VideoGrants
from roomstreams.api import RoomService

from .conftest import API_KEY, API_SECRET, System

pytestmark = pytest.mark.slow


def _token(**grants: Any) -> str:
    return (
        AccessToken(API_KEY, API_SECRET)
        .with_identity("svc")
        .with_grants(VideoGrants(**grants))
        .to_jwt()
    )


async def _request(
    s: System, conn_token: str, method: str, call_token: str | None = None, **params: Any
) -> dict[str, Any]:
    async with websockets.connect(f"{s.urls[0]}/api?access_token={conn_token}") as ws:
        req: dict[str, Any] = {"id": 1, "method": method, "params": params}
        if call_token is not None:
            req["access_token"] = call_token
        await ws.send(json.dumps(req))
        reply: dict[str, Any] = json.loads(await ws.recv())
        return reply


async def _members(s: System, room: str) -> list[str]:
    async with RoomService(s.urls[0], API_KEY, API_SECRET) as api:
        return [p.identity for p in await api.list_participants(room)]


async def test_room_admin_of_another_room_or_of_no_room_cannot_act(
    system: System, room_name: str
) -> None:
    bob = roomstreams.Room()
    await bob.connect(system.urls[0], system.token(room_name, "bob"))
    try:
        for tok in (_token(room_admin=True, room="elsewhere"), _token(room_admin=True)):
            for method in ("list_participants", "remove_participant"):
                reply = await _request(system, tok, method, room=room_name, identity="bob")
                assert reply["error"]["code"] == "permission_denied", reply
                assert room_name in reply["error"]["message"]
        assert await _members(system, room_name) == ["bob"]
        # the same grant for this very room works
        own = _token(room_admin=True, room=room_name)
        reply = await _request(system, own, "list_participants", room=room_name)
        assert [p["identity"] for p in reply["result"]] == ["bob"]
    finally:
        await bob.disconnect()


async def test_room_list_lists_rooms_but_not_participants(system: System, room_name: str) -> None:
    bob = roomstreams.Room()
    await bob.connect(system.urls[0], system.token(room_name, "bob"))
    try:
        tok = _token(room_list=True)
        reply = await _request(system, tok, "list_rooms")
        assert room_name in {r["name"] for r in reply["result"]}
        reply = await _request(system, tok, "list_participants", room=room_name)
        assert reply["error"]["code"] == "permission_denied"
        assert "roomAdmin" in reply["error"]["message"]
        # roomAdmin alone does not list rooms either (LiveKit: roomList)
        reply = await _request(system, _token(room_admin=True, room=room_name), "list_rooms")
        assert reply["error"]["code"] == "permission_denied"
        assert "roomList" in reply["error"]["message"]
    finally:
        await bob.disconnect()


async def test_a_request_token_scopes_one_call(system: System, room_name: str) -> None:
    """One connection, calls scoped per request (what RoomService does); a bad request token
    is refused without falling back to the connection's grants."""
    bob = roomstreams.Room()
    left: asyncio.Future[str] = asyncio.get_running_loop().create_future()
    await bob.connect(system.urls[0], system.token(room_name, "bob"))
    bob.on("disconnected", lambda reason: left.done() or left.set_result(reason))
    try:
        conn = _token(room_list=True, room_admin=True, room=room_name)
        other = _token(room_admin=True, room="elsewhere")
        reply = await _request(
            system, conn, "remove_participant", other, room=room_name, identity="bob"
        )
        assert reply["error"]["code"] == "permission_denied"
        forged = _token(room_admin=True, room=room_name)[:-4] + "AAAA"
        reply = await _request(system, conn, "list_participants", forged, room=room_name)
        assert reply["error"]["code"] == "unauthenticated"
        assert await _members(system, room_name) == ["bob"]
        own = _token(room_admin=True, room=room_name)
        reply = await _request(
            system,
            _token(room_list=True),
            "remove_participant",
            own,
            room=room_name,
            identity="bob",
        )
        assert reply["result"] == {"removed": "bob"}
        assert "removed" in await asyncio.wait_for(left, 10)
    finally:
        await bob.disconnect()
