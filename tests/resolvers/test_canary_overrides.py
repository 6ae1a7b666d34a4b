"""The canary's manual overrides (resolvers/canary.py: promote, pause, abort) and what
the deploy mutation adds for canaries (resolvers/deployments.py: steps, fix and the
error-budget freeze), on SQLite and PostgreSQL.

Deployments the controller never saw are plain rows: these resolvers only write desired
state, so nothing needs to run. Every refusal is checked to leave the store as it was."""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import timedelta
from typing import Any, Final

import pytest
from sqlalchemy import func, select

from reconcile.canary_steps import CanaryPlan, CanaryState, Outcome, advance
from resolvers import canary as overrides
from resolvers.context import Actor, Context
from resolvers.deployments import deploy, rollback
from resolvers.errors import (
    Conflict,
    Forbidden,
    Frozen,
    NotFound,
    Problem,
    SpentObjective,
    ValidationFailed,
)
from resolvers.services import apply_service
from store.db import Store
from store.events import DEPLOYMENTS_STREAM, project_stream, read_events
from store.ids import new_id
from store.models import (
    AuditEvent,
    AuditOutcome,
    Base,
    Deployment,
    DeploymentKind,
    DeploymentPhase,
    DeploymentStrategy,
    Release,
    ReleaseStatus,
    Role,
    Runtime,
    RuntimeStatus,
    ServiceSpecVersion,
    SloStatus,
    utcnow,
)
from tests.factories import make_environment, make_project, service_yaml

MISSING: Final = "dep_01M8EH5K0V56WD37Z896MQ0S8X"
DENIED: Final = (
    "Forbidden: deploying, scaling, rolling back or changing services needs the developer "
    "role on project 'shop'; you are readonly."
)
EXACTLY_ONE: Final = (
    "a canary step is exactly one of setWeight: N, pause: {seconds: N} (or {}), analysis: {}"
)
# What the controller has written on a canary that took traffic: step 1 of the default plan.
STARTED: Final[dict[str, Any]] = {
    "step": 1,
    "weight": 10,
    "startedAt": "2030-01-01T12:00:00+00:00",
    "stepStartedAt": "2030-01-01T12:00:00+00:00",
    "checks": 0,
    "history": [],
    "stepPassed": False,
}


