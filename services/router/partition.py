"""The router's read loop for one partition: one blocking multi-key XREAD over the
partition's control stream and its active room logs, fold each entry into its room, and
write all deliveries of the wake-up in one pipeline.

Only active rooms are named in the read: a room whose log had no entry for
``room_idle_after`` seconds is set aside (its state and position stay), so a wake-up costs
what the rooms with traffic cost, not what the partition holds. A room comes back when its
name appears on the control stream: a gateway appends it there after every append to the
room (in the same transaction, a pipeline on a cluster: the entry is in the log before the
notice is on the control stream), and a slow sweep of the idle rooms' logs backs that up.

When more than ``named_rooms_max`` rooms are active (each named room costs Redis about
1.2 µs per wake-up, so 2,000 rooms sending a chunk a second cost more in their keys than in
their entries), the partition reads by notice: every room is set aside right after the read
that returned its entries, and named again only in the read after the next notice of an
append to it. No append is missed: its notice follows it, and a room whose read returned a
full ``read_count`` stays named. A room's entries then come one round trip later; quiet
rooms cost nothing."""

from __future__ import annotations

import asyncio
import json
import logging
import time
from collections import defaultdict
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field

import redis.asyncio as aioredis
from redis.exceptions import ClusterError, RedisError, TryAgainError

from roomstreams._redisio import (
    Client,
    Command,
    Pinned,
    StreamEntries,
    last_id,
    parse_xread,
    server_run_id,
    xadd_command,
    xread,
    xread_command,
    xrevrange,
)
from roomstreams._retry import Backoff
from roomstreams.core.room import Maybe, RoomState
from roomstreams.protocol.binary import DATA_PACKET
from roomstreams.protocol.entries import LogEntry
from roomstreams.protocol.keys import (
    GATEWAY_EVENTS,
    ROOMS,
    inbox_key,
    lease_key,
    members_key,
    partition_ctl_key,
    positions_key,
    room_from_log_key,
    room_log_key,
)

from ..observability import ROUTER as _stats
from .settings import RouterSettings

__all__ = ["Batch", "PartitionWorker"]

logger = logging.getLogger("router.consumer")

# Delete an empty room's log only if nothing was appended since the router last read it.
_DELETE_IF_DRAINED = """
local last = redis.call('XREVRANGE', KEYS[1], '+', '-', 'COUNT', 1)
if #last == 0 or last[1][1] == ARGV[1] then
  redis.call('DEL', KEYS[1], KEYS[2])
  return 1
end
return 0
"""


async def live_gateways(r: Client, within_s: float) -> set[str]:
    """Gateways that sent a heartbeat in the last ``within_s`` seconds (and no bye since)."""
    since = int((time.time() - within_s) * 1000)
    entries = await xrevrange(r, GATEWAY_EVENTS, "+", f"{since}-0")
    alive: set[str] = set()
    gone: set[str] = set()
    for _id, f in entries:  # newest first
        gw = f[b"g"].decode()
        if gw in alive or gw in gone:
            continue
        (gone if f.get(b"ev") == b"bye" else alive).add(gw)
    return alive


_TRIM_EVERY = 100
_DATA_PACKET = bytes((DATA_PACKET,))


