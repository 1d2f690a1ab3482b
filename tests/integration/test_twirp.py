"""LiveKit's RoomService over Twirp on the router's HTTP port, called by LiveKit's own Python
server SDK (``livekit-api``) unchanged, against the real router, gateways and Redis."""

from __future__ import annotations

import asyncio
import signal
from collections.abc import AsyncIterator

import aiohttp
import pytest
from livekit import api as lk

import roomstreams
from roomstreams import AccessToken, VideoGrants
from roomstreams._redis_server import LocalRedisServer
from roomstreams.protocol.limits import MAX_DATA_BYTES

from .conftest import API_KEY, API_SECRET, System, make_env

pytestmark = pytest.mark.slow


@pytest.fixture
async def lkapi(system: System) -> AsyncIterator[lk.LiveKitAPI]:
    async with lk.LiveKitAPI(system.api_url, API_KEY, API_SECRET) as client:
        yield client


async def _join(
    s: System, room: str, identity: str, gateway: int = 0, **kw: str
) -> roomstreams.Room:
    r = roomstreams.Room()
    tok = AccessToken(API_KEY, API_SECRET).with_identity(identity)
    if kw.get("name"):
        tok = tok.with_name(kw["name"])
    if kw.get("metadata"):
        tok = tok.with_metadata(kw["metadata"])
    tok = tok.with_attributes({"role": identity}).with_grants(
        VideoGrants(room=room, room_join=True)
    )
    await r.connect(s.urls[gateway], tok.to_jwt())
    return r


async def test_rooms_and_participants_are_livekit_shaped(
    system: System, lkapi: lk.LiveKitAPI, room_name: str
) -> None:
    alice = await _join(system, room_name, "alice", name="Alice", metadata='{"a":1}')
    bob = await _join(system, room_name, "bob", gateway=1)
    try:
        listed = await lkapi.room.list_rooms(lk.ListRoomsRequest(names=[room_name]))
        assert [r.name for r in listed.rooms] == [room_name]
        room = listed.rooms[0]
        assert room.num_participants == 2 and room.sid.startswith("RM_")
        assert room.creation_time > 0 and room.creation_time_ms // 1000 == room.creation_time
        everyone = await lkapi.room.list_rooms(lk.ListRoomsRequest())
        assert room_name in {r.name for r in everyone.rooms}

        people = await lkapi.room.list_participants(lk.ListParticipantsRequest(room=room_name))
        assert [p.identity for p in people.participants] == ["alice", "bob"]
        a = people.participants[0]
        assert (a.name, a.metadata, dict(a.attributes)) == ("Alice", '{"a":1}', {"role": "alice"})
        assert a.sid.startswith("PA_") and a.state == lk.ParticipantInfo.State.ACTIVE

        got = await lkapi.room.get_participant(
            lk.RoomParticipantIdentity(room=room_name, identity="bob")
        )
        assert got.identity == "bob" and got.sid == people.participants[1].sid
        with pytest.raises(lk.TwirpError) as nf:
            await lkapi.room.get_participant(
                lk.RoomParticipantIdentity(room=room_name, identity="nobody")
            )
        assert (nf.value.code, nf.value.status) == ("not_found", 404)
        empty = await lkapi.room.list_participants(lk.ListParticipantsRequest(room="no-such-room"))
        assert list(empty.participants) == []
    finally:
        await alice.disconnect()
        await bob.disconnect()


