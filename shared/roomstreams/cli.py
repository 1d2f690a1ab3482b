"""The ``roomstreams`` command: ``up`` (a whole system on this machine), ``token`` (a dev
access token), ``bench`` (benchmarks, in :mod:`roomstreams.bench`), ``send`` (a text stream
into a room) and ``listen`` (print a room's text streams)."""

from __future__ import annotations

import asyncio
import codecs
import contextlib
import dataclasses
import importlib
import json
import os
import re
import secrets
import signal
import sys
import threading
import time
from collections.abc import AsyncIterator
from datetime import timedelta
from pathlib import Path
from types import FrameType
from typing import Annotated
from urllib.parse import urlsplit

import redis
import typer
from redis.exceptions import RedisClusterException
from rich.console import Console
from rich.markup import escape
from rich.progress import (
    BarColumn,
    DownloadColumn,
    Progress,
    TextColumn,
    TimeElapsedColumn,
    TransferSpeedColumn,
)

from . import __version__
from ._devstate import clear_state, read_state, write_state
from ._launcher import ChildExit, Launcher, SystemConfig
from ._logging import LogFormatError, log_format
from ._redis_server import describe_server_binary
from ._redisio import SyncClient, is_cluster_url, sync_client
from .api import ParticipantDetails, RoomDetails, RoomService
from .client import Room, TextStreamReader, TextStreamWriter
from .exceptions import ConnectError, RoomStreamsError, StreamAborted
from .token import AccessToken, VideoGrants

__all__ = ["DEV_API_KEY", "DEV_API_SECRET", "READY_LINE", "app", "main"]

DEV_API_KEY = "devkey"
DEV_API_SECRET = "devsecret-change-me-devsecret-change-me"
"""Development defaults shared by ``up`` and ``token``; ``ROOMSTREAMS_API_KEY`` /
``ROOMSTREAMS_API_SECRET`` override them. Never use them in production."""

READY_LINE = "Ready. Press Ctrl-C to stop."
"""The line ``up`` prints on stdout once every process is ready (after the summary)."""

_KEY_ENV = "ROOMSTREAMS_API_KEY"
_SECRET_ENV = "ROOMSTREAMS_API_SECRET"

app = typer.Typer(
    name="roomstreams",
    help="Realtime text streams between the participants of a room, over Redis Streams.",
    no_args_is_help=True,
    add_completion=False,
)
console = Console(soft_wrap=True)  # soft wrap: URLs and secrets stay on one line in a pipe
err_console = Console(stderr=True, soft_wrap=True)

_LOG_LEVELS = ("DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL")


def _print_version(value: bool) -> None:
    if value:
        typer.echo(f"roomstreams {__version__}")
        raise typer.Exit(0)


@app.callback()
def _root(
    version: Annotated[
        bool,
        typer.Option(
            "--version", is_eager=True, callback=_print_version, help="Print the version."
        ),
    ] = False,
    debug: Annotated[
        bool, typer.Option("--debug", help="Show the traceback of an unexpected error.")
    ] = False,
) -> None:
    # --debug is read by main(), before the command runs
    pass


def _usage(message: str) -> typer.Exit:
    """A mistake in how the command was called: one line, exit code 2."""
    err_console.print(f"[bold red]error:[/] {escape(message)}", highlight=False)
    return typer.Exit(2)


def _redact(url: str) -> str:
    """``url`` without its password (``redis://:secret@host`` -> ``redis://:***@host``)."""
    if is_cluster_url(url):  # several host:port seeds: urlsplit cannot take them apart
        return re.sub(r"(://[^/@]*?:)[^/@]*@", r"\1***@", url)
    parts = urlsplit(url)
    if parts.password is None:
        return url
    user = parts.username or ""
    host = parts.hostname or ""
    port = f":{parts.port}" if parts.port else ""
    return parts._replace(netloc=f"{user}:***@{host}{port}").geturl()


def _check_redis(url: str) -> None:
    """``--redis-url`` must answer a PING, or ``up`` stops with one line."""
    client: SyncClient | None = None
    try:
        client = sync_client(url, socket_connect_timeout=3, socket_timeout=3)
        client.ping()
    except ValueError as exc:
        raise _usage(f"--redis-url {_redact(url)!r} is not a Redis URL ({exc})") from None
    except (redis.RedisError, RedisClusterException) as exc:  # a cluster connects at once
        raise _usage(
            f"cannot reach Redis at {_redact(url)} ({exc}): start it, or leave out "
            "--redis-url and `roomstreams up` starts a local one"
        ) from None
    finally:
        if client is not None:
            client.close()


