"""Websocket authentication over a real socket, in both GraphQL websocket protocols:
connection_init credentials, close 4401 with the precise reason, revocation (in this process
and through the store, as another replica would), expiry while connected, and the caps on
operations per connection and per token."""

from __future__ import annotations

import asyncio
import json
from datetime import datetime, timedelta
from typing import Any

import pytest
from sqlalchemy import update
from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import ConnectionClosed
from websockets.typing import Subprotocol

from resolvers.bootstrap import Bootstrap
from resolvers.context import Context
from resolvers.identity.authenticate import MISSING_HELP
from resolvers.identity.tokens import DISPLAY_LEN, bootstrap_token, new_secret
from store.db import Store
from store.hub import EventHub
from store.models import ApiToken, User, utcnow
from tests.factories import make_environment, make_project
from tests.helpers import DEADLINE_S, Api, GraphQLWebSocket, LiveServer, WsProtocolError

PROTOCOLS = ["graphql-transport-ws", "graphql-ws"]
EVENTS = (
    "subscription($p: ID!, $after: Int) { events(projectId: $p, after: $after) { sequence type } }"
)
VIEWER = "{ viewer { user { id } } }"
REVOKE = """
mutation($id: ID!) {
  revokeToken(input: {id: $id}) {
    __typename
    ... on RevokeTokenSuccess { closedConnections token { revokedAt } }
  }
}
"""


def bearer(token: str) -> dict[str, str]:
    return {"authorization": f"Bearer {token}"}


def truncated(reason: str) -> str:
    """A close frame holds at most 123 bytes of reason; longer ones end in '...'."""
    encoded = reason.encode()
    return reason if len(encoded) <= 120 else encoded[:117].decode(errors="ignore") + "..."


async def _new_token(
    store: Store, user: User, expires_at: datetime | None = None
) -> tuple[str, str]:
    """Another token of ``user``: (its ID, its secret)."""
    row, secret = bootstrap_token(user)
    row.name = "ws"
    if expires_at is not None:
        row.expires_at = expires_at
    async with store.write() as session:
        session.add(row)
    return row.id, secret


async def _refused(
    url: str,
    protocol: str,
    payload: dict[str, Any] | None = None,
    headers: dict[str, str] | None = None,
) -> tuple[int, str]:
    """Send connection_init and return the close code and reason the server answers with."""
    async with connect(
        url,
        subprotocols=[Subprotocol(protocol)],
        additional_headers=headers,
        open_timeout=DEADLINE_S,
    ) as conn:
        await conn.send(json.dumps({"type": "connection_init", "payload": payload or {}}))
        return await _close_of(conn)


async def _close_of(conn: ClientConnection) -> tuple[int, str]:
    """Read until the server closes; anything but keep-alives on the way is a failure."""

    async def until_closed() -> tuple[int, str]:
        try:
            while True:
                message = json.loads(await conn.recv())
                if message["type"] not in ("ka", "ping", "pong", "next", "data"):
                    raise WsProtocolError(f"expected the socket to close, got {message}")
        except ConnectionClosed as closed:
            assert closed.rcvd is not None, "the server sent no close frame"
            return closed.rcvd.code, closed.rcvd.reason

    return await asyncio.wait_for(until_closed(), DEADLINE_S)


async def _acting_as(ws: GraphQLWebSocket, project_id: str) -> str | None:
    """Show the connection is authenticated: a subscription streams the project's first
    event. Over graphql-transport-ws also ask who the connection acts as (the legacy
    protocol carries subscriptions only)."""
    op = await ws.subscribe(EVENTS, {"p": project_id, "after": 0})
    assert (await ws.next_data(op))["events"] == {"sequence": 1, "type": "project.created"}
    await ws.unsubscribe(op)
    if ws.protocol != "graphql-transport-ws":
        return None
    op = await ws.subscribe(VIEWER)
    while True:
        message = await ws.receive_type("next", "complete")
        if message["id"] == op:
            break
    user_id: str = message["payload"]["data"]["viewer"]["user"]["id"]
    return user_id


