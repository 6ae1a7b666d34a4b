"""Enclii's own reverse proxy: the one door to every service of the local data plane.

It runs as its own OS process on the router port (``--router-port``, default 8080), apart
from the control plane, so that services keep answering while the control plane restarts:
what it needs to route comes from ``DATA_DIR/router/routes.json`` (``routing.py``), which it
re-reads when the file changes and which outlives any control plane.

A request goes like this:

- ``/.enclii/router`` on any host is the router's own: JSON with its pid and the routing
  table it loaded (how its launcher tells that it is up, and which table it serves).
- Otherwise the Host header and the path pick a route (``RoutingTable.match``). Among the
  route's live backends (weighted releases with a ready replica) a smooth weighted
  round-robin picks one — nginx's algorithm: deterministic and evenly interleaved, so an
  80/20 split gives exactly 80 and 20 of every 100 requests — then plain round-robin picks
  one of that release's replicas.
- Bodies stream both ways as they arrive; nothing is buffered whole, so uploads of any size,
  Server-Sent Events and long polls pass through. Hop-by-hop headers are dropped;
  ``X-Forwarded-For/-Host/-Proto`` are set; ``X-Request-Id`` is passed on or created; the
  response says which release answered in ``X-Enclii-Release``. The Host header is passed
  on unchanged, as Railway does, so an application can build its own URLs.
- ``Upgrade: websocket`` is relayed message by message, close codes included, until either
  side closes.
- Failures are answered in words a person can act on (plain text, or JSON for clients that
  accept it): 404 naming the hosts that are routed, 503 with ``Retry-After`` when a route
  has no ready replica, 502 naming the service, release and replica that failed, 504 when a
  replica accepted a request but said nothing for the idle timeout. A replica that refuses
  the connection is not the end: the request goes once to the release's next replica, as
  long as none of its body has been sent (and, for errors after connecting, only when the
  method is idempotent).

Every wait has a deadline: connecting to a replica 5 s; a replica or a client that sends
nothing for the idle timeout (300 s) ends the exchange; there is no total timeout, because
a stream may legitimately last hours. Websockets are pinged every 30 s.

Metrics: each request is tallied for its (service, release) with its status and its latency
— the time from the request's arrival to the moment the response headers go out. Not the
time to the last byte: a stream's length says nothing about the health of a release, and
time-to-headers is what a canary comparison needs. Every ``--flush-interval`` seconds the
tallies are added to the store's 10-second windows and hourly rollups in one transaction; a
failed flush keeps them for the next (nothing lost, nothing counted twice), and SIGTERM
flushes once more after the last request. A 503 for a route whose releases have no ready
replica counts against its heaviest weighted release, so a release that cannot start shows
as errors, not as silence.

SIGTERM stops accepting connections, lets requests in flight finish (10 s at most; open
websockets are told 1001 "going away"), flushes and exits 0.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import errno
import json
import logging
import os
import signal
import sys
import time
from collections.abc import AsyncIterator, Callable, Iterable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Final

import aiohttp
import psutil
from aiohttp import WSMsgType, hdrs, web
from multidict import CIMultiDict
from sqlalchemy.exc import IntegrityError
from yarl import URL

from reconcile.local.routing import (
    TABLE_FILE,
    Backend,
    RouteEntry,
    RoutingTable,
    normalise_host,
    read_table,
)
from store.aio import cancel_and_wait
from store.db import Store
from store.metrics import WINDOW_S, Tally, add_windows

log = logging.getLogger("enclii.router")

ROUTER_DIR: Final = "router"  # under DATA_DIR: the table, state.json, router.log
STATE_FILE: Final = "state.json"
LOG_FILE: Final = "router.log"
STATUS_PATH: Final = "/.enclii/router"
STATUS_PREFIX: Final = STATUS_PATH + "/"
DEFAULT_PORT: Final = 8080
DEFAULT_FLUSH_INTERVAL_S: Final = 1.0  # canary checks read what the router saw a second ago
DATABASE_URL_ENV: Final = "ENCLII_ROUTER_DATABASE_URL"
EXIT_PORT_IN_USE: Final = 3  # the launcher turns this exit code into a --router-port hint

RELEASE_HEADER: Final = "X-Enclii-Release"
REQUEST_ID_HEADER: Final = "X-Request-Id"
RELOAD_POLL_S: Final = 0.1
CONNECT_TIMEOUT_S: Final = 5.0
IDLE_TIMEOUT_S: Final = 300.0
DRAIN_S: Final = 10.0
FLUSH_DEADLINE_S: Final = 30.0
# Draining (10 s) and the last flush fit in the launcher's grace period (15 s) before SIGKILL.
FINAL_FLUSH_DEADLINE_S: Final = 4.0
WS_HEARTBEAT_S: Final = 30.0
WS_CLOSE_TIMEOUT_S: Final = 10.0
RETRY_AFTER_S: Final = 5
HOSTS_SHOWN: Final = 5
MAX_REQUEST_ID: Final = 200
# A (window, service, release) whose flush fails on its own this often is dropped: its
# service was deleted, and keeping it would hold every other tally back forever.
DROP_AFTER_FAILURES: Final = 5

HOP_BY_HOP: Final = frozenset(
    {
        "connection",
        "keep-alive",
        "proxy-authenticate",
        "proxy-authorization",
        "proxy-connection",
        "te",
        "trailer",
        "trailers",
        "transfer-encoding",
        "upgrade",
    }
)
# Set by the router itself, never trusted from a client (X-Forwarded-For is extended).
FORWARDED: Final = frozenset({"x-forwarded-for", "x-forwarded-host", "x-forwarded-proto"})
# The websocket handshake is made afresh with the replica.
HANDSHAKE: Final = frozenset(
    {
        "sec-websocket-key",
        "sec-websocket-version",
        "sec-websocket-extensions",
        "sec-websocket-protocol",
        "sec-websocket-accept",
    }
)
# "Expect: 100-continue" is answered by the router when it starts reading the body.
REQUEST_ONLY: Final = frozenset({"expect"})
IDEMPOTENT: Final = frozenset({"GET", "HEAD", "OPTIONS", "PUT", "DELETE", "TRACE"})
SENDABLE_CLOSE_CODES: Final = frozenset({1000, 1001, 1002, 1003, *range(1007, 1015)})


@dataclass(frozen=True)
class RouterConfig:
    data_dir: Path
    port: int = DEFAULT_PORT
    host: str = "127.0.0.1"
    database_url: str | None = None
    flush_interval_s: float = DEFAULT_FLUSH_INTERVAL_S
    drain_s: float = DRAIN_S
    idle_timeout_s: float = IDLE_TIMEOUT_S

    @property
    def home(self) -> Path:
        return self.data_dir / ROUTER_DIR


class PortInUse(Exception):
    """Another program listens on the router port."""


# -- choosing a replica -----------------------------------------------------------------------


@dataclass(slots=True)
class RouteState:
    """Where one route's traffic goes next: smooth weighted round-robin over its live
    backends, then plain round-robin over the chosen backend's replicas."""

    live: list[Backend]
    current: list[int]
    total: int
    next_upstream: dict[str, int] = field(default_factory=dict)

    @classmethod
    def of(cls, route: RouteEntry) -> RouteState:
        live = route.live_backends()
        return cls(live, [0] * len(live), sum(b.weight for b in live))

    def signature(self) -> tuple[tuple[str, int], ...]:
        return tuple((b.release_id, b.weight) for b in self.live)

    def inherit(self, previous: RouteState) -> None:
        """Carry the rotation over a reload that kept the same split, so a table rewritten
        for an unrelated change does not restart the sequence."""
        self.current = list(previous.current)
        self.next_upstream = dict(previous.next_upstream)

    def pick(self) -> Backend | None:
        live = self.live
        if len(live) <= 1:
            return live[0] if live else None
        current = self.current
        best = 0
        for i, backend in enumerate(live):
            current[i] += backend.weight
            if current[i] > current[best]:
                best = i
        current[best] -= self.total
        return live[best]

    def upstreams(self, backend: Backend) -> tuple[str, ...]:
        """The replica to try, then the one to retry on: the next two in the rotation."""
        replicas = backend.upstreams
        count = len(replicas)
        start = self.next_upstream.get(backend.release_id, 0) % count
        self.next_upstream[backend.release_id] = start + 1
        # With one replica the retry goes to it again: worth it for a kept-alive connection
        # it had just closed, and a refused connection costs nothing to try twice.
        return replicas[start], replicas[(start + 1) % count]


