"""addRoute and removeRoute over GraphQL: normalisation, per-environment uniqueness, precise
errors that change nothing, and one audit event per mutation."""

from __future__ import annotations

from typing import Any

from sqlalchemy import func, select

from resolvers.context import Context
from store.db import Store
from store.models import AuditEvent, Base, Event, Route, RouteSource, Service
from tests.factories import make_environment, make_project, make_service
from tests.helpers import Api

ADD_ROUTE = """
mutation($input: AddRouteInput!) {
  addRoute(input: $input) {
    __typename
    ... on AddRouteSuccess {
      route { id host path tlsCertRef source service { id } environment { name } }
    }
    ... on ValidationError { problems { path message line } }
    ... on ConflictError { existingId existing { __typename id ... on Route { host path } } }
    ... on Error { message code path }
  }
}
"""

REMOVE_ROUTE = """
mutation($id: ID!) {
  removeRoute(input: {id: $id}) {
    __typename
    ... on RemoveRouteSuccess { removedRouteId }
    ... on ConflictError { existingId }
    ... on Error { message code path }
  }
}
"""

UNKNOWN_ROUTE = "rte_01M8EH5K0V56WD37Z896MQ0S8X"


async def table_counts(store: Store) -> dict[str, int]:
    """Row counts of every table of the data model."""
    async with store.read() as session:
        return {
            table.name: int(await session.scalar(select(func.count()).select_from(table)) or 0)
            for table in Base.metadata.sorted_tables
        }


async def _audit(store: Store) -> list[AuditEvent]:
    async with store.read() as session:
        return list((await session.scalars(select(AuditEvent).order_by(AuditEvent.id))).all())


async def _events(store: Store) -> list[Event]:
    """What subscribers see: the events of every stream but the controllers' work queues."""
    async with store.read() as session:
        query = select(Event).where(~Event.stream.startswith("work:")).order_by(Event.id)
        return list((await session.scalars(query)).all())


async def _shop(ctx: Context, *environments: str) -> None:
    project = await make_project(ctx)
    for name in environments or ("stage",):
        await make_environment(ctx, project, name)


async def _add(api: Api, service_id: str, host: str, path: str | None = None) -> dict[str, Any]:
    given: dict[str, Any] = {"serviceId": service_id, "host": host}
    if path is not None:
        given["path"] = path
    data = await api.data(ADD_ROUTE, {"input": given})
    result: dict[str, Any] = data["addRoute"]
    return result


async def _added(api: Api, service_id: str, host: str, path: str | None = None) -> dict[str, Any]:
    result = await _add(api, service_id, host, path)
    assert result["__typename"] == "AddRouteSuccess", result
    route: dict[str, Any] = result["route"]
    return route


async def test_add_route_normalises_host_and_path_and_is_audited(
    api: Api, ctx: Context, store: Store
) -> None:
    await _shop(ctx)
    service = await make_service(ctx)
    audit_before = len(await _audit(store))
    events_before = len(await _events(store))

    result = await api.data(
        ADD_ROUTE,
        {
            "input": {
                "serviceId": service.id,
                "host": "  API.Example.COM ",
                "path": "/api/",
                "tlsCertRef": "certs/example",
            }
        },
    )

    route = result["addRoute"]["route"]
    assert route["id"].startswith("rte_")
    assert route["host"] == "api.example.com"
    assert route["path"] == "/api"
    assert route["tlsCertRef"] == "certs/example"
    assert route["source"] == "API"
    assert route["service"] == {"id": service.id}
    assert route["environment"] == {"name": "stage"}
    async with store.read() as session:
        row = await session.get(Route, route["id"])
    assert row is not None
    assert (row.host, row.path, row.source) == ("api.example.com", "/api", RouteSource.API)

    audit = await _audit(store)
    assert len(audit) == audit_before + 1
    assert (audit[-1].action, audit[-1].entity_type, audit[-1].entity_id) == (
        "route.add",
        "route",
        route["id"],
    )
    assert audit[-1].payload["before"] is None
    assert audit[-1].payload["after"]["host"] == "api.example.com"
    events = await _events(store)
    assert len(events) == events_before + 1
    assert (events[-1].type, events[-1].entity_id) == ("route.added", route["id"])
    assert events[-1].payload == {
        "host": "api.example.com",
        "path": "/api",
        "service": "api",
        "environment": "stage",
    }


async def test_path_defaults_to_root(api: Api, ctx: Context) -> None:
    await _shop(ctx)
    service = await make_service(ctx)
    route = await _added(api, service.id, "api.example.com")
    assert route["path"] == "/"


