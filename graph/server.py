"""Running Enclii: migrate, open the store, start the event hub, serve HTTP and websockets.

SIGTERM (or Ctrl-C) first ends every subscription cleanly, so clients see "complete"
rather than a dropped socket, then stops uvicorn; a second signal stops at once.
"""

from __future__ import annotations

import asyncio
import contextlib
import gc
import json
import logging
import os
import sys
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path
from types import FrameType
from typing import Final, Protocol, TextIO

import uvicorn

import web
from graph.app import AppState, create_app
from resolvers.bootstrap import bootstrap
from resolvers.identity.authenticate import Authenticator
from resolvers.identity.oidc import OidcConfig, OidcVerifier
from resolvers.identity.ratelimit import DEFAULT_BURST, DEFAULT_RATE_PER_MINUTE, RateLimiter
from store.blobs import BlobStore
from store.db import Store, normalise_url, sqlite_url_for
from store.hub import EventHub
from store.migrate import upgrade_async

log = logging.getLogger("enclii.server")

DEFAULT_HOST: Final = "127.0.0.1"
DEFAULT_PORT: Final = 8000
DEFAULT_ROUTER_PORT: Final = 8080
DRAIN_DEADLINE_S: Final = 5.0
GRACEFUL_SHUTDOWN_S: Final = 10
BOOTSTRAP_TOKEN_FILE: Final = "bootstrap-token"
SERVER_FILE: Final = "server.json"  # where this server listens, for the CLI (client/config.py)
GC_FULL_COLLECTION_EVERY: Final = 1000  # generation-1 collections (CPython default: 10)


def default_data_dir() -> Path:
    return Path(os.environ.get("ENCLII_DATA_DIR", "~/.enclii")).expanduser()


@dataclass(frozen=True)
class ServerConfig:
    data_dir: Path
    host: str = DEFAULT_HOST
    port: int = DEFAULT_PORT
    router_port: int = DEFAULT_ROUTER_PORT
    database_url: str | None = None
    log_level: str = "info"
    oidc: OidcConfig | None = None
    rate_per_minute: float = DEFAULT_RATE_PER_MINUTE
    rate_burst: int = DEFAULT_BURST

    @property
    def store_url(self) -> str:
        return self.database_url or sqlite_url_for(self.data_dir)


class _Server(uvicorn.Server):
    def __init__(self, config: uvicorn.Config, drain: Callable[[], Awaitable[None]]) -> None:
        super().__init__(config)
        self._drain = drain
        self._draining = False
        self._loop: asyncio.AbstractEventLoop | None = None

    async def serve(self, sockets: list[object] | None = None) -> None:  # type: ignore[override]
        self._loop = asyncio.get_running_loop()
        await super().serve(sockets)  # type: ignore[arg-type]

    def handle_exit(self, sig: int, frame: FrameType | None) -> None:
        # Not uvicorn's handler: it re-raises the signal once shut down, which would kill
        # the process before the store is closed. A shutdown we asked for exits 0.
        if self._draining or self._loop is None:
            self._stop(force=self.should_exit)
            return
        self._draining = True
        loop = self._loop
        loop.call_soon_threadsafe(lambda: loop.create_task(self._drain_then_exit()))

    def _stop(self, *, force: bool) -> None:
        if force:
            self.force_exit = True
        self.should_exit = True

    async def _drain_then_exit(self) -> None:
        try:
            async with asyncio.timeout(DRAIN_DEADLINE_S):
                await self._drain()
        except Exception:
            log.exception("closing subscriptions failed; stopping anyway")
        finally:
            self._stop(force=False)


def _tune_gc() -> None:
    """Keep the cyclic collector's full sweeps out of the latency path.

    A server holding many subscriptions has hundreds of thousands of long-lived objects;
    each full (generation 2) collection walks all of them and stalls every response for
    100-300 ms (measured with bench/events_fanout.py). Startup objects are frozen out of
    collection altogether, and full collections run a hundred times less often; young
    generations keep their defaults, so short-lived cycles are still freed promptly.
    """
    gc.freeze()
    young, middle, _ = gc.get_threshold()
    gc.set_threshold(young, middle, GC_FULL_COLLECTION_EVERY)


def _prepare_data_dir(path: Path) -> None:
    path.mkdir(parents=True, exist_ok=True)
    # It holds the bootstrap token (and, later, the platform key): owner-only.
    path.chmod(0o700)


def token_path(data_dir: Path) -> Path:
    return data_dir / BOOTSTRAP_TOKEN_FILE


def _token_writer(data_dir: Path) -> Callable[[str], None]:
    def write(secret: str) -> None:
        # Written whole and owner-only before it is renamed into place: no moment where a
        # partial token or a world-readable file exists.
        target = token_path(data_dir)
        temporary = target.with_suffix(".tmp")
        with contextlib.suppress(FileNotFoundError):
            temporary.unlink()
        fd = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "w") as handle:
            handle.write(secret + "\n")
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(temporary, target)

    return write


