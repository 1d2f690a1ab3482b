"""The compose set-up's ``observability`` profile (Prometheus + Grafana), checked with the
real Compose binary (no Docker engine needed), and the files it mounts from ``deploy/``:
the scrape config must reach the services compose.yaml runs, on the ports they serve
``/metrics`` on. (That every metric the dashboard uses exists is test_metrics.py's.)"""

from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml

from .test_compose_config import (
    API_KEY,
    API_SECRET,
    COMPOSE_FILE,
    ROOT,
    _clean_env,
    _compose_binary,
)

PROMETHEUS_CONFIG = ROOT / "deploy" / "prometheus" / "prometheus.yml"
GRAFANA = ROOT / "deploy" / "grafana"
PROFILE_SERVICES = ("prometheus", "grafana")


def _render(tmp_path: Path, *profiles: str) -> dict[str, Any]:
    env_file = tmp_path / "empty.env"
    env_file.write_text("")
    args = [_compose_binary(), "-f", str(COMPOSE_FILE), "--env-file", str(env_file)]
    for p in profiles:
        args += ["--profile", p]
    proc = subprocess.run(
        [*args, "config", "--format", "json"],
        cwd=ROOT,
        env=_clean_env(tmp_path, ROOMSTREAMS_API_KEY=API_KEY, ROOMSTREAMS_API_SECRET=API_SECRET),
        capture_output=True,
        text=True,
        timeout=30,
        check=False,
    )
    assert proc.returncode == 0 and proc.stdout.strip(), proc.stderr
    model: dict[str, Any] = json.loads(proc.stdout)
    return model


@pytest.fixture(scope="module")
def default(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    return _render(tmp_path_factory.mktemp("compose-default"))


@pytest.fixture(scope="module")
def observed(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    return _render(tmp_path_factory.mktemp("compose-obs"), "observability")


def test_the_profile_is_off_by_default(default: dict[str, Any]) -> None:
    assert not set(PROFILE_SERVICES) & set(default["services"])


def test_the_profile_adds_prometheus_and_grafana(observed: dict[str, Any]) -> None:
    services = observed["services"]
    assert {"redis", "router", "gateway", "lb", *PROFILE_SERVICES} <= set(services)
    for name in PROFILE_SERVICES:
        image = services[name]["image"]
        _, _, tag = image.rpartition(":")
        assert tag and tag != "latest" and tag[0] in "v0123456789", image
        assert services[name]["profiles"] == ["observability"]


def _binds(service: dict[str, Any]) -> dict[str, str]:
    return {v["target"]: v["source"] for v in service.get("volumes", []) if v["type"] == "bind"}


def test_mounts_come_from_deploy_and_exist(observed: dict[str, Any]) -> None:
    services = observed["services"]
    prom = _binds(services["prometheus"])
    assert Path(prom["/etc/prometheus/prometheus.yml"]).resolve() == PROMETHEUS_CONFIG
    assert "--config.file=/etc/prometheus/prometheus.yml" in services["prometheus"]["command"]
    graf = _binds(services["grafana"])
    assert Path(graf["/etc/grafana/provisioning"]).resolve() == GRAFANA / "provisioning"
    assert Path(graf["/var/lib/grafana/dashboards"]).resolve() == GRAFANA / "dashboards"
    for source in [*prom.values(), *graf.values()]:
        assert Path(source).exists(), source


def test_ui_ports_are_published_on_loopback_only(observed: dict[str, Any]) -> None:
    for name, port in (("prometheus", 9090), ("grafana", 3000)):
        ports = observed["services"][name]["ports"]
        assert [(p["host_ip"], int(p["target"])) for p in ports] == [("127.0.0.1", port)]


def test_scrape_config_targets_the_compose_services(observed: dict[str, Any]) -> None:
    config = yaml.safe_load(PROMETHEUS_CONFIG.read_text())
    jobs = {j["job_name"]: j for j in config["scrape_configs"]}
    services = observed["services"]
    env = {n: services[n]["environment"] for n in ("gateway", "router")}
    wanted = {
        "roomstreams-gateway": ("gateway", int(env["gateway"]["ROOMSTREAMS_GATEWAY_PORT"])),
        "roomstreams-router": ("router", int(env["router"]["ROOMSTREAMS_ROUTER_HTTP_PORT"])),
    }
    for job, (service, port) in wanted.items():
        (sd,) = jobs[job]["dns_sd_configs"]  # every replica, found by its service name
        assert sd["names"] == [service] and sd["type"] == "A" and sd["port"] == port
        assert jobs[job].get("metrics_path", "/metrics") == "/metrics"
        assert str(port) in [str(p) for p in services[service]["expose"]]
    lb = jobs["haproxy"]["static_configs"][0]["targets"]
    assert lb == ["lb:8405"]


def test_grafana_provisioning_points_at_prometheus_and_the_dashboard() -> None:
    (ds,) = yaml.safe_load((GRAFANA / "provisioning/datasources/prometheus.yaml").read_text())[
        "datasources"
    ]
    assert ds["type"] == "prometheus" and ds["url"] == "http://prometheus:9090"
    (provider,) = yaml.safe_load(
        (GRAFANA / "provisioning/dashboards/roomstreams.yaml").read_text()
    )["providers"]
    assert provider["options"]["path"] == "/var/lib/grafana/dashboards"
    dash = json.loads((GRAFANA / "dashboards/roomstreams.json").read_text())
    uids = {t["datasource"]["uid"] for p in dash["panels"] for t in p.get("targets", [])}
    assert uids == {ds["uid"]}


@pytest.mark.skipif(shutil.which("promtool") is None, reason="promtool not installed")
def test_promtool_accepts_the_scrape_config() -> None:
    proc = subprocess.run(
        ["promtool", "check", "config", str(PROMETHEUS_CONFIG)],
        capture_output=True,
        text=True,
        timeout=30,
        check=False,
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr
