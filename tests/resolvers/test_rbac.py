"""Roles, permissions and token scopes, generated from the matrix itself.

Every cell of ``resolvers.identity.rbac.MATRIX`` (permission x role) is exercised over the
HTTP API by a real user of that role holding a real personal access token: once with the
role on the whole account and once with the role on one project only. Allowed cells must
succeed; denied ones must answer FORBIDDEN with a message naming the role needed, change
nothing, and (for mutations) leave exactly one "denied" AuditEvent. A permission added to
the matrix without a scenario here fails its cells. Subscriptions are exercised over a real
websocket (a live server), mutations and queries over HTTP.
"""

from __future__ import annotations

import asyncio
import contextlib
import re
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Final

import pytest
from sqlalchemy import func, select

from graph.app import AppState, create_app
from graph.permissions import NESTED_FIELDS, ROOT_FIELDS
from graph.schema import schema
from resolvers.bootstrap import Bootstrap
from resolvers.context import Actor, Context
from resolvers.identity.rbac import MATRIX, SCOPES, Permission
from resolvers.identity.tokens import bootstrap_token
from resolvers.services import apply_service
from store.db import Store
from store.events import CANARY_ENDED, CANARY_SAMPLE, append_event, canary_stream
from store.ids import new_id
from store.metrics import window_start
from store.models import (
    ApiToken,
    AuditEvent,
    AuditOutcome,
    Base,
    CostSample,
    Deployment,
    DeploymentPhase,
    DeploymentStrategy,
    Environment,
    Membership,
    Project,
    Release,
    ReleaseStatus,
    RequestMetrics,
    Role,
    Route,
    RouteSource,
    Secret,
    SecretScope,
    Service,
    ServiceType,
    User,
    utcnow,
)
from tests.factories import make_environment, make_project, service_yaml
from tests.helpers import DEADLINE_S, Api, GraphQLWebSocket, LiveServer, start_live_server

LEVELS: Final = ("account", "project")

# -- the world each cell acts on -----------------------------------------------------------


@dataclass(frozen=True)
class World:
    """A project with an environment, services, API routes, a secret at each scope, a
    cost sample and request metrics: something for every permission to act on. Each level's
    member gets a service and a route of its own to delete, a release of "api" to deploy, a
    deployed service of its own to roll back and a canary under way (with an analysis check
    streamed and its stream ended) to promote, pause, abort and follow, so both levels act
    on one world."""

    account_id: str
    project_id: str
    slug: str
    environment_id: str
    service_id: str  # "api": the secrets and the cost sample belong to it
    project_secret_id: str
    environment_secret_id: str
    service_secret_id: str
    cost_sample_id: str
    own_service: dict[str, str] = field(default_factory=dict)  # level -> service ID
    own_route: dict[str, str] = field(default_factory=dict)  # level -> route ID
    own_release: dict[str, str] = field(default_factory=dict)  # level -> release of "api"
    deployed_service: dict[str, str] = field(default_factory=dict)  # level -> service ID
    rollback_target: dict[str, str] = field(default_factory=dict)  # level -> release ID
    canary: dict[str, str] = field(default_factory=dict)  # level -> a DEPLOYING canary
    applied_service: str = ""  # a service with a spec (applied through the resolvers)


# One analysis check of a canary, as the deployment controller streams it.
CHECK: Final = {
    "at": "2030-01-01T12:00:30+00:00",
    "weight": 10,
    "step": 1,
    "canary": {"requests": 400, "errors": 0, "errorRate": 0.0, "p95Ms": 21.0},
    "stable": {"requests": 3600, "errors": 0, "errorRate": 0.0, "p95Ms": 20.0},
    "verdict": "pass",
    "reason": "5xx rate 0.0% (400 requests); P95 21 ms vs stable's 20 ms",
}


async def build_world(ctx: Context, slug: str) -> World:
    """The project and its environment through the resolvers (so the project has events
    and an audit trail); the rest as plain rows, in one transaction. Releases are rows that
    were never built and deployments rows the controller never saw: the guard is the point,
    not the build."""
    project = await make_project(ctx, slug)
    env = await make_environment(ctx, project)
    api = Service(
        id=new_id("service"),
        project_id=project.id,
        environment_id=env.id,
        name="api",
        type=ServiceType.API,
    )
    own_service = {level: new_id("service") for level in LEVELS}
    own_route = {level: new_id("route") for level in LEVELS}
    own_release = {level: new_id("release") for level in LEVELS}
    deployed_service = {level: new_id("service") for level in LEVELS}
    rollback_target = {level: new_id("release") for level in LEVELS}
    canary_service = {level: new_id("service") for level in LEVELS}
    canary = {level: new_id("deployment") for level in LEVELS}
    secret_ids = [new_id("secret") for _ in range(3)]
    cost_id = new_id("cost_sample")
    async with ctx.store.write() as session:
        session.add(api)
        await session.flush()
        for level in LEVELS:
            session.add(
                Service(
                    id=own_service[level],
                    project_id=project.id,
                    environment_id=env.id,
                    name=f"web-{level}",
                    type=ServiceType.API,
                )
            )
            session.add(
                Route(
                    id=own_route[level],
                    environment_id=env.id,
                    service_id=api.id,
                    host=f"{level}.{slug}.test",
                    path="/",
                    source=RouteSource.API,
                )
            )
            session.add(
                Service(
                    id=deployed_service[level],
                    project_id=project.id,
                    environment_id=env.id,
                    name=f"deployed-{level}",
                    type=ServiceType.API,
                )
            )
            session.add(
                Service(
                    id=canary_service[level],
                    project_id=project.id,
                    environment_id=env.id,
                    name=f"canary-{level}",
                    type=ServiceType.API,
                )
            )
        await session.flush()
        # A release of "api" for each level to deploy; for each level's deployed service,
        # an earlier release and the current one, each deployed: a rollback has a target.
        # For each level's canary service, a stable release and a canary replacing it.
        current = {level: new_id("release") for level in LEVELS}
        stable = {level: new_id("release") for level in LEVELS}
        canary_release = {level: new_id("release") for level in LEVELS}
        releases = (
            [(own_release[level], api.id) for level in LEVELS]
            + [
                (release_id, deployed_service[level])
                for level in LEVELS
                for release_id in (rollback_target[level], current[level])
            ]
            + [
                (release_id, canary_service[level])
                for level in LEVELS
                for release_id in (stable[level], canary_release[level])
            ]
        )
        session.add_all(
            Release(
                id=release_id,
                service_id=service_id,
                status=ReleaseStatus.READY,
                created_by=ctx.actor.id,
            )
            for release_id, service_id in releases
        )
        await session.flush()
        for level in LEVELS:
            previous: str | None = None
            for release_id in (rollback_target[level], current[level]):
                session.add(
                    Deployment(
                        id=new_id("deployment"),
                        service_id=deployed_service[level],
                        from_release_id=previous,
                        to_release_id=release_id,
                        strategy=DeploymentStrategy.ROLLING,
                        phase=DeploymentPhase.HEALTHY,
                        conditions=[],
                        created_by=ctx.actor.id,
                        finished_at=utcnow(),
                    )
                )
                previous = release_id
            session.add(
                Deployment(
                    id=canary[level],
                    service_id=canary_service[level],
                    from_release_id=stable[level],
                    to_release_id=canary_release[level],
                    strategy=DeploymentStrategy.CANARY,
                    phase=DeploymentPhase.DEPLOYING,
                    conditions=[],
                    canary={"step": 1, "weight": 10},
                    created_by=ctx.actor.id,
                )
            )
            await append_event(
                session,
                canary_stream(canary[level]),
                CANARY_SAMPLE,
                entity_id=canary[level],
                payload=CHECK,
            )
            await append_event(
                session, canary_stream(canary[level]), CANARY_ENDED, entity_id=canary[level]
            )
        session.add_all(
            [
                Secret(
                    id=secret_ids[0],
                    project_id=project.id,
                    scope=SecretScope.PROJECT,
                    scope_ref=project.id,
                    name="DATABASE_URL",
                ),
                Secret(
                    id=secret_ids[1],
                    project_id=project.id,
                    environment_id=env.id,
                    scope=SecretScope.ENVIRONMENT,
                    scope_ref=env.id,
                    name="STRIPE_KEY",
                ),
                Secret(
                    id=secret_ids[2],
                    project_id=project.id,
                    environment_id=env.id,
                    service_id=api.id,
                    scope=SecretScope.SERVICE,
                    scope_ref=api.id,
                    name="API_KEY",
                ),
                CostSample(
                    id=cost_id,
                    environment_id=env.id,
                    service_id=api.id,
                    cpu_seconds=60.0,
                    ts=utcnow(),
                ),
                RequestMetrics(
                    service_id=api.id,
                    release_id=own_release["account"],
                    window_start=window_start(utcnow()),
                    requests=3,
                    status_2xx=3,
                    latency_sum_ms=12.0,
                    histogram={"30": 3},
                ),
            ]
        )
    applied = await apply_service(ctx, service_yaml(slug, env.name, "scaled"))
    return World(
        applied_service=applied.service.id,
        account_id=project.account_id,
        project_id=project.id,
        slug=slug,
        environment_id=env.id,
        service_id=api.id,
        project_secret_id=secret_ids[0],
        environment_secret_id=secret_ids[1],
        service_secret_id=secret_ids[2],
        cost_sample_id=cost_id,
        own_service=own_service,
        own_route=own_route,
        own_release=own_release,
        deployed_service=deployed_service,
        rollback_target=rollback_target,
        canary=canary,
    )