async def test_remove_participant(system: System, lkapi: lk.LiveKitAPI, room_name: str) -> None:
    alice = await _join(system, room_name, "alice")
    bob = await _join(system, room_name, "bob", gateway=1)
    left: asyncio.Queue[str] = asyncio.Queue()
    reasons: asyncio.Queue[str] = asyncio.Queue()
    alice.on("participant_disconnected", lambda p: left.put_nowait(p.identity))
    bob.on("disconnected", reasons.put_nowait)
    try:
        await lkapi.room.remove_participant(
            lk.RoomParticipantIdentity(room=room_name, identity="bob")
        )
        # it returns once the router has bob out of the room
        people = await lkapi.room.list_participants(lk.ListParticipantsRequest(room=room_name))
        assert [p.identity for p in people.participants] == ["alice"]
        assert await asyncio.wait_for(left.get(), 5) == "bob"
        assert "removed" in await asyncio.wait_for(reasons.get(), 5)
        with pytest.raises(lk.TwirpError) as nf:
            await lkapi.room.remove_participant(
                lk.RoomParticipantIdentity(room=room_name, identity="bob")
            )
        assert nf.value.code == "not_found"
    finally:
        await alice.disconnect()
        await bob.disconnect()


async def test_create_update_and_delete_a_room(
    system: System, lkapi: lk.LiveKitAPI, room_name: str
) -> None:
    made = await lkapi.room.create_room(
        lk.CreateRoomRequest(name=room_name, metadata="m0", empty_timeout=60, max_participants=5)
    )
    assert (made.name, made.metadata, made.empty_timeout, made.num_participants) == (
        room_name,
        "m0",
        60,
        0,
    )
    again = await lkapi.room.create_room(lk.CreateRoomRequest(name=room_name))
    assert again.sid == made.sid  # an existing room is returned as it is
    listed = await lkapi.room.list_rooms(lk.ListRoomsRequest(names=[room_name]))
    assert [(r.name, r.num_participants) for r in listed.rooms] == [(room_name, 0)]

    alice = await _join(system, room_name, "alice")
    bob = await _join(system, room_name, "bob", gateway=1)
    reasons: asyncio.Queue[str] = asyncio.Queue()
    alice.on("disconnected", reasons.put_nowait)
    bob.on("disconnected", reasons.put_nowait)
    try:
        updated = await lkapi.room.update_room_metadata(
            lk.UpdateRoomMetadataRequest(room=room_name, metadata="m1")
        )
        assert (updated.metadata, updated.sid, updated.num_participants) == ("m1", made.sid, 2)
        await lkapi.room.delete_room(lk.DeleteRoomRequest(room=room_name))
        for _ in range(2):
            assert "room deleted" in await asyncio.wait_for(reasons.get(), 5)
        listed = await lkapi.room.list_rooms(lk.ListRoomsRequest(names=[room_name]))
        assert list(listed.rooms) == []
        with pytest.raises(lk.TwirpError) as nf:
            await lkapi.room.delete_room(lk.DeleteRoomRequest(room=room_name))
        assert (nf.value.code, nf.value.status) == ("not_found", 404)
    finally:
        await alice.disconnect()
        await bob.disconnect()


async def test_send_data_from_the_server(
    system: System, lkapi: lk.LiveKitAPI, room_name: str
) -> None:
    alice = await _join(system, room_name, "alice")
    bob = await _join(system, room_name, "bob", gateway=1)
    got: dict[str, asyncio.Queue[roomstreams.DataPacket]] = {
        "alice": asyncio.Queue(),
        "bob": asyncio.Queue(),
    }
    alice.on("data_received", got["alice"].put_nowait)
    bob.on("data_received", got["bob"].put_nowait)
    try:
        await lkapi.room.send_data(
            lk.SendDataRequest(
                room=room_name, data=b"to all", topic="news", kind=lk.DataPacket.RELIABLE
            )
        )
        for who in ("alice", "bob"):
            p = await asyncio.wait_for(got[who].get(), 5)
            assert (p.payload, p.topic, p.participant_identity) == (b"to all", "news", "")
            assert p.participant is None and p.reliable
        await lkapi.room.send_data(
            lk.SendDataRequest(
                room=room_name,
                data=b"just bob",
                destination_identities=["bob"],
                kind=lk.DataPacket.LOSSY,
            )
        )
        p = await asyncio.wait_for(got["bob"].get(), 5)
        assert p.payload == b"just bob" and not p.reliable
        # destination sids, as ListParticipants gives them
        people = await lkapi.room.list_participants(lk.ListParticipantsRequest(room=room_name))
        sid = {q.identity: q.sid for q in people.participants}["alice"]
        await lkapi.room.send_data(
            lk.SendDataRequest(room=room_name, data=b"by sid", destination_sids=[sid])
        )
        assert (await asyncio.wait_for(got["alice"].get(), 5)).payload == b"by sid"
        assert got["bob"].empty()  # bob got neither the sid packet nor a second copy
        with pytest.raises(lk.TwirpError) as big:
            await lkapi.room.send_data(
                lk.SendDataRequest(room=room_name, data=b"x" * (MAX_DATA_BYTES + 1))
            )
        assert big.value.code == "invalid_argument"
        with pytest.raises(lk.TwirpError) as nf:
            await lkapi.room.send_data(lk.SendDataRequest(room="no-such-room", data=b"x"))
        assert nf.value.code == "not_found"
    finally:
        await alice.disconnect()
        await bob.disconnect()


