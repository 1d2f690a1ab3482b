"""``python -m roomstreams.bench.w3p_receivers``: one W3p receiver process. It hosts the
receivers of one gateway, each a real ``roomstreams.Room`` on this process's event loop, as
a client application would, and talks to the benchmark process over its standard input
(commands) and standard output (events), one JSON object per line.

1. stdin, first line: ``{"receivers": [[name, url, token], ...], "concurrency": n,
   "connect_timeout": s}``. It connects them all (at most ``concurrency`` at a time), each
   with the text stream handler for ``TOPIC`` registered first, then answers
   ``{"event": "ready", "connected": n, "pid": pid}`` (or ``{"event": "error", ...}`` and
   exits 1).
2. For every stream on ``TOPIC``, each receiver notes per chunk ``time.monotonic_ns()`` just
   after its iterator yields the chunk, minus the sender's ``monotonic_ns`` stamp in the
   chunk (CLOCK_MONOTONIC: one clock for every process on the machine on Linux), and checks
   the sequence numbers. When all of this process's receivers have finished a stream:
   ``{"event": "finished", "sid": stream_id}``.
3. ``{"cmd": "report", "sid": stream_id}`` -> ``{"event": "report", "sid", "connected",
   "receivers": {name: {"count", "in_order", "ended", "error", "last_ns"}},
   "latencies_ns": base64 of an array('q') in native byte order}``; the stream's records are
   dropped then.
4. ``{"cmd": "quit"}``, end of stdin (the benchmark went away), SIGTERM or SIGINT: every
   receiver disconnects (bounded in time) and the process exits. On Linux it also gets
   ``PR_SET_PDEATHSIG`` from its parent, so it dies with the benchmark even after a SIGKILL.

Not imported by the package: ``python -m`` must find it unimported.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import json
import os
import signal
import sys
import time
from array import array
from collections.abc import Callable
from typing import Any

from ..client import Room, TextStreamReader
from ..exceptions import StreamAborted
from .w3p import SEQ_DIGITS, STAMP_END, TOPIC
from .workloads import bounded, disconnect_all

#: the protocol's output: the original standard output (fd 1 is pointed at stderr, so
#: nothing else printed by this process can corrupt the protocol)
_OUT = -1
#: called once when the benchmark process is gone (its end of the pipe closed)
_on_gone: list[Callable[[], None]] = []


def _emit(msg: dict[str, Any]) -> None:
    data = (json.dumps(msg, separators=(",", ":")) + "\n").encode()
    view = memoryview(data)
    try:
        while view:
            n = os.write(_OUT, view)
            view = view[n:]
    except OSError:  # BrokenPipeError: nobody to report to any more, so stop
        while _on_gone:
            _on_gone.pop()()


class _Rx:
    __slots__ = ("count", "ended", "error", "in_order", "last_ns", "next_seq")

    def __init__(self) -> None:
        self.count = 0
        self.next_seq = 0
        self.in_order = True
        self.ended = False
        self.error: str | None = None
        self.last_ns = 0


class _Stream:
    def __init__(self) -> None:
        self.rx: dict[str, _Rx] = {}
        self.latencies = array("q")
        self.finished = 0


class Receivers:
    """This process's receivers and what they got, per stream."""

    def __init__(self, expected: int) -> None:
        self.expected = expected
        self.streams: dict[str, _Stream] = {}
        self.rooms: list[Room] = []

    def handler(self, name: str) -> Any:
        streams, expected = self.streams, self.expected

        async def handle(reader: TextStreamReader, _sender: str) -> None:
            sid = reader.info.stream_id
            st = streams.get(sid)
            if st is None:
                st = streams[sid] = _Stream()
            rx = st.rx[name] = _Rx()
            lat = st.latencies
            clock = time.monotonic_ns
            try:
                async for chunk in reader:
                    now = clock()
                    seq = int(chunk[:SEQ_DIGITS])
                    if seq != rx.next_seq:
                        rx.in_order = False
                    rx.next_seq = seq + 1
                    rx.count += 1
                    rx.last_ns = now
                    lat.append(now - int(chunk[SEQ_DIGITS:STAMP_END]))
            except StreamAborted as exc:
                rx.error = f"{exc.code}: {exc}"
            except Exception as exc:
                rx.error = repr(exc)
            else:
                rx.ended = True
            finally:
                st.finished += 1
                if st.finished == expected:
                    _emit({"event": "finished", "sid": sid})

        return handle

    def report(self, sid: str) -> dict[str, Any]:
        st = self.streams.pop(sid, None) or _Stream()
        return {
            "event": "report",
            "sid": sid,
            "connected": sum(r.isconnected() for r in self.rooms),
            "receivers": {
                name: {
                    "count": r.count,
                    "in_order": r.in_order,
                    "ended": r.ended,
                    "error": r.error,
                    "last_ns": r.last_ns,
                }
                for name, r in st.rx.items()
            },
            "latencies_ns": base64.b64encode(st.latencies.tobytes()).decode("ascii"),
        }


async def _stdin_reader() -> asyncio.StreamReader:
    loop = asyncio.get_running_loop()
    reader = asyncio.StreamReader(limit=16 * 1024 * 1024)
    await loop.connect_read_pipe(lambda: asyncio.StreamReaderProtocol(reader), sys.stdin)
    return reader


async def main() -> int:
    loop = asyncio.get_running_loop()
    task = asyncio.current_task()
    assert task is not None
    signalled: list[int] = []

    def on_signal(sig: int) -> None:
        if not signalled:
            signalled.append(sig)
            task.cancel()

    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, on_signal, sig)
    _on_gone.append(lambda: on_signal(signal.SIGPIPE))
    receivers: Receivers | None = None
    try:
        commands = await _stdin_reader()
        first = await commands.readline()
        if not first:
            return 0
        cfg = json.loads(first)
        specs: list[list[str]] = cfg["receivers"]
        receivers = Receivers(len(specs))
        rx = receivers

        def job(name: str, url: str, token: str) -> Any:
            async def connect() -> Room:
                room = Room()
                room.register_text_stream_handler(TOPIC, rx.handler(name))
                await room.connect(url, token, timeout=float(cfg["connect_timeout"]))
                rx.rooms.append(room)
                return room

            return connect

        try:
            await bounded(int(cfg["concurrency"]), [job(*s) for s in specs])
        except Exception as exc:
            _emit({"event": "error", "error": f"connect: {exc!r}"})
            return 1
        _emit({"event": "ready", "connected": len(rx.rooms), "pid": os.getpid()})
        while True:
            line = await commands.readline()
            if not line:
                break  # the benchmark closed our stdin (or went away)
            cmd = json.loads(line)
            if cmd.get("cmd") == "quit":
                break
            if cmd.get("cmd") == "report":
                _emit(rx.report(str(cmd["sid"])))
        return 0
    except asyncio.CancelledError:
        if not signalled:
            raise
        return 128 + signalled[0]
    finally:
        if receivers is not None:
            # a second signal must not cut the disconnects short
            for sig in (signal.SIGTERM, signal.SIGINT):
                with contextlib.suppress(Exception):
                    loop.remove_signal_handler(sig)
                    loop.add_signal_handler(sig, lambda: None)
            await disconnect_all(receivers.rooms)


if __name__ == "__main__":
    _OUT = os.dup(1)
    os.dup2(2, 1)
    sys.exit(asyncio.run(main()))