def _gateway_url(url: str) -> str:
    """A gateway URL: ws(s)://, or http(s):// turned into ws(s):// as LiveKit's SDKs do."""
    converted = url
    for http, ws in (("http://", "ws://"), ("https://", "wss://")):
        if url.startswith(http):
            converted = ws + url[len(http) :]
    parts = urlsplit(converted)
    try:
        parts.port  # noqa: B018 - raises for a port out of range
    except ValueError:
        raise _usage(f"--url {url!r}: the port is not a number from 1 to 65535") from None
    if parts.scheme not in ("ws", "wss") or not parts.hostname:
        raise _usage(
            f"--url {url!r} is not a gateway URL: use ws://HOST:PORT "
            "(wss://, http:// and https:// work too), e.g. ws://127.0.0.1:7880"
        )
    return converted


def _identity(given: str | None, role: str) -> str:
    """The identity given, or a unique default (``listener-3fa2``), said on stderr."""
    if given is None:
        chosen = f"{role}-{secrets.token_hex(2)}"
        err_console.print(f"{role} identity: {chosen} (--identity to choose one)", highlight=False)
        return chosen
    if not given.strip():
        raise _usage("--identity must not be empty: leave it out for a unique default")
    return given


ApiKey = Annotated[str, typer.Option(envvar=_KEY_ENV, help="API key (dev default).")]
ApiSecret = Annotated[
    str, typer.Option(envvar=_SECRET_ENV, help="API secret (dev default).", show_default=False)
]


@app.command()
def up(
    redis_url: Annotated[
        str | None,
        typer.Option(help="Use this Redis instead of starting a local one (no persistence)."),
    ] = None,
    gateways: Annotated[int, typer.Option(min=1, help="Number of gateways.")] = 1,
    port: Annotated[int, typer.Option(min=1, max=65535, help="Port of gateway 0.")] = 7880,
    api_port: Annotated[
        int, typer.Option(min=1, max=65535, help="The router's HTTP port (server API, health).")
    ] = 7890,
    host: Annotated[str, typer.Option(help="Interface the gateways listen on.")] = "127.0.0.1",
    partitions: Annotated[int, typer.Option(min=1, max=1024)] = 16,
    api_key: ApiKey = DEV_API_KEY,
    api_secret: ApiSecret = DEV_API_SECRET,
    log_level: Annotated[str, typer.Option(help="Log level of router and gateways.")] = "INFO",
) -> None:
    """Run the whole system here: Redis, a router and gateways, until Ctrl-C.

    Starts a local Redis (no persistence) unless --redis-url is given, one router and N
    gateways (gateway i on port+i), waits until all are ready, then supervises them: Ctrl-C or
    SIGTERM stops everything (exit 0); if any process dies, everything stops (exit 1).
    """
    if port + gateways - 1 > 65535:
        raise _usage(f"--port {port} with {gateways} gateways goes past port 65535: lower --port")
    if log_level.upper() not in _LOG_LEVELS:
        raise _usage(f"--log-level {log_level!r} is not a log level: use {', '.join(_LOG_LEVELS)}")
    log_level = log_level.upper()
    try:  # the services read ROOMSTREAMS_LOG_FORMAT (text or json) from our environment
        log_format()
    except LogFormatError as exc:
        raise _usage(str(exc)) from None
    if api_port in range(port, port + gateways):
        raise _usage(f"--api-port {api_port} is also a gateway's port: choose another")
    if redis_url is not None:
        _check_redis(redis_url)
    if len(api_secret.encode()) < 32:
        err_console.print(
            "[yellow]warning:[/] the API secret is shorter than 32 bytes (weak for HS256)"
        )
    launcher = Launcher(
        SystemConfig(
            api_key=api_key,
            api_secret=api_secret,
            redis_url=redis_url,
            gateways=gateways,
            host=host,
            port=port,
            api_port=api_port,
            partitions=partitions,
            log_level=log_level,
        )
    )

    def on_signal(signum: int, frame: FrameType | None) -> None:
        launcher.request_stop()

    # SIGHUP too (terminal closed): the children die of it, but Redis ignores it.
    stop_signals = (signal.SIGINT, signal.SIGTERM, signal.SIGHUP)
    previous = {s: signal.signal(s, on_signal) for s in stop_signals}
    try:
        code = _run(launcher)
    finally:
        clear_state()
        launcher.stop()
        for s, handler in previous.items():
            signal.signal(s, handler)
    if code == 0:
        console.print("Stopped.")
    raise typer.Exit(code)