@dataclass(frozen=True)
class Member:
    user_id: str
    token_id: str
    api: Api


async def add_member(
    store: Store,
    api: Api,
    account_id: str,
    name: str,
    role: Role | None,
    project_id: str | None = None,
    *,
    scopes: tuple[str, ...] = ("*",),
    token_project_id: str | None = None,
) -> Member:
    """A user with ``role`` on the account (or on ``project_id``), and a token of theirs
    (every scope unless ``scopes`` says otherwise), calling through ``api``'s client."""
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
        if role is not None:
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
        row.project_id = token_project_id
        session.add(row)
        user_id, token_id = user.id, row.id
    return Member(user_id, token_id, Api(api.client, {"authorization": f"Bearer {secret}"}))


# -- observing the database ----------------------------------------------------------------

# The audit trail (its events and the head of its hash chain) is checked on its own.
AUDIT_TABLES: Final = frozenset({"audit_events", "audit_chain_heads"})
# Rows the API changes in place (a count would not notice), compared column by column.
UPDATED_IN_PLACE: Final = (Project, Environment, Service, Membership, ApiToken, Deployment)
# Written by the authenticator in the background on a token's first use; not a change.
VOLATILE_COLUMNS: Final = frozenset({"last_used_at"})


async def database_state(store: Store) -> dict[str, Any]:
    """The row count of every table but the audit trail's, and every row of the tables
    whose rows the API updates in place."""
    tables = [t for t in Base.metadata.sorted_tables if t.name not in AUDIT_TABLES]
    async with store.read() as session:
        counts = (
            await session.execute(
                select(
                    *(
                        select(func.count()).select_from(t).scalar_subquery().label(t.name)
                        for t in tables
                    )
                )
            )
        ).one()
        state: dict[str, Any] = {"counts": dict(counts._mapping)}
        for model in UPDATED_IN_PLACE:
            table = Base.metadata.tables[model.__tablename__]
            rows = await session.execute(select(table).order_by(*table.primary_key.columns))
            state[table.name] = [
                {k: v for k, v in row._mapping.items() if k not in VOLATILE_COLUMNS} for row in rows
            ]
    return state


async def last_audit_seq(store: Store) -> int:
    async with store.read() as session:
        return int(await session.scalar(select(func.max(AuditEvent.seq))) or 0)


async def audit_since(store: Store, seq: int) -> list[AuditEvent]:
    async with store.read() as session:
        rows = await session.scalars(
            select(AuditEvent).where(AuditEvent.seq > seq).order_by(AuditEvent.seq)
        )
        return list(rows.all())


# -- the expected denials ------------------------------------------------------------------

# What each permission lets a person do, as the denial messages say it.
ACTION_WORDS: Final[dict[Permission, str]] = {
    Permission.VIEW: "seeing this",
    Permission.PROJECT_WRITE: "creating or changing projects",
    Permission.ENVIRONMENT_WRITE: "creating or changing environments",
    Permission.DEPLOY: "deploying, scaling, rolling back or changing services",
    Permission.SECRETS_SERVICE: "reading or writing service secrets",
    Permission.SECRETS_SCOPE: "reading or writing project and environment secrets",
    Permission.ROUTES: "managing routes and domains",
    Permission.OBSERVE: "viewing logs, metrics and activity",
    Permission.COST_READ: "viewing cost reports",
    Permission.BUDGETS: "managing budgets",
    Permission.ROLES: "managing roles and other people's tokens",
    Permission.AUDIT_READ: "reading the audit trail",
}

STRONGEST_FIRST: Final = (Role.OWNER, Role.ADMIN, Role.DEVELOPER, Role.READONLY)


def least_role(permission: Permission) -> Role:
    """The weakest role the matrix allows ``permission``: the one a denial names."""
    return [r for r in STRONGEST_FIRST if r in MATRIX[permission]][-1]


def role_denial(permission: Permission, where: str, role: Role | None) -> str:
    have = f"you are {role.value}" if role is not None else "you have no role there"
    return (
        f"Forbidden: {ACTION_WORDS[permission]} needs the {least_role(permission).value} "
        f"role on {where}; {have}."
    )


def scope_denial(permission: Permission, *scopes: str) -> str:
    return (
        f"Forbidden: this token's scopes do not allow {ACTION_WORDS[permission]}; create a "
        f"token with {' or '.join(scopes)}."
    )


# -- scenarios: API operations that need each permission -----------------------------------

Variables = Callable[[World, str], dict[str, Any]]
Check = Callable[[dict[str, Any], World, str], None]


@dataclass(frozen=True)
class Scenario:
    name: str
    field: str  # the API field, as graph.permissions names it
    needs: tuple[Permission, ...]  # checked in this order; the last is the one under test
    document: str
    variables: Variables  # (world, level)
    check: Check  # asserts the allowed answer: (data, world, level)
    error_path: tuple[str, ...]
    audit_action: str | None = None  # mutations: the AuditEvent they write
    on_account: bool = False  # acts on the account, not the world's project
    by_id: bool = False  # nested fields name the project by ID in denials
    subscription: bool = False  # followed over a websocket until it completes

    def where(self, world: World) -> str:
        if self.on_account:
            return "the account"
        return f"project {world.project_id}" if self.by_id else f"project {world.slug!r}"


