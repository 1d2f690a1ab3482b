"""What the server API reads and writes in Redis, for every surface (Twirp, WebSocket).

Reads come from what the router keeps: ``rs:rooms`` (live rooms) and each room's members
hash (session -> ParticipantInfo JSON). Writes to a room go through its log like everything
else: a ``remove`` entry, or a data packet appended with the session ``api`` (the router
delivers it to every member, or to the destinations, as a packet with no sender). Appends
use ``NOMKSTREAM``, so a call about a room that is gone creates no key.

Rooms created through the API and room metadata live in :data:`ROOM_SETTINGS` (room ->
JSON), a hash only the API writes: a created room that nobody joined is listed until its
``empty_timeout`` has passed since its creation (LiveKit's default 300 s); a deleted room
keeps a tombstone there so that it is not listed while its participants are being removed
and the router lets it go (``ROOMSTREAMS_ROOM_EMPTY_TTL`` later).
"""

from __future__ import annotations

import hashlib
import json
import time
from dataclasses import dataclass, field
from typing import Any

from roomstreams._redisio import Client
from roomstreams._retry import Backoff
from roomstreams.core.room import SERVER_SESSION
from roomstreams.exceptions import RoomStreamsError
from roomstreams.protocol.binary import DeliveredDataMeta, encode_data_packet
from roomstreams.protocol.entries import LogEntry, encode_log_entry
from roomstreams.protocol.keys import ROOMS, ctl_key_of_log_key, members_key, room_log_key
from roomstreams.protocol.limits import MAX_DATA_BYTES

__all__ = [
    "API_SESSION",
    "DEFAULT_EMPTY_TIMEOUT",
    "ROOM_SETTINGS",
    "Member",
    "NotFound",
    "RoomRecord",
    "create_room",
    "delete_room",
    "find_member",
    "list_rooms",
    "members",
    "remove_participant",
    "send_data",
    "update_participant",
    "update_room_metadata",
]

#: room -> JSON {"sid", "created" (ms), "metadata", "empty_timeout", "departure_timeout",
#: "max_participants", "deleted" (ms, a tombstone)}; written only by the server API.
ROOM_SETTINGS = "rs:api:rooms"
#: the session id of room-log entries the server API appends
API_SESSION = SERVER_SESSION
#: LiveKit's default: an empty room created through the API closes after 5 minutes
DEFAULT_EMPTY_TIMEOUT = 300
#: how long a write waits for the router to confirm it (LiveKit's ExecutionTimeout is 2 s)
CONFIRM_TIMEOUT = 5.0


class NotFound(RoomStreamsError, LookupError):
    """The room or participant does not exist."""


@dataclass(frozen=True, slots=True)
class Member:
    session: str
    identity: str
    name: str = ""
    metadata: str = ""
    attributes: dict[str, str] = field(default_factory=dict)
    #: the rest of what the router keeps (kind, permissions, joined_at, ...), as it is
    extra: dict[str, Any] = field(default_factory=dict)

    @classmethod
    def from_json(cls, session: str, raw: bytes | str) -> Member:
        d = json.loads(raw)
        attrs = d.pop("attributes", None) or {}
        return cls(
            session=session,
            identity=str(d.pop("identity", "")),
            name=str(d.pop("name", "") or ""),
            metadata=str(d.pop("metadata", "") or ""),
            attributes={str(k): str(v) for k, v in attrs.items()},
            extra=d,
        )

    def as_dict(self) -> dict[str, Any]:
        return {
            **self.extra,
            "identity": self.identity,
            "name": self.name,
            "metadata": self.metadata,
            "attributes": self.attributes,
        }


@dataclass(frozen=True, slots=True)
class RoomRecord:
    name: str
    sid: str
    created_ms: int
    num_participants: int = 0
    metadata: str = ""
    empty_timeout: int = 0
    departure_timeout: int = 0
    max_participants: int = 0


# Delete hash fields whose values are unchanged: ARGV = field, value, field, value, ...
_FORGET = """
for i = 1, #ARGV, 2 do
  if redis.call('HGET', KEYS[1], ARGV[i]) == ARGV[i + 1] then
    redis.call('HDEL', KEYS[1], ARGV[i])
  end
end
return 0
"""


def _s(b: bytes | str) -> str:
    return b.decode() if isinstance(b, bytes) else b


def _sid(name: str, created_ms: int) -> str:
    return "RM_" + hashlib.blake2b(f"{name}\0{created_ms}".encode(), digest_size=6).hexdigest()


def _now_ms() -> int:
    return int(time.time() * 1000)


async def members(r: Client, room: str, partitions: int) -> list[Member]:
    """A room's participants, by identity (none for a room that does not exist)."""
    raw = await r.hgetall(members_key(room, partitions))
    people = [Member.from_json(_s(s), v) for s, v in raw.items()]
    return sorted(people, key=lambda m: (m.identity, m.session))


async def find_member(r: Client, room: str, identity: str, partitions: int) -> Member:
    for m in await members(r, room, partitions):
        if m.identity == identity:
            return m
    raise NotFound(f"participant {identity!r} is not in room {room!r}")


