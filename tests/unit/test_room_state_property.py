"""Random interleavings of room-log entries through ``RoomState.apply``, checked per receiver
against the spec's ordering rules and against a small reference model of membership."""

from __future__ import annotations

import random
from collections import defaultdict
from dataclasses import dataclass, field

from roomstreams.core.room import RoomState
from roomstreams.protocol.entries import LogEntry

from ._room_helpers import Delivery, LogWriter, RecordingSink

SEEDS = range(300)
STEPS = 150
IDENTITIES = ["ann", "ben", "cat", "dan", "eve"]
GATEWAYS = ["g0", "g1", "g2"]
TOPICS = ["chat", "news"]
KINDS = ["text", "byte"]


@dataclass
class Model:
    """What the room should look like, tracked independently of RoomState."""

    members: dict[str, tuple[str, str, bool]] = field(default_factory=dict)  # s -> (id, gw, sub)
    topics: dict[str, set[tuple[str, str]]] = field(default_factory=lambda: defaultdict(set))
    #: stream id -> (sender session, expected recipients), for streams the model thinks open
    streams: dict[str, tuple[str, set[str]]] = field(default_factory=dict)
    #: log index at which a session stopped being a member
    gone_at: dict[str, int] = field(default_factory=dict)

    def remove(self, session: str, at: int) -> None:
        self.members.pop(session, None)
        self.topics.pop(session, None)
        self.gone_at[session] = at
        for sid, (sender, recipients) in list(self.streams.items()):
            if sender == session:
                del self.streams[sid]
            else:
                recipients.discard(session)


@dataclass
class Run:
    log: list[LogEntry | tuple[str, str]] = field(default_factory=list)  # or ("drop", gw)
    #: log index -> expected header recipients (for applied headers that opened a stream)
    expected_recipients: dict[int, set[str]] = field(default_factory=dict)
    sink: RecordingSink = field(default_factory=RecordingSink)
    model: Model = field(default_factory=Model)
    room: RoomState = field(default_factory=lambda: RoomState("prop"))
    gateway_of: dict[str, str] = field(default_factory=dict)