def _mutation(name: str, args: str, given: str, success: str, selection: str) -> str:
    return (
        f"mutation{args} {{ {name}(input: {{{given}}}) {{ __typename "
        f"... on {success} {{ {selection} }} ... on Error {{ message code path }} }} }}"
    )


CREATE_PROJECT = _mutation(
    "createProject",
    "($name: String!)",
    "name: $name",
    "CreateProjectSuccess",
    "project { slug }",
)
UPDATE_PROJECT = _mutation(
    "updateProject",
    "($id: ID!)",
    'id: $id, name: "Renamed"',
    "UpdateProjectSuccess",
    "project { id name }",
)
CREATE_ENV = _mutation(
    "createEnvironment",
    "($p: ID!, $name: String!, $limits: EnvironmentLimitsInput)",
    "projectId: $p, name: $name, limits: $limits",
    "CreateEnvironmentSuccess",
    "environment { name limits { budgetMonthlyUsd } project { id } }",
)
UPDATE_ENV = _mutation(
    "updateEnvironment",
    "($id: ID!, $region: String, $limits: EnvironmentLimitsInput)",
    "id: $id, region: $region, limits: $limits",
    "UpdateEnvironmentSuccess",
    "environment { id region limits { budgetMonthlyUsd } }",
)
APPLY = _mutation(
    "applyService",
    "($yaml: String!)",
    "specYaml: $yaml",
    "ApplyServiceSuccess",
    "created service { name }",
)
SCALE = _mutation(
    "scaleService",
    "($id: ID!)",
    "serviceId: $id, min: 1, max: 3",
    "ApplyServiceSuccess",
    "service { id } version { spec }",
)
DELETE_SERVICE = _mutation(
    "deleteService", "($id: ID!)", "id: $id", "DeleteServiceSuccess", "deletedServiceId"
)
ADD_ROUTE = _mutation(
    "addRoute",
    "($id: ID!, $host: String!)",
    "serviceId: $id, host: $host",
    "AddRouteSuccess",
    "route { host path }",
)
REMOVE_ROUTE = _mutation(
    "removeRoute", "($id: ID!)", "id: $id", "RemoveRouteSuccess", "removedRouteId"
)
DEPLOYMENT_SELECTION = "deployment { kind phase toRelease { id } }"
DEPLOY = _mutation(
    "deploy",
    "($s: ID!, $r: ID!)",
    "serviceId: $s, releaseId: $r",
    "DeploySuccess",
    DEPLOYMENT_SELECTION,
)
ROLLBACK = _mutation(
    "rollback", "($s: ID!)", "serviceId: $s", "RollbackSuccess", DEPLOYMENT_SELECTION
)
OVERRIDE_SELECTION = "deployment { id phase canary { step weight pausedBy } }"
PROMOTE = _mutation(
    "promoteDeployment",
    "($id: ID!)",
    "deploymentId: $id",
    "DeploymentOverrideSuccess",
    OVERRIDE_SELECTION,
)
PAUSE = _mutation(
    "pauseDeployment",
    "($id: ID!)",
    "deploymentId: $id",
    "DeploymentOverrideSuccess",
    OVERRIDE_SELECTION,
)
ABORT = _mutation(
    "abortDeployment",
    "($id: ID!)",
    'deploymentId: $id, reason: "checking the guard"',
    "DeploymentOverrideSuccess",
    OVERRIDE_SELECTION,
)
CANARY_METRICS = (
    "subscription($id: ID!) { canaryMetrics(deploymentId: $id) { sequence weight verdict } }"
)
INVITE = _mutation(
    "inviteMember",
    "($p: ID!, $email: String!)",
    "email: $email, role: DEVELOPER, projectId: $p",
    "MembershipSuccess",
    "membership { role project { id } }",
)

PROJECT = "query($slug: String!) { project(slug: $slug) { id slug } }"
NODE = "query($id: ID!) { node(id: $id) { id } }"
SERVICE_LIST = (
    'query($slug: String!) { service(project: $slug, environment: "stage", name: "api") '
    "{ LIST { nodes { id } } } }"
)
ENVIRONMENT_LIST = (
    'query($slug: String!) { project(slug: $slug) { environment(name: "stage") '
    "{ LIST { nodes { id } } } } }"
)
PROJECT_LIST = "query($slug: String!) { project(slug: $slug) { LIST { nodes { id } } } }"
PROJECT_AUDIT = (
    "query($slug: String!) { project(slug: $slug) { auditEvents { nodes { action } } } }"
)
PROJECT_AUDIT_FILTER = (
    "query($p: ID!) { auditEvents(filter: {projectId: $p}) { nodes { action projectId } } }"
)
ACCOUNT_AUDIT = "{ auditEvents { nodes { action } } }"
EVENTS = "query($p: ID!) { projectEvents(projectId: $p) { events { type } } }"
METRICS = (
    "query($s: ID!) { metrics(serviceId: $s, window: 604800) "
    "{ overall { requests } releases { releaseId } } }"
)


def _slug(w: World, level: str) -> dict[str, Any]:
    return {"slug": w.slug}


def _project_id(w: World, level: str) -> dict[str, Any]:
    return {"p": w.project_id}


def _budget(amount: str) -> dict[str, Any]:
    return {"budgetMonthlyUsd": amount}


def _ok_project(data: dict[str, Any], w: World, level: str) -> None:
    assert data == {"project": {"id": w.project_id, "slug": w.slug}}


def _ok_node(data: dict[str, Any], w: World, level: str) -> None:
    assert data == {"node": {"id": w.service_id}}


def _ok_create_project(data: dict[str, Any], w: World, level: str) -> None:
    assert data["createProject"] == {
        "__typename": "CreateProjectSuccess",
        "project": {"slug": f"new-{level}"},
    }


def _ok_update_project(data: dict[str, Any], w: World, level: str) -> None:
    assert data["updateProject"] == {
        "__typename": "UpdateProjectSuccess",
        "project": {"id": w.project_id, "name": "Renamed"},
    }


def _ok_create_env(budget: str | None) -> Check:
    def check(data: dict[str, Any], w: World, level: str) -> None:
        result = data["createEnvironment"]
        assert result["__typename"] == "CreateEnvironmentSuccess", result
        assert result["environment"] == {
            "name": f"preview-{level}",
            "limits": {"budgetMonthlyUsd": budget},
            "project": {"id": w.project_id},
        }

    return check


def _ok_update_env(region: str | None, budget: str | None) -> Check:
    def check(data: dict[str, Any], w: World, level: str) -> None:
        assert data["updateEnvironment"] == {
            "__typename": "UpdateEnvironmentSuccess",
            "environment": {
                "id": w.environment_id,
                "region": region or f"r-{level}",
                "limits": {"budgetMonthlyUsd": budget},
            },
        }

    return check


def _ok_apply(data: dict[str, Any], w: World, level: str) -> None:
    assert data["applyService"] == {
        "__typename": "ApplyServiceSuccess",
        "created": True,
        "service": {"name": f"worker-{level}"},
    }


def _ok_delete(data: dict[str, Any], w: World, level: str) -> None:
    assert data["deleteService"] == {
        "__typename": "DeleteServiceSuccess",
        "deletedServiceId": w.own_service[level],
    }


def _ok_add_route(data: dict[str, Any], w: World, level: str) -> None:
    assert data["addRoute"] == {
        "__typename": "AddRouteSuccess",
        "route": {"host": f"extra-{level}.{w.slug}.test", "path": "/"},
    }


