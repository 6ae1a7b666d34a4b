"""The router as a real process on real sockets.

Replicas are small aiohttp servers in the test's own process, each on a port of its own; the
router is started with ``RouterProcess`` as the control plane starts it. Most tests share one
router (started once for the module) and give it a routing table of their own, with hosts of
their own so that no test inherits another's rotation; the tests about the process itself —
metrics, SIGTERM, surviving its launcher, a taken port — start their own.
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import hashlib
import itertools
import json
import os
import signal
import socket
import sys
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, TypeVar

import aiohttp
import psutil
import pytest
from aiohttp import WSMsgType, web

from reconcile.local import router_process as router_process_module
from reconcile.local.processes import free_port
from reconcile.local.router import (
    DROP_AFTER_FAILURES,
    LOG_FILE,
    RELEASE_HEADER,
    STATE_FILE,
    STATUS_PATH,
    Metrics,
)
from reconcile.local.router_process import RouterPortInUse, RouterProcess
from reconcile.local.routing import TABLE_FILE, Backend, RouteEntry, RoutingTable, write_table
from resolvers.context import Context
from store.db import Store
from store.metrics import read_tallies, read_total
from store.models import RequestMetricsHourly
from tests.factories import make_environment, make_project, make_service

DEADLINE_S = 20.0
REPO = Path(__file__).resolve().parents[2]
T = TypeVar("T")


# -- replicas ---------------------------------------------------------------------------------


@dataclass
class Replica:
    """An upstream the router sends requests to, recording what it was sent."""

    name: str
    port: int = 0
    runner: web.AppRunner | None = None
    hits: int = 0
    seen: list[dict[str, Any]] = field(default_factory=list)
    sse_gate: asyncio.Event = field(default_factory=asyncio.Event)
    first_chunk: asyncio.Event = field(default_factory=asyncio.Event)
    slow_started: asyncio.Event = field(default_factory=asyncio.Event)
    slow_release: asyncio.Event = field(default_factory=asyncio.Event)
    ws_closed: asyncio.Queue[int | None] = field(default_factory=asyncio.Queue)

    @property
    def address(self) -> str:
        return f"127.0.0.1:{self.port}"

    def app(self) -> web.Application:
        app = web.Application()
        app.router.add_get("/sse", self.sse)
        app.router.add_post("/upload", self.upload)
        app.router.add_get("/blob", self.blob)
        app.router.add_get("/ws", self.websocket)
        app.router.add_get("/slow", self.slow)
        app.router.add_route("*", "/{tail:.*}", self.echo)
        return app

    async def echo(self, request: web.Request) -> web.Response:
        self.hits += 1
        seen = {
            "replica": self.name,
            "method": request.method,
            "path": request.path_qs,
            "headers": {k.lower(): v for k, v in request.headers.items()},
        }
        self.seen.append(seen)
        status = int(request.query.get("status", "200"))
        headers = {"X-Replica": self.name, "Keep-Alive": "timeout=99"}
        headers["Proxy-Authenticate"] = "Basic realm=replica"
        return web.json_response(seen, status=status, headers=headers)

    async def sse(self, request: web.Request) -> web.StreamResponse:
        response = web.StreamResponse(headers={"Content-Type": "text/event-stream"})
        await response.prepare(request)
        await response.write(b"data: one\n\n")
        # The second event waits for the test to have received the first.
        await asyncio.wait_for(self.sse_gate.wait(), DEADLINE_S)
        await response.write(b"data: two\n\n")
        await response.write_eof()
        return response

    async def upload(self, request: web.Request) -> web.Response:
        digest = hashlib.sha256()
        size = 0
        async for chunk in request.content.iter_any():
            digest.update(chunk)
            size += len(chunk)
            self.first_chunk.set()
        return web.json_response(
            {
                "bytes": size,
                "sha256": digest.hexdigest(),
                "transfer_encoding": request.headers.get("Transfer-Encoding"),
                "content_length": request.headers.get("Content-Length"),
            }
        )

    async def blob(self, request: web.Request) -> web.StreamResponse:
        size = int(request.query["size"])
        response = web.StreamResponse()
        response.content_length = size
        await response.prepare(request)
        if request.method == "HEAD":
            return response  # aiohttp would send what is written, even to a HEAD
        for offset in range(0, size, 1 << 16):
            await response.write(_blob(offset, min(1 << 16, size - offset)))
        await response.write_eof()
        return response

    async def websocket(self, request: web.Request) -> web.WebSocketResponse:
        ws = web.WebSocketResponse(protocols=("chat",))
        await ws.prepare(request)
        async for message in ws:
            if message.type is WSMsgType.TEXT and message.data.startswith("close:"):
                await ws.close(code=int(message.data.split(":")[1]), message=b"asked to")
            elif message.type is WSMsgType.TEXT:
                await ws.send_str(f"echo:{message.data}")
            elif message.type is WSMsgType.BINARY:
                await ws.send_bytes(message.data)
        await self.ws_closed.put(ws.close_code)
        return ws

    async def slow(self, request: web.Request) -> web.Response:
        self.slow_started.set()
        await asyncio.wait_for(self.slow_release.wait(), DEADLINE_S)
        return web.Response(text="done")


def _blob(offset: int, size: int) -> bytes:
    return bytes((offset + i) % 251 for i in range(size))


@pytest.fixture
async def replicas() -> AsyncIterator[Callable[[str], Awaitable[Replica]]]:
    started: list[Replica] = []

    async def start(name: str) -> Replica:
        replica = Replica(name)
        runner = web.AppRunner(replica.app(), shutdown_timeout=1.0)
        await runner.setup()
        site = web.TCPSite(runner, "127.0.0.1", 0)
        await site.start()
        replica.runner = runner
        replica.port = runner.addresses[0][1]
        started.append(replica)
        return replica

    yield start
    for replica in started:
        assert replica.runner is not None
        await replica.runner.cleanup()


def dead_address() -> str:
    """An address where nothing listens: connecting is refused."""
    return f"127.0.0.1:{free_port()}"


# -- the router -------------------------------------------------------------------------------


def _in_thread(fn: Callable[[], T]) -> T:
    # Module fixtures are sync; the router's launcher is async and may meet a running loop.
    with ThreadPoolExecutor(max_workers=1) as pool:
        return pool.submit(fn).result()


@dataclass
class RouterUnderTest:
    process: RouterProcess
    generation: int = 0

    @property
    def url(self) -> str:
        return self.process.url

    @property
    def home(self) -> Path:
        return self.process.home

    async def status(self) -> dict[str, Any]:
        async with (
            aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=DEADLINE_S)) as session,
            session.get(self.url + STATUS_PATH) as response,
        ):
            assert response.status == 200
            status: dict[str, Any] = await response.json()
            return status

    async def wait_status(self, check: Callable[[dict[str, Any]], bool]) -> dict[str, Any]:
        async def poll() -> dict[str, Any]:
            while not check(status := await self.status()):
                await asyncio.sleep(0.02)
            return status

        return await asyncio.wait_for(poll(), DEADLINE_S)

    async def route(self, *routes: RouteEntry) -> None:
        """Give the router a table of exactly these routes and wait until it serves it."""
        self.generation += 1
        generation = self.generation
        write_table(self.home, RoutingTable(generation, routes))
        await self.wait_status(lambda s: s["generation"] == generation)


@pytest.fixture(scope="module")
def shared_router(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RouterUnderTest]:
    process = RouterProcess(tmp_path_factory.mktemp("router"), free_port())
    _in_thread(lambda: asyncio.run(process.ensure()))
    yield RouterUnderTest(process)
    _in_thread(lambda: asyncio.run(process.stop()))


@pytest.fixture
async def router(shared_router: RouterUnderTest) -> RouterUnderTest:
    return shared_router


@pytest.fixture
async def client() -> AsyncIterator[aiohttp.ClientSession]:
    # The total timeout is every request's deadline.
    timeout = aiohttp.ClientTimeout(total=DEADLINE_S)
    async with aiohttp.ClientSession(timeout=timeout) as session:
        yield session


def route(
    host: str,
    *backends: tuple[str, int, list[str]],
    path: str = "/",
    service: str = "api.dev.shop",
    service_id: str = "svc_test",
) -> RouteEntry:
    return RouteEntry(
        host=host,
        path=path,
        service_id=service_id,
        service=service,
        backends=tuple(Backend(rel, weight, tuple(ups)) for rel, weight, ups in backends),
    )


@dataclass
class Answer:
    status: int
    headers: dict[str, str]
    body: bytes

    def json(self) -> Any:
        return json.loads(self.body)

    @property
    def release(self) -> str | None:
        return self.headers.get(RELEASE_HEADER.lower())


async def call(
    client: aiohttp.ClientSession,
    router: RouterUnderTest,
    host: str,
    path: str = "/",
    *,
    method: str = "GET",
    headers: dict[str, str] | None = None,
    data: Any = None,
) -> Answer:
    async with client.request(
        method,
        router.url + path,
        headers={"Host": host, **(headers or {})},
        data=data,
        allow_redirects=False,
    ) as response:
        body = await response.read()
        return Answer(response.status, {k.lower(): v for k, v in response.headers.items()}, body)


# -- routing ----------------------------------------------------------------------------------


async def test_routes_by_host_whatever_its_case_and_port(
    router: RouterUnderTest,
    client: aiohttp.ClientSession,
    replicas: Callable[[str], Awaitable[Replica]],
) -> None:
    a = await replicas("a")
    await router.route(route("Hosts.Dev.Shop.Localhost", ("rel_hosts", 100, [a.address])))

    for host in ("hosts.dev.shop.localhost", "HOSTS.dev.shop.LOCALHOST:8080"):
        answer = await call(client, router, host, "/hello")
        assert (answer.status, answer.release) == (200, "rel_hosts")
        assert answer.json()["path"] == "/hello"
    assert (await call(client, router, "other.dev.shop.localhost")).status == 404
    # The router's own path answers on any host, routed or not.
    own = await call(client, router, "hosts.dev.shop.localhost", STATUS_PATH)
    assert own.json()["pid"] == router.process.pid
    assert a.hits == 2


async def test_longest_path_prefix_wins_on_segment_boundaries(
    router: RouterUnderTest,
    client: aiohttp.ClientSession,
    replicas: Callable[[str], Awaitable[Replica]],
) -> None:
    a = await replicas("a")
    host = "paths.dev.shop.localhost"
    await router.route(
        route(host, ("rel_root", 100, [a.address])),
        route(host, ("rel_api", 100, [a.address]), path="/api"),
        route(host, ("rel_v1", 100, [a.address]), path="/api/v1"),
        route(host, ("rel_static", 100, [a.address]), path="/static/"),
    )
    expected = {
        "/": "rel_root",
        "/apix": "rel_root",
        "/api": "rel_api",
        "/api/": "rel_api",
        "/api/users?page=2": "rel_api",
        "/api/v10": "rel_api",
        "/api/v1": "rel_v1",
        "/api/v1/orders": "rel_v1",
        "/static": "rel_static",
        "/static/app.js": "rel_static",
        "/staticx": "rel_root",
    }
    answered = {path: (await call(client, router, host, path)).release for path in expected}
    assert answered == expected
    # Paths reach the replica as they were asked, prefix and query included.
    assert [s["path"] for s in a.seen][4] == "/api/users?page=2"


@pytest.mark.parametrize("weights", [(80, 20), (50, 30, 20)])
async def test_weighted_split_is_exact(
    router: RouterUnderTest,
    client: aiohttp.ClientSession,
    replicas: Callable[[str], Awaitable[Replica]],
    weights: tuple[int, ...],
) -> None:
    host = f"split-{'-'.join(map(str, weights))}.dev.shop.localhost"
    backends = []
    for i, weight in enumerate(weights):
        replica = await replicas(f"r{i}")
        backends.append((f"rel_{i}", weight, [replica.address]))
    await router.route(route(host, *backends))

    order = [(await call(client, router, host)).release for _ in range(100)]
    assert collections.Counter(order) == {f"rel_{i}": w for i, w in enumerate(weights)}
    # Smooth, as nginx's: the lightest release never answers twice in a row.
    lightest = f"rel_{len(weights) - 1}"
    assert not any(x == y == lightest for x, y in itertools.pairwise(order))


async def test_a_zero_weight_release_gets_nothing(
    router: RouterUnderTest,
    client: aiohttp.ClientSession,
    replicas: Callable[[str], Awaitable[Replica]],
) -> None:
    live, warm = await replicas("live"), await replicas("warm")
    host = "zero.dev.shop.localhost"
    await router.route(
        route(host, ("rel_live", 100, [live.address]), ("rel_warm", 0, [warm.address]))
    )
    releases = {(await call(client, router, host)).release for _ in range(30)}
    assert releases == {"rel_live"}
    assert (live.hits, warm.hits) == (30, 0)


async def test_replicas_of_a_release_take_turns(
    router: RouterUnderTest,
    client: aiohttp.ClientSession,
    replicas: Callable[[str], Awaitable[Replica]],
) -> None:
    one, two, three = await replicas("1"), await replicas("2"), await replicas("3")
    host = "turns.dev.shop.localhost"
    await router.route(route(host, ("rel", 100, [one.address, two.address, three.address])))
    for _ in range(9):
        await call(client, router, host)
    assert (one.hits, two.hits, three.hits) == (3, 3, 3)


# -- the table file ---------------------------------------------------------------------------


async def test_a_new_table_is_served_without_a_restart(
    router: RouterUnderTest,
    client: aiohttp.ClientSession,
    replicas: Callable[[str], Awaitable[Replica]],
) -> None:
    a = await replicas("a")
    first = route("first.dev.shop.localhost", ("rel_first", 100, [a.address]))
    second = route("second.dev.shop.localhost", ("rel_second", 100, [a.address]))
    pid = router.process.pid
    await router.route(first)
    assert (await call(client, router, "second.dev.shop.localhost")).status == 404

    await router.route(first, second)
    answer = await call(client, router, "second.dev.shop.localhost")
    assert (answer.status, answer.release) == (200, "rel_second")
    assert (await router.status())["pid"] == pid


@pytest.mark.parametrize(
    "content",
    ["{not json", '{"version": 99, "routes": []}', "[]", '{"version": 1, "routes": [{}]}'],
)
async def test_an_unreadable_table_keeps_the_previous_one(
    router: RouterUnderTest,
    client: aiohttp.ClientSession,
    replicas: Callable[[str], Awaitable[Replica]],
    content: str,
) -> None:
    a = await replicas("a")
    kept = route("kept.dev.shop.localhost", ("rel_kept", 100, [a.address]))
    await router.route(kept)
    generation = router.generation

    (router.home / TABLE_FILE).write_text(content)
    status = await router.wait_status(lambda s: s["table_error"] is not None)
    assert status["generation"] == generation
    assert TABLE_FILE in status["table_error"]
    assert (await call(client, router, "kept.dev.shop.localhost")).status == 200

    await router.route(kept)  # a good table again clears the error
    assert (await router.status())["table_error"] is None


# -- failures ---------------------------------------------------------------------------------


async def test_no_route_is_a_404_naming_the_routed_hosts(
    router: RouterUnderTest, client: aiohttp.ClientSession
) -> None:
    hosts = [f"h{i}.dev.shop.localhost" for i in range(7)]
    await router.route(*(route(h, ("rel", 100, [dead_address()])) for h in hosts))

    text = await call(client, router, "nowhere.localhost", "/x")
    assert text.status == 404
    assert text.headers["content-type"].startswith("text/plain")
    message = text.body.decode()
    assert "No service is routed at nowhere.localhost/x." in message
    assert "h0.dev.shop.localhost, h1.dev.shop.localhost" in message
    assert "and 2 more" in message

    as_json = await call(
        client, router, "nowhere.localhost", "/x", headers={"Accept": "application/json"}
    )
    error = as_json.json()["error"]
    assert (as_json.status, error["code"], error["hosts"]) == (404, "NO_ROUTE", hosts)


async def test_no_ready_replica_is_a_503_with_retry_after(
    router: RouterUnderTest, client: aiohttp.ClientSession
) -> None:
    await router.route(
        route("cold.dev.shop.localhost", ("rel_cold", 100, []), service="cold.dev.shop"),
        route("off.dev.shop.localhost", ("rel_off", 0, [dead_address()]), service="off.dev.shop"),
    )
    cold = await call(client, router, "cold.dev.shop.localhost")
    assert (cold.status, cold.headers["retry-after"]) == (503, "5")
    assert "cold.dev.shop has no ready replica" in cold.body.decode()

    off = await call(
        client, router, "off.dev.shop.localhost", headers={"Accept": "application/json"}
    )
    assert off.status == 503
    assert off.json()["error"]["message"] == (
        "off.dev.shop has no release taking traffic (every weight is 0)."
    )


async def test_a_refused_connection_is_a_502_naming_service_and_release(
    router: RouterUnderTest, client: aiohttp.ClientSession
) -> None:
    dead = dead_address()
    await router.route(
        route("down.dev.shop.localhost", ("rel_down", 100, [dead]), service="down.dev.shop")
    )
    text = await call(client, router, "down.dev.shop.localhost")
    assert (text.status, text.release) == (502, "rel_down")
    message = text.body.decode()
    assert "down.dev.shop (release rel_down)" in message
    assert f"replica {dead}: connection refused" in message

    as_json = await call(
        client, router, "down.dev.shop.localhost", headers={"Accept": "application/json"}
    )
    error = as_json.json()["error"]
    assert (error["code"], error["release"], error["replica"]) == (
        "UPSTREAM_FAILED",
        "rel_down",
        dead,
    )


async def test_a_refused_connection_is_retried_on_the_next_replica(
    router: RouterUnderTest,
    client: aiohttp.ClientSession,
    replicas: Callable[[str], Awaitable[Replica]],
) -> None:
    live = await replicas("live")
    host = "retry.dev.shop.localhost"
    await router.route(route(host, ("rel", 100, [dead_address(), live.address])))
    # Every other request starts on the dead replica; a POST too, as nothing of its body
    # was sent before the connection was refused.
    answers = [await call(client, router, host) for _ in range(4)]
    answers.append(await call(client, router, host, method="POST", data=b"payload"))
    answers.append(await call(client, router, host, method="POST", data=b"payload"))
    assert [a.status for a in answers] == [200] * 6
    assert live.hits == 6


# -- streams ----------------------------------------------------------------------------------


async def test_websocket_messages_and_close_codes_pass_both_ways(
    router: RouterUnderTest,
    client: aiohttp.ClientSession,
    replicas: Callable[[str], Awaitable[Replica]],
) -> None:
    a = await replicas("a")
    host = "ws.dev.shop.localhost"
    await router.route(route(host, ("rel_ws", 100, [a.address])))

    async with client.ws_connect(
        router.url + "/ws", headers={"Host": host}, protocols=("chat",)
    ) as ws:
        assert ws.protocol == "chat"
        await ws.send_str("hello")
        assert await ws.receive_str(timeout=DEADLINE_S) == "echo:hello"
        await ws.send_bytes(b"\x00\x01\xff")
        assert await ws.receive_bytes(timeout=DEADLINE_S) == b"\x00\x01\xff"
        await ws.close(code=4001, message=b"bye")
    # The client's close code reached the replica.
    assert await asyncio.wait_for(a.ws_closed.get(), DEADLINE_S) == 4001

    async with client.ws_connect(router.url + "/ws", headers={"Host": host}) as ws:
        await ws.send_str("close:4002")
        message = await ws.receive(timeout=DEADLINE_S)
        # ...and the replica's reached the client.
        assert (message.type, message.data) == (WSMsgType.CLOSE, 4002)
    # The client's reply (aiohttp answers a close with 1000) went back to the replica.
    assert await asyncio.wait_for(a.ws_closed.get(), DEADLINE_S) == 1000


async def test_a_chunked_upload_reaches_the_replica_as_it_is_sent(
    router: RouterUnderTest,
    client: aiohttp.ClientSession,
    replicas: Callable[[str], Awaitable[Replica]],
) -> None:
    a = await replicas("a")
    host = "upload.dev.shop.localhost"
    await router.route(route(host, ("rel", 100, [a.address])))

    async def body() -> AsyncIterator[bytes]:
        yield b"x" * 1000
        # A router that buffered the body would never let the replica see this first part.
        await asyncio.wait_for(a.first_chunk.wait(), DEADLINE_S)
        yield b"y" * 1000

    answer = await call(client, router, host, "/upload", method="POST", data=body())
    assert answer.status == 200
    received = answer.json()
    assert received["bytes"] == 2000
    assert received["sha256"] == hashlib.sha256(b"x" * 1000 + b"y" * 1000).hexdigest()
    assert received["transfer_encoding"] == "chunked"


async def test_server_sent_events_arrive_as_they_are_sent(
    router: RouterUnderTest,
    client: aiohttp.ClientSession,
    replicas: Callable[[str], Awaitable[Replica]],
) -> None:
    a = await replicas("a")
    host = "events.dev.shop.localhost"
    await router.route(route(host, ("rel", 100, [a.address])))

    async with client.get(router.url + "/sse", headers={"Host": host}) as response:
        assert response.headers["Content-Type"] == "text/event-stream"
        # The replica sends the second event only after the first arrived here.
        first = await asyncio.wait_for(response.content.readuntil(b"\n\n"), DEADLINE_S)
        assert first == b"data: one\n\n"
        a.sse_gate.set()
        assert await response.content.read() == b"data: two\n\n"


async def test_large_bodies_pass_whole_both_ways(
    router: RouterUnderTest,
    client: aiohttp.ClientSession,
    replicas: Callable[[str], Awaitable[Replica]],
) -> None:
    a = await replicas("a")
    host = "large.dev.shop.localhost"
    await router.route(route(host, ("rel", 100, [a.address])))
    payload = os.urandom(8 << 20)

    up = await call(client, router, host, "/upload", method="POST", data=payload)
    received = up.json()
    assert received["sha256"] == hashlib.sha256(payload).hexdigest()
    assert received["content_length"] == str(len(payload))

    size = (8 << 20) + 123
    down = await call(client, router, host, f"/blob?size={size}")
    assert down.headers["content-length"] == str(size)
    assert down.body == _blob(0, size)


async def test_answers_without_a_body_keep_their_headers(
    router: RouterUnderTest,
    client: aiohttp.ClientSession,
    replicas: Callable[[str], Awaitable[Replica]],
) -> None:
    a = await replicas("a")
    host = "nobody.dev.shop.localhost"
    await router.route(route(host, ("rel", 100, [a.address])))

    head = await call(client, router, host, "/blob?size=1000", method="HEAD")
    assert (head.status, head.headers["content-length"], head.body) == (200, "1000", b"")
    empty = await call(client, router, host, "/?status=204")
    assert (empty.status, empty.body, empty.release) == (204, b"", "rel")
    # The connection is still good for the next request.
    assert (await call(client, router, host, "/blob?size=10")).body == _blob(0, 10)


async def test_forwarding_headers(
    router: RouterUnderTest,
    client: aiohttp.ClientSession,
    replicas: Callable[[str], Awaitable[Replica]],
) -> None:
    a = await replicas("a")
    await router.route(route("hdr.dev.shop.localhost", ("rel_hdr", 100, [a.address])))

    answer = await call(
        client,
        router,
        "hdr.dev.shop.localhost:8080",
        "/h",
        headers={
            "X-Forwarded-For": "203.0.113.9",
            "X-Forwarded-Proto": "https",
            "X-Request-Id": "req-123",
            "Connection": "keep-alive, X-Hop-Secret",
            "X-Hop-Secret": "1",
            "Keep-Alive": "timeout=5",
            "Proxy-Authorization": "Basic Zm9vOmJhcg==",
            "X-Custom": "kept",
        },
    )
    seen = answer.json()["headers"]
    assert seen["host"] == "hdr.dev.shop.localhost:8080"
    assert seen["x-forwarded-host"] == "hdr.dev.shop.localhost:8080"
    assert seen["x-forwarded-for"] == "203.0.113.9, 127.0.0.1"
    assert seen["x-forwarded-proto"] == "http"
    assert seen["x-request-id"] == "req-123"
    assert seen["x-custom"] == "kept"
    assert not {"x-hop-secret", "keep-alive", "proxy-authorization"} & set(seen)
    assert answer.release == "rel_hdr"
    assert answer.headers["x-request-id"] == "req-123"
    assert answer.headers["x-replica"] == "a"
    assert not {"keep-alive", "proxy-authenticate"} & set(answer.headers)

    fresh = await call(client, router, "hdr.dev.shop.localhost", "/h")
    created = fresh.headers["x-request-id"]
    assert len(created) == 32 and created == fresh.json()["headers"]["x-request-id"]
    assert fresh.json()["headers"]["x-forwarded-for"] == "127.0.0.1"


async def test_silence_ends_an_exchange_with_a_deadline(
    tmp_path: Path,
    client: aiohttp.ClientSession,
    replicas: Callable[[str], Awaitable[Replica]],
) -> None:
    a = await replicas("a")
    process = RouterProcess(tmp_path, free_port(), idle_timeout_s=0.5)
    await process.ensure()
    router = RouterUnderTest(process)
    host = "quiet.dev.shop.localhost"
    try:
        await router.route(route(host, ("rel_quiet", 100, [a.address]), service="quiet.dev.shop"))
        # A replica that accepts the request and says nothing.
        silent = await call(client, router, host, "/slow")
        assert (silent.status, silent.release) == (504, "rel_quiet")
        assert "quiet.dev.shop (release rel_quiet) did not answer within 0.5 s" in (
            silent.body.decode()
        )

        # A client that starts a body and stops sending it.
        async def stalled_body() -> AsyncIterator[bytes]:
            yield b"start"
            await asyncio.Event().wait()  # never more; the client session's deadline ends us

        stalled = await call(client, router, host, "/upload", method="POST", data=stalled_body())
        assert stalled.status == 408
        assert "The request body stopped arriving" in stalled.body.decode()
    finally:
        a.slow_release.set()
        await process.stop()


# -- metrics ----------------------------------------------------------------------------------


async def _service_id(ctx: Context) -> str:
    project = await make_project(ctx)
    await make_environment(ctx, project)
    return (await make_service(ctx)).id


async def _by_release(ctx: Context, service_id: str) -> dict[str, dict[str, int]]:
    async with ctx.store.read() as session:
        tallies = await read_tallies(session, service_id, datetime.fromtimestamp(0, UTC))
    counts = {}
    for release, tally in tallies.items():
        assert sum(tally.histogram.values()) == tally.requests
        counts[release] = {k: v for k, v in tally.by_class.items() if v} | {"all": tally.requests}
    return counts


async def test_metrics_reach_the_store_per_release_and_status_class(
    tmp_path: Path,
    database_url: str,
    ctx: Context,
    client: aiohttp.ClientSession,
    replicas: Callable[[str], Awaitable[Replica]],
) -> None:
    service_id = await _service_id(ctx)
    a, b = await replicas("a"), await replicas("b")
    process = RouterProcess(
        tmp_path,
        free_port(),
        database_url=database_url,
        flush_interval_s=0.2,
    )
    await process.ensure()
    router = RouterUnderTest(process)
    try:
        host = "api.stage.shop.localhost"
        common = {"service": "api.stage.shop", "service_id": service_id}
        await router.route(
            route(host, ("rel_a", 100, [a.address]), **common),
            route(host, ("rel_b", 100, [b.address]), path="/b", **common),
            route(host, ("rel_cold", 100, []), path="/cold", **common),
            route(host, ("rel_down", 100, [dead_address()]), path="/down", **common),
        )
        paths = (
            ["/"] * 6 + ["/?status=302"] + ["/?status=404"] * 3
            + ["/b?status=500"] * 4 + ["/b"] * 2 + ["/cold"] * 3 + ["/down"] * 2
        )  # fmt: skip
        for path in paths:
            await call(client, router, host, path)
        await call(client, router, "unrouted.localhost")  # no service: not counted
        expected = {
            "rel_a": {"2xx": 6, "3xx": 1, "4xx": 3, "all": 10},
            "rel_b": {"2xx": 2, "5xx": 4, "all": 6},
            "rel_cold": {"5xx": 3, "all": 3},
            "rel_down": {"5xx": 2, "all": 2},
        }

        async def flushed() -> None:
            while await _by_release(ctx, service_id) != expected:
                await asyncio.sleep(0.05)

        await asyncio.wait_for(flushed(), DEADLINE_S)
        # Two more flushes later nothing was counted twice.
        rounds = (await router.status())["metrics"]["flush_rounds"]
        await router.wait_status(lambda s: s["metrics"]["flush_rounds"] >= rounds + 2)
        assert await _by_release(ctx, service_id) == expected
    finally:
        await process.stop()
    assert process.returncode == 0


async def test_a_refused_flush_keeps_the_counts_until_the_store_takes_them(
    ctx: Context,
) -> None:
    service_id = await _service_id(ctx)
    metrics = Metrics(ctx.store)
    metrics.record(service_id, "rel_a", 500, 2.0)
    metrics.record("svc_gone", "rel_x", 200, 1.0)  # a service deleted since it was routed

    await metrics.flush()
    # The one the store refuses does not hold the other back...
    assert await _by_release(ctx, service_id) == {"rel_a": {"5xx": 1, "all": 1}}
    assert metrics.pending_requests() == 1
    # ...and is given up after repeated refusals, without counting anything twice.
    for _ in range(DROP_AFTER_FAILURES - 1):
        await metrics.flush()
    assert metrics.pending_requests() == 0
    assert await _by_release(ctx, service_id) == {"rel_a": {"5xx": 1, "all": 1}}


async def test_a_flush_adds_to_the_hourly_rollup_too(ctx: Context) -> None:
    service_id = await _service_id(ctx)
    metrics = Metrics(ctx.store)
    for status in (200, 503, 503):
        metrics.record(service_id, "rel_a", status, 1.0)
    await metrics.flush()
    metrics.record(service_id, "rel_a", 200, 250.0)
    await metrics.flush()

    epoch, later = datetime.fromtimestamp(0, UTC), datetime.now(UTC) + timedelta(days=1)
    async with ctx.store.read() as session:
        hourly = await read_total(session, service_id, epoch, later, model=RequestMetricsHourly)
        ten_second = await read_total(session, service_id, epoch, later)
    assert (hourly.requests, hourly.by_class["5xx"]) == (4, 2)
    assert hourly == ten_second


async def test_a_failed_flush_loses_nothing(tmp_path: Path, ctx: Context) -> None:
    service_id = await _service_id(ctx)
    broken = Store(f"sqlite:///{tmp_path / 'unmigrated.db'}")  # every write fails
    try:
        metrics = Metrics(broken)
        for status in (200, 200, 404):
            metrics.record(service_id, "rel_a", status, 1.0)
        await metrics.flush()
        metrics.record(service_id, "rel_a", 503, 1.0)  # counted while the store was down
        assert metrics.pending_requests() == 4
    finally:
        await broken.close()

    metrics.store = ctx.store  # the store is back
    await metrics.flush()
    assert metrics.pending_requests() == 0
    expected = {"rel_a": {"2xx": 2, "4xx": 1, "5xx": 1, "all": 4}}
    assert await _by_release(ctx, service_id) == expected
    await metrics.flush()
    assert await _by_release(ctx, service_id) == expected


@pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)
async def test_sigterm_finishes_the_request_in_flight_then_flushes(
    tmp_path: Path,
    database_url: str,
    ctx: Context,
    client: aiohttp.ClientSession,
    replicas: Callable[[str], Awaitable[Replica]],
) -> None:
    service_id = await _service_id(ctx)
    a = await replicas("a")
    process = RouterProcess(
        tmp_path,
        free_port(),
        database_url=database_url,
        flush_interval_s=3600,  # only the flush at shutdown can write
    )
    await process.ensure()
    router = RouterUnderTest(process)
    host = "api.stage.shop.localhost"
    try:
        await router.route(route(host, ("rel_a", 100, [a.address]), service_id=service_id))
        for _ in range(2):
            assert (await call(client, router, host)).status == 200
        slow = asyncio.ensure_future(call(client, router, host, "/slow"))
        await asyncio.wait_for(a.slow_started.wait(), DEADLINE_S)
        stopping = asyncio.ensure_future(process.stop())

        async def refusing() -> None:
            while True:
                try:
                    _, writer = await asyncio.open_connection("127.0.0.1", process.port)
                except (ConnectionRefusedError, ConnectionResetError):
                    return  # reset: the listener closed with our connection in its queue
                writer.close()
                await asyncio.sleep(0.02)

        # The router no longer accepts connections, and the slow request is still in flight.
        await asyncio.wait_for(refusing(), DEADLINE_S)
        assert not slow.done()
        a.slow_release.set()
        answer = await asyncio.wait_for(slow, DEADLINE_S)
        assert (answer.status, answer.body) == (200, b"done")
        await asyncio.wait_for(stopping, DEADLINE_S)
    finally:
        await process.stop()
    assert process.returncode == 0
    assert not (router.home / STATE_FILE).exists()
    assert await _by_release(ctx, service_id) == {"rel_a": {"2xx": 3, "all": 3}}


# -- the process ------------------------------------------------------------------------------

LAUNCHER = """
import asyncio, json, sys, time
from pathlib import Path
from reconcile.local.router_process import RouterProcess

