"""node and nodes over every entity, tenant isolation, connections and their pagination, the
query limits, and projectEvents paging."""

from __future__ import annotations

import base64
import json
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import httpx
import pytest
from sqlalchemy import func, select

from graph.app import AppState, create_app
from resolvers.context import Actor, Context
from resolvers.identity.authenticate import Authenticator
from resolvers.identity.tokens import bootstrap_token
from store.db import Store
from store.hub import EventHub
from store.ids import new_id
from store.models import (
    Account,
    ApiToken,
    AuditEvent,
    CostSample,
    Deployment,
    DeploymentPhase,
    DeploymentStrategy,
    Job,
    JobRun,
    JobRunStatus,
    Membership,
    Project,
    Role,
    Route,
    Secret,
    SecretScope,
    SecretVersion,
    ServiceSpecVersion,
    User,
    Volume,
)
from tests.factories import add_release, add_runtime, make_environment, make_project, make_service
from tests.helpers import Api

RESOURCES = (
    "  volumes:\n"
    "    - name: data\n"
    "      mountPath: /var/data\n"
    "  jobs:\n"
    "    - name: nightly\n"
    '      schedule: "0 2 * * *"\n'
)

UNKNOWN_SERVICE = "svc_01M8EH5K0V56WD37Z896MQ0S8X"


# -- a second tenant -----------------------------------------------------------------------


@dataclass
class Tenant:
    ctx: Context
    api: Api


async def _second_account(store: Store) -> tuple[Actor, str]:
    async with store.write() as session:
        account = Account(id=new_id("account"), name="Other account", billing_profile={})
        user = User(
            id=new_id("user"),
            account_id=account.id,
            subject="local:other-owner",
            display_name="Other owner",
        )
        session.add_all([account, user])
        await session.flush()
        session.add(
            Membership(
                id=new_id("membership"),
                account_id=account.id,
                project_id=None,
                user_id=user.id,
                scope_ref=account.id,
                role=Role.OWNER,
            )
        )
        token_row, secret = bootstrap_token(user)
        session.add(token_row)
    actor = Actor(
        id=user.id, display=user.display_name, account_id=account.id, account_role=Role.OWNER
    )
    return actor, secret


@pytest.fixture
async def other(store: Store, hub: EventHub, ctx: Context) -> AsyncIterator[Tenant]:
    """Another account with its own owner, and the API as that owner sees it."""
    actor, secret = await _second_account(store)
    other_ctx = Context(store=store, hub=hub, actor=actor, request_id="req_other")
    app = create_app(
        AppState(store=store, hub=hub, authenticator=Authenticator(store, actor.account_id))
    )
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://enclii.test") as client:
        yield Tenant(other_ctx, Api(client, headers={"authorization": f"Bearer {secret}"}))


# -- one of everything ---------------------------------------------------------------------


