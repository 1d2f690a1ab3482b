"""Prometheus metrics of the gateway and the router (``prometheus-client``; one registry per
process, served at ``/metrics``: on the gateway's own port, on the router's HTTP port).

**The hot path only counts.** What happens per frame or per entry is a plain integer
increment on a module-level object (:data:`GATEWAY`, :data:`ROUTER`), or an item of a list
indexed by the frame's first byte; what happens per Redis pipeline or wake-up is one
:meth:`Hist.observe` (a ``bisect`` and two additions, no lock: everything runs on the
process's one event loop). Nothing looks up a labelled child per chunk. The collectors
(:class:`GatewayCollector`, :class:`RouterCollector`) turn those integers into metric
families when Prometheus scrapes, and read the gauges (connections, rooms, queue depths,
partitions) from the live objects then.

**Lag is measured at scrape time, never per entry**: two commands per stream (``XINFO
STREAM`` and ``XRANGE (position + COUNT 1``) for the gateway's inbox and for each room log
of each partition the router owns. *Entries behind* = the stream's ``entries-added`` minus
the entries the reader has read minus an offset learned the last time the reader was
caught up (its position at ``last-generated-id``); until it has been caught up once (a
router that took a partition over), the log's length stands in, an upper bound. *Age of
the oldest unread entry* = now minus the time in that entry's id (the Redis server's clock:
compare it with the scraping host's only if both keep time by NTP).

Metric names, types and meanings: docs/operations.md.
"""

from __future__ import annotations

import time
from bisect import bisect_left
from collections import defaultdict
from collections.abc import Awaitable, Callable, Iterable, Iterator, Sequence
from http import HTTPStatus
from typing import TYPE_CHECKING, Any
from urllib.parse import parse_qs, urlsplit

from prometheus_client import CollectorRegistry, PlatformCollector, ProcessCollector
from prometheus_client.core import (
    CounterMetricFamily,
    GaugeMetricFamily,
    HistogramMetricFamily,
    Metric,
)
from prometheus_client.exposition import CONTENT_TYPE_LATEST, generate_latest
from prometheus_client.registry import Collector
from redis.exceptions import RedisError, ResponseError

from roomstreams._redisio import Client

if TYPE_CHECKING:
    from websockets.asyncio.server import ServerConnection
    from websockets.http11 import Request, Response

    from services.gateway.server import Gateway
    from services.router.app import Router

__all__ = [
    "CONTENT_TYPE",
    "ENTRY_KINDS",
    "GATEWAY",
    "METRICS_PATH",
    "ROUTER",
    "GatewayCollector",
    "GatewayStats",
    "Hist",
    "LagTracker",
    "RouterCollector",
    "RouterStats",
    "gateway_registry",
    "metrics_route",
    "router_metrics",
    "router_registry",
]

METRICS_PATH = "/metrics"
CONTENT_TYPE = CONTENT_TYPE_LATEST

#: room-log entry kinds (``LogEntry.kind``) as label values
ENTRY_KINDS = {
    "h": "header",
    "c": "chunk",
    "t": "trailer",
    "p": "data_packet",
    "rp": "rpc",
    "m": "participant_update",
    "s": "subscribe",
    "u": "unsubscribe",
    "j": "join",
    "l": "leave",
    "r": "remove",
    "dc": "decline",
    "rd": "resync_done",
    "room": "room_notice",
}

#: the kind of a frame written to a socket, by its first byte (``protocol/binary.py``)
_FRAME_KINDS = {ord("{"): "json", 0x01: "byte_chunk", 0x02: "data_packet"}

#: seconds: Redis round trips (sub-millisecond) up to a stalled server
LATENCY_BUCKETS = (
    0.0001,
    0.00025,
    0.0005,
    0.001,
    0.0025,
    0.005,
    0.01,
    0.025,
    0.05,
    0.1,
    0.25,
    0.5,
    1.0,
    2.5,
)


