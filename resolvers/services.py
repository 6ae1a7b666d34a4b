"""Applying and deleting services: the Service Spec becomes desired state.

``apply_service`` is create-or-update, like ``kubectl apply``: a spec identical to the
current version changes nothing and says so; a different one becomes the next immutable
ServiceSpecVersion, and the routes, volumes and jobs it declares are reconciled in the same
transaction. Controllers (later) converge what runs to it.
"""

from __future__ import annotations

import copy
from dataclasses import dataclass
from typing import Any

import yaml
from sqlalchemy import delete, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from resolvers.context import Context
from resolvers.errors import Conflict, NotFound, Problem, ValidationFailed
from resolvers.identity.guard import require
from resolvers.identity.rbac import Permission
from resolvers.lookup import (
    environment_by_name,
    get_service,
    latest_spec_version,
    project_by_slug,
    service_by_name,
)
from resolvers.mutation import mutate, snapshot
from store.errors import SpecError
from store.events import DEPLOYMENTS_STREAM, SLO_STREAM, append_event
from store.ids import new_id
from store.models import (
    Environment,
    Job,
    Project,
    Route,
    RouteSource,
    Service,
    ServiceSpecVersion,
    Volume,
    utcnow,
)
from store.quantity import byte_size
from store.spec import LoadedSpec, SpecChange, diff_specs, load_spec
from store.spec.model import ServiceSpec

SPEC_PATH = ("input", "specYaml")


@dataclass(frozen=True, slots=True)
class ApplyResult:
    service: Service
    version: ServiceSpecVersion
    changes: list[SpecChange]
    created: bool
    unchanged: bool


def parse_spec(
    spec_yaml: str, git_sha: str | None, git_branch: str | None, environment: str | None = None
) -> LoadedSpec:
    try:
        return load_spec(spec_yaml, git_sha=git_sha, git_branch=git_branch, environment=environment)
    except SpecError as exc:
        raise ValidationFailed(
            [Problem((*SPEC_PATH, *map(str, p.segments)), p.render(), p.line) for p in exc.problems]
        ) from None


async def _target(
    session: AsyncSession, ctx: Context, spec: ServiceSpec
) -> tuple[Project, Environment]:
    meta = spec.metadata
    project = await project_by_slug(session, ctx, meta.project)
    if project is None:
        raise NotFound(
            f"Project {meta.project!r} not found; create it first (createProject, or "
            "`enclii deploy` creates it when your role allows).",
            (*SPEC_PATH, "metadata", "project"),
        )
    env = await environment_by_name(session, project.id, meta.environment)
    if env is None:
        raise NotFound(
            f"Environment {meta.environment!r} not found in project {meta.project!r}; "
            "create it first (createEnvironment).",
            (*SPEC_PATH, "metadata", "environment"),
        )
    return project, env


async def _sync_routes(
    session: AsyncSession, env: Environment, service: Service, spec: ServiceSpec
) -> None:
    wanted = {(r.host, r.path): r for r in spec.spec.routes}
    rows = (
        await session.scalars(
            select(Route).where(
                Route.environment_id == env.id,
                Route.host.in_({h for h, _ in wanted} or {""}),
            )
        )
    ).all()
    taken = {(r.host, r.path): r for r in rows}
    for index, key in enumerate(wanted):
        existing = taken.get(key)
        if existing is not None and existing.service_id != service.id:
            raise Conflict(
                f"Route conflict: host already bound in env {env.name!r}.",
                (*SPEC_PATH, "spec", "routes", str(index), "host"),
                existing_id=existing.id,
            )
    own = (
        await session.scalars(
            select(Route).where(Route.service_id == service.id, Route.source == RouteSource.SPEC)
        )
    ).all()
    for row in own:
        spec_route = wanted.get((row.host, row.path))
        if spec_route is None:
            await session.delete(row)
        else:
            row.tls_cert_ref = spec_route.tls
    present = {(r.host, r.path) for r in own} | {
        k for k, r in taken.items() if r.service_id == service.id
    }
    for key, route in wanted.items():
        if key not in present:
            session.add(
                Route(
                    id=new_id("route"),
                    environment_id=env.id,
                    service_id=service.id,
                    host=route.host,
                    path=route.path,
                    tls_cert_ref=route.tls,
                    source=RouteSource.SPEC,
                )
            )