async def _one_of_each(ctx: Context) -> dict[str, str]:
    """Every kind of entity, made through the resolvers where a mutation exists; returns
    the expected __typename for each ID."""
    project = await make_project(ctx)
    env = await make_environment(ctx, project)
    service = await make_service(ctx, routes=[("api.example.com", "/")], extra_spec=RESOURCES)
    release = await add_release(ctx, service)
    runtime = await add_runtime(ctx, service, release)
    now = datetime.now(UTC)
    async with ctx.store.write() as session:
        version = await session.scalar(
            select(ServiceSpecVersion).where(ServiceSpecVersion.service_id == service.id)
        )
        route = await session.scalar(select(Route).where(Route.service_id == service.id))
        volume = await session.scalar(select(Volume).where(Volume.service_id == service.id))
        job = await session.scalar(select(Job).where(Job.service_id == service.id))
        audit = await session.scalar(
            select(AuditEvent).where(AuditEvent.account_id == ctx.actor.account_id).limit(1)
        )
        membership = await session.scalar(
            select(Membership).where(Membership.user_id == ctx.actor.id)
        )
        assert version and route and volume and job and audit and membership
        deployment = Deployment(
            id=new_id("deployment"),
            service_id=service.id,
            from_release_id=None,
            to_release_id=release.id,
            strategy=DeploymentStrategy.CANARY,
            phase=DeploymentPhase.DEPLOYING,
            conditions=[],
            created_by=ctx.actor.id,
        )
        secret = Secret(
            id=new_id("secret"),
            project_id=project.id,
            environment_id=env.id,
            service_id=None,
            scope=SecretScope.ENVIRONMENT,
            scope_ref=env.id,
            name="DATABASE_URL",
            current_version=1,
        )
        session.add_all([deployment, secret])
        await session.flush()
        secret_version = SecretVersion(
            id=new_id("secret_version"), secret_id=secret.id, version=1, created_by=ctx.actor.id
        )
        job_run = JobRun(
            id=new_id("job_run"),
            job_id=job.id,
            release_id=release.id,
            status=JobRunStatus.SUCCEEDED,
            attempt=1,
            exit_code=0,
            triggered_by=ctx.actor.id,
        )
        cost = CostSample(
            id=new_id("cost_sample"),
            environment_id=env.id,
            service_id=service.id,
            cpu_seconds=12.5,
            ts=now,
        )
        token = ApiToken(
            id=new_id("api_token"),
            account_id=ctx.actor.account_id,
            user_id=ctx.actor.id,
            project_id=None,
            name="ci",
            token_hash="0" * 64,
            display_prefix="enc_0000",
            scopes=["deploy"],
        )
        session.add_all([secret_version, job_run, cost, token])
    return {
        ctx.actor.account_id: "Account",
        ctx.actor.id: "User",
        membership.id: "Membership",
        token.id: "ApiToken",
        project.id: "Project",
        env.id: "Environment",
        service.id: "Service",
        version.id: "ServiceSpecVersion",
        release.id: "Release",
        deployment.id: "Deployment",
        runtime.id: "Runtime",
        route.id: "Route",
        volume.id: "Volume",
        job.id: "Job",
        job_run.id: "JobRun",
        secret.id: "Secret",
        secret_version.id: "SecretVersion",
        audit.id: "AuditEvent",
        cost.id: "CostSample",
    }


NODE_QUERY = "query($id: ID!) { node(id: $id) { __typename id } }"
NODES_QUERY = "query($ids: [ID!]!) { nodes(ids: $ids) { __typename id } }"


async def test_node_reaches_every_kind_of_entity(api: Api, ctx: Context) -> None:
    expected = await _one_of_each(ctx)
    assert len(set(expected.values())) == 19

    for node_id, typename in expected.items():
        data = await api.data(NODE_QUERY, {"id": node_id})
        assert data["node"] == {"__typename": typename, "id": node_id}

    # And all of them in one nodes() call, in the order asked.
    ids = list(reversed(expected))
    data = await api.data(NODES_QUERY, {"ids": ids})
    assert [(n["__typename"], n["id"]) for n in data["nodes"]] == [(expected[i], i) for i in ids]


async def test_nodes_keep_order_and_give_null_for_unknown_ids(
    api: Api, ctx: Context, other: Tenant
) -> None:
    project = await make_project(ctx)
    await make_environment(ctx, project)
    service = await make_service(ctx)
    foreign = await make_project(other.ctx, "elsewhere")

    ids = [
        service.id,
        UNKNOWN_SERVICE,  # well formed, never existed
        project.id,
        foreign.id,  # another account's
        "garbage",
        "xyz_01M8EH5K0V56WD37Z896MQ0S8X",  # unknown prefix
        service.id,
    ]
    data = await api.data(NODES_QUERY, {"ids": ids})
    assert data["nodes"] == [
        {"__typename": "Service", "id": service.id},
        None,
        {"__typename": "Project", "id": project.id},
        None,
        None,
        None,
        {"__typename": "Service", "id": service.id},
    ]
    assert (await api.data(NODES_QUERY, {"ids": []}))["nodes"] == []


async def test_nodes_takes_at_most_100_ids(api: Api) -> None:
    body = await api.execute(NODES_QUERY, {"ids": [UNKNOWN_SERVICE] * 101})
    assert body["data"] is None
    [error] = body["errors"]
    assert error["extensions"]["code"] == "BAD_USER_INPUT"
    assert error["message"] == "ids takes at most 100 IDs, got 101"
    body = await api.execute(NODES_QUERY, {"ids": [UNKNOWN_SERVICE] * 100})
    assert body["data"]["nodes"] == [None] * 100


