"""The gateway's HTTP routes (services/gateway/http.py) without a socket: the Origin policy,
the dev page's files and its token endpoint."""

from __future__ import annotations

import json

import pytest
from websockets.datastructures import Headers
from websockets.http11 import Request

from roomstreams.token import verify_token
from services.gateway.http import STATIC_DIR, GatewayHttp, OriginPolicy, parse_origins

KEY, SECRET = "k", "a-secret-that-is-long-enough-for-hs256-0123456789"
LOCAL = ("127.0.0.1", 50000)


def request(path: str, **headers: str) -> Request:
    h = Headers()
    for name, value in {"Host": "127.0.0.1:7880", **headers}.items():
        h[name] = value
    return Request(path, h)


def http(**kw: object) -> GatewayHttp:
    return GatewayHttp(api_key=KEY, api_secret=SECRET, **kw)  # type: ignore[arg-type]


def test_parse_origins() -> None:
    assert parse_origins(" https://A.example/ , ,http://x:1") == ("https://a.example", "http://x:1")
    assert parse_origins("") == ()


@pytest.mark.parametrize(
    ("origin", "allowed"),
    [
        ("https://app.example.com", True),
        ("HTTPS://APP.EXAMPLE.COM/", True),
        ("https://eu.rooms.example.com", True),
        ("https://rooms.example.com", False),  # the wildcard needs a label
        ("https://evil.example", False),
        ("http://app.example.com", False),  # another scheme is another origin
        ("https://app.example.com.evil.example", False),
        ("null", False),  # a sandboxed page or a file:// one
    ],
)
def test_origin_patterns(origin: str, allowed: bool) -> None:
    policy = OriginPolicy(parse_origins("https://app.example.com, https://*.rooms.example.com"))
    assert policy.allows(origin) is allowed
    assert (policy.refusal(origin) is None) is allowed


def test_no_origin_is_not_a_browser_and_passes() -> None:
    assert OriginPolicy(()).refusal(None) is None


def test_own_origin_passes_and_star_allows_any() -> None:
    assert OriginPolicy(()).refusal("http://127.0.0.1:7880", "127.0.0.1:7880") is None
    assert OriginPolicy(()).refusal("http://127.0.0.1:7881", "127.0.0.1:7880") is not None
    assert OriginPolicy(("*",)).refusal("https://anything.example") is None


def test_refused_origin_on_websocket_paths_is_403_with_the_reason() -> None:
    h = http(allowed_origins="https://app.example.com")
    for path in ("/rtc", "/rtc/", "/api"):
        resp = h.handle(request(path, Origin="https://evil.example"), LOCAL)
        assert resp is not None and resp.status_code == 403
        assert b"'https://evil.example' is not allowed" in resp.body
        assert b"ROOMSTREAMS_ALLOWED_ORIGINS" in resp.body
    assert h.handle(request("/rtc?access_token=x", Origin="https://app.example.com"), LOCAL) is None
    assert h.handle(request("/rtc"), LOCAL) is None


def test_page_and_token_endpoint_exist_only_in_dev_mode() -> None:
    off = http()
    for path in ("/", "/app.js", "/dev/token?room=r&identity=a"):
        assert off.handle(request(path), LOCAL) is None  # the server answers 404 as before


def test_dev_page_files() -> None:
    h = http(dev_token_endpoint=True)
    page = h.handle(request("/"), LOCAL)
    assert page is not None and page.status_code == 200
    assert page.headers["Content-Type"].startswith("text/html")
    assert page.body == (STATIC_DIR / "index.html").read_bytes()
    script = h.handle(request("/app.js"), LOCAL)
    assert script is not None and script.headers["Content-Type"].startswith("text/javascript")
    assert script.headers["Content-Length"] == str(len(script.body))
    # only the files directly in static/: nothing else on disk is reachable
    for path in ("/../http.py", "/%2e%2e/http.py", "/static/app.js", "/nope.js"):
        assert h.handle(request(path), LOCAL) is None


def test_page_loads_only_files_that_ship() -> None:
    """Every local file index.html and app.js refer to is in static/ (so the wheel has it)."""
    names = {p.name for p in STATIC_DIR.iterdir()}
    html = (STATIC_DIR / "index.html").read_text()
    for ref in ("style.css", "app.js"):
        assert f'"{ref}"' in html and ref in names
    assert 'from "./roomstreams.js"' in (STATIC_DIR / "app.js").read_text()


