"""The server API, for backend services and the CLI: list rooms and participants, remove a
participant. Authorised by the API key and secret: as LiveKit's server SDKs do, a short-lived
token is minted per call with exactly the grant it needs (``roomList`` to list rooms,
``roomAdmin`` for that one room for the calls about a room).

    async with RoomService("ws://127.0.0.1:7880", api_key, api_secret) as api:
        for room in await api.list_rooms():
            print(room.name, room.num_participants)
"""

from __future__ import annotations

import asyncio
import itertools
import json
from dataclasses import dataclass, field
from datetime import timedelta
from types import TracebackType
from typing import Any
from urllib.parse import quote

from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import InvalidStatus, WebSocketException

from .exceptions import AuthError, ConnectError, RoomStreamsError
from .token import AccessToken, VideoGrants

__all__ = ["ApiError", "ParticipantDetails", "RoomDetails", "RoomService"]


class ApiError(RoomStreamsError):
    """The server API refused a call (``code``: not_found, permission_denied, ...)."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(f"{code}: {message}")
        self.code = code
        self.message = message


@dataclass(frozen=True, slots=True)
class RoomDetails:
    name: str
    num_participants: int
    created: int | None = None


@dataclass(frozen=True, slots=True)
class ParticipantDetails:
    identity: str
    name: str = ""
    metadata: str = ""
    attributes: dict[str, str] = field(default_factory=dict)


class RoomService:
    def __init__(self, url: str, api_key: str, api_secret: str) -> None:
        self.url = url.rstrip("/")
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
        rooms = await self._call("list_rooms")
        return [RoomDetails(r["name"], r["num_participants"], r.get("created")) for r in rooms]

    async def list_participants(self, room: str) -> list[ParticipantDetails]:
        people = await self._call("list_participants", self._admin(room), room=room)
        return [
            ParticipantDetails(
                p["identity"], p.get("name", ""), p.get("metadata", ""), p.get("attributes", {})
            )
            for p in people
        ]

    async def remove_participant(self, room: str, identity: str) -> None:
        await self._call("remove_participant", self._admin(room), room=room, identity=identity)