async def test_another_accounts_data_is_invisible(
    api: Api, ctx: Context, other: Tenant, store: Store
) -> None:
    mine = await _one_of_each(ctx)
    # The other account uses the same names: slugs are unique per account only.
    theirs_project = await make_project(other.ctx, "shop")
    await make_environment(other.ctx, theirs_project)
    theirs_service = await make_service(other.ctx, name="web")

    nodes = await other.api.data(NODES_QUERY, {"ids": list(mine)})
    assert nodes["nodes"] == [None] * len(mine)
    for node_id in mine:
        assert (await other.api.data(NODE_QUERY, {"id": node_id}))["node"] is None

    service_id = next(i for i, t in mine.items() if t == "Service")
    project_id = next(i for i, t in mine.items() if t == "Project")
    seen = await other.api.data(
        """query($svc: ID!, $prj: ID!) {
             projects { totalCount nodes { id slug } }
             bySlug: project(slug: "shop") { id environment(name: "stage") {
               services { nodes { name } } routes { totalCount } volumes { totalCount }
               jobs { totalCount } } }
             byId: project(id: $prj) { id }
             service(id: $svc) { id }
             byName: service(project: "shop", environment: "stage", name: "api") { id }
             viewer { account { id auditEvents { nodes { actorId } } } user { id } } }""",
        {"svc": service_id, "prj": project_id},
    )
    assert seen["projects"] == {
        "totalCount": 1,
        "nodes": [{"id": theirs_project.id, "slug": "shop"}],
    }
    assert seen["bySlug"]["id"] == theirs_project.id
    assert seen["bySlug"]["environment"] == {
        "services": {"nodes": [{"name": "web"}]},
        "routes": {"totalCount": 0},
        "volumes": {"totalCount": 0},
        "jobs": {"totalCount": 0},
    }
    assert seen["byId"] is None
    assert seen["service"] is None
    assert seen["byName"] is None
    assert seen["viewer"]["account"]["id"] == other.ctx.actor.account_id
    assert {a["actorId"] for a in seen["viewer"]["account"]["auditEvents"]["nodes"]} == {
        other.ctx.actor.id
    }

    # And the first account does not see the second's.
    assert (await api.data(NODE_QUERY, {"id": theirs_service.id}))["node"] is None
    my_projects = await api.data("{ projects { nodes { id } } }")
    assert my_projects["projects"]["nodes"] == [{"id": project_id}]


async def test_another_account_cannot_change_or_read_history_of_my_things(
    api: Api, ctx: Context, other: Tenant, store: Store
) -> None:
    mine = await _one_of_each(ctx)
    service_id = next(i for i, t in mine.items() if t == "Service")
    project_id = next(i for i, t in mine.items() if t == "Project")
    route_id = next(i for i, t in mine.items() if t == "Route")
    async with store.read() as session:
        before = int(await session.scalar(select(func.count()).select_from(AuditEvent)) or 0)

    deleted = await other.api.data(
        "mutation($id: ID!) { deleteService(input: {id: $id}) { __typename } }",
        {"id": service_id},
    )
    assert deleted["deleteService"]["__typename"] == "NotFoundError"
    added = await other.api.data(
        """mutation($id: ID!) { addRoute(input: {serviceId: $id, host: "evil.example.com"}) {
             __typename } }""",
        {"id": service_id},
    )
    assert added["addRoute"]["__typename"] == "NotFoundError"
    removed = await other.api.data(
        "mutation($id: ID!) { removeRoute(input: {id: $id}) { __typename } }", {"id": route_id}
    )
    assert removed["removeRoute"]["__typename"] == "NotFoundError"
    events = await other.api.execute(
        "query($id: ID!) { projectEvents(projectId: $id) { events { type } } }",
        {"id": project_id},
    )
    assert events["data"] is None
    assert events["errors"][0]["extensions"]["code"] == "NOT_FOUND"

    async with store.read() as session:
        after = int(await session.scalar(select(func.count()).select_from(AuditEvent)) or 0)
    assert after == before
    still = await api.data(
        "query($id: ID!) { service(id: $id) { routes { nodes { id host } } } }",
        {"id": service_id},
    )
    assert still["service"]["routes"]["nodes"] == [{"id": route_id, "host": "api.example.com"}]


# -- connections ---------------------------------------------------------------------------

SERVICES_PAGE = """
query($first: Int, $after: String) {
  project(slug: "shop") { environment(name: "stage") {
    services(first: $first, after: $after) {
      totalCount
      edges { cursor node { name } }
      nodes { name }
      pageInfo { hasNextPage hasPreviousPage startCursor endCursor }
    }
  } }
}
"""

NAMES = ["gamma", "alpha", "eta", "beta", "zeta", "delta", "epsilon"]


async def _seven_services(ctx: Context) -> None:
    project = await make_project(ctx)
    await make_environment(ctx, project)
    for name in NAMES:
        await make_service(ctx, name=name)