def blamed_release(route: RouteEntry) -> str | None:
    """The release a 503 counts against: the heaviest weighted one, if any."""
    weighted = [b for b in route.backends if b.weight > 0]
    return max(weighted, key=lambda b: b.weight).release_id if weighted else None


def _route_key(route: RouteEntry) -> tuple[str, str]:
    return normalise_host(route.host), route.path


@dataclass(frozen=True)
class Snapshot:
    """One loaded table with the rotation state of each of its routes (by the identity of
    the table's own entries, which live exactly as long as the snapshot)."""

    table: RoutingTable
    states: dict[int, RouteState]
    hosts: tuple[str, ...]

    @classmethod
    def build(cls, table: RoutingTable, previous: Snapshot | None = None) -> Snapshot:
        before: dict[tuple[str, str], RouteState] = {}
        if previous is not None:
            before = {_route_key(r): previous.states[id(r)] for r in previous.table.routes}
        states: dict[int, RouteState] = {}
        for route in table.routes:
            state = RouteState.of(route)
            old = before.get(_route_key(route))
            if old is not None and old.signature() == state.signature():
                state.inherit(old)
            states[id(route)] = state
        hosts = tuple(sorted({normalise_host(r.host) for r in table.routes}))
        return cls(table, states, hosts)


class TableWatcher:
    """The routing table as last read whole from ``routes.json``.

    The file is polled with ``os.stat`` (inode, size, mtime): the control plane replaces it
    atomically, so any change shows as a new inode. A file that does not parse leaves the
    previous table in place (and says why in ``error``); a file that disappears does too,
    since routing on with the last table is the point of having a file.
    """

    def __init__(self, directory: Path, poll_s: float = RELOAD_POLL_S) -> None:
        self.path = directory / TABLE_FILE
        self.directory = directory
        self.poll_s = poll_s
        self.snapshot = Snapshot.build(RoutingTable())
        self.error: str | None = None
        self._seen: tuple[int, int, int] | None = None

    def load(self) -> bool:
        """Read the file if it changed; whether a new table was loaded."""
        try:
            stat = os.stat(self.path)
        except FileNotFoundError:
            if self._seen is not None:
                log.warning("%s disappeared; keeping generation %d", self.path, self.generation)
                self._seen = None
            return False
        signature = (stat.st_ino, stat.st_size, stat.st_mtime_ns)
        if signature == self._seen:
            return False
        self._seen = signature
        try:
            table = read_table(self.directory)
        except (OSError, ValueError, KeyError, TypeError, AttributeError) as exc:
            self.error = f"{self.path} is unreadable ({exc.__class__.__name__}: {exc})"
            log.warning("keeping routing table generation %d: %s", self.generation, self.error)
            return False
        self.snapshot = Snapshot.build(table, self.snapshot)
        self.error = None
        log.info(
            "loaded routing table generation %d (%d routes)", table.generation, len(table.routes)
        )
        return True

    @property
    def generation(self) -> int:
        return self.snapshot.table.generation

    async def run(self) -> None:
        while True:
            await asyncio.sleep(self.poll_s)
            self.load()


