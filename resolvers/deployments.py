"""Deploying and rolling back: desired state for the deployment controller.

``deploy`` records a QUEUED deployment of a release (which may still be building) and wakes
the controller; ``rollback`` marks the current deployment ROLLED_BACK and records a rollback
deployment to an earlier release, which the controller moves traffic to as soon as one of
its replicas is ready — at once when the release is still warm. Neither touches a process
or the router: the API never calls a driver.
"""

from __future__ import annotations

from collections.abc import AsyncGenerator
from dataclasses import dataclass
from typing import Any

from pydantic import ValidationError as PydanticValidationError
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from resolvers.context import Context
from resolvers.errors import (
    Conflict,
    Frozen,
    NotFound,
    Problem,
    SpentObjective,
    ValidationFailed,
)
from resolvers.identity.guard import require
from resolvers.identity.rbac import Permission
from resolvers.lookup import get_service, latest_spec_version
from resolvers.mutation import mutate, snapshot
from store.alerts import enqueue_alerts
from store.events import (
    CANARY_ENDED,
    DEPLOYMENTS_STREAM,
    append_event,
    canary_stream,
    deployment_stream,
)
from store.ids import new_id
from store.models import (
    TERMINAL_PHASES,
    Deployment,
    DeploymentKind,
    DeploymentPhase,
    DeploymentStrategy,
    Release,
    ReleaseStatus,
    Runtime,
    RuntimeStatus,
    Service,
    ServiceSpecVersion,
    ServiceType,
    SloStatus,
    utcnow,
)
from store.spec.model import CanaryStep

MAX_STEPS = 30


async def serving_release(session: AsyncSession, service_id: str) -> str | None:
    """The release taking most of the service's traffic now (None: no traffic)."""
    row = await session.scalar(
        select(Runtime.release_id)
        .where(Runtime.service_id == service_id, Runtime.weight > 0)
        .order_by(Runtime.weight.desc(), Runtime.id.desc())
        .limit(1)
    )
    return row


async def _serialise(session: AsyncSession, service: Service) -> None:
    """One deploy or rollback of a service at a time: each reads the newest deployment and
    decides from it, and two doing so at once would both pass their checks. (SQLite writers
    are serialised already.)"""
    await session.execute(select(Service.id).where(Service.id == service.id).with_for_update())


async def _newest_deployment(session: AsyncSession, service_id: str) -> Deployment | None:
    return await session.scalar(
        select(Deployment)
        .where(Deployment.service_id == service_id)
        .order_by(Deployment.id.desc())
        .limit(1)
        .with_for_update()
    )


async def _release_of(
    session: AsyncSession, service: Service, release_id: str, path: tuple[str, ...]
) -> Release:
    release = await session.get(Release, release_id)
    if release is None or release.service_id != service.id:
        raise ValidationFailed.one(
            path, f"release {release_id!r} is not a release of service {service.name!r}"
        )
    return release


async def _spec_strategy(session: AsyncSession, release: Release) -> DeploymentStrategy:
    version = (
        await session.get(ServiceSpecVersion, release.spec_version_id)
        if release.spec_version_id
        else None
    )
    name = (version.spec if version else {}).get("spec", {}).get("deploy", {}).get("strategy")
    return DeploymentStrategy(name) if name else DeploymentStrategy.ROLLING


def _canary_steps(
    steps: list[dict[str, Any]] | None, strategy: DeploymentStrategy
) -> list[dict[str, Any]] | None:
    """Steps given on the deploy, checked as the spec checks ``deploy.canary.steps``."""
    if steps is None:
        return None
    path = ("input", "steps")
    if strategy is not DeploymentStrategy.CANARY:
        raise ValidationFailed.one(path, "steps apply to the canary strategy only")
    if not 1 <= len(steps) <= MAX_STEPS:
        raise ValidationFailed.one(path, f"give 1 to {MAX_STEPS} steps, not {len(steps)}")
    problems = []
    checked = []
    for index, step in enumerate(steps):
        try:
            model = CanaryStep.model_validate(step)
        except PydanticValidationError as exc:
            for error in exc.errors():
                loc = tuple(str(p) for p in error["loc"])
                # The GraphQL input flattens `pause: {seconds}` into pauseSeconds.
                if loc[:2] == ("pause", "seconds"):
                    loc = ("pauseSeconds", *loc[2:])
                problems.append(Problem((*path, str(index), *loc), error["msg"]))
            continue
        checked.append(model.model_dump(mode="json", by_alias=True, exclude_none=True))
    if problems:
        raise ValidationFailed(problems)
    if "setWeight" not in checked[0]:
        raise ValidationFailed.one(
            (*path, "0"),
            "the first canary step must be setWeight: a canary without traffic cannot be "
            "judged, so a pause or analysis before it would never end",
        )
    return checked