def simulate(seed: int) -> Run:
    rng = random.Random(seed)
    run = Run()
    w = LogWriter()
    sessions: list[str] = []  # every session ever created (some gone: entries are ignored)
    next_index: dict[str, int] = {}  # stream id -> next chunk index the sender will send
    owner: dict[str, str] = {}  # stream id -> session that opened it
    open_ids: list[str] = []
    n_streams = 0
    m = run.model

    def apply(e: LogEntry) -> None:
        at = len(run.log)
        run.log.append(e)
        run.sink.at = at
        # reference model first (it needs the state before the entry)
        if e.kind == "j":
            if e.session not in m.members:
                for s, (ident, _, _) in list(m.members.items()):
                    if ident == e.identity:
                        m.remove(s, at)
                m.members[e.session] = (e.identity, e.gateway, e.can_subscribe)
        elif e.kind == "r":
            for s, (ident, _, _) in list(m.members.items()):
                if ident == e.identity:
                    m.remove(s, at)
        elif e.session in m.members:
            if e.kind in ("s", "u"):
                if e.kind == "s":
                    m.topics[e.session].add((e.stream_kind, e.topic))
                else:
                    m.topics[e.session].discard((e.stream_kind, e.topic))
            elif e.kind == "l":
                m.remove(e.session, at)
            elif e.kind == "h" and e.stream_id not in m.streams:
                expected = {
                    s
                    for s, (ident, _, can_sub) in m.members.items()
                    if s != e.session
                    and can_sub
                    and (e.stream_kind, e.topic) in m.topics[s]
                    and (not e.destinations or ident in e.destinations)
                }
                m.streams[e.stream_id] = (e.session, set(expected))
                run.expected_recipients[at] = expected
            elif e.kind == "t":
                st = m.streams.get(e.stream_id)
                if st is not None and st[0] == e.session:
                    del m.streams[e.stream_id]
        maybes_before = len(run.sink.maybes)
        run.room.apply(e, run.sink)
        if e.kind == "h":
            # no registration is in flight at any gateway here: each declines the header's
            # maybe-recipients (see roomstreams.core.room.Maybe), as real gateways do
            for gw, mb in run.sink.maybes[maybes_before:]:
                dc = LogEntry(
                    kind="dc",
                    session="",
                    gateway=gw,
                    stream_id=mb.stream_id,
                    data=" ".join(mb.sessions).encode(),
                )
                run.room.apply(dc, run.sink)
        # the model does not predict lag aborts: follow the room for those
        for sid in list(m.streams):
            if sid not in run.room.streams:
                del m.streams[sid]

    for _ in range(STEPS):
        op = rng.choices(
            [
                "join",
                "leave",
                "sub",
                "unsub",
                "header",
                "chunk",
                "trailer",
                "gap",
                "drop",
                "reuse",
                "remove",
            ],
            weights=[6, 2, 6, 2, 6, 20, 5, 1, 0.3, 0.5, 0.3],
        )[0]
        live = [s for s in sessions if s in m.members]
        if op == "join" or not live:
            s = f"s{len(sessions)}"
            sessions.append(s)
            gw = rng.choice(GATEWAYS)
            run.gateway_of[s] = gw
            apply(
                w.join(s, rng.choice(IDENTITIES), gw, can_subscribe=rng.random() > 0.15),
            )
            continue
        # mostly live sessions, sometimes one that is gone (its entries must be ignored)
        s = rng.choice(live) if rng.random() > 0.05 else rng.choice(sessions)
        if op == "leave":
            apply(w.leave(s, rng.choice(["", "bye"])))
        elif op in ("sub", "unsub"):
            make = w.subscribe if op == "sub" else w.unsubscribe
            req = rng.choice([None, rng.randrange(100)])
            apply(make(s, rng.choice(TOPICS), rng.choice(KINDS), req))
        elif op == "header":
            n_streams += 1
            sid = f"st{n_streams}"
            dests: tuple[str, ...] = ()
            if rng.random() < 0.3:
                dests = tuple(rng.sample(IDENTITIES, rng.randint(1, 3)))
            apply(w.header(s, sid, rng.choice(TOPICS), kind=rng.choice(KINDS), destinations=dests))
            owner[sid] = s
            next_index[sid] = 0
            open_ids.append(sid)
        elif op == "reuse" and owner:
            # an id still open in the room (refused), or one that ended (a new stream)
            sid = rng.choice(sorted(owner))
            reopened = sid not in run.room.streams
            apply(w.header(s, sid, rng.choice(TOPICS)))
            if reopened:
                owner[sid] = s
                next_index[sid] = 0
                if sid not in open_ids:
                    open_ids.append(sid)
        elif op in ("chunk", "trailer") and open_ids:
            sid = rng.choice(open_ids)
            sender = owner[sid]
            if rng.random() < 0.05 and s != owner[sid]:
                sender = s  # the wrong sender: ignored
            if op == "chunk":
                apply(w.chunk(sender, sid, next_index[sid], rng.choice(["a", "é", "😀"])))
                if sender == owner[sid]:
                    next_index[sid] += 1
            else:
                apply(w.trailer(sender, sid, rng.choice(["", "", "cancelled"])))
                if sender == owner[sid]:
                    open_ids.remove(sid)
        elif op == "remove":
            apply(w.remove(rng.choice(IDENTITIES), "removed by the server API"))
        elif op == "gap":
            w.skip(s, rng.randint(1, 3))
        elif op == "drop":
            gw = rng.choice(GATEWAYS)
            at = len(run.log)
            run.log.append(("drop", gw))
            run.sink.at = at
            for victim, (_, mgw, _) in list(m.members.items()):
                if mgw == gw:
                    m.remove(victim, at)
            run.room.drop_gateway(gw, "gateway died", run.sink)
            for sid in list(m.streams):
                if sid not in run.room.streams:
                    del m.streams[sid]
    return run


