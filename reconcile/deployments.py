"""The deployment controller: a service's releases run, and take traffic, as its newest
deployment says.

Its key is a service ID. A reconcile reads the service's newest deployment, the releases it
names, the runtimes (what was decided last time) and what the driver observes; the pure
``rollout.decide`` says what should run and how traffic is split; the controller verifies a
release's signature before its first replica starts, asks the driver to run, retire and
route, and writes back the deployment's phase and conditions and each release's runtime.
Phase changes are events on the project's stream and on the deployment's own stream
(``deploymentStatus``).

Writes are guarded: the controller changes a deployment only if its phase is still the one
it decided from — a rollback committed in between wins, and the next reconcile sees it.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, replace
from datetime import timedelta
from pathlib import Path
from typing import Any, Final

from sqlalchemy import select

from reconcile.autoscale import ScalePolicy
from reconcile.builds import verify_release
from reconcile.canary import judge
from reconcile.canary_steps import CanaryPlan, CanaryState, check_due
from reconcile.driver import (
    Driver,
    DriverError,
    ProbeSpec,
    ReplicaObservation,
    TrafficRoute,
    Workload,
)
from reconcile.rollout import (
    DeploymentFacts,
    Plan,
    ReleaseFacts,
    RuntimeFacts,
    Snapshot,
    decide,
    ready_count,
    runtime_status,
)
from reconcile.runner import DONE, Result, again
from reconcile.signing import PlatformKey, SignatureError
from store.alerts import enqueue_alerts
from store.conditions import is_true, set_condition
from store.db import Store
from store.events import (
    CANARY_ENDED,
    CANARY_SAMPLE,
    DEPLOYMENT_PROGRESS,
    append_event,
    canary_stream,
    deployment_stream,
    project_stream,
)
from store.ids import new_id
from store.metrics import read_tallies, total, window_start
from store.models import (
    TERMINAL_PHASES,
    Deployment,
    DeploymentKind,
    DeploymentPhase,
    DeploymentStrategy,
    Environment,
    Project,
    Release,
    ReleaseStatus,
    Route,
    Runtime,
    RuntimeStatus,
    Service,
    ServiceSpecVersion,
    ServiceType,
    utcnow,
)
from store.spec.model import DEFAULT_PORT

log = logging.getLogger(__name__)

ACTOR: Final = "controller:deployments"
LOCAL_DOMAIN: Final = "localhost"


def default_host(service: str, environment: str, project: str) -> str:
    """Every API service answers here with no DNS set-up: browsers and curl resolve
    ``*.localhost`` to the loopback address."""
    return f"{service}.{environment}.{project}.{LOCAL_DOMAIN}"


@dataclass(frozen=True)
class _World:
    service: Service
    environment: Environment
    project: Project
    current: Deployment | None
    older_open: list[Deployment]
    releases: dict[str, Release]
    specs: dict[str, dict[str, Any]]  # release id → normalised spec body
    runtimes: dict[str, Runtime]
    routes: list[Route]
    # The newest spec's body: replica bounds and autoscaling are the service's, live (a
    # `scaleService` or an apply changes them at once, as an HPA's bounds change without
    # a rollout); everything else comes with each release's own spec.
    live: dict[str, Any]

    @property
    def label(self) -> str:
        return f"{self.service.name}.{self.environment.name}.{self.project.slug}"


def _rollback_fields(row: Deployment, decision: dict[str, Any] | None) -> dict[str, str]:
    fields = {
        "Release": row.to_release_id,
        "Back to": row.from_release_id or "no release",
        "Reason": row.reason or "",
    }
    sample = (decision or {}).get("sample") or {}
    for side in ("canary", "stable"):
        figures = sample.get(side)
        if figures:
            p95 = figures.get("p95Ms")
            fields[side.title()] = (
                f"{figures['requests']} requests, {figures['errorRate']:.2%} 5xx, P95 "
                + (f"{p95:.0f} ms" if p95 is not None else "n/a")
            )
    return fields


def _with_live_bounds(spec: dict[str, Any], live: dict[str, Any]) -> dict[str, Any]:
    """A release's spec with the replica bounds and autoscaling of the newest spec."""
    if not live:
        return spec
    runtime = {**spec.get("runtime", {})}
    if "replicas" in live.get("runtime", {}):
        runtime["replicas"] = live["runtime"]["replicas"]
    merged = {**spec, "runtime": runtime}
    if "autoscaling" in live:
        merged["autoscaling"] = live["autoscaling"]
    else:
        merged.pop("autoscaling", None)
    return merged