def _run(launcher: Launcher) -> int:
    """Start, report, supervise; the exit code. The caller stops the launcher."""
    cfg = launcher.config
    where = "local Redis" if cfg.redis_url is None else "Redis at " + escape(cfg.redis_url)
    console.print(f"Starting {where}, a router and {cfg.gateways} gateway(s)...")
    try:
        launcher.start()
        if not launcher.wait_ready():
            return 0  # stopped during startup
    except RuntimeError as exc:  # LaunchError, or no redis-server binary
        err_console.print(f"[bold red]error:[/] {escape(str(exc))}")
        return 1

    state = write_state(
        {
            "redis_url": launcher.redis_url,
            "url": launcher.gateway_urls[0],
            "api_url": launcher.api_url,
            "api_key": cfg.api_key,
            "api_secret": cfg.api_secret,
        }
    )
    _print_summary(launcher, state)
    exited = launcher.wait()
    if exited is None:
        console.print("Stopping...")
        return 0
    _report_death(launcher, exited)
    return 1


def _print_summary(launcher: Launcher, state: Path) -> None:
    cfg = launcher.config
    if launcher.redis_server is not None:
        redis_note = f"local {describe_server_binary(launcher.redis_server.binary)}, no persistence"
    else:
        redis_note = "external"

    def row(label: str, value: str, note: str = "") -> None:
        extra = f"  [dim]({escape(note)})[/]" if note else ""
        console.print(f"  [bold]{label:<11}[/] {escape(value)}{extra}")

    console.print(
        f"[bold green]roomstreams is up:[/] 1 router, {cfg.gateways} gateway(s), "
        f"{cfg.partitions} partitions"
    )
    for i, url in enumerate(launcher.gateway_urls):
        row(f"gateway {i}", url)
    if cfg.dev_page:
        page = launcher.gateway_urls[0].replace("ws://", "http://", 1) + "/"
        row("chat page", page, "dev mode: it signs tokens for anyone on this machine")
    row("server API", launcher.api_url, "LiveKit's RoomService (Twirp): `roomstreams rooms`")
    row("redis", launcher.redis_url, redis_note)
    row("api key", cfg.api_key)
    row("api secret", cfg.api_secret)
    example = "roomstreams token --room demo --identity alice"
    if cfg.api_key != os.environ.get(_KEY_ENV, DEV_API_KEY):
        example += f" --api-key {cfg.api_key}"
    if cfg.api_secret != os.environ.get(_SECRET_ENV, DEV_API_SECRET):
        example += f" --api-secret {cfg.api_secret}"
    console.print("Get a token for a client:")
    console.print(f"  {escape(example)}", highlight=False)
    console.print(
        f"Backends on this machine (examples/agent.py) find this system in {escape(str(state))};"
        " elsewhere:"
    )
    console.print(f"  export ROOMSTREAMS_REDIS_URL={escape(launcher.redis_url)}", highlight=False)
    console.print(f"[bold]{READY_LINE}[/]")


def _report_death(launcher: Launcher, exited: ChildExit) -> None:
    code = exited.returncode
    how = f"with code {code}" if code >= 0 else f"killed by {signal.Signals(-code).name}"
    err_console.print(f"[bold red]{exited.name} exited unexpectedly {how}; stopping everything[/]")
    if exited.name == "redis" and launcher.redis_server is not None:
        tail = launcher.redis_server.output().splitlines()[-20:]
        if tail:
            err_console.print("redis output:\n" + escape("\n".join(tail)), highlight=False)