async def _services_page(api: Api, first: int | None, after: str | None) -> dict[str, Any]:
    data = await api.data(SERVICES_PAGE, {"first": first, "after": after})
    page: dict[str, Any] = data["project"]["environment"]["services"]
    return page


async def test_first_after_walks_every_service_once_in_name_order(api: Api, ctx: Context) -> None:
    await _seven_services(ctx)

    seen: list[str] = []
    pages: list[dict[str, Any]] = []
    after: str | None = None
    while True:
        page = await _services_page(api, 3, after)
        pages.append(page)
        seen += [e["node"]["name"] for e in page["edges"]]
        assert [n["name"] for n in page["nodes"]] == [e["node"]["name"] for e in page["edges"]]
        info = page["pageInfo"]
        assert info["startCursor"] == page["edges"][0]["cursor"]
        assert info["endCursor"] == page["edges"][-1]["cursor"]
        assert info["hasPreviousPage"] is (after is not None)
        assert page["totalCount"] == 7
        if not info["hasNextPage"]:
            break
        after = info["endCursor"]
        assert len(pages) < 5, "pagination does not end"

    assert seen == sorted(NAMES)
    assert [len(p["edges"]) for p in pages] == [3, 3, 1]
    assert [p["pageInfo"]["hasNextPage"] for p in pages] == [True, True, False]
    cursors = [e["cursor"] for p in pages for e in p["edges"]]
    assert len(set(cursors)) == 7

    # After the last item: an empty page that says so.
    last = await _services_page(api, 3, pages[-1]["pageInfo"]["endCursor"])
    assert last["edges"] == []
    assert last["pageInfo"] == {
        "hasNextPage": False,
        "hasPreviousPage": True,
        "startCursor": None,
        "endCursor": None,
    }
    assert last["totalCount"] == 7

    # Without first: the default page holds them all.
    everything = await _services_page(api, None, None)
    assert [n["name"] for n in everything["nodes"]] == sorted(NAMES)
    assert everything["pageInfo"]["hasNextPage"] is False


async def test_first_zero_is_an_empty_page_that_knows_there_is_more(api: Api, ctx: Context) -> None:
    await _seven_services(ctx)
    page = await _services_page(api, 0, None)
    assert page == {
        "totalCount": 7,
        "edges": [],
        "nodes": [],
        "pageInfo": {
            "hasNextPage": True,
            "hasPreviousPage": False,
            "startCursor": None,
            "endCursor": None,
        },
    }
    empty_env = await api.data(
        """{ project(slug: "shop") { environments { nodes { name } }
             environment(name: "stage") { routes(first: 0) { totalCount
               pageInfo { hasNextPage } } } } }"""
    )
    assert empty_env["project"]["environment"]["routes"] == {
        "totalCount": 0,
        "pageInfo": {"hasNextPage": False},
    }


async def test_deleted_services_leave_lists_and_counts(api: Api, ctx: Context) -> None:
    await _seven_services(ctx)
    first = await _services_page(api, 2, None)
    beta = await api.data('{ service(project: "shop", environment: "stage", name: "beta") { id } }')
    await api.data(
        "mutation($id: ID!) { deleteService(input: {id: $id}) { __typename } }",
        {"id": beta["service"]["id"]},
    )
    page = await _services_page(api, 3, first["pageInfo"]["endCursor"])
    assert [n["name"] for n in page["nodes"]] == ["delta", "epsilon", "eta"]
    assert page["totalCount"] == 6


async def _top_level_error(api: Api, query: str, variables: dict[str, Any]) -> dict[str, Any]:
    body = await api.execute(query, variables)
    assert body.get("errors"), body
    assert len(body["errors"]) == 1, body
    error: dict[str, Any] = body["errors"][0]
    return error


async def test_first_above_the_limit_is_bad_user_input(api: Api, ctx: Context) -> None:
    await _seven_services(ctx)
    error = await _top_level_error(api, SERVICES_PAGE, {"first": 101})
    assert error["extensions"]["code"] == "BAD_USER_INPUT"
    assert error["message"] == "first must be between 0 and 100, got 101"
    assert "100" in error["message"]
    negative = await _top_level_error(api, SERVICES_PAGE, {"first": -1})
    assert negative["extensions"]["code"] == "BAD_USER_INPUT"
    assert negative["message"] == "first must be between 0 and 100, got -1"
    # The limit itself is fine.
    assert len((await _services_page(api, 100, None))["edges"]) == 7
    root = await _top_level_error(api, "{ projects(first: 101) { totalCount } }", {})
    assert root["extensions"]["code"] == "BAD_USER_INPUT"


