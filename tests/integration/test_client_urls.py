"""Gateway URLs as people write them: ``http(s)://`` works as LiveKit's SDKs accept it, and a
URL that cannot be used fails with an error that never shows the access token."""

from __future__ import annotations

import pytest

import roomstreams
from roomstreams.client.connection import websocket_url

from .conftest import System


@pytest.mark.parametrize(
    ("given", "opened"),
    [
        ("http://127.0.0.1:7880", "ws://127.0.0.1:7880"),
        ("https://rooms.example.com/", "wss://rooms.example.com"),
        ("HTTP://h:1", "ws://h:1"),
        ("ws://h:1/", "ws://h:1"),
        ("wss://h", "wss://h"),
        ("127.0.0.1:7880", "ws://127.0.0.1:7880"),
    ],
)
def test_websocket_url(given: str, opened: str) -> None:
    assert websocket_url(given) == opened


async def test_an_http_url_connects(system: System, room_name: str) -> None:
    room = roomstreams.Room()
    try:
        await room.connect(system.urls[0].replace("ws://", "http://"), system.token(room_name, "a"))
        assert room.isconnected()
    finally:
        await room.disconnect()


async def test_a_bad_url_never_shows_the_token(system: System, room_name: str) -> None:
    token = system.token(room_name, "a")
    room = roomstreams.Room()
    with pytest.raises(roomstreams.ConnectError) as exc:
        await room.connect("ftp://nowhere:99", token)
    assert token not in str(exc.value) and token[:20] not in repr(exc.value)
    assert "ws://" in str(exc.value)