class Hist:
    """A histogram of plain counts (no lock, no labels): :meth:`observe` is a ``bisect``
    and two additions. Exposed as a Prometheus histogram by the collectors."""

    __slots__ = ("bounds", "counts", "sum")

    def __init__(self, bounds: Sequence[float] = LATENCY_BUCKETS) -> None:
        self.bounds = tuple(bounds)
        self.counts = [0] * (len(self.bounds) + 1)
        self.sum = 0.0

    def observe(self, value: float) -> None:
        self.counts[bisect_left(self.bounds, value)] += 1
        self.sum += value

    def family(self, name: str, doc: str) -> HistogramMetricFamily:
        buckets: list[tuple[str, float]] = []
        acc = 0
        for bound, n in zip(self.bounds, self.counts, strict=False):
            acc += n
            buckets.append((repr(float(bound)), acc))
        acc += self.counts[-1]
        buckets.append(("+Inf", acc))
        return HistogramMetricFamily(name, doc, buckets=buckets, sum_value=self.sum)


def _entry_ms(entry_id: bytes | str) -> int:
    raw = entry_id.encode() if isinstance(entry_id, str) else entry_id
    return int(raw.partition(b"-")[0] or 0)


def _id(entry_id: bytes | str) -> tuple[int, int]:
    raw = entry_id.encode() if isinstance(entry_id, str) else entry_id
    ms, _, seq = raw.partition(b"-")
    return int(ms or 0), int(seq or 0)


# -- the hot path's counters ------------------------------------------------------------------


class GatewayStats:
    """The gateway's counters: plain ints the connection and the loops increment."""

    def __init__(self) -> None:
        self.reset()

    def reset(self) -> None:
        #: raw frames and bytes read from sockets (every frame, refused ones too)
        self.frames_received = 0
        self.bytes_received = 0
        #: frames and bytes written to sockets, indexed by their first byte
        self.frames_sent = [0] * 256
        self.bytes_sent = [0] * 256
        #: frames queued for a socket (a delivery of an inbox entry to one connection)
        self.deliveries = 0
        #: entries queued for the room logs, and their payload bytes, by entry kind
        self.appended: defaultdict[str, int] = defaultdict(int)
        self.appended_bytes: defaultdict[str, int] = defaultdict(int)
        #: error frames sent to clients, by code; closes the gateway decided, by close code
        self.errors: defaultdict[str, int] = defaultdict(int)
        self.closes: defaultdict[int, int] = defaultdict(int)
        #: abnormal trailers the gateway appended (bad input ended the stream), by code
        self.streams_aborted: defaultdict[str, int] = defaultdict(int)
        self.connections_opened = 0
        #: connections that said they were reconnecting (``reconnect=1``, LiveKit's query)
        self.reconnects = 0
        #: inbox: entries read, the reader's position, gaps (entries trimmed unread),
        #: router takeovers answered, Redis restarts seen
        self.inbox_read = 0
        self.inbox_position: bytes = b"0-0"
        self.inbox_gaps = 0
        self.resyncs = 0
        self.redis_restarts = 0
        #: seconds per append batch (its pipeline, retries included); the delay from an
        #: inbox entry's XADD by the router to the gateway reading it
        self.append_pipeline = Hist()
        self.inbox_read_delay = Hist()

    def connected(self, path: str) -> None:
        """A participant connection accepted (``path``: its request's, for ``reconnect=1``)."""
        self.connections_opened += 1
        if "reconnect=" in path and parse_qs(urlsplit(path).query).get("reconnect") == ["1"]:
            self.reconnects += 1

    def read_inbox(self, entries: Sequence[tuple[bytes, Any]]) -> None:
        """One inbox read (not one entry): its count, position and the first entry's age."""
        self.inbox_read += len(entries)
        self.inbox_position = entries[-1][0]
        self.inbox_read_delay.observe(max(0.0, time.time() - _entry_ms(entries[0][0]) / 1000))