class Batch:
    """Collects one wake-up's output (a :class:`roomstreams.core.Sink`)."""

    def __init__(self) -> None:
        self.inbox: dict[str, list[dict[str, bytes | str]]] = defaultdict(list)
        self.acks: dict[str, dict[str, int]] = defaultdict(lambda: defaultdict(int))
        #: data-packet acks: gateway -> session -> highest numbered packet routed
        self.packet_acks: dict[str, dict[str, int]] = defaultdict(dict)
        self.members: list[tuple[str, str, str, bytes | None, str, bool]] = []
        #: the room-log id of the entry being folded: stamped on the data packets it
        #: delivers (``li``), so gateways drop a packet routed twice across a takeover
        self.entry_id = b""

    def deliver(
        self,
        gateway: str,
        sessions: list[str],
        frame: bytes,
        *,
        opens: str = "",
        ends: str = "",
        joined: bool = False,
        ack: int | None = None,
        maybe: Maybe | None = None,
    ) -> None:
        f: dict[str, bytes | str] = {"to": " ".join(sessions), "d": frame}
        if opens:
            f["so"] = opens
        elif ends:
            f["se"] = ends
        if maybe is not None:  # see roomstreams.core.room.Maybe
            f["mb"], f["ms"] = " ".join(maybe.sessions), maybe.stream_id
            if opens:
                f["mk"], f["mt"] = maybe.kind, maybe.topic
        if joined:
            f["jn"] = "1"
        elif ack is not None:
            f["ak"] = str(ack)
        elif self.entry_id and frame[:1] == _DATA_PACKET:
            f["li"] = self.entry_id
        self.inbox[gateway].append(f)

    def ack(self, gateway: str, session: str, nbytes: int) -> None:
        self.acks[gateway][session] += nbytes

    def packets_routed(self, gateway: str, session: str, number: int) -> None:
        acks = self.packet_acks[gateway]  # data-packet acks, one per wake-up
        if number > acks.get(session, 0):
            acks[session] = number

    def moved(
        self, old_gateway: str, old_session: str, gateway: str, session: str, frame: bytes
    ) -> None:
        # session resume: where the old session's deliveries stop, and the answer
        self.inbox[old_gateway].append({"k": "mv", "to": old_session, "d": session})
        self.inbox[gateway].append({"to": session, "d": frame, "rsm": "1"})

    def resume_refused(self, gateway: str, session: str, frame: bytes) -> None:
        self.inbox[gateway].append({"to": session, "d": frame, "rsm": "1", "rsf": "1"})

    def close_sessions(self, gateway: str, sessions: list[str], frame: bytes) -> None:
        self.inbox[gateway].append({"k": "x", "to": " ".join(sessions), "d": frame})

    def presence(
        self,
        room: str,
        session: str,
        identity: str,
        info: bytes | None,
        reason: str = "",
        *,
        announce: bool = True,
    ) -> None:
        self.members.append((room, session, identity, info, reason, announce))

    def __bool__(self) -> bool:
        return bool(self.inbox or self.acks or self.members or self.packet_acks)


#: when a partition worker of this process last found Redis restarted empty (monotonic)
_REDIS_RESTARTED_AT: float | None = None
#: how long after that a new owner waits for the live gateways' heartbeats
_RESTART_BEAT_WAIT_S = 1.5


def _redis_restarted_recently() -> bool:
    """A worker of this process found a new Redis in the last 30 s: a new owner at epoch 1 is
    the first since the restart, not the first ever (see _after_redis_restart)."""
    at = _REDIS_RESTARTED_AT
    return at is not None and time.monotonic() - at < 30.0


@dataclass
class _Resync:
    """A takeover waiting for the gateways' re-announcements. Until every gateway asked has
    answered (or the deadline passes), entries that are not re-announcements are held back
    per room, then folded in log order: a stream sent right after the failover must not be
    routed before the router knows every participant's handlers again."""

    started: float
    deadline: float
    #: gateway -> room log keys whose resync-done entry is still to be read; None until the
    #: gateway's answer (the list of its rooms) is read from the control stream
    waiting: dict[str, set[str] | None]
    #: (gateway, room log key) resync-done entries read before the gateway's answer
    seen: set[tuple[str, str]] = field(default_factory=set)
    held: dict[str, list[LogEntry]] = field(default_factory=lambda: defaultdict(list))
    #: per room log key, the members the previous router had (session -> identity)
    previous: dict[str, dict[str, str]] = field(default_factory=dict)

    def answered(self, gateway: str, keys: set[str]) -> None:
        if gateway in self.waiting:
            self.waiting[gateway] = {k for k in keys if (gateway, k) not in self.seen}

    def room_done(self, gateway: str, key: str) -> None:
        rooms = self.waiting.get(gateway)
        if rooms is None:
            self.seen.add((gateway, key))
        else:
            rooms.discard(key)

    @property
    def complete(self) -> bool:
        return all(rooms is not None and not rooms for rooms in self.waiting.values())