async def _check_freeze(
    session: AsyncSession, service: Service, strategy: DeploymentStrategy, fix: bool
) -> None:
    """Appendix D: a service that has spent its error budget deploys only canary fixes."""
    status = await session.get(SloStatus, service.id)
    if status is None or not status.frozen:
        return
    if fix and strategy is DeploymentStrategy.CANARY:
        return
    objectives = [
        SpentObjective(
            name=name,
            objective_percent=float(figures.get("objective", 0.0)),
            bad=int(figures.get("bad", 0)),
            allowed=float(figures.get("allowed", 0.0)),
            spent=float(figures.get("spent", 0.0)),
        )
        for name, figures in sorted(status.objectives.items())
        if isinstance(figures, dict)
    ]
    over = "; ".join(
        f"{o.name} {o.objective_percent:g}%: {o.bad} bad of {o.allowed:.0f} allowed "
        f"({o.spent:.0%} of the budget)"
        for o in objectives
        if o.spent >= 1.0
    )
    hint = (
        "a fix must use the canary strategy (--strategy canary --fix)"
        if fix
        else "deploy a fix as a canary marked as one: enclii deploy --strategy canary --fix"
    )
    raise Frozen(
        f"deploys of {service.name!r} are frozen: its error budget over {status.window_days} "
        f"days is spent ({over or status.reason or 'budget spent'}); {hint}",
        ("input", "fix" if fix else "strategy"),
        objectives=objectives,
        window_days=status.window_days,
        budget_spent=status.budget_spent,
        frozen_since=status.frozen_at,
    )


async def deploy(
    ctx: Context,
    service_id: str,
    release_id: str,
    strategy: DeploymentStrategy | None = None,
    *,
    steps: list[dict[str, Any]] | None = None,
    fix: bool = False,
) -> Deployment:
    async with mutate(ctx, "deployment.create") as change:
        session = change.session
        service, env, project = await get_service(session, ctx, service_id, ("input", "serviceId"))
        require(ctx, Permission.DEPLOY, project)
        await _serialise(session, service)
        if service.type is ServiceType.JOB:
            raise ValidationFailed.one(
                ("input", "serviceId"),
                f"{service.name!r} is a job service: it runs on its schedule or with runJob, "
                "it is not deployed",
            )
        release = await _release_of(session, service, release_id, ("input", "releaseId"))
        if release.status is ReleaseStatus.FAILED:
            raise ValidationFailed.one(
                ("input", "releaseId"),
                f"release {release.id} failed to build ({release.status_reason}); fix the "
                "source and create a new release",
            )
        chosen = strategy or await _spec_strategy(session, release)
        given_steps = _canary_steps(steps, chosen)
        await _check_freeze(session, service, chosen, fix)
        newest = await _newest_deployment(session, service.id)
        if (
            newest is not None
            and newest.to_release_id == release.id
            and newest.phase
            not in (DeploymentPhase.FAILED, DeploymentPhase.ROLLED_BACK, DeploymentPhase.SUPERSEDED)
        ):
            raise Conflict(
                f"release {release.id} is already deployed (deployment {newest.id} is "
                f"{newest.phase.value})",
                ("input", "releaseId"),
                existing_id=newest.id,
            )
        deployment = Deployment(
            id=new_id("deployment"),
            service_id=service.id,
            from_release_id=await serving_release(session, service.id),
            to_release_id=release.id,
            strategy=chosen,
            kind=DeploymentKind.DEPLOY,
            phase=DeploymentPhase.QUEUED,
            conditions=[],
            canary={"steps": given_steps} if given_steps else {},
            fix=fix,
            created_by=ctx.actor.id,
        )
        session.add(deployment)
        await session.flush()
        change.record(
            entity_type="deployment",
            entity_id=deployment.id,
            project_id=project.id,
            before=None,
            after=snapshot(deployment),
        )
        await _announce(change, project.id, service, env.name, deployment)
    return deployment


