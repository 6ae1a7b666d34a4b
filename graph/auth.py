"""The gate in front of the API: authentication and rate limits for HTTP requests.

Every HTTP request to the API must carry a valid bearer token, except ``/healthz``,
``/readyz``, the UI (its pages, ``/assets/…`` and ``/ui/config.json``, which hold no data: the
UI signs in from the browser) and GraphiQL's page itself (which then sends the token the
user enters). A request without one gets 401 with an UNAUTHENTICATED error whose
``extensions.reason`` says exactly what was wrong; one over its token's rate gets 429 with
RATE_LIMITED and Retry-After. Every authenticated response carries the RateLimit headers.
Websockets authenticate in their own protocol (``graph.websockets``).
"""

from __future__ import annotations

import json
import math
from collections.abc import Iterable
from typing import Any, Final

from starlette.datastructures import Headers
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from resolvers.context import Actor
from resolvers.errors import Unauthenticated
from resolvers.identity.authenticate import Authenticator
from resolvers.identity.ratelimit import Decision, RateLimiter

ACTOR_KEY: Final = "enclii.actor"
OPEN_PATHS: Final = frozenset({"/healthz", "/readyz", "/ui/config.json"})


def rate_key(actor: Actor) -> str:
    return f"token:{actor.token_id}" if actor.token_id else f"user:{actor.id}"


def rate_headers(decision: Decision) -> list[tuple[bytes, bytes]]:
    headers = [
        (b"ratelimit-limit", str(decision.limit).encode()),
        (b"ratelimit-remaining", str(decision.remaining).encode()),
        (b"ratelimit-reset", str(math.ceil(decision.reset_after)).encode()),
    ]
    if not decision.allowed:
        headers.append((b"retry-after", str(max(1, math.ceil(decision.retry_after))).encode()))
    return headers


def error_body(message: str, extensions: dict[str, Any]) -> bytes:
    return json.dumps({"errors": [{"message": message, "extensions": extensions}]}).encode()


async def _respond(
    send: Send, status: int, body: bytes, headers: Iterable[tuple[bytes, bytes]]
) -> None:
    await send(
        {
            "type": "http.response.start",
            "status": status,
            "headers": [
                (b"content-type", b"application/json"),
                (b"content-length", str(len(body)).encode()),
                *headers,
            ],
        }
    )
    await send({"type": "http.response.body", "body": body})


def _is_page_request(scope: Scope, headers: Headers) -> bool:
    """The UI and GraphiQL's own HTML: static pages that hold no data."""
    if scope["method"] not in ("GET", "HEAD"):
        return False
    path = scope["path"]
    if path == "/graphql":
        # GraphiQL's page has no parameters; anything else may be a query in disguise
        # (parameter names can be percent-encoded), so it needs a token.
        return not scope.get("query_string") and "text/html" in headers.get("accept", "")
    # /audit itself is a page of the UI; the audit export lives below it.
    return not path.startswith(("/graphql", "/audit/"))


class AuthGate:
    """Pure ASGI middleware, so streamed responses and websockets pass untouched."""

    async def _too_many(self, send: Send, decision: Decision) -> None:
        wait = max(1, math.ceil(decision.retry_after))
        await _respond(
            send,
            429,
            error_body(
                f"Rate limit exceeded: {self.limiter.burst} requests at once and "
                f"{round(self.limiter.rate * 60)} a minute; retry in {wait}s.",
                {"code": "RATE_LIMITED", "retryAfter": wait},
            ),
            rate_headers(decision),
        )

    def __init__(self, app: ASGIApp, authenticator: Authenticator, limiter: RateLimiter) -> None:
        self.app = app
        self.authenticator = authenticator
        self.limiter = limiter

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["path"] in OPEN_PATHS:
            await self.app(scope, receive, send)
            return
        headers = Headers(scope=scope)
        if _is_page_request(scope, headers):
            await self.app(scope, receive, send)
            return
        try:
            actor = await self.authenticator.authenticate(headers.get("authorization"))
        except Unauthenticated as exc:
            # Failed attempts are limited per address, so tokens cannot be guessed at speed.
            client = scope.get("client")
            attempt = self.limiter.take(f"unauthenticated:{client[0] if client else '?'}")
            if not attempt.allowed:
                await self._too_many(send, attempt)
                return
            description = exc.message.replace('"', "'")
            await _respond(
                send,
                401,
                error_body(exc.message, {"code": exc.code, "reason": exc.reason}),
                [
                    (
                        b"www-authenticate",
                        f'Bearer realm="enclii", error="invalid_token", '
                        f'error_description="{description}"'.encode(),
                    )
                ],
            )
            return
        decision = self.limiter.take(rate_key(actor))
        extra = rate_headers(decision)
        if not decision.allowed:
            await self._too_many(send, decision)
            return
        scope.setdefault("state", {})[ACTOR_KEY] = actor

        async def send_with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                message = {**message, "headers": [*message.get("headers", []), *extra]}
            await send(message)

        await self.app(scope, receive, send_with_headers)
