"""The short human table ``roomstreams bench`` ends with, on stderr (the JSON report stays
alone on stdout): per workload its headline figure, the target, whether it is met, and the
ratio to the same run's floor where one applies."""

from __future__ import annotations

import io
from typing import Any

from rich.console import Console
from rich.table import Table

from .runner import TARGETS, _get

__all__ = ["summary_rows", "summary_table"]

Row = tuple[str, str, str, str, str]  # workload, figure, target, met, vs floor


def _num(v: Any, unit: str = "", digits: int = 2) -> str:
    if not isinstance(v, int | float) or isinstance(v, bool):
        return "-"
    text = f"{v:,.0f}" if abs(v) >= 1000 else f"{v:.{digits}f}".rstrip("0").rstrip(".")
    return f"{text} {unit}".rstrip()


def _met(v: Any) -> str:
    if v is True:
        return "yes"
    return "NO" if v is False else "-"


def _times(v: Any) -> str:
    return f"{v:.2f}x" if isinstance(v, int | float) else "-"


def _ms(v: Any) -> str:
    return _num(v, "ms", 3)


def summary_rows(doc: dict[str, Any]) -> list[Row]:
    """The table's rows for the workloads ``doc`` ran (a failed one: its error)."""
    met: dict[str, Any] = _get(doc, "targets", "met") or {}
    ratios: dict[str, Any] = doc.get("ratios") or {}
    t = TARGETS
    rows: list[Row] = []
    for w in doc.get("workloads", []):
        g = doc.get(w)
        if not isinstance(g, dict):
            continue
        if "error" in g:
            rows.append((w, f"failed: {g['error']}"[:70], "-", "NO", "-"))
        elif w == "floors":
            redis_p50 = _ms(_get(g, "redis_xadd_xread", "p50_ms"))
            ws_p50 = _ms(_get(g, "websocket_echo", "p50_ms"))
            path = _ms(ratios.get("path_floor_p50_ms"))
            rows.append(("floors", f"redis XADD->XREAD p50 {redis_p50}", "-", "-", "-"))
            rows.append(("floors", f"websocket echo p50 {ws_p50}", "-", "-", "-"))
            rows.append(("floors", f"path floor p50 {path} (ws + 2 redis)", "-", "-", "-"))
            if _get(g, "relay", "p50_ms") is not None:
                relay = f"{_ms(_get(g, 'relay', 'p50_ms'))} / {_ms(_get(g, 'relay', 'p99_ms'))}"
                rows.append(("floors", f"bare relays p50 / p99 {relay}", "-", "-", "-"))
            if _get(g, "relay_picows", "p50_ms") is not None:
                fast = _get(g, "relay_picows")
                relay = f"{_ms(_get(fast, 'p50_ms'))} / {_ms(_get(fast, 'p99_ms'))}"
                rows.append(("floors", f"bare relays, picows, p50 / p99 {relay}", "-", "-", "-"))
            send = _get(g, "socket_send")
            if isinstance(send, dict) and "cpu_us_per_send_paced_1ms" in send:
                us = f"{send['cpu_us_per_send_paced_1ms']} / {send['cpu_us_per_send_flat_out']} µs"
                rows.append(("floors", f"socket send CPU paced / flat out {us}", "-", "-", "-"))
        elif w == "w1":
            rows.append(
                ("w1 latency", f"p50 {_ms(g.get('p50_ms'))}", f"< {_ms(t['w1_p50_ms_max'])}",
                 _met(met.get("w1_p50")), _times(ratios.get("w1_p50_over_path_floor")))
            )  # fmt: skip
            rows.append(
                ("w1 latency", f"p99 {_ms(g.get('p99_ms'))}", f"< {_ms(t['w1_p99_ms_max'])}",
                 _met(met.get("w1_p99")), "-")
            )  # fmt: skip
        elif w == "w1p":  # no target of its own: W1's, with the receiver in its own process
            rows.append(
                ("w1p latency", f"p50 {_ms(g.get('p50_ms'))} / p99 {_ms(g.get('p99_ms'))}",
                 "-", "-", _times(ratios.get("w1p_p50_over_path_floor")))
            )  # fmt: skip
        elif w == "w2":
            rows.append(
                ("w2 throughput", _num(g.get("mb_per_s"), "MB/s"),
                 f">= {_num(t['w2_mb_per_s_min'], 'MB/s')}", _met(met.get("w2")), "-")
            )  # fmt: skip
        elif w in ("w3", "w3p"):
            rows.append(
                (f"{w} fan-out", _num(g.get("deliveries_per_s_at_highest"), "deliveries/s"),
                 f">= {_num(t['w3_deliveries_per_s_min'])}/s", _met(met.get(w)), "-")
            )  # fmt: skip
        elif w == "w4":
            rows.append(
                ("w4 memory", _num(g.get("gateway_kb_per_connection"), "KB/connection"),
                 f"<= {_num(t['w4_kb_per_connection_max'], 'KB')}", _met(met.get("w4")), "-")
            )  # fmt: skip
        elif w == "w5":
            rows.append(
                ("w5 bytes", _num(g.get("mb_per_s"), "MB/s"),
                 f">= {_num(t['w5_mb_per_s_min'], 'MB/s')}", _met(met.get("w5_mb_per_s")), "-")
            )  # fmt: skip
            rows.append(
                ("w5 bytes", f"memory growth {_num(g.get('max_growth_mb'), 'MB')}",
                 f"<= {_num(t['w5_growth_mb_max'], 'MB')}", _met(met.get("w5_growth")), "-")
            )  # fmt: skip
        elif w == "w6":
            rows.append(
                ("w6 data packets", f"p50 {_ms(g.get('p50_ms'))}", "-", "-",
                 _times(ratios.get("w6_p50_over_path_floor")))
            )  # fmt: skip
        elif w == "wflood":
            alone = _ms(_get(g, "alone", "p99_ms_median") or _get(g, "alone", "p99_ms"))
            same = _times(_get(g, "tiny_same_room", "p99_ratio_to_alone"))
            other = _times(_get(g, "tiny_other_room", "p99_ratio_to_alone"))
            rows.append(
                ("wflood", f"p99 alone {alone}; flooder in the room {same}, in another {other}",
                 "<= 2.00x", "-", "-")
            )  # fmt: skip
        elif w == "w7":
            rows.append(
                ("w7 many rooms", f"{_num(g.get('rooms'))} rooms: W1 p99 "
                 f"{_ms(_get(g, 'w1_under_load', 'p99_ms'))}, {_times(g.get('w1_p99_ratio'))} "
                 "alone", "<= 2.00x", _met(g.get("target_met")), "-")
            )  # fmt: skip
        elif w == "w8":
            cpu = _get(g, "router_idle_cpu_percent_of_one_core", "created_and_joined_rooms")
            rows.append(
                ("w8 idle rooms", f"router idle {_num(cpu, '%')} of a core",
                 "< 2 %", _met(g.get("target_met")), "-")
            )  # fmt: skip
        else:  # a workload this table does not know yet: its figures are in the JSON
            rows.append((w, "see the JSON report", "-", "-", "-"))
        lost = sum(n or 0 for n in _get(g, "routers_during", "leases_lost") or ())
        if lost:  # a healthy router under load must keep its partitions
            rows.append((w, f"routers lost {lost} partition lease(s)", "0", "NO", "-"))
    return rows


def summary_table(doc: dict[str, Any], *, width: int = 100) -> str:
    """The rows as a table, rendered to text (no colour)."""
    table = Table(title=f"roomstreams bench {doc.get('date', '')}".strip(), title_justify="left")
    for col in ("workload", "figure", "target", "met", "x path floor"):
        table.add_column(col, no_wrap=col != "figure")
    for row in summary_rows(doc):
        table.add_row(*row)
    buf = io.StringIO()
    Console(file=buf, width=width, color_system=None, force_terminal=False).print(table)
    return buf.getvalue()
