"""``roomstreams send`` and ``roomstreams listen``, run as real processes against the session's
system (real gateways, router and Redis)."""

from __future__ import annotations

import os
import queue
import re
import signal
import subprocess
import sys
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest

import roomstreams

from .conftest import API_KEY, API_SECRET, System

ROOT = Path(__file__).resolve().parents[2]
CLI = [sys.executable, "-m", "roomstreams.cli"]
TIMEOUT = 20.0
_UUID = re.compile(r"^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$")

pytestmark = pytest.mark.slow


def _env() -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("ROOMSTREAMS_")}
    env.update(
        NO_COLOR="1",
        ROOMSTREAMS_API_KEY=API_KEY,
        ROOMSTREAMS_API_SECRET=API_SECRET,
        PYTHONPATH=os.pathsep.join([str(ROOT / "shared"), str(ROOT)]),
    )
    return env


def _send(
    system: System, room: str, *args: str, stdin: str | None = None
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [*CLI, "send", "--url", system.urls[0], "--room", room, "--identity", "cli", *args],
        input=stdin if stdin is not None else "",
        capture_output=True,
        text=True,
        env=_env(),
        cwd=ROOT,
        timeout=TIMEOUT,
    )


def _sent(result: subprocess.CompletedProcess[str]) -> str:
    """The stream id ``send`` printed (its only output)."""
    assert result.returncode == 0, result.stderr
    stream_id = result.stdout.strip()
    assert _UUID.match(stream_id), result.stdout
    return stream_id


def _unescape(line_text: str) -> str:
    return re.sub(r"\\(.)", lambda m: {"n": "\n", "r": "\r"}.get(m.group(1), m.group(1)), line_text)


class Listener:
    """``roomstreams listen ...`` as a subprocess; stdout and stderr read by threads."""

    def __init__(self, system: System, room: str, *args: str) -> None:
        self.proc = subprocess.Popen(
            [*CLI, "listen", "--url", system.urls[1], "--room", room, *args],
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            encoding="utf-8",
            env=_env(),
            cwd=ROOT,
        )
        self.out: queue.Queue[str | None] = queue.Queue()
        self.err: queue.Queue[str | None] = queue.Queue()
        self.err_lines: list[str] = []
        assert self.proc.stdout is not None and self.proc.stderr is not None
        self._threads = [
            threading.Thread(target=self._pump, args=(self.proc.stdout, self.out), daemon=True),
            threading.Thread(target=self._pump, args=(self.proc.stderr, self.err), daemon=True),
        ]
        for t in self._threads:
            t.start()

    @staticmethod
    def _pump(stream: Iterator[str], lines: queue.Queue[str | None]) -> None:
        for line in stream:
            lines.put(line.rstrip("\n"))
        lines.put(None)

    def _next(self, lines: queue.Queue[str | None], what: str) -> str:
        try:
            line = lines.get(timeout=TIMEOUT)
        except queue.Empty:
            raise AssertionError(f"no {what} after {TIMEOUT}s; stderr: {self.err_lines}") from None
        if line is None:
            self.proc.wait(5)
            raise AssertionError(f"listen exited ({self.proc.returncode}) waiting for {what}")
        return line

    def stderr_line(self) -> str:
        line = self._next(self.err, "stderr line")
        self.err_lines.append(line)
        return line

    def wait_ready(self) -> str:
        while not (line := self.stderr_line()).startswith("listening on room"):
            pass
        return line

    def line(self) -> str:
        return self._next(self.out, "output line")

    def stop(self) -> tuple[int, list[str]]:
        """SIGINT (Ctrl-C): the exit code and the stdout lines not read yet."""
        self.proc.send_signal(signal.SIGINT)
        code = self.proc.wait(TIMEOUT)
        for t in self._threads:
            t.join(5)
        rest = []
        while (line := self.out.get_nowait()) is not None:
            rest.append(line)
        return code, rest

    def close(self) -> None:
        if self.proc.poll() is None:  # a failed test: don't leave it running
            self.proc.kill()
        self.proc.wait()
        for t in self._threads:
            t.join(5)
        for pipe in (self.proc.stdout, self.proc.stderr):
            if pipe is not None:
                pipe.close()


