"""``roomstreams bench``: a benchmark of the whole system on this machine.

It starts its own system on 127.0.0.1 (a private Redis-compatible server, one router, two
gateways), runs the selected workloads, prints one JSON document to stdout and stops
everything. See ``docs/benchmarks.md``.

    from roomstreams.bench import run_cli
    run_cli()                       # all workloads
    run_cli("floors,w1", quick=True)
"""

from .runner import PEERS, TARGETS, WORKLOADS, parse_workloads, run, run_cli

__all__ = ["PEERS", "TARGETS", "WORKLOADS", "parse_workloads", "run", "run_cli"]