async def test_grants_are_scoped_as_livekit_scopes_them(system: System, room_name: str) -> None:
    """Hand-made tokens on LiveKit's client: roomAdmin of another room, or of none, gets
    LiveKit's ``unauthenticated``; a bad secret too."""
    alice = await _join(system, room_name, "alice")
    try:
        async with aiohttp.ClientSession() as http:
            for grants, method, body in [
                (
                    VideoGrants(room_admin=True, room="elsewhere"),
                    "ListParticipants",
                    {"room": room_name},
                ),
                (
                    VideoGrants(room_admin=True),
                    "RemoveParticipant",
                    {"room": room_name, "identity": "alice"},
                ),
                (VideoGrants(room_list=True), "ListParticipants", {"room": room_name}),
                (VideoGrants(room_admin=True, room=room_name), "ListRooms", {}),
                (
                    VideoGrants(room_admin=True, room=room_name, room_list=True),
                    "DeleteRoom",
                    {"room": room_name},
                ),
                (VideoGrants(room_admin=True, room=room_name), "CreateRoom", {"name": room_name}),
            ]:
                tok = AccessToken(API_KEY, API_SECRET).with_grants(grants).to_jwt()
                async with http.post(
                    f"{system.api_url}/twirp/livekit.RoomService/{method}",
                    json=body,
                    headers={"Authorization": f"Bearer {tok}"},
                ) as resp:
                    err = await resp.json()
                    assert resp.status == 401, (method, err)
                    assert err["code"] == "unauthenticated" and "permissions denied" in err["msg"]
        async with lk.LiveKitAPI(system.api_url, API_KEY, "wrong-" + API_SECRET) as bad:
            with pytest.raises(lk.TwirpError) as exc:
                await bad.room.list_rooms(lk.ListRoomsRequest())
            assert (exc.value.code, exc.value.status) == ("unauthenticated", 401)
        async with lk.LiveKitAPI(system.api_url, API_KEY, API_SECRET) as good:
            people = await good.room.list_participants(lk.ListParticipantsRequest(room=room_name))
            assert [p.identity for p in people.participants] == ["alice"]
    finally:
        await alice.disconnect()