def _settings(raw: bytes | str | None) -> dict[str, Any]:
    if not raw:
        return {}
    d = json.loads(raw)
    return d if isinstance(d, dict) else {}


async def list_rooms(
    r: Client, partitions: int, names: list[str] | None = None
) -> list[RoomRecord]:
    """Live rooms and rooms created through the API that are still waiting for someone.
    With ``names``, only those fields are read (``HMGET``): a CreateRoom or a call about one
    room costs the same with 100,000 rooms as with ten (``HGETALL`` made it O(rooms))."""
    if names:
        fields = list(dict.fromkeys(names))
        got_live = await r.hmget(ROOMS, fields)
        got_settings = await r.hmget(ROOM_SETTINGS, fields)
        live = {n: json.loads(v) for n, v in zip(fields, got_live, strict=True) if v}
        raw = {n: v for n, v in zip(fields, got_settings, strict=True) if v}
    else:
        live = {_s(k): json.loads(v) for k, v in (await r.hgetall(ROOMS)).items()}
        raw = {_s(k): v for k, v in (await r.hgetall(ROOM_SETTINGS)).items()}
    settings = {k: _settings(v) for k, v in raw.items()}
    wanted = set(names) if names else None
    candidates = sorted(n for n in set(live) | set(settings) if wanted is None or n in wanted)
    counted = [n for n in candidates if n in live]
    counts: dict[str, int] = {}
    if counted:
        async with r.pipeline(transaction=False) as pipe:
            for n in counted:
                pipe.hlen(members_key(n, partitions))
            counts = dict(zip(counted, map(int, await pipe.execute()), strict=True))
    now = _now_ms()
    out: list[RoomRecord] = []
    stale: list[str] = []
    for name in candidates:
        st = settings.get(name, {})
        count = counts.get(name, 0)
        if st.get("deleted"):
            if count:
                stale.append(name)  # people are in it again: it is a room like any other
                st = {}
            else:
                if name not in live:
                    stale.append(name)  # the router let it go: the tombstone has done its job
                continue
        if name not in live:
            timeout = int(st.get("empty_timeout") or DEFAULT_EMPTY_TIMEOUT)
            if now - int(st.get("created", 0)) > timeout * 1000:
                stale.append(name)
                continue
        created = int(st.get("created") or live.get(name, {}).get("created") or now)
        # the router's sid (what participants see) when it publishes one
        sid = live.get(name, {}).get("sid") or st.get("sid") or _sid(name, created)
        out.append(
            RoomRecord(
                name=name,
                sid=str(sid),
                created_ms=created,
                num_participants=count,
                metadata=str(st.get("metadata", "")),
                empty_timeout=int(st.get("empty_timeout", 0)),
                departure_timeout=int(st.get("departure_timeout", 0)),
                max_participants=int(st.get("max_participants", 0)),
            )
        )
    if stale:  # each only if nobody rewrote it meanwhile (a CreateRoom racing this)
        args = [x for n in stale for x in (n, raw[n])]
        await r.eval(_FORGET, 1, ROOM_SETTINGS, *args)
    return out


async def get_room(r: Client, room: str, partitions: int) -> RoomRecord:
    found = await list_rooms(r, partitions, [room])
    if not found:
        raise NotFound(f"room {room!r} does not exist")
    return found[0]


async def create_room(
    r: Client,
    partitions: int,
    name: str,
    *,
    metadata: str = "",
    empty_timeout: int = 0,
    departure_timeout: int = 0,
    max_participants: int = 0,
) -> RoomRecord:
    """Create ``name`` (or return it as it is, when it exists, as LiveKit does)."""
    existing = await list_rooms(r, partitions, [name])
    if existing:
        return existing[0]
    created = _now_ms()
    st = {
        "sid": _sid(name, created),
        "created": created,
        "metadata": metadata,
        "empty_timeout": empty_timeout or DEFAULT_EMPTY_TIMEOUT,
        "departure_timeout": departure_timeout,
        "max_participants": max_participants,
    }
    await r.hset(ROOM_SETTINGS, name, json.dumps(st))
    return (await list_rooms(r, partitions, [name]))[0]


async def update_room_metadata(
    r: Client, partitions: int, room: str, metadata: str
) -> RoomRecord:
    await get_room(r, room, partitions)
    raw = await r.hget(ROOM_SETTINGS, room)
    st = _settings(raw)
    if not st:
        live = await r.hget(ROOMS, room)
        created = int(json.loads(live).get("created", 0)) if live else _now_ms()
        st = {"sid": _sid(room, created), "created": created}
    st["metadata"] = metadata
    await r.hset(ROOM_SETTINGS, room, json.dumps(st))
    return await get_room(r, room, partitions)


async def _append(r: Client, room: str, partitions: int, entry: LogEntry) -> bool:
    """Append to a live room's log; False when the room has no log (it is gone)."""
    key = room_log_key(room, partitions)
    got = await r.xadd(key, encode_log_entry(entry), nomkstream=True)  # type: ignore[arg-type]
    if got is not None:  # the router may have idled the room: wake it (a rare append)
        await r.xadd(ctl_key_of_log_key(key), {"room": room}, maxlen=100_000, approximate=True)
    return got is not None