class PartitionWorker:
    def __init__(
        self,
        partition: int,
        epoch: int,
        settings: RouterSettings,
        redis: Client,
        events: asyncio.Queue[dict[str, str]] | None = None,
        saw_gateway: Callable[[str], None] | None = None,
    ) -> None:
        self.p = partition
        self._fence = f"{lease_key(partition)}:fence"
        self.epoch = str(epoch)
        self.s = settings
        self.r = redis
        self._pinned = Pinned(redis)  # the read loop's own connection (see Pinned)
        self.ctl = partition_ctl_key(partition)
        self.rooms: dict[str, RoomState] = {}
        #: read positions of the active rooms (named in every XREAD) and of the idle ones
        self.last: dict[str, bytes | str] = {}
        self.idle: dict[str, bytes | str] = {}
        #: when each active room last had an entry (or was woken)
        self._active: dict[str, float] = {}
        self._idle_checked = self._swept = time.monotonic()
        #: the streams the read in flight (or just returned) named: reading by notice, a
        #: room is set aside only after a read that named it (_step)
        self._named: Mapping[str, bytes | str] = {}
        #: reading by notice (more than ``named_rooms_max`` active rooms: see the module)
        self.by_notice = False
        self.ctl_last: bytes | str = "0-0"
        self._seq: dict[str, int] = defaultdict(int)
        self._empty_since: dict[str, float] = {}
        self._delete = self.r.register_script(_DELETE_IF_DRAINED)
        self._events = events
        self._saw_gateway = saw_gateway
        self._pending_drop: list[tuple[str, str]] = []
        self._pending_suspend: list[tuple[str, str]] = []  # session resume
        self._started: list[str] = []
        self._untrimmed: dict[str, int] = defaultdict(int)
        self._resync: _Resync | None = None
        self._pos = positions_key(partition)
        #: rooms whose read position moved since it was last written to Redis
        self._moved: set[str] = set()
        #: cleared to stop: the loop ends after the current read (at most a second)
        self.running = True
        #: set when it stopped because the server under it changed: the router releases
        #: the lease and takes the partition afresh (a deposed worker leaves it unset)
        self.retake = False
        #: the next read goes out in the same pipeline as a wake-up's writes (one round trip
        #: per wake-up instead of two); on a cluster the pipeline spans nodes, so it does not
        self._fused = isinstance(redis, aioredis.Redis)
        #: what that read returned, routed at the next step
        self._next: StreamEntries | None = None
        #: the Redis server this worker took the partition on (see _redis_replaced)
        self._run_id = ""

    @property
    def settled(self) -> bool:
        """Not waiting for the gateways' re-announcements after a takeover."""
        return self._resync is None

    def open_streams(self) -> int:
        """Streams open in this partition's rooms (a hand-over would end them)."""
        return sum(len(r.streams) for r in self.rooms.values())

    def drop_gateway(self, gateway: str, reason: str) -> None:
        """Called from outside the loop; applied at the next wake-up."""
        self._pending_drop.append((gateway, reason))

    def suspend_gateway(self, gateway: str, reason: str) -> None:
        """Session resume: the gateway died or drained; its resumable members stay for the
        resume window (RoomState.suspend_gateway). Applied at the next wake-up."""
        self._pending_suspend.append((gateway, reason))

    async def run(self) -> None:
        self._run_id = await server_run_id(self.r, self.ctl)
        if self.epoch != "1":
            await self._take_over()
        elif _redis_restarted_recently():
            await self._after_redis_restart()
        logger.debug("partition %d: owned (epoch %s)", self.p, self.epoch)  # INFO: in router.app
        backoff = Backoff(0.05, 2.0)
        while self.running:
            try:
                await self._step()
                backoff.reset()
            except (TryAgainError, ClusterError) as exc:
                # a slot of this partition is half moved to another node (TRYAGAIN for the
                # multi-key read, or redis-py's retries exhausted on it): it settles within
                # the migration; try again soon, without a traceback each time
                logger.warning("partition %d: slot moving (%s); retrying", self.p, exc)
                await asyncio.sleep(0.05)
            except RedisError:
                # keep the room state: a Redis blip must not cost the streams in flight (the
                # lease loop takes the lease back if it lapsed and nobody else took it)
                delay = backoff.next()
                logger.exception("partition %d: Redis error; retrying in %.2fs", self.p, delay)
                await asyncio.sleep(delay)
                if await self._redis_replaced():
                    return

    async def _take_over(self) -> None:
        """Another router owned this partition before (it stopped or died): its room state
        is gone with it, and the logs are trimmed, so the state cannot be re-read. Ask the
        live gateways to re-announce their participants in this partition's rooms (join +
        subscriptions); they end the streams that were in flight, which cannot complete.
        Read each room from where the previous router stopped routing (its positions), so
        what was appended while no router ran (data packets, joins, leaves, updates) is
        routed once the room settles; a room it never routed is read from its end."""
        self.ctl_last = await last_id(self.r, self.ctl) or "0-0"
        previous: dict[str, dict[str, str]] = {}
        positions: dict[bytes, bytes] = await self.r.hgetall(self._pos)  # type: ignore[assignment]
        async for key_b in self.r.scan_iter(match=f"rs:{{p{self.p}}}:room:*", count=1000):
            key = key_b.decode()
            room = room_from_log_key(key)
            self.rooms[key] = RoomState(room, settled=False)
            self.last[key] = positions.get(key_b) or await last_id(self.r, key) or "0-0"
            self._active[key] = time.monotonic()
            # who the previous router had: re-announced members are listed again as they
            # come; the others left meanwhile (told when the room settles)
            mkey = members_key(room, self.s.partitions)
            members: dict[bytes, bytes] = await self.r.hgetall(mkey)  # type: ignore[assignment]
            previous[key] = {
                s.decode(): str(json.loads(info).get("identity", "")) for s, info in members.items()
            }
            await self.r.delete(mkey)
            # a room nobody re-announces expires as empty
            self._empty_since[key] = time.monotonic()
        gateways = await live_gateways(self.r, self.s.gateway_timeout)
        now = time.monotonic()
        self._resync = _Resync(
            started=now,
            deadline=now + self.s.resync_timeout,
            waiting=dict.fromkeys(gateways),
            previous=previous,
        )
        async with self.r.pipeline(transaction=False) as pipe:
            for gw in gateways:
                fields = {"k": "r", "p": str(self.p), "e": self.epoch}
                pipe.xadd(inbox_key(gw), fields)  # type: ignore[arg-type]
            await pipe.execute()
        logger.info(
            "partition %d taken over (epoch %s): %d rooms, resync asked of %d gateways",
            self.p,
            self.epoch,
            len(self.rooms),
            len(gateways),
        )

    def _read_args(self) -> tuple[dict[str, bytes | str], int]:
        """The next read: the control stream and the active rooms, and how long it blocks."""
        streams: dict[str, bytes | str] = {self.ctl: self.ctl_last}
        streams.update(self.last)
        self._named = streams
        rs = self._resync
        block = 1000
        if rs is not None:  # wake up in time to end the wait at its deadline
            block = max(1, min(block, int((rs.deadline - time.monotonic()) * 1000) + 1))
        return streams, block

    def _stalled(self, began: float, block: int) -> bool:
        return time.monotonic() - began > block / 1000 + self.s.lease_ms / 2000

    async def _step(self) -> None:
        rs = self._resync
        if self._next is not None:  # read with the last wake-up's writes
            resp, self._next = self._next, None
        else:
            streams, block = self._read_args()
            began = time.monotonic()
            resp = await self._pinned.xread(streams, block=block, count=self.s.read_count)
            if self._stalled(began, block) and await self._deposed():
                return
        folding = _stats.woke(resp)  # /metrics: once per wake-up, never per entry
        batch = Batch()
        trims: dict[str, bytes] = {}
        keep: set[str] = set()  # reading by notice: the rooms the next read must name
        for key_b, entries in resp:
            key = key_b.decode()
            if key == self.ctl:
                for entry_id, f in entries:
                    self.ctl_last = entry_id
                    if f.get(b"k") == b"rd":
                        self._resync_answer(LogEntry.from_fields(f))
                        continue
                    room = f[b"room"].decode()
                    k = room_log_key(room, self.s.partitions)
                    if k not in self.rooms:
                        self.rooms[k] = RoomState(room)
                        self.last[k] = "0-0"
                        self._started.append(room)
                        keep.add(k)
                    elif k in self.idle:  # a wake notice: read it again
                        self.last[k] = self.idle.pop(k)
                        keep.add(k)
                    self._active[k] = time.monotonic()
                continue
            state = self.rooms.get(key)
            if state is None:
                continue
            for entry_id, f in entries:
                try:
                    e = LogEntry.from_fields(f)
                except Exception:  # not an entry any gateway writes: skip it, go on
                    logger.exception(
                        "partition %d: undecodable entry %s in %s; skipped",
                        self.p,
                        entry_id.decode(),
                        key,
                    )
                    continue
                e.entry_id = entry_id
                if e.kind == "rd":
                    if rs is not None and e.epoch == self.epoch:
                        rs.room_done(e.gateway, key)
                    continue
                if rs is not None and not e.resync:
                    rs.held[key].append(e)
                    continue
                self._fold(state, e, batch)
            last_id = entries[-1][0]
            self.last[key] = last_id
            if len(entries) >= self.s.read_count:  # more may be waiting: named again
                keep.add(key)
            self.idle.pop(key, None)  # set aside after this read was sent: active again
            self._active[key] = time.monotonic()
            self._moved.add(key)
            # XTRIM ~ removes whole stream nodes (100 entries): trimming more often than
            # that would cost a command per wake-up and remove nothing; never while entries
            # are held back (they are not routed yet)
            self._untrimmed[key] += len(entries)
            if rs is None and self._untrimmed[key] >= _TRIM_EVERY:
                self._untrimmed[key] = 0
                trims[key] = last_id
            self._note_empty(key, state)
        while self._pending_suspend:  # session resume
            gw, reason = self._pending_suspend.pop()
            if rs is not None:
                rs.waiting.pop(gw, None)
            for key, state in self.rooms.items():
                if state.suspend_gateway(gw, reason, batch) and state.empty:
                    self._empty_since.setdefault(key, time.monotonic())
        while self._pending_drop:
            gw, reason = self._pending_drop.pop()
            if rs is not None:
                rs.waiting.pop(gw, None)  # a dead gateway will not answer
            for key, state in self.rooms.items():
                if state.drop_gateway(gw, reason, batch) and state.empty:
                    self._empty_since.setdefault(key, time.monotonic())
        if rs is not None and (rs.complete or time.monotonic() >= rs.deadline):
            self._end_resync(rs, batch)
        if self.by_notice and self._resync is None:
            # every room read (or named and empty) waits for its next notice (its
            # position stays; _active keeps when it last had entries, for the mode). Only
            # a room the read named: one the idle sweep brought back after the read went
            # out (its notice, if any, was in this reply and found it not set aside) has
            # not been read yet, and set aside now it would wait for a notice already used
            named = self._named
            for k in [k for k in self.last if k not in keep and k in named]:
                self.idle[k] = self.last.pop(k)
        flushing = _stats.folded(folding)
        await self._flush(batch, trims)
        _stats.flushed(flushing, batch, self)
        await self._expire_rooms()
        await self._set_aside_idle_rooms()

    def position(self, key: str) -> bytes | str:
        """Where this router stands in a room's log (active or idle)."""
        return self.last.get(key) or self.idle.get(key) or "0-0"

    async def _set_aside_idle_rooms(self) -> None:
        """Once a second: rooms without entries for ``room_idle_after`` leave the read. Now
        and then (``idle_sweep``): read the idle rooms' logs without blocking, in case a
        wake notice was missed (none should be: a room found this way is logged)."""
        now = time.monotonic()
        if now - self._idle_checked < 1.0 or self._resync is not None:
            return
        self._idle_checked = now
        idle_after = self.s.room_idle_after
        for key in [k for k in self.last if now - self._active.get(k, now) > idle_after]:
            self.idle[key] = self.last.pop(key)
        for key in [k for k, t in self._active.items() if now - t > idle_after]:
            del self._active[key]  # quiet for the idle time (named or set aside by notice)
        busy, limit = len(self._active), self.s.named_rooms_max
        if not self.by_notice and busy > limit:
            self.by_notice = True
            logger.info("partition %d: %d active rooms; reading by notice", self.p, busy)
        elif self.by_notice and busy <= limit // 2:
            self.by_notice = False  # the rooms come back to the read with their notices
            logger.info("partition %d: %d active rooms; naming them", self.p, busy)
        if now - self._swept < self.s.idle_sweep or not self.idle:
            return
        self._swept = now
        keys = list(self.idle)
        for i in range(0, len(keys), 512):
            part = {k: self.idle[k] for k in keys[i : i + 512] if k in self.idle}
            for key_b, entries in await xread(self.r, part, block=None, count=1):
                key = key_b.decode()
                if key in self.idle:
                    first_id, f = entries[0]
                    # reading by notice, a room read just before its notice is normal
                    log = logger.debug if self.by_notice else logger.warning
                    log(
                        "partition %d: idle room %s had entries (first %s, kind %s, after %s)",
                        self.p,
                        key,
                        first_id.decode(),
                        f.get(b"k", b"?").decode(errors="replace"),
                        self.idle[key],
                    )
                    self.last[key] = self.idle.pop(key)
                    self._active[key] = time.monotonic()

    async def _redis_replaced(self) -> bool:
        """After a Redis error: wait until Redis answers, and stop if it is another server
        (restarted empty). This worker's state and epoch belong to the old one; routing on
        the new server with them delivered packets the gateways then dropped as repeats
        (the new owner numbers from 1 at epoch 1 again) and acknowledged them to their
        senders: lost. The lease loop finds the lease gone and takes the partition afresh."""
        while self.running:
            try:
                run_id = await server_run_id(self.r, self.ctl)
            except RedisError:
                run_id = ""
            if run_id:
                if run_id == self._run_id:
                    return False
                if await self._fence_kept():
                    # another server with the data: on a cluster, the slot failed over to a
                    # replica (which may lack the last writes). Stop; the router takes the
                    # partition afresh as a takeover (next epoch, re-announcements)
                    logger.warning(
                        "partition %d: its Redis node changed, data kept; taken over afresh",
                        self.p,
                    )
                    self.running, self.retake = False, True
                    return True
                logger.error("partition %d: Redis restarted; this worker stops", self.p)
                global _REDIS_RESTARTED_AT
                _REDIS_RESTARTED_AT = time.monotonic()
                self.running, self.retake = False, True
                return True
            await asyncio.sleep(0.05)
        return False

    async def _fence_kept(self) -> bool:
        """Does the server hold this partition's fencing counter? One restarted empty does
        not; a replica promoted in its master's place does."""
        try:
            return bool(await self.r.exists(self._fence))
        except RedisError:
            return False

    async def _after_redis_restart(self) -> None:
        """The partition's first owner after Redis restarted empty. The gateways re-announce
        their participants on their own, each ending with resync-done entries of epoch 1
        (its rooms, on every partition's control stream); a gateway that does it later than
        another would miss what the other's clients send meanwhile (a stream routed to half
        the room, silently: seen in the soak test). So hold like a takeover, until every
        gateway alive (a heartbeat since the restart) has answered, or the resync timeout."""
        restarted = _REDIS_RESTARTED_AT or time.monotonic()
        # unsettled meanwhile, so that no hand-over moves the partition before this worker
        # has read anything (with no position written yet, the next owner would start at
        # the logs' ends and skip what was sent since the restart)
        self._resync = _Resync(started=restarted, deadline=float("inf"), waiting={"": None})
        # every live gateway beats within a heartbeat period (1 s) of Redis answering again
        await asyncio.sleep(max(0.0, restarted + _RESTART_BEAT_WAIT_S - time.monotonic()))
        gateways = await live_gateways(self.r, self.s.gateway_timeout)
        if not gateways:
            self._resync = None
            return
        now = time.monotonic()
        self._resync = _Resync(
            started=now, deadline=now + self.s.resync_timeout, waiting=dict.fromkeys(gateways)
        )
        logger.info(
            "partition %d: after a Redis restart, waiting for %d gateways", self.p, len(gateways)
        )

    async def _deposed(self) -> bool:
        """The read took far longer than it blocks (this process stalled), maybe past the
        lease: if another router took the partition meanwhile (the fencing counter moved on),
        route nothing of what was read and stop; the lease loop lets the partition go."""
        raw = await self.r.get(self._fence)
        fence = raw.decode() if isinstance(raw, bytes) else self.epoch
        if fence == self.epoch:
            return False
        logger.error(
            "partition %d: stalled past the lease; epoch %s took over, stopping (epoch %s)",
            self.p,
            fence,
            self.epoch,
        )
        self.running = False
        return True

    def _fold(self, state: RoomState, e: LogEntry, batch: Batch, *, held: bool = False) -> None:
        if e.kind == "j" and self._saw_gateway is not None:
            self._saw_gateway(e.gateway)
        batch.entry_id = e.entry_id
        try:
            if held:
                state.apply_held(e, batch)
            else:
                state.apply(e, batch)
        except Exception:
            # one entry must not stop the partition: whoever it concerns is told, the
            # others go on
            logger.exception(
                "partition %d: entry of kind %r from session %s in room %s failed; rejected",
                self.p,
                e.kind,
                e.session,
                state.name,
            )
            state.reject(e, batch)

    def _note_empty(self, key: str, state: RoomState) -> None:
        if state.empty:
            self._empty_since.setdefault(key, time.monotonic())
        else:
            self._empty_since.pop(key, None)

    def _resync_answer(self, e: LogEntry) -> None:
        """A gateway answered the takeover: the rooms it re-announced participants in."""
        rs = self._resync
        if rs is None or e.epoch != self.epoch:
            return  # late (the wait is over), or for another owner of this partition
        rooms = json.loads(e.data or b"[]")
        keys = {room_log_key(room, self.s.partitions) for room in rooms}
        rs.answered(e.gateway, {k for k in keys if k in self.rooms})

    def _end_resync(self, rs: _Resync, batch: Batch) -> None:
        """Every gateway answered (or the deadline passed): fold what was held back."""
        self._resync = None
        held = 0
        for key, room in self.rooms.items():
            if not room.settled:  # presence first, before what was held is routed
                room.settle(rs.previous.get(key, {}), batch)
        for key, entries in rs.held.items():
            state = self.rooms.get(key)
            if state is None:
                continue
            for e in entries:
                self._fold(state, e, batch, held=True)
            held += len(entries)
            self._note_empty(key, state)
        ms = (time.monotonic() - rs.started) * 1000
        missing = sorted(gw for gw, rooms in rs.waiting.items() if rooms is None or rooms)
        if missing:
            logger.warning(
                "partition %d: no resync answer from gateways %s in %.0f ms; %d entries held",
                self.p,
                missing,
                ms,
                held,
            )
        else:
            logger.info(
                "partition %d: resync complete in %.0f ms; %d entries held", self.p, ms, held
            )

    async def _flush(self, batch: Batch, trims: dict[str, bytes]) -> None:
        """Write one wake-up's output in one pipeline. The entries were already folded, so a
        Redis error here is retried with the same batch (numbered once: a repeat is dropped
        by the gateway, a gap would not be) until it goes through."""
        if not batch and not trims and not self._started:
            return
        # where this router stands, for the next owner (not while entries are held back:
        # they are read but not routed yet); written last, after what it routed
        moved = {} if self._resync is not None else {k: self.position(k) for k in self._moved}
        for gw, entries in batch.inbox.items():
            for f in entries:
                self._seq[gw] += 1
                f["p"], f["e"], f["q"] = str(self.p), self.epoch, str(self._seq[gw])
        started, self._started = self._started, []
        events: list[tuple[str, str, str, str]] = [("room_started", r, "", "") for r in started]
        for room, _session, identity, info, reason, announce in batch.members:
            if info is None:
                if announce:  # not when a session resume renamed it
                    events.append(("participant_left", room, identity, reason))
            elif announce:
                events.append(("participant_joined", room, identity, ""))
        now = int(time.time() * 1000)
        maxlen = self.s.inbox_maxlen
        cmds: list[Command] = []
        for gw, entries in batch.inbox.items():
            key = inbox_key(gw)
            cmds.extend(xadd_command(key, f, maxlen=maxlen) for f in entries)
        for gw in {**batch.acks, **batch.packet_acks}:
            fields = {"k": "a", "d": json.dumps(batch.acks.get(gw, {}))}
            if gw in batch.packet_acks:  # data-packet acks
                fields["pk"] = json.dumps(batch.packet_acks[gw])
            cmds.append(xadd_command(inbox_key(gw), fields, maxlen=maxlen))
        cmds.extend(("XTRIM", key, "MINID", "~", last_id) for key, last_id in trims.items())
        for room in started:
            cmds.append(("HSET", ROOMS, room, json.dumps({"created": now, "partition": self.p})))
        for room, session, _identity, info, _reason, _ann in batch.members:
            mkey = members_key(room, self.s.partitions)
            cmds.append(
                ("HSET", mkey, session, info) if info is not None else ("HDEL", mkey, session)
            )
        if moved:
            cmds.append(("HSET", self._pos, *(x for kv in moved.items() for x in kv)))
        backoff = Backoff(0.05, 2.0)
        while True:
            fused = self._fused and self.running
            try:
                if fused:  # the next read, after the writes (it sees their positions)
                    streams, block = self._read_args()
                    read_cmd = xread_command(streams, block=block, count=self.s.read_count)
                    began = time.monotonic()
                    replies = await self._pinned.execute([*cmds, read_cmd])
                    read = parse_xread(replies[-1])
                    # a stall past the lease while it blocked: route nothing of it
                    if not (self._stalled(began, block) and await self._deposed()):
                        self._next = read
                else:
                    await self._pinned.execute(cmds)
                break
            except RedisError:
                if not self.running:
                    raise
                delay = backoff.next()
                logger.exception("partition %d: flushing failed; retrying in %.2fs", self.p, delay)
                await asyncio.sleep(delay)
                if await self._redis_replaced():
                    return  # what this batch routed went with the old server
        if moved:
            self._moved.clear()
        for event, room, identity, reason in events:
            self._publish(event, room, identity, reason)

    async def _expire_rooms(self) -> None:
        if not self._empty_since or self._resync is not None:
            return  # while entries are held back, a room may only look empty
        now = time.monotonic()
        for key, since in list(self._empty_since.items()):
            if now - since < self.s.room_empty_ttl:
                continue
            state = self.rooms[key]
            last = self.position(key)
            mkey = members_key(state.name, self.s.partitions)
            deleted = await self._delete(keys=[key, mkey], args=[last])
            if deleted:
                self._untrimmed.pop(key, None)
                self._moved.discard(key)
                await self.r.hdel(ROOMS, state.name)
                await self.r.hdel(self._pos, key)
                del self.rooms[key], self._empty_since[key]
                self.last.pop(key, None)
                self.idle.pop(key, None)
                self._active.pop(key, None)
                self._publish("room_finished", state.name)
                logger.info("room %s finished; keys deleted", room_from_log_key(key))
            else:
                self._empty_since.pop(key, None)  # new entries arrived; the next read sees them

    def _publish(self, event: str, room: str, identity: str = "", reason: str = "") -> None:
        if self._events is None:
            return
        ev = {"event": event, "room": room, "t": str(int(time.time() * 1000))}
        if identity:
            ev["identity"] = identity
        if reason:
            ev["reason"] = reason
        try:
            self._events.put_nowait(ev)
        except asyncio.QueueFull:
            logger.warning("room event queue full; dropping %s", event)