class RouterStats:
    """The router's counters (the fold's own are ``RoomState.opened``/``.ended``)."""

    def __init__(self) -> None:
        self.reset()

    def reset(self) -> None:
        #: wake-ups of the partition loops, room-log entries they read, inbox entries and
        #: acknowledgement entries they wrote
        self.wakeups = 0
        self.entries_read = 0
        self.inbox_entries = 0
        self.flush_failures = 0
        #: partitions acquired (epoch 1: a fresh start; above: taken over from another
        #: router), leases lost, partitions handed over to a router that joined
        self.partitions_acquired = 0
        self.takeovers = 0
        self.leases_lost = 0
        self.handovers = 0
        #: seconds: folding one wake-up's entries; one flush pipeline; the age of the
        #: oldest entry a read returned (from its XADD to the router reading it)
        self.fold = Hist()
        self.flush = Hist()
        self.read_delay = Hist()
        #: entries read per stream key (for the partitions' lag; pruned at scrape time)
        self.read_per_key: defaultdict[bytes, int] = defaultdict(int)

    def woke(self, resp: Iterable[tuple[bytes, Sequence[tuple[bytes, Any]]]]) -> float:
        """One partition read (not one entry): entries read per key, the oldest one's age.
        Returns the time the fold starts (for :meth:`folded`)."""
        oldest = 0
        n = 0
        per_key = self.read_per_key
        for key, entries in resp:
            if entries:
                n += len(entries)
                per_key[key] += len(entries)
                ms = _entry_ms(entries[0][0])
                oldest = ms if not oldest else min(oldest, ms)
        self.wakeups += 1
        self.entries_read += n
        if oldest:
            self.read_delay.observe(max(0.0, time.time() - oldest / 1000))
        return time.perf_counter()

    def folded(self, began: float) -> float:
        """The wake-up's entries are folded (``began``: from :meth:`woke`); returns the time
        its flush starts."""
        now = time.perf_counter()
        self.fold.observe(now - began)
        return now

    def flushed(self, began: float, batch: Any, worker: Any) -> None:
        """The wake-up's flush returned (``began``: from :meth:`folded`). Timed only when
        the worker does not send its next read in the flush pipeline (``_fused``, on a
        standalone Redis): that read blocks until entries come, so the pipeline's time is
        mostly waiting; ``read_delay`` covers it then."""
        self.inbox_entries += sum(len(v) for v in batch.inbox.values())
        if not getattr(worker, "_fused", False):
            self.flush.observe(time.perf_counter() - began)


#: the process's counters (one gateway or one router per process)
GATEWAY = GatewayStats()
ROUTER = RouterStats()


# -- lag ----------------------------------------------------------------------------------------


class LagTracker:
    """Entries behind and age of the oldest unread entry of streams read without a
    consumer group (see the module's docstring), computed at scrape time."""

    def __init__(self) -> None:
        #: stream key -> entries-added minus entries read, when the reader was caught up
        self.offset: dict[str, int] = {}

    async def lag(
        self, r: Client, items: Sequence[tuple[str, bytes | str, int]]
    ) -> dict[str, tuple[int, float]]:
        """``items``: (stream key, reader's position, entries it has read) -> per key
        (entries behind, seconds since the oldest unread entry was added)."""
        if not items:
            return {}
        async with r.pipeline(transaction=False) as pipe:
            for key, pos, _ in items:
                pipe.xinfo_stream(key)
                pipe.xrange(key, min=f"({_text(pos)}", max="+", count=1)
            results = await pipe.execute(raise_on_error=False)
        now = time.time()
        out: dict[str, tuple[int, float]] = {}
        for i, (key, pos, read) in enumerate(items):
            info, first = results[2 * i], results[2 * i + 1]
            if isinstance(info, ResponseError):  # no such key: nothing to read
                self.offset.pop(key, None)
                out[key] = (0, 0.0)
                continue
            if isinstance(info, Exception):
                raise info
            added = int(info.get("entries-added", 0) or 0)
            length = int(info.get("length", 0) or 0)
            last_gen = info.get("last-generated-id") or b"0-0"
            if _id(pos) >= _id(last_gen):
                self.offset[key] = added - read
                behind = 0
            elif key in self.offset and "entries-added" in info:
                behind = max(0, added - read - self.offset[key])
            else:
                behind = length  # not caught up once yet: an upper bound
            age = 0.0
            if isinstance(first, list) and first:
                age = max(0.0, now - _entry_ms(first[0][0]) / 1000)
            out[key] = (behind if age else 0, age)
        return out

    def forget(self, keep: Iterable[str]) -> None:
        keep = set(keep)
        for key in [k for k in self.offset if k not in keep]:
            del self.offset[key]


def _text(entry_id: bytes | str) -> str:
    return entry_id.decode() if isinstance(entry_id, bytes) else entry_id


# -- gateway ------------------------------------------------------------------------------------


def _counter(name: str, doc: str, value: float) -> CounterMetricFamily:
    return CounterMetricFamily(name, doc, value=value)


def _gauge(name: str, doc: str, value: float) -> GaugeMetricFamily:
    return GaugeMetricFamily(name, doc, value=value)


def _by(
    family: CounterMetricFamily | GaugeMetricFamily,
    values: Iterable[tuple[str, float]],
) -> CounterMetricFamily | GaugeMetricFamily:
    for label, v in sorted(values):
        family.add_metric([label], v)
    return family


