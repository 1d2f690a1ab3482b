"""The gateway's HTTP beside the WebSockets, through real gateways: the Origin allow-list of
browser connections (ROOMSTREAMS_ALLOWED_ORIGINS) and the local development mode's chat page
and token endpoint (ROOMSTREAMS_DEV_TOKEN_ENDPOINT), off unless asked for."""

from __future__ import annotations

import asyncio
import json
import urllib.error
import urllib.request
from collections.abc import Callable
from urllib.parse import quote

import pytest
import websockets
from websockets.exceptions import InvalidStatus

import roomstreams
from roomstreams.token import verify_token

from .conftest import API_KEY, API_SECRET, System
from .helpers import RawClient

ALLOWED = "https://app.example.com"


def _get(url: str) -> tuple[int, str, str]:
    """GET ``url``: status, content type, body (HTTP errors included)."""
    try:
        with urllib.request.urlopen(url, timeout=5) as resp:
            return resp.status, resp.headers["Content-Type"], resp.read().decode()
    except urllib.error.HTTPError as exc:
        return exc.code, exc.headers["Content-Type"], exc.read().decode()


@pytest.fixture
def guarded(system_factory: Callable[..., System]) -> System:
    return system_factory(
        gateways=1, ROOMSTREAMS_ALLOWED_ORIGINS=f"{ALLOWED}, https://*.rooms.example.com"
    )


async def test_allowed_origin_connects(guarded: System, room_name: str) -> None:
    token = quote(guarded.token(room_name, "alice"))
    for origin in (ALLOWED, "https://eu.rooms.example.com"):
        c = await RawClient.connect(guarded.urls[0], token, origin=origin)  # joined frame read
        await c.ws.close()


async def test_refused_origin_gets_403_with_the_reason(guarded: System, room_name: str) -> None:
    token = quote(guarded.token(room_name, "alice"))
    for path in ("rtc", "api"):
        with pytest.raises(InvalidStatus) as exc_info:
            await websockets.connect(
                f"{guarded.urls[0]}/{path}?access_token={token}", origin="https://evil.example"
            )
        resp = exc_info.value.response
        assert resp.status_code == 403
        body = resp.body.decode()
        assert "origin 'https://evil.example' is not allowed" in body, body
        assert "ROOMSTREAMS_ALLOWED_ORIGINS" in body


async def test_no_origin_is_not_a_browser_and_connects(guarded: System, room_name: str) -> None:
    """Backends and the Python client send no Origin: the token alone decides."""
    c = await RawClient.connect(guarded.urls[0], quote(guarded.token(room_name, "raw")))
    async with roomstreams.Room() as room:
        await room.connect(guarded.urls[0], guarded.token(room_name, "py"))
        assert "raw" in room.remote_participants
    await c.ws.close()


async def test_default_gateway_serves_no_page_and_no_tokens(system: System) -> None:
    base = system.urls[0].replace("ws://", "http://")
    for path in ("/", "/app.js", "/dev/token?room=r&identity=a"):
        status, _, body = await asyncio.to_thread(_get, base + path)
        assert status == 404, (path, body)
    # and a browser page elsewhere may not open a socket to it
    with pytest.raises(InvalidStatus) as exc_info:
        await websockets.connect(
            f"{system.urls[0]}/rtc?access_token={quote(system.token('r', 'a'))}",
            origin="https://some-site.example",
        )
    assert exc_info.value.response.status_code == 403


async def test_dev_mode_serves_the_page_and_its_tokens(
    system_factory: Callable[..., System], room_name: str
) -> None:
    s = system_factory(gateways=1, ROOMSTREAMS_DEV_TOKEN_ENDPOINT="1")
    base = s.urls[0].replace("ws://", "http://")
    status, ctype, html = await asyncio.to_thread(_get, base + "/")
    assert (status, ctype.split(";")[0]) == (200, "text/html")
    assert '<script type="module" src="app.js">' in html
    status, ctype, _ = await asyncio.to_thread(_get, base + "/app.js")
    assert (status, ctype.split(";")[0]) == (200, "text/javascript")

    status, _, body = await asyncio.to_thread(
        _get, f"{base}/dev/token?room={room_name}&identity=alice&name=Alice"
    )
    assert status == 200, body
    token: str = json.loads(body)["token"]
    assert verify_token(token, API_KEY, API_SECRET).name == "Alice"
    # the page's origin is the gateway's own: its WebSocket gets in with that token
    own = base
    c = await RawClient.connect(s.urls[0], quote(token), origin=own)
    await c.ws.close()

    status, _, body = await asyncio.to_thread(_get, f"{base}/dev/token?room={room_name}")
    assert status == 400
    assert json.loads(body)["error"] == {"code": "bad_request", "message": "identity is required"}