@dataclass
class World:
    ctx: Context
    store: Store
    project_id: str
    service_id: str  # "api": its spec says strategy canary
    stable: str  # serving, at 100%
    new: str  # a READY release not deployed yet

    async def release(self) -> str:
        async with self.store.write() as session:
            version = await session.scalar(
                select(ServiceSpecVersion.id)
                .where(ServiceSpecVersion.service_id == self.service_id)
                .order_by(ServiceSpecVersion.version.desc())
                .limit(1)
            )
            row = Release(
                id=new_id("release"),
                service_id=self.service_id,
                spec_version_id=version,
                image_ref=f"local/api@sha256:{'0' * 64}",
                status=ReleaseStatus.READY,
                created_by=self.ctx.actor.id,
            )
            session.add(row)
        return row.id

    async def deployment(
        self,
        strategy: DeploymentStrategy = DeploymentStrategy.CANARY,
        phase: DeploymentPhase = DeploymentPhase.DEPLOYING,
        reason: str | None = None,
        canary: dict[str, Any] | None = None,
    ) -> str:
        """A deployment of ``new`` from ``stable``, as the controller would have left it."""
        async with self.store.write() as session:
            row = Deployment(
                id=new_id("deployment"),
                service_id=self.service_id,
                from_release_id=self.stable,
                to_release_id=self.new,
                strategy=strategy,
                kind=DeploymentKind.DEPLOY,
                phase=phase,
                reason=reason,
                conditions=[],
                canary=dict(STARTED if canary is None else canary),
                created_by=self.ctx.actor.id,
                started_at=utcnow(),
                finished_at=utcnow() if reason else None,
            )
            session.add(row)
        return row.id

    async def freeze(self, frozen: bool = True, **objectives: dict[str, Any]) -> SloStatus:
        async with self.store.write() as session:
            row = SloStatus(
                service_id=self.service_id,
                computed_at=utcnow(),
                window_days=30,
                requests=100_000,
                objectives=objectives
                or {
                    "availability": {"objective": 99.9, "bad": 312, "allowed": 100.0, "spent": 3.12}
                },
                budget_spent=3.12,
                burn_rate=2.5,
                burning=False,
                frozen=frozen,
                frozen_at=utcnow() - timedelta(hours=2) if frozen else None,
                reason="availability budget spent" if frozen else None,
            )
            session.add(row)
        async with self.store.read() as session:
            stored = await session.get(SloStatus, self.service_id)
            assert stored is not None
            return stored

    def as_role(self, role: Role, project_id: str | None = None) -> Context:
        """The same store as a member with ``role`` on the account (or on one project)."""
        actor = Actor(
            id=new_id("user"),
            display="reader",
            account_id=self.ctx.actor.account_id,
            account_role=None if project_id else role,
            project_roles={project_id: role} if project_id else {},
        )
        return Context(store=self.store, hub=self.ctx.hub, actor=actor, request_id="req_other")

    async def row(self, deployment_id: str) -> Deployment:
        async with self.store.read() as session:
            found = await session.get(Deployment, deployment_id)
            assert found is not None
            return found

    async def state(self) -> dict[str, Any]:
        """Every table's row count and every deployment as it stands: what a refusal must
        leave exactly as it was."""
        async with self.store.read() as session:
            counts = {
                t.name: int(await session.scalar(select(func.count()).select_from(t)) or 0)
                for t in Base.metadata.sorted_tables
            }
            deployments = [
                (d.id, d.phase, d.canary, d.generation, d.fix, d.updated_at)
                for d in await session.scalars(select(Deployment).order_by(Deployment.id))
            ]
        return {"counts": counts, "deployments": deployments}

    async def last_audit(self) -> int:
        async with self.store.read() as session:
            return int(await session.scalar(select(func.max(AuditEvent.seq))) or 0)

    async def audit_since(self, seq: int) -> list[AuditEvent]:
        async with self.store.read() as session:
            return list(
                await session.scalars(
                    select(AuditEvent).where(AuditEvent.seq > seq).order_by(AuditEvent.seq)
                )
            )

    async def events(self, stream: str, after: int = 0) -> list[tuple[str, str | None, Any]]:
        async with self.store.read() as session:
            return [
                (e.type, e.entity_id, e.payload) for e in await read_events(session, stream, after)
            ]


@pytest.fixture
async def world(ctx: Context, store: Store) -> AsyncIterator[World]:
    project = await make_project(ctx, "shop")
    await make_environment(ctx, project, "stage")
    applied = await apply_service(
        ctx,
        service_yaml("shop", "stage", "api", extra_spec="  deploy:\n    strategy: canary\n"),
    )
    world = World(ctx, store, project.id, applied.service.id, "", "")
    world.stable = await world.release()
    world.new = await world.release()
    async with store.write() as session:
        session.add(
            Runtime(
                id=new_id("runtime"),
                service_id=world.service_id,
                release_id=world.stable,
                replicas_desired=1,
                replicas_ready=1,
                status=RuntimeStatus.RUNNING,
                weight=100,
                replicas=[],
            )
        )
    yield world


# -- promote, pause, abort ----------------------------------------------------------------------


