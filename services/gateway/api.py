"""The server API on a gateway's port: a WebSocket at ``/api`` speaking JSON requests
(``{"id", "method", "params", "access_token"?}`` -> ``{"id", "result"}`` or ``{"id",
"error": {"code", "message"}}``). Kept for compatibility: LiveKit's ``RoomService`` over
Twirp, on the router's HTTP port (``services/api/twirp.py``), is the full server API.

Every request is authorised by a token signed with the API secret: the one the connection
was opened with, or the request's own ``access_token`` (so one connection serves calls
scoped to different rooms, as LiveKit's SDKs mint a token per call). Grants are scoped
exactly as LiveKit scopes them (``services/api/grants.py``): ``list_rooms`` needs
``roomList``; ``list_participants`` and ``remove_participant`` need ``roomAdmin`` for that
very room.

Room and member lists come from what the router keeps in Redis; removing a participant goes
through the room log like everything else (``services/api/store.py``)."""

from __future__ import annotations

import json
from typing import Any

from websockets.asyncio.server import ServerConnection
from websockets.exceptions import ConnectionClosed

from roomstreams._redisio import Client
from roomstreams.exceptions import AuthError, PermissionDenied, RoomStreamsError
from roomstreams.token import Claims, verify_token
from services.api import store
from services.api.grants import authorize

__all__ = ["ApiError", "serve_api"]

#: the WebSocket API's methods and the RoomService method whose grants each needs
_METHODS = {
    "list_rooms": "ListRooms",
    "list_participants": "ListParticipants",
    "remove_participant": "RemoveParticipant",
}


class ApiError(RoomStreamsError):
    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code
        self.message = message


async def _call(
    r: Client, claims: Claims, partitions: int, method: str, params: dict[str, Any]
) -> Any:
    lk_method = _METHODS.get(method)
    if lk_method is None:
        raise ApiError("unknown_method", f"unknown method {method!r}")
    room = str(params.get("room", ""))
    try:
        authorize(claims, lk_method, room)
    except PermissionDenied as exc:
        raise ApiError("permission_denied", str(exc)) from None
    if method == "list_rooms":
        return [
            {"name": x.name, "created": x.created_ms, "num_participants": x.num_participants}
            for x in await store.list_rooms(r, partitions)
        ]
    try:
        await store.get_room(r, room, partitions)
        if method == "list_participants":
            return [m.as_dict() for m in await store.members(r, room, partitions)]
        identity = str(params.get("identity", ""))
        await store.remove_participant(r, room, identity, partitions, "removed by the server API")
    except store.NotFound as exc:
        raise ApiError("not_found", str(exc)) from None
    except TimeoutError as exc:
        raise ApiError("internal", str(exc)) from None
    return {"removed": identity}


async def serve_api(
    ws: ServerConnection,
    claims: Claims,
    r: Client,
    partitions: int,
    *,
    api_key: str = "",
    api_secret: str = "",
) -> None:
    """Answer requests on one API connection until it closes. ``api_key``/``api_secret``
    verify per-request tokens (without them, a request carrying one is refused)."""
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
                call_claims = claims
                token = req.get("access_token")
                if token is not None:
                    if not isinstance(token, str) or not api_secret:
                        raise ApiError("bad_request", "access_token must be a token string")
                    try:
                        call_claims = verify_token(token, api_key, api_secret)
                    except AuthError as exc:
                        raise ApiError("unauthenticated", str(exc)) from None
                result = await _call(r, call_claims, partitions, str(req.get("method")), params)
                reply: dict[str, Any] = {"id": req_id, "result": result}
            except ApiError as exc:
                reply = {"id": req_id, "error": {"code": exc.code, "message": exc.message}}
            except (json.JSONDecodeError, RecursionError) as exc:
                reply = {"id": None, "error": {"code": "bad_json", "message": str(exc)}}
            await ws.send(json.dumps(reply))
    except ConnectionClosed:
        return