# -- metrics ----------------------------------------------------------------------------------

Tallies = dict[int, dict[tuple[str, str], Tally]]  # window start (epoch s) → (service, release)


class Metrics:
    """Tallies per 10-second window and (service, release), until they reach the store."""

    def __init__(self, store: Store | None) -> None:
        self.store = store
        self.pending: Tallies = {}
        self.rounds = 0  # flushes done, empty or not: for the status page (and tests)
        self._failures: dict[tuple[int, str, str], int] = {}

    def pending_requests(self) -> int:
        return sum(t.requests for tallies in self.pending.values() for t in tallies.values())

    def record(self, service_id: str, release_id: str, status: int, latency_ms: float) -> None:
        if self.store is None:
            return  # nowhere to flush: counting would only grow memory
        window = int(time.time()) // WINDOW_S * WINDOW_S
        tallies = self.pending.get(window)
        if tallies is None:
            tallies = self.pending[window] = {}
        tally = tallies.get((service_id, release_id))
        if tally is None:
            tally = tallies[(service_id, release_id)] = Tally()
        tally.record(status, latency_ms)

    async def flush(self, deadline_s: float = FLUSH_DEADLINE_S) -> None:
        """Add what was counted to the store in one transaction, or keep it for next time."""
        if self.store is None:
            return
        if self.pending:
            await self._flush_pending(deadline_s)
        self.rounds += 1

    async def _flush_pending(self, deadline_s: float) -> None:
        batch, self.pending = self.pending, {}
        try:
            await self._write(batch, deadline_s)
            self._failures.clear()
        except IntegrityError as exc:
            log.warning("metrics flush refused (%s); flushing release by release", _first_line(exc))
            await self._write_one_by_one(batch, deadline_s)
        except Exception as exc:
            # A timeout may hide a commit that did land; that one case can count twice.
            log.warning("metrics flush failed, keeping the counts: %s", _first_line(exc))
            self._keep(batch)

    async def _write(self, batch: Tallies, deadline_s: float) -> None:
        assert self.store is not None
        async with asyncio.timeout(deadline_s), self.store.write() as session:
            await add_windows(
                session, {datetime.fromtimestamp(window, UTC): batch[window] for window in batch}
            )

    async def _write_one_by_one(self, batch: Tallies, deadline_s: float) -> None:
        for window, tallies in batch.items():
            for key, tally in tallies.items():
                piece = {window: {key: tally}}
                try:
                    await self._write(piece, deadline_s)
                    self._failures.pop((window, *key), None)
                except IntegrityError:
                    failures = self._failures.get((window, *key), 0) + 1
                    self._failures[(window, *key)] = failures
                    if failures >= DROP_AFTER_FAILURES:
                        log.warning(
                            "dropping %d requests of service %s release %s: the store refuses "
                            "them (was the service deleted?)",
                            tally.requests,
                            *key,
                        )
                        self._failures.pop((window, *key))
                    else:
                        self._keep(piece)
                except Exception as exc:
                    log.warning("metrics flush failed, keeping the counts: %s", _first_line(exc))
                    self._keep(piece)

    def _keep(self, batch: Tallies) -> None:
        for window, tallies in batch.items():
            pending = self.pending.setdefault(window, {})
            for key, tally in tallies.items():
                if key in pending:
                    tally.add(pending[key])
                pending[key] = tally

    async def run(self, interval_s: float) -> None:
        while True:
            await asyncio.sleep(interval_s)
            await self.flush()


