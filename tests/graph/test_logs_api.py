"""Service logs through the API: the logs query over HTTP, and the logs subscription over
real websockets in both GraphQL websocket protocols, on both backends."""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any, Final

import pytest
from sqlalchemy.ext.asyncio import AsyncSession

from resolvers.bootstrap import Bootstrap
from resolvers.context import Context
from resolvers.identity.tokens import bootstrap_token
from store.db import Store
from store.hub import EventHub
from store.ids import new_id
from store.logs import LogQuery, LogRecord, RawLine, append_lines, read_lines
from store.models import Membership, Role, Service, User, utcnow
from tests.factories import make_environment, make_project, make_service
from tests.helpers import (
    DEADLINE_S,
    Api,
    GraphQLWebSocket,
    LiveServer,
    WsProtocolError,
    count_statements,
)

PROTOCOLS: Final = ["graphql-transport-ws", "graphql-ws"]

LOGS = """
query(
  $id: ID!, $limit: Int! = 100, $after: Int, $since: DateTime, $until: DateTime,
  $grep: String, $releaseId: ID
) {
  logs(
    serviceId: $id, limit: $limit, after: $after, since: $since, until: $until,
    grep: $grep, releaseId: $releaseId
  ) {
    lines { sequence ts level message fields source stream releaseId }
    hasMore
    cursor
  }
}
"""

FOLLOW = """
subscription($id: ID!, $grep: String, $after: Int) {
  logs(serviceId: $id, grep: $grep, after: $after) { sequence message level }
}
"""


# -- helpers ---------------------------------------------------------------------------------


async def append(
    store: Store,
    service_id: str,
    texts: Sequence[str],
    *,
    ts: Sequence[datetime] | None = None,
    release_id: str | None = None,
) -> int:
    """Store ``texts`` as one batch; the last sequence."""
    lines = [
        RawLine(
            service_id=service_id,
            release_id=release_id,
            source="replica-0",
            stream="stdout",
            text=text,
            ts=ts[i] if ts is not None else utcnow(),
        )
        for i, text in enumerate(texts)
    ]
    async with store.write() as session:
        return (await append_lines(session, lines))[service_id]


def numbered(start: int, stop: int, word: str = "line") -> list[str]:
    return [f"{word} {i}" for i in range(start, stop)]


async def page(api: Api, service_id: str, **variables: Any) -> dict[str, Any]:
    data = await api.data(LOGS, {"id": service_id, **variables})
    result: dict[str, Any] = data["logs"]
    return result


def seqs(result: dict[str, Any]) -> list[int]:
    return [line["sequence"] for line in result["lines"]]


async def error_of(api: Api, service_id: str, **variables: Any) -> dict[str, Any]:
    body = await api.execute(LOGS, {"id": service_id, **variables})
    assert body.get("data") is None
    [error] = body["errors"]
    assert isinstance(error, dict)
    return error


@pytest.fixture
async def service(ctx: Context) -> Service:
    project = await make_project(ctx, "shop")
    await make_environment(ctx, project, "stage")
    return await make_service(ctx, "shop", "stage", "api")


@dataclass(frozen=True)
class Member:
    user_id: str
    api: Api
    token: str


async def add_member(
    store: Store,
    api: Api,
    owner: Bootstrap,
    name: str,
    role: Role,
    project_id: str | None = None,
    scopes: tuple[str, ...] = ("*",),
) -> Member:
    """A user with ``role`` on the account (or only on ``project_id``) and a token of theirs."""
    account_id = owner.owner.account_id
    async with store.write() as session:
        user = User(
            id=new_id("user"),
            account_id=account_id,
            subject=f"test:{name}",
            email=f"{name}@example.test",
            display_name=name,
        )
        session.add(user)
        await session.flush()
        session.add(
            Membership(
                id=new_id("membership"),
                account_id=account_id,
                project_id=project_id,
                user_id=user.id,
                scope_ref=project_id or account_id,
                role=role,
            )
        )
        row, secret = bootstrap_token(user)
        row.name = f"{name}-token"
        row.scopes = list(scopes)
        session.add(row)
        user_id = user.id
    return Member(user_id, Api(api.client, {"authorization": f"Bearer {secret}"}), secret)


def auth(token: str) -> dict[str, str]:
    return {"authorization": f"Bearer {token}"}


