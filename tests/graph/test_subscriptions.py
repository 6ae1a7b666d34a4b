"""The events subscription over real websockets, in both GraphQL websocket protocols."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from resolvers.context import Context
from store.hub import EventHub
from tests.factories import make_environment, make_project, make_service
from tests.helpers import Api, GraphQLWebSocket, LiveServer, WsProtocolError

EVENTS = """
subscription($projectId: ID!, $after: Int) {
  events(projectId: $projectId, after: $after) { sequence type entityId payload }
}
"""

PROTOCOLS = ["graphql-transport-ws", "graphql-ws"]


def auth(token: str) -> dict[str, str]:
    return {"authorization": f"Bearer {token}"}


async def _wait_subscribed(hub: EventHub, count: int = 1) -> None:
    async def wait() -> None:
        while hub.subscriber_count < count:
            await asyncio.sleep(0.01)

    await asyncio.wait_for(wait(), 30)


@pytest.mark.parametrize("protocol", PROTOCOLS)
async def test_history_then_live_events(
    live_server: LiveServer, ctx: Context, token: str, protocol: str
) -> None:
    project = await make_project(ctx, "shop")
    await make_environment(ctx, project, "stage")
    async with GraphQLWebSocket.connect(live_server.ws_url, protocol, payload=auth(token)) as ws:
        op = await ws.subscribe(EVENTS, {"projectId": project.id, "after": 0})
        replay = [(await ws.next_data(op))["events"] for _ in range(2)]
        assert [(e["sequence"], e["type"]) for e in replay] == [
            (1, "project.created"),
            (2, "environment.created"),
        ]
        service = await make_service(ctx, "shop", "stage", "api")
        live = (await ws.next_data(op))["events"]
        assert live["sequence"] == 3
        assert live["type"] == "service.created"
        assert live["entityId"] == service.id
        assert live["payload"]["name"] == "api"
        await ws.unsubscribe(op)
    await asyncio.wait_for(_until_no_subscribers(ctx.hub), 30)


async def _until_no_subscribers(hub: EventHub) -> None:
    while hub.subscriber_count:
        await asyncio.sleep(0.01)


@pytest.mark.parametrize("protocol", PROTOCOLS)
async def test_reconnecting_with_the_last_cursor_misses_nothing(
    live_server: LiveServer, ctx: Context, token: str, protocol: str
) -> None:
    project = await make_project(ctx, "shop")
    seen: list[int] = []
    async with GraphQLWebSocket.connect(live_server.ws_url, protocol, payload=auth(token)) as ws:
        op = await ws.subscribe(EVENTS, {"projectId": project.id, "after": 0})
        seen.append((await ws.next_data(op))["events"]["sequence"])
    # Disconnected: these happen while nobody listens.
    for env in ("dev", "stage", "prod"):
        await make_environment(ctx, project, env)
    async with GraphQLWebSocket.connect(live_server.ws_url, protocol, payload=auth(token)) as ws:
        op = await ws.subscribe(EVENTS, {"projectId": project.id, "after": seen[-1]})
        for _ in range(3):
            seen.append((await ws.next_data(op))["events"]["sequence"])
    assert seen == [1, 2, 3, 4]


async def test_without_cursor_only_new_events_arrive(
    live_server: LiveServer, ctx: Context, token: str
) -> None:
    project = await make_project(ctx, "shop")
    async with GraphQLWebSocket.connect(live_server.ws_url, payload=auth(token)) as ws:
        op = await ws.subscribe(EVENTS, {"projectId": project.id})
        await _wait_subscribed(ctx.hub)
        await make_environment(ctx, project, "dev")
        event: dict[str, Any] = (await ws.next_data(op))["events"]
        assert (event["sequence"], event["type"]) == (2, "environment.created")


async def test_unknown_project_is_an_error_not_a_silent_stream(
    live_server: LiveServer, ctx: Context, token: str
) -> None:
    async with GraphQLWebSocket.connect(live_server.ws_url, payload=auth(token)) as ws:
        op = await ws.subscribe(EVENTS, {"projectId": "prj_01M8EH5K0V56WD37Z896MQ0S8X"})
        with pytest.raises(WsProtocolError) as caught:
            await ws.next_data(op)
        assert "Project 'prj_01M8EH5K0V56WD37Z896MQ0S8X' not found" in str(caught.value)
        assert "NOT_FOUND" in str(caught.value)


async def test_queries_and_mutations_work_over_the_websocket(
    live_server: LiveServer, ctx: Context, token: str
) -> None:
    async with GraphQLWebSocket.connect(live_server.ws_url, payload=auth(token)) as ws:
        op = await ws.subscribe(
            'mutation { createProject(input: {name: "Over WS"}) { __typename } }'
        )
        data = await ws.next_data(op)
        assert data == {"createProject": {"__typename": "CreateProjectSuccess"}}
        message = await ws.receive_type("complete")
        assert message["id"] == op


async def test_a_subscription_over_http_is_refused_with_a_400_that_says_so(
    api: Api, ctx: Context
) -> None:
    project = await make_project(ctx, "http-subs")
    response = await api.client.post(
        "/graphql",
        json={
            "query": "subscription($p: ID!) { events(projectId: $p) { seq } }",
            "variables": {"p": project.id},
        },
        headers=api.headers,
    )
    assert response.status_code == 400
    assert "subscriptions are not allowed when using POST" in response.text