def _first_line(exc: BaseException) -> str:
    text = str(exc) or exc.__class__.__name__
    return text.splitlines()[0]


# -- headers ----------------------------------------------------------------------------------


def _connection_tokens(value: str | None) -> frozenset[str]:
    if not value:
        return frozenset()
    return frozenset(t.strip().lower() for t in value.split(",") if t.strip())


def _copy_headers(
    headers: Mapping[str, str], dropped: Iterable[frozenset[str]]
) -> CIMultiDict[str]:
    drop = frozenset[str]().union(*dropped, _connection_tokens(headers.get(hdrs.CONNECTION)))
    out: CIMultiDict[str] = CIMultiDict()
    for name, value in headers.items():
        if name.lower() not in drop:
            out.add(name, value)
    return out


def request_id_of(request: web.BaseRequest) -> str:
    given = request.headers.get(REQUEST_ID_HEADER, "")
    if given and len(given) <= MAX_REQUEST_ID and given.isprintable():
        return given
    return os.urandom(16).hex()  # what uuid4().hex is made of, for a tenth of the cost


def upstream_headers(
    request: web.BaseRequest, request_id: str, *, websocket: bool = False
) -> CIMultiDict[str]:
    dropped = [HOP_BY_HOP, FORWARDED, REQUEST_ONLY] + ([HANDSHAKE] if websocket else [])
    headers = _copy_headers(request.headers, dropped)
    peer = request.remote or ""
    previous = request.headers.get("X-Forwarded-For")
    headers["X-Forwarded-For"] = f"{previous}, {peer}" if previous else peer
    if hdrs.HOST in request.headers:
        headers["X-Forwarded-Host"] = request.headers[hdrs.HOST]
    headers["X-Forwarded-Proto"] = request.scheme
    headers[REQUEST_ID_HEADER] = request_id
    return headers


def response_headers(
    upstream: Mapping[str, str], release_id: str, request_id: str
) -> CIMultiDict[str]:
    headers = _copy_headers(upstream, [HOP_BY_HOP])
    headers[RELEASE_HEADER] = release_id
    headers.setdefault(REQUEST_ID_HEADER, request_id)
    return headers


# -- answers the router gives itself --------------------------------------------------------


def error_response(
    request: web.BaseRequest,
    status: int,
    code: str,
    message: str,
    *,
    headers: Mapping[str, str] | None = None,
    details: Mapping[str, Any] | None = None,
) -> web.Response:
    """A failure the router answers itself: plain text, or JSON when the client wants it."""
    if "application/json" in request.headers.get(hdrs.ACCEPT, ""):
        body = {"error": {"status": status, "code": code, "message": message, **(details or {})}}
        return web.json_response(body, status=status, headers=headers)
    return web.Response(status=status, text=message + "\n", headers=headers)


def not_found(request: web.BaseRequest, snapshot: Snapshot, request_id: str) -> web.Response:
    host = request.headers.get(hdrs.HOST, "")[:200] or "(no Host header)"
    message = f"No service is routed at {host}{request.path[:200]}."
    hosts = snapshot.hosts
    if hosts:
        shown = ", ".join(hosts[:HOSTS_SHOWN])
        more = f" and {len(hosts) - HOSTS_SHOWN} more" if len(hosts) > HOSTS_SHOWN else ""
        message += f" Hosts routed here: {shown}{more}."
    else:
        message += f" No routes are loaded (routing table generation {snapshot.table.generation})."
    return error_response(
        request,
        404,
        "NO_ROUTE",
        message,
        headers={REQUEST_ID_HEADER: request_id},
        details={"hosts": list(hosts)},
    )


def no_replica(request: web.BaseRequest, route: RouteEntry, request_id: str) -> web.Response:
    if any(b.weight > 0 for b in route.backends):
        message = (
            f"{route.service} has no ready replica. Try again in a few seconds; if it lasts, "
            f"look at the service's deployment and logs."
        )
    else:
        message = f"{route.service} has no release taking traffic (every weight is 0)."
    return error_response(
        request,
        503,
        "NO_READY_REPLICA",
        message,
        headers={"Retry-After": str(RETRY_AFTER_S), REQUEST_ID_HEADER: request_id},
        details={"service": route.service},
    )


def _describe(exc: BaseException) -> str:
    if isinstance(exc, aiohttp.ClientConnectorError):
        cause = exc.os_error
        if isinstance(cause, ConnectionRefusedError):
            return "connection refused"
        return f"could not connect ({cause.strerror or cause})"
    if isinstance(exc, aiohttp.ServerDisconnectedError):
        return "the replica closed the connection without answering"
    if isinstance(exc, ConnectionResetError | aiohttp.ClientConnectionResetError):
        return "connection reset"
    if isinstance(exc, aiohttp.ConnectionTimeoutError):
        return f"no connection within {CONNECT_TIMEOUT_S:g} s"
    return _first_line(exc)