def _cursor(values: list[Any]) -> str:
    raw = json.dumps(values, separators=(",", ":")).encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


async def test_garbage_cursor_is_bad_user_input(api: Api, ctx: Context) -> None:
    await _seven_services(ctx)
    for garbage in ("garbage", "!!!", "", _cursor(["only-one"]), _cursor({"a": 1})):  # type: ignore[arg-type]
        error = await _top_level_error(api, SERVICES_PAGE, {"first": 3, "after": garbage})
        assert error["extensions"]["code"] == "BAD_USER_INPUT", (garbage, error)
        assert error["message"] == (
            f"after: {garbage!r} is not a cursor of this list; pass an endCursor from it"
        )
        assert error["extensions"]["argument"] == "after"


# -- query limits --------------------------------------------------------------------------


def _deep_selection(levels: int) -> str:
    """project { environments(first: 1) { nodes { project { … id … (one item per level, so
    only the depth, not the node budget, decides)"""
    inner = "id"
    opening = ""
    closing = ""
    depth = 0
    while depth < levels:
        opening += "project { environments(first: 1) { nodes { "
        closing += " } } }"
        depth += 3
    return opening + inner + closing


async def test_query_deeper_than_15_is_refused_before_it_runs(
    api: Api, ctx: Context, store: Store
) -> None:
    project = await make_project(ctx)
    await make_environment(ctx, project)
    service = await make_service(ctx)
    shallow = f'{{ service(id: "{service.id}") {{ {_deep_selection(12)} }} }}'
    assert (await api.data(shallow))["service"]["project"]["environments"]

    deep = f'{{ service(id: "{service.id}") {{ {_deep_selection(18)} }} }}'
    body = await api.execute(deep)
    assert body.get("data") is None
    [error] = body["errors"]
    assert error["extensions"]["code"] == "GRAPHQL_VALIDATION_FAILED"
    assert "exceeds maximum operation depth of 15" in error["message"]

    # A mutation that is too deep is not executed at all.
    async with store.read() as session:
        before = int(await session.scalar(select(func.count()).select_from(Project)) or 0)
    mutation = (
        'mutation { createProject(input: {name: "Deep"}) { ... on CreateProjectSuccess { '
        f"project {{ environments {{ nodes {{ {_deep_selection(18)} }} }} }} }} }} }}"
    )
    body = await api.execute(mutation)
    assert body.get("data") is None
    assert body["errors"][0]["extensions"]["code"] == "GRAPHQL_VALIDATION_FAILED"
    async with store.read() as session:
        after = int(await session.scalar(select(func.count()).select_from(Project)) or 0)
        deep_project = await session.scalar(select(Project).where(Project.slug == "deep"))
    assert after == before
    assert deep_project is None


async def test_more_than_30_aliases_are_refused_before_they_run(api: Api, store: Store) -> None:
    thirty = "{ " + " ".join(f"a{i}: viewer {{ user {{ id }} }}" for i in range(30)) + " }"
    assert len(await api.data(thirty)) == 30

    mutation = (
        "mutation { "
        + " ".join(
            f'p{i}: createProject(input: {{name: "Alias {i}"}}) {{ __typename }}' for i in range(31)
        )
        + " }"
    )
    body = await api.execute(mutation)
    assert body.get("data") is None
    [error] = body["errors"]
    assert error["extensions"]["code"] == "GRAPHQL_VALIDATION_FAILED"
    assert "30" in error["message"]
    async with store.read() as session:
        projects = int(await session.scalar(select(func.count()).select_from(Project)) or 0)
        audit = int(
            await session.scalar(
                select(func.count()).where(AuditEvent.action != "account.bootstrap")
            )
            or 0
        )
    assert (projects, audit) == (0, 0)


# -- projectEvents -------------------------------------------------------------------------

EVENTS = """
query($id: ID!, $after: Int, $before: Int, $first: Int!) {
  projectEvents(projectId: $id, after: $after, before: $before, first: $first) {
    hasMore
    events { sequence type entityId actorId payload createdAt }
  }
}
"""


async def _events_page(
    api: Api,
    project_id: str,
    *,
    first: int = 50,
    after: int | None = None,
    before: int | None = None,
) -> tuple[list[int], bool]:
    data = await api.data(
        EVENTS, {"id": project_id, "first": first, "after": after, "before": before}
    )
    page = data["projectEvents"]
    return [e["sequence"] for e in page["events"]], page["hasMore"]


