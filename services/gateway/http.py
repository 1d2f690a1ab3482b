"""Plain HTTP on the gateway's port, beside the WebSockets (websockets' ``process_request``,
GET only): the ``Origin`` check of browser connections and, in the local development mode of
``roomstreams up`` only, the chat page and the token endpoint it gets its tokens from.

- **Origin.** A browser names the page that opens a WebSocket in the ``Origin`` header; any
  page on the web can open one to the gateway. As Centrifugo does, the gateway lets a browser
  connection in only when its origin is allowed: it matches a pattern of
  ``ROOMSTREAMS_ALLOWED_ORIGINS`` (comma-separated, ``*`` a wildcard, ``*`` alone: any), or
  it is the gateway's own origin (the ``Host`` it was reached at). A request without
  ``Origin`` is not a browser's and is let in (the access token still decides). A refused
  origin gets ``403`` with the reason.
- **Dev page** (``ROOMSTREAMS_DEV_TOKEN_ENDPOINT=1``, never on by default): ``GET /`` serves
  the chat page (files of ``static/``, the built browser client included), and
  ``GET /dev/token?room=R&identity=I&name=N`` signs a token for anyone who asks from this
  machine (a loopback peer, and a ``Host`` naming this machine, so that no page reaching
  it by DNS rebinding gets one): for local development, never for a deployment.

Everything here is sans-I/O apart from reading the page's files: it maps a request to a
response or to ``None`` (not an HTTP route: the WebSocket routes go on)."""

from __future__ import annotations

import email.utils
import ipaddress
import json
import mimetypes
import re
from collections.abc import Iterable
from datetime import timedelta
from http import HTTPStatus
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

from websockets.datastructures import Headers
from websockets.http11 import Request, Response

from roomstreams.token import CLAIM_LIMITS, AccessToken, VideoGrants

__all__ = [
    "DEV_TOKEN_PATH",
    "STATIC_DIR",
    "WEBSOCKET_PATHS",
    "GatewayHttp",
    "OriginPolicy",
    "parse_origins",
    "respond",
]

STATIC_DIR = Path(__file__).resolve().with_name("static")
"""The chat page's files (``index.html`` and what it loads), shipped in the wheel."""

DEV_TOKEN_PATH = "/dev/token"
WEBSOCKET_PATHS = frozenset({"/rtc", "/api"})
DEV_TOKEN_TTL = timedelta(hours=6)

_CONTENT_TYPES = {
    ".html": "text/html; charset=utf-8",
    ".js": "text/javascript; charset=utf-8",
    ".css": "text/css; charset=utf-8",
    ".svg": "image/svg+xml",
    ".json": "application/json",
    ".map": "application/json",
}


def respond(
    status: HTTPStatus,
    body: bytes | str,
    content_type: str = "text/plain; charset=utf-8",
    **headers: str,
) -> Response:
    """An HTTP response the gateway sends and closes (websockets writes it as it is)."""
    data = body.encode() if isinstance(body, str) else body
    h = Headers()
    h["Date"] = email.utils.formatdate(usegmt=True)
    h["Connection"] = "close"
    h["Content-Length"] = str(len(data))
    h["Content-Type"] = content_type
    h["X-Content-Type-Options"] = "nosniff"
    for name, value in headers.items():
        h[name.replace("_", "-")] = value
    return Response(status.value, status.phrase, h, data)


def _json(status: HTTPStatus, payload: dict[str, Any]) -> Response:
    return respond(status, json.dumps(payload) + "\n", "application/json", Cache_Control="no-store")


def _error(status: HTTPStatus, code: str, message: str) -> Response:
    return _json(status, {"error": {"code": code, "message": message}})


# -- Origin ---------------------------------------------------------------------------------


def parse_origins(value: str) -> tuple[str, ...]:
    """``"https://a.example, https://*.b.example"`` -> the patterns, trimmed, without a
    trailing slash, lower-cased (origins compare case-insensitively)."""
    return tuple(p.strip().rstrip("/").lower() for p in value.split(",") if p.strip())


def _pattern(p: str) -> re.Pattern[str]:
    # ``*`` matches within one origin (no ``/``); everything else is literal
    return re.compile("[^/]*".join(re.escape(part) for part in p.split("*")))


class OriginPolicy:
    """Which browser origins may open WebSockets here. ``refusal(origin, host)`` is the reason
    to refuse, or ``None`` to let the request in."""

    def __init__(self, patterns: Iterable[str]) -> None:
        self.patterns = tuple(patterns)
        self._any = "*" in self.patterns
        self._regexes = [_pattern(p) for p in self.patterns if p != "*"]

    def allows(self, origin: str, host: str | None = None) -> bool:
        o = origin.strip().rstrip("/").lower()
        if self._any:
            return True
        if host and urlsplit(o).netloc == host.strip().lower():
            return True  # the gateway's own origin (the page it serves itself)
        return any(r.fullmatch(o) for r in self._regexes)

    def refusal(self, origin: str | None, host: str | None = None) -> str | None:
        if origin is None:
            return None  # not a browser: the access token decides
        if self.allows(origin, host):
            return None
        return (
            f"origin {origin!r} is not allowed to connect to this gateway "
            "(ROOMSTREAMS_ALLOWED_ORIGINS lists the allowed ones)"
        )


