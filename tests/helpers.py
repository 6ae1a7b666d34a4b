"""Test helpers: a GraphQL caller, live servers, a websocket GraphQL client, SQL counting."""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import uvicorn
from sqlalchemy import event
from starlette.types import ASGIApp
from strawberry.types import ExecutionResult
from websockets.asyncio.client import ClientConnection, connect

from graph.context import GraphContext
from graph.schema import schema
from reconcile.local.processes import free_port as free_port
from reconcile.local.processes import kill_recorded
from resolvers.context import Context
from store.db import Store

REPO = Path(__file__).resolve().parents[1]
DEADLINE_S = 30.0
ENCLII_CLI = [sys.executable, "-m", "client.cli.main"]


def cli_env(home: Path, api_url: str, token: str, **extra: str) -> dict[str, str]:
    """The environment an `enclii` subprocess runs in under test: this machine's, without
    its Enclii settings or locale, pointed at ``api_url`` with ``token``, with profiles under
    ``home`` (never the real ~/.config) and English, CI-quiet output unless ``extra`` says
    otherwise."""
    env = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith("ENCLII_") and k not in ("LANG", "LC_ALL", "LC_MESSAGES")
    }
    env.update(
        CI="true",
        LANG="C.UTF-8",
        XDG_CONFIG_HOME=str(home),
        ENCLII_DATA_DIR=str(home / "no-local-server"),
        ENCLII_API_URL=api_url,
        ENCLII_TOKEN=token,
    )
    env.update(extra)
    return env


class GraphQLErrors(AssertionError):
    def __init__(self, errors: list[dict[str, Any]]) -> None:
        super().__init__(json.dumps(errors, indent=2))
        self.errors = errors


async def execute_in_process(
    ctx: Context, query: str, variables: dict[str, Any] | None = None
) -> ExecutionResult:
    """Run a document through Enclii's schema in this process, as ``ctx``'s actor: no HTTP,
    no authentication gate."""
    return await schema.execute(
        query,
        variable_values=variables,
        context_value=GraphContext(ctx=ctx, request=None, response=None),
    )


@dataclass
class Api:
    client: httpx.AsyncClient
    headers: dict[str, str] = field(default_factory=dict)

    async def execute(self, query: str, variables: dict[str, Any] | None = None) -> dict[str, Any]:
        response = await self.client.post(
            "/graphql",
            json={"query": query, "variables": variables or {}},
            headers=self.headers,
        )
        body: dict[str, Any] = response.json()
        return body

    async def data(self, query: str, variables: dict[str, Any] | None = None) -> dict[str, Any]:
        body = await self.execute(query, variables)
        if body.get("errors"):
            raise GraphQLErrors(body["errors"])
        data: dict[str, Any] = body["data"]
        return data


@dataclass
class LiveServer:
    port: int

    @property
    def http_url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def ws_url(self) -> str:
        return f"ws://127.0.0.1:{self.port}/graphql"


@contextlib.asynccontextmanager
async def start_live_server(app: ASGIApp) -> AsyncIterator[LiveServer]:
    sock = socket.socket()
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind(("127.0.0.1", 0))
    port = sock.getsockname()[1]
    config = uvicorn.Config(app, log_level="warning", lifespan="off", access_log=False)
    server = uvicorn.Server(config)
    task = asyncio.create_task(server.serve(sockets=[sock]))
    deadline = time.monotonic() + DEADLINE_S
    while not server.started:
        if task.done() or time.monotonic() > deadline:
            raise RuntimeError("the live server did not start")
        await asyncio.sleep(0.01)
    try:
        yield LiveServer(port)
    finally:
        server.should_exit = True
        await asyncio.wait_for(task, DEADLINE_S)
        sock.close()


class WsProtocolError(AssertionError):
    pass


class GraphQLWebSocket:
    """A small client of both GraphQL websocket protocols, speaking the wire format itself
    so tests check exactly what the server sends."""

    def __init__(self, conn: ClientConnection, protocol: str) -> None:
        self.conn = conn
        self.protocol = protocol
        self._next_id = 0

    @classmethod
    @contextlib.asynccontextmanager
    async def connect(
        cls,
        url: str,
        protocol: str = "graphql-transport-ws",
        payload: dict[str, Any] | None = None,
        headers: dict[str, str] | None = None,
    ) -> AsyncIterator[GraphQLWebSocket]:
        async with connect(
            url,
            subprotocols=[protocol],  # type: ignore[list-item]
            additional_headers=headers,
            open_timeout=DEADLINE_S,
        ) as conn:
            client = cls(conn, protocol)
            await client.send({"type": "connection_init", "payload": payload or {}})
            ack = await client.receive_type("connection_ack")
            assert ack["type"] == "connection_ack"
            yield client

    async def send(self, message: dict[str, Any]) -> None:
        await self.conn.send(json.dumps(message))

    async def receive(self, timeout: float = DEADLINE_S) -> dict[str, Any]:
        raw = await asyncio.wait_for(self.conn.recv(), timeout)
        message: dict[str, Any] = json.loads(raw)
        return message

    async def receive_type(self, *types: str, timeout: float = DEADLINE_S) -> dict[str, Any]:
        """The next message of one of ``types``, skipping keep-alives."""
        while True:
            message = await self.receive(timeout)
            if message["type"] in ("ka", "ping", "pong"):
                if message["type"] == "ping":
                    await self.send({"type": "pong"})
                continue
            if message["type"] not in types:
                raise WsProtocolError(f"expected {types}, got {message}")
            return message

    async def subscribe(self, query: str, variables: dict[str, Any] | None = None) -> str:
        self._next_id += 1
        op_id = str(self._next_id)
        kind = "subscribe" if self.protocol == "graphql-transport-ws" else "start"
        await self.send(
            {"id": op_id, "type": kind, "payload": {"query": query, "variables": variables or {}}}
        )
        return op_id

    async def next_data(self, op_id: str, timeout: float = DEADLINE_S) -> dict[str, Any]:
        kind = "next" if self.protocol == "graphql-transport-ws" else "data"
        message = await self.receive_type(kind, "error", "complete", timeout=timeout)
        if message["type"] != kind:
            raise WsProtocolError(f"expected {kind} for {op_id}, got {message}")
        assert message["id"] == op_id
        payload: dict[str, Any] = message["payload"]
        if payload.get("errors"):
            raise WsProtocolError(f"errors: {payload['errors']}")
        data: dict[str, Any] = payload["data"]
        return data

    async def unsubscribe(self, op_id: str) -> None:
        kind = "complete" if self.protocol == "graphql-transport-ws" else "stop"
        await self.send({"id": op_id, "type": kind})