async def receive_lines(ws: GraphQLWebSocket, op: str, n: int) -> list[dict[str, Any]]:
    return [(await ws.next_data(op))["logs"] for _ in range(n)]


async def until_following(statements: list[str]) -> None:
    """Wait until the subscription is following (the hub has read its stream's events).

    A follow without ``after`` starts from the newest line at that moment; a line appended
    before it began is history it rightly does not replay, so tests that append "live"
    lines wait for this point. A line committed while the follow starts is covered by
    ``test_a_line_committed_while_the_subscription_starts_is_delivered``."""

    async def wait() -> None:
        while not any("FROM events" in s for s in statements):
            await asyncio.sleep(0.01)

    await asyncio.wait_for(wait(), DEADLINE_S)


async def until_no_subscribers(hub: EventHub) -> None:
    async def wait() -> None:
        while hub.subscriber_count:
            await asyncio.sleep(0.01)

    await asyncio.wait_for(wait(), DEADLINE_S)


# -- the logs query --------------------------------------------------------------------------


async def test_without_a_cursor_the_newest_lines_come_oldest_first(
    api: Api, store: Store, service: Service
) -> None:
    await append(store, service.id, numbered(1, 16))
    await append(store, service.id, numbered(16, 26))
    result = await page(api, service.id, limit=10)
    assert seqs(result) == list(range(16, 26))
    assert [line["message"] for line in result["lines"]] == numbered(16, 26)
    assert result["hasMore"] is False
    assert result["cursor"] == 25
    default = await page(api, service.id)
    assert seqs(default) == list(range(1, 26))


async def test_a_line_shows_what_was_written(api: Api, store: Store, service: Service) -> None:
    ts = datetime(2030, 3, 4, 5, 6, 7, tzinfo=UTC)
    await append(
        store,
        service.id,
        ['{"level": "warning", "msg": "slow query", "ms": 950}'],
        ts=[ts],
        release_id="rel_01TEST",
    )
    [line] = (await page(api, service.id))["lines"]
    assert line == {
        "sequence": 1,
        "ts": "2030-03-04T05:06:07+00:00",
        "level": "warn",
        "message": "slow query",
        "fields": {"ms": 950},
        "source": "replica-0",
        "stream": "stdout",
        "releaseId": "rel_01TEST",
    }


async def test_an_empty_log_is_an_empty_page(api: Api, service: Service) -> None:
    assert await page(api, service.id) == {"lines": [], "hasMore": False, "cursor": None}
    assert await page(api, service.id, after=0) == {"lines": [], "hasMore": False, "cursor": 0}


async def test_after_pages_forward(api: Api, store: Store, service: Service) -> None:
    await append(store, service.id, numbered(1, 26))
    first = await page(api, service.id, limit=10, after=0)
    assert (seqs(first), first["hasMore"], first["cursor"]) == (list(range(1, 11)), True, 10)
    second = await page(api, service.id, limit=10, after=first["cursor"])
    assert (seqs(second), second["hasMore"], second["cursor"]) == (list(range(11, 21)), True, 20)
    third = await page(api, service.id, limit=10, after=second["cursor"])
    assert (seqs(third), third["hasMore"], third["cursor"]) == (list(range(21, 26)), False, 25)
    # An exact fit has no more; the end of the log keeps its cursor.
    exact = await page(api, service.id, limit=5, after=20)
    assert (seqs(exact), exact["hasMore"], exact["cursor"]) == ([21, 22, 23, 24, 25], False, 25)
    end = await page(api, service.id, limit=10, after=25)
    assert end == {"lines": [], "hasMore": False, "cursor": 25}
    # Lines written after the end are the next page.
    await append(store, service.id, numbered(26, 28))
    assert seqs(await page(api, service.id, limit=10, after=25)) == [26, 27]


