"""``compose.cluster.yaml`` (the Redis Cluster variant) over ``compose.yaml``, rendered and
validated by the real Compose binary (``docker-compose config``) as ``up`` would."""

from __future__ import annotations

import json
import subprocess
from typing import Any

import pytest

from roomstreams._redisio import cluster_seeds, is_cluster_url

from .test_compose_config import (
    API_KEY,
    API_SECRET,
    COMPOSE_FILE,
    ROOT,
    _clean_env,
    _compose_binary,
)

CLUSTER_FILE = ROOT / "compose.cluster.yaml"


@pytest.fixture(scope="module")
def services(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    tmp_path = tmp_path_factory.mktemp("compose-cluster")
    empty_env_file = tmp_path / "empty.env"
    empty_env_file.write_text("")
    cmd = [_compose_binary(), "-f", str(COMPOSE_FILE), "-f", str(CLUSTER_FILE)]
    proc = subprocess.run(
        [*cmd, "--env-file", str(empty_env_file), "config", "--format", "json"],
        cwd=ROOT,
        env=_clean_env(tmp_path, ROOMSTREAMS_API_KEY=API_KEY, ROOMSTREAMS_API_SECRET=API_SECRET),
        capture_output=True,
        text=True,
        timeout=30,
        check=False,
    )
    assert proc.returncode == 0 and proc.stdout.strip(), f"config failed:\n{proc.stderr}"
    svcs: dict[str, Any] = json.loads(proc.stdout)["services"]
    return svcs


def test_three_cluster_enabled_nodes_without_persistence(services: dict[str, Any]) -> None:
    for name in ("redis", "redis-2", "redis-3"):
        cmd = services[name]["command"]
        assert cmd[cmd.index("--cluster-enabled") + 1] == "yes", name
        assert cmd[cmd.index("--save") + 1] == "" and "no" in cmd, name
        assert "ports" not in services[name], f"{name} must not publish a port"


def test_router_and_gateways_use_a_cluster_url_naming_every_node(
    services: dict[str, Any],
) -> None:
    urls = {services[n]["environment"]["ROOMSTREAMS_REDIS_URL"] for n in ("router", "gateway")}
    assert len(urls) == 1
    url = urls.pop()
    assert is_cluster_url(url)
    assert cluster_seeds(url)[1] == [("redis", 6379), ("redis-2", 6379), ("redis-3", 6379)]


def test_apps_start_after_the_slots_are_assigned(services: dict[str, Any]) -> None:
    init = services["redis-cluster-init"]
    assert "--cluster create" in " ".join(init["command"])
    assert {n for n in init["depends_on"]} == {"redis", "redis-2", "redis-3"}
    for name in ("router", "gateway"):
        dep = services[name]["depends_on"]["redis-cluster-init"]
        assert dep["condition"] == "service_completed_successfully", name