process = RouterProcess(Path(sys.argv[1]), int(sys.argv[2]))
asyncio.run(process.ensure())
print(json.dumps({"pid": process.pid, "adopted": process.adopted}), flush=True)
time.sleep(600)  # until the test kills this launcher
"""


async def test_the_router_outlives_its_launcher_and_is_adopted(
    tmp_path: Path,
    client: aiohttp.ClientSession,
    replicas: Callable[[str], Awaitable[Replica]],
) -> None:
    port = free_port()
    launcher = await asyncio.create_subprocess_exec(
        sys.executable, "-c", LAUNCHER, str(tmp_path), str(port),
        cwd=REPO, stdout=asyncio.subprocess.PIPE,
    )  # fmt: skip
    adopter = RouterProcess(tmp_path, port)
    try:
        assert launcher.stdout is not None
        line = await asyncio.wait_for(launcher.stdout.readline(), DEADLINE_S)
        started = json.loads(line)
        assert started["adopted"] is False
        launcher.send_signal(signal.SIGKILL)
        await asyncio.wait_for(launcher.wait(), DEADLINE_S)

        router = RouterUnderTest(adopter)
        a = await replicas("a")
        await adopter.ensure()
        assert adopter.adopted and adopter.pid == started["pid"]
        # Still the one process: it serves a table written after its launcher died.
        await router.route(route("orphan.dev.shop.localhost", ("rel", 100, [a.address])))
        assert (await call(client, router, "orphan.dev.shop.localhost")).status == 200
        assert (await router.status())["pid"] == started["pid"]
        routers = [
            p.pid
            for p in psutil.process_iter(["cmdline"])
            if "reconcile.local.router" in (p.info["cmdline"] or [])
            and str(tmp_path) in (p.info["cmdline"] or [])
        ]
        assert routers == [started["pid"]]
    finally:
        if launcher.returncode is None:
            launcher.kill()
            await launcher.wait()
        await adopter.stop()
    assert not psutil.pid_exists(started["pid"]) or (
        psutil.Process(started["pid"]).status() == psutil.STATUS_ZOMBIE
    )
    assert "stopped" in (tmp_path / "router" / LOG_FILE).read_text()


async def test_ensure_twice_keeps_one_router(tmp_path: Path) -> None:
    process = RouterProcess(tmp_path, free_port())
    try:
        await process.ensure()
        pid = process.pid
        await process.ensure()
        assert process.pid == pid and not process.adopted
    finally:
        await process.stop()
    assert not process.running()


@pytest.mark.parametrize("found_by", ["the launcher", "the router"])
async def test_a_taken_port_is_reported_with_the_flag_to_change_it(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, found_by: str
) -> None:
    if found_by == "the router":
        # Skip the launcher's own check, as when another program binds the port in between.
        monkeypatch.setattr(router_process_module, "port_in_use", lambda host, port: False)
    with _listening() as port:
        process = RouterProcess(tmp_path, port)
        with pytest.raises(RouterPortInUse) as caught:
            await process.ensure()
    message = str(caught.value)
    assert f"port {port} on 127.0.0.1 is already in use" in message
    assert "--router-port" in message
    assert not process.running()


@contextlib.contextmanager
def _listening() -> Iterator[int]:
    """A socket of another program listening on a free port."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        sock.listen()
        port: int = sock.getsockname()[1]
        yield port