async def test_grep_keeps_matching_lines_in_any_case(
    api: Api, store: Store, service: Service
) -> None:
    texts = [f"{'ERROR' if i % 4 == 0 else 'ok'} {i}" for i in range(1, 41)]
    texts[2] = "an error in lower case"
    texts[5] = "quota at 50% of limit"
    texts[6] = "quota at 500 of limit"
    await append(store, service.id, texts)
    result = await page(api, service.id, grep="Error", limit=3)
    assert [line["message"] for line in result["lines"]] == ["ERROR 32", "ERROR 36", "ERROR 40"]
    forward = await page(api, service.id, grep="error", after=0, limit=3)
    assert [line["message"] for line in forward["lines"]] == [
        "an error in lower case",
        "ERROR 4",
        "ERROR 8",
    ]
    assert forward["hasMore"] is True
    assert forward["cursor"] == 8
    percent = await page(api, service.id, grep="50%")
    assert [line["message"] for line in percent["lines"]] == ["quota at 50% of limit"]


async def test_since_and_until_select_a_window(api: Api, store: Store, service: Service) -> None:
    base = datetime(2031, 6, 1, 9, 0, tzinfo=UTC)
    times = [base + timedelta(minutes=i) for i in range(10)]
    await append(store, service.id, numbered(0, 10, "minute"), ts=times)
    window = await page(
        api,
        service.id,
        since=(base + timedelta(minutes=3)).isoformat(),
        until=(base + timedelta(minutes=7)).isoformat(),
    )
    assert [line["message"] for line in window["lines"]] == numbered(3, 7, "minute")
    assert window["hasMore"] is False
    since = await page(api, service.id, since=(base + timedelta(minutes=6)).isoformat(), limit=2)
    assert [line["message"] for line in since["lines"]] == ["minute 6", "minute 7"]
    assert (since["hasMore"], since["cursor"]) == (True, 8)
    # Another zone names the same instants.
    zoned = await page(api, service.id, since="2031-06-01T11:08:00+02:00")
    assert [line["message"] for line in zoned["lines"]] == ["minute 8", "minute 9"]
    until = await page(api, service.id, until=(base + timedelta(minutes=2)).isoformat())
    assert [line["message"] for line in until["lines"]] == ["minute 0", "minute 1"]


async def test_release_filter(api: Api, store: Store, service: Service) -> None:
    await append(store, service.id, ["old build"], release_id="rel_old")
    await append(store, service.id, ["new build", "new start"], release_id="rel_new")
    result = await page(api, service.id, releaseId="rel_new")
    assert [line["message"] for line in result["lines"]] == ["new build", "new start"]


@pytest.mark.parametrize("limit", [1, 1000])
async def test_limit_bounds_are_allowed(
    api: Api, store: Store, service: Service, limit: int
) -> None:
    await append(store, service.id, numbered(1, 1003))
    result = await page(api, service.id, limit=limit)
    assert seqs(result) == list(range(1003 - limit, 1003))


@pytest.mark.parametrize("limit", [0, -1, 1001])
async def test_limit_out_of_bounds_is_bad_user_input(
    api: Api, store: Store, service: Service, limit: int
) -> None:
    await append(store, service.id, numbered(1, 3))
    for variables in ({"limit": limit}, {"limit": limit, "after": 0}):
        error = await error_of(api, service.id, **variables)
        assert error["extensions"]["code"] == "BAD_USER_INPUT"
        assert error["message"] == f"limit must be between 1 and 1000, got {limit}"


@pytest.mark.parametrize(
    ("variables", "message"),
    [
        ({"after": -1}, "after must be a line number (0 or more), got -1"),
        ({"grep": "   "}, "grep must not be empty"),
        (
            {"since": "2031-01-02T00:00:00+00:00", "until": "2031-01-01T00:00:00+00:00"},
            "since must be before until",
        ),
    ],
)
async def test_bad_arguments_are_bad_user_input(
    api: Api, service: Service, variables: dict[str, Any], message: str
) -> None:
    error = await error_of(api, service.id, **variables)
    assert error["extensions"]["code"] == "BAD_USER_INPUT"
    assert error["message"] == message


async def test_a_since_without_a_zone_is_bad_user_input(
    api: Api, store: Store, service: Service
) -> None:
    # Regression: DateTime took "2031-01-01T00:00:00" and the store refused the naive
    # datetime when binding it, so the caller saw INTERNAL_SERVER_ERROR for bad input.
    await append(store, service.id, ["a line"])
    body = await api.execute(LOGS, {"id": service.id, "since": "2031-01-01T00:00:00"})
    errors = body.get("errors") or []
    assert [e["extensions"]["code"] for e in errors] == ["BAD_USER_INPUT"]
    assert "has no time zone" in errors[0]["message"]
    assert "2031-01-01T00:00:00Z" in errors[0]["message"]