async def test_json_bodies_errors_and_health(system: System, room_name: str) -> None:
    """The Node SDK's encoding (protobuf JSON), Twirp errors for bad requests, health."""
    alice = await _join(system, room_name, "alice")
    tok = (
        AccessToken(API_KEY, API_SECRET)
        .with_grants(VideoGrants(room_admin=True, room=room_name))
        .to_jwt()
    )
    auth = {"Authorization": f"Bearer {tok}"}
    base = f"{system.api_url}/twirp/livekit.RoomService"
    try:
        async with aiohttp.ClientSession() as http:
            async with http.post(
                f"{base}/ListParticipants", json={"room": room_name}, headers=auth
            ) as resp:
                assert resp.status == 200 and resp.content_type == "application/json"
                body = await resp.json()
            assert [p["identity"] for p in body["participants"]] == ["alice"]
            assert body["participants"][0]["state"] == "ACTIVE"
            async with http.post(
                f"{base}/UpdateParticipant",
                json={
                    "room": room_name,
                    "identity": "alice",
                    "permission": {"canSubscribe": False},
                },
                headers=auth,
            ) as resp:
                err = await resp.json()
                assert resp.status == 501 and err["code"] == "unimplemented", err
            async with http.post(f"{base}/NoSuchMethod", json={}, headers=auth) as resp:
                assert resp.status == 404 and (await resp.json())["code"] == "bad_route"
            async with http.get(f"{base}/ListRooms", headers=auth) as resp:
                assert resp.status == 404 and (await resp.json())["code"] == "bad_route"
            async with http.post(
                f"{base}/ListParticipants",
                data=b"{not json",
                headers={**auth, "Content-Type": "application/json"},
            ) as resp:
                assert resp.status == 400 and (await resp.json())["code"] == "malformed"
            async with http.post(
                f"{base}/ListParticipants",
                data=b"x",
                headers={**auth, "Content-Type": "text/plain"},
            ) as resp:
                assert resp.status == 404 and (await resp.json())["code"] == "bad_route"
            async with http.post(f"{base}/ListParticipants", json={"room": room_name}) as resp:
                err = await resp.json()
                assert resp.status == 401 and err["code"] == "unauthenticated"
                assert "Bearer" in err["msg"]
            async with http.get(f"{system.api_url}/healthz") as resp:
                assert resp.status == 200 and (await resp.json())["status"] == "ok"
            async with http.get(f"{system.api_url}/readyz") as resp:
                ready = await resp.json()
                assert resp.status == 200 and ready["status"] == "ready"
                assert len(ready["partitions"]) == system.partitions
    finally:
        await alice.disconnect()


async def test_roomstreams_room_service_over_twirp(system: System, room_name: str) -> None:
    """The project's own client on the Twirp API: the same answers as on the WebSocket API."""
    from roomstreams._redis_server import free_port
    from roomstreams.api import ApiError, RoomService

    alice = await _join(system, room_name, "alice", name="Alice")
    got: asyncio.Queue[roomstreams.DataPacket] = asyncio.Queue()
    alice.on("data_received", got.put_nowait)
    try:
        async with RoomService(system.api_url, API_KEY, API_SECRET) as api:
            rooms = {r.name: r for r in await api.list_rooms()}
            assert rooms[room_name].num_participants == 1 and rooms[room_name].created
            people = await api.list_participants(room_name)
            assert [(p.identity, p.name) for p in people] == [("alice", "Alice")]
            assert people[0].attributes == {"role": "alice"} and people[0].sid.startswith("PA_")
            await api.send_data(room_name, b"\x00\xffhi", topic="t", reliable=False)
            p = await asyncio.wait_for(got.get(), 5)
            assert (p.payload, p.topic, p.reliable) == (b"\x00\xffhi", "t", False)
            with pytest.raises(ApiError) as nf:
                await api.remove_participant(room_name, "nobody")
            assert nf.value.code == "not_found"
            await api.remove_participant(room_name, "alice")
            assert await api.list_participants(room_name) == []
        async with RoomService(system.api_url, API_KEY, "wrong-" + API_SECRET) as bad:
            with pytest.raises(ApiError) as exc:
                await bad.list_rooms()
            assert exc.value.code == "unauthenticated"
        nowhere = RoomService(f"http://127.0.0.1:{free_port()}", API_KEY, API_SECRET)
        with pytest.raises(roomstreams.ConnectError, match="could not reach the server API"):
            await nowhere.list_rooms()
    finally:
        await alice.disconnect()


