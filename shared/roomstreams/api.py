"""The server API, for backend services and the CLI: list rooms and participants, remove a
participant, send a data packet into a room. Authorised by the API key and secret: as
LiveKit's server SDKs do, a short-lived token is minted per call with exactly the grant it
needs (``roomList`` to list rooms, ``roomAdmin`` for that one room for the calls about it).

Two transports, chosen by the URL:

- ``http://`` / ``https://``: LiveKit's ``RoomService`` over Twirp (JSON) on the router's HTTP
  port (``roomstreams up``: ``http://127.0.0.1:7890``); any LiveKit server SDK works there too.
- ``ws://`` / ``wss://``: the WebSocket ``/api`` of a gateway (list and remove only).

    async with RoomService("http://127.0.0.1:7890", api_key, api_secret) as api:
        for room in await api.list_rooms():
            print(room.name, room.num_participants)
"""

from __future__ import annotations

import asyncio
import base64
import itertools
import json
import urllib.error
import urllib.request
from dataclasses import dataclass, field
from datetime import timedelta
from types import TracebackType
from typing import Any
from urllib.parse import quote, urlsplit

from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import InvalidStatus, WebSocketException

from .exceptions import AuthError, ConnectError, RoomStreamsError
from .token import AccessToken, VideoGrants

__all__ = ["ApiError", "ParticipantDetails", "RoomDetails", "RoomService"]

_TIMEOUT_S = 10.0


class ApiError(RoomStreamsError):
    """The server API refused a call (``code``: not_found, permission_denied,
    unauthenticated, ...: Twirp's codes over HTTP)."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(f"{code}: {message}")
        self.code = code
        self.message = message


@dataclass(frozen=True, slots=True)
class RoomDetails:
    name: str
    num_participants: int
    created: int | None = None
    metadata: str = ""
    sid: str = ""


@dataclass(frozen=True, slots=True)
class ParticipantDetails:
    identity: str
    name: str = ""
    metadata: str = ""
    attributes: dict[str, str] = field(default_factory=dict)
    sid: str = ""


class _Twirp:
    """LiveKit's RoomService, protobuf JSON over HTTP (stdlib client, in a worker thread)."""

    def __init__(self, url: str) -> None:
        self.base = url.rstrip("/") + "/twirp/livekit.RoomService/"
        # never through a proxy: the API is usually on this machine or a private network
        self._opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))

    def _post(self, method: str, token: str, body: dict[str, Any]) -> Any:
        req = urllib.request.Request(
            self.base + method,
            data=json.dumps(body).encode(),
            headers={"Content-Type": "application/json", "Authorization": f"Bearer {token}"},
            method="POST",
        )
        try:
            with self._opener.open(req, timeout=_TIMEOUT_S) as resp:
                return json.loads(resp.read() or b"{}")
        except urllib.error.HTTPError as exc:
            raw = exc.read()
            try:
                err = json.loads(raw)
                code, msg = str(err["code"]), str(err.get("msg", ""))
            except (ValueError, KeyError, TypeError):
                code, msg = "unknown", f"HTTP {exc.code}: {raw[:200]!r}"
            raise ApiError(code, msg) from None
        except (OSError, ValueError) as exc:
            where = self.base.rsplit("/twirp/", 1)[0]
            raise ConnectError(f"could not reach the server API at {where}: {exc}") from None

    async def call(self, method: str, token: str, body: dict[str, Any]) -> Any:
        return await asyncio.to_thread(self._post, method, token, body)


def _int(v: Any) -> int:
    return int(v) if v not in (None, "") else 0


