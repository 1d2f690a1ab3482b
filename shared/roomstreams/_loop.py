"""The event loop the services run on: uvloop where it is installed (it measured faster on
the hot path: docs/benchmarks.md), the standard loop otherwise or when
``ROOMSTREAMS_EVENT_LOOP=asyncio``."""

from __future__ import annotations

import asyncio
import importlib
import os
from collections.abc import Coroutine
from typing import Any, TypeVar

__all__ = ["loop_name", "run"]

T = TypeVar("T")


def loop_name() -> str:
    """``"uvloop"`` or ``"asyncio"``: what :func:`run` will use."""
    if os.environ.get("ROOMSTREAMS_EVENT_LOOP", "").lower() == "asyncio":
        return "asyncio"
    try:
        importlib.import_module("uvloop")
    except ImportError:
        return "asyncio"
    return "uvloop"


def run(main: Coroutine[Any, Any, T]) -> T:
    """``asyncio.run(main)`` on the loop :func:`loop_name` names."""
    if loop_name() == "uvloop":
        import uvloop

        return uvloop.run(main)
    return asyncio.run(main)