class DeploymentController:
    name = "deployments"
    timeout = 120.0

    def __init__(self, store: Store, driver: Driver, key: PlatformKey) -> None:
        self.store = store
        self.driver = driver
        self.key = key

    async def list_keys(self) -> Iterable[str]:
        async with self.store.read() as session:
            deployed = set(await session.scalars(select(Deployment.service_id).distinct()))
            running = set(
                await session.scalars(
                    select(Runtime.service_id).where(Runtime.status != RuntimeStatus.STOPPED)
                )
            )
        return deployed | running | await self.driver.known_services()

    # -- reading the world ----------------------------------------------------------------

    async def _load(self, service_id: str) -> _World | None:
        async with self.store.read() as session:
            found = (
                await session.execute(
                    select(Service, Environment, Project)
                    .join(Environment, Environment.id == Service.environment_id)
                    .join(Project, Project.id == Service.project_id)
                    .where(Service.id == service_id)
                )
            ).one_or_none()
            if found is None:
                return None
            service, environment, project = found[0], found[1], found[2]
            deployments = list(
                await session.scalars(
                    select(Deployment)
                    .where(Deployment.service_id == service_id)
                    .where(Deployment.phase.not_in(TERMINAL_PHASES))
                )
            )
            newest = await session.scalar(
                select(Deployment)
                .where(Deployment.service_id == service_id)
                .order_by(Deployment.id.desc())
                .limit(1)
            )
            runtimes = {
                r.release_id: r
                for r in await session.scalars(
                    select(Runtime).where(Runtime.service_id == service_id)
                )
            }
            wanted = set(runtimes)
            if newest is not None:
                wanted.add(newest.to_release_id)
                if newest.from_release_id:
                    wanted.add(newest.from_release_id)
            releases = {
                r.id: r
                for r in await session.scalars(select(Release).where(Release.id.in_(wanted)))
            }
            versions = {r.spec_version_id for r in releases.values() if r.spec_version_id}
            specs_by_version = {
                v.id: v.spec
                for v in await session.scalars(
                    select(ServiceSpecVersion).where(ServiceSpecVersion.id.in_(versions))
                )
            }
            routes = list(
                await session.scalars(select(Route).where(Route.service_id == service_id))
            )
            newest_spec = await session.scalar(
                select(ServiceSpecVersion)
                .where(ServiceSpecVersion.service_id == service_id)
                .order_by(ServiceSpecVersion.version.desc())
                .limit(1)
            )
        return _World(
            service=service,
            environment=environment,
            project=project,
            current=newest,
            older_open=[d for d in deployments if newest is None or d.id != newest.id],
            releases=releases,
            specs={
                r.id: specs_by_version.get(r.spec_version_id or "", {}).get("spec", {})
                for r in releases.values()
            },
            runtimes=runtimes,
            routes=routes,
            live=(newest_spec.spec.get("spec", {}) if newest_spec is not None else {}),
        )

    def _facts(self, world: _World, release: Release) -> ReleaseFacts:
        spec = world.specs.get(release.id, {})
        deploy = spec.get("deploy", {})
        bounds = _with_live_bounds(spec, world.live)
        return ReleaseFacts(
            id=release.id,
            status=release.status,
            status_reason=release.status_reason,
            runnable=bool(release.artifact_path),
            replicas=int(bounds.get("runtime", {}).get("replicas", {}).get("min", 1)),
            progress_deadline_s=int(deploy.get("progressDeadlineSeconds", 300)),
            rollback_window_s=int(deploy.get("rollbackWindowSeconds", 600)),
            scaling=ScalePolicy.from_spec(bounds),
        )

    def _snapshot(self, world: _World, observed: dict[str, list[ReplicaObservation]]) -> Snapshot:
        current = world.current
        facts = {r.id: self._facts(world, r) for r in world.releases.values()}
        return Snapshot(
            now=utcnow(),
            current=(
                DeploymentFacts(
                    id=current.id,
                    kind=current.kind,
                    strategy=current.strategy,
                    phase=current.phase,
                    to_release=facts[current.to_release_id],
                    from_release_id=current.from_release_id,
                    deadline_at=current.deadline_at,
                    verified=is_true(current.conditions, "Verified"),
                    generation=current.generation,
                    **self._canary_facts(world, current),
                )
                if current is not None and current.to_release_id in facts
                else None
            ),
            runtimes={
                r.release_id: RuntimeFacts(
                    release_id=r.release_id,
                    weight=r.weight,
                    warm_until=r.warm_until,
                    replicas=r.replicas_desired,
                    scaled_at=r.scaled_at,
                )
                for r in world.runtimes.values()
            },
            observed=observed,
            releases=facts,
        )

    @staticmethod
    def _canary_facts(world: _World, current: Deployment) -> dict[str, Any]:
        if current.strategy is not DeploymentStrategy.CANARY:
            return {}
        state = CanaryState.from_json(current.canary or {})
        spec = world.specs.get(current.to_release_id, {})
        canary = spec.get("deploy", {}).get("canary", {})
        return {
            "canary": state,
            "canary_plan": CanaryPlan.from_spec(canary, state.steps),
        }

    async def _analyse(self, world: _World, snapshot: Snapshot) -> Snapshot:
        """Make the canary's analysis check when one is due: its traffic and the stable
        release's, read over the same window."""
        current = snapshot.current
        if (
            current is None
            or current.phase is not DeploymentPhase.DEPLOYING
            or current.canary is None
            or current.canary_plan is None
            or not check_due(current.canary, current.canary_plan, snapshot.now)
        ):
            return snapshot
        policy = current.canary_plan.analysis
        canary_id = current.to_release.id
        stable_ids = [
            release_id
            for release_id, runtime in snapshot.runtimes.items()
            if runtime.weight > 0 and release_id != canary_id
        ]
        since = window_start(snapshot.now - timedelta(seconds=policy.window_s))
        async with self.store.read() as session:
            tallies = await read_tallies(session, world.service.id, since, [canary_id, *stable_ids])
        stable = total(tallies[r] for r in stable_ids if r in tallies)
        canary = tallies.get(canary_id) or total([])
        return replace(snapshot, sample=judge(canary, stable, policy))

    # -- acting -----------------------------------------------------------------------------

    async def reconcile(self, key: str) -> Result:
        world = await self._load(key)
        if world is None or world.service.deleted_at is not None:
            await self._teardown(key, world)
            return DONE
        observed = await self.driver.observe(key)
        snapshot = await self._analyse(world, self._snapshot(world, observed))
        plan = decide(snapshot)
        verification: str | None = None
        if plan.needs_verification and snapshot.current is not None:
            release = world.releases[snapshot.current.to_release.id]
            try:
                await verify_release(self.key, release)
                verification = f"signature and digest {release.digest} verified"
            except SignatureError as exc:
                snapshot = self._refused(snapshot, str(exc))
                plan = decide(snapshot)
                plan.reason = f"refused to run: {exc}"
        failure = await self._apply(world, plan)
        if failure is not None and snapshot.current is not None:
            plan = decide(self._refused(snapshot, failure))
            plan.reason = failure
            await self._apply(world, plan)
        observed = await self.driver.observe(key)
        changed = await self._record(world, snapshot, plan, observed, verification)
        if not changed:
            return again(0.05)  # someone changed the deployment meanwhile: look again
        if plan.requeue_after is None:
            return DONE
        # The plan's delays count from the snapshot; acting on it took some of them.
        spent = (utcnow() - snapshot.now).total_seconds()
        return again(max(plan.requeue_after - spent, 0.05))

    @staticmethod
    def _refused(snapshot: Snapshot, reason: str) -> Snapshot:
        """The same world, with the deployment's release marked as failing for ``reason``."""
        current = snapshot.current
        assert current is not None
        release = replace(current.to_release, status=ReleaseStatus.FAILED, status_reason=reason)
        return replace(
            snapshot,
            current=replace(
                current, to_release=release, phase=DeploymentPhase.QUEUED, verified=False
            ),
        )

    async def _apply(self, world: _World, plan: Plan) -> str | None:
        """Make the driver match the plan; a refusal the driver will repeat is returned."""
        for release_id in sorted(plan.retire):
            await self.driver.retire(world.service.id, release_id)
        for release_id, replicas in sorted(plan.run.items()):
            release = world.releases.get(release_id)
            if release is None:
                continue
            try:
                await self.driver.run(self._workload(world, release, replicas))
            except DriverError as exc:
                if world.current is not None and release_id == world.current.to_release_id:
                    return str(exc)
                log.warning("cannot run %s of %s: %s", release_id, world.label, exc)
        await self.driver.route(world.service.id, world.label, self._routes(world), plan.weights)
        return None

    def _routes(self, world: _World) -> list[TrafficRoute]:
        if world.service.type is not ServiceType.API:
            return []
        default = default_host(world.service.name, world.environment.name, world.project.slug)
        routes = [TrafficRoute(default, "/")]
        routes.extend(TrafficRoute(r.host, r.path) for r in world.routes)
        return routes

    def _workload(self, world: _World, release: Release, replicas: int) -> Workload:
        spec = world.specs.get(release.id, {})
        runtime = spec.get("runtime", {})
        ports = [int(p) for p in runtime.get("ports", [])] or [DEFAULT_PORT]
        health = spec.get("health", {})

        def probe(name: str) -> ProbeSpec | None:
            found = health.get(name)
            return ProbeSpec.from_spec(found, ports[0]) if found else None

        return Workload(
            service_id=world.service.id,
            release_id=release.id,
            service=world.label,
            replicas=replicas,
            command=list(release.provenance.get("command", [])),
            artifact=Path(release.artifact_path or ""),
            env={str(v["name"]): str(v["value"]) for v in spec.get("env", [])},
            ports=ports,
            readiness=probe("readiness"),
            liveness=probe("liveness"),
            startup=probe("startup"),
        )

    async def _teardown(self, service_id: str, world: _World | None) -> None:
        observed = await self.driver.observe(service_id)
        for release_id in observed:
            await self.driver.retire(service_id, release_id)
        await self.driver.unroute(service_id)
        if world is None:
            return
        async with self.store.write() as session:
            for runtime in await session.scalars(
                select(Runtime).where(Runtime.service_id == service_id)
            ):
                runtime.status, runtime.weight, runtime.replicas_ready = RuntimeStatus.STOPPED, 0, 0
                runtime.replicas = []
            for deployment in await session.scalars(
                select(Deployment)
                .where(Deployment.service_id == service_id)
                .where(Deployment.phase.not_in(TERMINAL_PHASES))
            ):
                await self._set_phase(
                    session,
                    world,
                    deployment,
                    DeploymentPhase.SUPERSEDED,
                    "the service was deleted",
                )

    # -- writing status ---------------------------------------------------------------------

    async def _record(
        self,
        world: _World,
        snapshot: Snapshot,
        plan: Plan,
        observed: dict[str, list[ReplicaObservation]],
        verification: str | None,
    ) -> bool:
        now = snapshot.now
        async with self.store.write() as session:
            for older in world.older_open:
                row = await session.get(Deployment, older.id)
                if row is not None and row.phase not in TERMINAL_PHASES:
                    newest = world.current.id if world.current else "a newer one"
                    await self._set_phase(
                        session,
                        world,
                        row,
                        DeploymentPhase.SUPERSEDED,
                        f"replaced by deployment {newest} before it finished",
                    )
            changed = True
            current = world.current
            if current is not None and snapshot.current is not None:
                row = await session.get(Deployment, current.id, with_for_update=True)
                # ``current`` is the row as read before deciding.
                if (
                    row is None
                    or row.phase is not current.phase
                    or row.generation != current.generation
                ):
                    # A rollback, a newer deploy or an override (promote, pause, abort)
                    # got there first.
                    changed = False
                else:
                    progressed = self._conditions(row, snapshot, plan, observed, verification)
                    if plan.canary is not None and plan.canary != row.canary:
                        row.canary = plan.canary
                        progressed = True
                    if plan.sample is not None:
                        await append_event(
                            session,
                            canary_stream(row.id),
                            CANARY_SAMPLE,
                            entity_id=row.id,
                            actor_id=ACTOR,
                            payload=plan.sample,
                        )
                    if plan.start_deadline:
                        row.started_at = now
                        row.deadline_at = now + timedelta(
                            seconds=snapshot.current.to_release.progress_deadline_s
                        )
                    if plan.phase is not None and plan.phase is not row.phase:
                        await self._set_phase(session, world, row, plan.phase, plan.reason)
                    elif progressed:
                        # Watchers (the UI, `enclii status --wait`) see replicas come up and
                        # a canary's weight move without polling, not only phase changes.
                        await append_event(
                            session,
                            deployment_stream(row.id),
                            DEPLOYMENT_PROGRESS,
                            entity_id=row.id,
                            actor_id=ACTOR,
                            payload={"phase": row.phase.value},
                        )
            await self._runtimes(session, world, plan, observed)
        return changed

    def _conditions(
        self,
        row: Deployment,
        snapshot: Snapshot,
        plan: Plan,
        observed: dict[str, list[ReplicaObservation]],
        verification: str | None,
    ) -> bool:
        """Bring the conditions up to date; whether any changed."""
        now = snapshot.now
        target = snapshot.current.to_release if snapshot.current else None
        conditions = list(row.conditions)
        if target is not None:
            built = target.status.value
            conditions = set_condition(
                conditions,
                "ReleaseReady",
                "True" if built == "ready" else "False",
                {"ready": "Built", "failed": "BuildFailed"}.get(built, "Building"),
                target.status_reason or f"release {target.id} is {built}",
                now=now,
                generation=row.generation,
            )
            if verification is not None:
                conditions = set_condition(
                    conditions, "Verified", "True", "SignatureValid", verification, now=now
                )
            elif plan.reason and plan.reason.startswith("refused to run"):
                conditions = set_condition(
                    conditions, "Verified", "False", "VerificationFailed", plan.reason, now=now
                )
            ready = ready_count(observed.get(target.id, []))
            conditions = set_condition(
                conditions,
                "Available",
                "True" if target.replicas and ready >= target.replicas else "False",
                "ReplicasReady" if ready >= target.replicas else "ReplicasNotReady",
                f"{ready} of {target.replicas} replicas ready",
                now=now,
                generation=row.generation,
            )
        phase = plan.phase or row.phase
        progressing = {
            DeploymentPhase.HEALTHY: ("True", "RolloutComplete"),
            DeploymentPhase.FAILED: ("False", "RolloutFailed"),
            DeploymentPhase.BUILDING: ("True", "WaitingForBuild"),
            DeploymentPhase.DEPLOYING: ("True", "ShiftingTraffic"),
            DeploymentPhase.ROLLED_BACK: ("False", "RolledBack"),
        }.get(phase, ("Unknown", phase.name.title()))
        conditions = set_condition(
            conditions,
            "Progressing",
            "True"
            if progressing[0] == "True"
            else "False"
            if progressing[0] == "False"
            else "Unknown",
            progressing[1],
            plan.progress or phase.value,
            now=now,
            generation=row.generation,
        )
        if conditions == row.conditions:
            return False
        row.conditions = conditions
        return True

    async def _set_phase(
        self,
        session: Any,
        world: _World,
        row: Deployment,
        phase: DeploymentPhase,
        reason: str | None,
    ) -> None:
        row.phase = phase
        if reason is not None:
            row.reason = reason
        if phase in TERMINAL_PHASES:
            row.finished_at = utcnow()
        payload: dict[str, Any] = {
            "service": world.service.name,
            "release": row.to_release_id,
            "phase": phase.value,
        }
        if row.reason:
            payload["reason"] = row.reason
        decision = (row.canary or {}).get("decision")
        if phase is DeploymentPhase.ROLLED_BACK and decision:
            payload["decision"] = decision
        for stream in (project_stream(world.project.id), deployment_stream(row.id)):
            await append_event(
                session,
                stream,
                f"deployment.{phase.value}",
                entity_id=row.id,
                actor_id=ACTOR,
                payload=payload,
            )
        if phase in TERMINAL_PHASES and row.strategy is DeploymentStrategy.CANARY:
            await append_event(session, canary_stream(row.id), CANARY_ENDED, entity_id=row.id)
        if phase is DeploymentPhase.ROLLED_BACK and row.kind is DeploymentKind.DEPLOY:
            await enqueue_alerts(
                session,
                service=world.service,
                project_id=world.project.id,
                service_label=world.label,
                spec=world.live,
                event="rollback",
                title=f"deployment {row.id} rolled back",
                fields=_rollback_fields(row, decision),
            )

    async def _runtimes(
        self,
        session: Any,
        world: _World,
        plan: Plan,
        observed: dict[str, list[ReplicaObservation]],
    ) -> None:
        rows = {
            r.release_id: r
            for r in await session.scalars(
                select(Runtime).where(Runtime.service_id == world.service.id)
            )
        }
        for release_id in set(rows) | set(plan.run) | set(observed):
            if release_id not in world.releases:
                continue
            replicas: Sequence[ReplicaObservation] = observed.get(release_id, [])
            desired = plan.run.get(release_id, 0)
            row = rows.get(release_id)
            if row is None:
                if desired == 0 and not replicas:
                    continue
                row = Runtime(
                    id=new_id("runtime"),
                    service_id=world.service.id,
                    release_id=release_id,
                    replicas_desired=0,
                    replicas_ready=0,
                    status=RuntimeStatus.PENDING,
                    weight=0,
                    replicas=[],
                )
                session.add(row)
            before = (row.replicas_desired, row.replicas_ready, row.status, row.weight)
            row.replicas_desired = desired
            row.replicas_ready = ready_count(replicas)
            row.status = runtime_status(desired, replicas)
            row.weight = plan.weights.get(release_id, 0)
            row.warm_until = plan.warm_until.get(release_id) if desired and not row.weight else None
            listed = [r.as_json() for r in sorted(replicas, key=lambda r: r.index)]
            if listed != row.replicas:
                row.replicas = listed
            scaled = plan.scaled.get(release_id)
            if scaled is not None:
                row.scaled_at, row.scale_reason = utcnow(), scaled[:500]
                log.info("autoscaled %s %s: %s", world.label, release_id, scaled)
            after = (row.replicas_desired, row.replicas_ready, row.status, row.weight)
            if after != before:
                await session.flush()
                await append_event(
                    session,
                    project_stream(world.project.id),
                    "runtime.changed",
                    entity_id=row.id,
                    actor_id=ACTOR,
                    payload={
                        "service": world.service.name,
                        "release": release_id,
                        "status": row.status.value,
                        "ready": row.replicas_ready,
                        "desired": row.replicas_desired,
                        "weight": row.weight,
                        **({"scaled": scaled} if scaled is not None else {}),
                    },
                )
