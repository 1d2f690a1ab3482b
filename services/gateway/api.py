"""The server API on a gateway's port: a WebSocket at ``/api`` speaking JSON requests
(``{"id", "method", "params"}`` -> ``{"id", "result"}`` or ``{"id", "error": {"code",
"message"}}``), authorised by a token signed with the API secret that carries the
``roomList`` (read) or ``roomAdmin`` (read and remove) grant.

Room and member lists come from what the router keeps in Redis (``rs:rooms`` and each room's
members hash); removing a participant goes through the room log like everything else."""

from __future__ import annotations

import json
from typing import Any

import redis.asyncio as aioredis
from websockets.asyncio.server import ServerConnection
from websockets.exceptions import ConnectionClosed

from roomstreams.protocol.entries import LogEntry, encode_log_entry
from roomstreams.protocol.keys import ROOMS, members_key, room_log_key
from roomstreams.token import Claims

__all__ = ["ApiError", "serve_api"]


class ApiError(Exception):
    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code
        self.message = message


async def _list_rooms(r: aioredis.Redis, partitions: int) -> list[dict[str, Any]]:
    rooms = await r.hgetall(ROOMS)
    out = []
    for name_b, meta_b in sorted(rooms.items()):
        name = name_b.decode() if isinstance(name_b, bytes) else name_b
        meta = json.loads(meta_b)
        n = await r.hlen(members_key(name, partitions))
        out.append({"name": name, "created": meta.get("created"), "num_participants": int(n)})
    return out


async def _participants(r: aioredis.Redis, room: str, partitions: int) -> list[dict[str, Any]]:
    if not await r.hexists(ROOMS, room):
        raise ApiError("not_found", f"room {room!r} does not exist")
    values = await r.hvals(members_key(room, partitions))
    return sorted((json.loads(v) for v in values), key=lambda p: str(p.get("identity")))


async def _call(
    r: aioredis.Redis, claims: Claims, partitions: int, method: str, params: dict[str, Any]
) -> Any:
    v = claims.video
    if method == "list_rooms":
        if not (v.room_list or v.room_admin):
            raise ApiError("permission_denied", "list_rooms needs the roomList grant")
        return await _list_rooms(r, partitions)
    if method == "list_participants":
        if not (v.room_list or v.room_admin):
            raise ApiError("permission_denied", "list_participants needs the roomList grant")
        return await _participants(r, str(params.get("room", "")), partitions)
    if method == "remove_participant":
        if not v.room_admin:
            raise ApiError("permission_denied", "remove_participant needs the roomAdmin grant")
        room, identity = str(params.get("room", "")), str(params.get("identity", ""))
        people = await _participants(r, room, partitions)
        if not any(p.get("identity") == identity for p in people):
            raise ApiError("not_found", f"{identity!r} is not in room {room!r}")
        entry = LogEntry(
            kind="r", session="api", identity=identity, reason="removed by the server API"
        )
        await r.xadd(room_log_key(room, partitions), encode_log_entry(entry))  # type: ignore[arg-type]
        return {"removed": identity}
    raise ApiError("unknown_method", f"unknown method {method!r}")


async def serve_api(
    ws: ServerConnection, claims: Claims, r: aioredis.Redis, partitions: int
) -> None:
    """Answer requests on one API connection until it closes."""
    try:
        async for message in ws:
            req_id: Any = None
            try:
                req = json.loads(message)
                if not isinstance(req, dict):
                    raise ApiError("bad_request", "a request is a JSON object")
                req_id = req.get("id")
                params = req.get("params") or {}
                if not isinstance(params, dict):
                    raise ApiError("bad_request", "params must be an object")
                result = await _call(r, claims, partitions, str(req.get("method")), params)
                reply: dict[str, Any] = {"id": req_id, "result": result}
            except ApiError as exc:
                reply = {"id": req_id, "error": {"code": exc.code, "message": exc.message}}
            except json.JSONDecodeError as exc:
                reply = {"id": None, "error": {"code": "bad_json", "message": str(exc)}}
            await ws.send(json.dumps(reply))
    except ConnectionClosed:
        return