@app.command()
def token(
    room: Annotated[str, typer.Option(help="Room the token joins.")],
    identity: Annotated[str, typer.Option(help="Participant identity.")],
    name: Annotated[str, typer.Option(help="Display name.")] = "",
    ttl_minutes: Annotated[int, typer.Option(min=1, help="Validity in minutes.")] = 360,
    api_key: ApiKey = DEV_API_KEY,
    api_secret: ApiSecret = DEV_API_SECRET,
    publish: Annotated[
        bool, typer.Option("--publish/--no-publish", help="May send streams.")
    ] = True,
    subscribe: Annotated[
        bool, typer.Option("--subscribe/--no-subscribe", help="May receive streams.")
    ] = True,
) -> None:
    """Print an access token (JWT) for a room.

    Signed with the dev API key/secret of `roomstreams up` unless --api-key/--api-secret
    or ROOMSTREAMS_API_KEY/ROOMSTREAMS_API_SECRET say otherwise.
    """
    if not identity.strip():
        raise _usage("--identity must not be empty")
    if not room.strip():
        raise _usage("--room must not be empty")
    grants = VideoGrants(
        room=room, room_join=True, can_publish_data=publish, can_subscribe=subscribe
    )
    builder = (
        AccessToken(api_key, api_secret)
        .with_identity(identity)
        .with_grants(grants)
        .with_ttl(timedelta(minutes=ttl_minutes))
    )
    if name:
        builder = builder.with_name(name)
    typer.echo(builder.to_jwt())


@app.command()
def bench(
    workloads: Annotated[str, typer.Option(help="Comma-separated workloads, or 'all'.")] = "all",
    out: Annotated[Path | None, typer.Option(help="Write results to this file.")] = None,
    quick: Annotated[bool, typer.Option(help="Short runs (smoke test).")] = False,
    receivers: Annotated[
        str,
        typer.Option(
            help="W3p's receiver processes: 'python' (this client) or 'node' (the TypeScript "
            "client, shared/js; needs Node 20 and `npm ci && npm run build` there)."
        ),
    ] = "python",
    rooms: Annotated[
        int | None,
        typer.Option(
            help="W7's and W8's room count (default 10000 and 100000; --quick: 200, 1000)."
        ),
    ] = None,
    routers: Annotated[int, typer.Option(help="Routers sharing the partitions.")] = 1,
    redis: Annotated[
        str, typer.Option(help="'standalone' (one server) or 'cluster' (a local 3-master cluster).")
    ] = "standalone",
) -> None:
    """Run benchmarks (roomstreams.bench)."""
    if receivers not in ("python", "node"):
        raise typer.BadParameter(
            f"{receivers!r} is not one of 'python', 'node'", param_hint="--receivers"
        )
    try:
        module = importlib.import_module("roomstreams.bench")
        run_cli = module.run_cli
    except (ImportError, AttributeError) as exc:
        err_console.print(f"[bold red]error:[/] benchmarks are not available: {escape(str(exc))}")
        raise typer.Exit(1) from exc
    parse_workloads = getattr(module, "parse_workloads", None)
    if parse_workloads is not None:  # a bad --workloads is a usage error, not a traceback
        try:
            parse_workloads(workloads)
        except ValueError as exc:
            raise typer.BadParameter(str(exc), param_hint="--workloads") from exc
    if redis not in ("standalone", "cluster"):
        raise typer.BadParameter(
            f"{redis!r} is not one of 'standalone', 'cluster'", param_hint="--redis"
        )
    if routers < 1:
        raise typer.BadParameter("at least 1", param_hint="--routers")
    if rooms is not None and rooms < 1:
        raise typer.BadParameter("at least 1", param_hint="--rooms")
    extra: dict[str, object] = {}
    if (rooms, routers, redis) != (None, 1, "standalone"):  # older run_cli()s lack them
        extra = {"rooms": rooms, "routers": routers, "redis": redis}
    result = run_cli(workloads=workloads, out=out, quick=quick, receivers=receivers, **extra)
    if isinstance(result, int) and result != 0:
        raise typer.Exit(result)


# -- send / listen --------------------------------------------------------------------------

DEFAULT_URL = "ws://127.0.0.1:7880"
Url = Annotated[
    str | None,
    typer.Option(
        envvar="ROOMSTREAMS_URL",
        help=f"Gateway URL [default: the running roomstreams up's, else {DEFAULT_URL}]",
        show_default=False,
    ),
]


def _from_up(key: str, fallback: str) -> str:
    """``key`` of the ``roomstreams up`` running on this machine, else ``fallback``."""
    up = read_state()
    return str(up[key]) if up and up.get(key) else fallback