async def _until_subscribers(hub: EventHub, count: int) -> None:
    async def wait() -> None:
        while hub.subscriber_count < count:
            await asyncio.sleep(0.01)

    await asyncio.wait_for(wait(), DEADLINE_S)


# -- connection_init -----------------------------------------------------------------------


@pytest.mark.parametrize("protocol", PROTOCOLS)
async def test_no_credentials_close_with_4401_and_the_reason(
    live_server: LiveServer, protocol: str
) -> None:
    code, reason = await _refused(live_server.ws_url, protocol)
    assert code == 4401
    assert reason == truncated("no credentials: " + MISSING_HELP)
    assert reason.endswith("...")
    assert len(reason.encode()) <= 123


@pytest.mark.parametrize("protocol", PROTOCOLS)
@pytest.mark.parametrize(
    ("payload", "expected"),
    [
        (
            {"authorization": "Bearer enclii_pat_" + "A" * 36},
            "the personal access token is incomplete or mistyped (its checksum is wrong)",
        ),
        (
            {"authorization": "Basic dXNlcjpwYXNz"},
            "the Authorization header must be 'Bearer <token>' (one token, no other scheme)",
        ),
        (
            {"token": "not-a-token"},
            "the bearer token is neither a personal access token (enclii_pat_…) nor a JWT",
        ),
    ],
)
async def test_a_bad_token_closes_with_4401_and_the_precise_message(
    live_server: LiveServer, protocol: str, payload: dict[str, Any], expected: str
) -> None:
    assert await _refused(live_server.ws_url, protocol, payload) == (4401, expected)


@pytest.mark.parametrize("protocol", PROTOCOLS)
async def test_an_unknown_token_closes_with_4401(live_server: LiveServer, protocol: str) -> None:
    code, reason = await _refused(live_server.ws_url, protocol, {"token": new_secret()})
    assert code == 4401
    assert reason == truncated("the token is not known here; " + MISSING_HELP)


@pytest.mark.parametrize("protocol", PROTOCOLS)
async def test_a_revoked_or_expired_token_closes_with_4401(
    live_server: LiveServer, store: Store, owner: Bootstrap, protocol: str
) -> None:
    revoked_id, revoked = await _new_token(store, owner.owner)
    async with store.write() as session:
        await session.execute(
            update(ApiToken).where(ApiToken.id == revoked_id).values(revoked_at=utcnow())
        )
    assert await _refused(live_server.ws_url, protocol, bearer(revoked)) == (
        4401,
        f"the token {revoked[:DISPLAY_LEN]}… was revoked",
    )
    expired_at = utcnow() - timedelta(minutes=1)
    _, expired = await _new_token(store, owner.owner, expires_at=expired_at)
    assert await _refused(live_server.ws_url, protocol, bearer(expired)) == (
        4401,
        f"the token {expired[:DISPLAY_LEN]}… expired at {expired_at.isoformat()}",
    )


@pytest.mark.parametrize("protocol", PROTOCOLS)
async def test_a_bad_payload_token_is_not_rescued_by_a_good_header(
    live_server: LiveServer, token: str, protocol: str
) -> None:
    """The payload is what the client chose to send; it wins over the handshake header."""
    code, _ = await _refused(
        live_server.ws_url, protocol, {"token": new_secret()}, headers=bearer(token)
    )
    assert code == 4401


@pytest.mark.parametrize("protocol", PROTOCOLS)
@pytest.mark.parametrize("where", ["authorization", "Authorization", "token", "header"])
async def test_credentials_in_the_payload_or_the_handshake_header(
    live_server: LiveServer, ctx: Context, owner: Bootstrap, token: str, protocol: str, where: str
) -> None:
    project = await make_project(ctx, "shop")
    payload: dict[str, Any] | None
    headers: dict[str, str] | None = None
    if where == "token":
        payload = {"token": token}
    elif where == "header":
        payload, headers = None, {"Authorization": f"Bearer {token}"}
    else:
        payload = {where: f"Bearer {token}"}
    async with GraphQLWebSocket.connect(
        live_server.ws_url, protocol, payload=payload, headers=headers
    ) as ws:
        assert await _acting_as(ws, project.id) in (owner.owner.id, None)


