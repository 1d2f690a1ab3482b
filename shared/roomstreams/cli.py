"""The ``roomstreams`` command: ``up`` (a whole system on this machine), ``token`` (a dev
access token) and ``bench`` (benchmarks, in :mod:`roomstreams.bench`)."""

from __future__ import annotations

import importlib
import os
import signal
from datetime import timedelta
from pathlib import Path
from types import FrameType
from typing import Annotated

import typer
from rich.console import Console
from rich.markup import escape

from ._launcher import ChildExit, Launcher, SystemConfig
from ._redis_server import describe_server_binary
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
        raise typer.BadParameter("port + gateways - 1 must be <= 65535", param_hint="--port")
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

    _print_summary(launcher)
    exited = launcher.wait()
    if exited is None:
        console.print("Stopping...")
        return 0
    _report_death(launcher, exited)
    return 1


def _print_summary(launcher: Launcher) -> None:
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
) -> None:
    """Run benchmarks (roomstreams.bench)."""
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
    result = run_cli(workloads=workloads, out=out, quick=quick)
    if isinstance(result, int) and result != 0:
        raise typer.Exit(result)


def main() -> None:
    """Entry point of the ``roomstreams`` console script."""
    app()


if __name__ == "__main__":
    main()