def _banner(config: ServerConfig, port: int, store: Store, out: TextIO, first: bool) -> None:
    base = f"http://{config.host}:{port}"
    store_text = store.url.render_as_string(hide_password=True)
    token_file = token_path(config.data_dir)
    lines = [
        "Enclii is running — Clear to deploy",
        f"  API       {base}/graphql   (GraphiQL in a browser)",
        f"  UI        {base}/"
        + (
            ""
            if web.dist_dir()
            else "   (not built: npm --prefix web ci && npm --prefix web run build)"
        ),
        f"  Router    http://{config.host}:{config.router_port}   "
        f"(each service at http://<service>.<env>.<project>.localhost:{config.router_port})",
        f"  Health    {base}/healthz   {base}/readyz",
        f"  Store     {store_text}",
        f"  Data dir  {config.data_dir}",
    ]
    if first:
        lines.append(f"  Token     the Owner's token is in {token_file} (mode 0600)")
    elif token_file.exists():
        lines.append(f"  Token     {token_file}")
    if config.oidc is not None:
        oidc = config.oidc
        client = "" if oidc.client_id is None else f", UI client {oidc.client_id}"
        lines.append(f"  OIDC      {oidc.issuer} (audience {oidc.audience}{client})")
    lines.append("  Stop with Ctrl-C or SIGTERM.")
    print("\n".join(lines), file=out, flush=True)


def _client_host(host: str) -> str:
    if host in ("0.0.0.0", ""):
        return "127.0.0.1"
    if host == "::":
        return "[::1]"
    return f"[{host}]" if ":" in host else host


def _announce(config: ServerConfig, port: int) -> None:
    """Tell the CLI on this machine where we are: ``DATA_DIR/server.json`` (read by
    client/config.py: ``discover``), written whole so a reader never sees half of it."""
    host = _client_host(config.host)
    record = {
        "pid": os.getpid(),
        "api": f"http://{host}:{port}/graphql",
        "router": f"http://{host}:{config.router_port}",
    }
    path = config.data_dir / SERVER_FILE
    temporary = path.with_suffix(".tmp")
    temporary.write_text(json.dumps(record) + "\n")
    os.replace(temporary, path)


def _withdraw(config: ServerConfig) -> None:
    """Remove server.json if it is still ours (another server may have started since)."""
    path = config.data_dir / SERVER_FILE
    with contextlib.suppress(OSError, ValueError):
        if json.loads(path.read_text()).get("pid") == os.getpid():
            path.unlink()


class Background(Protocol):
    """Something the server runs beside the API (the data plane's controllers)."""

    async def stop(self) -> None: ...


PlaneFactory = Callable[[Store, EventHub, Path], Awaitable[Background]]


async def serve(
    config: ServerConfig, *, out: TextIO = sys.stdout, plane: PlaneFactory | None = None
) -> None:
    normalise_url(config.store_url)  # refuse a bad URL before creating anything
    _prepare_data_dir(config.data_dir)
    await upgrade_async(config.store_url)
    store = Store(config.store_url)
    hub = EventHub(store)
    background: Background | None = None
    try:
        await hub.start()
        started = await bootstrap(store, save_token=_token_writer(config.data_dir))
        authenticator = Authenticator(
            store,
            started.owner.account_id,
            OidcVerifier(config.oidc) if config.oidc is not None else None,
        )
        state = AppState(
            store=store,
            hub=hub,
            authenticator=authenticator,
            limiter=RateLimiter(config.rate_per_minute, config.rate_burst),
            blobs=BlobStore(config.data_dir / "blobs"),
            oidc=config.oidc,
        )
        background = await plane(store, hub, config.data_dir) if plane is not None else None
        app = create_app(state)
        uv_config = uvicorn.Config(
            app,
            host=config.host,
            port=config.port,
            log_level=config.log_level,
            access_log=False,
            lifespan="off",
            timeout_graceful_shutdown=GRACEFUL_SHUTDOWN_S,
            ws_ping_interval=20,
            ws_ping_timeout=20,
            # GraphQL messages are small; compressing each costs more CPU than it saves
            # bytes, and fan-out to many subscribers is CPU-bound.
            ws_per_message_deflate=False,
        )

        async def drain() -> None:
            await hub.close()
            await state.connections.close()

        server = _Server(uv_config, drain=drain)
        task = asyncio.create_task(server.serve())
        # uvicorn offers a flag, not an event, for "listening".
        while not server.started and not task.done():  # noqa: ASYNC110
            await asyncio.sleep(0.02)
        if server.started:
            port = server.servers[0].sockets[0].getsockname()[1]
            try:
                _announce(config, port)
            except OSError as exc:  # the CLI's convenience; never a reason not to serve
                log.warning("could not write %s: %s", config.data_dir / SERVER_FILE, exc)
            _banner(config, port, store, out, first=started.token is not None)
            _tune_gc()
        await task
        await authenticator.close()
    finally:
        _withdraw(config)
        if background is not None:
            await background.stop()
        await hub.close()
        await store.close()