# -- revocation and expiry -----------------------------------------------------------------


@pytest.mark.parametrize("protocol", PROTOCOLS)
async def test_revoking_the_token_closes_its_socket(
    live_server: LiveServer, ctx: Context, api: Api, owner: Bootstrap, protocol: str
) -> None:
    project = await make_project(ctx, "shop")
    token_id, secret = await _new_token(ctx.store, owner.owner)
    async with GraphQLWebSocket.connect(live_server.ws_url, protocol, payload=bearer(secret)) as ws:
        op = await ws.subscribe(EVENTS, {"p": project.id, "after": 0})
        assert (await ws.next_data(op))["events"]["sequence"] == 1
        # Another connection, of another token, stays open.
        async with GraphQLWebSocket.connect(
            live_server.ws_url, protocol, payload=api.headers
        ) as other:
            data = await api.data(REVOKE, {"id": token_id})
            assert data["revokeToken"]["__typename"] == "RevokeTokenSuccess"
            assert data["revokeToken"]["closedConnections"] == 1
            assert data["revokeToken"]["token"]["revokedAt"] is not None
            assert await _close_of(ws.conn) == (4401, "token revoked")
            assert await _acting_as(other, project.id) in (owner.owner.id, None)
    # The revoked secret is refused from now on, at once (no cache lag in this process).
    assert (await _refused(live_server.ws_url, protocol, bearer(secret)))[0] == 4401


@pytest.mark.parametrize("protocol", PROTOCOLS)
async def test_revoking_a_token_without_connections_closes_none(
    live_server: LiveServer, ctx: Context, api: Api, owner: Bootstrap, protocol: str
) -> None:
    project = await make_project(ctx, "shop")
    token_id, _ = await _new_token(ctx.store, owner.owner)
    async with GraphQLWebSocket.connect(live_server.ws_url, protocol, payload=api.headers) as ws:
        data = await api.data(REVOKE, {"id": token_id})
        assert data["revokeToken"]["closedConnections"] == 0
        assert await _acting_as(ws, project.id) in (owner.owner.id, None)


@pytest.mark.parametrize("protocol", PROTOCOLS)
async def test_a_token_that_expires_while_connected_closes_its_socket(
    live_server: LiveServer, ctx: Context, owner: Bootstrap, protocol: str
) -> None:
    project = await make_project(ctx, "shop")
    # A moment ahead: long enough to connect, short enough to pass while connected.
    _, secret = await _new_token(
        ctx.store, owner.owner, expires_at=utcnow() + timedelta(seconds=1.5)
    )
    async with GraphQLWebSocket.connect(live_server.ws_url, protocol, payload=bearer(secret)) as ws:
        op = await ws.subscribe(EVENTS, {"p": project.id, "after": 0})
        assert (await ws.next_data(op))["events"]["sequence"] == 1
        assert await _close_of(ws.conn) == (4401, "token expired")