_READ_BLOCK = 16 * 1024  # bytes read from a file or stdin per write
_GATEWAY_HINT = "is `roomstreams up` running? --url or ROOMSTREAMS_URL names the gateway"
_API_HINT = "is `roomstreams up` running? --api-url or ROOMSTREAMS_API_URL names the server API"


class _Failed(Exception):
    """What ``send``/``listen`` print as ``error: ...`` before exiting with 1."""


def _participant_token(
    api_key: str, api_secret: str, room: str, identity: str, *, publish: bool, subscribe: bool
) -> str:
    grants = VideoGrants(
        room=room, room_join=True, can_publish_data=publish, can_subscribe=subscribe
    )
    return AccessToken(api_key, api_secret).with_identity(identity).with_grants(grants).to_jwt()


def _fail(message: str) -> typer.Exit:
    err_console.print(f"[bold red]error:[/] {escape(message)}", highlight=False)
    return typer.Exit(1)


async def _blocks(fd: int) -> AsyncIterator[bytes]:
    """The blocks of file descriptor ``fd`` as they can be read (a pipe: what is there, without
    waiting for a whole block). A daemon thread reads, at most a few blocks ahead of the
    writer: a blocking read of stdin cannot be cancelled, and this way Ctrl-C does not wait for
    the next line. It reads the descriptor, not ``sys.stdin.buffer``, whose lock a thread
    blocked in it would hold at interpreter shutdown (a fatal error)."""
    loop = asyncio.get_running_loop()
    queue: asyncio.Queue[bytes | BaseException | None] = asyncio.Queue(maxsize=4)

    def pump() -> None:
        try:
            while True:
                try:
                    item: bytes | BaseException | None = os.read(fd, _READ_BLOCK) or None
                except OSError as exc:
                    item = exc
                asyncio.run_coroutine_threadsafe(queue.put(item), loop).result()
                if not isinstance(item, bytes):
                    return
        except BaseException:  # the loop is gone: nobody wants the rest
            return

    threading.Thread(target=pump, name="roomstreams-send-reader", daemon=True).start()
    while True:
        item = await queue.get()
        if item is None:
            return
        if isinstance(item, BaseException):
            raise _Failed(f"could not read the input: {item}")
        yield item


async def _send(
    url: str,
    token: str,
    *,
    room: str,
    topic: str,
    text: str | None,
    source: int | None,
    size: int | None,
    check_room: tuple[str, str] | None,
) -> str:
    if check_room is not None:
        async with RoomService(url, *check_room) as api:
            if room not in {r.name for r in await api.list_rooms()}:
                raise _Failed(f"room '{room}' does not exist (--create sends anyway)")
    async with Room() as r:
        await r.connect(url, token, reconnect=False)
        if source is None:  # the text argument: one write
            assert text is not None
            writer = await r.local_participant.stream_text(
                topic=topic, total_size=len(text.encode())
            )
            async with writer:
                try:
                    await writer.write(text)
                except asyncio.CancelledError:
                    await _interrupted(writer)
                    raise
            return writer.stream_id
        # a file or stdin: decoded and written a block at a time, with a progress bar on a
        # terminal (the bytes read; writes wait while the path to the room is full)
        decoder = codecs.getincrementaldecoder("utf-8")()
        progress = Progress(
            TextColumn("[bold]sending"),
            BarColumn(),
            DownloadColumn(),
            TransferSpeedColumn(),
            TimeElapsedColumn(),
            console=err_console,
            transient=True,
            disable=not err_console.is_terminal,
        )
        writer = await r.local_participant.stream_text(topic=topic, total_size=size)
        with progress:
            task = progress.add_task("send", total=size)
            async with writer:  # a failure half-way ends the stream abnormally
                try:
                    async for block in _blocks(source):
                        if piece := decoder.decode(block):
                            await writer.write(piece)
                        progress.advance(task, len(block))
                    if tail := decoder.decode(b"", final=True):
                        await writer.write(tail)
                except UnicodeDecodeError as exc:
                    raise _Failed(f"the input is not UTF-8 text: {exc}") from exc
                except asyncio.CancelledError:  # Ctrl-C
                    await _interrupted(writer)
                    raise
        return writer.stream_id


