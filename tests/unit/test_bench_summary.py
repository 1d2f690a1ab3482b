"""``roomstreams bench`` ends with a short table for people on stderr; stdout stays the JSON."""

from __future__ import annotations

import json
from typing import Any

import pytest

from roomstreams.bench import runner
from roomstreams.bench.summary import summary_rows, summary_table


def _doc() -> dict[str, Any]:
    doc: dict[str, Any] = {
        "date": "2026-12-02T18:00:00+00:00",
        "workloads": ["floors", "w1", "w2", "w3", "w5", "w6"],
        "floors": {
            "redis_xadd_xread": {"p50_ms": 0.11},
            "websocket_echo": {"p50_ms": 0.09},
        },
        "w1": {"p50_ms": 0.62, "p99_ms": 3.4},
        "w2": {"mb_per_s": 71.5},
        "w3": {"error": "TimeoutError()"},
        "w5": {"mb_per_s": 120.0, "max_growth_mb": 80.0, "complete": True},
        "w6": {"p50_ms": 0.5},
    }
    doc["ratios"], doc["targets"] = runner.derived(doc)
    return doc


def test_rows_give_figures_targets_verdicts_and_floor_ratios() -> None:
    rows = {(r[0], r[1].split()[0]): r for r in summary_rows(_doc())}
    w1_p50 = rows[("w1 latency", "p50")]
    assert w1_p50[1:4] == ("p50 0.62 ms", "< 1 ms", "yes")
    assert w1_p50[4] == "2.00x"  # 0.62 / (0.09 + 2 * 0.11)
    assert rows[("w1 latency", "p99")][3] == "NO"  # 3.4 ms is over the 3 ms target
    assert rows[("w2 throughput", "71.5")][2:4] == (">= 60 MB/s", "yes")
    assert rows[("w3", "failed:")][3] == "NO"
    assert rows[("w5 bytes", "memory")][3] == "NO"  # 80 MB grown, 64 allowed
    assert rows[("floors", "path")][1].startswith("path floor p50 0.31 ms")
    assert rows[("w6 data packets", "p50")][4] == "1.61x"


def test_a_workload_the_table_does_not_know_still_gets_a_row() -> None:
    rows = summary_rows({"workloads": ["w9"], "w9": {"x": 1}})
    assert rows == [("w9", "see the JSON report", "-", "-", "-")]


def test_table_is_plain_text_with_one_line_per_row() -> None:
    text = summary_table(_doc())
    assert "\x1b[" not in text  # no colour codes in a log
    assert "roomstreams bench 2026-12-02" in text
    for needle in ("w1 latency", "p50 0.62 ms", "w2 throughput", "failed: TimeoutError()"):
        assert needle in text
    assert max(len(line) for line in text.splitlines()) <= 100


