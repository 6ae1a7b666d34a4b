"""The ASGI app: /graphql (HTTP, websockets, GraphiQL), /audit/export.ndjson, /healthz,
/readyz, and the UI (graph.ui): /ui/config.json, /assets/… and its pages at every other
path. Everything but the health checks, the UI and GraphiQL's page needs a token (see
graph.auth and graph.websockets)."""

from __future__ import annotations

import json
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

import orjson
from starlette.applications import Starlette
from starlette.middleware import Middleware
from starlette.requests import Request
from starlette.responses import JSONResponse, Response, StreamingResponse
from starlette.routing import Mount, Route, WebSocketRoute
from starlette.websockets import WebSocket
from strawberry.asgi import GraphQL
from strawberry.subscriptions import GRAPHQL_TRANSPORT_WS_PROTOCOL, GRAPHQL_WS_PROTOCOL

from graph import ui
from graph.auth import ACTOR_KEY, AuthGate, error_body
from graph.context import GraphContext
from graph.schema import schema
from graph.types.scalars import parse_instant
from graph.websockets import (
    PER_CONNECTION_CAP,
    Connections,
    LegacyWSHandler,
    TransportWSHandler,
)
from resolvers import audit
from resolvers.context import Actor, Context
from resolvers.errors import BadRequest, Failure
from resolvers.identity.authenticate import Authenticator
from resolvers.identity.oidc import OidcConfig
from resolvers.identity.ratelimit import RateLimiter
from store.blobs import BlobStore
from store.db import Store
from store.hub import EventHub
from store.models import AuditOutcome

REQUEST_ID_HEADER = "x-request-id"
# Until connection_init authenticates a websocket, it acts as nobody and may do nothing.
NOBODY = Actor(id="anonymous", display="anonymous", account_id="")


@dataclass
class AppState:
    store: Store
    hub: EventHub
    authenticator: Authenticator
    limiter: RateLimiter = field(default_factory=RateLimiter)
    blobs: BlobStore | None = None
    # What the UI is told to sign in with (and may connect to); the authenticator checks
    # the tokens.
    oidc: OidcConfig | None = None
    connections: Connections = field(init=False)

    def __post_init__(self) -> None:
        self.connections = Connections(self.store, self.authenticator, self.limiter)

    def context(
        self, actor: Actor, request: Request | WebSocket, request_id: str | None = None
    ) -> Context:
        return Context(
            store=self.store,
            hub=self.hub,
            actor=actor,
            request_id=request_id or _request_id(request),
            source_address=request.client.host if request.client else None,
        )


def _request_id(request: Request | WebSocket) -> str:
    given = request.headers.get(REQUEST_ID_HEADER, "")
    # Accept a caller's ID (for tracing across systems) only when it is short and plain.
    if 0 < len(given) <= 80 and given.replace("-", "").replace("_", "").isalnum():
        return given
    return f"req_{uuid.uuid4().hex}"


class EncliiGraphQL(GraphQL[GraphContext, None]):
    graphql_transport_ws_handler_class = TransportWSHandler
    graphql_ws_handler_class = LegacyWSHandler

    def __init__(self, state: AppState, **kwargs: Any) -> None:
        super().__init__(schema, **kwargs)
        self.state = state

    def encode_json(self, data: object) -> str:
        # orjson encodes a 76 KiB dashboard in 0.05 ms where json takes 0.8. Text, not
        # bytes: Strawberry sends bytes on a websocket as a binary frame, which GraphQL
        # websocket clients refuse. Integers beyond 64 bits (a JSON scalar may hold one)
        # are left to json.
        try:
            return orjson.dumps(data).decode()
        except TypeError:
            return super().encode_json(data)  # type: ignore[return-value]

    async def get_context(
        self, request: Request | WebSocket, response: Response | WebSocket
    ) -> GraphContext:
        actor = request.scope.get("state", {}).get(ACTOR_KEY, NOBODY)
        ctx = self.state.context(actor, request)
        if isinstance(response, Response) and ctx.request_id:
            response.headers[REQUEST_ID_HEADER] = ctx.request_id
        return GraphContext(
            ctx=ctx,
            request=request,
            response=response if isinstance(response, Response) else None,
            authenticator=self.state.authenticator,
            connections=self.state.connections,
            blobs=self.state.blobs,
        )


