"""Prometheus metrics (services/observability.py): a real router and real gateways are
scraped before and after traffic, and the counters must move by what the traffic was.
The lag arithmetic is checked against a real Redis stream, the Grafana dashboard against
the names a running system exposes."""

from __future__ import annotations

import asyncio
import json
import re
import shutil
import subprocess
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import redis.asyncio as aioredis
import websockets

import roomstreams
from services.observability import LagTracker

from .conftest import System
from .helpers import (
    Collector,
    RawClient,
    Samples,
    gw_url,
    http_get,
    router_url,
    scrape,
    v,
    wait_for_state,
)

pytestmark = pytest.mark.slow

ROOT = Path(__file__).resolve().parents[2]
DASHBOARD = ROOT / "deploy" / "grafana" / "dashboards" / "roomstreams.json"

async def _room(s: System, room: str, identity: str, gateway: int, **handlers: Any) -> Any:
    r = roomstreams.Room()
    for topic, h in handlers.items():
        r.register_text_stream_handler(topic, h)
    await r.connect(s.urls[gateway], s.token(room, identity))
    return r


async def test_counters_move_by_what_the_traffic_was(
    system_factory: Callable[..., System], room_name: str
) -> None:
    s = system_factory(gateways=2)
    g0, g1, r0 = (await scrape(gw_url(s, 0)))[0], (await scrape(gw_url(s, 1)))[0], None
    r0 = (await scrape(router_url(s)))[0]
    assert v(g0, "roomstreams_gateway_connections") == 0
    assert v(r0, "roomstreams_router_partitions_owned") == s.partitions

    col = Collector()
    packets: list[roomstreams.DataPacket] = []
    alice = await _room(s, room_name, "alice", 0, chat=col)
    alice.on("data_received", packets.append)
    bob = await _room(s, room_name, "bob", 1)
    text = "m" * 40_000  # a few chunks
    info = await bob.local_participant.send_text(text, topic="chat")
    assert (await col.wait_done(info.stream_id)).text == text
    await bob.local_participant.publish_data(b"\x01" * 100, topic="t")
    await wait_for_state(lambda: _true(bool(packets)), what="the data packet")
    # a frame the gateway refuses: an error frame, code bad_frame, to its sender only
    raw = await RawClient.connect(s.urls[1], s.token(room_name, "carol"))
    await raw.send({"type": "no-such-frame"})
    err = await raw.expect("error")
    assert err["code"] == "bad_frame"

    g0b, _ = await scrape(gw_url(s, 0))
    g1b, _ = await scrape(gw_url(s, 1))
    r1, _ = await scrape(router_url(s))

    def d(a: Samples, b: Samples, name: str, **labels: str) -> float:
        return v(b, name, **labels) - v(a, name, **labels)

    # gauges: who is here now
    assert v(g0b, "roomstreams_gateway_connections") == 1
    assert v(g1b, "roomstreams_gateway_connections") == 2
    assert v(g1b, "roomstreams_gateway_participants") == 2
    assert v(g1b, "roomstreams_gateway_rooms") == 1
    assert v(r1, "roomstreams_router_participants") == 3
    assert v(r1, "roomstreams_router_rooms") >= 1
    assert d(g1, g1b, "roomstreams_gateway_connections_opened_total") == 2
    # bob's gateway appended exactly one stream (header, chunks, trailer) and one packet
    kind = "roomstreams_gateway_entries_appended_total"
    assert d(g1, g1b, kind, kind="header") == 1
    assert d(g1, g1b, kind, kind="trailer") == 1
    chunks = d(g1, g1b, kind, kind="chunk")
    assert chunks >= 3
    assert d(g1, g1b, kind, kind="data_packet") == 1
    assert d(g1, g1b, kind, kind="join") == 2
    assert d(g1, g1b, "roomstreams_gateway_appended_bytes_total", kind="data_packet") > 100
    assert d(g1, g1b, "roomstreams_gateway_frames_received_total") >= chunks + 3
    assert d(g1, g1b, "roomstreams_gateway_errors_total", code="bad_frame") == 1
    assert d(g0, g0b, "roomstreams_gateway_errors_total", code="bad_frame") == 0
    # alice's gateway delivered them: header + chunks + trailer + packet, among others
    assert d(g0, g0b, "roomstreams_gateway_deliveries_total") >= chunks + 3
    sent = "roomstreams_gateway_frames_sent_total"
    assert d(g0, g0b, sent, kind="data_packet") == 1
    assert d(g0, g0b, sent, kind="json") >= chunks + 2
    assert d(g0, g0b, "roomstreams_gateway_sent_bytes_total", kind="json") > len(text)
    assert d(g0, g0b, "roomstreams_gateway_inbox_entries_read_total") >= chunks + 3
    # latency histograms: observed once per pipeline / read, so at least once here
    assert d(g1, g1b, "roomstreams_gateway_append_pipeline_seconds_count") >= 1
    assert d(g0, g0b, "roomstreams_gateway_inbox_read_delay_seconds_count") >= 1
    # the router: one stream opened and completed, the packet and the stream routed
    assert d(r0, r1, "roomstreams_router_streams_opened_total") == 1
    assert d(r0, r1, "roomstreams_router_streams_ended_total", reason="completed") == 1
    assert d(r0, r1, "roomstreams_router_entries_read_total") >= chunks + 3
    assert d(r0, r1, "roomstreams_router_deliveries_total") >= chunks + 3
    assert d(r0, r1, "roomstreams_router_wakeups_total") >= 1
    assert d(r0, r1, "roomstreams_router_fold_seconds_count") >= 1
    assert d(r0, r1, "roomstreams_router_read_delay_seconds_count") >= 1
    assert v(r1, "roomstreams_router_takeovers_total") == 0

    # a stream cut by its sender leaving: aborted at the router, reason sender_left
    w = await bob.local_participant.stream_text(topic="chat")
    await w.write("half")
    await col.wait_count(2)
    await bob.disconnect()
    rec = await col.wait_done(w.stream_id)
    assert isinstance(rec.error, roomstreams.StreamAborted)
    r2, _ = await scrape(router_url(s))
    assert d(r1, r2, "roomstreams_router_streams_ended_total", reason="sender_left") == 1
    assert d(r1, r2, "roomstreams_router_streams_opened_total") == 1

    # caught up and quiet: no lag anywhere
    async def no_lag() -> bool:
        gs, _ = await scrape(gw_url(s, 0))
        rs, _ = await scrape(router_url(s))
        lag = [k for k, x in rs.items() if k[0].startswith("roomstreams_router_partition_lag")]
        return (
            v(gs, "roomstreams_gateway_inbox_lag_entries") == 0
            and v(gs, "roomstreams_gateway_inbox_lag_seconds") == 0
            and len(lag) == 2 * s.partitions
            and all(rs[k] == 0 for k in lag)
        )

    await wait_for_state(no_lag, timeout=10, what="no lag")
    await raw.close()
    await alice.disconnect()


