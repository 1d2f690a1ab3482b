"""Fixtures of the browser tests: Debian's ``chromium`` driven by Playwright by its path
(nothing downloads a browser here), and a whole system started by the launcher behind
``roomstreams up``, in its local development mode (the chat page and its token endpoint on,
its own origin allowed), with Redis, a router and a gateway as real processes."""

from __future__ import annotations

import dataclasses
import os
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from roomstreams import AccessToken, VideoGrants
from roomstreams._launcher import Launcher, SystemConfig
from roomstreams._redis_server import free_port

playwright_api = pytest.importorskip(
    "playwright.async_api", reason="playwright is not installed (pip install -e '.[test]')"
)

ROOT = Path(__file__).resolve().parents[2]
CHROMIUM = os.environ.get("ROOMSTREAMS_CHROMIUM", "/usr/bin/chromium")
ARTIFACTS = ROOT / "tests" / "artifacts" / "browser"
LAUNCH_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]
API_KEY = "browser-key"
API_SECRET = "browser-secret-that-is-long-enough-for-hs256-0123"


@dataclass
class DevSystem:
    launcher: Launcher
    port: int

    @property
    def page_url(self) -> str:
        return f"http://127.0.0.1:{self.port}/"

    @property
    def ws_url(self) -> str:
        return f"ws://127.0.0.1:{self.port}"

    @property
    def redis_url(self) -> str:
        return self.launcher.redis_url

    def token(self, room: str, identity: str, name: str = "") -> str:
        grants = VideoGrants(room=room, room_join=True, can_update_own_metadata=True)
        t = AccessToken(API_KEY, API_SECRET).with_identity(identity).with_grants(grants)
        return (t.with_name(name) if name else t).to_jwt()


@pytest.fixture(scope="module")
def dev_system() -> Iterator[DevSystem]:
    """``roomstreams up`` on a free port: its own Redis, a router, one gateway."""
    port = free_port()
    ports: dict[str, int] = {"port": port}
    if "api_port" in {f.name for f in dataclasses.fields(SystemConfig)}:
        ports["api_port"] = free_port()  # the router's HTTP port, when it has one
    launcher = Launcher(
        SystemConfig(api_key=API_KEY, api_secret=API_SECRET, log_level="WARNING", **ports)
    )
    try:
        launcher.start()
        assert launcher.wait_ready(), "the system was asked to stop while starting"
        yield DevSystem(launcher, port)
    finally:
        launcher.stop()


@pytest.fixture
async def browser() -> AsyncIterator[playwright_api.Browser]:
    if not os.access(CHROMIUM, os.X_OK):
        pytest.skip(
            f"Debian's chromium is not installed at {CHROMIUM} "
            "(apt-get install chromium; .ci/run installs it)"
        )
    async with playwright_api.async_playwright() as pw:
        b = await pw.chromium.launch(executable_path=CHROMIUM, headless=True, args=LAUNCH_ARGS)
        try:
            yield b
        finally:
            await b.close()


@pytest.fixture
def artifacts(request: pytest.FixtureRequest) -> Path:
    """Where a test saves its screenshots (gitignored; the path is printed)."""
    d = ARTIFACTS / request.node.name.replace("/", "_")
    d.mkdir(parents=True, exist_ok=True)
    for old in d.glob("*.png"):
        old.unlink()
    print(f"screenshots in {d}")
    return d