#: what the receivers of a stream cut by Ctrl-C read as its reason
INTERRUPTED_REASON = "the sender stopped sending (roomstreams send was interrupted)"


async def _interrupted(writer: TextStreamWriter) -> None:
    """Ctrl-C while sending: end the stream with a reason a person understands (receivers
    would otherwise read ``writer failed: CancelledError()``)."""
    with contextlib.suppress(RoomStreamsError, OSError):
        await asyncio.wait_for(writer.close(reason=INTERRUPTED_REASON), 5)


def _failed(exc: Exception, hint: str) -> typer.Exit:
    """A failure of ``send``/``listen``/``rooms``/``participants``: one line. Not reaching
    the server, or being refused by it, is a set-up mistake (exit 2, with ``hint``)."""
    if isinstance(exc, ConnectError):
        line = f"[bold red]error:[/] {escape(str(exc))} ({escape(hint)})"
        err_console.print(line, highlight=False)
        return typer.Exit(2)
    return _fail(str(exc))


@app.command()
def send(
    room: Annotated[str, typer.Option(help="Room to send to.")],
    text: Annotated[
        str | None,
        typer.Argument(help="Text to send. Without it: --file, else stdin.", show_default=False),
    ] = None,
    file: Annotated[
        Path | None,
        typer.Option(
            "--file", "-f", exists=True, dir_okay=False, help="Send this UTF-8 file's content."
        ),
    ] = None,
    topic: Annotated[str, typer.Option(help="Topic of the stream.")] = "chat",
    identity: Annotated[
        str | None,
        typer.Option(help="Sender identity (default: a unique sender-XXXX).", show_default=False),
    ] = None,
    url: Url = None,
    create: Annotated[
        bool,
        typer.Option("--create", help="Send even if the room does not exist (joining creates it)."),
    ] = False,
    api_key: ApiKey = DEV_API_KEY,
    api_secret: ApiSecret = DEV_API_SECRET,
) -> None:
    """Send a text stream to a room; print its stream id.

    The text is the argument, the content of --file, or stdin (read and sent as it comes,
    e.g. `tail -f log | roomstreams send --room R`). A room that does not exist (nobody in
    it) is an error unless --create. Signed with the dev API key/secret unless
    --api-key/--api-secret or ROOMSTREAMS_API_KEY/ROOMSTREAMS_API_SECRET.
    """
    if text is not None and file is not None:
        raise _usage("give TEXT or --file, not both")
    if not room.strip():
        raise _usage("--room must not be empty")
    url = _gateway_url(url or _from_up("url", DEFAULT_URL))
    who = _identity(identity, "sender")
    token = _participant_token(api_key, api_secret, room, who, publish=True, subscribe=False)
    check = None if create else (api_key, api_secret)

    def run(given: str | None, fd: int | None, size: int | None) -> str:
        coro = _send(
            url, token, room=room, topic=topic, text=given, source=fd, size=size,
            check_room=check,
        )  # fmt: skip
        return asyncio.run(coro)

    try:
        if file is not None:
            with file.open("rb") as f:
                stream_id = run(None, f.fileno(), os.fstat(f.fileno()).st_size)
        elif text is None:
            stream_id = run(None, sys.stdin.fileno(), None)
        else:
            stream_id = run(text, None, None)
    except KeyboardInterrupt:
        err_console.print("interrupted: the stream was ended for its receivers", highlight=False)
        raise typer.Exit(130) from None
    except (_Failed, RoomStreamsError) as exc:
        raise _failed(exc, _GATEWAY_HINT) from None
    typer.echo(stream_id)


def _one_line(text: str) -> str:
    """``text`` on one line: backslash, CR and LF escaped as in Python literals."""
    return text.replace("\\", "\\\\").replace("\r", "\\r").replace("\n", "\\n")


