"""Serving the web UI: the build's pages for every deep link, its hashed assets cached for
good and never a file outside them, the how-to-build page while there is no build, the
security headers, and /ui/config.json — none of which needs a token."""

from __future__ import annotations

import dataclasses
import json
import threading
from collections.abc import AsyncIterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from importlib import metadata
from pathlib import Path
from typing import Any, Final

import httpx
import pytest

import web
from graph.app import AppState, create_app
from graph.ui import package_version
from resolvers.identity.oidc import OidcConfig
from tests.helpers import Api

INDEX: Final = (
    '<!doctype html><html><head><script type="module" src="/assets/app-abc.js"></script>'
    '</head><body><div id="app"></div></body></html>'
)
SCRIPT: Final = "console.log('enclii');\n"
SECRET: Final = "[project]\nname = 'not for the browser'\n"
CSP: Final = (
    "default-src 'self'; script-src 'self'; style-src 'self' 'unsafe-inline'; "
    "img-src 'self' data:; connect-src 'self' ws: wss:; frame-ancestors 'none'; "
    "base-uri 'none'"
)
DEEP_LINKS: Final = (
    "/",
    "/projects",
    "/projects/shop/x",
    "/projects/shop/stage/api/logs",
    "/deployments/dep_01HZ",
    "/audit",
)