async def test_same_host_and_path_is_a_conflict_that_changes_nothing(
    api: Api, ctx: Context, store: Store
) -> None:
    await _shop(ctx)
    api_service = await make_service(ctx, name="api")
    web_service = await make_service(ctx, name="web")
    first = await _added(api, api_service.id, "shop.example.com", "/api")
    before = await table_counts(store)

    # Another service, or the same one again; '/api/' and 'Shop.Example.com' mean the same.
    for service_id in (web_service.id, api_service.id):
        result = await _add(api, service_id, "Shop.Example.com", "/api/")
        assert result["__typename"] == "ConflictError"
        assert result["code"] == "CONFLICT"
        assert result["message"] == "Route conflict: host already bound in env 'stage'."
        assert result["path"] == ["input", "host"]
        assert result["existingId"] == first["id"]
        assert result["existing"] == {
            "__typename": "Route",
            "id": first["id"],
            "host": "shop.example.com",
            "path": "/api",
        }
        assert await table_counts(store) == before


async def test_conflict_with_a_spec_route(api: Api, ctx: Context, store: Store) -> None:
    await _shop(ctx)
    owner = await make_service(ctx, name="api", routes=[("shop.example.com", "/")])
    web = await make_service(ctx, name="web")
    async with store.read() as session:
        spec_route = await session.scalar(select(Route).where(Route.service_id == owner.id))
    assert spec_route is not None
    before = await table_counts(store)

    result = await _add(api, web.id, "shop.example.com", "/")

    assert result["__typename"] == "ConflictError"
    assert result["message"] == "Route conflict: host already bound in env 'stage'."
    assert result["existingId"] == spec_route.id
    assert await table_counts(store) == before


async def test_same_host_with_another_path_is_fine(api: Api, ctx: Context) -> None:
    await _shop(ctx)
    api_service = await make_service(ctx, name="api")
    web_service = await make_service(ctx, name="web")
    root = await _added(api, web_service.id, "shop.example.com", "/")
    prefixed = await _added(api, api_service.id, "shop.example.com", "/api")
    assert root["id"] != prefixed["id"]

    listed = await api.data(
        """{ project(slug: "shop") { environment(name: "stage") {
             routes { totalCount nodes { host path service { name } } } } } }"""
    )
    assert listed["project"]["environment"]["routes"] == {
        "totalCount": 2,
        "nodes": [
            {"host": "shop.example.com", "path": "/", "service": {"name": "web"}},
            {"host": "shop.example.com", "path": "/api", "service": {"name": "api"}},
        ],
    }


async def test_same_host_and_path_in_another_environment_is_fine(api: Api, ctx: Context) -> None:
    await _shop(ctx, "stage", "prod")
    stage = await make_service(ctx, environment="stage")
    prod = await make_service(ctx, environment="prod")
    in_stage = await _added(api, stage.id, "shop.example.com", "/")
    in_prod = await _added(api, prod.id, "shop.example.com", "/")
    assert in_stage["environment"] == {"name": "stage"}
    assert in_prod["environment"] == {"name": "prod"}
    assert in_stage["id"] != in_prod["id"]


async def test_invalid_host_and_path_name_each_field(api: Api, ctx: Context, store: Store) -> None:
    await _shop(ctx)
    service = await make_service(ctx)
    before = await table_counts(store)

    both = await _add(api, service.id, "not a host", "api")
    assert both["__typename"] == "ValidationError"
    assert both["code"] == "VALIDATION_FAILED"
    assert both["path"] == ["input", "host"]
    assert both["problems"] == [
        {
            "path": ["input", "host"],
            "message": "host 'not a host' is not a lowercase DNS name (like api.example.com "
            "or *.preview.example.com)",
            "line": None,
        },
        {"path": ["input", "path"], "message": "path 'api' must start with '/'", "line": None},
    ]
    assert both["message"].endswith("(and 1 more problems)")

    for path, message in [
        ("/a//b", "path '/a//b' must not contain '//' or '..' segments"),
        ("/a/../b", "path '/a/../b' must not contain '//' or '..' segments"),
        ("/a?b=1", "path '/a?b=1' must be a plain path prefix, without spaces, '?' or '#'"),
    ]:
        bad_path = await _add(api, service.id, "api.example.com", path)
        assert bad_path["__typename"] == "ValidationError"
        assert bad_path["problems"] == [
            {"path": ["input", "path"], "message": message, "line": None}
        ]

    for host in ("-bad.example.com", "bad_host.example.com", "a" * 254, "api..example.com"):
        bad_host = await _add(api, service.id, host, "/")
        assert bad_host["__typename"] == "ValidationError", host
        assert [p["path"] for p in bad_host["problems"]] == [["input", "host"]]

    assert await table_counts(store) == before


