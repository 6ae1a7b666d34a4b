"""Serving the web UI: its build, its configuration, and its pages for every deep link.

``/assets/…`` are Vite's hashed files, cached for a year (a new build has new names).
Every other page path answers with ``index.html``, never cached without revalidation, so a
deep link (``/projects/shop/…``) loads the app and the app routes in the browser. Until the UI
is built those paths answer with a page that says how to build it. None of this needs a
token: the pages hold no data, and the UI signs in from the browser with what
``/ui/config.json`` tells it.
"""

from __future__ import annotations

import asyncio
import contextlib
import gzip
import logging
import os
import time
from collections.abc import Awaitable, Callable
from functools import lru_cache
from importlib import metadata
from pathlib import Path
from typing import Any, Final
from urllib.parse import urlsplit

from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import FileResponse, HTMLResponse, JSONResponse, Response
from starlette.staticfiles import StaticFiles
from starlette.types import Receive, Scope, Send

import web
from resolvers.identity.oidc import OidcConfig, fetch_discovery

log = logging.getLogger(__name__)

CONFIG_PATH: Final = "/ui/config.json"
ASSETS_PATH: Final = "/assets"
OIDC_SCOPES: Final = "openid profile email"
IMMUTABLE: Final = "public, max-age=31536000, immutable"
# Paths of the API itself: a GET there that matches no route is a 404, never the UI. (The
# UI has a page at /audit; the API's audit paths are below /audit/.)
API_PREFIXES: Final = ("/graphql", "/healthz", "/readyz", "/audit/", "/assets/", CONFIG_PATH)


def package_version() -> str:
    try:
        return metadata.version("enclii")
    except metadata.PackageNotFoundError:  # running from a checkout that was never installed
        return "0+unknown"


def ui_config(oidc: OidcConfig | None) -> dict[str, Any]:
    """What the UI needs before it can sign in: where, and as which client."""
    return {
        "oidc": None
        if oidc is None
        else {"issuer": oidc.issuer, "clientId": oidc.ui_client_id, "scopes": OIDC_SCOPES},
        "version": package_version(),
    }


def _origin(url: str) -> str | None:
    parts = urlsplit(url)
    return f"{parts.scheme}://{parts.netloc}" if parts.scheme and parts.netloc else None


class SignInOrigins:
    """Where the UI's sign-in connects: the issuer (discovery) and its token endpoint, which
    many providers serve from another host (Google: oauth2.googleapis.com). Read from the
    discovery document once; while the issuer cannot be reached, only its own origin, and
    another look a minute later. A page never waits more than ``WAIT_S`` for the lookup: it
    goes on in the background, and the next page has its answer."""

    RETRY_S: Final = 60.0
    WAIT_S: Final = 2.0

    def __init__(self, oidc: OidcConfig | None) -> None:
        self._issuer = oidc.issuer if oidc is not None else None
        self._found: tuple[str, ...] | None = None
        self._next_try = 0.0
        self._lookup: asyncio.Task[None] | None = None

    def fallback(self) -> tuple[str, ...]:
        origin = _origin(self._issuer) if self._issuer else None
        return (origin,) if origin else ()

    async def origins(self) -> tuple[str, ...]:
        if self._issuer is None or self._found is not None:
            return self._found or ()
        if self._lookup is None and time.monotonic() >= self._next_try:
            self._next_try = time.monotonic() + self.RETRY_S
            self._lookup = asyncio.create_task(self._discover(self._issuer))
        if self._lookup is not None:
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(self.WAIT_S):
                    await asyncio.shield(self._lookup)
        return self._found or self.fallback()

    async def _discover(self, issuer: str) -> None:
        try:
            document = await asyncio.to_thread(fetch_discovery, issuer)
        except Exception as exc:
            log.warning("OIDC discovery for the UI's sign-in failed: %s", exc)
            return
        finally:
            self._lookup = None
        token = document.get("token_endpoint")
        extra = _origin(token) if isinstance(token, str) else None
        self._found = tuple(dict.fromkeys([*self.fallback(), *([extra] if extra else [])]))


def content_security_policy(sign_in_origins: tuple[str, ...] = ()) -> str:
    # The UI talks to this server (HTTP and websockets) and, to sign in, to the issuer.
    connect = ["'self'", "ws:", "wss:", *sign_in_origins]
    return "; ".join(
        [
            "default-src 'self'",
            "script-src 'self'",
            "style-src 'self' 'unsafe-inline'",
            "img-src 'self' data:",
            f"connect-src {' '.join(connect)}",
            "frame-ancestors 'none'",
            "base-uri 'none'",
        ]
    )


