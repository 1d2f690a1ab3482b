"""A throwaway local Redis Cluster: N masters (and replicas on demand) from the same
``valkey-server`` / ``redis-server`` binary as :class:`~roomstreams._redis_server.LocalRedisServer`,
each without persistence on 127.0.0.1, slots split evenly with ``CLUSTER ADDSLOTSRANGE``
and the nodes joined with ``CLUSTER MEET``. For tests and benchmarks; no Docker."""

from __future__ import annotations

import time
from collections.abc import Callable
from types import TracebackType
from typing import Any, Self

import redis

from ._redis_server import LocalRedisServer, find_redis_server, free_port

__all__ = ["SLOTS", "LocalRedisCluster", "slot_ranges"]

SLOTS = 16384
_HOST = "127.0.0.1"


def slot_ranges(masters: int) -> list[tuple[int, int]]:
    """Even split of the 16384 slots: 3 masters -> 0-5460, 5461-10922, 10923-16383."""
    bounds = [round(i * SLOTS / masters) for i in range(masters + 1)]
    ranges = [(bounds[i], bounds[i + 1] - 1) for i in range(masters)]
    if masters == 3:  # what redis-cli --cluster create gives
        ranges = [(0, 5460), (5461, 10922), (10923, 16383)]
    return ranges