def test_dev_token() -> None:
    h = http(dev_token_endpoint=True)
    resp = h.handle(request("/dev/token?room=demo&identity=alice&name=Alice%20A"), LOCAL)
    assert resp is not None and resp.status_code == 200
    assert resp.headers["Cache-Control"] == "no-store"
    body = json.loads(resp.body)
    claims = verify_token(body["token"], KEY, SECRET)
    assert (claims.identity, claims.name, claims.video.room) == ("alice", "Alice A", "demo")
    assert claims.video.room_join and claims.video.can_publish_data and claims.video.can_subscribe
    assert not (claims.video.room_admin or claims.video.room_list)


@pytest.mark.parametrize(
    ("query", "message"),
    [
        ("identity=alice", "room is required"),
        ("room=demo&identity=", "identity is required"),
        ("room=demo&identity=" + "a" * 257, "identity is longer than 256 UTF-8 bytes"),
        ("room=demo&identity=al%0Aice", "identity has control characters"),
    ],
)
def test_dev_token_bad_input(query: str, message: str) -> None:
    resp = http(dev_token_endpoint=True).handle(request(f"/dev/token?{query}"), LOCAL)
    assert resp is not None and resp.status_code == 400
    assert json.loads(resp.body) == {"error": {"code": "bad_request", "message": message}}


def test_dev_token_answers_this_machine_only() -> None:
    h = http(dev_token_endpoint=True)
    resp = h.handle(request("/dev/token?room=r&identity=a"), ("192.0.2.7", 4000))
    assert resp is not None and resp.status_code == 403
    assert json.loads(resp.body)["error"]["code"] == "not_local"
    ok = h.handle(request("/dev/token?room=r&identity=a"), ("::1", 4000, 0, 0))
    assert ok is not None and ok.status_code == 200
    for host in ("localhost:7880", "[::1]:7880", "127.0.0.2"):
        ok = h.handle(request("/dev/token?room=r&identity=a", Host=host), LOCAL)
        assert ok is not None and ok.status_code == 200, host
    # a page that reached this machine under another name (DNS rebinding) gets no token
    for host in ("evil.example:7880", "192.0.2.7:7880", ""):
        resp = h.handle(request("/dev/token?room=r&identity=a", Host=host), LOCAL)
        assert resp is not None and resp.status_code == 403, host
        assert json.loads(resp.body)["error"]["code"] == "not_local"


def test_dev_token_refuses_other_origins() -> None:
    h = http(dev_token_endpoint=True, allowed_origins="http://127.0.0.1:7880")
    resp = h.handle(request("/dev/token?room=r&identity=a", Origin="https://evil.example"), LOCAL)
    assert resp is not None and resp.status_code == 403
    assert json.loads(resp.body)["error"]["code"] == "origin_refused"


def test_roomstreams_up_dev_mode_allows_its_own_pages(monkeypatch: pytest.MonkeyPatch) -> None:
    from roomstreams._launcher import Launcher, SystemConfig

    monkeypatch.delenv("ROOMSTREAMS_ALLOWED_ORIGINS", raising=False)
    env = Launcher(SystemConfig("k", "s", gateways=2, port=7880))._dev_env()
    assert env["ROOMSTREAMS_DEV_TOKEN_ENDPOINT"] == "1"
    policy = OriginPolicy(parse_origins(env["ROOMSTREAMS_ALLOWED_ORIGINS"]))
    for page in ("http://127.0.0.1:7880", "http://localhost:7881"):
        assert policy.allows(page)
    assert not policy.allows("http://127.0.0.1:7882")
    assert not policy.allows("https://evil.example")
    # origins the user allowed already stay allowed; the dev mode can be turned off
    monkeypatch.setenv("ROOMSTREAMS_ALLOWED_ORIGINS", "https://app.example.com")
    env = Launcher(SystemConfig("k", "s", port=7880))._dev_env()
    assert OriginPolicy(parse_origins(env["ROOMSTREAMS_ALLOWED_ORIGINS"])).allows(
        "https://app.example.com"
    )
    assert Launcher(SystemConfig("k", "s", dev_page=False))._dev_env() == {}


def test_two_origin_headers_are_a_bad_request() -> None:
    h = Headers(
        [
            ("Host", "127.0.0.1:7880"),
            ("Origin", "https://a.example"),
            ("Origin", "http://127.0.0.1:7880"),
        ]
    )
    resp = http(allowed_origins="*").handle(Request("/rtc", h), LOCAL)
    assert resp is not None and resp.status_code == 400
    assert b"one Origin" in resp.body
