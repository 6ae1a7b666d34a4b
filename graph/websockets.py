"""Websocket connections: authenticated at connection_init, capped, and closed when their
token stops being valid.

Both protocols (graphql-transport-ws and the legacy graphql-ws) authenticate in
connection_init — ``{"authorization": "Bearer …"}`` or ``{"token": "…"}`` in the payload,
since browsers cannot set headers on websockets — or by the Authorization header of the
handshake. A failure closes the socket with 4401 and the precise reason. Each operation
counts against the token's rate limit; a connection holds at most 100 operations and a token
at most ``PER_TOKEN_CAP`` across its connections. Revoking a token closes its connections at
once in this process, and a periodic sweep catches revocations made through other replicas
and tokens that expire while connected.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import math
from collections import defaultdict
from datetime import UTC, datetime
from typing import Any, Final, Protocol

from sqlalchemy import select
from strawberry.subscriptions.protocols.graphql_transport_ws.handlers import (
    BaseGraphQLTransportWSHandler,
)
from strawberry.subscriptions.protocols.graphql_transport_ws.types import (
    ConnectionInitMessage,
    SubscribeMessage,
)
from strawberry.subscriptions.protocols.graphql_ws.handlers import BaseGraphQLWSHandler
from strawberry.subscriptions.protocols.graphql_ws.types import (
    ConnectionInitMessage as LegacyInitMessage,
)
from strawberry.subscriptions.protocols.graphql_ws.types import StartMessage

from graph.auth import rate_key
from graph.context import GraphContext
from resolvers.context import Actor
from resolvers.errors import Unauthenticated
from resolvers.identity.authenticate import Authenticator
from resolvers.identity.ratelimit import RateLimiter
from store.aio import cancel_and_wait
from store.db import Store
from store.models import ApiToken

log = logging.getLogger(__name__)

PER_CONNECTION_CAP: Final = 100
PER_TOKEN_CAP: Final = 500
SWEEP_INTERVAL_S: Final = 10.0
CLOSE_UNAUTHENTICATED: Final = 4401
CLOSE_REASON_BYTES: Final = 120  # a close frame carries at most 123 bytes of reason


def _close_reason(text: str) -> str:
    encoded = text.encode()
    if len(encoded) <= CLOSE_REASON_BYTES:
        return text
    return encoded[: CLOSE_REASON_BYTES - 3].decode(errors="ignore") + "..."


def _authorization(payload: Any, header: str | None) -> str | None:
    if isinstance(payload, dict):
        for key in ("authorization", "Authorization"):
            if isinstance(payload.get(key), str):
                return str(payload[key])
        if isinstance(payload.get("token"), str):
            return f"Bearer {payload['token']}"
    return header


class _Handler(Protocol):
    context: GraphContext

    async def close(self, code: int, reason: str) -> None: ...

    def operation_count(self) -> int: ...


class Connections:
    """The authenticated websocket connections of this process, by token."""

    def __init__(self, store: Store, authenticator: Authenticator, limiter: RateLimiter) -> None:
        self.store = store
        self.authenticator = authenticator
        self.limiter = limiter
        self._by_key: dict[str, set[_Handler]] = defaultdict(set)
        self._expiry: dict[_Handler, asyncio.TimerHandle] = {}
        self._closing: set[asyncio.Task[None]] = set()
        self._sweeper: asyncio.Task[None] | None = None

    def add(self, handler: _Handler, actor: Actor) -> None:
        self._by_key[rate_key(actor)].add(handler)
        if actor.expires_at is not None:
            delay = (actor.expires_at - datetime.now(UTC)).total_seconds()
            loop = asyncio.get_running_loop()
            self._expiry[handler] = loop.call_later(max(0.0, delay), self._expire, handler)
        if self._sweeper is None or self._sweeper.done():
            self._sweeper = asyncio.get_running_loop().create_task(self._sweep())

    def _expire(self, handler: _Handler) -> None:
        task = asyncio.get_running_loop().create_task(
            handler.close(CLOSE_UNAUTHENTICATED, "token expired")
        )
        self._closing.add(task)  # keep a reference until it is done
        task.add_done_callback(self._closing.discard)

    def remove(self, handler: _Handler) -> None:
        timer = self._expiry.pop(handler, None)
        if timer is not None:
            timer.cancel()
        for key, handlers in list(self._by_key.items()):
            handlers.discard(handler)
            if not handlers:
                del self._by_key[key]

    def operations_of(self, actor: Actor) -> int:
        return sum(h.operation_count() for h in self._by_key.get(rate_key(actor), ()))

    async def close_token(self, token_id: str, reason: str) -> int:
        """Close every connection authenticated with ``token_id``; how many there were."""
        handlers = list(self._by_key.get(f"token:{token_id}", ()))
        for handler in handlers:
            await handler.close(CLOSE_UNAUTHENTICATED, reason)
        return len(handlers)

    async def _sweep(self) -> None:
        while self._by_key:
            await asyncio.sleep(SWEEP_INTERVAL_S)
            token_ids = [k.removeprefix("token:") for k in self._by_key if k.startswith("token:")]
            if not token_ids:
                continue
            try:
                async with self.store.read() as session:
                    rows = (
                        await session.execute(
                            select(ApiToken.id, ApiToken.revoked_at).where(
                                ApiToken.id.in_(token_ids)
                            )
                        )
                    ).all()
            except Exception:
                log.warning("checking websocket tokens failed; will retry", exc_info=True)
                continue
            live = {row.id for row in rows if row.revoked_at is None}
            for token_id in token_ids:
                if token_id not in live:
                    self.authenticator.forget(token_id=token_id)
                    await self.close_token(token_id, "token revoked")

    async def close(self) -> None:
        if self._sweeper is not None:
            await cancel_and_wait(self._sweeper)
        for timer in self._expiry.values():
            timer.cancel()


def _connections(handler: Any) -> Connections:
    connections = handler.context.connections
    assert isinstance(connections, Connections), "the app puts Connections in every context"
    return connections


async def _authenticate(handler: Any, payload: Any) -> Actor | None:
    """Authenticate a connection_init; on failure close the socket and return None."""
    connections = _connections(handler)
    header = handler.context.request.headers.get("authorization")
    try:
        actor = await connections.authenticator.authenticate(_authorization(payload, header))
    except Unauthenticated as exc:
        task = getattr(handler, "connection_init_timeout_task", None)
        if task is not None:
            task.cancel()
        await handler.websocket.close(code=CLOSE_UNAUTHENTICATED, reason=_close_reason(exc.message))
        return None
    handler.context.ctx.actor = actor
    connections.add(handler, actor)
    return actor


def _refusal(handler: Any) -> str | None:
    """Why the connection may not start one more operation now, or None."""
    connections = _connections(handler)
    actor: Actor = handler.context.ctx.actor
    if connections.operations_of(actor) >= PER_TOKEN_CAP:
        return f"Subscription limit for this token reached ({PER_TOKEN_CAP} at once)"
    decision = connections.limiter.take(rate_key(actor))
    if not decision.allowed:
        return f"Rate limit exceeded; retry in {max(1, math.ceil(decision.retry_after))}s"
    return None


class TransportWSHandler(BaseGraphQLTransportWSHandler[GraphContext, None]):
    async def handle_connection_init(self, message: ConnectionInitMessage) -> None:
        if self.connection_init_received:
            await super().handle_connection_init(message)  # refuses a second init
            return
        if await _authenticate(self, message.get("payload")) is not None:
            await super().handle_connection_init(message)

    async def handle_subscribe(self, message: SubscribeMessage) -> None:
        if self.connection_acknowledged and (refusal := _refusal(self)):
            await self.send_message(
                {
                    "id": message["id"],
                    "type": "error",
                    "payload": [{"message": refusal, "extensions": {"code": "RATE_LIMITED"}}],
                }
            )
            return
        await super().handle_subscribe(message)

    def operation_count(self) -> int:
        return len(self.operations)

    async def close(self, code: int, reason: str) -> None:
        with contextlib.suppress(Exception):
            await self.websocket.close(code=code, reason=reason)

    async def shutdown(self) -> None:
        _connections(self).remove(self)
        await super().shutdown()


class LegacyWSHandler(BaseGraphQLWSHandler[GraphContext, None]):
    async def handle_connection_init(self, message: LegacyInitMessage) -> None:
        if await _authenticate(self, message.get("payload")) is not None:
            await super().handle_connection_init(message)

    async def handle_start(self, message: StartMessage) -> None:
        if self.connection_acknowledged and (refusal := _refusal(self)):
            await self.send_message(
                {
                    "type": "error",
                    "id": message["id"],
                    "payload": {"message": refusal, "extensions": {"code": "RATE_LIMITED"}},
                }
            )
            return
        await super().handle_start(message)

    def operation_count(self) -> int:
        return len(self.tasks)

    async def close(self, code: int, reason: str) -> None:
        with contextlib.suppress(Exception):
            await self.websocket.close(code=code, reason=reason)

    async def handle(self) -> None:
        try:
            await super().handle()
        finally:
            _connections(self).remove(self)
