"""The ASGI app: /graphql (HTTP, websockets, GraphiQL), /healthz, /readyz and the UI at /."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import HTMLResponse, JSONResponse, Response
from starlette.routing import Route, WebSocketRoute
from starlette.websockets import WebSocket
from strawberry.asgi import GraphQL
from strawberry.subscriptions import GRAPHQL_TRANSPORT_WS_PROTOCOL, GRAPHQL_WS_PROTOCOL

import web
from graph.context import GraphContext
from graph.schema import schema
from resolvers.context import Actor, Context
from store.db import Store
from store.hub import EventHub

REQUEST_ID_HEADER = "x-request-id"


@dataclass
class AppState:
    store: Store
    hub: EventHub
    actor: Actor


def _request_id(request: Request | WebSocket) -> str:
    given = request.headers.get(REQUEST_ID_HEADER, "")
    # Accept a caller's ID (for tracing across systems) only when it is short and plain.
    if 0 < len(given) <= 80 and given.replace("-", "").replace("_", "").isalnum():
        return given
    return f"req_{uuid.uuid4().hex}"


class EncliiGraphQL(GraphQL[GraphContext, None]):
    def __init__(self, state: AppState, **kwargs: Any) -> None:
        super().__init__(schema, **kwargs)
        self.state = state

    async def get_context(
        self, request: Request | WebSocket, response: Response | WebSocket
    ) -> GraphContext:
        request_id = _request_id(request)
        if isinstance(response, Response):
            response.headers[REQUEST_ID_HEADER] = request_id
        ctx = Context(
            store=self.state.store,
            hub=self.state.hub,
            actor=self.state.actor,
            request_id=request_id,
            source_address=request.client.host if request.client else None,
        )
        return GraphContext(
            ctx=ctx,
            request=request,
            response=response if isinstance(response, Response) else None,
        )


def create_app(state: AppState) -> Starlette:
    graphql = EncliiGraphQL(
        state,
        graphql_ide="graphiql",
        allow_queries_via_get=True,
        keep_alive=True,
        keep_alive_interval=15,
        subscription_protocols=(GRAPHQL_TRANSPORT_WS_PROTOCOL, GRAPHQL_WS_PROTOCOL),
        connection_init_wait_timeout=timedelta(seconds=10),
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

    async def index(_request: Request) -> Response:
        return HTMLResponse(web.placeholder_page())

    app = Starlette(
        routes=[
            Route("/healthz", healthz, methods=["GET", "HEAD"]),
            Route("/readyz", readyz, methods=["GET", "HEAD"]),
            Route("/graphql", graphql, methods=["GET", "POST"]),
            WebSocketRoute("/graphql", graphql),
            Route("/", index, methods=["GET", "HEAD"]),
        ]
    )
    app.state.enclii = state
    return app
