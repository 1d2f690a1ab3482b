"""LiveKit's ``RoomService`` over Twirp: ``POST /twirp/livekit.RoomService/<Method>``, bodies in
protobuf (``application/protobuf``, what LiveKit's Python SDK sends) or in protobuf's JSON
mapping (``application/json``, the Node SDK's), answered in the same encoding; the messages
are livekit/protocol's own (the ``livekit-protocol`` package), so LiveKit's server SDKs call
it unchanged. ``Authorization: Bearer <token>`` signed with the API secret, grants scoped as
LiveKit scopes them (:func:`services.api.grants.authorize`). Errors are Twirp errors
(``{"code", "msg"}`` with the code's HTTP status) with LiveKit's codes: a missing, invalid or
insufficient token is ``unauthenticated`` (401), as LiveKit answers.

What each call does is in :mod:`services.api.store` (shared with the gateways' WebSocket API).
Calls about tracks (MutePublishedTrack, UpdateSubscriptions) and moving participants between
rooms answer ``unimplemented``: there are no tracks here."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any, Final

from google.protobuf import json_format
from google.protobuf.message import DecodeError, Message
from livekit.protocol import models as lkm
from livekit.protocol import room as lkr
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import RedisError
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from roomstreams._redisio import Client
from roomstreams.exceptions import AuthError, PermissionDenied, RoomStreamsError
from roomstreams.token import CLAIM_LIMITS, Claims, verify_token

from . import store
from .grants import authorize

__all__ = [
    "MAX_BODY_BYTES",
    "METHODS",
    "TwirpError",
    "participant_sid",
    "twirp_routes",
]

logger = logging.getLogger("api.twirp")

#: requests with a bigger body are refused (a data packet is at most 15 KiB)
MAX_BODY_BYTES: Final = 1 << 20
#: a call that takes longer (Redis stalled, the router not confirming) is deadline_exceeded
CALL_TIMEOUT: Final = 10.0
_PROTOBUF = "application/protobuf"
_JSON = "application/json"
#: Twirp error codes and their HTTP statuses (twirp's wire protocol)
_STATUS: Final = {
    "canceled": 408,
    "unknown": 500,
    "invalid_argument": 400,
    "malformed": 400,
    "deadline_exceeded": 408,
    "not_found": 404,
    "bad_route": 404,
    "already_exists": 409,
    "permission_denied": 403,
    "unauthenticated": 401,
    "resource_exhausted": 429,
    "failed_precondition": 412,
    "aborted": 409,
    "out_of_range": 400,
    "unimplemented": 501,
    "internal": 500,
    "unavailable": 503,
    "dataloss": 500,
}


class TwirpError(RoomStreamsError):
    def __init__(self, code: str, msg: str) -> None:
        super().__init__(f"{code}: {msg}")
        self.code = code
        self.msg = msg

    def response(self) -> JSONResponse:
        return JSONResponse({"code": self.code, "msg": self.msg}, status_code=_STATUS[self.code])


@dataclass(frozen=True, slots=True)
class _Ctx:
    r: Client
    partitions: int


Handler = Callable[[_Ctx, Any], Awaitable[Message]]


# -- conversions -----------------------------------------------------------------------------


#: calls that only read, retried once on a broken Redis connection
_READ_ONLY = frozenset({"ListRooms", "ListParticipants", "GetParticipant"})

def _room(x: store.RoomRecord) -> lkm.Room:
    return lkm.Room(
        sid=x.sid,
        name=x.name,
        empty_timeout=x.empty_timeout,
        departure_timeout=x.departure_timeout,
        max_participants=x.max_participants,
        creation_time=x.created_ms // 1000,
        creation_time_ms=x.created_ms,
        metadata=x.metadata,
        num_participants=x.num_participants,
    )


_KINDS: Final = {
    "standard": lkm.ParticipantInfo.Kind.STANDARD,
    "ingress": lkm.ParticipantInfo.Kind.INGRESS,
    "egress": lkm.ParticipantInfo.Kind.EGRESS,
    "sip": lkm.ParticipantInfo.Kind.SIP,
    "agent": lkm.ParticipantInfo.Kind.AGENT,
}


def participant_sid(session: str) -> str:
    return f"PA_{session}"


def _participant(m: store.Member) -> lkm.ParticipantInfo:
    kind = _KINDS.get(str(m.extra.get("kind", "standard")), lkm.ParticipantInfo.Kind.STANDARD)
    info = lkm.ParticipantInfo(
        sid=str(m.extra.get("sid") or participant_sid(m.session)),
        identity=m.identity,
        name=m.name,
        metadata=m.metadata,
        state=lkm.ParticipantInfo.State.ACTIVE,
        attributes=m.attributes,
        kind=kind,
    )
    perms = m.extra.get("permission")
    if isinstance(perms, dict):
        info.permission.CopyFrom(
            lkm.ParticipantPermission(
                can_subscribe=bool(perms.get("can_subscribe", True)),
                can_publish_data=bool(perms.get("can_publish_data", True)),
                can_update_metadata=bool(perms.get("can_update_metadata", False)),
                hidden=bool(perms.get("hidden", False)),
                agent=kind == lkm.ParticipantInfo.Kind.AGENT,
            )
        )
    return info


def _room_name(name: str) -> str:
    if not name:
        raise TwirpError("invalid_argument", "no room name")
    if len(name.encode("utf-8")) > CLAIM_LIMITS["room"]:
        raise TwirpError("invalid_argument", "room name length exceeds limits")
    return name


# -- the methods ------------------------------------------------------------------------------


async def _create_room(c: _Ctx, req: lkr.CreateRoomRequest) -> lkm.Room:
    x = await store.create_room(
        c.r,
        c.partitions,
        _room_name(req.name),
        metadata=req.metadata,
        empty_timeout=req.empty_timeout,
        departure_timeout=req.departure_timeout,
        max_participants=req.max_participants,
    )
    return _room(x)


async def _list_rooms(c: _Ctx, req: lkr.ListRoomsRequest) -> lkr.ListRoomsResponse:
    rooms = await store.list_rooms(c.r, c.partitions, list(req.names) or None)
    return lkr.ListRoomsResponse(rooms=[_room(x) for x in rooms])


async def _delete_room(c: _Ctx, req: lkr.DeleteRoomRequest) -> lkr.DeleteRoomResponse:
    try:
        await store.delete_room(c.r, _room_name(req.room), c.partitions, "room deleted")
    except store.NotFound:
        raise TwirpError("not_found", "room not found") from None
    return lkr.DeleteRoomResponse()


async def _list_participants(
    c: _Ctx, req: lkr.ListParticipantsRequest
) -> lkr.ListParticipantsResponse:
    people = await store.members(c.r, req.room, c.partitions)
    return lkr.ListParticipantsResponse(participants=[_participant(m) for m in people])


async def _member(c: _Ctx, room: str, identity: str) -> store.Member:
    if not identity:
        raise TwirpError("invalid_argument", "identity cannot be empty")
    try:
        return await store.find_member(c.r, room, identity, c.partitions)
    except store.NotFound:
        raise TwirpError("not_found", "participant does not exist") from None


async def _get_participant(c: _Ctx, req: lkr.RoomParticipantIdentity) -> lkm.ParticipantInfo:
    return _participant(await _member(c, req.room, req.identity))


async def _remove_participant(
    c: _Ctx, req: lkr.RoomParticipantIdentity
) -> lkr.RemoveParticipantResponse:
    await _member(c, req.room, req.identity)
    try:
        await store.remove_participant(
            c.r, req.room, req.identity, c.partitions, "removed by the server API"
        )
    except store.NotFound:
        raise TwirpError("not_found", "participant does not exist") from None
    return lkr.RemoveParticipantResponse()


async def _update_participant(c: _Ctx, req: lkr.UpdateParticipantRequest) -> lkm.ParticipantInfo:
    m = await _member(c, req.room, req.identity)
    if req.HasField("permission"):
        raise TwirpError(
            "unimplemented", "updating a participant's permission is not supported by this server"
        )
    if len(req.name.encode("utf-8")) > CLAIM_LIMITS["name"]:
        raise TwirpError("invalid_argument", "name length exceeds limits")
    if len(req.metadata.encode("utf-8")) > CLAIM_LIMITS["metadata"]:
        raise TwirpError("invalid_argument", "metadata size exceeds limits")
    merged = {**m.attributes, **req.attributes}
    size = sum(len(k.encode()) + len(v.encode()) for k, v in merged.items() if v)
    if size > CLAIM_LIMITS["attributes"]:
        raise TwirpError("invalid_argument", "attribute size exceeds limits")
    if not (req.name or req.metadata or req.attributes):
        return _participant(m)  # LiveKit: empty fields change nothing
    try:
        m = await store.update_participant(
            c.r,
            req.room,
            req.identity,
            c.partitions,
            name=req.name or None,
            metadata=req.metadata or None,
            attributes=dict(req.attributes),
        )
    except store.NotFound:
        raise TwirpError("not_found", "participant does not exist") from None
    return _participant(m)


async def _update_room_metadata(c: _Ctx, req: lkr.UpdateRoomMetadataRequest) -> lkm.Room:
    if len(req.metadata.encode("utf-8")) > CLAIM_LIMITS["metadata"]:
        raise TwirpError("invalid_argument", "metadata size exceeds limits")
    try:
        x = await store.update_room_metadata(c.r, c.partitions, req.room, req.metadata)
    except store.NotFound:
        raise TwirpError("not_found", "requested room does not exist") from None
    return _room(x)


async def _send_data(c: _Ctx, req: lkr.SendDataRequest) -> lkr.SendDataResponse:
    dests = list(req.destination_identities)
    if req.destination_sids:
        by_sid = {
            participant_sid(m.session): m.identity
            for m in await store.members(c.r, req.room, c.partitions)
        }
        dests += [by_sid[s] for s in req.destination_sids if s in by_sid]
        if not dests:
            return lkr.SendDataResponse()  # none of those participants is in the room
    try:
        await store.send_data(
            c.r,
            req.room,
            c.partitions,
            req.data,
            topic=req.topic,
            destinations=sorted(set(dests)),
            reliable=req.kind != lkm.DataPacket.Kind.LOSSY,
        )
    except store.NotFound:
        raise TwirpError("not_found", "requested room does not exist") from None
    except ValueError as exc:
        raise TwirpError("invalid_argument", str(exc)) from None
    return lkr.SendDataResponse()


async def _no_tracks(c: _Ctx, req: Any) -> Message:
    raise TwirpError("unimplemented", "this server carries data only: it has no tracks")


async def _no_move(c: _Ctx, req: Any) -> Message:
    raise TwirpError("unimplemented", "moving or forwarding participants is not supported")


#: method -> (request message, handler)
METHODS: Final[dict[str, tuple[type[Message], Handler]]] = {
    "CreateRoom": (lkr.CreateRoomRequest, _create_room),
    "ListRooms": (lkr.ListRoomsRequest, _list_rooms),
    "DeleteRoom": (lkr.DeleteRoomRequest, _delete_room),
    "ListParticipants": (lkr.ListParticipantsRequest, _list_participants),
    "GetParticipant": (lkr.RoomParticipantIdentity, _get_participant),
    "RemoveParticipant": (lkr.RoomParticipantIdentity, _remove_participant),
    "UpdateParticipant": (lkr.UpdateParticipantRequest, _update_participant),
    "UpdateRoomMetadata": (lkr.UpdateRoomMetadataRequest, _update_room_metadata),
    "SendData": (lkr.SendDataRequest, _send_data),
    "MutePublishedTrack": (lkr.MuteRoomTrackRequest, _no_tracks),
    "UpdateSubscriptions": (lkr.UpdateSubscriptionsRequest, _no_tracks),
    "ForwardParticipant": (lkr.ForwardParticipantRequest, _no_move),
    "MoveParticipant": (lkr.MoveParticipantRequest, _no_move),
}
#: what each method's grant check is about (the request's field naming the room)
_ROOM_FIELD: Final = {"CreateRoom": "name", "ListRooms": "", "DeleteRoom": "room"}


# -- the HTTP side ----------------------------------------------------------------------------


def _claims(request: Request, api_key: str, api_secret: str) -> Claims:
    auth = request.headers.get("authorization", "")
    if not auth.startswith("Bearer "):
        raise TwirpError("unauthenticated", "invalid authorization header. Must start with Bearer ")
    try:
        return verify_token(auth[len("Bearer ") :].strip(), api_key, api_secret)
    except AuthError as exc:
        raise TwirpError("unauthenticated", f"invalid token: {exc}") from None


async def _body(request: Request) -> bytes:
    chunks: list[bytes] = []
    size = 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > MAX_BODY_BYTES:
            raise TwirpError("invalid_argument", f"request body over {MAX_BODY_BYTES} bytes")
        chunks.append(chunk)
    return b"".join(chunks)


def _decode(body: bytes, media: str, cls: type[Message]) -> Message:
    msg = cls()
    try:
        if media == _PROTOBUF:
            msg.ParseFromString(body)
        else:
            json_format.Parse(body or b"{}", msg, ignore_unknown_fields=True)
    except (DecodeError, json_format.ParseError, ValueError, RecursionError) as exc:
        raise TwirpError("malformed", f"the request body could not be decoded: {exc}") from None
    return msg


def _encode(msg: Message, media: str) -> Response:
    if media == _PROTOBUF:
        return Response(msg.SerializeToString(), media_type=_PROTOBUF)
    body = json_format.MessageToJson(msg, always_print_fields_with_no_presence=True, indent=None)
    return Response(body, media_type=_JSON)


def twirp_routes(
    r: Client,
    *,
    api_key: str,
    api_secret: str,
    partitions: int,
) -> list[Route]:
    """The Starlette routes of the RoomService."""
    ctx = _Ctx(r, partitions)

    async def endpoint(request: Request) -> Response:
        method = str(request.path_params["method"])
        try:
            entry = METHODS.get(method)
            if entry is None:
                raise TwirpError("bad_route", f"no handler for path {request.url.path}")
            media = request.headers.get("content-type", "").split(";")[0].strip().lower()
            if media not in (_PROTOBUF, _JSON):
                raise TwirpError(
                    "bad_route", f"unexpected Content-Type {media!r}: use {_PROTOBUF} or {_JSON}"
                )
            claims = _claims(request, api_key, api_secret)
            cls, handler = entry
            req = _decode(await _body(request), media, cls)
            room_field = _ROOM_FIELD.get(method, "room")
            room = str(getattr(req, room_field)) if room_field else ""
            try:
                authorize(claims, method, room)
            except PermissionDenied as exc:
                raise TwirpError("unauthenticated", str(exc)) from None
            try:
                answer = await asyncio.wait_for(handler(ctx, req), CALL_TIMEOUT)
            except RedisConnectionError:
                if method not in _READ_ONLY:
                    raise
                # a pooled connection that broke under it: a read is safe to ask again once
                answer = await asyncio.wait_for(handler(ctx, req), CALL_TIMEOUT)
            return _encode(answer, media)
        except TwirpError as exc:
            return exc.response()
        except store.NotFound as exc:
            return TwirpError("not_found", str(exc)).response()
        except TimeoutError as exc:
            return TwirpError("deadline_exceeded", str(exc)).response()
        except RedisError as exc:
            logger.warning("RoomService.%s: Redis failed: %r", method, exc)
            return TwirpError("unavailable", "the server cannot reach Redis").response()
        except Exception:
            logger.exception("RoomService.%s failed", method)
            return TwirpError("internal", "internal error").response()

    async def bad_route(request: Request) -> Response:
        if request.method != "POST":
            msg = f"unsupported method {request.method} (only POST is allowed)"
        else:
            msg = f"no handler for path {request.url.path}"
        return TwirpError("bad_route", msg).response()

    every = ["GET", "POST", "PUT", "DELETE", "PATCH"]
    return [
        Route("/twirp/livekit.RoomService/{method}", endpoint, methods=["POST"]),
        Route("/twirp/livekit.RoomService/{method}", bad_route, methods=every),
        Route("/twirp/{path:path}", bad_route, methods=every),
    ]