@pytest.fixture
def listeners() -> Iterator[list[Listener]]:
    made: list[Listener] = []
    yield made
    for listener in made:
        listener.close()


def _read_streams(listener: Listener, expected: dict[str, str]) -> dict[str, list[str]]:
    """Chunk lines until each stream of ``expected`` (id -> text) is complete."""
    chunks: dict[str, list[str]] = {sid: [] for sid in expected}
    while any("".join(chunks[sid]) != text for sid, text in expected.items()):
        line = listener.line()
        m = re.match(r"^cli (\S+): (.*)$", line)
        assert m and m.group(1) in expected, line
        chunks[m.group(1)].append(_unescape(m.group(2)))
        assert len("".join(chunks[m.group(1)])) <= len(expected[m.group(1)]), line
    return chunks


def test_send_text_file_and_stdin_reach_listeners(
    system: System, room_name: str, tmp_path: Path, listeners: list[Listener]
) -> None:
    per_chunk = Listener(system, room_name, "--identity", "listener-1")
    whole = Listener(system, room_name, "--identity", "listener-2", "--whole", "--topic", "chat")
    listeners += [per_chunk, whole]
    assert per_chunk.wait_ready() == f"listening on room '{room_name}' (topics: chat)"
    whole.wait_ready()

    text = "hello from the cli"
    content = "".join(f"line {i}: ünïcode \\ back\tslash\r\n" for i in range(2000))  # ~70 KB
    path = tmp_path / "message.txt"
    path.write_bytes(content.encode())
    piped = "from\nstdin\n"

    from_arg = _sent(_send(system, room_name, text))
    from_file = _sent(_send(system, room_name, "--file", str(path)))
    from_stdin = _sent(_send(system, room_name, "--topic", "chat", stdin=piped))

    def escaped(s: str) -> str:
        return s.replace("\\", "\\\\").replace("\r", "\\r").replace("\n", "\\n")

    assert [whole.line() for _ in range(3)] == [
        f"cli {from_arg}: {text}",
        f"cli {from_file}: {escaped(content)}",
        f"cli {from_stdin}: {escaped(piped)}",
    ]
    chunks = _read_streams(per_chunk, {from_arg: text, from_file: content, from_stdin: piped})
    assert chunks[from_arg] == [text]
    assert len(chunks[from_file]) > 1  # a file goes a block at a time

    for listener in (per_chunk, whole):
        code, rest = listener.stop()
        assert code == 0, listener.err_lines
        assert rest == []


async def test_listen_several_topics_and_an_aborted_stream(
    system: System, room_name: str, listeners: list[Listener]
) -> None:
    listener = Listener(system, room_name, "-t", "notes", "-t", "chat")
    listeners.append(listener)
    assert listener.wait_ready() == f"listening on room '{room_name}' (topics: notes, chat)"
    alice = roomstreams.Room()
    await alice.connect(system.urls[0], system.token(room_name, "alice"))
    try:
        await alice.local_participant.send_text("not shown", topic="other")
        note = await alice.local_participant.send_text("a note", topic="notes")
        writer = await alice.local_participant.stream_text(topic="chat")
        await writer.write("half")
        await writer.close(reason="gave up")
    finally:
        await alice.disconnect()
    assert listener.line() == f"alice {note.stream_id} [notes]: a note"
    assert listener.line() == f"alice {writer.stream_id} [chat]: half"
    ended = listener.stderr_line()
    assert ended == f"alice {writer.stream_id} [chat]: ended abnormally (sender_reason): gave up"
    code, rest = listener.stop()
    assert (code, rest) == (0, [])


def test_send_to_a_room_that_does_not_exist(system: System, room_name: str) -> None:
    refused = _send(system, room_name, "anyone?")
    assert refused.returncode == 1
    assert f"room '{room_name}' does not exist" in refused.stderr
    assert refused.stdout == ""
    _sent(_send(system, room_name, "--create", "anyone?"))