class GatewayCollector(Collector):
    """The gateway's metrics, read from :data:`GATEWAY` and the live :class:`Gateway`."""

    def __init__(self, gateway: Gateway, stats: GatewayStats = GATEWAY) -> None:
        self.gw = gateway
        self.s = stats
        self.lag = LagTracker()
        self.lag.offset[gateway.inbox] = 0  # the inbox is new with the gateway: exact
        self._inbox_lag = (0, 0.0)

    async def refresh(self) -> None:
        """The scrape-time part that needs Redis: the inbox lag (kept if Redis fails)."""
        s = self.s
        try:
            lag = await self.lag.lag(
                self.gw._inbox_redis, [(self.gw.inbox, s.inbox_position, s.inbox_read)]
            )
        except (RedisError, OSError):
            return
        self._inbox_lag = lag.get(self.gw.inbox, (0, 0.0))

    def collect(self) -> Iterator[Metric]:
        s, gw = self.s, self.gw
        p = "roomstreams_gateway_"
        conns = list(gw.sessions.values())
        depths = [c.queue_depth for c in conns]
        yield _gauge(p + "connections", "Participant WebSockets open on this gateway", len(conns))
        yield _gauge(
            p + "participants",
            "Connections whose join the router has routed (in their room)",
            sum(1 for c in conns if c.announced),
        )
        yield _gauge(
            p + "rooms",
            "Rooms with at least one connection on this gateway",
            len({c.ident.room for c in conns}),
        )
        yield _counter(
            p + "connections_opened", "Participant WebSockets accepted", s.connections_opened
        )
        yield _counter(
            p + "reconnects",
            "Connections that said they were reconnecting (reconnect=1 in the URL)",
            s.reconnects,
        )
        yield _counter(
            p + "frames_received", "Frames read from participant sockets", s.frames_received
        )
        yield _counter(
            p + "received_bytes", "Bytes of frames read from participant sockets", s.bytes_received
        )
        sent = CounterMetricFamily(
            p + "frames_sent", "Frames written to sockets, by kind", labels=["kind"]
        )
        sent_b = CounterMetricFamily(
            p + "sent_bytes", "Bytes written to sockets, by kind", labels=["kind"]
        )
        for byte, kind in sorted(_FRAME_KINDS.items(), key=lambda kv: kv[1]):
            sent.add_metric([kind], s.frames_sent[byte])
            sent_b.add_metric([kind], s.bytes_sent[byte])
        yield sent
        yield sent_b
        yield _counter(
            p + "deliveries", "Frames queued for a socket (one per recipient)", s.deliveries
        )
        yield _by(
            CounterMetricFamily(
                p + "entries_appended", "Entries queued for the room logs, by kind", labels=["kind"]
            ),
            ((ENTRY_KINDS.get(k, k), v) for k, v in s.appended.items()),
        )
        yield _by(
            CounterMetricFamily(
                p + "appended_bytes",
                "Payload bytes of the entries queued for the room logs, by kind",
                labels=["kind"],
            ),
            ((ENTRY_KINDS.get(k, k), v) for k, v in s.appended_bytes.items()),
        )
        yield _by(
            CounterMetricFamily(
                p + "errors", "Error frames sent to clients, by code", labels=["code"]
            ),
            s.errors.items(),
        )
        yield _by(
            CounterMetricFamily(
                p + "disconnects",
                "Connections the gateway closed, by WebSocket close code",
                labels=["code"],
            ),
            ((str(k), v) for k, v in s.closes.items()),
        )
        yield _counter(
            p + "slow_consumer_disconnects",
            "Connections closed because their send queue was full (close code 4008)",
            s.closes.get(4008, 0),
        )
        yield _by(
            CounterMetricFamily(
                p + "streams_aborted",
                "Streams the gateway ended for bad input (abnormal trailer appended), by code",
                labels=["code"],
            ),
            s.streams_aborted.items(),
        )
        yield _gauge(p + "send_queue_frames", "Frames waiting in all send queues", sum(depths))
        yield _gauge(
            p + "send_queue_frames_max",
            "Frames waiting in the fullest send queue",
            max(depths, default=0),
        )
        yield _gauge(
            p + "send_queue_capacity",
            "Send queue size per connection (ROOMSTREAMS_SEND_QUEUE_FRAMES)",
            gw.settings.send_queue_frames,
        )
        yield _gauge(
            p + "append_queue_entries",
            "Entries waiting for the append pipeline",
            gw._appends.qsize(),
        )
        yield s.append_pipeline.family(
            p + "append_pipeline_seconds",
            "One append batch written to Redis (its XADD pipeline, retries included), seconds",
        )
        yield _counter(p + "inbox_entries_read", "Inbox entries read", s.inbox_read)
        yield s.inbox_read_delay.family(
            p + "inbox_read_delay_seconds",
            "Per inbox read: seconds from the router's XADD of its first entry to the read",
        )
        behind, age = self._inbox_lag
        yield _gauge(p + "inbox_lag_entries", "Inbox entries not read yet", behind)
        yield _gauge(p + "inbox_lag_seconds", "Age of the oldest unread inbox entry, seconds", age)
        yield _counter(
            p + "inbox_gaps", "Inbox gaps (deliveries trimmed before they were read)", s.inbox_gaps
        )
        yield _counter(
            p + "resyncs", "Router takeovers answered (participants re-announced)", s.resyncs
        )
        yield _counter(p + "redis_restarts", "Redis restarts seen (new run_id)", s.redis_restarts)
        yield _gauge(p + "draining", "1 while the gateway shuts down", 1 if gw._draining else 0)


