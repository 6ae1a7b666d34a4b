"""Finding one thing by ID or name, only within the caller's account.

An ID from another account is reported exactly like one that does not exist, so IDs
reveal nothing across tenants.
"""

from __future__ import annotations

from typing import Any, Final

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from resolvers.context import Context
from resolvers.errors import NotFound
from resolvers.identity.rbac import Permission
from store.ids import kind_of
from store.models import (
    Account,
    ApiToken,
    AuditEvent,
    Base,
    CostSample,
    Deployment,
    Environment,
    Job,
    JobRun,
    Membership,
    Project,
    Release,
    Route,
    Runtime,
    Secret,
    SecretVersion,
    Service,
    ServiceSpecVersion,
    User,
    Volume,
)

MODELS: Final[dict[str, type[Base]]] = {
    "account": Account,
    "user": User,
    "project": Project,
    "environment": Environment,
    "service": Service,
    "service_spec_version": ServiceSpecVersion,
    "release": Release,
    "deployment": Deployment,
    "runtime": Runtime,
    "secret": Secret,
    "secret_version": SecretVersion,
    "volume": Volume,
    "job": Job,
    "job_run": JobRun,
    "route": Route,
    "audit_event": AuditEvent,
    "cost_sample": CostSample,
    "membership": Membership,
    "api_token": ApiToken,
}


async def owner_of(session: AsyncSession, row: Base) -> tuple[str, str | None] | None:
    """The account and (when it belongs to one) the project that own ``row``; None when
    the chain is broken or passes a deleted service."""
    current: Any = row
    project_id: str | None = None
    while True:
        if isinstance(current, Account):
            return current.id, project_id
        if isinstance(current, Project):
            return current.account_id, current.id
        if isinstance(current, Service) and current.deleted_at is not None:
            return None
        if project_id is None and isinstance(getattr(current, "project_id", None), str):
            project_id = current.project_id
        account_id = getattr(current, "account_id", None)
        if isinstance(account_id, str):
            return account_id, project_id
        parent: Base | None
        if project_id is not None:
            parent = await session.get(Project, project_id)
        elif environment_id := getattr(current, "environment_id", None):
            parent = await session.get(Environment, environment_id)
        elif service_id := getattr(current, "service_id", None):
            parent = await session.get(Service, service_id)
        elif isinstance(current, JobRun):
            parent = await session.get(Job, current.job_id)
        elif isinstance(current, SecretVersion):
            parent = await session.get(Secret, current.secret_id)
        else:
            return None
        if parent is None:
            return None
        current = parent


def _may_see(ctx: Context, row: Base, project_id: str | None) -> bool:
    actor = ctx.actor
    if isinstance(row, AuditEvent):
        return actor.can(Permission.AUDIT_READ, row.project_id)
    if isinstance(row, ApiToken):
        return row.user_id == actor.id or actor.can(Permission.ROLES)
    if isinstance(row, CostSample):
        return project_id is not None and actor.can(Permission.COST_READ, project_id)
    if isinstance(row, Secret | SecretVersion):
        scope = Permission.SECRETS_SCOPE
        secret_row = row if isinstance(row, Secret) else None
        if secret_row is not None and secret_row.service_id is not None:
            scope = Permission.SECRETS_SERVICE
        return project_id is not None and actor.can(scope, project_id)
    if project_id is not None:
        return actor.sees_project(project_id)
    if isinstance(row, User):
        return row.id == actor.id or actor.can(Permission.VIEW)
    if isinstance(row, Membership):
        return row.user_id == actor.id or actor.can(Permission.VIEW)
    return actor.can(Permission.VIEW)  # the account itself


async def find_node(session: AsyncSession, ctx: Context, node_id: str) -> Base | None:
    """Any entity by its ID, or None when it does not exist or the caller may not see it."""
    kind = kind_of(node_id)
    if kind is None or kind not in MODELS:
        return None
    row = await session.get(MODELS[kind], node_id)
    if row is None:
        return None
    owner = await owner_of(session, row)
    if owner is None or owner[0] != ctx.actor.account_id:
        return None
    return row if _may_see(ctx, row, owner[1]) else None


async def get_project(
    session: AsyncSession, ctx: Context, project_id: str, path: tuple[str, ...] = ("projectId",)
) -> Project:
    row = await session.get(Project, project_id)
    if row is None or row.account_id != ctx.actor.account_id or not ctx.actor.sees_project(row.id):
        raise NotFound(f"Project {project_id!r} not found.", path)
    return row


async def project_by_slug(session: AsyncSession, ctx: Context, slug: str) -> Project | None:
    result: Project | None = await session.scalar(
        select(Project).where(Project.account_id == ctx.actor.account_id, Project.slug == slug)
    )
    if result is None or not ctx.actor.sees_project(result.id):
        return None
    return result


async def get_environment(
    session: AsyncSession,
    ctx: Context,
    environment_id: str,
    path: tuple[str, ...] = ("environmentId",),
) -> tuple[Environment, Project]:
    found = (
        await session.execute(
            select(Environment, Project)
            .join(Project, Project.id == Environment.project_id)
            .where(Environment.id == environment_id, Project.account_id == ctx.actor.account_id)
        )
    ).first()
    if found is None or not ctx.actor.sees_project(found[1].id):
        raise NotFound(f"Environment {environment_id!r} not found.", path)
    return found[0], found[1]


async def get_service(
    session: AsyncSession, ctx: Context, service_id: str, path: tuple[str, ...] = ("serviceId",)
) -> tuple[Service, Environment, Project]:
    found = (
        await session.execute(
            select(Service, Environment, Project)
            .join(Environment, Environment.id == Service.environment_id)
            .join(Project, Project.id == Service.project_id)
            .where(
                Service.id == service_id,
                Service.deleted_at.is_(None),
                Project.account_id == ctx.actor.account_id,
            )
        )
    ).first()
    if found is None or not ctx.actor.sees_project(found[2].id):
        raise NotFound(f"Service {service_id!r} not found.", path)
    return found[0], found[1], found[2]


async def environment_by_name(
    session: AsyncSession, project_id: str, name: str
) -> Environment | None:
    """An environment of a project the caller already reached (so already in scope)."""
    result: Environment | None = await session.scalar(
        select(Environment).where(Environment.project_id == project_id, Environment.name == name)
    )
    return result


async def service_by_name(session: AsyncSession, environment_id: str, name: str) -> Service | None:
    """A live service of an environment the caller already reached."""
    result: Service | None = await session.scalar(
        select(Service).where(
            Service.environment_id == environment_id,
            Service.name == name,
            Service.deleted_at.is_(None),
        )
    )
    return result


async def service_by_path(
    session: AsyncSession, ctx: Context, project_slug: str, environment: str, name: str
) -> Service | None:
    """A live service by the names people type: project slug, environment, service."""
    result: Service | None = await session.scalar(
        select(Service)
        .join(Environment, Environment.id == Service.environment_id)
        .join(Project, Project.id == Service.project_id)
        .where(
            Project.account_id == ctx.actor.account_id,
            Project.slug == project_slug,
            Environment.name == environment,
            Service.name == name,
            Service.deleted_at.is_(None),
        )
    )
    if result is None or not ctx.actor.sees_project(result.project_id):
        return None
    return result


async def latest_spec_version(session: AsyncSession, service_id: str) -> ServiceSpecVersion | None:
    """The service's newest (current) spec version."""
    result: ServiceSpecVersion | None = await session.scalar(
        select(ServiceSpecVersion)
        .where(ServiceSpecVersion.service_id == service_id)
        .order_by(ServiceSpecVersion.version.desc())
        .limit(1)
    )
    return result