async def test_promote_asks_for_the_next_step_and_is_audited_and_announced(world: World) -> None:
    deployment_id = await world.deployment()
    seq = await world.last_audit()
    project_events = len(await world.events(project_stream(world.project_id)))
    wakeups = len(await world.events(DEPLOYMENTS_STREAM))

    returned = await overrides.promote(world.ctx, deployment_id)
    row = await world.row(deployment_id)
    assert returned.id == deployment_id
    assert row.canary == {**STARTED, "promote": "step"}
    assert row.generation == 2  # a reconcile already under way cannot write over it
    assert row.phase is DeploymentPhase.DEPLOYING  # the controller moves it, not the API

    audit = await world.audit_since(seq)
    assert [
        (a.action, a.outcome, a.actor_id, a.entity_type, a.entity_id, a.project_id) for a in audit
    ] == [
        (
            "deployment.promote",
            AuditOutcome.SUCCEEDED,
            world.ctx.actor.id,
            "deployment",
            deployment_id,
            world.project_id,
        )
    ]
    before, after = audit[0].payload["before"], audit[0].payload["after"]
    assert (before["canary"], before["generation"]) == (STARTED, 1)
    assert (after["canary"], after["generation"]) == ({**STARTED, "promote": "step"}, 2)

    announced = (await world.events(project_stream(world.project_id)))[project_events:]
    assert announced == [
        (
            "deployment.promote",
            deployment_id,
            {
                "deployment": deployment_id,
                "action": "promote",
                "summary": f"promoted past its current step by {world.ctx.actor.display}",
            },
        )
    ]
    # The deployment controller is woken for the service.
    assert (await world.events(DEPLOYMENTS_STREAM))[wakeups:] == [
        ("deployment", world.service_id, {})
    ]


async def test_promote_in_full(world: World) -> None:
    deployment_id = await world.deployment()
    project_events = len(await world.events(project_stream(world.project_id)))
    await overrides.promote(world.ctx, deployment_id, full=True)
    assert (await world.row(deployment_id)).canary == {**STARTED, "promote": "full"}
    [(kind, _entity, payload)] = (await world.events(project_stream(world.project_id)))[
        project_events:
    ]
    assert kind == "deployment.promote"
    assert payload["summary"] == f"promoted in full by {world.ctx.actor.display}"


async def test_pause_then_promote_each_bump_the_generation(world: World) -> None:
    deployment_id = await world.deployment()
    seq = await world.last_audit()
    await overrides.pause(world.ctx, deployment_id)
    paused = await world.row(deployment_id)
    assert paused.canary == {**STARTED, "pausedBy": world.ctx.actor.display}
    assert paused.generation == 2
    await overrides.promote(world.ctx, deployment_id)
    promoted = await world.row(deployment_id)
    assert promoted.canary == {**STARTED, "promote": "step"}  # the pause is over
    assert promoted.generation == 3
    assert [a.action for a in await world.audit_since(seq)] == [
        "deployment.pause",
        "deployment.promote",
    ]


async def test_abort_records_who_and_why(world: World) -> None:
    deployment_id = await world.deployment()
    project_events = len(await world.events(project_stream(world.project_id)))
    seq = await world.last_audit()
    await overrides.abort(world.ctx, deployment_id, "p99 doubled on the dashboard")
    row = await world.row(deployment_id)
    who = world.ctx.actor.display
    assert row.canary == {
        **STARTED,
        "abortBy": who,
        "abortReason": "p99 doubled on the dashboard",
    }
    assert row.generation == 2
    assert [a.action for a in await world.audit_since(seq)] == ["deployment.abort"]
    [(kind, entity, payload)] = (await world.events(project_stream(world.project_id)))[
        project_events:
    ]
    assert (kind, entity) == ("deployment.abort", deployment_id)
    assert payload["summary"] == f"aborted by {who}: p99 doubled on the dashboard"
    # Without a reason, none is kept.
    await overrides.abort(world.ctx, deployment_id)
    assert (await world.row(deployment_id)).canary == {**STARTED, "abortBy": who}


@pytest.mark.parametrize("phase", [DeploymentPhase.QUEUED, DeploymentPhase.BUILDING])
async def test_a_canary_not_started_yet_may_be_overridden(
    world: World, phase: DeploymentPhase
) -> None:
    deployment_id = await world.deployment(phase=phase, canary={})
    await overrides.pause(world.ctx, deployment_id)
    assert (await world.row(deployment_id)).canary == {"pausedBy": world.ctx.actor.display}


