"""What the benchmark's helper processes (``python -m roomstreams.bench.echo``, ``.relay``)
share: they end when the benchmark goes away, and the benchmark starts and stops them the
same way (a port on the first line of stdout; standard input closed, then SIGTERM, then
SIGKILL)."""

from __future__ import annotations

import asyncio
import os
import sys

__all__ = ["start_child", "stop_child", "watch_stdin"]


def watch_stdin(loop: asyncio.AbstractEventLoop, stop: asyncio.Event) -> None:
    """Set ``stop`` once standard input reaches EOF (the parent went away)."""
    fd = sys.stdin.fileno()

    def readable() -> None:
        try:
            data = os.read(fd, 4096)
        except OSError:
            data = b""
        if not data:
            loop.remove_reader(fd)
            stop.set()

    loop.add_reader(fd, readable)


async def start_child(module: str, *args: str) -> tuple[asyncio.subprocess.Process, int]:
    """``python -m module args...``; returns it with the number it printed first (its port).
    Raises if it exits before printing one."""
    proc = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        module,
        *args,
        stdin=asyncio.subprocess.PIPE,
        stdout=asyncio.subprocess.PIPE,
    )
    assert proc.stdout is not None
    line = await asyncio.wait_for(proc.stdout.readline(), 30)
    if not line.strip():
        raise RuntimeError(f"{module} exited with {await proc.wait()} before it was ready")
    return proc, int(line)


async def stop_child(proc: asyncio.subprocess.Process) -> None:
    """Close its standard input and SIGTERM it; SIGKILL after 10 s."""
    if proc.stdin is not None:
        proc.stdin.close()
    if proc.returncode is None:
        proc.terminate()
    try:
        await asyncio.wait_for(proc.wait(), 10)
    except TimeoutError:
        proc.kill()
        await proc.wait()