def _ok_remove_route(data: dict[str, Any], w: World, level: str) -> None:
    assert data["removeRoute"] == {
        "__typename": "RemoveRouteSuccess",
        "removedRouteId": w.own_route[level],
    }


def _ok_scale(data: dict[str, Any], w: World, level: str) -> None:
    scaled = data["scaleService"]
    assert scaled["__typename"] == "ApplyServiceSuccess"
    assert scaled["service"] == {"id": w.applied_service}
    assert scaled["version"]["spec"]["spec"]["runtime"]["replicas"] == {"min": 1, "max": 3}


def _ok_deployment(field: str, kind: str, release: Callable[[World, str], str]) -> Check:
    def check(data: dict[str, Any], w: World, level: str) -> None:
        assert data[field] == {
            "__typename": f"{field.title()}Success",
            "deployment": {"kind": kind, "phase": "QUEUED", "toRelease": {"id": release(w, level)}},
        }

    return check


def _ok_override(field: str, *, paused: bool) -> Check:
    def check(data: dict[str, Any], w: World, level: str) -> None:
        result = data[field]
        paused_by = result["deployment"]["canary"]["pausedBy"]
        if paused:  # by this level's member, through their token
            assert re.fullmatch(rf"{level}-[a-z]+ \(token {level}-[a-z]+-token\)", paused_by)
        else:
            assert paused_by is None
        assert result == {
            "__typename": "DeploymentOverrideSuccess",
            "deployment": {
                "id": w.canary[level],
                "phase": "DEPLOYING",  # the controller acts on it; the API records it
                "canary": {"step": 1, "weight": 10, "pausedBy": paused_by},
            },
        }

    return check


def _ok_canary_metrics(data: dict[str, Any], w: World, level: str) -> None:
    assert data == {"canaryMetrics": {"sequence": 1, "weight": 10, "verdict": "PASS"}}


def _ok_metrics(data: dict[str, Any], w: World, level: str) -> None:
    assert data == {
        "metrics": {
            "overall": {"requests": 3},
            "releases": [{"releaseId": w.own_release["account"]}],
        }
    }


def _ok_invite(data: dict[str, Any], w: World, level: str) -> None:
    assert data["inviteMember"] == {
        "__typename": "MembershipSuccess",
        "membership": {"role": "DEVELOPER", "project": {"id": w.project_id}},
    }


def _ok_events(data: dict[str, Any], w: World, level: str) -> None:
    types = {e["type"] for e in data["projectEvents"]["events"]}
    assert {"project.created", "environment.created"} <= types


def _ok_project_audit_filter(data: dict[str, Any], w: World, level: str) -> None:
    found = {(e["action"], e["projectId"]) for e in data["auditEvents"]["nodes"]}
    assert {("project.create", w.project_id), ("environment.create", w.project_id)} <= found


def _ok_account_audit(data: dict[str, Any], w: World, level: str) -> None:
    assert "account.bootstrap" in {e["action"] for e in data["auditEvents"]["nodes"]}


def _ok_project_audit(data: dict[str, Any], w: World, level: str) -> None:
    actions = {e["action"] for e in data["project"]["auditEvents"]["nodes"]}
    assert {"project.create", "environment.create"} <= actions


def _ok_list(path: tuple[str, ...], expected: Callable[[World], str]) -> Check:
    def check(data: dict[str, Any], w: World, level: str) -> None:
        found: Any = data
        for key in path:
            found = found[key]
        assert [n["id"] for n in found["nodes"]] == [expected(w)]

    return check