async def test_update_participant(system: System, lkapi: lk.LiveKitAPI, room_name: str) -> None:
    """Name, metadata and attributes (merged, "" deletes) through the room log: the answer,
    the list and a late joiner all see the new values."""
    alice = await _join(system, room_name, "alice", name="Alice", metadata="m0")
    carol = roomstreams.Room()
    try:
        info = await lkapi.room.update_participant(
            lk.UpdateParticipantRequest(
                room=room_name,
                identity="alice",
                metadata="m1",
                name="Alice B.",
                attributes={"mood": "happy", "role": ""},
            )
        )
        assert (info.identity, info.name, info.metadata) == ("alice", "Alice B.", "m1")
        assert dict(info.attributes) == {"mood": "happy"}  # "role" deleted
        # empty fields change nothing (LiveKit), the answer is the participant as it is
        same = await lkapi.room.update_participant(
            lk.UpdateParticipantRequest(room=room_name, identity="alice")
        )
        assert (same.name, same.metadata, dict(same.attributes)) == (
            "Alice B.",
            "m1",
            {"mood": "happy"},
        )
        await carol.connect(system.urls[1], system.token(room_name, "carol"))
        seen = carol.remote_participants["alice"]
        assert (seen.name, seen.metadata, dict(seen.attributes)) == (
            "Alice B.",
            "m1",
            {"mood": "happy"},
        )
        with pytest.raises(lk.TwirpError) as big:
            await lkapi.room.update_participant(
                lk.UpdateParticipantRequest(room=room_name, identity="alice", metadata="x" * 64001)
            )
        assert big.value.code == "invalid_argument"
        with pytest.raises(lk.TwirpError) as nf:
            await lkapi.room.update_participant(
                lk.UpdateParticipantRequest(room=room_name, identity="nobody", metadata="x")
            )
        assert nf.value.code == "not_found"
    finally:
        await carol.disconnect()
        await alice.disconnect()


async def test_room_lifecycles_through_the_api(
    system: System, lkapi: lk.LiveKitAPI, room_name: str
) -> None:
    """A created room nobody joins goes after its empty_timeout; a deleted room that people
    come back to at once is listed again, with them."""
    waiting = f"{room_name}-waiting"
    await lkapi.room.create_room(lk.CreateRoomRequest(name=waiting, empty_timeout=1))
    listed = await lkapi.room.list_rooms(lk.ListRoomsRequest(names=[waiting]))
    assert [r.name for r in listed.rooms] == [waiting]
    await asyncio.sleep(1.2)  # the expiry is a duration: nothing to wait on but the clock
    assert list((await lkapi.room.list_rooms(lk.ListRoomsRequest(names=[waiting]))).rooms) == []

    alice = await _join(system, room_name, "alice")
    await lkapi.room.delete_room(lk.DeleteRoomRequest(room=room_name))
    assert list((await lkapi.room.list_rooms(lk.ListRoomsRequest(names=[room_name]))).rooms) == []
    await alice.disconnect()
    back = await _join(system, room_name, "alice-again")  # within the router's empty TTL
    try:
        listed = await lkapi.room.list_rooms(lk.ListRoomsRequest(names=[room_name]))
        assert [(r.name, r.num_participants) for r in listed.rooms] == [(room_name, 1)]
    finally:
        await back.disconnect()


async def test_readyz_says_when_redis_does_not_answer(room_name: str) -> None:
    """Redis frozen (SIGSTOP): /readyz turns 503 within its ping timeout, /healthz stays
    200 (the process is alive), and both recover when Redis does."""
    with LocalRedisServer() as redis_server:
        s = System(redis_server.url, make_env(redis_server.url))
        try:
            s.start_router()
            assert redis_server.process is not None
            async with aiohttp.ClientSession() as http:
                async with http.get(f"{s.api_url}/readyz") as resp:
                    assert resp.status == 200
                redis_server.process.send_signal(signal.SIGSTOP)
                try:
                    async with http.get(f"{s.api_url}/readyz") as resp:
                        body = await resp.json()
                        assert resp.status == 503 and body["status"] == "redis unreachable"
                    async with http.get(f"{s.api_url}/healthz") as resp:
                        assert resp.status == 200
                finally:
                    redis_server.process.send_signal(signal.SIGCONT)
                async with http.get(f"{s.api_url}/readyz") as resp:
                    assert resp.status == 200
        finally:
            s.stop()