@pytest.mark.parametrize("protocol", PROTOCOLS)
async def test_a_revocation_in_the_store_is_found_by_the_sweep(
    live_server: LiveServer,
    ctx: Context,
    owner: Bootstrap,
    protocol: str,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr("graph.websockets.SWEEP_INTERVAL_S", 0.05)
    project = await make_project(ctx, "shop")
    token_id, secret = await _new_token(ctx.store, owner.owner)
    async with GraphQLWebSocket.connect(live_server.ws_url, protocol, payload=bearer(secret)) as ws:
        op = await ws.subscribe(EVENTS, {"p": project.id, "after": 0})
        assert (await ws.next_data(op))["events"]["sequence"] == 1
        # Another replica revoked it: only the store knows.
        async with ctx.store.write() as session:
            await session.execute(
                update(ApiToken).where(ApiToken.id == token_id).values(revoked_at=utcnow())
            )
        assert await _close_of(ws.conn) == (4401, "token revoked")
    # The sweep also dropped the cached identity: the secret is refused at once.
    code, reason = await _refused(live_server.ws_url, protocol, bearer(secret))
    assert (code, reason) == (4401, f"the token {secret[:DISPLAY_LEN]}… was revoked")


# -- caps ----------------------------------------------------------------------------------


def _refusal_message(message: dict[str, Any]) -> str:
    payload = message["payload"]
    text: str = (payload[0] if isinstance(payload, list) else payload)["message"]
    return text


@pytest.mark.parametrize("protocol", PROTOCOLS)
async def test_a_connection_holds_at_most_100_operations(
    live_server: LiveServer, ctx: Context, token: str, protocol: str
) -> None:
    quiet = await make_project(ctx, "quiet")
    busy = await make_project(ctx, "busy")
    async with GraphQLWebSocket.connect(live_server.ws_url, protocol, payload=bearer(token)) as ws:
        ops = [await ws.subscribe(EVENTS, {"p": quiet.id}) for _ in range(100)]
        extra = await ws.subscribe(EVENTS, {"p": busy.id})
        refused = await ws.receive_type("error")
        assert refused["id"] == extra  # the first 100 were all accepted
        assert _refusal_message(refused) == "Subscription limit reached"
        await _until_subscribers(ctx.hub, 100)
        # Ending one makes room for another (which replays the busy project's history).
        await ws.unsubscribe(ops[0])
        again = await ws.subscribe(EVENTS, {"p": busy.id, "after": 0})
        while True:
            message = await ws.receive_type("next", "data", "complete")
            if message["type"] != "complete":
                break
            assert message["id"] == ops[0]
        assert message["id"] == again
        assert message["payload"]["data"]["events"] == {"sequence": 1, "type": "project.created"}


@pytest.mark.parametrize("protocol", PROTOCOLS)
async def test_a_token_holds_at_most_per_token_cap_operations(
    live_server: LiveServer,
    ctx: Context,
    token: str,
    protocol: str,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr("graph.websockets.PER_TOKEN_CAP", 3)
    project = await make_project(ctx, "shop")
    async with (
        GraphQLWebSocket.connect(live_server.ws_url, protocol, payload=bearer(token)) as first,
        GraphQLWebSocket.connect(live_server.ws_url, protocol, payload=bearer(token)) as second,
    ):
        await first.subscribe(EVENTS, {"p": project.id})
        await first.subscribe(EVENTS, {"p": project.id})
        await _until_subscribers(ctx.hub, 2)
        await second.subscribe(EVENTS, {"p": project.id})
        await _until_subscribers(ctx.hub, 3)
        fourth = await second.subscribe(EVENTS, {"p": project.id})
        refused = await second.receive_type("error")
        assert refused["id"] == fourth
        assert _refusal_message(refused) == "Subscription limit for this token reached (3 at once)"
        if protocol == "graphql-transport-ws":
            assert refused["payload"][0]["extensions"] == {"code": "RATE_LIMITED"}
        # The three accepted subscriptions still stream.
        await make_environment(ctx, project, "dev")
        for ws, count in ((first, 2), (second, 1)):
            types = set()
            for _ in range(count):
                message = await ws.receive_type("next", "data")
                types.add(message["payload"]["data"]["events"]["type"])
            assert types == {"environment.created"}


async def test_legacy_protocol_refusal_has_the_rate_limited_code(
    live_server: LiveServer, ctx: Context, token: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Rate limits are top-level GraphQL errors with extensions.code (DESIGN.md); the
    legacy graphql-ws refusal sends only a message."""
    monkeypatch.setattr("graph.websockets.PER_TOKEN_CAP", 1)
    project = await make_project(ctx, "shop")
    async with GraphQLWebSocket.connect(
        live_server.ws_url, "graphql-ws", payload=bearer(token)
    ) as ws:
        await ws.subscribe(EVENTS, {"p": project.id})
        await _until_subscribers(ctx.hub, 1)
        await ws.subscribe(EVENTS, {"p": project.id})
        refused = await ws.receive_type("error")
        assert refused["payload"].get("extensions", {}).get("code") == "RATE_LIMITED", refused