# -- the proxy --------------------------------------------------------------------------------


class UpstreamFailed(Exception):
    def __init__(self, upstream: str, cause: BaseException) -> None:
        super().__init__(f"{upstream}: {_describe(cause)}")
        self.upstream = upstream
        self.cause = cause


@dataclass
class Exchange:
    """One request on its way: what was matched, and what the metrics need."""

    request: web.BaseRequest
    route: RouteEntry
    backend: Backend
    request_id: str
    started: float


class RequestBody:
    """The client's body, handed on as it arrives. Once any of it went to a replica the
    request cannot be retried on another."""

    def __init__(self, request: web.BaseRequest, idle_s: float) -> None:
        self.request = request
        self.idle_s = idle_s
        self.started = False
        self.stalled = False  # the client stopped sending for idle_s

    async def chunks(self) -> AsyncIterator[bytes]:
        self.started = True
        request = self.request
        if request.version >= (1, 1) and request.headers.get(hdrs.EXPECT, "").lower() == (
            "100-continue"
        ):
            await request.writer.write(b"HTTP/1.1 100 Continue\r\n\r\n")
            request.writer.output_size = 0
        content = request.content
        while True:
            try:
                async with asyncio.timeout(self.idle_s):
                    chunk = await content.readany()
            except TimeoutError:
                self.stalled = True
                raise
            if not chunk:
                return
            yield chunk