def _registry(*collectors: Collector) -> CollectorRegistry:
    reg = CollectorRegistry(auto_describe=False)
    ProcessCollector(registry=reg)
    PlatformCollector(registry=reg)
    for c in collectors:
        reg.register(c)
    return reg


def gateway_registry(gateway: Gateway) -> tuple[CollectorRegistry, GatewayCollector]:
    collector = GatewayCollector(gateway)
    return _registry(collector), collector


ProcessRequest = Callable[["ServerConnection", "Request"], "Response | None"]


def metrics_route(
    gateway: Gateway, process_request: ProcessRequest
) -> Callable[[ServerConnection, Request], Awaitable[Response | None]]:
    """The gateway's ``process_request`` with ``GET /metrics`` in front (answered while the
    gateway drains too); every other request goes on to ``process_request``."""
    registry, collector = gateway_registry(gateway)

    async def route(conn: ServerConnection, request: Request) -> Response | None:
        if urlsplit(request.path).path != METRICS_PATH:
            return process_request(conn, request)
        await collector.refresh()
        response = conn.respond(HTTPStatus.OK, "")
        body = generate_latest(registry)
        response.body = body
        del response.headers["Content-Type"]
        del response.headers["Content-Length"]
        response.headers["Content-Type"] = CONTENT_TYPE
        response.headers["Content-Length"] = str(len(body))
        return response

    return route


# -- router -------------------------------------------------------------------------------------