def check(run: Run) -> None:
    headers_at = {i: e for i, e in enumerate(run.log) if isinstance(e, LogEntry) and e.kind == "h"}
    per_receiver: dict[str, list[Delivery]] = defaultdict(list)
    for d in run.sink.deliveries:
        assert len(set(d.sessions)) == len(d.sessions), f"session listed twice: {d}"
        for s in d.sessions:
            assert run.gateway_of[s] == d.gateway, f"{s} delivered via the wrong gateway: {d}"
            per_receiver[s].append(d)

    # one delivery per gateway for each routed chunk/header/trailer frame
    seen: set[tuple[int, str, bytes]] = set()
    for d in run.sink.deliveries:
        if d.type in ("header", "chunk", "trailer"):
            key = (d.at, d.gateway, d.raw)
            assert key not in seen, f"two deliveries to one gateway for one frame: {d}"
            seen.add(key)

    # header recipients = the reference model's, frozen at header time
    got: dict[int, set[str]] = defaultdict(set)
    for d in run.sink.deliveries:
        if d.opens:
            got[d.at].update(d.sessions)
    for at, expected in run.expected_recipients.items():
        assert got.get(at, set()) == expected, (
            f"header at {at} ({headers_at[at].stream_id}) reached {got.get(at)}, "
            f"expected {expected}"
        )
    assert set(got) <= set(run.expected_recipients), "a header opened where none was expected"

    for receiver, deliveries in per_receiver.items():
        header_ats = [d.at for d in deliveries if d.opens]
        assert header_ats == sorted(set(header_ats)), f"{receiver}: headers out of log order"
        trailer_ats = [d.at for d in deliveries if d.ends and d.type == "trailer"]
        assert trailer_ats == sorted(trailer_ats), f"{receiver}: trailers out of log order"

        open_at_receiver: dict[str, int] = {}  # stream id -> next chunk index
        for d in deliveries:
            gone = run.model.gone_at.get(receiver)
            assert gone is None or d.at <= gone, f"{receiver} got {d.type} after it left"
            if d.opens:
                assert d.type == "header"
                assert d.frame["stream_id"] == d.opens
                assert headers_at[d.at].session != receiver, "a sender received its own header"
                assert d.opens not in open_at_receiver, f"{receiver}: {d.opens} opened twice"
                open_at_receiver[d.opens] = 0
            elif d.type == "chunk":
                sid = d.frame["stream_id"]
                assert sid in open_at_receiver, f"{receiver}: chunk of {sid} without its header"
                assert d.frame["chunk_index"] == open_at_receiver[sid], (
                    f"{receiver}: chunk {d.frame['chunk_index']} of {sid}, "
                    f"expected {open_at_receiver[sid]}"
                )
                open_at_receiver[sid] += 1
            elif d.ends and d.type in ("closed", "error"):
                # to the sender: its trailer was routed (or cannot be); its gateway stops
                # waiting for it
                assert d.frame["stream_id"] == d.ends
                assert d.ends not in open_at_receiver, "a sender received its own stream"
            elif d.ends:
                assert d.type == "trailer"
                assert d.frame["stream_id"] == d.ends
                assert d.ends in open_at_receiver, f"{receiver}: trailer of unopened {d.ends}"
                del open_at_receiver[d.ends]
            else:
                assert d.type not in ("header", "trailer"), f"untracked stream frame {d}"

        # no receiver still in the room is left waiting on a stream the room has forgotten
        if receiver in run.room.members:
            hanging = set(open_at_receiver) - set(run.room.streams)
            assert not hanging, f"{receiver} never got the end of {hanging}"

    # the room agrees with the model about who is in it, and reported each change once
    assert set(run.room.members) == set(run.model.members)
    present: set[str] = set()
    for _, s, _, info, _ in run.sink.presences:
        if info is not None:
            assert s not in present, f"{s} reported joining twice"
            present.add(s)
        else:
            assert s in present, f"{s} reported leaving without joining"
            present.remove(s)
    assert present == set(run.room.members)


def test_random_interleavings_keep_per_receiver_order_and_completeness() -> None:
    for seed in SEEDS:
        run = simulate(seed)
        try:
            check(run)
        except AssertionError as exc:
            raise AssertionError(f"seed {seed}: {exc}") from exc


def test_random_interleavings_exercise_every_path() -> None:
    """Guard against a simulation that silently stopped covering the interesting cases."""
    codes: set[str] = set()
    types: set[str] = set()
    closes = 0
    goaway_codes: set[str] = set()
    for seed in range(60):
        run = simulate(seed)
        closes += len(run.sink.closes)
        goaway_codes.update(frame["code"] for _, _, frame in run.sink.closes)
        for d in run.sink.deliveries:
            types.add(d.type)
            if d.type == "trailer":
                codes.add(d.frame.get("code", ""))
            if d.type == "error":
                codes.add(d.frame["code"])
    assert {"joined", "participant_joined", "participant_left", "header", "chunk"} <= types
    assert {"trailer", "closed", "ack", "error"} <= types
    assert {"", "sender_left", "lagged", "stream_id_in_use"} <= codes
    assert closes > 0
    assert {"duplicate_identity", "removed"} <= goaway_codes