@pytest.fixture
def dist(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A build as Vite leaves it, with files beside it that must never be served."""
    root = tmp_path / "dist"
    (root / "assets").mkdir(parents=True)
    (root / "index.html").write_text(INDEX)
    (root / "assets" / "app-abc.js").write_text(SCRIPT)
    (root / "pyproject.toml").write_text(SECRET)
    (tmp_path / "pyproject.toml").write_text(SECRET)
    (root / "assets" / "escape.js").symlink_to(tmp_path / "pyproject.toml")
    monkeypatch.setenv(web.DIST_ENV, str(root))
    return root


@pytest.fixture
def no_build(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    root = tmp_path / "dist"
    root.mkdir()
    monkeypatch.setenv(web.DIST_ENV, str(root))
    return root


def _assert_ui_headers(response: httpx.Response, csp: str = CSP) -> None:
    assert response.headers["content-security-policy"] == csp
    assert response.headers["x-content-type-options"] == "nosniff"
    assert response.headers["referrer-policy"] == "no-referrer"


async def _raw_get(app: Any, path: str) -> tuple[int, bytes]:
    """A GET with exactly this path, as a client that does not normalise it would send."""
    messages: list[dict[str, Any]] = []

    async def receive() -> dict[str, Any]:
        return {"type": "http.request", "body": b"", "more_body": False}

    async def send(message: dict[str, Any]) -> None:
        messages.append(message)

    scope = {
        "type": "http",
        "asgi": {"version": "3.0"},
        "http_version": "1.1",
        "method": "GET",
        "scheme": "http",
        "path": path,
        "raw_path": path.encode(),
        "root_path": "",
        "query_string": b"",
        "headers": [(b"host", b"enclii.test")],
        "client": ("127.0.0.1", 1234),
        "server": ("enclii.test", 80),
    }
    await app(scope, receive, send)
    status = next(m["status"] for m in messages if m["type"] == "http.response.start")
    body = b"".join(m.get("body", b"") for m in messages if m["type"] == "http.response.body")
    return status, body


# -- the build ---------------------------------------------------------------------------


def test_dist_dir_needs_an_index(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(web.DIST_ENV, str(tmp_path))
    assert web.dist_dir() is None
    (tmp_path / "index.html").write_text(INDEX)
    assert web.dist_dir() == tmp_path
    monkeypatch.delenv(web.DIST_ENV)
    default = Path(web.__file__).resolve().parent / "dist"
    assert web.dist_dir() == (default if (default / "index.html").is_file() else None)


@pytest.mark.parametrize("path", DEEP_LINKS)
async def test_every_page_path_is_the_app(api: Api, dist: Path, path: str) -> None:
    response = await api.client.get(path, headers={"accept": "text/html"})  # no token
    assert response.status_code == 200, response.text
    assert response.text == INDEX
    assert response.headers["content-type"].startswith("text/html")
    assert response.headers["cache-control"] == "no-cache"
    _assert_ui_headers(response)


async def test_head_and_revalidation_of_the_app(api: Api, dist: Path) -> None:
    head = await api.client.head("/projects/shop")
    assert head.status_code == 200
    assert head.content == b""
    assert head.headers["cache-control"] == "no-cache"
    first = await api.client.get("/")
    etag = first.headers["etag"]
    again = await api.client.get("/", headers={"if-none-match": etag})
    assert again.status_code == 304
    assert again.content == b""
    assert again.headers["cache-control"] == "no-cache"


async def test_assets_are_cached_for_good(api: Api, dist: Path) -> None:
    response = await api.client.get("/assets/app-abc.js")
    assert response.status_code == 200
    assert response.text == SCRIPT
    assert "javascript" in response.headers["content-type"]
    assert response.headers["cache-control"] == "public, max-age=31536000, immutable"
    assert response.headers["x-content-type-options"] == "nosniff"
    head = await api.client.head("/assets/app-abc.js")
    assert (head.status_code, head.content) == (200, b"")
    assert head.headers["cache-control"] == "public, max-age=31536000, immutable"


async def test_assets_are_sent_gzipped_to_a_browser_that_accepts_it(api: Api, dist: Path) -> None:
    raw = await api.client.get("/assets/app-abc.js", headers={"accept-encoding": "identity"})
    assert "content-encoding" not in raw.headers
    assert raw.content == SCRIPT.encode()
    zipped = await api.client.get("/assets/app-abc.js", headers={"accept-encoding": "gzip, br"})
    assert zipped.headers["content-encoding"] == "gzip"
    assert zipped.headers["vary"] == "accept-encoding"
    assert zipped.content == SCRIPT.encode()  # httpx decodes it
    assert zipped.headers["cache-control"] == "public, max-age=31536000, immutable"
    # Two representations, two validators: a cache never answers one with the other.
    assert zipped.headers["etag"] != raw.headers["etag"]


async def test_a_missing_asset_is_a_404_not_the_app(api: Api, dist: Path) -> None:
    for path in ("/assets/app-zzz.js", "/assets/", "/assets/nested/deeper.css"):
        response = await api.client.get(path)
        assert response.status_code == 404, path
        assert "immutable" not in response.headers.get("cache-control", "")


async def test_nothing_outside_the_assets_is_served(
    api: Api, app_state: AppState, dist: Path
) -> None:
    # A client that normalises the path asks for /pyproject.toml: a page of the app.
    normalised = await api.client.get("/assets/../pyproject.toml")
    assert normalised.text == INDEX
    # One that does not, or hides the dots, reaches the asset folder's guard.
    for path in ("/assets/..%2Fpyproject.toml", "/assets/%2E%2E/pyproject.toml"):
        response = await api.client.get(path)
        assert response.status_code == 404, path
        assert "[project]" not in response.text
    app = create_app(app_state)
    for path in (
        "/assets/../pyproject.toml",
        "/assets/../../pyproject.toml",
        "/assets/../index.html",
        "/assets/escape.js",  # a symlink out of the folder
    ):
        status, body = await _raw_get(app, path)
        assert status == 404, path
        assert b"[project]" not in body and b"<html>" not in body


async def test_api_paths_are_never_the_app(api: Api, dist: Path) -> None:
    for path in ("/healthz/x", "/readyz/x", "/graphql/x", "/audit/x", "/ui/config.json/x"):
        response = await api.client.get(path, headers=api.headers)
        assert response.status_code == 404, path
        assert response.text != INDEX
    # Below /audit/ and /graphql, the gate still asks for a token first.
    for path in ("/audit/x", "/graphql/x", "/audit/export.ndjson"):
        assert (await api.client.get(path)).status_code == 401, path


async def test_graphiql_keeps_its_own_page_without_the_ui_policy(api: Api, dist: Path) -> None:
    page = await api.client.get("/graphql", headers={"accept": "text/html"})
    assert page.status_code == 200
    assert "graphiql" in page.text.lower()
    assert "content-security-policy" not in page.headers


# -- no build yet ----------------------------------------------------------------------------


@pytest.mark.parametrize("path", ("/", "/projects/shop/x"))
async def test_without_a_build_pages_say_how_to_build_it(
    api: Api, no_build: Path, path: str
) -> None:
    response = await api.client.get(path, headers={"accept": "text/html"})
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/html")
    assert response.headers["cache-control"] == "no-cache"
    _assert_ui_headers(response)
    page = response.text
    assert "the web UI is not built" in page
    assert "npm --prefix web ci &amp;&amp; npm --prefix web run build" in page
    assert "reload this page" in page
    assert 'href="/graphql"' in page
    assert "curl -s http://enclii.test/graphql" in page  # where this browser reached us
    assert "{{origin}}" not in page
    assert (await api.client.get("/assets/app-abc.js")).status_code == 404


def test_the_origin_in_the_page_is_escaped() -> None:
    page = web.placeholder_page('http://x"><script>alert(1)</script>')
    assert "<script>" not in page
    assert "http://x&quot;&gt;&lt;script&gt;alert(1)&lt;/script&gt;/graphql" in page


async def test_a_build_made_while_serving_is_picked_up(api: Api, no_build: Path) -> None:
    assert "not built" in (await api.client.get("/")).text
    (no_build / "assets").mkdir()
    (no_build / "assets" / "app-abc.js").write_text(SCRIPT)
    (no_build / "index.html").write_text(INDEX)
    assert (await api.client.get("/")).text == INDEX
    assert (await api.client.get("/assets/app-abc.js")).text == SCRIPT


# -- /ui/config.json -------------------------------------------------------------------------


@pytest.fixture
async def with_oidc(app_state: AppState) -> AsyncIterator[Any]:
    """Call ``with_oidc(config)`` for a client of an app whose UI is told ``config``."""
    states: list[AppState] = []
    clients: list[httpx.AsyncClient] = []

    def make(config: OidcConfig) -> httpx.AsyncClient:
        state = dataclasses.replace(app_state, oidc=config)
        states.append(state)
        client = httpx.AsyncClient(
            transport=httpx.ASGITransport(app=create_app(state)), base_url="http://enclii.test"
        )
        clients.append(client)
        return client

    yield make
    for client in clients:
        await client.aclose()
    for state in states:
        await state.connections.close()


async def test_config_without_oidc(api: Api) -> None:
    for headers in ({}, {"authorization": "Bearer nonsense"}):
        response = await api.client.get("/ui/config.json", headers=headers)
        assert response.status_code == 200
        assert response.json() == {"oidc": None, "version": metadata.version("enclii")}
        assert response.headers["cache-control"] == "no-cache"
        assert "ratelimit-remaining" not in response.headers


async def test_config_with_oidc(with_oidc: Any, dist: Path) -> None:
    issuer = "https://login.example.test:8443/realms/eng"
    client = with_oidc(OidcConfig(issuer=issuer, audience="enclii"))
    response = await client.get("/ui/config.json")
    assert response.status_code == 200
    assert response.json() == {
        "oidc": {"issuer": issuer, "clientId": "enclii", "scopes": "openid profile email"},
        "version": metadata.version("enclii"),
    }
    # The UI may fetch the issuer's discovery document and tokens: its origin, no more.
    page = await client.get("/projects/shop")
    _assert_ui_headers(
        page,
        CSP.replace(
            "connect-src 'self' ws: wss:",
            "connect-src 'self' ws: wss: https://login.example.test:8443",
        ),
    )


async def test_config_with_a_client_id_of_its_own(with_oidc: Any) -> None:
    client = with_oidc(
        OidcConfig(
            issuer="https://login.example.test", audience="enclii-api", client_id="enclii-web"
        )
    )
    oidc = (await client.get("/ui/config.json")).json()["oidc"]
    assert oidc == {
        "issuer": "https://login.example.test",
        "clientId": "enclii-web",
        "scopes": "openid profile email",
    }


def test_the_package_version_is_reported() -> None:
    assert package_version() == metadata.version("enclii")


async def test_csp_lets_sign_in_reach_a_token_endpoint_on_another_host(
    with_oidc: Any, dist: Path
) -> None:
    """Providers such as Google serve tokens from another host than the issuer's; the CSP
    follows the discovery document rather than blocking the UI's code exchange."""

    class Discovery(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            body = json.dumps(
                {"issuer": issuer, "token_endpoint": "https://oauth2.tokens.test/token"}
            ).encode()
            self.send_response(200)
            self.send_header("content-type", "application/json")
            self.send_header("content-length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, format: str, *args: Any) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Discovery)
    issuer = f"http://127.0.0.1:{server.server_port}"
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        client = with_oidc(OidcConfig(issuer=issuer, audience="enclii"))
        page = await client.get("/projects/shop")
    finally:
        server.shutdown()
        server.server_close()
    connect = next(
        part
        for part in page.headers["content-security-policy"].split("; ")
        if part.startswith("connect-src")
    )
    assert connect == f"connect-src 'self' ws: wss: {issuer} https://oauth2.tokens.test"