async def test_a_too_long_abort_reason_changes_nothing(world: World) -> None:
    deployment_id = await world.deployment()
    before = await world.state()
    with pytest.raises(ValidationFailed) as caught:
        await overrides.abort(world.ctx, deployment_id, "x" * 501)
    assert caught.value.message == "reason is 501 characters; at most 500"
    assert await world.state() == before


OVERRIDES: Final = ["promote", "pause", "abort"]


async def _override(ctx: Context, action: str, deployment_id: str) -> Deployment:
    if action == "promote":
        return await overrides.promote(ctx, deployment_id)
    if action == "pause":
        return await overrides.pause(ctx, deployment_id)
    return await overrides.abort(ctx, deployment_id, "because")


@pytest.mark.parametrize("action", OVERRIDES)
@pytest.mark.parametrize("strategy", [DeploymentStrategy.ROLLING, DeploymentStrategy.BLUE_GREEN])
async def test_only_canary_deployments_take_overrides(
    world: World, action: str, strategy: DeploymentStrategy
) -> None:
    deployment_id = await world.deployment(strategy=strategy, canary={})
    before = await world.state()
    with pytest.raises(Conflict) as caught:
        await _override(world.ctx, action, deployment_id)
    assert caught.value.message == (
        f"deployment {deployment_id} is a {strategy.value} deployment; promote, pause and "
        "abort apply to canary deployments"
    )
    assert await world.state() == before


@pytest.mark.parametrize("action", OVERRIDES)
@pytest.mark.parametrize(
    ("phase", "reason", "said"),
    [
        (DeploymentPhase.HEALTHY, None, "healthy"),
        (DeploymentPhase.ROLLED_BACK, "aborted by ana", "rolled-back: aborted by ana"),
        (DeploymentPhase.FAILED, "0 of 2 replicas ready", "failed: 0 of 2 replicas ready"),
        (DeploymentPhase.SUPERSEDED, "replaced", "superseded: replaced"),
    ],
)
async def test_an_ended_canary_takes_no_overrides(
    world: World, action: str, phase: DeploymentPhase, reason: str | None, said: str
) -> None:
    deployment_id = await world.deployment(phase=phase, reason=reason)
    before = await world.state()
    with pytest.raises(Conflict) as caught:
        await _override(world.ctx, action, deployment_id)
    assert caught.value.message == (
        f"deployment {deployment_id} has ended ({said}); there is no canary to change"
    )
    assert await world.state() == before


@pytest.mark.parametrize("action", OVERRIDES)
async def test_a_first_canary_deploy_takes_no_overrides(world: World, action: str) -> None:
    # Nothing else serves: it is not judged against anything and goes straight to all
    # traffic, so an override would be accepted and then mean nothing.
    deployment_id = await world.deployment()
    async with world.store.write() as session:
        row = await session.get(Deployment, deployment_id)
        assert row is not None
        row.from_release_id = None
    before = await world.state()
    with pytest.raises(Conflict) as caught:
        await _override(world.ctx, action, deployment_id)
    assert caught.value.message.startswith(f"deployment {deployment_id} is a first deploy")
    assert caught.value.path == ("input", "deploymentId")
    assert await world.state() == before


@pytest.mark.parametrize("action", OVERRIDES)
async def test_an_unknown_deployment_is_not_found(world: World, action: str) -> None:
    before = await world.state()
    with pytest.raises(NotFound) as caught:
        await _override(world.ctx, action, MISSING)
    assert caught.value.message == f"Deployment {MISSING!r} not found."
    assert await world.state() == before


@pytest.mark.parametrize("action", OVERRIDES)
@pytest.mark.parametrize("on_project", [False, True], ids=["account", "project"])
async def test_a_readonly_member_may_not_override(
    world: World, action: str, on_project: bool
) -> None:
    deployment_id = await world.deployment()
    reader = world.as_role(Role.READONLY, world.project_id if on_project else None)
    before = await world.state()
    seq = await world.last_audit()
    with pytest.raises(Forbidden) as caught:
        await _override(reader, action, deployment_id)
    assert caught.value.message == DENIED
    # Nothing changed but the audit trail, which records the attempt.
    after = await world.state()
    for table in ("audit_events", "audit_chain_heads"):
        before["counts"].pop(table)
        after["counts"].pop(table)
    assert after == before
    assert [
        (a.action, a.outcome, a.actor_id, a.entity_type, a.entity_id, a.payload)
        for a in await world.audit_since(seq)
    ] == [
        (
            f"deployment.{action}",
            AuditOutcome.DENIED,
            reader.actor.id,
            "project",
            world.project_id,
            {"reason": DENIED, "permission": "deploy"},
        )
    ]