@contextlib.contextmanager
def count_statements(store: Store) -> Iterator[list[str]]:
    """Every SQL statement the store's engines run inside the block."""
    seen: list[str] = []

    def record(_conn: Any, _cursor: Any, statement: str, *_args: Any) -> None:
        if not statement.lstrip().upper().startswith(("BEGIN", "COMMIT", "ROLLBACK", "PRAGMA")):
            seen.append(statement)

    engines = [e.sync_engine for e in store.engines]
    for engine in engines:
        event.listen(engine, "before_cursor_execute", record)
    try:
        yield seen
    finally:
        for engine in engines:
            event.remove(engine, "before_cursor_execute", record)


@dataclass
class ServerProcess:
    """``enclii serve`` as a real OS process."""

    process: subprocess.Popen[bytes]
    port: int
    log_path: Path
    data_dir: Path
    router_port: int = 0

    @property
    def router_url(self) -> str:
        return f"http://127.0.0.1:{self.router_port}"

    @property
    def http_url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def ws_url(self) -> str:
        return f"ws://127.0.0.1:{self.port}/graphql"

    def output(self) -> str:
        return self.log_path.read_text(errors="replace")

    @property
    def token(self) -> str:
        return (self.data_dir / "bootstrap-token").read_text().strip()

    @property
    def headers(self) -> dict[str, str]:
        return {"authorization": f"Bearer {self.token}"}

    def ws_payload(self) -> dict[str, Any]:
        return {"authorization": f"Bearer {self.token}"}

    def terminate(self, timeout: float = DEADLINE_S) -> int:
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
        try:
            return self.process.wait(timeout)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait(timeout)
            raise AssertionError(f"server did not stop on SIGTERM:\n{self.output()}") from None


def start_server_process(
    data_dir: Path,
    *,
    database_url: str | None = None,
    extra_env: dict[str, str] | None = None,
    router_port: int | None = None,
    port: int | None = None,
) -> ServerProcess:
    """Start ``enclii serve`` and wait until it is ready; pass the router port of an earlier
    server on the same data dir to have the new one adopt its router (and its port, to be
    found where clients knew it)."""
    port = port or free_port()
    router_port = router_port or free_port()
    log_path = data_dir.parent / f"server-{port}.log"
    data_dir.mkdir(parents=True, exist_ok=True)
    args = [
        sys.executable,
        "-m",
        "client.cli.main",
        "serve",
        "--data-dir",
        str(data_dir),
        "--port",
        str(port),
        "--router-port",
        str(router_port),
    ]
    if database_url:
        args += ["--database-url", database_url]
    env = {**os.environ, **(extra_env or {}), "PYTHONUNBUFFERED": "1"}
    with log_path.open("wb") as log:
        process = subprocess.Popen(
            args, cwd=REPO, env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True
        )
    server = ServerProcess(process, port, log_path, data_dir, router_port)
    deadline = time.monotonic() + DEADLINE_S
    while True:
        if process.poll() is not None:
            raise AssertionError(
                f"enclii serve exited with {process.returncode}:\n{server.output()}"
            )
        try:
            if httpx.get(f"{server.http_url}/readyz", timeout=1).status_code == 200:
                return server
        except httpx.HTTPError:
            pass
        if time.monotonic() > deadline:
            server.terminate()
            raise AssertionError(f"enclii serve was not ready in {DEADLINE_S}s:\n{server.output()}")
        time.sleep(0.1)


@contextlib.contextmanager
def running_server(root: Path, **options: Any) -> Iterator[ServerProcess]:
    """A real ``enclii serve`` with its data under ``root``, stopped on the way out with
    every process its data plane started (router, replicas)."""
    process = start_server_process(root / "data", **options)
    try:
        yield process
    finally:
        process.terminate()
        kill_recorded(root)