class RoomService:
    def __init__(self, url: str, api_key: str, api_secret: str) -> None:
        self.url = url.rstrip("/")
        scheme = urlsplit(self.url).scheme
        if scheme not in ("http", "https", "ws", "wss"):
            raise ValueError(f"server API URL must be http(s):// or ws(s)://, not {url!r}")
        self._twirp = _Twirp(self.url) if scheme in ("http", "https") else None
        self._key, self._secret = api_key, api_secret
        self._token = self._mint(VideoGrants(room_list=True))
        self._ws: ClientConnection | None = None
        self._ids = itertools.count(1)
        self._lock = asyncio.Lock()

    def _mint(self, grants: VideoGrants) -> str:
        return (
            AccessToken(self._key, self._secret)
            .with_identity("roomstreams-api")
            .with_grants(grants)
            .with_ttl(timedelta(minutes=10))
            .to_jwt()
        )

    def _admin(self, room: str) -> str:
        return self._mint(VideoGrants(room_admin=True, room=room))

    async def __aenter__(self) -> RoomService:
        await self.connect()
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.aclose()

    async def connect(self) -> None:
        if self._twirp is not None:
            return  # one request per call
        try:
            self._ws = await connect(
                f"{self.url}/api?access_token={quote(self._token)}", compression=None
            )
        except InvalidStatus as exc:
            body = exc.response.body.decode(errors="replace").strip() if exc.response.body else ""
            raise AuthError(f"server API refused ({exc.response.status_code}): {body}") from exc
        except (OSError, WebSocketException, TimeoutError) as exc:
            raise ConnectError(f"could not reach the server API at {self.url}: {exc!r}") from exc

    async def aclose(self) -> None:
        ws, self._ws = self._ws, None
        if ws is not None:
            await ws.close()

    async def _call(self, method: str, token: str | None = None, **params: Any) -> Any:
        if self._ws is None:
            await self.connect()
        assert self._ws is not None
        req_id = next(self._ids)
        req: dict[str, Any] = {"id": req_id, "method": method, "params": params}
        if token is not None:
            req["access_token"] = token
        async with self._lock:  # one request in flight per connection: replies come in order
            await self._ws.send(json.dumps(req))
            reply = json.loads(await self._ws.recv())
        if "error" in reply:
            raise ApiError(reply["error"]["code"], reply["error"]["message"])
        return reply["result"]

    async def list_rooms(self) -> list[RoomDetails]:
        if self._twirp is not None:
            got = await self._twirp.call("ListRooms", self._token, {})
            return [
                RoomDetails(
                    r["name"],
                    _int(r.get("numParticipants")),
                    _int(r.get("creationTimeMs")) or None,
                    r.get("metadata", ""),
                    r.get("sid", ""),
                )
                for r in got.get("rooms", [])
            ]
        rooms = await self._call("list_rooms")
        return [RoomDetails(r["name"], r["num_participants"], r.get("created")) for r in rooms]

    async def list_participants(self, room: str) -> list[ParticipantDetails]:
        if self._twirp is not None:
            got = await self._twirp.call("ListParticipants", self._admin(room), {"room": room})
            people = got.get("participants", [])
        else:
            people = await self._call("list_participants", self._admin(room), room=room)
        return [
            ParticipantDetails(
                p["identity"],
                p.get("name", ""),
                p.get("metadata", ""),
                p.get("attributes", {}),
                p.get("sid", ""),
            )
            for p in people
        ]

    async def remove_participant(self, room: str, identity: str) -> None:
        if self._twirp is not None:
            body = {"room": room, "identity": identity}
            await self._twirp.call("RemoveParticipant", self._admin(room), body)
            return
        await self._call("remove_participant", self._admin(room), room=room, identity=identity)

    async def send_data(
        self,
        room: str,
        payload: bytes,
        *,
        topic: str = "",
        destination_identities: list[str] | None = None,
        reliable: bool = True,
    ) -> None:
        """A data packet into ``room`` from the server (receivers see no sender identity).
        Over Twirp only."""
        if self._twirp is None:
            raise ApiError("unimplemented", "send_data needs the Twirp API (an http:// URL)")
        body = {
            "room": room,
            "data": base64.b64encode(payload).decode(),
            "topic": topic,
            "destinationIdentities": list(destination_identities or []),
            "kind": "RELIABLE" if reliable else "LOSSY",
        }
        await self._twirp.call("SendData", self._admin(room), body)