# -- the gateway's HTTP routes --------------------------------------------------------------


def _is_loopback(peer: Any) -> bool:
    if not isinstance(peer, tuple) or not peer:
        return False
    try:
        return ipaddress.ip_address(str(peer[0])).is_loopback
    except ValueError:
        return False


def _is_local_host(host: str | None) -> bool:
    """Whether a ``Host`` header names this machine (``localhost``, a loopback address):
    a page that reached the gateway under another name may be a DNS-rebinding one."""
    if not host:
        return False
    name = urlsplit(f"//{host}").hostname or ""
    if name == "localhost" or name.endswith(".localhost"):
        return True
    try:
        return ipaddress.ip_address(name).is_loopback
    except ValueError:
        return False


def _page_files(root: Path) -> dict[str, Path]:
    """URL path -> file, for the files directly in ``root`` (``/`` is ``index.html``)."""
    if not root.is_dir():
        return {}
    files = {f"/{f.name}": f for f in sorted(root.iterdir()) if f.is_file()}
    if "/index.html" in files:
        files["/"] = files["/index.html"]
    return files


class GatewayHttp:
    """The gateway's HTTP routes other than ``/healthz``.

    ``handle(request, peer)`` returns the response to send, or ``None`` when the request is
    a WebSocket upgrade to go on with (its origin allowed) or a path this does not serve.
    """

    def __init__(
        self,
        *,
        api_key: str,
        api_secret: str,
        allowed_origins: str = "",
        dev_token_endpoint: bool = False,
        static_dir: Path = STATIC_DIR,
    ) -> None:
        self.origins = OriginPolicy(parse_origins(allowed_origins))
        self.dev = dev_token_endpoint
        self._key = api_key
        self._secret = api_secret
        self._files = _page_files(static_dir) if dev_token_endpoint else {}

    def handle(self, request: Request, peer: Any = None) -> Response | None:
        url = urlsplit(request.path)
        path = url.path
        origins, hosts = request.headers.get_all("Origin"), request.headers.get_all("Host")
        if len(origins) > 1 or len(hosts) > 1:
            return respond(HTTPStatus.BAD_REQUEST, "a request has one Origin and one Host\n")
        origin = origins[0] if origins else None
        host = hosts[0] if hosts else None
        if path.rstrip("/") in WEBSOCKET_PATHS:
            reason = self.origins.refusal(origin, host)
            if reason is not None:
                return respond(HTTPStatus.FORBIDDEN, reason + "\n")
            return None
        if not self.dev:
            return None
        if path == DEV_TOKEN_PATH:
            reason = self.origins.refusal(origin, host)
            if reason is not None:
                return _error(HTTPStatus.FORBIDDEN, "origin_refused", reason)
            if not (_is_loopback(peer) and _is_local_host(host)):
                return _error(
                    HTTPStatus.FORBIDDEN,
                    "not_local",
                    "the development token endpoint answers requests from this machine only "
                    "(to http://127.0.0.1 or http://localhost)",
                )
            return self._token(parse_qs(url.query))
        file = self._files.get(path)
        if file is None:
            return None
        try:
            body = file.read_bytes()
        except OSError as exc:
            return respond(HTTPStatus.NOT_FOUND, f"{path}: {exc.strerror}\n")
        ctype = _CONTENT_TYPES.get(file.suffix) or (
            mimetypes.guess_type(file.name)[0] or "application/octet-stream"
        )
        return respond(HTTPStatus.OK, body, ctype, Cache_Control="no-cache")

    def _token(self, query: dict[str, list[str]]) -> Response:
        values: dict[str, str] = {}
        for field, claim, required in (
            ("room", "room", True),
            ("identity", "sub", True),
            ("name", "name", False),
        ):
            v = query.get(field, [""])[0].strip()
            if required and not v:
                return _error(HTTPStatus.BAD_REQUEST, "bad_request", f"{field} is required")
            if len(v.encode()) > CLAIM_LIMITS[claim]:
                return _error(
                    HTTPStatus.BAD_REQUEST,
                    "bad_request",
                    f"{field} is longer than {CLAIM_LIMITS[claim]} UTF-8 bytes",
                )
            if any(ord(c) < 0x20 or ord(c) == 0x7F for c in v):
                return _error(
                    HTTPStatus.BAD_REQUEST, "bad_request", f"{field} has control characters"
                )
            values[field] = v
        grants = VideoGrants(
            room=values["room"], room_join=True, can_publish_data=True, can_subscribe=True
        )
        t = (
            AccessToken(self._key, self._secret)
            .with_identity(values["identity"])
            .with_grants(grants)
            .with_ttl(DEV_TOKEN_TTL)
        )
        if values["name"]:
            t = t.with_name(values["name"])
        return _json(
            HTTPStatus.OK,
            {"token": t.to_jwt(), "room": values["room"], "identity": values["identity"]},
        )