def security_headers(sign_in_origins: tuple[str, ...] = ()) -> dict[str, str]:
    return {
        "content-security-policy": content_security_policy(sign_in_origins),
        "x-content-type-options": "nosniff",
        "referrer-policy": "no-referrer",
    }


# Text assets shrink to a quarter gzipped (the app's script: 207 KB to 50 KB); images and
# fonts are compressed already.
COMPRESSIBLE: Final = frozenset({".js", ".css", ".svg", ".json", ".map", ".html", ".txt"})


@lru_cache(maxsize=64)
def _gzipped(path: str, mtime_ns: int, size: int) -> bytes:
    # Keyed by mtime and size too, so a rebuilt file is compressed again, once.
    return gzip.compress(Path(path).read_bytes(), compresslevel=9, mtime=0)


def _accepts_gzip(scope: Scope) -> bool:
    for name, value in scope.get("headers", []):
        if name == b"accept-encoding":
            codings = [c.split(b";")[0].strip() for c in value.lower().split(b",")]
            return b"gzip" in codings or b"*" in codings
    return False


class _ImmutableFiles(StaticFiles):
    def file_response(
        self,
        full_path: str | os.PathLike[str],
        stat_result: os.stat_result,
        scope: Scope,
        status_code: int = 200,
    ) -> Response:
        response = super().file_response(full_path, stat_result, scope, status_code)
        response.headers["cache-control"] = IMMUTABLE
        response.headers["x-content-type-options"] = "nosniff"
        response.headers["vary"] = "accept-encoding"
        if (
            isinstance(response, FileResponse)
            and Path(full_path).suffix in COMPRESSIBLE
            and _accepts_gzip(scope)
        ):
            body = _gzipped(str(full_path), stat_result.st_mtime_ns, stat_result.st_size)
            headers = {k: v for k, v in response.headers.items() if k != "content-length"}
            headers["content-encoding"] = "gzip"
            # The compressed variant is another representation: its own validator.
            headers["etag"] = headers.get("etag", '""').rstrip('"') + '-gzip"'
            return Response(body, status_code=status_code, headers=headers)
        return response

    async def check_config(self) -> None:
        # A missing folder is a build without assets, or none yet: 404s, not errors.
        return None


@lru_cache(maxsize=4)
def _files(directory: Path) -> _ImmutableFiles:
    return _ImmutableFiles(directory=directory, check_dir=False)


class Assets:
    """``/assets/…`` from the current build. StaticFiles refuses paths that leave the folder
    (``..``, symlinks out of it) and answers conditional requests."""

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        dist = web.dist_dir()
        if dist is None:
            raise HTTPException(status_code=404)
        await _files(dist / "assets")(scope, receive, send)


def _not_modified(request: Request, response: Response) -> bool:
    given = request.headers.get("if-none-match")
    if given is None:
        return False
    etag = response.headers.get("etag")
    return etag is not None and etag in [t.strip().removeprefix("W/") for t in given.split(",")]


Endpoint = Callable[[Request], Awaitable[Response]]


def page_endpoint(oidc: OidcConfig | None) -> Endpoint:
    sign_in = SignInOrigins(oidc)

    async def page(request: Request) -> Response:
        if request.scope["path"].startswith(API_PREFIXES):
            raise HTTPException(status_code=404)
        headers = {**security_headers(await sign_in.origins()), "cache-control": "no-cache"}
        dist = web.dist_dir()
        index = dist / "index.html" if dist is not None else None
        try:
            found = index.stat() if index is not None else None
        except FileNotFoundError:  # Vite empties dist/ before it writes a new build
            found = None
        if index is None or found is None:
            origin = str(request.base_url).rstrip("/")
            return HTMLResponse(web.placeholder_page(origin), headers=headers)
        response = FileResponse(index, media_type="text/html", headers=headers, stat_result=found)
        if _not_modified(request, response):
            return Response(status_code=304, headers={**headers, "etag": response.headers["etag"]})
        return response

    return page


def config_endpoint(oidc: OidcConfig | None) -> Endpoint:
    body = ui_config(oidc)

    async def config(_request: Request) -> Response:
        # no-cache: an issuer changed by a restart must reach the next page load.
        return JSONResponse(body, headers={"cache-control": "no-cache"})

    return config