async def _true(x: bool) -> bool:
    return x


async def test_slow_consumer_disconnect_is_counted(
    system_factory: Callable[..., System], room_name: str
) -> None:
    s = system_factory(gateways=1, ROOMSTREAMS_SEND_QUEUE_FRAMES="8")
    before, _ = await scrape(gw_url(s, 0))
    slow = await RawClient.connect(s.urls[0], s.token(room_name, "slow"), max_queue=1)
    await slow.subscribe("chat")  # then never reads again
    alice = await _room(s, room_name, "alice", 0)
    await asyncio.wait_for(
        alice.local_participant.send_text("s" * (12 * 1024 * 1024), topic="chat"), 60
    )
    with pytest.raises(websockets.ConnectionClosed) as closed:
        while True:
            await slow.ws.recv()
    assert closed.value.rcvd is not None and closed.value.rcvd.code == 4008
    after, _ = await scrape(gw_url(s, 0))
    name = "roomstreams_gateway_slow_consumer_disconnects_total"
    assert v(after, name) - v(before, name) == 1
    disc = "roomstreams_gateway_disconnects_total"
    assert v(after, disc, code="4008") - v(before, disc, code="4008") == 1
    assert v(after, "roomstreams_gateway_send_queue_capacity") == 8
    await alice.disconnect()


async def test_reconnect_query_is_counted(
    system_factory: Callable[..., System], room_name: str
) -> None:
    """LiveKit's SDKs say ``reconnect=1`` when they reconnect; the gateway counts those."""
    s = system_factory(gateways=1)
    before, _ = await scrape(gw_url(s, 0))
    token = s.token(room_name, "dave")
    ws = await websockets.connect(f"{s.urls[0]}/rtc?access_token={token}&reconnect=1")
    raw = RawClient(ws)
    await raw.expect("joined")
    after, _ = await scrape(gw_url(s, 0))
    name = "roomstreams_gateway_reconnects_total"
    assert v(after, name) - v(before, name) == 1
    await raw.close()