class Router:
    def __init__(self, config: RouterConfig, store: Store | None = None) -> None:
        self.config = config
        self.tables = TableWatcher(config.home)
        self.metrics = Metrics(store)
        self._session: aiohttp.ClientSession | None = None
        self._runner: web.ServerRunner | None = None
        self._tasks: list[asyncio.Task[None]] = []
        self._sockets: set[web.WebSocketResponse] = set()

    @property
    def session(self) -> aiohttp.ClientSession:
        assert self._session is not None, "start() first"
        return self._session

    # -- lifecycle ----------------------------------------------------------------------------

    async def start(self) -> None:
        self.tables.load()
        self._session = aiohttp.ClientSession(
            connector=aiohttp.TCPConnector(limit=0, ttl_dns_cache=60),
            timeout=aiohttp.ClientTimeout(
                total=None,
                connect=CONNECT_TIMEOUT_S,
                sock_connect=CONNECT_TIMEOUT_S,
                sock_read=self.config.idle_timeout_s,
            ),
            # A proxy passes bodies and headers as they are: no decompression, no headers
            # of its own, and above all no cookie jar shared between clients.
            auto_decompress=False,
            skip_auto_headers=("User-Agent", "Accept", "Accept-Encoding", "Content-Type"),
            cookie_jar=aiohttp.DummyCookieJar(),
            trust_env=False,
        )
        server = web.Server(
            self.handle,
            access_log=None,
            auto_decompress=False,
            keepalive_timeout=75.0,
        )
        self._runner = web.ServerRunner(server, shutdown_timeout=self.config.drain_s)
        await self._runner.setup()
        site = web.TCPSite(self._runner, self.config.host, self.config.port, backlog=1024)
        try:
            await site.start()
        except OSError as exc:
            await self._runner.cleanup()
            await self._session.close()
            if exc.errno == errno.EADDRINUSE:
                raise PortInUse(f"port {self.config.port} on {self.config.host} is in use") from exc
            raise
        self._write_state()
        loop = asyncio.get_running_loop()
        self._tasks.append(loop.create_task(self.tables.run(), name="routing table"))
        if self.metrics.store is not None:
            interval = self.config.flush_interval_s
            self._tasks.append(loop.create_task(self.metrics.run(interval), name="metrics"))
        else:
            log.info("no --database-url: request metrics are not recorded")
        log.info(
            "router pid %d listening on http://%s:%d (routing table generation %d)",
            os.getpid(),
            self.config.host,
            self.config.port,
            self.tables.generation,
        )

    def _write_state(self) -> None:
        home = self.config.home
        home.mkdir(parents=True, exist_ok=True)
        state = {
            "pid": os.getpid(),
            "create_time": psutil.Process().create_time(),
            "port": self.config.port,
        }
        temporary = home / f".{STATE_FILE}.{os.getpid()}.tmp"
        temporary.write_text(json.dumps(state))
        os.replace(temporary, home / STATE_FILE)

    def _forget_state(self) -> None:
        path = self.config.home / STATE_FILE
        with contextlib.suppress(OSError, ValueError):
            if json.loads(path.read_text()).get("pid") == os.getpid():
                path.unlink()

    async def stop(self) -> None:
        """Stop accepting, let requests in flight finish (``drain_s`` at most), flush."""
        log.info("stopping: draining requests in flight (at most %g s)", self.config.drain_s)
        closing = [
            asyncio.ensure_future(ws.close(code=1001, message=b"router shutting down"))
            for ws in list(self._sockets)
        ]
        if self._runner is not None:
            await self._runner.cleanup()
        if closing:
            await asyncio.wait(closing, timeout=WS_CLOSE_TIMEOUT_S)
        await cancel_and_wait(*self._tasks)
        await self.metrics.flush(FINAL_FLUSH_DEADLINE_S)
        if self._session is not None:
            await self._session.close()
        self._forget_state()
        log.info("stopped")

    # -- requests -----------------------------------------------------------------------------

    async def handle(self, request: web.BaseRequest) -> web.StreamResponse:
        started = time.perf_counter()
        path = request.path
        if path == STATUS_PATH or path.startswith(STATUS_PREFIX):
            return self.status()
        snapshot = self.tables.snapshot
        request_id = request_id_of(request)
        route = snapshot.table.match(request.headers.get(hdrs.HOST, ""), path)
        if route is None:
            return not_found(request, snapshot, request_id)
        state = snapshot.states[id(route)]
        backend = state.pick()
        if backend is None:
            blamed = blamed_release(route)
            if blamed is not None:
                self._record(route, blamed, 503, started)
            return no_replica(request, route, request_id)
        exchange = Exchange(request, route, backend, request_id, started)
        upstreams = state.upstreams(backend)
        if request.headers.get(hdrs.UPGRADE, "").lower() == "websocket":
            return await self.tunnel(exchange, upstreams)
        return await self.forward(exchange, upstreams)

    def status(self) -> web.Response:
        return web.json_response(
            {
                "pid": os.getpid(),
                "port": self.config.port,
                "generation": self.tables.generation,
                "routes": len(self.tables.snapshot.table.routes),
                "table_error": self.tables.error,
                "metrics": {
                    "recording": self.metrics.store is not None,
                    "flush_rounds": self.metrics.rounds,
                    "pending_requests": self.metrics.pending_requests(),
                },
            }
        )

    def _record(self, route: RouteEntry, release_id: str, status: int, started: float) -> None:
        latency_ms = (time.perf_counter() - started) * 1000.0
        self.metrics.record(route.service_id, release_id, status, latency_ms)

    def _failed(self, exchange: Exchange, exc: UpstreamFailed) -> web.Response:
        route, release = exchange.route, exchange.backend.release_id
        if isinstance(exc.cause, aiohttp.SocketTimeoutError):
            status, code = 504, "UPSTREAM_TIMEOUT"
            message = (
                f"{route.service} (release {release}) did not answer within "
                f"{self.config.idle_timeout_s:g} s (replica {exc.upstream})."
            )
        else:
            status, code = 502, "UPSTREAM_FAILED"
            message = (
                f"{route.service} (release {release}) failed to answer: replica "
                f"{exc.upstream}: {_describe(exc.cause)}."
            )
        log.warning("%s [request %s]", message, exchange.request_id)
        self._record(route, release, status, exchange.started)
        return error_response(
            exchange.request,
            status,
            code,
            message,
            headers={RELEASE_HEADER: release, REQUEST_ID_HEADER: exchange.request_id},
            details={"service": route.service, "release": release, "replica": exc.upstream},
        )

    def _stalled(self, exchange: Exchange) -> web.Response:
        release = exchange.backend.release_id
        message = (
            f"The request body stopped arriving: nothing for {self.config.idle_timeout_s:g} s, "
            f"so it was not passed on to {exchange.route.service}."
        )
        self._record(exchange.route, release, 408, exchange.started)
        return error_response(
            exchange.request,
            408,
            "REQUEST_BODY_STALLED",
            message,
            headers={"Connection": "close", REQUEST_ID_HEADER: exchange.request_id},
        )

    async def forward(self, exchange: Exchange, upstreams: tuple[str, ...]) -> web.StreamResponse:
        request = exchange.request
        body = RequestBody(request, self.config.idle_timeout_s) if request.body_exists else None
        try:
            upstream = await self._open(exchange, upstreams, body)
        except UpstreamFailed as exc:
            if body is not None and body.stalled:
                return self._stalled(exchange)
            return self._failed(exchange, exc)
        try:
            return await self._relay(exchange, upstream)
        finally:
            upstream.release()

    async def _open(
        self, exchange: Exchange, upstreams: tuple[str, ...], body: RequestBody | None
    ) -> aiohttp.ClientResponse:
        request = exchange.request
        headers = upstream_headers(request, exchange.request_id)
        failure: UpstreamFailed | None = None
        for upstream in upstreams:
            try:
                return await self.session.request(
                    request.method,
                    URL(f"http://{upstream}{request.raw_path}", encoded=True),
                    headers=headers,
                    data=body.chunks() if body is not None else None,
                    allow_redirects=False,
                )
            except (aiohttp.ClientConnectorError, aiohttp.ConnectionTimeoutError) as exc:
                # Nothing reached the replica: another one may take it.
                failure = UpstreamFailed(upstream, exc)
            except (aiohttp.ServerDisconnectedError, aiohttp.ClientOSError) as exc:
                # Typically a kept-alive connection the replica had just closed. The replica
                # may have acted on the request, so only a repeatable one is resent.
                failure = UpstreamFailed(upstream, exc)
                if request.method not in IDEMPOTENT:
                    break
            except (aiohttp.ClientError, TimeoutError) as exc:
                raise UpstreamFailed(upstream, exc) from exc
            if body is not None and body.started:
                break
        assert failure is not None
        raise failure

    async def _relay(
        self, exchange: Exchange, upstream: aiohttp.ClientResponse
    ) -> web.StreamResponse:
        request = exchange.request
        headers = response_headers(
            upstream.headers, exchange.backend.release_id, exchange.request_id
        )
        if upstream.content.is_eof() and _has_body(request.method, upstream.status):
            # The whole body came with the headers (the usual small answer): send both in
            # one write instead of streaming it, which costs a write of its own.
            self._record(
                exchange.route, exchange.backend.release_id, upstream.status, exchange.started
            )
            body = upstream.content.read_nowait()
            return web.Response(
                status=upstream.status, reason=upstream.reason, headers=headers, body=body
            )
        response = web.StreamResponse(
            status=upstream.status, reason=upstream.reason, headers=headers
        )
        idle_s = self.config.idle_timeout_s
        loop = asyncio.get_running_loop()
        try:
            await response.prepare(request)
            self._record(
                exchange.route, exchange.backend.release_id, upstream.status, exchange.started
            )
            # One deadline, pushed back whenever a chunk passes: an idle exchange ends, a
            # long but moving one does not.
            async with asyncio.timeout_at(loop.time() + idle_s) as deadline:
                async for chunk in upstream.content.iter_any():
                    await response.write(chunk)
                    deadline.reschedule(loop.time() + idle_s)
                await response.write_eof()
        except (aiohttp.ClientError, ConnectionError, TimeoutError) as exc:
            # Headers are gone; the only honest signal left is a connection cut short.
            log.info(
                "%s (release %s): response cut short: %s [request %s]",
                exchange.route.service,
                exchange.backend.release_id,
                _describe(exc),
                exchange.request_id,
            )
            upstream.close()
            if request.transport is not None:
                request.transport.close()
        return response

    # -- websockets ---------------------------------------------------------------------------

    async def tunnel(self, exchange: Exchange, upstreams: tuple[str, ...]) -> web.StreamResponse:
        request = exchange.request
        protocols = [
            p.strip()
            for p in request.headers.get(hdrs.SEC_WEBSOCKET_PROTOCOL, "").split(",")
            if p.strip()
        ]
        headers = upstream_headers(request, exchange.request_id, websocket=True)
        failure: UpstreamFailed | None = None
        for upstream in upstreams:
            try:
                remote = await self.session.ws_connect(
                    URL(f"http://{upstream}{request.raw_path}", encoded=True),
                    protocols=protocols,
                    headers=headers,
                    autoclose=False,
                    heartbeat=WS_HEARTBEAT_S,
                    max_msg_size=0,
                    decode_text=False,
                    timeout=aiohttp.ClientWSTimeout(ws_receive=None, ws_close=WS_CLOSE_TIMEOUT_S),
                )
                break
            except aiohttp.WSServerHandshakeError as exc:
                return self._refused_upgrade(exchange, upstream, exc)
            except (aiohttp.ClientConnectorError, aiohttp.ConnectionTimeoutError) as exc:
                failure = UpstreamFailed(upstream, exc)
            except (aiohttp.ClientError, TimeoutError) as exc:
                return self._failed(exchange, UpstreamFailed(upstream, exc))
        else:
            assert failure is not None
            return self._failed(exchange, failure)
        try:
            return await self._relay_socket(exchange, remote)
        finally:
            await remote.close()

    def _refused_upgrade(
        self, exchange: Exchange, upstream: str, exc: aiohttp.WSServerHandshakeError
    ) -> web.Response:
        status = exc.status if 400 <= exc.status < 600 else 502
        release = exchange.backend.release_id
        message = (
            f"{exchange.route.service} (release {release}) refused the websocket upgrade: "
            f"replica {upstream} answered {exc.status} {exc.message}."
        )
        self._record(exchange.route, release, status, exchange.started)
        return error_response(
            exchange.request,
            status,
            "UPGRADE_REFUSED",
            message,
            headers={RELEASE_HEADER: release, REQUEST_ID_HEADER: exchange.request_id},
        )

    async def _relay_socket(
        self, exchange: Exchange, remote: aiohttp.ClientWebSocketResponse[bool]
    ) -> web.StreamResponse:
        local = web.WebSocketResponse(
            protocols=(remote.protocol,) if remote.protocol else (),
            autoclose=False,
            heartbeat=WS_HEARTBEAT_S,
            compress=False,
            max_msg_size=0,
            decode_text=False,
            timeout=WS_CLOSE_TIMEOUT_S,
        )
        local.headers[RELEASE_HEADER] = exchange.backend.release_id
        local.headers[REQUEST_ID_HEADER] = exchange.request_id
        await local.prepare(exchange.request)
        self._record(exchange.route, exchange.backend.release_id, 101, exchange.started)
        self._sockets.add(local)
        try:
            await relay_messages(local, remote)
        finally:
            self._sockets.discard(local)
        return local


