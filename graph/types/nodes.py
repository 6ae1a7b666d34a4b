"""GraphQL views of the data model: one thin type per entity, built ``from_row``.

Scalar fields are copied from the row when the view is made, so they cost nothing to
resolve; fields that reach other rows go through the request's DataLoaders. The row stays
private. The types refer to each other in cycles (a project lists environments, an
environment names its project), which is why they share this module.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Sequence
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any, cast

import strawberry
from croniter import croniter
from strawberry.dataloader import DataLoader
from strawberry.scalars import JSON

from graph.context import Info
from graph.types import enums as _registered_enums  # noqa: F401  (makes them GraphQL enums)
from graph.types.base import (
    CURRENT_RUNTIME,
    CURRENT_SPEC,
    LATEST_RELEASE,
    MISSING,
    Connection,
    Node,
    Prefetch,
    Prefetched,
    PrefetchNewest,
    PrefetchPage,
    check,
    connection,
    connection_of,
    newest,
    related,
)
from graph.types.capabilities import Capabilities
from graph.types.guardrails import AlertDelivery, CanaryStatus, SloStatus
from graph.types.traffic import TrafficSummary
from resolvers import canary, guardrails, lists, lookup, metrics
from resolvers.identity.rbac import Permission
from resolvers.pagination import ListSpec
from resolvers.projects import count_visible_projects, visible_projects
from store import models
from store.ids import kind_of
from store.quantity import format_bytes

GIB = 2**30
CREATED_BY_USER = (
    "Who created it, as a person (createdBy holds their ID); null when the platform did, "
    "as a controller."
)


def creator(info: Info, created_by: str) -> Awaitable[User | None] | None:
    """The user behind a ``created_by``, batched; None for a controller or a system actor."""
    user_id = created_by if kind_of(created_by) == "user" else None
    return related(info, models.User, user_id, User.from_row)


def _own_id(view: Any) -> str:
    return str(view.id)


def _row_project(view: Any) -> str:
    return str(view._row.project_id)


def children(
    spec: ListSpec[Any],
    node: str,
    *,
    description: str | None = None,
    permission: Permission | None = None,
    project: Callable[[Any], str] | None = None,
) -> Any:
    """A paginated list field under a node: ``first``/``after``, batched across parents
    through the page loader; ``permission`` (on the project ``project`` names, or on the
    account) is checked first when the list needs more than seeing its parent."""

    def resolve(
        self: Any, info: Info, first: int | None = None, after: str | None = None
    ) -> Awaitable[Any]:
        if permission is not None:
            check(info, permission, project(self) if project is not None else None)
        wrap = globals()[node].from_row  # the node types are defined below
        return connection(info, spec, str(self.id), first, after, wrap)

    return strawberry.field(
        resolver=resolve, graphql_type=f"Connection[{node}]", description=description
    )


# -- tenancy -------------------------------------------------------------------------------


@strawberry.type
class Account(Node):
    _row: strawberry.Private[models.Account]
    name: str
    sso_provider: str | None
    created_at: datetime

    @classmethod
    def from_row(cls, row: models.Account) -> Account:
        return cls(
            _row=row,
            id=strawberry.ID(row.id),
            name=row.name,
            sso_provider=row.sso_provider,
            created_at=row.created_at,
        )

    @strawberry.field(description="The projects you may see, by slug.")
    async def projects(
        self, info: Info, first: int | None = None, after: str | None = None
    ) -> Connection[Project]:
        return await visible_projects_connection(info, first, after)

    users = children(lists.USERS_OF_ACCOUNT, "User", permission=Permission.VIEW)

    memberships = children(
        lists.MEMBERSHIPS_OF_ACCOUNT,
        "Membership",
        description="Roles on the account and on each of its projects.",
        permission=Permission.VIEW,
    )

    audit_events = children(
        lists.AUDIT_OF_ACCOUNT,
        "AuditEvent",
        description="Every recorded action in the account, newest first.",
        permission=Permission.AUDIT_READ,
    )


@strawberry.type
class User(Node):
    _row: strawberry.Private[models.User]
    subject: str
    email: str | None
    display_name: str
    created_at: datetime

    @classmethod
    def from_row(cls, row: models.User) -> User:
        return cls(
            _row=row,
            id=strawberry.ID(row.id),
            subject=row.subject,
            email=row.email,
            display_name=row.display_name,
            created_at=row.created_at,
        )

    @strawberry.field(
        graphql_type="Connection[ApiToken]",
        description="Personal access tokens (metadata only), newest first.",
    )
    def api_tokens(
        self, info: Info, first: int | None = None, after: str | None = None
    ) -> Awaitable[Connection[ApiToken]]:
        if self.id != info.context.ctx.actor.id:
            check(info, Permission.ROLES, None)
        return connection(info, lists.TOKENS_OF_USER, self.id, first, after, ApiToken.from_row)


@strawberry.type
class Membership(Node):
    _row: strawberry.Private[models.Membership]
    role: models.Role
    created_at: datetime
    updated_at: datetime

    @classmethod
    def from_row(cls, row: models.Membership) -> Membership:
        return cls(
            _row=row,
            id=strawberry.ID(row.id),
            role=row.role,
            created_at=row.created_at,
            updated_at=row.updated_at,
        )

    @strawberry.field(graphql_type="User")
    def user(self, info: Info) -> Awaitable[User | None] | None:
        return related(info, models.User, self._row.user_id, User.from_row)

    @strawberry.field(
        graphql_type="Project | None",
        description="The project the role applies to; null for the whole account.",
    )
    def project(self, info: Info) -> Awaitable[Project | None] | None:
        return related(info, models.Project, self._row.project_id, Project.from_row)


@strawberry.type(description="A personal access token. The secret itself is never shown again.")
class ApiToken(Node):
    _row: strawberry.Private[models.ApiToken]
    name: str
    display_prefix: str
    scopes: list[str]
    description: str | None
    expires_at: datetime | None
    last_used_at: datetime | None
    revoked_at: datetime | None
    created_at: datetime

    @classmethod
    def from_row(cls, row: models.ApiToken) -> ApiToken:
        return cls(
            _row=row,
            id=strawberry.ID(row.id),
            name=row.name,
            display_prefix=row.display_prefix,
            scopes=list(row.scopes),
            description=row.description,
            expires_at=row.expires_at,
            last_used_at=row.last_used_at,
            revoked_at=row.revoked_at,
            created_at=row.created_at,
        )

    @strawberry.field(graphql_type="Project | None")
    def project(self, info: Info) -> Awaitable[Project | None] | None:
        return related(info, models.Project, self._row.project_id, Project.from_row)


@strawberry.type
class Project(Node):
    _row: strawberry.Private[models.Project]
    name: str
    slug: str
    created_at: datetime
    updated_at: datetime

    @classmethod
    def from_row(cls, row: models.Project) -> Project:
        return cls(
            _row=row,
            id=strawberry.ID(row.id),
            name=row.name,
            slug=row.slug,
            created_at=row.created_at,
            updated_at=row.updated_at,
        )

    @strawberry.field(graphql_type="Account")
    def account(self, info: Info) -> Awaitable[Account | None] | None:
        return related(info, models.Account, self._row.account_id, Account.from_row)

    @strawberry.field(
        description="Your effective role here: the strongest of your account-wide and "
        "project roles; null when this token is limited to another project."
    )
    def viewer_role(self, info: Info) -> models.Role | None:
        return info.context.ctx.actor.role_on(self._row.id)

    @strawberry.field(description="What you may do in this project, with this token.")
    def viewer_can(self, info: Info) -> Capabilities:
        return Capabilities.of(info.context.ctx.actor, self._row.id)

    environments = children(
        lists.ENVIRONMENTS_OF_PROJECT,
        "Environment",
        description="dev, stage, prod and previews, in creation order.",
    )

    @strawberry.field(description="One environment by name (dev, stage, prod, preview-…).")
    async def environment(self, info: Info, name: str) -> Environment | None:
        async with info.context.ctx.store.read() as session:
            row = await lookup.environment_by_name(session, self.id, name)
        return Environment.from_row(row) if row else None

    memberships = children(
        lists.MEMBERSHIPS_OF_PROJECT, "Membership", description="Roles granted on this project."
    )

    secrets = children(
        lists.SECRETS_OF_SCOPE,
        "Secret",
        description="Project-scoped secrets (metadata and versions only).",
        permission=Permission.SECRETS_SCOPE,
        project=_own_id,
    )

    audit_events = children(
        lists.AUDIT_OF_PROJECT,
        "AuditEvent",
        description="Actions recorded on this project, newest first.",
        permission=Permission.AUDIT_READ,
        project=_own_id,
    )


@strawberry.type(description="Caps for one environment; null means unlimited.")
class EnvironmentLimits:
    cpu_millicores: int | None
    memory_mib: int | None
    egress_gib: int | None
    budget_monthly_usd: Decimal | None


@strawberry.type
class Environment(Node):
    _row: strawberry.Private[models.Environment]
    name: str
    region: str
    is_preview: bool
    limits: EnvironmentLimits
    policy_refs: list[str]
    created_at: datetime
    updated_at: datetime

    @classmethod
    def from_row(cls, row: models.Environment) -> Environment:
        budget = row.budget_limit_cents
        return cls(
            _row=row,
            id=strawberry.ID(row.id),
            name=row.name,
            region=row.region,
            is_preview=row.name.startswith("preview-"),
            limits=EnvironmentLimits(
                cpu_millicores=row.cpu_limit_millicores,
                memory_mib=row.memory_limit_mib,
                egress_gib=row.egress_limit_gib,
                budget_monthly_usd=None if budget is None else Decimal(budget) / 100,
            ),
            policy_refs=list(row.policy_refs),
            created_at=row.created_at,
            updated_at=row.updated_at,
        )

    @strawberry.field(graphql_type="Project")
    def project(self, info: Info) -> Awaitable[Project | None] | None:
        return related(info, models.Project, self._row.project_id, Project.from_row)

    @strawberry.field(graphql_type="Connection[Service]", description="Live services, by name.")
    def services(
        self, info: Info, first: int | None = None, after: str | None = None
    ) -> Awaitable[Connection[Service]]:
        return connection(
            info,
            lists.SERVICES_OF_ENVIRONMENT,
            self.id,
            first,
            after,
            Service.from_row,
            prefetch=SERVICE_PREFETCH,
        )

    @strawberry.field(description="One live service by name.")
    async def service(self, info: Info, name: str) -> Service | None:
        async with info.context.ctx.store.read() as session:
            row = await lookup.service_by_name(session, self.id, name)
        return Service.from_row(row) if row else None

    routes = children(
        lists.ROUTES_OF_ENVIRONMENT, "Route", description="Every route bound in this environment."
    )

    volumes = children(lists.VOLUMES_OF_ENVIRONMENT, "Volume")

    jobs = children(lists.JOBS_OF_ENVIRONMENT, "Job")

    secrets = children(
        lists.SECRETS_OF_SCOPE,
        "Secret",
        description="Environment-scoped secrets (metadata only).",
        permission=Permission.SECRETS_SCOPE,
        project=_row_project,
    )

    cost_samples = children(
        lists.COSTS_OF_ENVIRONMENT,
        "CostSample",
        description="Resource usage samples, newest first.",
        permission=Permission.COST_READ,
        project=_row_project,
    )


# -- workloads -----------------------------------------------------------------------------


@strawberry.type
class Service(Node, Prefetched):
    _row: strawberry.Private[models.Service]
    name: str
    type: models.ServiceType
    generation: int = strawberry.field(
        description="Bumped by every new spec version; controllers report against it."
    )
    created_at: datetime
    updated_at: datetime
    deleted_at: datetime | None

    @classmethod
    def from_row(cls, row: models.Service) -> Service:
        return cls(
            _row=row,
            id=strawberry.ID(row.id),
            name=row.name,
            type=row.type,
            generation=row.generation,
            created_at=row.created_at,
            updated_at=row.updated_at,
            deleted_at=row.deleted_at,
        )

    @strawberry.field(graphql_type="Environment")
    def environment(self, info: Info) -> Awaitable[Environment | None] | None:
        return related(info, models.Environment, self._row.environment_id, Environment.from_row)

    @strawberry.field(graphql_type="Project")
    def project(self, info: Info) -> Awaitable[Project | None] | None:
        return related(info, models.Project, self._row.project_id, Project.from_row)

    @strawberry.field(
        graphql_type="ServiceSpecVersion | None",
        description="The current (newest) Service Spec version.",
    )
    def spec(self, info: Info) -> Awaitable[ServiceSpecVersion | None] | ServiceSpecVersion | None:
        found = self.prefetched("spec")
        if found is MISSING:
            return newest(info, CURRENT_SPEC, self.id, ServiceSpecVersion.from_row)
        return cast(ServiceSpecVersion | None, found)

    spec_versions = children(
        lists.SPEC_VERSIONS_OF_SERVICE,
        "ServiceSpecVersion",
        description="Every applied spec, newest first.",
    )

    @strawberry.field(graphql_type="Release | None")
    def latest_release(self, info: Info) -> Awaitable[Release | None] | Release | None:
        found = self.prefetched("latestRelease")
        if found is MISSING:
            return newest(info, LATEST_RELEASE, self.id, Release.from_row)
        return cast(Release | None, found)

    releases = children(lists.RELEASES_OF_SERVICE, "Release", description="Releases, newest first.")

    deployments = children(
        lists.DEPLOYMENTS_OF_SERVICE, "Deployment", description="Deployments, newest first."
    )

    @strawberry.field(
        graphql_type="Runtime | None",
        description="What runs now: the release taking most of the traffic (None when nothing runs).",
    )
    def runtime(self, info: Info) -> Awaitable[Runtime | None] | Runtime | None:
        found = self.prefetched("runtime")
        if found is MISSING:
            return newest(info, CURRENT_RUNTIME, self.id, Runtime.from_row)
        return cast(Runtime | None, found)

    runtimes = children(
        lists.RUNTIMES_OF_SERVICE,
        "Runtime",
        description="Runtimes of every release that ran, newest first.",
    )

    @strawberry.field(
        graphql_type=TrafficSummary,
        description="Requests the router recorded over the last `window` seconds (10 to "
        "604800), all releases together: rate, 5xx rate, percentiles. Batched: a page of "
        "services costs one statement.",
    )
    def traffic(self, info: Info, window: int = 300) -> Awaitable[TrafficSummary]:
        check(info, Permission.OBSERVE, self._row.project_id)
        ctx = info.context.ctx

        def factory() -> DataLoader[str, TrafficSummary]:
            async def load(ids: Sequence[str]) -> list[TrafficSummary]:
                found = await metrics.traffic_of_services(ctx, ids, window)
                return [TrafficSummary.from_summary(found[i]) for i in ids]

            return DataLoader(load)

        return info.context.loaders.get(("traffic", window), factory).load(self.id)

    @strawberry.field(
        graphql_type=SloStatus | None,
        description="Its error budget against spec.slo, as last computed, and whether its "
        "deploys are frozen; null without an SLO. Batched like traffic.",
    )
    def slo(self, info: Info) -> Awaitable[SloStatus | None]:
        check(info, Permission.VIEW, self._row.project_id)
        ctx = info.context.ctx

        def factory() -> DataLoader[str, SloStatus | None]:
            async def load(ids: Sequence[str]) -> list[SloStatus | None]:
                found = await guardrails.slo_of_services(ctx, ids)
                return [SloStatus.from_row(found[i]) if i in found else None for i in ids]

            return DataLoader(load)

        return info.context.loaders.get(("slo",), factory).load(self.id)

    @strawberry.field(
        description="Alerts sent (or still owed) to spec.alerts webhooks, newest first."
    )
    async def alert_deliveries(self, info: Info, first: int = 20) -> list[AlertDelivery]:
        check(info, Permission.VIEW, self._row.project_id)
        rows = await guardrails.alert_deliveries(info.context.ctx, self.id, first)
        return [AlertDelivery.from_row(r) for r in rows]

    @strawberry.field(graphql_type="Connection[Route]")
    def routes(
        self, info: Info, first: int | None = None, after: str | None = None
    ) -> Awaitable[Connection[Route]] | Connection[Route]:
        found = self.prefetched("routes", (first, after))
        if found is MISSING:
            return connection(info, lists.ROUTES_OF_SERVICE, self.id, first, after, Route.from_row)
        return cast(Connection[Route], found)

    volumes = children(lists.VOLUMES_OF_SERVICE, "Volume")

    jobs = children(lists.JOBS_OF_SERVICE, "Job")

    secrets = children(
        lists.SECRETS_OF_SCOPE,
        "Secret",
        description="Service-scoped secrets (metadata only).",
        permission=Permission.SECRETS_SERVICE,
        project=_row_project,
    )

    cost_samples = children(
        lists.COSTS_OF_SERVICE,
        "CostSample",
        description="Resource usage samples, newest first.",
        permission=Permission.COST_READ,
        project=_row_project,
    )


@strawberry.type(description="One immutable applied Service Spec.")
class ServiceSpecVersion(Node):
    _row: strawberry.Private[models.ServiceSpecVersion]
    version: int
    digest: str
    git_sha: str | None
    created_by: str
    created_at: datetime
    spec_yaml: str = strawberry.field(description="The YAML as applied, templates filled in.")
    spec: JSON = strawberry.field(description="The normalised document, defaults made explicit.")

    @classmethod
    def from_row(cls, row: models.ServiceSpecVersion) -> ServiceSpecVersion:
        return cls(
            _row=row,
            id=strawberry.ID(row.id),
            version=row.version,
            digest=row.digest,
            git_sha=row.git_sha,
            created_by=row.created_by,
            created_at=row.created_at,
            spec_yaml=row.spec_yaml,
            spec=JSON(row.spec),
        )

    @strawberry.field(graphql_type="Service")
    def service(self, info: Info) -> Awaitable[Service | None] | None:
        return related(info, models.Service, self._row.service_id, Service.from_row)


@strawberry.type(description="An immutable, signed build of a service.")
class Release(Node):
    _row: strawberry.Private[models.Release]
    image_ref: str | None
    build_id: str | None
    git_sha: str | None
    digest: str | None
    sbom_uri: str | None
    signature: str | None
    status: models.ReleaseStatus
    status_reason: str | None
    provenance: JSON = strawberry.field(
        description="How it was built: builder and version, git SHA, command, times, package "
        "count, SBOM hash, signing key, build log."
    )
    created_by: str
    created_at: datetime
    updated_at: datetime

    @classmethod
    def from_row(cls, row: models.Release) -> Release:
        return cls(
            _row=row,
            id=strawberry.ID(row.id),
            image_ref=row.image_ref,
            build_id=row.build_id,
            git_sha=row.git_sha,
            digest=row.digest,
            sbom_uri=row.sbom_uri,
            signature=row.signature,
            status=row.status,
            status_reason=row.status_reason,
            provenance=JSON(row.provenance or {}),
            created_by=row.created_by,
            created_at=row.created_at,
            updated_at=row.updated_at,
        )

    @strawberry.field(graphql_type="Service")
    def service(self, info: Info) -> Awaitable[Service | None] | None:
        return related(info, models.Service, self._row.service_id, Service.from_row)

    @strawberry.field(
        graphql_type="ServiceSpecVersion | None",
        description="The spec version the release was built from.",
    )
    def spec_version(self, info: Info) -> Awaitable[ServiceSpecVersion | None] | None:
        return related(
            info, models.ServiceSpecVersion, self._row.spec_version_id, ServiceSpecVersion.from_row
        )

    @strawberry.field(graphql_type="User | None", description=CREATED_BY_USER)
    def created_by_user(self, info: Info) -> Awaitable[User | None] | None:
        return creator(info, self._row.created_by)


@strawberry.type(description="A status condition, as Kubernetes writes them.")
class Condition:
    type: str
    status: str
    reason: str | None
    message: str | None
    observed_generation: int | None
    last_transition_time: datetime | None

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Condition:
        when = data.get("lastTransitionTime")
        return cls(
            type=str(data.get("type", "")),
            status=str(data.get("status", "Unknown")),
            reason=data.get("reason"),
            message=data.get("message"),
            observed_generation=data.get("observedGeneration"),
            last_transition_time=datetime.fromisoformat(when) if when else None,
        )


@strawberry.type(description="Moving a service from one release to another.")
class Deployment(Node):
    _row: strawberry.Private[models.Deployment]
    strategy: models.DeploymentStrategy
    kind: models.DeploymentKind
    phase: models.DeploymentPhase
    reason: str | None = strawberry.field(
        description="Why it ended as it did (failed, rolled back, superseded)."
    )
    conditions: list[Condition]
    generation: int
    created_by: str
    created_at: datetime
    updated_at: datetime
    started_at: datetime | None = strawberry.field(description="When replicas began starting.")
    deadline_at: datetime | None = strawberry.field(
        description="Not healthy by then, it fails (progressDeadlineSeconds)."
    )
    finished_at: datetime | None

    @classmethod
    def from_row(cls, row: models.Deployment) -> Deployment:
        return cls(
            _row=row,
            id=strawberry.ID(row.id),
            strategy=row.strategy,
            kind=row.kind,
            phase=row.phase,
            reason=row.reason,
            conditions=[Condition.from_dict(c) for c in row.conditions],
            generation=row.generation,
            created_by=row.created_by,
            created_at=row.created_at,
            updated_at=row.updated_at,
            started_at=row.started_at,
            deadline_at=row.deadline_at,
            finished_at=row.finished_at,
            fix=row.fix,
        )

    @strawberry.field(graphql_type="Service")
    def service(self, info: Info) -> Awaitable[Service | None] | None:
        return related(info, models.Service, self._row.service_id, Service.from_row)

    @strawberry.field(graphql_type="User | None", description=CREATED_BY_USER)
    def created_by_user(self, info: Info) -> Awaitable[User | None] | None:
        return creator(info, self._row.created_by)

    fix: bool = strawberry.field(
        description="Deployed as a fix: a canary fix may deploy while the error budget is frozen."
    )

    @strawberry.field(
        description="A canary deployment's steps, weight, latest check and what decided it; "
        "null for other strategies."
    )
    async def canary(self, info: Info) -> CanaryStatus | None:
        if self._row.strategy is not models.DeploymentStrategy.CANARY:
            return None
        settings = await canary.canary_settings(info.context.ctx, self._row)
        return CanaryStatus.from_json(self._row.canary or {}, settings)

    @strawberry.field(graphql_type="Release | None")
    def from_release(self, info: Info) -> Awaitable[Release | None] | None:
        return related(info, models.Release, self._row.from_release_id, Release.from_row)

    @strawberry.field(graphql_type="Release")
    def to_release(self, info: Info) -> Awaitable[Release | None] | None:
        return related(info, models.Release, self._row.to_release_id, Release.from_row)


@strawberry.type(description="One process (local) or pod (Kubernetes) of a release.")
class Replica:
    name: str
    index: int
    phase: str = strawberry.field(
        description="starting, running, not-ready, crash-loop-back-off or stopped."
    )
    ready: bool = strawberry.field(description="Passing its readiness probe: takes traffic.")
    restarts: int
    pid: int | None
    address: str | None = strawberry.field(description="host:port the router sends it traffic.")
    message: str = strawberry.field(description="What it is doing or why it failed.")
    last_exit_code: int | None

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Replica:
        return cls(
            name=str(data.get("name", "")),
            index=int(data.get("index", 0)),
            phase=str(data.get("phase", "")),
            ready=bool(data.get("ready", False)),
            restarts=int(data.get("restarts", 0)),
            pid=data.get("pid"),
            address=data.get("address"),
            message=str(data.get("message", "")),
            last_exit_code=data.get("lastExit"),
        )


@strawberry.type(description="What runs of one release: replicas wanted and ready.")
class Runtime(Node):
    _row: strawberry.Private[models.Runtime]
    replicas_desired: int
    replicas_ready: int
    status: models.RuntimeStatus
    metrics_ref: str | None
    weight: int = strawberry.field(description="Percent of the service's traffic it takes.")
    warm_until: datetime | None = strawberry.field(
        description="Out of traffic but kept running until then, so a rollback is instant."
    )
    scaled_at: datetime | None = strawberry.field(
        description="When the autoscaler last changed replicasDesired (spec.autoscaling.hpa)."
    )
    scale_reason: str | None = strawberry.field(
        description="Why it did: the measured utilisation against the target."
    )
    replicas: list[Replica]
    created_at: datetime
    updated_at: datetime

    @classmethod
    def from_row(cls, row: models.Runtime) -> Runtime:
        return cls(
            _row=row,
            id=strawberry.ID(row.id),
            replicas_desired=row.replicas_desired,
            replicas_ready=row.replicas_ready,
            status=row.status,
            metrics_ref=row.metrics_ref,
            weight=row.weight,
            warm_until=row.warm_until,
            scaled_at=row.scaled_at,
            scale_reason=row.scale_reason,
            replicas=[Replica.from_dict(r) for r in row.replicas or []],
            created_at=row.created_at,
            updated_at=row.updated_at,
        )

    @strawberry.field(graphql_type="Service")
    def service(self, info: Info) -> Awaitable[Service | None] | None:
        return related(info, models.Service, self._row.service_id, Service.from_row)

    @strawberry.field(graphql_type="Release")
    def release(self, info: Info) -> Awaitable[Release | None] | None:
        return related(info, models.Release, self._row.release_id, Release.from_row)


# -- resources -----------------------------------------------------------------------------


@strawberry.type(description="A host and path prefix bound to a service.")
class Route(Node):
    _row: strawberry.Private[models.Route]
    host: str
    path: str
    tls_cert_ref: str | None
    source: models.RouteSource
    created_at: datetime

    @classmethod
    def from_row(cls, row: models.Route) -> Route:
        return cls(
            _row=row,
            id=strawberry.ID(row.id),
            host=row.host,
            path=row.path,
            tls_cert_ref=row.tls_cert_ref,
            source=row.source,
            created_at=row.created_at,
        )

    @strawberry.field(graphql_type="Service")
    def service(self, info: Info) -> Awaitable[Service | None] | None:
        return related(info, models.Service, self._row.service_id, Service.from_row)

    @strawberry.field(graphql_type="Environment")
    def environment(self, info: Info) -> Awaitable[Environment | None] | None:
        return related(info, models.Environment, self._row.environment_id, Environment.from_row)


@strawberry.type
class Volume(Node):
    _row: strawberry.Private[models.Volume]
    name: str
    mount_path: str
    size: str = strawberry.field(description="Capacity in the spec's notation, e.g. 10Gi.")
    size_gib: float
    storage_class: str
    backup_policy: JSON
    created_at: datetime
    updated_at: datetime

    @classmethod
    def from_row(cls, row: models.Volume) -> Volume:
        return cls(
            _row=row,
            id=strawberry.ID(row.id),
            name=row.name,
            mount_path=row.mount_path,
            size=format_bytes(row.size_bytes),
            size_gib=row.size_bytes / GIB,
            storage_class=row.storage_class,
            backup_policy=JSON(row.backup_policy),
            created_at=row.created_at,
            updated_at=row.updated_at,
        )

    @strawberry.field(graphql_type="Environment")
    def environment(self, info: Info) -> Awaitable[Environment | None] | None:
        return related(info, models.Environment, self._row.environment_id, Environment.from_row)

    @strawberry.field(
        graphql_type="Service | None",
        description="The service it is mounted in; null once detached.",
    )
    def service(self, info: Info) -> Awaitable[Service | None] | None:
        return related(info, models.Service, self._row.service_id, Service.from_row)


@strawberry.type(description="A cron or on-demand job of a service.")
class Job(Node):
    _row: strawberry.Private[models.Job]
    name: str
    schedule: str | None
    on_demand: bool
    image_ref: str | None
    args: list[str]
    retries: int
    last_run_at: datetime | None
    created_at: datetime
    updated_at: datetime

    @classmethod
    def from_row(cls, row: models.Job) -> Job:
        return cls(
            _row=row,
            id=strawberry.ID(row.id),
            name=row.name,
            schedule=row.schedule,
            on_demand=row.schedule is None,
            image_ref=row.image_ref,
            args=list(row.args),
            retries=row.retries,
            last_run_at=row.last_run_at,
            created_at=row.created_at,
            updated_at=row.updated_at,
        )

    @strawberry.field(description="When the schedule fires next (UTC); null if on demand.")
    def next_run_at(self) -> datetime | None:
        if self._row.next_run_at is not None:
            return self._row.next_run_at
        if self.schedule is None:
            return None
        return croniter(self.schedule, datetime.now(UTC)).get_next(datetime)

    @strawberry.field(graphql_type="Service")
    def service(self, info: Info) -> Awaitable[Service | None] | None:
        return related(info, models.Service, self._row.service_id, Service.from_row)

    @strawberry.field(graphql_type="Environment")
    def environment(self, info: Info) -> Awaitable[Environment | None] | None:
        return related(info, models.Environment, self._row.environment_id, Environment.from_row)

    runs = children(lists.RUNS_OF_JOB, "JobRun", description="Runs, newest first.")


@strawberry.type
class JobRun(Node):
    _row: strawberry.Private[models.JobRun]
    status: models.JobRunStatus
    attempt: int
    exit_code: int | None
    triggered_by: str
    started_at: datetime | None
    finished_at: datetime | None
    created_at: datetime

    @classmethod
    def from_row(cls, row: models.JobRun) -> JobRun:
        return cls(
            _row=row,
            id=strawberry.ID(row.id),
            status=row.status,
            attempt=row.attempt,
            exit_code=row.exit_code,
            triggered_by=row.triggered_by,
            started_at=row.started_at,
            finished_at=row.finished_at,
            created_at=row.created_at,
        )

    @strawberry.field(graphql_type="Job")
    def job(self, info: Info) -> Awaitable[Job | None] | None:
        return related(info, models.Job, self._row.job_id, Job.from_row)

    @strawberry.field(graphql_type="Release | None")
    def release(self, info: Info) -> Awaitable[Release | None] | None:
        return related(info, models.Release, self._row.release_id, Release.from_row)


@strawberry.type(description="A secret's metadata. Values never leave the server.")
class Secret(Node):
    _row: strawberry.Private[models.Secret]
    name: str
    scope: models.SecretScope
    current_version: int
    rotated_at: datetime | None
    created_at: datetime
    updated_at: datetime

    @classmethod
    def from_row(cls, row: models.Secret) -> Secret:
        return cls(
            _row=row,
            id=strawberry.ID(row.id),
            name=row.name,
            scope=row.scope,
            current_version=row.current_version,
            rotated_at=row.rotated_at,
            created_at=row.created_at,
            updated_at=row.updated_at,
        )

    @strawberry.field(graphql_type="Project")
    def project(self, info: Info) -> Awaitable[Project | None] | None:
        return related(info, models.Project, self._row.project_id, Project.from_row)

    @strawberry.field(graphql_type="Environment | None")
    def environment(self, info: Info) -> Awaitable[Environment | None] | None:
        return related(info, models.Environment, self._row.environment_id, Environment.from_row)

    @strawberry.field(graphql_type="Service | None")
    def service(self, info: Info) -> Awaitable[Service | None] | None:
        return related(info, models.Service, self._row.service_id, Service.from_row)

    versions = children(
        lists.VERSIONS_OF_SECRET,
        "SecretVersion",
        description="Versions, newest first (metadata only).",
    )


@strawberry.type
class SecretVersion(Node):
    _row: strawberry.Private[models.SecretVersion]
    version: int
    created_by: str
    created_at: datetime

    @classmethod
    def from_row(cls, row: models.SecretVersion) -> SecretVersion:
        return cls(
            _row=row,
            id=strawberry.ID(row.id),
            version=row.version,
            created_by=row.created_by,
            created_at=row.created_at,
        )


# -- records -------------------------------------------------------------------------------


@strawberry.type(description="One recorded action: who, what, on which entity, before/after.")
class AuditEvent(Node):
    _row: strawberry.Private[models.AuditEvent]
    actor_id: str
    actor_display: str
    action: str
    outcome: models.AuditOutcome
    entity_type: str | None
    entity_id: str | None
    project_id: str | None
    payload: JSON = strawberry.field(description="{before, after, …}: the change itself.")
    request_id: str | None
    source_address: str | None
    created_at: datetime

    @classmethod
    def from_row(cls, row: models.AuditEvent) -> AuditEvent:
        return cls(
            _row=row,
            id=strawberry.ID(row.id),
            actor_id=row.actor_id,
            actor_display=row.actor_display,
            action=row.action,
            outcome=row.outcome,
            entity_type=row.entity_type,
            entity_id=row.entity_id,
            project_id=row.project_id,
            payload=JSON(row.payload),
            request_id=row.request_id,
            source_address=row.source_address,
            created_at=row.created_at,
        )


@strawberry.type(description="Resource usage of a service over one sampling interval.")
class CostSample(Node):
    _row: strawberry.Private[models.CostSample]
    cpu_seconds: float
    mem_gib_hours: float
    storage_gib_hours: float
    egress_gib: float
    ts: datetime

    @classmethod
    def from_row(cls, row: models.CostSample) -> CostSample:
        return cls(
            _row=row,
            id=strawberry.ID(row.id),
            cpu_seconds=row.cpu_seconds,
            mem_gib_hours=row.mem_gib_hours,
            storage_gib_hours=row.storage_gib_hours,
            egress_gib=row.egress_gib,
            ts=row.ts,
        )

    @strawberry.field(graphql_type="Environment")
    def environment(self, info: Info) -> Awaitable[Environment | None] | None:
        return related(info, models.Environment, self._row.environment_id, Environment.from_row)

    @strawberry.field(graphql_type="Service | None")
    def service(self, info: Info) -> Awaitable[Service | None] | None:
        return related(info, models.Service, self._row.service_id, Service.from_row)


# What a page of services loads for all of its services at once, when the query asks.
SERVICE_PREFETCH: tuple[Prefetch, ...] = (
    PrefetchNewest("latestRelease", LATEST_RELEASE, Release.from_row),
    PrefetchNewest("runtime", CURRENT_RUNTIME, Runtime.from_row),
    PrefetchNewest("spec", CURRENT_SPEC, ServiceSpecVersion.from_row),
    PrefetchPage("routes", lists.ROUTES_OF_SERVICE, Route.from_row),
)


async def visible_projects_connection(
    info: Info, first: int | None, after: str | None
) -> Connection[Project]:
    ctx = info.context.ctx
    page = await visible_projects(ctx, first, after)
    conn = connection_of(page, lists.PROJECTS_OF_ACCOUNT, ctx.actor.account_id, Project.from_row)
    conn._total = lambda: count_visible_projects(ctx)
    return conn


NODE_TYPES: dict[type[models.Base], Any] = {
    models.Account: Account,
    models.User: User,
    models.Membership: Membership,
    models.ApiToken: ApiToken,
    models.Project: Project,
    models.Environment: Environment,
    models.Service: Service,
    models.ServiceSpecVersion: ServiceSpecVersion,
    models.Release: Release,
    models.Deployment: Deployment,
    models.Runtime: Runtime,
    models.Route: Route,
    models.Volume: Volume,
    models.Job: Job,
    models.JobRun: JobRun,
    models.Secret: Secret,
    models.SecretVersion: SecretVersion,
    models.AuditEvent: AuditEvent,
    models.CostSample: CostSample,
}


def node_from_row(row: models.Base) -> Node:
    """The GraphQL view of any stored entity."""
    view: Node = NODE_TYPES[type(row)].from_row(row)
    return view
