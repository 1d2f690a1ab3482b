"""The published contracts, generated from the code that speaks them:

- ``protocol.schema.json``: the client wire protocol (JSON Schema 2020-12) from the pydantic
  frame models of :mod:`roomstreams.protocol.frames` (``ClientFrame``: what a client sends a
  gateway; ``ServerFrame``: what a gateway sends a client);
- ``asyncapi.json``: the room-events stream backend services consume (AsyncAPI 3.0), from
  FastStream's typed publisher the router uses and a typed consumer-group subscriber.

Both ship in the package (``roomstreams/schemas/``, read by ``roomstreams docs``, so a client
install needs no FastStream) and in ``docs/``. Regenerate both copies after changing a frame
model or the room events: ``python -m roomstreams._schemas`` (a test fails on drift).
"""

from __future__ import annotations

import json
import sys
from importlib import resources
from pathlib import Path
from typing import Any

from . import __version__

__all__ = ["FILES", "asyncapi_document", "packaged", "protocol_schema", "render", "write"]

#: file name -> what it is
FILES = {
    "protocol.schema.json": "client wire protocol (JSON Schema)",
    "asyncapi.json": "room events for backend services (AsyncAPI 3.0)",
}

_BINARY_NOTE = (
    "Binary WebSocket frames (byte-stream chunks, data packets) are not JSON and are not "
    "described here: see roomstreams/protocol/binary.py."
)


def protocol_schema() -> dict[str, Any]:
    """JSON Schema of every JSON text frame of the client protocol."""
    from .protocol.frames import client_frame_adapter, server_frame_adapter

    defs: dict[str, Any] = {}
    roots: dict[str, Any] = {}
    adapters = (("ClientFrame", client_frame_adapter), ("ServerFrame", server_frame_adapter))
    for name, adapter in adapters:
        schema = adapter.json_schema(ref_template="#/$defs/{model}")
        for key, value in schema.pop("$defs", {}).items():
            if defs.setdefault(key, value) != value:
                raise RuntimeError(f"two different models are both named {key}")
        roots[name] = schema
    defs.update(roots)
    return {
        "$schema": "https://json-schema.org/draft/2020-12/schema",
        "title": f"roomstreams client wire protocol {__version__}",
        "description": (
            "One JSON object per WebSocket text frame between a participant and a gateway, "
            "discriminated by `type`. A client sends a ClientFrame (the gateway refuses "
            "unknown fields); a gateway sends a ServerFrame. " + _BINARY_NOTE
        ),
        "oneOf": [{"$ref": "#/$defs/ClientFrame"}, {"$ref": "#/$defs/ServerFrame"}],
        "$defs": dict(sorted(defs.items())),
    }


def asyncapi_document() -> dict[str, Any]:
    """AsyncAPI 3.0 of ``rs:room-events``: the router's publisher and a consumer group."""
    from faststream.redis import RedisBroker
    from faststream.specification import AsyncAPI

    from .events import RoomEvent, room_events, room_events_publisher

    broker = RedisBroker(
        "redis://127.0.0.1:6379/0",
        description="The Redis the services share (ROOMSTREAMS_REDIS_URL; redis+cluster:// "
        "seeds for a cluster).",
    )
    room_events_publisher(broker)

    async def on_room_event(event: RoomEvent) -> None:  # pragma: no cover - spec only
        del event

    broker.subscriber(
        stream=room_events(group="<your-service>", consumer="<your-service>-1"),
        title="rs:room-events:consume",
        description="A backend service reads the events in a consumer group of its own "
        "(roomstreams.events.room_events); an entry is acknowledged when the handler "
        "returns, unacknowledged ones are claimed with room_events_claimer.",
    )(on_room_event)

    spec = AsyncAPI(
        broker,
        title="roomstreams room events",
        version=__version__,
        description="Room lifecycle events (LiveKit's webhooks, over a Redis stream) for "
        "backend services such as agents. Consume them with FastStream: see "
        "roomstreams.events.",
    ).to_specification()
    doc: dict[str, Any] = json.loads(spec.to_json())
    return doc


def render(doc: dict[str, Any]) -> str:
    return json.dumps(doc, indent=2, sort_keys=False) + "\n"


def generated() -> dict[str, str]:
    """File name -> text, generated now (needs FastStream: a server install)."""
    return {
        "protocol.schema.json": render(protocol_schema()),
        "asyncapi.json": render(asyncapi_document()),
    }


def packaged(name: str) -> str:
    """The copy shipped in the package (what ``roomstreams docs`` serves)."""
    if name not in FILES:
        raise KeyError(name)
    return resources.files("roomstreams").joinpath("schemas", name).read_text("utf-8")


def write(out: Path, names: list[str] | None = None) -> list[Path]:
    """Write the packaged copies of ``names`` (all by default) into directory ``out``."""
    out.mkdir(parents=True, exist_ok=True)
    written = []
    for name in names or list(FILES):
        path = out / name
        path.write_text(packaged(name), "utf-8")
        written.append(path)
    return written


def _regenerate() -> None:
    here = Path(__file__).resolve().parent
    targets = [here / "schemas", here.parent.parent / "docs"]
    for name, text in generated().items():
        for d in targets:
            if d.is_dir() or d.name == "schemas":
                d.mkdir(exist_ok=True)
                (d / name).write_text(text, "utf-8")
                print(f"wrote {d / name}", file=sys.stderr)


if __name__ == "__main__":
    _regenerate()