def _has_body(method: str, status: int) -> bool:
    return method != "HEAD" and status >= 200 and status not in (204, 304)


WebSocket = web.WebSocketResponse | aiohttp.ClientWebSocketResponse[bool]


async def _pump(source: WebSocket, sink: WebSocket) -> tuple[int | None, bytes]:
    """Copy messages from ``source`` to ``sink`` until ``source`` closes; how it closed."""
    while True:
        message = await source.receive()
        if message.type is WSMsgType.TEXT or message.type is WSMsgType.BINARY:
            data = message.data
            await sink.send_frame(data if isinstance(data, bytes) else data.encode(), message.type)
        elif message.type is WSMsgType.CLOSE:
            reason = message.extra
            return message.data, reason.encode() if isinstance(reason, str) else b""
        elif message.type is WSMsgType.CLOSING:
            # The router closes a socket of its own accord only when it shuts down (in a
            # relay, this pump's result is not the one used).
            return 1001, b"router shutting down"
        else:  # CLOSED, ERROR
            return source.close_code, b""


def _sendable(code: int | None) -> int:
    """A close code that may be sent on: 1005 (none given) becomes 1000, an abnormal end
    (1006, or a connection lost) 1011."""
    if code is None or code == 1006:
        return 1011
    if code in SENDABLE_CLOSE_CODES or 3000 <= code <= 4999:
        return code
    return 1000


