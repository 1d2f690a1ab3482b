"""The chat page ships the browser client built from shared/js: ``pip install .`` needs no
Node, so the built bundle is committed in services/gateway/static/. It must be the one that
shared/js builds now (CI builds it before pytest)."""

from __future__ import annotations

from pathlib import Path

import pytest

from services.gateway.http import STATIC_DIR

DIST = Path(__file__).resolve().parents[2] / "shared" / "js" / "dist"
BUNDLE = ("roomstreams.js", "roomstreams.js.map")
SYNC = "cp shared/js/dist/roomstreams.js shared/js/dist/roomstreams.js.map services/gateway/static/"


def test_the_page_ships_the_client_built_from_shared_js() -> None:
    for name in BUNDLE:
        assert (STATIC_DIR / name).is_file(), f"services/gateway/static/{name} is missing"
    if not (DIST / BUNDLE[0]).is_file():
        pytest.skip("shared/js is not built here (cd shared/js && npm ci && npm run build)")
    for name in BUNDLE:
        assert (STATIC_DIR / name).read_bytes() == (DIST / name).read_bytes(), (
            f"services/gateway/static/{name} is not the client shared/js builds now; "
            f"after `npm run build` there: {SYNC}"
        )