@pytest.mark.parametrize("action", OVERRIDES)
async def test_a_developer_may_override(world: World, action: str) -> None:
    deployment_id = await world.deployment()
    developer = world.as_role(Role.DEVELOPER, world.project_id)
    await _override(developer, action, deployment_id)
    assert (await world.row(deployment_id)).generation == 2


@pytest.mark.parametrize("action", OVERRIDES)
async def test_a_member_of_another_project_finds_no_deployment(world: World, action: str) -> None:
    deployment_id = await world.deployment()
    elsewhere = await make_project(world.ctx, "elsewhere")
    outsider = world.as_role(Role.OWNER, elsewhere.id)
    before = await world.state()
    with pytest.raises(NotFound) as caught:
        await _override(outsider, action, deployment_id)
    assert caught.value.message == f"Deployment {deployment_id!r} not found."
    assert await world.state() == before


async def test_override_errors_point_into_the_mutations_input(world: World) -> None:
    rolling = await world.deployment(strategy=DeploymentStrategy.ROLLING, canary={})
    canary = await world.deployment()
    with pytest.raises(NotFound) as missing:
        await overrides.promote(world.ctx, MISSING)
    with pytest.raises(Conflict) as wrong_kind:
        await overrides.pause(world.ctx, rolling)
    with pytest.raises(ValidationFailed) as too_long:
        await overrides.abort(world.ctx, canary, "x" * 501)
    assert missing.value.path == ("input", "deploymentId")
    assert wrong_kind.value.path == ("input", "deploymentId")
    assert too_long.value.path == ("input", "reason")


async def test_a_pause_after_a_pending_promote_holds_the_canary(world: World) -> None:
    deployment_id = await world.deployment()
    await overrides.promote(world.ctx, deployment_id)
    await overrides.pause(world.ctx, deployment_id)  # changed their mind
    state = CanaryState.from_json((await world.row(deployment_id)).canary)
    assert state.started_at is not None
    moved = advance(state, CanaryPlan.from_spec({}), state.started_at + timedelta(seconds=10))
    assert moved.outcome is Outcome.HOLD, moved.reason
    assert moved.state.paused_by == world.ctx.actor.display


# -- deploy: steps ---------------------------------------------------------------------------


async def test_steps_given_on_a_canary_deploy_are_recorded_normalised(world: World) -> None:
    steps: list[dict[str, Any]] = [
        {"setWeight": 20},
        {"pause": {"seconds": 60}},
        {"pause": {}},
        {"analysis": {}},
        {"setWeight": 100},
    ]
    row = await deploy(
        world.ctx, world.service_id, world.new, DeploymentStrategy.CANARY, steps=steps
    )
    stored = await world.row(row.id)
    assert (stored.strategy, stored.phase, stored.fix) == (
        DeploymentStrategy.CANARY,
        DeploymentPhase.QUEUED,
        False,
    )
    assert stored.canary == {"steps": steps}
    assert stored.from_release_id == world.stable


async def test_a_canary_deploy_without_steps_follows_the_spec(world: World) -> None:
    row = await deploy(world.ctx, world.service_id, world.new)  # the spec says canary
    stored = await world.row(row.id)
    assert (stored.strategy, stored.canary) == (DeploymentStrategy.CANARY, {})