async def _wait_gone(
    r: Client, room: str, partitions: int, identities: set[str]
) -> set[str]:
    """Wait until none of ``identities`` is listed in the room; those still there."""
    deadline = time.monotonic() + CONFIRM_TIMEOUT
    poll = Backoff(0.01, 0.1, jitter=False)
    while True:
        left = {m.identity for m in await members(r, room, partitions)} & identities
        if not left or time.monotonic() > deadline:
            return left
        await poll.sleep()


async def remove_participant(
    r: Client, room: str, identity: str, partitions: int, reason: str
) -> None:
    """Remove ``identity`` (its sockets are closed with the reason); returns once the router
    has it out of the room. :class:`NotFound` if it is not in the room; :class:`TimeoutError`
    if the router did not confirm in time."""
    await find_member(r, room, identity, partitions)
    entry = LogEntry(kind="r", session=API_SESSION, identity=identity, reason=reason)
    if not await _append(r, room, partitions, entry):
        raise NotFound(f"room {room!r} does not exist")
    if await _wait_gone(r, room, partitions, {identity}):
        raise TimeoutError(f"the router did not confirm that {identity!r} left in time")


def _applied(m: Member, name: str | None, metadata: str | None, attrs: dict[str, str]) -> bool:
    if name is not None and m.name != name:
        return False
    if metadata is not None and m.metadata != metadata:
        return False
    return all(m.attributes.get(k) == v if v else k not in m.attributes for k, v in attrs.items())


async def update_participant(
    r: Client,
    room: str,
    identity: str,
    partitions: int,
    *,
    name: str | None = None,
    metadata: str | None = None,
    attributes: dict[str, str] | None = None,
) -> Member:
    """Change a participant's name, metadata and/or attributes (merged; "" deletes a key)
    through the room log (an ``m`` entry from session ``api``): every member is told, late
    joiners see the new values. Returns the participant once the router has applied it."""
    await find_member(r, room, identity, partitions)
    attrs = dict(attributes or {})
    body: dict[str, Any] = {}
    if name is not None:
        body["name"] = name
    if metadata is not None:
        body["metadata"] = metadata
    if attrs:
        body["attributes"] = attrs
    data = json.dumps(body).encode()
    entry = LogEntry(kind="m", session=API_SESSION, identity=identity, data=data, size=len(data))
    if not await _append(r, room, partitions, entry):
        raise NotFound(f"room {room!r} does not exist")
    deadline = time.monotonic() + CONFIRM_TIMEOUT
    poll = Backoff(0.01, 0.1, jitter=False)
    while True:
        m = await find_member(r, room, identity, partitions)
        if _applied(m, name, metadata, attrs):
            return m
        if time.monotonic() > deadline:
            raise TimeoutError(f"the router did not confirm the update of {identity!r} in time")
        await poll.sleep()


async def delete_room(r: Client, room: str, partitions: int, reason: str) -> None:
    """Remove every participant of ``room`` with ``reason`` and forget the room."""
    await get_room(r, room, partitions)
    people = {m.identity for m in await members(r, room, partitions)}
    for identity in sorted(people):
        entry = LogEntry(kind="r", session=API_SESSION, identity=identity, reason=reason)
        await _append(r, room, partitions, entry)
    if await _wait_gone(r, room, partitions, people):
        raise TimeoutError(f"the router did not confirm that room {room!r} emptied in time")
    # empty now: not listed any more while the router lets it go (unless people come back)
    st = _settings(await r.hget(ROOM_SETTINGS, room))
    await r.hset(ROOM_SETTINGS, room, json.dumps({**st, "deleted": _now_ms()}))


async def send_data(
    r: Client,
    room: str,
    partitions: int,
    payload: bytes,
    *,
    topic: str = "",
    destinations: list[str] | None = None,
    reliable: bool = True,
) -> None:
    """A data packet into ``room`` from the server (no sender identity), to every member or
    to ``destinations``. :class:`NotFound` when the room is not live; :class:`ValueError`
    when the payload is over :data:`MAX_DATA_BYTES`."""
    if len(payload) > MAX_DATA_BYTES:
        raise ValueError(f"data packet payload of {len(payload)} bytes exceeds {MAX_DATA_BYTES}")
    if not await r.hexists(ROOMS, room):
        raise NotFound(f"room {room!r} does not exist")
    dests = list(destinations or [])
    meta = DeliveredDataMeta(topic=topic, destination_identities=dests, sender="")
    data = encode_data_packet(meta.model_dump_json().encode(), payload, reliable=reliable)
    entry = LogEntry(
        kind="p",
        session=API_SESSION,
        topic=topic,
        destinations=tuple(dests),
        data=data,
        size=len(data),
    )
    if not await _append(r, room, partitions, entry):
        raise NotFound(f"room {room!r} does not exist")
