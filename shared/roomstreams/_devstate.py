"""Where a running ``roomstreams up`` tells the examples and tools on this machine how to reach
it: a small JSON file (``$XDG_RUNTIME_DIR/roomstreams/up.json``, else
``<tmp>/roomstreams-<uid>/up.json``; the folder is the user's own, mode 0700, the file 0600)
with the Redis URL, gateway URL, server API URL and the API key pair of that system. It is
written once the system is ready and removed when ``up`` stops; one left behind by a process
that died is ignored (its pid is gone)."""

from __future__ import annotations

import contextlib
import json
import os
import tempfile
from pathlib import Path
from typing import Any

__all__ = ["clear_state", "read_state", "state_path", "write_state"]


def state_path() -> Path:
    runtime = os.environ.get("XDG_RUNTIME_DIR")
    if runtime:
        return Path(runtime) / "roomstreams" / "up.json"
    return Path(tempfile.gettempdir()) / f"roomstreams-{os.getuid()}" / "up.json"


def write_state(state: dict[str, Any]) -> Path:
    path = state_path()
    path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
    tmp = path.with_suffix(".tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as f:
        json.dump({**state, "pid": os.getpid()}, f)
    tmp.replace(path)
    return path


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def read_state() -> dict[str, Any] | None:
    """What the running ``roomstreams up`` wrote, or None (none runs, or it died)."""
    try:
        state = json.loads(state_path().read_text())
    except (OSError, ValueError):
        return None
    if not isinstance(state, dict) or not _alive(int(state.get("pid", 0))):
        return None
    return state


def clear_state() -> None:
    """Remove the file if this process wrote it."""
    path = state_path()
    with contextlib.suppress(OSError, ValueError):
        if json.loads(path.read_text()).get("pid") == os.getpid():
            path.unlink()