P = Permission
SCENARIOS: Final[dict[Permission, tuple[Scenario, ...]]] = {
    P.VIEW: (
        Scenario(
            name="project(slug)",
            field="Query.project",
            needs=(P.VIEW,),
            document=PROJECT,
            variables=_slug,
            check=_ok_project,
            error_path=("project",),
        ),
        Scenario(
            name="node(id)",
            field="Query.node",
            needs=(P.VIEW,),
            document=NODE,
            variables=lambda w, level: {"id": w.service_id},
            check=_ok_node,
            error_path=("node",),
        ),
        Scenario(
            name="canaryMetrics",
            field="Subscription.canaryMetrics",
            needs=(P.VIEW,),
            document=CANARY_METRICS,
            variables=lambda w, level: {"id": w.canary[level]},
            check=_ok_canary_metrics,
            error_path=("canaryMetrics",),
            subscription=True,
        ),
    ),
    P.PROJECT_WRITE: (
        Scenario(
            name="updateProject",
            field="Mutation.updateProject",
            needs=(P.PROJECT_WRITE,),
            document=UPDATE_PROJECT,
            variables=lambda w, level: {"id": w.project_id},
            check=_ok_update_project,
            error_path=("updateProject",),
            audit_action="project.update",
        ),
        Scenario(
            name="createProject",
            field="Mutation.createProject",
            needs=(P.PROJECT_WRITE,),
            document=CREATE_PROJECT,
            variables=lambda w, level: {"name": f"New {level}"},
            check=_ok_create_project,
            error_path=("createProject",),
            audit_action="project.create",
            on_account=True,
        ),
    ),
    P.ENVIRONMENT_WRITE: (
        Scenario(
            name="createEnvironment",
            field="Mutation.createEnvironment",
            needs=(P.ENVIRONMENT_WRITE,),
            document=CREATE_ENV,
            variables=lambda w, level: {
                "p": w.project_id,
                "name": f"preview-{level}",
                "limits": None,
            },
            check=_ok_create_env(None),
            error_path=("createEnvironment",),
            audit_action="environment.create",
        ),
        Scenario(
            name="updateEnvironment",
            field="Mutation.updateEnvironment",
            needs=(P.ENVIRONMENT_WRITE,),
            document=UPDATE_ENV,
            variables=lambda w, level: {
                "id": w.environment_id,
                "region": f"r-{level}",
                "limits": None,
            },
            check=_ok_update_env(None, None),
            error_path=("updateEnvironment",),
            audit_action="environment.update",
        ),
    ),
    P.DEPLOY: (
        Scenario(
            name="applyService",
            field="Mutation.applyService",
            needs=(P.DEPLOY,),
            document=APPLY,
            variables=lambda w, level: {"yaml": service_yaml(w.slug, "stage", f"worker-{level}")},
            check=_ok_apply,
            error_path=("applyService",),
            audit_action="service.apply",
        ),
        Scenario(
            name="scaleService",
            field="Mutation.scaleService",
            needs=(P.DEPLOY,),
            document=SCALE,
            variables=lambda w, level: {"id": w.applied_service},
            check=_ok_scale,
            error_path=("scaleService",),
            audit_action="service.scale",
        ),
        Scenario(
            name="deleteService",
            field="Mutation.deleteService",
            needs=(P.DEPLOY,),
            document=DELETE_SERVICE,
            variables=lambda w, level: {"id": w.own_service[level]},
            check=_ok_delete,
            error_path=("deleteService",),
            audit_action="service.delete",
        ),
        Scenario(
            name="deploy",
            field="Mutation.deploy",
            needs=(P.DEPLOY,),
            document=DEPLOY,
            variables=lambda w, level: {"s": w.service_id, "r": w.own_release[level]},
            check=_ok_deployment("deploy", "DEPLOY", lambda w, level: w.own_release[level]),
            error_path=("deploy",),
            audit_action="deployment.create",
        ),
        Scenario(
            name="rollback",
            field="Mutation.rollback",
            needs=(P.DEPLOY,),
            document=ROLLBACK,
            variables=lambda w, level: {"s": w.deployed_service[level]},
            check=_ok_deployment("rollback", "ROLLBACK", lambda w, level: w.rollback_target[level]),
            error_path=("rollback",),
            audit_action="deployment.rollback",
        ),
        # On the level's canary, in this order: each leaves it DEPLOYING for the next.
        Scenario(
            name="pauseDeployment",
            field="Mutation.pauseDeployment",
            needs=(P.DEPLOY,),
            document=PAUSE,
            variables=lambda w, level: {"id": w.canary[level]},
            check=_ok_override("pauseDeployment", paused=True),
            error_path=("pauseDeployment",),
            audit_action="deployment.pause",
        ),
        Scenario(
            name="promoteDeployment",
            field="Mutation.promoteDeployment",
            needs=(P.DEPLOY,),
            document=PROMOTE,
            variables=lambda w, level: {"id": w.canary[level]},
            check=_ok_override("promoteDeployment", paused=False),
            error_path=("promoteDeployment",),
            audit_action="deployment.promote",
        ),
        Scenario(
            name="abortDeployment",
            field="Mutation.abortDeployment",
            needs=(P.DEPLOY,),
            document=ABORT,
            variables=lambda w, level: {"id": w.canary[level]},
            check=_ok_override("abortDeployment", paused=False),
            error_path=("abortDeployment",),
            audit_action="deployment.abort",
        ),
    ),
    P.SECRETS_SERVICE: (
        Scenario(
            name="Service.secrets",
            field="Service.secrets",
            needs=(P.SECRETS_SERVICE,),
            document=SERVICE_LIST.replace("LIST", "secrets"),
            variables=_slug,
            check=_ok_list(("service", "secrets"), lambda w: w.service_secret_id),
            error_path=("service", "secrets"),
            by_id=True,
        ),
    ),
    P.SECRETS_SCOPE: (
        Scenario(
            name="Project.secrets",
            field="Project.secrets",
            needs=(P.SECRETS_SCOPE,),
            document=PROJECT_LIST.replace("LIST", "secrets"),
            variables=_slug,
            check=_ok_list(("project", "secrets"), lambda w: w.project_secret_id),
            error_path=("project", "secrets"),
            by_id=True,
        ),
        Scenario(
            name="Environment.secrets",
            field="Environment.secrets",
            needs=(P.SECRETS_SCOPE,),
            document=ENVIRONMENT_LIST.replace("LIST", "secrets"),
            variables=_slug,
            check=_ok_list(
                ("project", "environment", "secrets"), lambda w: w.environment_secret_id
            ),
            error_path=("project", "environment", "secrets"),
            by_id=True,
        ),
    ),
    P.ROUTES: (
        Scenario(
            name="addRoute",
            field="Mutation.addRoute",
            needs=(P.ROUTES,),
            document=ADD_ROUTE,
            variables=lambda w, level: {
                "id": w.service_id,
                "host": f"extra-{level}.{w.slug}.test",
            },
            check=_ok_add_route,
            error_path=("addRoute",),
            audit_action="route.add",
        ),
        Scenario(
            name="removeRoute",
            field="Mutation.removeRoute",
            needs=(P.ROUTES,),
            document=REMOVE_ROUTE,
            variables=lambda w, level: {"id": w.own_route[level]},
            check=_ok_remove_route,
            error_path=("removeRoute",),
            audit_action="route.remove",
        ),
    ),
    P.OBSERVE: (
        Scenario(
            name="projectEvents",
            field="Query.projectEvents",
            needs=(P.OBSERVE,),
            document=EVENTS,
            variables=_project_id,
            check=_ok_events,
            error_path=("projectEvents",),
        ),
        Scenario(
            name="metrics",
            field="Query.metrics",
            needs=(P.OBSERVE,),
            document=METRICS,
            variables=lambda w, level: {"s": w.service_id},
            check=_ok_metrics,
            error_path=("metrics",),
        ),
    ),
    P.COST_READ: (
        Scenario(
            name="Service.costSamples",
            field="Service.costSamples",
            needs=(P.COST_READ,),
            document=SERVICE_LIST.replace("LIST", "costSamples"),
            variables=_slug,
            check=_ok_list(("service", "costSamples"), lambda w: w.cost_sample_id),
            error_path=("service", "costSamples"),
            by_id=True,
        ),
        Scenario(
            name="Environment.costSamples",
            field="Environment.costSamples",
            needs=(P.COST_READ,),
            document=ENVIRONMENT_LIST.replace("LIST", "costSamples"),
            variables=_slug,
            check=_ok_list(("project", "environment", "costSamples"), lambda w: w.cost_sample_id),
            error_path=("project", "environment", "costSamples"),
            by_id=True,
        ),
    ),
    P.BUDGETS: (
        Scenario(
            name="updateEnvironment with a budget",
            field="Mutation.updateEnvironment",
            needs=(P.ENVIRONMENT_WRITE, P.BUDGETS),
            document=UPDATE_ENV,
            variables=lambda w, level: {
                "id": w.environment_id,
                "region": None,
                "limits": _budget("100"),
            },
            check=_ok_update_env("local", "100"),
            error_path=("updateEnvironment",),
            audit_action="environment.update",
        ),
        Scenario(
            name="createEnvironment with a budget",
            field="Mutation.createEnvironment",
            needs=(P.ENVIRONMENT_WRITE, P.BUDGETS),
            document=CREATE_ENV,
            variables=lambda w, level: {
                "p": w.project_id,
                "name": f"preview-{level}",
                "limits": _budget("12.5"),
            },
            check=_ok_create_env("12.5"),
            error_path=("createEnvironment",),
            audit_action="environment.create",
        ),
    ),
    P.ROLES: (
        Scenario(
            name="inviteMember",
            field="Mutation.inviteMember",
            needs=(P.ROLES,),
            document=INVITE,
            variables=lambda w, level: {"p": w.project_id, "email": f"{level}@invited.test"},
            check=_ok_invite,
            error_path=("inviteMember",),
            audit_action="member.invite",
        ),
    ),
    P.AUDIT_READ: (
        Scenario(
            name="auditEvents(filter: {projectId})",
            field="Query.auditEvents",
            needs=(P.AUDIT_READ,),
            document=PROJECT_AUDIT_FILTER,
            variables=_project_id,
            check=_ok_project_audit_filter,
            error_path=("auditEvents",),
        ),
        Scenario(
            name="Project.auditEvents",
            field="Project.auditEvents",
            needs=(P.AUDIT_READ,),
            document=PROJECT_AUDIT,
            variables=_slug,
            check=_ok_project_audit,
            error_path=("project", "auditEvents"),
            by_id=True,
        ),
        Scenario(
            name="auditEvents of the account",
            field="Query.auditEvents",
            needs=(P.AUDIT_READ,),
            document=ACCOUNT_AUDIT,
            variables=lambda w, level: {},
            check=_ok_account_audit,
            error_path=("auditEvents",),
            on_account=True,
        ),
    ),
}