async def test_add_route_to_unknown_or_deleted_service_is_not_found(
    api: Api, ctx: Context, store: Store
) -> None:
    await _shop(ctx)
    service = await make_service(ctx)
    await api.data(
        "mutation($id: ID!) { deleteService(input: {id: $id}) { __typename } }", {"id": service.id}
    )
    before = await table_counts(store)
    for service_id in (service.id, "svc_01M8EH5K0V56WD37Z896MQ0S8X"):
        result = await _add(api, service_id, "api.example.com")
        assert result == {
            "__typename": "NotFoundError",
            "message": f"Service {service_id!r} not found.",
            "code": "NOT_FOUND",
            "path": ["input", "serviceId"],
        }
    assert await table_counts(store) == before


async def test_remove_api_route(api: Api, ctx: Context, store: Store) -> None:
    await _shop(ctx)
    service = await make_service(ctx)
    route = await _added(api, service.id, "api.example.com", "/v1")
    audit_before = len(await _audit(store))
    events_before = len(await _events(store))

    result = (await api.data(REMOVE_ROUTE, {"id": route["id"]}))["removeRoute"]

    assert result == {"__typename": "RemoveRouteSuccess", "removedRouteId": route["id"]}
    async with store.read() as session:
        assert await session.get(Route, route["id"]) is None
    gone = await api.data(
        """query($id: ID!, $svc: ID!) { node(id: $id) { id }
             service(id: $svc) { routes { totalCount } } }""",
        {"id": route["id"], "svc": service.id},
    )
    assert gone == {"node": None, "service": {"routes": {"totalCount": 0}}}

    audit = await _audit(store)
    assert len(audit) == audit_before + 1
    assert (audit[-1].action, audit[-1].entity_id) == ("route.remove", route["id"])
    assert audit[-1].payload["before"]["path"] == "/v1"
    assert audit[-1].payload["after"] is None
    events = await _events(store)
    assert len(events) == events_before + 1
    assert (events[-1].type, events[-1].entity_id) == ("route.removed", route["id"])
    assert events[-1].payload == {
        "host": "api.example.com",
        "path": "/v1",
        "service": "api",
        "environment": "stage",
    }

    # Removed once; the second time it is not there.
    again = (await api.data(REMOVE_ROUTE, {"id": route["id"]}))["removeRoute"]
    assert again["__typename"] == "NotFoundError"


async def test_remove_spec_route_is_a_conflict_pointing_at_enclii_yaml(
    api: Api, ctx: Context, store: Store
) -> None:
    await _shop(ctx)
    service = await make_service(ctx, routes=[("api.example.com", "/")])
    async with store.read() as session:
        spec_route = await session.scalar(select(Route).where(Route.service_id == service.id))
    assert spec_route is not None
    before = await table_counts(store)

    result = (await api.data(REMOVE_ROUTE, {"id": spec_route.id}))["removeRoute"]

    assert result == {
        "__typename": "ConflictError",
        "existingId": spec_route.id,
        "message": "Route api.example.com/ comes from the Service Spec of 'api'; remove it "
        "from enclii.yaml and apply again.",
        "code": "CONFLICT",
        "path": ["input", "id"],
    }
    assert await table_counts(store) == before


async def test_remove_unknown_route_is_not_found(api: Api, ctx: Context, store: Store) -> None:
    await _shop(ctx)
    service = await make_service(ctx)
    before = await table_counts(store)
    # Unknown, malformed, and the ID of something that is not a route.
    for route_id in (UNKNOWN_ROUTE, "garbage", service.id):
        result = (await api.data(REMOVE_ROUTE, {"id": route_id}))["removeRoute"]
        assert result == {
            "__typename": "NotFoundError",
            "message": f"Route {route_id!r} not found.",
            "code": "NOT_FOUND",
            "path": ["input", "id"],
        }
    assert await table_counts(store) == before


async def test_every_route_mutation_writes_exactly_one_audit_event(
    api: Api, ctx: Context, store: Store
) -> None:
    await _shop(ctx)
    service = await make_service(ctx)
    start = len(await _audit(store))
    first = await _added(api, service.id, "a.example.com")
    second = await _added(api, service.id, "b.example.com", "/x/")
    await api.data(REMOVE_ROUTE, {"id": first["id"]})
    await _add(api, service.id, "b.example.com", "/x")  # conflict: no audit
    await api.data(REMOVE_ROUTE, {"id": UNKNOWN_ROUTE})  # not found: no audit

    audit = (await _audit(store))[start:]
    assert [(a.action, a.entity_id, a.project_id) for a in audit] == [
        ("route.add", first["id"], service.project_id),
        ("route.add", second["id"], service.project_id),
        ("route.remove", first["id"], service.project_id),
    ]
    assert all(a.request_id for a in audit)
    async with store.read() as session:
        live = await session.get(Service, service.id)
    assert live is not None and live.deleted_at is None