def _wait(what: str, check: Callable[[], bool], timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            if check():
                return
        except redis.RedisError:
            pass
        time.sleep(0.02)
    raise RuntimeError(f"local Redis Cluster: {what} not reached within {timeout:.0f}s")


class LocalRedisCluster:
    """``with LocalRedisCluster() as c: c.url`` -> ``redis+cluster://127.0.0.1:p1,...``.

    Args:
        binary: server executable; defaults to :func:`find_redis_server`.
        masters: number of masters (the slots are split evenly between them).
        node_timeout_ms: ``cluster-node-timeout``: how long a node may be unreachable before
            it is failed (and its replica, if any, promoted).
        replicas: replicas per master, each attached with ``CLUSTER REPLICATE`` and synced
            before :meth:`start` returns (:meth:`add_replica` adds one later).
    """

    def __init__(
        self,
        binary: str | None = None,
        *,
        masters: int = 3,
        node_timeout_ms: int = 5000,
        replicas: int = 0,
    ) -> None:
        self.binary = binary if binary is not None else find_redis_server()
        self.masters = masters
        self.node_timeout_ms = node_timeout_ms
        self.replicas = replicas
        self.nodes: list[LocalRedisServer] = []
        self.startup_seconds: float | None = None

    @property
    def url(self) -> str:
        seeds = ",".join(f"{_HOST}:{n.port}" for n in self.nodes[: self.masters])
        return f"redis+cluster://{seeds}"

    def admin(self, node: LocalRedisServer) -> redis.Redis:
        """A plain (non-cluster) client on one node, for CLUSTER commands."""
        return redis.Redis(host=_HOST, port=node.port, decode_responses=True)

    def bus_port(self, node: LocalRedisServer) -> int:
        return int(node.extra_args[node.extra_args.index("--cluster-port") + 1])

    def _spawn(self) -> LocalRedisServer:
        node = LocalRedisServer(
            self.binary,
            extra_args=[
                "--cluster-enabled", "yes",
                "--cluster-config-file", "nodes.conf",  # in the node's private directory
                "--cluster-port", str(free_port()),
                "--cluster-node-timeout", str(self.node_timeout_ms),
                "--cluster-require-full-coverage", "yes",
            ],
        )  # fmt: skip
        node.start()
        self.nodes.append(node)
        return node

    def node_id(self, node: LocalRedisServer) -> str:
        with self.admin(node) as r:
            return str(r.execute_command("CLUSTER", "MYID"))

    def start(self) -> Self:
        started = time.monotonic()
        try:
            masters = [self._spawn() for _ in range(self.masters)]
            for node, (lo, hi) in zip(masters, slot_ranges(self.masters), strict=True):
                with self.admin(node) as r:
                    r.execute_command("CLUSTER", "ADDSLOTSRANGE", lo, hi)
            with self.admin(masters[0]) as r:
                for node in masters[1:]:
                    r.execute_command("CLUSTER", "MEET", _HOST, node.port, self.bus_port(node))
            self.wait_ok()
            for node in masters:
                for _ in range(self.replicas):
                    self.add_replica(node)
        except BaseException:
            self.stop()
            raise
        self.startup_seconds = time.monotonic() - started
        return self

    def wait_ok(self, timeout: float = 30.0) -> None:
        """Until every running node says ``cluster_state:ok`` and knows every running node."""
        running = [n for n in self.nodes if n.running]

        def ok() -> bool:
            for node in running:
                with self.admin(node) as r:
                    info: dict[str, Any] = r.execute_command("CLUSTER", "INFO")
                    if isinstance(info, str):
                        info = dict(line.split(":", 1) for line in info.splitlines() if ":" in line)
                    if info.get("cluster_state") != "ok":
                        return False
                    if int(info.get("cluster_known_nodes", 0)) < len(running):
                        return False
            return True

        _wait("cluster_state:ok on every node", ok, timeout)

    def add_replica(self, master: LocalRedisServer, timeout: float = 30.0) -> LocalRedisServer:
        """A new node that replicates ``master`` (``CLUSTER MEET`` + ``CLUSTER REPLICATE``),
        returned once its initial sync is done."""
        master_id = self.node_id(master)
        replica = self._spawn()
        with self.admin(replica) as r:
            r.execute_command("CLUSTER", "MEET", _HOST, master.port, self.bus_port(master))
            _wait(
                "the replica knowing its master",
                lambda: master_id in str(r.execute_command("CLUSTER", "NODES")),
                timeout,
            )
            r.execute_command("CLUSTER", "REPLICATE", master_id)
            _wait(
                "the replica's initial sync",
                lambda: r.info("replication").get("master_link_status") == "up",
                timeout,
            )
        self.wait_ok(timeout)
        return replica

    def replicas_of(self, master: LocalRedisServer) -> list[LocalRedisServer]:
        """The running replicas of ``master`` (by ``CLUSTER NODES`` on each)."""
        master_id = self.node_id(master)
        out = []
        for node in self.nodes:
            if node is master or not node.running:
                continue
            with self.admin(node) as r:
                info = r.info("replication")
                if info.get("role") == "slave" and int(info.get("master_port", 0)) == master.port:
                    out.append(node)
                    continue
                myself = [
                    ln for ln in str(r.execute_command("CLUSTER", "NODES")).splitlines()
                    if "myself" in ln.split()[2]
                ]  # fmt: skip
                if myself and myself[0].split()[3] == master_id:
                    out.append(node)
        return out

    def wait_failed(self, node_id: str, timeout: float = 30.0) -> None:
        """Until every running master flags ``node_id`` as ``fail`` (it has been unreachable
        for ``cluster-node-timeout`` and the masters agreed): clients now get errors for its
        slots instead of retrying their way through."""
        masters = []
        for n in self.nodes:
            if n.running:
                with self.admin(n) as r:
                    if r.info("replication").get("role") == "master":
                        masters.append(n)

        def failed() -> bool:
            for n in masters:
                with self.admin(n) as r:
                    for line in str(r.execute_command("CLUSTER", "NODES")).splitlines():
                        fields = line.split()
                        if fields[0] == node_id and "fail" not in fields[2].split(","):
                            return False
            return True

        _wait(f"node {node_id[:8]} flagged as failed", failed, timeout)

    def takeover(self, replica: LocalRedisServer, timeout: float = 30.0) -> None:
        """Promote ``replica`` now (``CLUSTER FAILOVER TAKEOVER``: no vote of the other
        masters, no agreement of its master, which may be dead) and wait until every running
        node sees a healthy cluster with it as a master."""
        with self.admin(replica) as r:
            try:
                r.execute_command("CLUSTER", "FAILOVER", "TAKEOVER")
            except redis.ResponseError:
                # once the masters flagged its master failed, the replica may have won its
                # own election first (the natural failover): then it is a master already
                if r.info("replication").get("role") != "master":
                    raise
            _wait(
                "the replica becoming a master",
                lambda: r.info("replication").get("role") == "master",
                timeout,
            )
        self.wait_ok(timeout)

    def migrate_slot(
        self,
        slot: int,
        target: LocalRedisServer,
        *,
        batch: int = 1,
        between_batches: Callable[[], None] | None = None,
        timeout_ms: int = 5000,
    ) -> int:
        """Move ``slot`` to master ``target`` as ``redis-cli --cluster reshard`` does:
        ``SETSLOT IMPORTING`` on the target, ``MIGRATING`` on the source, ``MIGRATE ... KEYS``
        ``batch`` keys at a time (``between_batches`` runs after each, e.g. to let traffic
        hit the half-moved slot), then ``SETSLOT NODE`` on target, source and the other
        masters. Returns the number of keys moved."""
        source = self.master_of_slot(slot)
        if source is target:
            return 0
        source_id, target_id = self.node_id(source), self.node_id(target)
        moved = 0
        with self.admin(source) as src, self.admin(target) as dst:
            dst.execute_command("CLUSTER", "SETSLOT", slot, "IMPORTING", source_id)
            src.execute_command("CLUSTER", "SETSLOT", slot, "MIGRATING", target_id)
            while True:
                keys = src.execute_command("CLUSTER", "GETKEYSINSLOT", slot, batch)
                if not keys:
                    break
                src.execute_command(
                    "MIGRATE", _HOST, target.port, "", 0, timeout_ms, "REPLACE", "KEYS", *keys
                )
                moved += len(keys)
                if between_batches is not None:
                    between_batches()
            dst.execute_command("CLUSTER", "SETSLOT", slot, "NODE", target_id)
            src.execute_command("CLUSTER", "SETSLOT", slot, "NODE", target_id)
        for node in self.nodes:
            if node in (source, target) or not node.running:
                continue
            with self.admin(node) as r:
                if r.info("replication").get("role") == "master":
                    r.execute_command("CLUSTER", "SETSLOT", slot, "NODE", target_id)
        self.wait_ok()
        return moved

    def master_of_slot(self, slot: int) -> LocalRedisServer:
        for node in self.nodes:
            if not node.running:
                continue
            with self.admin(node) as r:
                if r.info("replication").get("role") != "master":
                    continue
                myid = str(r.execute_command("CLUSTER", "MYID"))
                for line in str(r.execute_command("CLUSTER", "NODES")).splitlines():
                    fields = line.split()
                    if fields[0] != myid:
                        continue
                    for rng in fields[8:]:
                        if rng.startswith("["):
                            continue
                        lo, _, hi = rng.partition("-")
                        if int(lo) <= slot <= int(hi or lo):
                            return node
        raise LookupError(f"no running master serves slot {slot}")

    def flushall(self) -> None:
        for node in self.nodes:
            if node.running:
                with self.admin(node) as r:
                    if r.info("replication").get("role") == "master":
                        r.flushall()

    def stop(self) -> None:
        nodes, self.nodes = self.nodes, []
        for node in nodes:
            node.stop()

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()