async def follow(
    server: LiveServer, caller: Api, document: str, variables: dict[str, Any]
) -> dict[str, Any]:
    """A subscription followed over a websocket until it completes or fails, answered as
    HTTP would answer: its first result's data, and every error."""
    body: dict[str, Any] = {"data": None}
    async with (
        asyncio.timeout(DEADLINE_S),
        GraphQLWebSocket.connect(
            server.ws_url, payload={"authorization": caller.headers["authorization"]}
        ) as ws,
    ):
        op = await ws.subscribe(document, variables)
        while True:
            message = await ws.receive_type("next", "error", "complete")
            assert message["id"] == op
            if message["type"] == "complete":
                return body
            if message["type"] == "error":
                body["errors"] = message["payload"]
                return body
            payload = message["payload"]
            if payload.get("errors"):
                body.setdefault("errors", []).extend(payload["errors"])
            if body["data"] is None:
                body["data"] = payload.get("data")


async def run_scenario(
    store: Store,
    scenario: Scenario,
    world: World,
    level: str,
    member: Member,
    role: Role,
    server: LiveServer | None = None,
) -> None:
    """Run one scenario as ``member``, whose ``role`` is on the account or (``level`` ==
    "project") on the world's project only, and check the answer, the database and the
    audit trail against the matrix. Subscriptions need ``server``."""
    effective = None if scenario.on_account and level == "project" else role
    refused = next((p for p in scenario.needs if effective not in MATRIX[p]), None)
    state_before = await database_state(store) if refused is not None else None
    seq = await last_audit_seq(store)

    variables = scenario.variables(world, level)
    if scenario.subscription:
        assert server is not None, f"{scenario.name} is a subscription: it needs a live server"
        body = await follow(server, member.api, scenario.document, variables)
    else:
        body = await member.api.execute(scenario.document, variables)
    new_audit = await audit_since(store, seq)
    label = f"{scenario.name} by a {level}-level {role.value}"

    if refused is None:
        assert not body.get("errors"), f"{label}: {body}"
        scenario.check(body["data"], world, level)
        expected = (
            [(scenario.audit_action, AuditOutcome.SUCCEEDED, member.user_id)]
            if scenario.audit_action
            else []
        )
        assert [(a.action, a.outcome, a.actor_id) for a in new_audit] == expected, label
        return

    message = role_denial(refused, scenario.where(world), effective)
    errors = body.get("errors") or []
    assert [(e["message"], e["extensions"]["code"], tuple(e["path"])) for e in errors] == [
        (message, "FORBIDDEN", scenario.error_path)
    ], f"{label}: {body}"
    assert await database_state(store) == state_before, f"{label} changed the database"
    if scenario.audit_action is None:
        assert new_audit == [], f"{label}: a refused query is not audited"
        return
    on = None if scenario.on_account else world.project_id
    assert [
        (a.action, a.outcome, a.actor_id, a.project_id, a.entity_id, a.payload) for a in new_audit
    ] == [
        (
            scenario.audit_action,
            AuditOutcome.DENIED,
            member.user_id,
            on,
            on or world.account_id,
            {"reason": message, "permission": refused.value},
        )
    ], label


CELLS: Final = [
    pytest.param(permission, role, id=f"{permission.value}-{role.value}")
    for permission in MATRIX
    for role in Role
]


@pytest.mark.parametrize(("permission", "role"), CELLS)
async def test_matrix_cell(
    permission: Permission,
    role: Role,
    api: Api,
    store: Store,
    ctx: Context,
    app_state: AppState,
) -> None:
    """One cell: the role on the whole account, then the same role on the project only."""
    scenarios = SCENARIOS.get(permission)
    assert scenarios, f"MATRIX has {permission!r} but this file has no scenario for it"
    world = await build_world(ctx, "shop")
    async with contextlib.AsyncExitStack() as stack:
        # Subscriptions go over a real websocket, served from the same app state as ``api``.
        server = (
            await stack.enter_async_context(start_live_server(create_app(app_state)))
            if any(s.subscription for s in scenarios)
            else None
        )
        for level in LEVELS:
            member = await add_member(
                store,
                api,
                world.account_id,
                f"{level}-{role.value}",
                role,
                None if level == "account" else world.project_id,
            )
            for scenario in scenarios:
                await run_scenario(store, scenario, world, level, member, role, server)


# -- the tables themselves -----------------------------------------------------------------


def test_every_permission_has_scenarios_that_need_it() -> None:
    assert set(SCENARIOS) == set(MATRIX)
    fields = {**ROOT_FIELDS, **NESTED_FIELDS}
    for permission, scenarios in SCENARIOS.items():
        for scenario in scenarios:
            assert scenario.needs[-1] is permission, scenario.name
            assert fields[scenario.field] in scenario.needs, scenario.name


APPENDIX_C: Final = """
| Create/Update Project               |   Y   |   Y   |     N     |     N    |
| Create/Update Env                   |   Y   |   Y   |     N     |     N    |
| Deploy/Scale/Rollback               |   Y   |   Y   |     Y     |     N    |
| Secrets: Read/Write (service scope) |   Y   |   Y   |     Y     |     N    |
| Secrets: Project/Env scope          |   Y   |   Y   |     N     |     N    |
| Manage Routes/Domains               |   Y   |   Y   |     Y     |     N    |
| View Logs/Metrics/Traces            |   Y   |   Y   |     Y     |     Y    |
| Cost Reports                        |   Y   |   Y   |     Y     |     Y    |
| Manage Budgets                      |   Y   |   Y   |     N     |     N    |
| Manage Roles                        |   Y   |   Y   |     N     |     N    |
"""
APPENDIX_ROWS: Final = {
    "Create/Update Project": Permission.PROJECT_WRITE,
    "Create/Update Env": Permission.ENVIRONMENT_WRITE,
    "Deploy/Scale/Rollback": Permission.DEPLOY,
    "Secrets: Read/Write (service scope)": Permission.SECRETS_SERVICE,
    "Secrets: Project/Env scope": Permission.SECRETS_SCOPE,
    "Manage Routes/Domains": Permission.ROUTES,
    "View Logs/Metrics/Traces": Permission.OBSERVE,
    "Cost Reports": Permission.COST_READ,
    "Manage Budgets": Permission.BUDGETS,
    "Manage Roles": Permission.ROLES,
}


def test_matrix_is_appendix_c() -> None:
    """The spec's table (Owner, Admin, Developer, ReadOnly; Y for a check mark) transcribed
    by hand, plus the rows it leaves implicit: every member sees, only admins read audit."""
    expected: dict[Permission, frozenset[Role]] = {
        Permission.VIEW: frozenset(Role),
        Permission.AUDIT_READ: frozenset({Role.OWNER, Role.ADMIN}),
    }
    for line in APPENDIX_C.strip().splitlines():
        label, *marks = (cell.strip() for cell in line.strip("|").split("|"))
        expected[APPENDIX_ROWS[label]] = frozenset(
            role for role, mark in zip(STRONGEST_FIRST, marks, strict=True) if mark == "Y"
        )
    assert dict(MATRIX) == expected


def _schema_fields(type_names: tuple[str, ...]) -> set[str]:
    gql = schema._schema
    found: set[str] = set()
    for type_name in type_names:
        gql_type = gql.get_type(type_name)
        assert gql_type is not None and hasattr(gql_type, "fields"), type_name
        found |= {f"{type_name}.{name}" for name in gql_type.fields}
    return found


def test_root_fields_of_the_schema_and_the_permission_table_match() -> None:
    gql = schema._schema
    roots = tuple(
        t.name for t in (gql.query_type, gql.mutation_type, gql.subscription_type) if t is not None
    )
    assert roots == ("Query", "Mutation", "Subscription")
    assert _schema_fields(roots) == set(ROOT_FIELDS)