@pytest.mark.parametrize(
    ("strategy", "steps", "problems"),
    [
        (
            DeploymentStrategy.CANARY,
            [{"setWeight": 10}, {"setWeight": 50, "pause": {"seconds": 5}}],
            [Problem(("input", "steps", "1"), EXACTLY_ONE)],
        ),
        (
            DeploymentStrategy.CANARY,
            [{"setWeight": 0}, {"pause": {"seconds": 0}}, {}, {"setWeight": 100}],
            [
                Problem(
                    ("input", "steps", "0", "setWeight"),
                    "Input should be greater than or equal to 1",
                ),
                Problem(
                    ("input", "steps", "1", "pauseSeconds"),
                    "Input should be greater than or equal to 1",
                ),
                Problem(("input", "steps", "2"), EXACTLY_ONE),
            ],
        ),
        (
            DeploymentStrategy.CANARY,
            [{"setWeight": 10}, {"analysis": {"minRequests": 5}}],
            [
                Problem(
                    ("input", "steps", "1"),
                    "analysis takes no settings here: write `analysis: {}`",
                )
            ],
        ),
        (
            DeploymentStrategy.CANARY,
            [{"setWeight": 10, "weight": 5}],
            [Problem(("input", "steps", "0", "weight"), "Extra inputs are not permitted")],
        ),
        (
            DeploymentStrategy.CANARY,
            [{"pause": {}}, {"analysis": {}}],
            [
                Problem(
                    ("input", "steps", "0"),
                    "the first canary step must be setWeight: a canary without traffic cannot "
                    "be judged, so a pause or analysis before it would never end",
                )
            ],
        ),
        (
            DeploymentStrategy.CANARY,
            [],
            [Problem(("input", "steps"), "give 1 to 30 steps, not 0")],
        ),
        (
            DeploymentStrategy.CANARY,
            [{"setWeight": 1}] * 31,
            [Problem(("input", "steps"), "give 1 to 30 steps, not 31")],
        ),
        (
            DeploymentStrategy.ROLLING,
            [{"setWeight": 10}],
            [Problem(("input", "steps"), "steps apply to the canary strategy only")],
        ),
    ],
    ids=[
        "two-kinds",
        "three-bad",
        "analysis-settings",
        "unknown-key",
        "no-weight",
        "none",
        "too-many",
        "rolling",
    ],
)
async def test_bad_steps_are_refused_with_paths_and_change_nothing(
    world: World,
    strategy: DeploymentStrategy,
    steps: list[dict[str, Any]],
    problems: list[Problem],
) -> None:
    before = await world.state()
    with pytest.raises(ValidationFailed) as caught:
        await deploy(world.ctx, world.service_id, world.new, strategy, steps=steps)
    assert caught.value.problems == problems
    more = f" (and {len(problems) - 1} more problems)" if len(problems) > 1 else ""
    assert caught.value.message == problems[0].message + more
    assert caught.value.path == problems[0].path
    assert await world.state() == before


# -- deploy: the freeze ------------------------------------------------------------------------


FROZEN_MESSAGE: Final = (
    "deploys of 'api' are frozen: its error budget over 30 days is spent (availability "
    "99.9%: 312 bad of 100 allowed (312% of the budget)); "
)


@pytest.mark.parametrize(
    ("strategy", "fix", "path", "hint"),
    [
        (
            DeploymentStrategy.ROLLING,
            False,
            ("input", "strategy"),
            "deploy a fix as a canary marked as one: enclii deploy --strategy canary --fix",
        ),
        (
            DeploymentStrategy.BLUE_GREEN,
            False,
            ("input", "strategy"),
            "deploy a fix as a canary marked as one: enclii deploy --strategy canary --fix",
        ),
        (
            DeploymentStrategy.CANARY,
            False,
            ("input", "strategy"),
            "deploy a fix as a canary marked as one: enclii deploy --strategy canary --fix",
        ),
        (
            DeploymentStrategy.ROLLING,
            True,
            ("input", "fix"),
            "a fix must use the canary strategy (--strategy canary --fix)",
        ),
        (
            DeploymentStrategy.BLUE_GREEN,
            True,
            ("input", "fix"),
            "a fix must use the canary strategy (--strategy canary --fix)",
        ),
    ],
)
async def test_a_frozen_service_refuses_deploys_with_the_numbers(
    world: World,
    strategy: DeploymentStrategy,
    fix: bool,
    path: tuple[str, ...],
    hint: str,
) -> None:
    status = await world.freeze()
    before = await world.state()
    with pytest.raises(Frozen) as caught:
        await deploy(world.ctx, world.service_id, world.new, strategy, fix=fix)
    frozen = caught.value
    assert frozen.code == "FROZEN"
    assert frozen.message == FROZEN_MESSAGE + hint
    assert frozen.path == path
    assert frozen.objectives == [
        SpentObjective(
            name="availability", objective_percent=99.9, bad=312, allowed=100.0, spent=3.12
        )
    ]
    assert (frozen.window_days, frozen.budget_spent) == (30, 3.12)
    assert frozen.frozen_since == status.frozen_at
    assert await world.state() == before