async def test_health_ready_and_metrics_on_the_router_port(
    system_factory: Callable[..., System],
) -> None:
    s = system_factory(gateways=0)
    status, _, body = await asyncio.to_thread(http_get, f"{s.api_url}/readyz")
    assert status == 200 and json.loads(body)["status"] == "ready"
    status, _, body = await asyncio.to_thread(http_get, f"{s.api_url}/healthz")
    owned = json.loads(body)["partitions"]
    assert status == 200 and len(owned) == s.partitions
    samples, _ = await scrape(router_url(s))
    assert v(samples, "roomstreams_router_partitions_owned") == len(owned)
    assert v(samples, "roomstreams_router_partitions_acquired_total") == s.partitions
    assert v(samples, "process_resident_memory_bytes") > 0


async def test_lag_is_entries_behind_and_age_of_the_oldest_unread(
    redis_client: aioredis.Redis,
) -> None:
    key = f"test-lag-{time.monotonic_ns()}"
    lag = LagTracker()
    ids = [await redis_client.xadd(key, {"n": str(i)}) for i in range(10)]
    # read from the start: offset known (0), 4 entries read of 10
    lag.offset[key] = 0
    (behind, age) = (await lag.lag(redis_client, [(key, ids[3], 4)]))[key]
    assert behind == 6
    assert 0 <= age < 60
    # caught up: nothing behind, nothing old; the offset is learned again
    assert (await lag.lag(redis_client, [(key, ids[-1], 10)]))[key] == (0, 0.0)
    # the reader's count restarted (a new process) and is caught up: offset re-learned
    assert (await lag.lag(redis_client, [(key, ids[-1], 0)]))[key] == (0, 0.0)
    new = [await redis_client.xadd(key, {"n": "x"}) for _ in range(3)]
    assert (await lag.lag(redis_client, [(key, ids[-1], 0)]))[key][0] == 3
    # never caught up, offset unknown: the stream's length stands in (an upper bound)
    fresh = LagTracker()
    assert (await fresh.lag(redis_client, [(key, ids[4], 5)]))[key][0] == 13
    # the age is that of the oldest unread entry, from its id
    old = f"{int(time.time() * 1000) - 30_000}-0"
    key2 = key + "-old"
    await redis_client.xadd(key2, {"n": "old"}, id=old)
    behind, age = (await lag.lag(redis_client, [(key2, "0-0", 0)]))[key2]
    assert behind == 1 and 29 < age < 90
    # a stream that does not exist has no lag
    assert (await lag.lag(redis_client, [(key + "-none", "0-0", 0)]))[key + "-none"] == (0, 0.0)
    assert new
    await redis_client.delete(key, key2)


_METRIC = re.compile(r"\b(roomstreams_[a-z0-9_]+|process_[a-z0-9_]+)\b")
_SUFFIXES = ("_bucket", "_count", "_sum", "_total")  # of a family (HELP/TYPE lines)


def _dashboard_metrics() -> set[str]:
    dash = json.loads(DASHBOARD.read_text())
    exprs: list[str] = []

    def walk(node: Any) -> None:
        if isinstance(node, dict):
            if isinstance(node.get("expr"), str):
                exprs.append(node["expr"])
            for x in node.values():
                walk(x)
        elif isinstance(node, list):
            for x in node:
                walk(x)

    walk(dash)
    assert exprs, "the dashboard has no queries"
    return {m for e in exprs for m in _METRIC.findall(e)}


async def test_dashboard_uses_only_metrics_that_exist(
    system_factory: Callable[..., System],
) -> None:
    s = system_factory(gateways=1)
    gw, gw_fams = await scrape(gw_url(s, 0))
    rt, rt_fams = await scrape(router_url(s))
    exposed = {name for name, _ in [*gw, *rt]} | gw_fams | rt_fams
    used = _dashboard_metrics()
    assert any(m.startswith("roomstreams_gateway_") for m in used)
    assert any(m.startswith("roomstreams_router_") for m in used)
    missing = sorted(
        m
        for m in used
        if m not in exposed
        and not any(m.endswith(x) and m[: -len(x)] in exposed for x in _SUFFIXES)
    )
    assert not missing, f"dashboard queries name metrics nobody exposes: {missing}"


@pytest.mark.skipif(shutil.which("promtool") is None, reason="promtool not installed")
async def test_promtool_finds_nothing_to_lint(system_factory: Callable[..., System]) -> None:
    """Prometheus' own linter (names, suffixes, help texts) on both pages."""
    s = system_factory(gateways=1)
    for url in (gw_url(s, 0), router_url(s)):
        _, _, text = await asyncio.to_thread(http_get, url)
        proc = await asyncio.to_thread(
            subprocess.run,
            ["promtool", "check", "metrics"],
            input=text,
            capture_output=True,
            text=True,
            timeout=30,
        )
        assert proc.returncode == 0, f"{url}: {proc.stdout}{proc.stderr}"