def test_the_canary_root_fields_have_scenarios() -> None:
    covered = {s.field for scenarios in SCENARIOS.values() for s in scenarios}
    assert {
        "Mutation.promoteDeployment",
        "Mutation.pauseDeployment",
        "Mutation.abortDeployment",
        "Subscription.canaryMetrics",
    } <= covered


def test_every_nested_field_in_the_table_exists() -> None:
    types = tuple(sorted({name.split(".")[0] for name in NESTED_FIELDS}))
    assert set(NESTED_FIELDS) <= _schema_fields(types)


# -- project-level roles reach one project only ---------------------------------------------


async def test_project_members_see_nothing_of_another_project(
    api: Api, store: Store, ctx: Context
) -> None:
    mine = await build_world(ctx, "mine")
    other = await build_world(ctx, "other")
    ids = {
        "slug": other.slug,
        "pid": other.project_id,
        "sid": other.service_id,
        "eid": other.environment_id,
        "rid": other.own_route["project"],
    }
    for role in Role:
        member = await add_member(
            store, api, mine.account_id, f"pm-{role.value}", role, mine.project_id
        )
        data = await member.api.data(
            """query($slug: String!, $pid: ID!, $sid: ID!, $eid: ID!, $rid: ID!) {
                 bySlug: project(slug: $slug) { id }
                 byId: project(id: $pid) { id }
                 project: node(id: $pid) { id }
                 service: node(id: $sid) { id }
                 environment: node(id: $eid) { id }
                 route: node(id: $rid) { id }
                 byPath: service(project: $slug, environment: "stage", name: "api") { id }
                 many: nodes(ids: [$pid, $sid]) { id }
                 projects { totalCount nodes { slug } }
               }""",
            ids,
        )
        assert data == {
            "bySlug": None,
            "byId": None,
            "project": None,
            "service": None,
            "environment": None,
            "route": None,
            "byPath": None,
            "many": [None, None],
            "projects": {"totalCount": 1, "nodes": [{"slug": "mine"}]},
        }, role
        own = await member.api.data(PROJECT, {"slug": "mine"})
        assert own == {"project": {"id": mine.project_id, "slug": "mine"}}, role

        # Changing the other project: as far as this member can tell, it does not exist.
        before = await database_state(store)
        seq = await last_audit_seq(store)
        result = await member.api.data(UPDATE_PROJECT, {"id": other.project_id})
        assert result["updateProject"] == {
            "__typename": "NotFoundError",
            "message": f"Project {other.project_id!r} not found.",
            "code": "NOT_FOUND",
            "path": ["input", "id"],
        }, role
        applied = await member.api.data(APPLY, {"yaml": service_yaml("other", "stage", "x")})
        assert applied["applyService"]["__typename"] == "NotFoundError", role
        assert await database_state(store) == before, role
        assert await audit_since(store, seq) == [], role


# -- token scopes --------------------------------------------------------------------------


async def refused(
    store: Store, caller: Api, document: str, variables: dict[str, Any] | None = None
) -> tuple[list[tuple[str, str]], list[AuditEvent]]:
    """The top-level errors (message, code) of a call that must change nothing, and the
    audit events it wrote."""
    before = await database_state(store)
    seq = await last_audit_seq(store)
    body = await caller.execute(document, variables)
    assert await database_state(store) == before
    errors = [(e["message"], e["extensions"]["code"]) for e in body.get("errors") or []]
    return errors, await audit_since(store, seq)


async def test_deploy_only_token_of_an_owner_deploys_and_nothing_more(
    api: Api, store: Store, ctx: Context
) -> None:
    world = await build_world(ctx, "shop")
    member = await add_member(
        store, api, world.account_id, "ci", Role.OWNER, scopes=("deploy:write",)
    )
    applied = await member.api.data(APPLY, {"yaml": service_yaml("shop", "stage", "worker-ci")})
    _ok_apply(applied, world, "ci")

    errors, audit = await refused(
        store,
        member.api,
        CREATE_ENV,
        {"p": world.project_id, "name": "prod", "limits": None},
    )
    message = scope_denial(Permission.ENVIRONMENT_WRITE, "environments:write")
    assert errors == [(message, "FORBIDDEN")]
    assert [(a.action, a.outcome, a.actor_id, a.payload) for a in audit] == [
        (
            "environment.create",
            AuditOutcome.DENIED,
            member.user_id,
            {"reason": message, "permission": "environment:write"},
        )
    ]

    expectations: list[tuple[str, dict[str, Any], str]] = [
        (UPDATE_PROJECT, {"id": world.project_id}, scope_denial(P.PROJECT_WRITE, "projects:write")),
        (
            PROJECT_LIST.replace("LIST", "secrets"),
            {"slug": "shop"},
            scope_denial(P.SECRETS_SCOPE, "secrets:read", "secrets:write"),
        ),
        (
            INVITE,
            {"p": world.project_id, "email": "x@example.test"},
            scope_denial(P.ROLES, "roles:write"),
        ),
        (
            EVENTS,
            {"p": world.project_id},
            scope_denial(P.OBSERVE, "logs:read", "metrics:read"),
        ),
        (ACCOUNT_AUDIT, {}, scope_denial(P.AUDIT_READ, "audit:read")),
    ]
    for document, variables, expected in expectations:
        errors, _ = await refused(store, member.api, document, variables)
        assert errors == [(expected, "FORBIDDEN")]


async def test_budget_needs_its_own_scope(api: Api, store: Store, ctx: Context) -> None:
    world = await build_world(ctx, "shop")
    member = await add_member(
        store, api, world.account_id, "ops", Role.ADMIN, scopes=("environments:write",)
    )
    region = await member.api.data(
        UPDATE_ENV, {"id": world.environment_id, "region": "r-ops", "limits": {"cpu": "2"}}
    )
    _ok_update_env(None, None)(region, world, "ops")
    errors, audit = await refused(
        store,
        member.api,
        UPDATE_ENV,
        {"id": world.environment_id, "region": None, "limits": _budget("5")},
    )
    message = scope_denial(Permission.BUDGETS, "budgets:write")
    assert errors == [(message, "FORBIDDEN")]
    assert [(a.action, a.outcome, a.payload) for a in audit] == [
        (
            "environment.update",
            AuditOutcome.DENIED,
            {"reason": message, "permission": "budgets"},
        )
    ]


async def test_scopes_never_widen_a_role(api: Api, store: Store, ctx: Context) -> None:
    """A ReadOnly member's deploy:write token still cannot deploy, and the denial names the
    role that is missing, not a scope."""
    world = await build_world(ctx, "shop")
    member = await add_member(
        store, api, world.account_id, "ro", Role.READONLY, scopes=("deploy:write",)
    )
    errors, _ = await refused(
        store, member.api, APPLY, {"yaml": service_yaml("shop", "stage", "worker")}
    )
    assert errors == [
        (role_denial(Permission.DEPLOY, "project 'shop'", Role.READONLY), "FORBIDDEN")
    ]


async def test_view_needs_no_scope(api: Api, store: Store, ctx: Context) -> None:
    world = await build_world(ctx, "shop")
    member = await add_member(
        store, api, world.account_id, "fin", Role.READONLY, scopes=("cost:read",)
    )
    data = await member.api.data(
        """query($sid: ID!) {
             project(slug: "shop") { id environments { nodes { name } } }
             node(id: $sid) { id }
             projects { totalCount }
             service(project: "shop", environment: "stage", name: "api") {
               costSamples { nodes { id } }
             }
           }""",
        {"sid": world.service_id},
    )
    assert data == {
        "project": {"id": world.project_id, "environments": {"nodes": [{"name": "stage"}]}},
        "node": {"id": world.service_id},
        "projects": {"totalCount": 1},
        "service": {"costSamples": {"nodes": [{"id": world.cost_sample_id}]}},
    }