class RouterCollector(Collector):
    """The router's metrics, read from :data:`ROUTER`, ``RoomState``'s counters and the live
    :class:`Router` (its partition workers)."""

    def __init__(self, router: Router, stats: RouterStats = ROUTER) -> None:
        self.router = router
        self.s = stats
        self.lag = LagTracker()
        #: partition -> (entries behind, seconds), from the last refresh
        self._lag: dict[int, tuple[int, float]] = {}

    async def refresh(self, r: Client) -> None:
        """The partitions' lag: every room log of every owned partition (kept on error)."""
        items: list[tuple[str, bytes | str, int]] = []
        part: dict[str, int] = {}
        for p, (w, _task, _conn) in list(self.router._workers.items()):
            for key in list(w.rooms):
                items.append((key, w.position(key), self.s.read_per_key.get(key.encode(), 0)))
                part[key] = p
        try:
            lag = await self.lag.lag(r, items)
        except (RedisError, OSError):
            return
        self.lag.forget(part)
        read = self.s.read_per_key
        for k in [k for k in read if k.decode() not in part]:
            del read[k]  # rooms gone (or moved to another router)
        out: dict[int, tuple[int, float]] = {p: (0, 0.0) for p in self.router._workers}
        for key, (behind, age) in lag.items():
            p = part[key]
            b, a = out.get(p, (0, 0.0))
            out[p] = (b + behind, max(a, age))
        self._lag = out

    def collect(self) -> Iterator[Metric]:
        from roomstreams.core.room import RoomState

        s, router = self.s, self.router
        p = "roomstreams_router_"
        workers = [w for w, _t, _c in list(router._workers.values())]
        yield _gauge(p + "partitions_owned", "Partitions this router owns", len(workers))
        yield _gauge(
            p + "partitions", "Partitions in all (ROOMSTREAMS_PARTITIONS)", router.s.partitions
        )
        yield _gauge(
            p + "routers", "Live routers sharing the partitions (this one included)", router.routers
        )
        yield _gauge(
            p + "gateways", "Gateways this router hears heartbeats from", len(router._gateways)
        )
        yield _gauge(
            p + "rooms", "Rooms in the owned partitions", sum(len(w.rooms) for w in workers)
        )
        yield _gauge(
            p + "active_rooms",
            "Rooms named in the partitions' reads (not idle)",
            sum(len(w.last) for w in workers),
        )
        yield _gauge(
            p + "participants",
            "Members of the rooms in the owned partitions",
            sum(len(st.members) for w in workers for st in w.rooms.values()),
        )
        yield _gauge(
            p + "open_streams",
            "Streams open in the owned partitions",
            sum(w.open_streams() for w in workers),
        )
        yield _gauge(
            p + "partitions_by_notice",
            "Owned partitions reading their rooms by the gateways' notices (many active rooms)",
            sum(1 for w in workers if w.by_notice),
        )
        yield _gauge(
            p + "partitions_resyncing",
            "Owned partitions waiting for the gateways' re-announcements",
            sum(1 for w in workers if not w.settled),
        )
        yield _counter(p + "streams_opened", "Stream headers routed", RoomState.opened)
        yield _by(
            CounterMetricFamily(
                p + "errors", "Error frames the router sent to clients, by code", labels=["code"]
            ),
            RoomState.errors.items(),
        )
        yield _by(
            CounterMetricFamily(
                p + "streams_ended",
                "Streams ended: completed (the sender's trailer), aborted_at_gateway "
                "(the gateway ended it for bad input), or the code the router ended it with",
                labels=["reason"],
            ),
            RoomState.ended.items(),
        )
        yield _counter(p + "wakeups", "Partition reads that returned", s.wakeups)
        yield _counter(p + "entries_read", "Room-log and control entries read", s.entries_read)
        yield _counter(
            p + "deliveries",
            "Inbox entries written (one per gateway per routed entry)",
            s.inbox_entries,
        )
        yield _counter(
            p + "flush_failures", "Flush pipelines that failed (retried)", s.flush_failures
        )
        yield _counter(p + "partitions_acquired", "Partition leases taken", s.partitions_acquired)
        yield _counter(
            p + "takeovers",
            "Partitions taken over from another router (epoch above 1)",
            s.takeovers,
        )
        yield _counter(
            p + "leases_lost", "Partition leases lost (not renewed in time)", s.leases_lost
        )
        yield _counter(
            p + "handovers", "Partitions handed over to a router that joined", s.handovers
        )
        yield s.fold.family(
            p + "fold_seconds", "Folding one wake-up's entries into the rooms, seconds"
        )
        yield s.flush.family(
            p + "flush_seconds", "One wake-up's flush pipeline (inbox XADDs, acks, trims), seconds"
        )
        yield s.read_delay.family(
            p + "read_delay_seconds",
            "Per partition read: seconds from the XADD of the oldest entry it returned to the read",
        )
        behind = GaugeMetricFamily(
            p + "partition_lag_entries",
            "Room-log entries not read yet, per owned partition",
            labels=["partition"],
        )
        age = GaugeMetricFamily(
            p + "partition_lag_seconds",
            "Age of the oldest unread room-log entry, per owned partition, seconds",
            labels=["partition"],
        )
        for part in sorted(router._workers):
            b, a = self._lag.get(part, (0, 0.0))
            behind.add_metric([str(part)], b)
            age.add_metric([str(part)], a)
        yield behind
        yield age


def router_registry(router: Router) -> tuple[CollectorRegistry, RouterCollector]:
    collector = RouterCollector(router)
    return _registry(collector), collector


def router_metrics(router: Router) -> Callable[[Client], Awaitable[tuple[bytes, str]]]:
    """What the router's HTTP port serves at ``/metrics`` (``services/api/http.py``)."""
    registry, collector = router_registry(router)

    async def render(r: Client) -> tuple[bytes, str]:
        await collector.refresh(r)
        return generate_latest(registry), CONTENT_TYPE

    return render