async def rollback(ctx: Context, service_id: str, to_release_id: str | None = None) -> Deployment:
    async with mutate(ctx, "deployment.rollback") as change:
        session = change.session
        service, env, project = await get_service(session, ctx, service_id, ("input", "serviceId"))
        require(ctx, Permission.DEPLOY, project)
        await _serialise(session, service)
        current = await _newest_deployment(session, service.id)
        if current is None:
            raise Conflict(
                f"{service.name!r} has never been deployed: there is nothing to roll back",
                ("input", "serviceId"),
            )
        serving = await serving_release(session, service.id)
        if to_release_id is None:
            target_id = await _previous_release(session, service.id, current, serving)
            if target_id is None:
                raise Conflict(
                    f"{service.name!r} has no earlier healthy release to roll back to; name "
                    "one with toReleaseId",
                    ("input", "toReleaseId"),
                )
        else:
            target_id = to_release_id
        target = await _release_of(session, service, target_id, ("input", "toReleaseId"))
        if target.status is not ReleaseStatus.READY:
            raise ValidationFailed.one(
                ("input", "toReleaseId"),
                f"release {target.id} is {target.status.value}, not a built release; roll back "
                "to a release that was deployed before",
            )
        if target.id == current.to_release_id and current.phase not in (
            DeploymentPhase.FAILED,
            DeploymentPhase.ROLLED_BACK,
        ):
            raise Conflict(
                f"release {target.id} is the current release (deployment {current.id} is "
                f"{current.phase.value})",
                ("input", "toReleaseId"),
                existing_id=current.id,
            )
        if target.id == serving and current.phase in (
            DeploymentPhase.FAILED,
            DeploymentPhase.ROLLED_BACK,
        ):
            raise Conflict(
                f"release {target.id} already takes the traffic (deployment {current.id} "
                f"{current.phase.value} and traffic went back to it)",
                ("input", "toReleaseId"),
                existing_id=current.id,
            )
        before = snapshot(current)
        if current.phase not in TERMINAL_PHASES or current.phase is DeploymentPhase.HEALTHY:
            current.phase = DeploymentPhase.ROLLED_BACK
            current.reason = f"rolled back to release {target.id} by {ctx.actor.display}"
            current.finished_at = current.finished_at or utcnow()
            await append_event(
                session,
                deployment_stream(current.id),
                "deployment.rolled-back",
                entity_id=current.id,
                actor_id=ctx.actor.id,
                payload={"phase": current.phase.value, "reason": current.reason},
            )
            if current.strategy is DeploymentStrategy.CANARY:
                await append_event(
                    session, canary_stream(current.id), CANARY_ENDED, entity_id=current.id
                )
        await enqueue_alerts(
            session,
            service=service,
            project_id=project.id,
            service_label=f"{service.name}.{env.name}.{project.slug}",
            spec=await _live_spec(session, service.id),
            event="rollback",
            title=f"rolled back to release {target.id} by {ctx.actor.display}",
            fields={
                "From": serving or "no release",
                "To": target.id,
                "Replaced deployment": current.id,
            },
        )
        deployment = Deployment(
            id=new_id("deployment"),
            service_id=service.id,
            from_release_id=serving,
            to_release_id=target.id,
            strategy=current.strategy,
            kind=DeploymentKind.ROLLBACK,
            phase=DeploymentPhase.QUEUED,
            conditions=[],
            created_by=ctx.actor.id,
        )
        session.add(deployment)
        await session.flush()
        change.record(
            entity_type="deployment",
            entity_id=deployment.id,
            project_id=project.id,
            before=before,
            after=snapshot(deployment),
            rolledBack=current.id,
        )
        await _announce(change, project.id, service, env.name, deployment)
    return deployment


async def _live_spec(session: AsyncSession, service_id: str) -> dict[str, Any]:
    """The body of the service's newest spec (its alert policies are the ones in force)."""
    newest = await latest_spec_version(session, service_id)
    body: dict[str, Any] = (newest.spec if newest is not None else {}).get("spec", {})
    return body