def test_run_cli_prints_json_on_stdout_and_the_table_on_stderr(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    doc = _doc()
    monkeypatch.setattr(runner, "run", lambda *a, **k: doc)  # the report, without the system
    runner.run_cli("w1")
    out, err = capsys.readouterr()
    assert json.loads(out) == doc  # stdout: the JSON document and nothing else
    assert err.rstrip().splitlines()[-1].startswith("└")  # stderr ends with the table
    assert "w1 latency" in err


def test_w1_is_compared_with_the_bare_relays_in_latency_and_in_each_process_cpu() -> None:
    doc = _doc()
    doc["floors"]["relay"] = {
        "p50_ms": 0.5,
        "p99_ms": 1.7,
        "cpu_us_per_chunk": {"redis": 100.0, "relay_in": 150.0, "relay_mid": 120.0,
                             "relay_out": 110.0, "bench": 200.0},
    }  # fmt: skip
    doc["w1"]["cpu_us_per_chunk"] = {"redis": 130.0, "gateway0": 180.0, "router": 240.0,
                                     "gateway1": 165.0, "bench": 250.0}  # fmt: skip
    ratios, _ = runner.derived(doc)
    assert ratios["w1_p50_over_relay_p50"] == 1.24  # 0.62 / 0.5
    assert ratios["w1_p99_over_relay_p99"] == 2.0
    assert ratios["w1_cpu_per_chunk_over_relay"] == {
        "gateway0": 1.2, "router": 2.0, "gateway1": 1.5, "redis": 1.3, "bench": 1.25,
    }  # fmt: skip
    doc["ratios"] = ratios
    rows = {(r[0], r[1].split()[0]): r for r in summary_rows(doc)}
    assert rows[("floors", "bare")][1] == "bare relays p50 / p99 0.5 ms / 1.7 ms"


def test_the_picows_relays_are_compared_with_the_websockets_relays() -> None:
    doc = _doc()
    doc["floors"]["relay"] = {
        "p50_ms": 0.5,
        "p99_ms": 2.0,
        "cpu_us_per_chunk": {"redis": 100.0, "relay_in": 150.0, "relay_out": 120.0},
    }
    doc["floors"]["relay_picows"] = {
        "p50_ms": 0.4,
        "p99_ms": 1.2,
        "cpu_us_per_chunk": {"redis": 100.0, "relay_in": 75.0, "relay_out": 90.0},
    }
    ratios, _ = runner.derived(doc)
    assert ratios["relay_picows_p50_over_relay_p50"] == 0.8
    assert ratios["relay_picows_p99_over_relay_p99"] == 0.6
    assert ratios["relay_picows_cpu_per_chunk_over_relay"] == {
        "redis": 1.0, "relay_in": 0.5, "relay_out": 0.75,
    }  # fmt: skip
    doc["ratios"] = ratios
    rows = [r[1] for r in summary_rows(doc) if r[0] == "floors"]
    assert "bare relays, picows, p50 / p99 0.4 ms / 1.2 ms" in rows


def test_without_picows_the_bench_says_so_and_compares_nothing() -> None:
    doc = _doc()
    doc["floors"]["relay"] = {"p50_ms": 0.5, "p99_ms": 2.0, "cpu_us_per_chunk": {}}
    doc["floors"]["relay_picows"] = {"skipped": "picows is not installed (pip install picows)"}
    ratios, _ = runner.derived(doc)
    assert not any(k.startswith("relay_picows") for k in ratios)


def test_a_lease_a_router_lost_during_a_workload_is_reported_and_flagged() -> None:
    before = [{"leases_lost": 1.0, "takeovers": 0.0, "partitions_acquired": 8.0}, {}]
    after = [{"leases_lost": 3.0, "takeovers": 1.0, "partitions_acquired": 9.0}, {}]
    during = runner._counters_during(before, after)
    assert during == {"leases_lost": [2, None], "takeovers": [1, None],
                      "partitions_acquired": [1, None]}  # fmt: skip
    doc = _doc()
    doc["w2"]["routers_during"] = during
    doc["w6"]["routers_during"] = runner._counters_during(after, after)
    rows = [r for r in summary_rows(doc) if "lease" in r[1]]
    assert rows == [("w2", "routers lost 2 partition lease(s)", "0", "NO", "-")]


def test_w1p_is_measured_against_w1s_floor_and_w1() -> None:
    doc = _doc()
    doc["workloads"].insert(2, "w1p")
    doc["w1p"] = {"p50_ms": 0.465, "p99_ms": 1.2}
    ratios, _ = runner.derived(doc)
    assert ratios["w1p_p50_over_path_floor"] == 1.5  # 0.465 / 0.31
    assert ratios["w1p_p50_over_w1_p50"] == 0.75  # 0.465 / 0.62
    doc["ratios"] = ratios
    row = next(r for r in summary_rows(doc) if r[0] == "w1p latency")
    assert row == ("w1p latency", "p50 0.465 ms / p99 1.2 ms", "-", "-", "1.50x")


def test_w3s_server_cpu_per_delivery_is_measured_against_one_socket_send() -> None:
    doc = _doc()
    doc["floors"]["socket_send"] = {
        "cpu_us_per_send_paced_1ms": 6.0,
        "cpu_us_per_send_flat_out": 3.0,
    }
    per = {"redis": 2.0, "router": 3.0, "gateway0": 6.0, "gateway1": 4.0, "bench": 16.0}
    doc["w3"] = {"rates": [{"rate_per_s": 500}, {"rate_per_s": 1000, "cpu_us_per_delivery": per}]}
    ratios, _ = runner.derived(doc)
    assert ratios["w3_server_cpu_us_per_delivery_at_1000"] == 15.0  # the bench is a client
    assert ratios["w3_server_cpu_per_delivery_over_send_floor"] == 2.5
    assert "w3p_server_cpu_us_per_delivery_at_1000" not in ratios  # no W3p in this run
    doc["ratios"] = ratios
    rows = [r[1] for r in summary_rows(doc) if r[0] == "floors"]
    assert "socket send CPU paced / flat out 6.0 / 3.0 µs" in rows