async def _listen(url: str, token: str, *, room: str, topics: list[str], whole: bool) -> None:
    stop = asyncio.Event()
    lost: list[str] = []
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    show_topic = len(topics) > 1

    async def on_stream(reader: TextStreamReader, sender: str) -> None:
        info = reader.info
        head = f"{sender} {info.stream_id}" + (f" [{info.topic}]" if show_topic else "")
        try:
            if whole:
                typer.echo(f"{head}: {_one_line(await reader.read_all())}")
            else:
                async for chunk in reader:
                    typer.echo(f"{head}: {_one_line(chunk)}")
        except StreamAborted as exc:
            typer.echo(f"{head}: ended abnormally ({exc.code}): {exc.reason}", err=True)

    def on_disconnected(reason: str) -> None:
        if not stop.is_set():  # not our own disconnect() after Ctrl-C
            lost.append(reason)
            stop.set()

    r = Room()
    for topic in topics:
        r.register_text_stream_handler(topic, on_stream)
    r.on("disconnected", on_disconnected)
    r.on("reconnecting", lambda reason: typer.echo(f"reconnecting: {reason}", err=True))
    r.on("reconnected", lambda: typer.echo("reconnected", err=True))
    await r.connect(url, token)
    try:
        typer.echo(f"listening on room '{room}' (topics: {', '.join(topics)})", err=True)
        await stop.wait()
    finally:
        await r.disconnect()
    if lost:
        raise _Failed(f"disconnected from room '{room}': {lost[0]}")


@app.command()
def listen(
    room: Annotated[str, typer.Option(help="Room to listen in (joining creates it).")],
    topic: Annotated[
        list[str] | None,
        typer.Option("--topic", "-t", help="Topic to receive; repeat for several (default: chat)."),
    ] = None,
    whole: Annotated[
        bool, typer.Option("--whole", help="One line per message once complete, not per chunk.")
    ] = False,
    identity: Annotated[
        str | None,
        typer.Option(
            help="Listener identity (default: a unique listener-XXXX).", show_default=False
        ),
    ] = None,
    url: Url = None,
    api_key: ApiKey = DEV_API_KEY,
    api_secret: ApiSecret = DEV_API_SECRET,
) -> None:
    """Print the text streams sent in a room as they arrive, until Ctrl-C.

    One line per chunk, `SENDER STREAM_ID: TEXT` (with ` [TOPIC]` after the id when listening
    to several topics), or one per message with --whole; newlines and backslashes in the text
    are escaped (\\n, \\\\) so each stays on one line. The line `listening on room 'R'` on
    stderr says the handlers are in effect. Streams ending abnormally are reported on stderr.
    """
    topics = list(dict.fromkeys(topic or ["chat"]))
    if not room.strip():
        raise _usage("--room must not be empty")
    url = _gateway_url(url or _from_up("url", DEFAULT_URL))
    who = _identity(identity, "listener")
    token = _participant_token(api_key, api_secret, room, who, publish=False, subscribe=True)
    try:
        asyncio.run(_listen(url, token, room=room, topics=topics, whole=whole))
    except (_Failed, RoomStreamsError) as exc:
        raise _failed(exc, _GATEWAY_HINT) from None


# -- rooms / participants (the server API) ---------------------------------------------------

DEFAULT_API_URL = "http://127.0.0.1:7890"
ApiUrl = Annotated[
    str | None,
    typer.Option(
        envvar="ROOMSTREAMS_API_URL",
        help="Server API: LiveKit's RoomService on the router's HTTP port [default: the running"
        f" roomstreams up's, else {DEFAULT_API_URL}]",
        show_default=False,
    ),
]
Json = Annotated[bool, typer.Option("--json", help="One JSON object per line.")]


def _api_url(given: str | None) -> str:
    """LiveKit's SDKs take ws(s):// for the server API too: the same host over http(s)."""
    url = given or _from_up("api_url", DEFAULT_API_URL)
    for ws, http in (("ws://", "http://"), ("wss://", "https://")):
        if url.startswith(ws):
            return http + url[len(ws) :]
    return url


def _table(rows: list[list[str]]) -> None:
    widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]))]
    for r in rows:
        typer.echo("  ".join(c.ljust(w) for c, w in zip(r, widths, strict=True)).rstrip())


@app.command()
def rooms(
    api_url: ApiUrl = None,
    as_json: Json = False,
    api_key: ApiKey = DEV_API_KEY,
    api_secret: ApiSecret = DEV_API_SECRET,
) -> None:
    """List the rooms (with someone in them, or created through the API)."""

    async def run() -> list[RoomDetails]:
        async with RoomService(_api_url(api_url), api_key, api_secret) as api:
            return await api.list_rooms()

    try:
        found = asyncio.run(run())
    except RoomStreamsError as exc:
        raise _failed(exc, _API_HINT) from None
    if as_json:
        for r in found:
            typer.echo(json.dumps(dataclasses.asdict(r)))
        return
    if not found:
        typer.echo("no rooms", err=True)
        return
    rows = [["ROOM", "PARTICIPANTS", "CREATED"]]
    for r in found:
        when = (
            time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(r.created / 1000))
            if r.created
            else ""
        )
        rows.append([r.name, str(r.num_participants), when])
    _table(rows)