def _parse_time(value: str | None, name: str) -> datetime | None:
    if value is None:
        return None
    try:
        return parse_instant(value, name)
    except ValueError as exc:
        raise BadRequest(str(exc), (name,)) from None


async def _export_audit(request: Request) -> Response:
    state: AppState = request.app.state.enclii
    ctx = state.context(request.scope["state"][ACTOR_KEY], request)
    params = request.query_params
    try:
        outcome = params.get("outcome")
        where = audit.AuditFilter(
            project_id=params.get("projectId"),
            actor_id=params.get("actorId"),
            action=params.get("action"),
            entity_id=params.get("entityId"),
            outcome=AuditOutcome(outcome.lower()) if outcome else None,
            since=_parse_time(params.get("since"), "since"),
            until=_parse_time(params.get("until"), "until"),
        )
        records = audit.export(ctx, where)
        first = await anext(records, None)  # authorization errors surface before streaming
    except ValueError as exc:
        return Response(error_body(str(exc), {"code": "BAD_USER_INPUT"}), 400)
    except Failure as failure:
        status = (
            403 if failure.code == "FORBIDDEN" else 400 if failure.code == "BAD_USER_INPUT" else 404
        )
        return Response(error_body(failure.message, {"code": failure.code}), status)

    async def lines() -> AsyncIterator[bytes]:
        if first is None:
            return
        yield (json.dumps(first, separators=(",", ":")) + "\n").encode()
        async for record in records:
            yield (json.dumps(record, separators=(",", ":")) + "\n").encode()

    return StreamingResponse(lines(), media_type="application/x-ndjson")


def create_app(state: AppState) -> Starlette:
    graphql = EncliiGraphQL(
        state,
        graphql_ide="graphiql",
        allow_queries_via_get=True,
        keep_alive=True,
        keep_alive_interval=15,
        subscription_protocols=(GRAPHQL_TRANSPORT_WS_PROTOCOL, GRAPHQL_WS_PROTOCOL),
        connection_init_wait_timeout=timedelta(seconds=10),
        max_subscriptions_per_connection=PER_CONNECTION_CAP,
        multipart_uploads_enabled=True,  # createRelease takes a source tarball
    )

    async def healthz(_request: Request) -> Response:
        return JSONResponse({"status": "ok"})

    async def readyz(_request: Request) -> Response:
        problems = []
        try:
            await state.store.ping()
        except Exception as exc:
            problems.append(f"database: {exc.__class__.__name__}: {exc}")
        listener = state.hub.listener
        if listener is not None and not listener.connected.is_set():
            problems.append("event listener: not connected to PostgreSQL (reconnecting)")
        if problems:
            return JSONResponse({"status": "unavailable", "problems": problems}, status_code=503)
        return JSONResponse({"status": "ready", "store": state.store.backend})

    app = Starlette(
        routes=[
            Route("/healthz", healthz, methods=["GET", "HEAD"]),
            Route("/readyz", readyz, methods=["GET", "HEAD"]),
            Route("/graphql", graphql, methods=["GET", "POST"]),
            WebSocketRoute("/graphql", graphql),
            Route("/audit/export.ndjson", _export_audit, methods=["GET"]),
            Route(ui.CONFIG_PATH, ui.config_endpoint(state.oidc), methods=["GET", "HEAD"]),
            Mount(ui.ASSETS_PATH, app=ui.Assets()),
            # Last: every other page path is the UI's, for its client-side routes.
            Route("/{path:path}", ui.page_endpoint(state.oidc), methods=["GET", "HEAD"]),
        ],
        middleware=[Middleware(AuthGate, authenticator=state.authenticator, limiter=state.limiter)],
    )
    app.state.enclii = state
    return app