async def test_an_unknown_service_is_not_found(api: Api, service: Service) -> None:
    missing = "svc_01M8EH5K0V56WD37Z896MQ0S8X"
    error = await error_of(api, missing)
    assert error["extensions"]["code"] == "NOT_FOUND"
    assert error["message"] == f"Service {missing!r} not found."


@pytest.mark.parametrize("on_project", [False, True])
async def test_a_readonly_member_reads_logs(
    api: Api, store: Store, owner: Bootstrap, service: Service, on_project: bool
) -> None:
    await append(store, service.id, numbered(1, 4))
    member = await add_member(
        store, api, owner, "reader", Role.READONLY, service.project_id if on_project else None
    )
    result = await page(member.api, service.id)
    assert seqs(result) == [1, 2, 3]


async def test_a_member_of_another_project_cannot_see_its_logs(
    api: Api, ctx: Context, store: Store, owner: Bootstrap, service: Service
) -> None:
    await append(store, service.id, numbered(1, 4))
    other = await make_project(ctx, "elsewhere")
    member = await add_member(store, api, owner, "outsider", Role.OWNER, other.id)
    error = await error_of(member.api, service.id)
    assert error["extensions"]["code"] == "NOT_FOUND"
    assert error["message"] == f"Service {service.id!r} not found."


async def test_a_token_without_a_logs_scope_is_forbidden(
    api: Api, store: Store, owner: Bootstrap, service: Service
) -> None:
    await append(store, service.id, numbered(1, 2))
    narrow = await add_member(
        store, api, owner, "deployer", Role.DEVELOPER, scopes=("deploy:write",)
    )
    error = await error_of(narrow.api, service.id)
    assert error["extensions"]["code"] == "FORBIDDEN"
    reader = await add_member(store, api, owner, "logreader", Role.DEVELOPER, scopes=("logs:read",))
    assert seqs(await page(reader.api, service.id)) == [1]


# -- the logs subscription -------------------------------------------------------------------


@pytest.mark.parametrize("protocol", PROTOCOLS)
async def test_lines_written_after_subscribing_arrive_in_order(
    live_server: LiveServer, store: Store, token: str, service: Service, protocol: str
) -> None:
    await append(store, service.id, numbered(1, 4, "before"))
    with count_statements(store) as statements:
        async with GraphQLWebSocket.connect(live_server.ws_url, protocol, auth(token)) as ws:
            op = await ws.subscribe(FOLLOW, {"id": service.id})
            await until_following(statements)
            await append(store, service.id, numbered(1, 3, "live"))
            await append(store, service.id, ['{"level": "error", "msg": "live 3"}'])
            await append(store, service.id, numbered(4, 6, "live"))
            lines = await receive_lines(ws, op, 5)
    assert [(line["sequence"], line["message"]) for line in lines] == [
        (4, "live 1"),
        (5, "live 2"),
        (6, "live 3"),
        (7, "live 4"),
        (8, "live 5"),
    ]
    assert lines[2]["level"] == "error"


@pytest.mark.parametrize("protocol", PROTOCOLS)
async def test_after_replays_then_follows(
    live_server: LiveServer, store: Store, token: str, service: Service, protocol: str
) -> None:
    await append(store, service.id, numbered(1, 11))
    with count_statements(store) as statements:
        async with GraphQLWebSocket.connect(live_server.ws_url, protocol, auth(token)) as ws:
            op = await ws.subscribe(FOLLOW, {"id": service.id, "after": 6})
            replayed = await receive_lines(ws, op, 4)
            await until_following(statements)
            await append(store, service.id, numbered(11, 14))
            live = await receive_lines(ws, op, 3)
    assert [(line["sequence"], line["message"]) for line in replayed + live] == [
        (i, f"line {i}") for i in range(7, 14)
    ]


