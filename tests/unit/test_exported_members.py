"""The public API: ``roomstreams.__all__`` is exactly what the package exports (in the manner
of httpx's tests/test_exported_members.py)."""

from __future__ import annotations

import importlib
import types

import pytest

import roomstreams

INCLUDED_PRIVATE_MEMBERS = {"__version__"}

MODULES_WITH_ALL = [
    "roomstreams",
    "roomstreams.client",
    "roomstreams.core",
    "roomstreams.core.incoming",
    "roomstreams.core.outgoing",
    "roomstreams.core.room",
    "roomstreams.exceptions",
    "roomstreams.protocol",
    "roomstreams.protocol.chunking",
    "roomstreams.protocol.entries",
    "roomstreams.protocol.frames",
    "roomstreams.protocol.limits",
    "roomstreams.protocol.rpc",
    "roomstreams.rtc",
    "roomstreams.token",
]


def public_members(module: types.ModuleType) -> set[str]:
    """Names the module defines or imports for users: not private, not submodules."""
    return {
        name
        for name, value in vars(module).items()
        if (not name.startswith("_") or name in INCLUDED_PRIVATE_MEMBERS)
        and not isinstance(value, types.ModuleType)
    }


def test_all_imports_are_exported() -> None:
    assert len(roomstreams.__all__) == len(set(roomstreams.__all__)), "duplicates in __all__"
    assert set(roomstreams.__all__) == public_members(roomstreams)


def test_no_private_names_are_exported() -> None:
    private = [n for n in roomstreams.__all__ if n.startswith("_")]
    assert set(private) <= INCLUDED_PRIVATE_MEMBERS


@pytest.mark.parametrize("module_name", MODULES_WITH_ALL)
def test_every_name_in_all_exists(module_name: str) -> None:
    module = importlib.import_module(module_name)
    missing = [n for n in module.__all__ if not hasattr(module, n)]
    assert missing == []
    assert len(module.__all__) == len(set(module.__all__))


def test_star_import_gives_exactly_all() -> None:
    namespace: dict[str, object] = {}
    exec("from roomstreams import *", namespace)
    namespace.pop("__builtins__")
    assert set(namespace) == set(roomstreams.__all__)


def test_exported_objects_belong_to_roomstreams() -> None:
    for name in roomstreams.__all__:
        obj = getattr(roomstreams, name)
        if isinstance(obj, type) or isinstance(obj, types.FunctionType):
            assert obj.__module__.startswith("roomstreams."), name


def test_version_matches_the_distribution() -> None:
    from importlib.metadata import version

    assert roomstreams.__version__ == version("roomstreams")