async def _sync_volumes(
    session: AsyncSession, env: Environment, service: Service, spec: ServiceSpec
) -> None:
    wanted = {v.name: v for v in spec.spec.volumes}
    rows = (
        await session.scalars(
            select(Volume).where(
                Volume.environment_id == env.id,
                (Volume.service_id == service.id) | Volume.name.in_(wanted or {""}),
            )
        )
    ).all()
    names = list(wanted)
    for row in rows:
        if row.name in wanted:
            if row.service_id not in (None, service.id):
                raise Conflict(
                    f"Volume {row.name!r} already belongs to another service in env "
                    f"{env.name!r}; choose another name.",
                    (*SPEC_PATH, "spec", "volumes", str(names.index(row.name)), "name"),
                    existing_id=row.id,
                )
            volume = wanted[row.name]
            row.service_id = service.id
            row.mount_path = volume.mount_path
            row.size_bytes = byte_size(volume.size)
            row.storage_class = volume.storage_class
        else:
            # Dropped from the spec: keep the data, detach it. Deleting storage is never a
            # side effect of an apply.
            row.service_id = None
    existing = {r.name for r in rows}
    for name, volume in wanted.items():
        if name not in existing:
            session.add(
                Volume(
                    id=new_id("volume"),
                    environment_id=env.id,
                    service_id=service.id,
                    name=name,
                    mount_path=volume.mount_path,
                    size_bytes=byte_size(volume.size),
                    storage_class=volume.storage_class,
                    backup_policy={},
                )
            )


async def _sync_jobs(
    session: AsyncSession, env: Environment, service: Service, spec: ServiceSpec
) -> None:
    wanted = {j.name: j for j in spec.spec.jobs}
    rows = (
        await session.scalars(
            select(Job).where(
                Job.environment_id == env.id,
                (Job.service_id == service.id) | Job.name.in_(wanted or {""}),
            )
        )
    ).all()
    names = list(wanted)
    for row in rows:
        if row.service_id != service.id:
            raise Conflict(
                f"Job {row.name!r} already belongs to another service in env {env.name!r}; "
                "choose another name.",
                (*SPEC_PATH, "spec", "jobs", str(names.index(row.name)), "name"),
                existing_id=row.id,
            )
        if row.name in wanted:
            job = wanted[row.name]
            row.schedule, row.args, row.retries = job.schedule, list(job.args), job.retries
        else:
            await session.delete(row)
    existing = {r.name for r in rows}
    for name, job in wanted.items():
        if name not in existing:
            session.add(
                Job(
                    id=new_id("job"),
                    environment_id=env.id,
                    service_id=service.id,
                    name=name,
                    schedule=job.schedule,
                    args=list(job.args),
                    retries=job.retries,
                )
            )


def _change_payload(changes: list[SpecChange]) -> list[dict[str, Any]]:
    return [
        {"path": c.path, "kind": c.kind.value, "before": c.before, "after": c.after}
        for c in changes
    ]


async def apply_service(
    ctx: Context,
    spec_yaml: str,
    git_sha: str | None = None,
    git_branch: str | None = None,
    environment: str | None = None,
    action: str = "service.apply",
    expected_version: int | None = None,
) -> ApplyResult:
    """Create or update the service the spec describes (in ``environment`` instead of its
    ``metadata.environment`` when given)."""
    loaded = parse_spec(spec_yaml, git_sha, git_branch, environment)
    spec = loaded.spec
    document = loaded.normalised()
    async with mutate(ctx, action) as change:
        session = change.session
        project, env = await _target(session, ctx, spec)
        require(ctx, Permission.DEPLOY, project)
        service = await service_by_name(session, env.id, spec.metadata.name)
        created = service is None
        previous = None if service is None else await latest_spec_version(session, service.id)
        if expected_version is not None and (
            previous is None or previous.version != expected_version
        ):
            now = previous.version if previous is not None else "none"
            raise Conflict(
                f"The spec of {spec.metadata.name!r} changed meanwhile (version {now}, not "
                f"{expected_version}); run it again.",
                ("input",),
            )
        if service is not None and previous is not None and previous.digest == loaded.digest:
            change.record(
                entity_type="service",
                entity_id=service.id,
                project_id=project.id,
                before=None,
                after=None,
                unchanged=True,
                version=previous.version,
            )
            return ApplyResult(service, previous, [], created=False, unchanged=True)
        before_service = snapshot(service)
        if service is None:
            service = Service(
                id=new_id("service"),
                project_id=project.id,
                environment_id=env.id,
                name=spec.metadata.name,
                type=spec.spec.type,
                generation=1,
            )
            session.add(service)
        else:
            service.type = spec.spec.type
            service.generation += 1
        version = ServiceSpecVersion(
            id=new_id("service_spec_version"),
            service_id=service.id,
            version=(previous.version + 1) if previous else 1,
            spec=document,
            spec_yaml=loaded.rendered_yaml,
            digest=loaded.digest,
            git_sha=git_sha,
            created_by=ctx.actor.id,
        )
        session.add(version)
        await session.flush()
        await _sync_all(session, env, service, spec)
        # Its routes may have changed: the deployment controller rewrites the router's table
        # (and a new spec alone changes nothing that runs: that takes a deploy).
        await append_event(session, DEPLOYMENTS_STREAM, "service.applied", entity_id=service.id)
        if "slo" in document.get("spec", {}) or (
            previous and "slo" in previous.spec.get("spec", {})
        ):
            # An SLO added, changed or removed is assessed at once, not at the next resync.
            await append_event(session, SLO_STREAM, "service.applied", entity_id=service.id)
        changes = diff_specs(previous.spec if previous else None, document)
        change.record(
            entity_type="service",
            entity_id=service.id,
            project_id=project.id,
            before=before_service,
            after=snapshot(service),
            version=version.version,
            changes=_change_payload(changes),
        )
        await change.emit(
            project.id,
            "service.created" if created else "service.updated",
            service.id,
            {
                "name": service.name,
                "environment": env.name,
                "version": version.version,
                "changes": len(changes),
            },
        )
    return ApplyResult(service, version, changes, created=created, unchanged=False)