@pytest.mark.parametrize("protocol", PROTOCOLS)
async def test_reconnecting_after_the_last_line_seen_misses_and_repeats_nothing(
    live_server: LiveServer,
    store: Store,
    hub: EventHub,
    token: str,
    service: Service,
    protocol: str,
) -> None:
    await append(store, service.id, numbered(1, 6))
    seen: list[dict[str, Any]] = []
    async with GraphQLWebSocket.connect(live_server.ws_url, protocol, auth(token)) as ws:
        op = await ws.subscribe(FOLLOW, {"id": service.id, "after": 0})
        seen += await receive_lines(ws, op, 3)
    await until_no_subscribers(hub)
    # Written while nobody follows.
    await append(store, service.id, numbered(6, 8))
    await append(store, service.id, numbered(8, 10))
    with count_statements(store) as statements:
        async with GraphQLWebSocket.connect(live_server.ws_url, protocol, auth(token)) as ws:
            op = await ws.subscribe(FOLLOW, {"id": service.id, "after": seen[-1]["sequence"]})
            seen += await receive_lines(ws, op, 6)
            await until_following(statements)
            await append(store, service.id, numbered(10, 12))
            seen += await receive_lines(ws, op, 2)
    assert [(line["sequence"], line["message"]) for line in seen] == [
        (i, f"line {i}") for i in range(1, 12)
    ]


@pytest.mark.parametrize("protocol", PROTOCOLS)
async def test_grep_filters_replayed_and_live_lines(
    live_server: LiveServer, store: Store, token: str, service: Service, protocol: str
) -> None:
    await append(store, service.id, ["ERROR early", "fine"])
    with count_statements(store) as statements:
        async with GraphQLWebSocket.connect(live_server.ws_url, protocol, auth(token)) as ws:
            op = await ws.subscribe(FOLLOW, {"id": service.id, "after": 0, "grep": "error"})
            [early] = await receive_lines(ws, op, 1)
            await until_following(statements)
            # A long quiet run, longer than the follow's page, then one match in a batch.
            for start in range(0, 2500, 500):
                await append(store, service.id, numbered(start, start + 500, "fine"))
            await append(store, service.id, ["still fine", "Error: disk full", "fine again"])
            [match] = await receive_lines(ws, op, 1)
            await append(store, service.id, ["fine", "fine", "last ERROR"])
            [last] = await receive_lines(ws, op, 1)
    assert (early["sequence"], early["message"]) == (1, "ERROR early")
    assert (match["sequence"], match["message"]) == (2 + 2500 + 2, "Error: disk full")
    assert (last["sequence"], last["message"]) == (2 + 2500 + 3 + 3, "last ERROR")


@pytest.mark.parametrize("protocol", PROTOCOLS)
async def test_thousands_of_lines_written_quickly_arrive_complete_and_in_order(
    live_server: LiveServer, store: Store, token: str, service: Service, protocol: str
) -> None:
    total, batch = 5000, 250
    with count_statements(store) as statements:
        async with GraphQLWebSocket.connect(live_server.ws_url, protocol, auth(token)) as ws:
            op = await ws.subscribe(FOLLOW, {"id": service.id})
            await until_following(statements)

            async def write() -> None:
                for start in range(1, total + 1, batch):
                    await append(store, service.id, numbered(start, start + batch))

            writer = asyncio.create_task(write())
            lines = await receive_lines(ws, op, total)
            await writer
    assert [line["sequence"] for line in lines] == list(range(1, total + 1))
    assert [line["message"] for line in lines] == numbered(1, total + 1)


async def test_following_an_unknown_service_is_an_error(
    live_server: LiveServer, token: str, service: Service
) -> None:
    missing = "svc_01M8EH5K0V56WD37Z896MQ0S8X"
    async with GraphQLWebSocket.connect(live_server.ws_url, payload=auth(token)) as ws:
        op = await ws.subscribe(FOLLOW, {"id": missing})
        with pytest.raises(WsProtocolError) as caught:
            await ws.next_data(op)
    assert f"Service '{missing}' not found" in str(caught.value)
    assert "NOT_FOUND" in str(caught.value)


async def test_a_readonly_member_follows_logs(
    live_server: LiveServer, api: Api, store: Store, owner: Bootstrap, service: Service
) -> None:
    await append(store, service.id, numbered(1, 3))
    member = await add_member(store, api, owner, "reader", Role.READONLY, service.project_id)
    async with GraphQLWebSocket.connect(live_server.ws_url, payload=auth(member.token)) as ws:
        op = await ws.subscribe(FOLLOW, {"id": service.id, "after": 0})
        lines = await receive_lines(ws, op, 2)
    assert [line["sequence"] for line in lines] == [1, 2]