@app.command()
def participants(
    room: Annotated[str, typer.Option(help="Room whose participants to list.")],
    api_url: ApiUrl = None,
    as_json: Json = False,
    api_key: ApiKey = DEV_API_KEY,
    api_secret: ApiSecret = DEV_API_SECRET,
) -> None:
    """List a room's participants: identity, name, metadata, attributes."""

    async def run() -> list[ParticipantDetails]:
        async with RoomService(_api_url(api_url), api_key, api_secret) as api:
            return await api.list_participants(room)

    try:
        found = asyncio.run(run())
    except RoomStreamsError as exc:
        raise _failed(exc, _API_HINT) from None
    if as_json:
        for p in found:
            typer.echo(json.dumps(dataclasses.asdict(p)))
        return
    if not found:
        typer.echo(f"nobody in room '{room}'", err=True)
        return
    rows = [["IDENTITY", "NAME", "METADATA", "ATTRIBUTES"]]
    for p in found:
        attrs = ",".join(f"{k}={v}" for k, v in sorted(p.attributes.items()))
        rows.append([p.identity, p.name, _one_line(p.metadata), _one_line(attrs)])
    _table(rows)


# -- docs: the published contracts (roomstreams docs) ---------------------------------------


@app.command()
def docs(
    which: Annotated[
        str | None,
        typer.Argument(
            help="protocol (the client wire protocol's JSON Schema) or asyncapi (the room "
            "events, AsyncAPI 3.0); without it, both (with --out).",
            show_default=False,
        ),
    ] = None,
    out: Annotated[
        Path | None,
        typer.Option(
            "--out", "-o", file_okay=False, help="Write the files into this directory."
        ),
    ] = None,
) -> None:
    """Print or write the published contracts (roomstreams docs): the JSON Schema of the
    client wire protocol (protocol.schema.json) and the AsyncAPI document of the room-events
    stream backend services consume (asyncapi.json), as shipped in the package."""
    from . import _schemas

    names = {"protocol": "protocol.schema.json", "asyncapi": "asyncapi.json"}
    if which is not None and which not in names:
        raise _usage(f"roomstreams docs {which!r}: choose protocol or asyncapi")
    chosen = [names[which]] if which is not None else list(names.values())
    if out is None:
        if which is None:
            raise _usage("roomstreams docs: name one (protocol or asyncapi) or give --out DIR")
        typer.echo(_schemas.packaged(chosen[0]), nl=False)
        return
    for path in _schemas.write(out, chosen):
        err_console.print(f"wrote {path} ({_schemas.FILES[path.name]})", highlight=False)


def main() -> None:
    """Entry point of the ``roomstreams`` console script. A mistake in the command line is one
    line and exit code 2; an unexpected error is one line and exit code 1, its traceback only
    with ``--debug``."""
    debug = "--debug" in sys.argv[1:]
    try:
        code = app(standalone_mode=False, prog_name="roomstreams")
    except typer.TyperException as exc:  # click's usage errors, as Typer raises them
        ctx = getattr(exc, "ctx", None)
        command = getattr(ctx, "command_path", "") or "roomstreams"
        message = exc.format_message() if hasattr(exc, "format_message") else str(exc)
        exit_code = int(getattr(exc, "exit_code", 2))
        hint = f" (see {command} --help)" if exit_code == 2 else ""
        err_console.print(f"[bold red]error:[/] {escape(message)}{escape(hint)}", highlight=False)
        sys.exit(exit_code)
    except (typer.Abort, KeyboardInterrupt):
        sys.exit(130)
    except Exception as exc:
        if debug:
            raise
        err_console.print(
            f"[bold red]error:[/] {escape(type(exc).__name__)}: {escape(str(exc))} "
            "(--debug shows the traceback)",
            highlight=False,
        )
        sys.exit(1)
    sys.exit(code if isinstance(code, int) else 0)


if __name__ == "__main__":
    main()