async def test_the_freeze_names_only_the_objectives_whose_budget_is_spent(world: World) -> None:
    await world.freeze(
        availability={"objective": 99.9, "bad": 312, "allowed": 100.0, "spent": 3.12},
        latency={"objective": 99.0, "bad": 50, "allowed": 1000.0, "spent": 0.05},
    )
    with pytest.raises(Frozen) as caught:
        await deploy(world.ctx, world.service_id, world.new, DeploymentStrategy.ROLLING)
    assert caught.value.message.startswith(FROZEN_MESSAGE)
    assert [o.name for o in caught.value.objectives] == ["availability", "latency"]
    assert caught.value.objectives[1] == SpentObjective("latency", 99.0, 50, 1000.0, 0.05)


@pytest.mark.parametrize("strategy", [DeploymentStrategy.CANARY, None], ids=["given", "spec"])
async def test_a_canary_marked_as_a_fix_deploys_while_frozen(
    world: World, strategy: DeploymentStrategy | None
) -> None:
    await world.freeze()
    seq = await world.last_audit()
    row = await deploy(world.ctx, world.service_id, world.new, strategy, fix=True)
    stored = await world.row(row.id)
    assert (stored.strategy, stored.fix, stored.phase) == (
        DeploymentStrategy.CANARY,
        True,
        DeploymentPhase.QUEUED,
    )
    [audit] = await world.audit_since(seq)
    assert (audit.action, audit.payload["after"]["fix"]) == ("deployment.create", True)


async def test_an_unfrozen_slo_status_refuses_nothing(world: World) -> None:
    await world.freeze(frozen=False)
    row = await deploy(world.ctx, world.service_id, world.new, DeploymentStrategy.ROLLING)
    assert (await world.row(row.id)).strategy is DeploymentStrategy.ROLLING


async def test_a_rollback_is_never_frozen(world: World) -> None:
    # "new" was deployed and took over; the budget ran out; going back must still work.
    async with world.store.write() as session:
        session.add(
            Deployment(
                id=new_id("deployment"),
                service_id=world.service_id,
                from_release_id=world.stable,
                to_release_id=world.new,
                strategy=DeploymentStrategy.ROLLING,
                phase=DeploymentPhase.HEALTHY,
                conditions=[],
                created_by=world.ctx.actor.id,
                finished_at=utcnow(),
            )
        )
        runtimes = await session.scalars(select(Runtime))
        for runtime in runtimes:
            runtime.weight, runtime.warm_until = 0, utcnow() + timedelta(minutes=5)
        session.add(
            Runtime(
                id=new_id("runtime"),
                service_id=world.service_id,
                release_id=world.new,
                replicas_desired=1,
                replicas_ready=1,
                status=RuntimeStatus.RUNNING,
                weight=100,
                replicas=[],
            )
        )
    await world.freeze()
    row = await rollback(world.ctx, world.service_id)
    stored = await world.row(row.id)
    assert (stored.kind, stored.to_release_id, stored.phase) == (
        DeploymentKind.ROLLBACK,
        world.stable,
        DeploymentPhase.QUEUED,
    )