async def test_project_events_page_forwards_and_backwards(api: Api, ctx: Context) -> None:
    project = await make_project(ctx)
    env = await make_environment(ctx, project)
    for name in ("api", "web", "worker"):
        await make_service(ctx, name=name)
    other_project = await make_project(ctx, "other")  # its own stream

    full = await api.data(EVENTS, {"id": project.id, "first": 50})
    events = full["projectEvents"]["events"]
    assert [(e["sequence"], e["type"]) for e in events] == [
        (5, "service.created"),
        (4, "service.created"),
        (3, "service.created"),
        (2, "environment.created"),
        (1, "project.created"),
    ]
    assert full["projectEvents"]["hasMore"] is False
    assert events[3]["entityId"] == env.id
    assert events[4]["entityId"] == project.id
    assert {e["actorId"] for e in events} == {ctx.actor.id}
    assert events[4]["payload"] == {"name": "Shop", "slug": "shop"}

    # Newest first, backwards.
    assert await _events_page(api, project.id, first=2) == ([5, 4], True)
    assert await _events_page(api, project.id, first=2, before=4) == ([3, 2], True)
    assert await _events_page(api, project.id, first=2, before=2) == ([1], False)
    assert await _events_page(api, project.id, first=2, before=1) == ([], False)
    # Oldest first, forwards.
    assert await _events_page(api, project.id, first=2, after=0) == ([1, 2], True)
    assert await _events_page(api, project.id, first=2, after=2) == ([3, 4], True)
    assert await _events_page(api, project.id, first=2, after=4) == ([5], False)
    assert await _events_page(api, project.id, first=2, after=5) == ([], False)
    assert await _events_page(api, project.id, first=3, after=2) == ([3, 4, 5], False)
    # first: 0 says whether there is anything without returning it.
    assert await _events_page(api, project.id, first=0) == ([], True)
    assert await _events_page(api, project.id, first=0, after=5) == ([], False)
    # Streams are per project.
    assert await _events_page(api, other_project.id) == ([1], False)


async def test_project_events_argument_errors(api: Api, ctx: Context) -> None:
    project = await make_project(ctx)
    both = await _top_level_error(
        api, EVENTS, {"id": project.id, "first": 2, "after": 1, "before": 3}
    )
    assert both["extensions"]["code"] == "BAD_USER_INPUT"
    assert both["message"] == "give either after or before, not both"
    too_many = await _top_level_error(api, EVENTS, {"id": project.id, "first": 101})
    assert too_many["extensions"]["code"] == "BAD_USER_INPUT"
    assert too_many["message"] == "first must be between 0 and 100, got 101"
    missing = await _top_level_error(
        api, EVENTS, {"id": "prj_01M8EH5K0V56WD37Z896MQ0S8X", "first": 2}
    )
    assert missing["extensions"]["code"] == "NOT_FOUND"
    assert missing["message"] == "Project 'prj_01M8EH5K0V56WD37Z896MQ0S8X' not found."


async def test_well_formed_cursor_with_wrong_value_types_is_bad_user_input(
    api: Api, ctx: Context
) -> None:
    """Regression (resolvers/pagination.py, decode_cursor): a cursor is accepted when it decodes
    to a JSON list of the right length, whatever its values are. Values of the wrong type
    reach the keyset comparison in SQL and the query fails as INTERNAL_SERVER_ERROR
    (nested values on both backends; a number where the key is text on PostgreSQL, which
    is also what a real endCursor of another list, such as specVersions, does)."""
    await _seven_services(ctx)
    versions = await api.data(
        '{ service(project: "shop", environment: "stage", name: "alpha") {'
        " specVersions { pageInfo { endCursor } } } }"
    )
    spec_cursor = versions["service"]["specVersions"]["pageInfo"]["endCursor"]
    cases = [
        (SERVICES_PAGE, {"first": 3, "after": _cursor([["x"], {"y": 1}])}),
        (SERVICES_PAGE, {"first": 3, "after": _cursor([1, 2])}),
        ("query($after: String) { projects(after: $after) { totalCount } }",
         {"after": spec_cursor}),
    ]  # fmt: skip
    codes = []
    for query, variables in cases:
        body = await api.execute(query, variables)
        codes.append(body.get("errors", [{}])[0].get("extensions", {}).get("code"))
    assert codes == ["BAD_USER_INPUT"] * len(cases)
