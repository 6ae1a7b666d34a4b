"""Manual overrides of a canary deploy, and its analysis as it streams.

``promote``, ``pause`` and ``abort`` write what a person asked for onto the deployment's
canary state and wake the deployment controller, which acts on it at its next reconcile
(traffic moves within that reconcile, so well within a second). Each bumps the
deployment's generation: the controller only writes back a state it read at the same
generation, so an override is never lost to a reconcile that was already running.
"""

from __future__ import annotations

from collections.abc import AsyncGenerator
from dataclasses import dataclass
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from resolvers.context import Context
from resolvers.deployments import get_deployment
from resolvers.errors import Conflict, NotFound, ValidationFailed
from resolvers.identity.guard import require
from resolvers.identity.rbac import Permission
from resolvers.lookup import get_service
from resolvers.mutation import mutate, snapshot
from store.events import CANARY_ENDED, DEPLOYMENTS_STREAM, EventRecord, append_event, canary_stream
from store.models import (
    Deployment,
    DeploymentPhase,
    DeploymentStrategy,
    Release,
    ServiceSpecVersion,
)
from store.spec.model import Canary

MAX_REASON = 500
PATH = ("input", "deploymentId")


async def _open_canary(
    session: AsyncSession, ctx: Context, deployment_id: str
) -> tuple[Deployment, str]:
    row = await session.get(Deployment, deployment_id, with_for_update=True)
    missing = NotFound(f"Deployment {deployment_id!r} not found.", PATH)
    if row is None:
        raise missing
    try:
        _service, _env, project = await get_service(session, ctx, row.service_id)
    except NotFound:
        raise missing from None
    require(ctx, Permission.DEPLOY, project)
    if row.strategy is not DeploymentStrategy.CANARY:
        raise Conflict(
            f"deployment {row.id} is a {row.strategy.value} deployment; promote, pause and "
            "abort apply to canary deployments",
            PATH,
        )
    if row.phase is not DeploymentPhase.DEPLOYING and row.phase not in (
        DeploymentPhase.QUEUED,
        DeploymentPhase.BUILDING,
    ):
        raise Conflict(
            f"deployment {row.id} has ended ({row.phase.value}"
            + (f": {row.reason}" if row.reason else "")
            + "); there is no canary to change",
            PATH,
        )
    if row.from_release_id is None or row.from_release_id == row.to_release_id:
        raise Conflict(
            f"deployment {row.id} is a first deploy: with no stable release to compare it "
            "with, it takes all traffic as soon as it is ready and is not steered; undo it "
            "with `enclii rollback` once an earlier release exists",
            PATH,
        )
    return row, project.id


async def _override(
    ctx: Context, deployment_id: str, action: str, changes: dict[str, Any], summary: str
) -> Deployment:
    async with mutate(ctx, f"deployment.{action}") as change:
        row, project_id = await _open_canary(change.session, ctx, deployment_id)
        before = snapshot(row)
        state = {**(row.canary or {})}
        for key, value in changes.items():
            if value is None:
                state.pop(key, None)
            else:
                state[key] = value
        row.canary = state
        row.generation += 1
        await change.session.flush()
        change.record(
            entity_type="deployment",
            entity_id=row.id,
            project_id=project_id,
            before=before,
            after=snapshot(row),
        )
        payload = {"deployment": row.id, "action": action, "summary": summary}
        await change.emit(project_id, f"deployment.{action}", row.id, payload)
        await append_event(
            change.session, DEPLOYMENTS_STREAM, "deployment", entity_id=row.service_id
        )
    return row


async def promote(ctx: Context, deployment_id: str, *, full: bool = False) -> Deployment:
    """End the canary's current pause or analysis step (and a manual pause); with
    ``full``, send it all traffic now, skipping the remaining steps and analysis."""
    how = "full" if full else "step"
    return await _override(
        ctx,
        deployment_id,
        "promote",
        {"promote": how, "pausedBy": None},
        f"promoted{' in full' if full else ' past its current step'} by {ctx.actor.display}",
    )


async def pause(ctx: Context, deployment_id: str) -> Deployment:
    """Hold the canary at its weight until promoted (analysis still runs, and a failing
    canary is still rolled back)."""
    return await _override(
        ctx,
        deployment_id,
        "pause",
        # A promote not yet acted on would otherwise run straight through the pause.
        {"pausedBy": ctx.actor.display, "promote": None},
        f"paused by {ctx.actor.display}",
    )


async def abort(ctx: Context, deployment_id: str, reason: str | None = None) -> Deployment:
    """Roll the canary back now: traffic returns to the stable release."""
    if reason is not None and len(reason) > MAX_REASON:
        raise ValidationFailed.one(
            ("input", "reason"), f"reason is {len(reason)} characters; at most {MAX_REASON}"
        )
    return await _override(
        ctx,
        deployment_id,
        "abort",
        {"abortBy": ctx.actor.display, "abortReason": reason or None},
        f"aborted by {ctx.actor.display}" + (f": {reason}" if reason else ""),
    )


# -- reading ---------------------------------------------------------------------------------


async def canary_settings(ctx: Context, row: Deployment) -> dict[str, Any]:
    """The canary's normalised ``deploy.canary`` settings (steps given on the deploy win):
    what the controller follows, for display."""
    async with ctx.store.read() as session:
        release = await session.get(Release, row.to_release_id)
        version = (
            await session.get(ServiceSpecVersion, release.spec_version_id)
            if release is not None and release.spec_version_id
            else None
        )
    spec = (version.spec if version is not None else {}).get("spec", {})
    settings = spec.get("deploy", {}).get("canary") or Canary().model_dump(
        mode="json", by_alias=True, exclude_none=True
    )
    steps = (row.canary or {}).get("steps")
    return {**settings, "steps": steps} if steps else dict(settings)


@dataclass(frozen=True)
class SampleRecord:
    sequence: int
    payload: dict[str, Any]

    @classmethod
    def of(cls, event: EventRecord) -> SampleRecord:
        return cls(event.seq, event.payload)


async def follow_canary(
    ctx: Context, deployment_id: str, after: int | None = None
) -> AsyncGenerator[SampleRecord, None]:
    """Every analysis check of a canary deployment: those after ``after`` (all, without
    it) first, then each new one; the stream completes when the deployment ends."""
    row, _project = await get_deployment(ctx, deployment_id)
    if row.strategy is not DeploymentStrategy.CANARY:
        raise Conflict(
            f"deployment {row.id} is a {row.strategy.value} deployment; only canary "
            "deployments are analysed",
            ("deploymentId",),
        )
    stream = canary_stream(row.id)
    events = ctx.hub.subscribe(stream, after=after if after is not None else 0)
    try:
        async for event in events:
            if event.type == CANARY_ENDED:
                return
            yield SampleRecord.of(event)
    finally:
        await events.aclose()