async def _sync_all(
    session: AsyncSession, env: Environment, service: Service, spec: ServiceSpec
) -> None:
    try:
        await _sync_routes(session, env, service, spec)
        await _sync_volumes(session, env, service, spec)
        await _sync_jobs(session, env, service, spec)
        await session.flush()
    except IntegrityError:
        # Another apply bound the same host, volume or job between our check and our
        # write (PostgreSQL, several replicas): the unique constraints are the referee.
        raise Conflict(
            f"Conflict: a route, volume or job of this spec was just taken in env "
            f"{env.name!r}; apply again to see which."
        ) from None


async def _release_resources(session: AsyncSession, service: Service) -> None:
    await session.execute(delete(Route).where(Route.service_id == service.id))
    await session.execute(delete(Job).where(Job.service_id == service.id))
    await session.execute(
        update(Volume).where(Volume.service_id == service.id).values(service_id=None)
    )
    service.deleted_at = utcnow()
    await session.flush()


async def delete_service(ctx: Context, service_id: str) -> Service:
    async with mutate(ctx, "service.delete") as change:
        service, env, project = await get_service(change.session, ctx, service_id, ("input", "id"))
        require(ctx, Permission.DEPLOY, project)
        before = snapshot(service)
        await _release_resources(change.session, service)
        change.record(
            entity_type="service",
            entity_id=service.id,
            project_id=project.id,
            before=before,
            after=snapshot(service),
        )
        await change.emit(
            project.id,
            "service.deleted",
            service.id,
            {"name": service.name, "environment": env.name},
        )
    return service


async def scale_service(
    ctx: Context, service_id: str, minimum: int | None, maximum: int | None
) -> ApplyResult:
    """Change a service's replica bounds (``replicas.min``/``max``, the autoscaler's range):
    the next spec version, identical but for them. It takes effect at once, with no
    rollout: the controller reads a service's bounds from its newest spec. A later
    ``applyService`` of a file with other bounds wins, as ``kubectl apply`` does after
    ``kubectl scale``."""
    if minimum is None and maximum is None:
        raise ValidationFailed.one(("input",), "give min, max or both")
    async with ctx.store.read() as session:
        # Permission is checked by the apply below, inside its mutation, so that a denial
        # is recorded in the audit trail like any other.
        service, _env, _project = await get_service(
            session, ctx, service_id, ("input", "serviceId")
        )
        latest = await latest_spec_version(session, service.id)
    if latest is None:
        raise NotFound(f"Service {service.name!r} has no spec yet.", ("input", "serviceId"))
    document = copy.deepcopy(latest.spec)
    replicas = document.setdefault("spec", {}).setdefault("runtime", {}).setdefault("replicas", {})
    if minimum is not None:
        replicas["min"] = minimum
    if maximum is not None:
        replicas["max"] = maximum
    # The stored document is already normalised: dumping it loses only comments, which a
    # scale has no way to keep in step anyway.
    text = yaml.safe_dump(document, sort_keys=False)
    try:
        return await apply_service(
            ctx,
            text,
            latest.git_sha,
            action="service.scale",
            # Applied onto the version read above, or not at all: an apply landing in
            # between must not be undone.
            expected_version=latest.version,
        )
    except ValidationFailed as failed:
        # Point at what the caller gave, not at the document we made from it.
        raise ValidationFailed([Problem(("input",), p.message) for p in failed.problems]) from None
