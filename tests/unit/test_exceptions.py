"""The exception tree: one root, every public error under it."""

from __future__ import annotations

import inspect

import pytest

import roomstreams
from roomstreams import exceptions
from roomstreams.exceptions import (
    AuthError,
    ConnectError,
    ConnectionClosed,
    PermissionDenied,
    RoomStreamsError,
    RpcError,
    ServerError,
    StreamAborted,
    StreamClosed,
    StreamError,
    StreamSizeMismatch,
)

DEFINED = [
    obj
    for _, obj in inspect.getmembers(exceptions, inspect.isclass)
    if obj.__module__ == exceptions.__name__
]


def test_the_module_defines_exceptions() -> None:
    assert len(DEFINED) >= 10


@pytest.mark.parametrize("cls", DEFINED, ids=lambda c: c.__name__)
def test_every_exception_subclasses_roomstreams_error(cls: type) -> None:
    assert issubclass(cls, RoomStreamsError)
    assert issubclass(cls, Exception)


@pytest.mark.parametrize("cls", DEFINED, ids=lambda c: c.__name__)
def test_every_exception_is_public(cls: type) -> None:
    assert cls.__name__ in exceptions.__all__
    assert cls.__name__ in roomstreams.__all__
    assert getattr(roomstreams, cls.__name__) is cls


@pytest.mark.parametrize(
    ("cls", "parent"),
    [
        (ConnectError, RoomStreamsError),
        (AuthError, ConnectError),
        (ConnectionClosed, RoomStreamsError),
        (PermissionDenied, RoomStreamsError),
        (ServerError, RoomStreamsError),
        (StreamError, RoomStreamsError),
        (RpcError, RoomStreamsError),
        (StreamAborted, StreamError),
        (StreamSizeMismatch, StreamError),
    ],
)
def test_documented_tree(cls: type, parent: type) -> None:
    assert cls.__bases__ == (parent,)


def test_stream_closed_is_also_a_runtime_error() -> None:
    """What LiveKit raises for a write after close and a second close."""
    assert StreamClosed.__bases__ == (StreamError, RuntimeError)


def test_exception_attributes() -> None:
    assert ConnectionClosed().reason == "connection closed"
    assert str(ConnectionClosed("gone")) == "gone"

    err = ServerError("bad_topic", "topic too long")
    assert (err.code, err.message, str(err)) == ("bad_topic", "topic too long", err.args[0])
    assert "bad_topic" in str(err) and "topic too long" in str(err)

    aborted = StreamAborted("alice left", code="sender_left", stream_id="s1", sender="alice")
    assert (aborted.code, aborted.reason, aborted.stream_id, aborted.sender) == (
        "sender_left",
        "alice left",
        "s1",
        "alice",
    )
    assert "sender_left" in str(aborted) and "alice left" in str(aborted)
    assert StreamAborted("why").code == "aborted"

    assert StreamSizeMismatch("3 != 4", stream_id="s2").stream_id == "s2"
    assert StreamClosed("closed").stream_id is None