async def test_a_line_committed_while_the_subscription_starts_is_delivered(
    live_server: LiveServer,
    store: Store,
    token: str,
    service: Service,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # Regression: follow_logs read the table from its cursor and only then let the hub read
    # the stream head. A batch committed in between was neither in the table read nor
    # after the head, so its lines waited for some later append; if none came (a crashed
    # replica's last words), they never arrived. Here a batch commits exactly in that gap.
    reads: list[int] = []

    async def read_then_append(
        session: AsyncSession, query: LogQuery, limit: int
    ) -> list[LogRecord]:
        result = await read_lines(session, query, limit)
        reads.append(len(result))
        if len(reads) == 1:
            await append(store, service.id, ["written as the follow started"])
        return result

    monkeypatch.setattr("resolvers.logs.read_lines", read_then_append)
    async with GraphQLWebSocket.connect(live_server.ws_url, payload=auth(token)) as ws:
        op = await ws.subscribe(FOLLOW, {"id": service.id})
        line = (await ws.next_data(op))["logs"]
    assert reads[0] == 0
    async with store.read() as session:
        stored = await read_lines(session, LogQuery(service.id), 10)
    assert [(r.seq, r.message) for r in stored] == [(1, "written as the follow started")]
    assert (line["sequence"], line["message"]) == (1, "written as the follow started")


# -- the logBatches subscription -------------------------------------------------------------

FOLLOW_BATCHES = """
subscription($id: ID!, $grep: String, $after: Int) {
  logBatches(serviceId: $id, grep: $grep, after: $after) { cursor lines { sequence message } }
}
"""


@pytest.mark.parametrize("protocol", PROTOCOLS)
async def test_lines_stored_together_arrive_in_one_message(
    live_server: LiveServer, store: Store, token: str, service: Service, protocol: str
) -> None:
    await append(store, service.id, numbered(1, 6))
    with count_statements(store) as statements:
        async with GraphQLWebSocket.connect(live_server.ws_url, protocol, auth(token)) as ws:
            op = await ws.subscribe(FOLLOW_BATCHES, {"id": service.id, "after": 2})
            replayed = (await ws.next_data(op))["logBatches"]
            await until_following(statements)
            await append(store, service.id, numbered(6, 306))
            big = (await ws.next_data(op))["logBatches"]
            # Only after the first batch came: a follower that reads after both writes
            # rightly sends all it finds in one message, so back-to-back writes would race.
            await append(store, service.id, ["alone"])
            alone = (await ws.next_data(op))["logBatches"]
    # History after the cursor comes as one batch, then each write as one message.
    assert [line["sequence"] for line in replayed["lines"]] == [3, 4, 5]
    assert replayed["cursor"] == 5
    assert [line["message"] for line in big["lines"]] == numbered(6, 306)
    assert big["cursor"] == 305
    assert alone == {"cursor": 306, "lines": [{"sequence": 306, "message": "alone"}]}


@pytest.mark.parametrize("protocol", PROTOCOLS)
async def test_batches_keep_grep_and_resume_from_their_cursor(
    live_server: LiveServer,
    store: Store,
    hub: EventHub,
    token: str,
    service: Service,
    protocol: str,
) -> None:
    await append(store, service.id, ["ERROR one", "fine", "error two"])
    async with GraphQLWebSocket.connect(live_server.ws_url, protocol, auth(token)) as ws:
        op = await ws.subscribe(FOLLOW_BATCHES, {"id": service.id, "after": 0, "grep": "error"})
        first = (await ws.next_data(op))["logBatches"]
    await until_no_subscribers(hub)
    await append(store, service.id, ["fine", "Error three"])
    async with GraphQLWebSocket.connect(live_server.ws_url, protocol, auth(token)) as ws:
        op = await ws.subscribe(
            FOLLOW_BATCHES, {"id": service.id, "after": first["cursor"], "grep": "error"}
        )
        resumed = (await ws.next_data(op))["logBatches"]
    assert [line["message"] for line in first["lines"]] == ["ERROR one", "error two"]
    assert first["cursor"] == 3
    assert resumed["lines"] == [{"sequence": 5, "message": "Error three"}]