async def relay_messages(local: WebSocket, remote: WebSocket) -> None:
    """Relay both ways until one side closes, then close the other with the same code and
    answer the first with the code the other replied."""
    outbound = asyncio.ensure_future(_pump(local, remote))
    inbound = asyncio.ensure_future(_pump(remote, local))
    try:
        done, _ = await asyncio.wait({outbound, inbound}, return_when=asyncio.FIRST_COMPLETED)
        first = outbound if outbound in done else inbound
        source, sink = (local, remote) if first is outbound else (remote, local)
        try:
            code, reason = first.result()
        except Exception:
            code, reason = None, b""
        await sink.close(code=_sendable(code), message=reason)
        await source.close(code=_sendable(sink.close_code or code))
        other = inbound if first is outbound else outbound
        await asyncio.wait({other}, timeout=WS_CLOSE_TIMEOUT_S)
    finally:
        await cancel_and_wait(outbound, inbound, ignore_errors=True)


# -- the process ------------------------------------------------------------------------------


async def serve(config: RouterConfig, stop: asyncio.Event | None = None) -> None:
    """Run until SIGTERM/SIGINT (or ``stop``), then drain, flush and return."""
    stop = stop or asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(signum, stop.set)
    store = Store(config.database_url) if config.database_url else None
    router = Router(config, store)
    try:
        await router.start()
        await stop.wait()
        await router.stop()
    finally:
        if store is not None:
            await store.close()


def _loop_factory() -> Callable[[], asyncio.AbstractEventLoop] | None:
    try:
        import uvloop
    except ImportError:  # pragma: no cover - uvloop comes with uvicorn[standard]
        return None
    return uvloop.new_event_loop


def parse_args(argv: list[str] | None = None) -> RouterConfig:
    parser = argparse.ArgumentParser(
        prog="python -m reconcile.local.router", description="Enclii's local router."
    )
    parser.add_argument("--data-dir", type=Path, required=True)
    parser.add_argument("--port", type=int, default=DEFAULT_PORT)
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument(
        "--database-url",
        # The launcher passes it in the environment, which `ps` does not show.
        default=os.environ.get(DATABASE_URL_ENV) or None,
        help=f"where request metrics go (default: ${DATABASE_URL_ENV}; none: not recorded)",
    )
    parser.add_argument(
        "--flush-interval", type=float, default=DEFAULT_FLUSH_INTERVAL_S, metavar="SECONDS"
    )
    parser.add_argument(
        "--idle-timeout",
        type=float,
        default=IDLE_TIMEOUT_S,
        metavar="SECONDS",
        help="end an exchange when a replica or a client sends nothing for this long",
    )
    args = parser.parse_args(argv)
    return RouterConfig(
        data_dir=args.data_dir.expanduser().resolve(),
        port=args.port,
        host=args.host,
        database_url=args.database_url,
        flush_interval_s=args.flush_interval,
        idle_timeout_s=args.idle_timeout,
    )


def main(argv: list[str] | None = None) -> int:
    config = parse_args(argv)
    logging.basicConfig(
        level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s"
    )
    try:
        with asyncio.Runner(loop_factory=_loop_factory()) as runner:
            runner.run(serve(config))
    except PortInUse as exc:
        log.error("%s: choose another with --router-port", exc)
        return EXIT_PORT_IN_USE
    return 0


if __name__ == "__main__":
    sys.exit(main())
