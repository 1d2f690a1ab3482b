"""The published contracts (docs/protocol.schema.json, docs/asyncapi.json, and the copies the
package ships for ``roomstreams docs``) are what the code generates today."""

from __future__ import annotations

import json
import typing
from pathlib import Path

import pytest
from typer.testing import CliRunner

from roomstreams import _schemas
from roomstreams.cli import app
from roomstreams.events import RoomEvent
from roomstreams.protocol.frames import ClientFrame, ServerFrame

DOCS = Path(__file__).resolve().parents[2] / "docs"
REGENERATE = "regenerate with `python -m roomstreams._schemas` and commit both copies"


@pytest.fixture(scope="module")
def generated() -> dict[str, str]:
    return _schemas.generated()


@pytest.mark.parametrize("name", sorted(_schemas.FILES))
def test_committed_copies_match_the_code(generated: dict[str, str], name: str) -> None:
    assert _schemas.packaged(name) == generated[name], (
        f"package copy of {name} drifted: {REGENERATE}"
    )
    assert (DOCS / name).read_text() == generated[name], f"docs/{name} drifted: {REGENERATE}"


def _types(union: object) -> set[str]:
    members = typing.get_args(typing.get_args(union)[0])  # Annotated[A | B | ..., Field(...)]
    return {m.model_fields["type"].default for m in members}


def test_protocol_schema_names_every_frame_type() -> None:
    schema = _schemas.protocol_schema()
    defs = schema["$defs"]
    for root, union in (("ClientFrame", ClientFrame), ("ServerFrame", ServerFrame)):
        mapping = defs[root]["discriminator"]["mapping"]
        assert set(mapping) == _types(union)
        for ref in mapping.values():
            assert ref.removeprefix("#/$defs/") in defs  # every reference resolves
    # a client frame is strict on the wire: unknown fields are refused
    assert defs["HeaderFrame"]["additionalProperties"] is False
    assert "topic" in defs["HeaderFrame"]["required"]


def test_asyncapi_describes_the_room_events_stream() -> None:
    doc = _schemas.asyncapi_document()
    assert doc["asyncapi"].startswith("3.")
    addresses = {c["address"] for c in doc["channels"].values()}
    assert addresses == {"rs:room-events"}
    actions = {op["action"] for op in doc["operations"].values()}
    assert actions == {"send", "receive"}  # the router publishes, a backend consumes
    payload = doc["components"]["schemas"]["RoomEvent"]
    assert payload["properties"]["event"]["enum"] == list(
        typing.get_args(RoomEvent.model_fields["event"].annotation)
    )
    assert payload["properties"]["identity"]["description"]  # the field docs came along


def test_cli_prints_and_writes_the_packaged_files(tmp_path: Path) -> None:
    runner = CliRunner()
    printed = runner.invoke(app, ["docs", "protocol"])
    assert printed.exit_code == 0, printed.output
    assert json.loads(printed.stdout)["$defs"]["ClientFrame"]
    wrote = runner.invoke(app, ["docs", "--out", str(tmp_path / "contracts")])
    assert wrote.exit_code == 0, wrote.output
    for name in _schemas.FILES:
        assert (tmp_path / "contracts" / name).read_text() == _schemas.packaged(name)
    wrong = runner.invoke(app, ["docs", "openapi"])
    assert wrong.exit_code == 2