async def test_project_token_cannot_touch_another_project_or_the_account(
    api: Api, store: Store, ctx: Context
) -> None:
    mine = await build_world(ctx, "mine")
    other = await build_world(ctx, "other")
    member = await add_member(
        store, api, mine.account_id, "pt", Role.OWNER, token_project_id=mine.project_id
    )
    # Inside its project: everything its Owner may do.
    renamed = await member.api.data(UPDATE_PROJECT, {"id": mine.project_id})
    _ok_update_project(renamed, mine, "project")

    # The other project does not exist for it.
    before = await database_state(store)
    seq = await last_audit_seq(store)
    data = await member.api.data(
        """query($pid: ID!) {
             project(slug: "other") { id } node(id: $pid) { id } projects { nodes { slug } } }""",
        {"pid": other.project_id},
    )
    assert data == {"project": None, "node": None, "projects": {"nodes": [{"slug": "mine"}]}}
    result = await member.api.data(UPDATE_PROJECT, {"id": other.project_id})
    assert result["updateProject"]["__typename"] == "NotFoundError"
    applied = await member.api.data(APPLY, {"yaml": service_yaml("other", "stage", "x")})
    assert applied["applyService"]["path"] == ["input", "specYaml", "metadata", "project"]
    assert await database_state(store) == before
    assert await audit_since(store, seq) == []

    # Nor is the account its project.
    limited = "Forbidden: this token is limited to one project and cannot act on the account."
    errors, audit = await refused(store, member.api, CREATE_PROJECT, {"name": "New"})
    assert errors == [(limited, "FORBIDDEN")]
    assert [(a.action, a.outcome, a.payload) for a in audit] == [
        ("project.create", AuditOutcome.DENIED, {"reason": limited, "permission": "project:write"})
    ]
    errors, _ = await refused(store, member.api, ACCOUNT_AUDIT)
    assert errors == [(limited, "FORBIDDEN")]


async def test_project_token_cannot_read_account_users_through_node(
    api: Api, store: Store, ctx: Context, owner: Bootstrap
) -> None:
    """A project token "acts inside its project only" (Actor.can), so Account.users and
    Account.memberships refuse it; node(id) must not hand out those same account-level
    rows. It does: resolvers/lookup.py _may_see checks `actor.account_role is not None`
    for User and Membership rows instead of `actor.can(Permission.VIEW, None)`."""
    mine = await build_world(ctx, "mine")
    member = await add_member(
        store, api, mine.account_id, "pt", Role.OWNER, token_project_id=mine.project_id
    )
    async with store.read() as session:
        owner_membership = await session.scalar(
            select(Membership.id).where(Membership.user_id == owner.owner.id)
        )
    listed = await member.api.execute("{ viewer { account { users { totalCount } } } }")
    assert [e["extensions"]["code"] for e in listed["errors"]] == ["FORBIDDEN"]
    data = await member.api.data(
        "query($u: ID!, $m: ID!) { user: node(id: $u) { id } membership: node(id: $m) { id } }",
        {"u": owner.owner.id, "m": owner_membership},
    )
    assert data == {"user": None, "membership": None}


# -- Actor.can and role_on -----------------------------------------------------------------

A: Final = "prj_A"
B: Final = "prj_B"


def actor(
    account_role: Role | None = None,
    project_roles: dict[str, Role] | None = None,
    scopes: frozenset[str] | None = None,
    token_project_id: str | None = None,
) -> Actor:
    return Actor(
        id="usr_1",
        display="someone",
        account_id="acc_1",
        account_role=account_role,
        project_roles=project_roles or {},
        scopes=scopes,
        token_project_id=token_project_id,
    )


@pytest.mark.parametrize(
    ("account_role", "project_role", "expected"),
    [
        (None, None, None),
        (Role.DEVELOPER, None, Role.DEVELOPER),
        (None, Role.ADMIN, Role.ADMIN),
        (Role.DEVELOPER, Role.ADMIN, Role.ADMIN),
        (Role.ADMIN, Role.READONLY, Role.ADMIN),
        (Role.OWNER, Role.DEVELOPER, Role.OWNER),
        (Role.READONLY, Role.OWNER, Role.OWNER),
        (Role.READONLY, Role.DEVELOPER, Role.DEVELOPER),
    ],
)
def test_role_on_is_the_strongest_of_account_and_project_roles(
    account_role: Role | None, project_role: Role | None, expected: Role | None
) -> None:
    who = actor(account_role, {A: project_role} if project_role else None)
    assert who.role_on(A) is expected
    assert who.role_on(B) is account_role
    assert who.role_on(None) is account_role


@pytest.mark.parametrize(("permission", "role"), CELLS)
def test_can_follows_the_matrix_at_every_level(permission: Permission, role: Role) -> None:
    allowed = role in MATRIX[permission]
    on_account = actor(account_role=role)
    assert on_account.can(permission) is allowed
    assert on_account.can(permission, A) is allowed
    on_project = actor(project_roles={A: role})
    assert on_project.can(permission, A) is allowed
    assert on_project.can(permission, B) is False
    assert on_project.can(permission) is False
    assert actor().can(permission, A) is False
    # A `*` token may do exactly what its owner's role allows.
    star = actor(account_role=role, scopes=frozenset({"*"}))
    assert star.can(permission) is allowed
    assert star.can(permission, A) is allowed


@pytest.mark.parametrize("scope", sorted(SCOPES))
def test_scopes_only_narrow(scope: str) -> None:
    owner_token = actor(account_role=Role.OWNER, scopes=frozenset({scope}))
    readonly_token = actor(account_role=Role.READONLY, scopes=frozenset({scope}))
    for permission in Permission:
        granted = permission is Permission.VIEW or permission in SCOPES[scope]
        assert owner_token.can(permission, A) is granted, permission
        assert readonly_token.can(permission, A) is (
            granted and Role.READONLY in MATRIX[permission]
        ), permission


def test_unknown_or_no_scopes_grant_only_view() -> None:
    for scopes in (frozenset(), frozenset({"deploy:read", "everything"})):
        who = actor(account_role=Role.OWNER, scopes=scopes)
        assert {p for p in Permission if who.can(p, A)} == {Permission.VIEW}
    assert {p for p in Permission if actor(Role.OWNER).can(p, A)} == set(Permission)


def test_project_token_acts_inside_its_project_only() -> None:
    who = actor(
        account_role=Role.OWNER,
        project_roles={B: Role.ADMIN},
        scopes=frozenset({"*"}),
        token_project_id=A,
    )
    assert who.role_on(A) is Role.OWNER
    assert who.role_on(B) is None
    assert who.can(Permission.DEPLOY, A) is True
    assert who.can(Permission.ROLES, A) is True
    assert who.can(Permission.VIEW, B) is False
    assert who.sees_project(B) is False
    assert who.can(Permission.VIEW) is False
    assert who.can(Permission.PROJECT_WRITE) is False

    project_only = actor(project_roles={A: Role.DEVELOPER}, token_project_id=A)
    assert project_only.role_on(A) is Role.DEVELOPER
    assert project_only.can(Permission.DEPLOY, A) is True
    assert project_only.can(Permission.ENVIRONMENT_WRITE, A) is False