async def _previous_release(
    session: AsyncSession, service_id: str, current: Deployment, serving: str | None
) -> str | None:
    """The release to go back to: the one the current deployment replaced, else the newest
    other release that was ever healthy."""
    if current.from_release_id and current.from_release_id != current.to_release_id:
        return current.from_release_id
    avoid = {current.to_release_id}
    if current.phase in (DeploymentPhase.FAILED, DeploymentPhase.ROLLED_BACK) and serving:
        avoid.add(serving)
    found = await session.scalar(
        select(Deployment.to_release_id)
        .where(
            Deployment.service_id == service_id,
            Deployment.to_release_id.not_in(avoid),
            Deployment.finished_at.is_not(None),
            Deployment.phase.in_(
                [DeploymentPhase.HEALTHY, DeploymentPhase.ROLLED_BACK, DeploymentPhase.SUPERSEDED]
            ),
        )
        .order_by(Deployment.id.desc())
        .limit(1)
    )
    return found


async def _announce(
    change: Any, project_id: str, service: Service, environment: str, deployment: Deployment
) -> None:
    payload = {
        "service": service.name,
        "environment": environment,
        "release": deployment.to_release_id,
        "kind": deployment.kind.value,
        "strategy": deployment.strategy.value,
        "phase": deployment.phase.value,
    }
    await change.emit(project_id, f"deployment.{deployment.kind.value}", deployment.id, payload)
    await append_event(
        change.session,
        deployment_stream(deployment.id),
        "deployment.queued",
        entity_id=deployment.id,
        actor_id=change.ctx.actor.id,
        payload=payload,
    )
    await append_event(change.session, DEPLOYMENTS_STREAM, "deployment", entity_id=service.id)


# -- reading ---------------------------------------------------------------------------------


async def get_deployment(ctx: Context, deployment_id: str) -> tuple[Deployment, str]:
    """The deployment and its project id, if the caller may see it."""
    async with ctx.store.read() as session:
        row = await session.get(Deployment, deployment_id)
        missing = NotFound(f"Deployment {deployment_id!r} not found.", ("deploymentId",))
        if row is None:
            raise missing
        try:
            _service, _env, project = await get_service(session, ctx, row.service_id)
        except NotFound:
            # What the caller may not see is reported exactly like what does not exist.
            raise missing from None
    require(ctx, Permission.VIEW, project)
    return row, project.id


async def runtimes_of(ctx: Context, service_id: str) -> list[Runtime]:
    """What runs of the service now: every release that is not stopped, serving first."""
    async with ctx.store.read() as session:
        service, _env, project = await get_service(session, ctx, service_id, ("serviceId",))
        require(ctx, Permission.VIEW, project)
        rows = list(
            await session.scalars(
                select(Runtime)
                .where(Runtime.service_id == service.id)
                .where(Runtime.status != RuntimeStatus.STOPPED)
                .order_by(Runtime.weight.desc(), Runtime.id.desc())
            )
        )
    return rows


@dataclass(frozen=True)
class StatusUpdate:
    sequence: int
    deployment: Deployment


async def follow_deployment(ctx: Context, deployment_id: str) -> AsyncGenerator[StatusUpdate, None]:
    """The deployment as it is now, then again after each change (phase, conditions, canary
    state), until it ends."""
    row, _project = await get_deployment(ctx, deployment_id)
    stream = deployment_stream(row.id)
    head = await ctx.hub.head(stream)
    # Read after fixing the head: a change committed in between is both read and announced.
    async with ctx.store.read() as session:
        row = await session.get(Deployment, deployment_id) or row
    yield StatusUpdate(head, row)
    if row.phase in TERMINAL_PHASES:
        return
    announcements = ctx.hub.subscribe(stream, after=head)
    try:
        async for event in announcements:
            async with ctx.store.read() as session:
                fresh = await session.get(Deployment, deployment_id)
            if fresh is None:
                return
            yield StatusUpdate(event.seq, fresh)
            if fresh.phase in TERMINAL_PHASES:
                return
    finally:
        await announcements.aclose()
