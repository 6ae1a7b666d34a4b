"""The canary API over GraphQL, on SQLite and PostgreSQL: deploy with steps and fix,
Deployment.canary, FrozenError and Service.slo, the promote, pause and abort mutations, and
the canaryMetrics subscription over real websockets in both GraphQL websocket protocols.

Deployments and analysis samples are plain rows and events, as the deployment controller
would write them: the API only reads and writes desired state."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any, Final

import pytest
from sqlalchemy import func, select

from reconcile.canary import AnalysisPolicy, judge
from reconcile.canary_steps import sample_json
from resolvers.context import Context
from resolvers.services import apply_service
from store.db import Store
from store.events import CANARY_ENDED, CANARY_SAMPLE, append_event, canary_stream
from store.ids import new_id
from store.metrics import Tally
from store.models import (
    Base,
    Deployment,
    DeploymentKind,
    DeploymentPhase,
    DeploymentStrategy,
    Release,
    ReleaseStatus,
    Runtime,
    RuntimeStatus,
    ServiceSpecVersion,
    SloStatus,
    utcnow,
)
from tests.factories import make_environment, make_project, service_yaml
from tests.helpers import DEADLINE_S, Api, GraphQLWebSocket, LiveServer, WsProtocolError

PROTOCOLS: Final = ["graphql-transport-ws", "graphql-ws"]
MISSING: Final = "dep_01M8EH5K0V56WD37Z896MQ0S8X"
T0: Final = datetime(2030, 1, 1, 12, 0, tzinfo=UTC)
SPEC_CANARY: Final = (
    "  deploy:\n"
    "    strategy: canary\n"
    "    canary:\n"
    "      analysis: {intervalSeconds: 5, windowSeconds: 20, failuresToAbort: 2}\n"
    "      keepAbortedSeconds: 60\n"
)

CANARY_FIELDS: Final = """
  step weight startedAt checks lastCheckAt pausedBy keepAbortedSeconds
  steps { setWeight pauseSeconds pauseUntilPromoted analysis }
  analysis {
    intervalSeconds windowSeconds maxErrorRatePercent maxP95Ratio minRequests minErrors
    failuresToAbort deadlineSeconds
  }
  latest { sequence at weight step verdict reason canary { requests errors errorRate p95Ms } }
  decision { reason automated sample { verdict reason } }
"""
RESULT_FIELDS: Final = """
  __typename
  ... on ValidationError { problems { path message } }
  ... on FrozenError {
    windowDays budgetSpent frozenSince
    objectives { name objectivePercent bad allowed budgetSpent }
  }
  ... on Error { message code path }
"""
DEPLOY: Final = f"""
mutation($input: DeployInput!) {{
  deploy(input: $input) {{
    ... on DeploySuccess {{ deployment {{ id strategy fix phase canary {{ {CANARY_FIELDS} }} }} }}
    {RESULT_FIELDS}
  }}
}}
"""
DEPLOYMENT: Final = f"""
query($id: ID!) {{ deployment(id: $id) {{ id strategy canary {{ {CANARY_FIELDS} }} }} }}
"""
OVERRIDE: Final = """
mutation($id: ID!) {{
  {field}(input: {{deploymentId: $id{extra}}}) {{
    ... on DeploymentOverrideSuccess {{ deployment {{ id generation phase canary {{ pausedBy }} }} }}
    __typename
    ... on Error {{ message code path }}
  }}
}}
"""
CANARY_METRICS: Final = """
subscription($id: ID!, $after: Int) {
  canaryMetrics(deploymentId: $id, after: $after) {
    sequence at weight step verdict reason
    canary { requests errors errorRate p95Ms }
    stable { requests errors errorRate p95Ms }
  }
}
"""


def traffic(requests: int, errors: int = 0) -> Tally:
    tally = Tally()
    for i in range(requests):
        tally.record(503 if i < errors else 200, 20.0)
    return tally


def sample(errors: int, at_s: int) -> dict[str, Any]:
    """A check's payload as the controller streams it."""
    checked = judge(traffic(1000, errors), traffic(9000), AnalysisPolicy())
    return sample_json(checked, 10, 1, T0 + timedelta(seconds=at_s))


def streamed(payload: dict[str, Any], sequence: int) -> dict[str, Any]:
    """What canaryMetrics sends for a sample payload."""
    return {
        "sequence": sequence,
        "at": payload["at"],
        "weight": payload["weight"],
        "step": payload["step"],
        "verdict": payload["verdict"].upper(),
        "reason": payload["reason"],
        "canary": payload["canary"],
        "stable": payload["stable"],
    }


@dataclass
class World:
    ctx: Context
    store: Store
    api: Api
    project_id: str
    service_id: str  # "api", strategy canary in its spec
    stable: str
    new: str

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
        canary: dict[str, Any] | None = None,
        phase: DeploymentPhase = DeploymentPhase.DEPLOYING,
    ) -> str:
        async with self.store.write() as session:
            row = Deployment(
                id=new_id("deployment"),
                service_id=self.service_id,
                from_release_id=self.stable,
                to_release_id=self.new,
                strategy=strategy,
                kind=DeploymentKind.DEPLOY,
                phase=phase,
                conditions=[],
                canary=canary or {},
                created_by=self.ctx.actor.id,
            )
            session.add(row)
        return row.id

    async def append(self, deployment_id: str, type: str, payload: dict[str, Any]) -> None:
        async with self.store.write() as session:
            await append_event(
                session,
                canary_stream(deployment_id),
                type,
                entity_id=deployment_id,
                payload=payload,
            )

    async def deploy(self, **given: Any) -> dict[str, Any]:
        variables = {"serviceId": self.service_id, "releaseId": self.new, **given}
        result: dict[str, Any] = (await self.api.data(DEPLOY, {"input": variables}))["deploy"]
        return result

    async def counts(self) -> dict[str, int]:
        async with self.store.read() as session:
            return {
                t.name: int(await session.scalar(select(func.count()).select_from(t)) or 0)
                for t in Base.metadata.sorted_tables
            }


@pytest.fixture
async def world(ctx: Context, store: Store, api: Api) -> AsyncIterator[World]:
    project = await make_project(ctx, "shop")
    await make_environment(ctx, project, "stage")
    applied = await apply_service(ctx, service_yaml("shop", "stage", "api", extra_spec=SPEC_CANARY))
    world = World(ctx, store, api, project.id, applied.service.id, "", "")
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


SPEC_ANALYSIS: Final = {
    "intervalSeconds": 5.0,
    "windowSeconds": 20.0,
    "maxErrorRatePercent": 2.0,
    "maxP95Ratio": 1.5,
    "minRequests": 200,
    "minErrors": 5,
    "failuresToAbort": 2,
    "deadlineSeconds": 1800,
}


def step(
    weight: int | None = None,
    seconds: int | None = None,
    until_promoted: bool = False,
    analysis: bool = False,
) -> dict[str, Any]:
    return {
        "setWeight": weight,
        "pauseSeconds": seconds,
        "pauseUntilPromoted": until_promoted,
        "analysis": analysis,
    }


# -- deploy ------------------------------------------------------------------------------------


async def test_a_canary_deploy_with_steps_shows_them_on_the_deployment(world: World) -> None:
    result = await world.deploy(
        strategy="CANARY", steps=[{"setWeight": 20}, {"pauseUntilPromoted": True}]
    )
    assert result["__typename"] == "DeploySuccess", result
    deployment = result["deployment"]
    assert (deployment["strategy"], deployment["fix"], deployment["phase"]) == (
        "CANARY",
        False,
        "QUEUED",
    )
    assert deployment["canary"] == {
        "step": 0,
        "weight": 0,
        "startedAt": None,
        "checks": 0,
        "lastCheckAt": None,
        "pausedBy": None,
        "keepAbortedSeconds": 60,
        "steps": [step(20), step(until_promoted=True)],
        "analysis": SPEC_ANALYSIS,
        "latest": None,
        "decision": None,
    }


async def test_without_steps_the_deployment_shows_the_specs(world: World) -> None:
    result = await world.deploy()
    assert result["__typename"] == "DeploySuccess", result
    canary = result["deployment"]["canary"]
    assert result["deployment"]["strategy"] == "CANARY"
    assert canary["steps"] == [step(10), step(seconds=300), step(100)]
    assert canary["analysis"] == SPEC_ANALYSIS


async def test_every_kind_of_step_round_trips(world: World) -> None:
    result = await world.deploy(
        strategy="CANARY",
        steps=[
            {"setWeight": 5},
            {"pauseSeconds": 30},
            {"analysis": True},
            {"pauseUntilPromoted": True},
            {"setWeight": 100},
        ],
    )
    assert result["deployment"]["canary"]["steps"] == [
        step(5),
        step(seconds=30),
        step(analysis=True),
        step(until_promoted=True),
        step(100),
    ]


async def test_other_strategies_have_no_canary(world: World) -> None:
    result = await world.deploy(strategy="ROLLING")
    assert (result["deployment"]["strategy"], result["deployment"]["canary"]) == (
        "ROLLING",
        None,
    )


EXACTLY_ONE: Final = (
    "a canary step is exactly one of setWeight: N, pause: {seconds: N} (or {}), analysis: {}"
)


@pytest.mark.parametrize(
    ("steps", "problems"),
    [
        ([{"setWeight": 10, "analysis": True}], [(["input", "steps", "0"], EXACTLY_ONE)]),
        (
            [{"setWeight": 10}, {"pauseSeconds": 30, "pauseUntilPromoted": True}],
            [(["input", "steps", "1"], EXACTLY_ONE)],
        ),
        ([{"setWeight": 10}, {}], [(["input", "steps", "1"], EXACTLY_ONE)]),
        (
            [{"setWeight": 10}, {"pauseUntilPromoted": False}],
            [(["input", "steps", "1"], EXACTLY_ONE)],
        ),
        (
            [{"setWeight": 101}],
            [(["input", "steps", "0", "setWeight"], "Input should be less than or equal to 100")],
        ),
        (
            [{"pauseUntilPromoted": True}],
            [
                (
                    ["input", "steps", "0"],
                    "the first canary step must be setWeight: a canary without traffic "
                    "cannot be judged, so a pause or analysis before it would never end",
                )
            ],
        ),
    ],
    ids=["weight-and-analysis", "two-pauses", "empty", "false-pause", "over-100", "pause-first"],
)
async def test_bad_steps_are_a_validation_error_and_change_nothing(
    world: World, steps: list[dict[str, Any]], problems: list[tuple[list[str], str]]
) -> None:
    before = await world.counts()
    result = await world.deploy(strategy="CANARY", steps=steps)
    assert result == {
        "__typename": "ValidationError",
        "problems": [{"path": path, "message": message} for path, message in problems],
        "message": problems[0][1],
        "code": "VALIDATION_FAILED",
        "path": problems[0][0],
    }
    assert await world.counts() == before


async def test_a_bad_pause_points_at_the_inputs_pause_seconds(world: World) -> None:
    result = await world.deploy(strategy="CANARY", steps=[{"setWeight": 5}, {"pauseSeconds": 0}])
    assert result["__typename"] == "ValidationError"
    assert result["path"] == ["input", "steps", "1", "pauseSeconds"]


# -- the freeze ------------------------------------------------------------------------------


async def test_a_frozen_service_answers_frozen_error_and_a_canary_fix_goes_out(
    world: World,
) -> None:
    frozen_at = (utcnow() - timedelta(hours=3)).replace(microsecond=0)
    async with world.store.write() as session:
        session.add(
            SloStatus(
                service_id=world.service_id,
                computed_at=utcnow(),
                window_days=30,
                requests=100_000,
                objectives={
                    "availability": {"objective": 99.9, "bad": 312, "allowed": 100.0, "spent": 3.12}
                },
                budget_spent=3.12,
                burn_rate=2.0,
                burning=False,
                frozen=True,
                frozen_at=frozen_at,
                reason="availability budget spent",
            )
        )
    before = await world.counts()
    refused = await world.deploy(strategy="ROLLING")
    frozen_since = refused.pop("frozenSince")
    assert datetime.fromisoformat(frozen_since).replace(tzinfo=UTC) == frozen_at.replace(tzinfo=UTC)
    assert refused == {
        "__typename": "FrozenError",
        "message": "deploys of 'api' are frozen: its error budget over 30 days is spent "
        "(availability 99.9%: 312 bad of 100 allowed (312% of the budget)); deploy a fix as "
        "a canary marked as one: enclii deploy --strategy canary --fix",
        "code": "FROZEN",
        "path": ["input", "strategy"],
        "windowDays": 30,
        "budgetSpent": 3.12,
        "objectives": [
            {
                "name": "availability",
                "objectivePercent": 99.9,
                "bad": 312,
                "allowed": 100.0,
                "budgetSpent": 3.12,
            }
        ],
    }
    not_a_canary = await world.deploy(strategy="ROLLING", fix=True)
    assert (not_a_canary["__typename"], not_a_canary["path"]) == ("FrozenError", ["input", "fix"])
    assert await world.counts() == before

    slo = await world.api.data(
        "query($id: ID!) { node(id: $id) { ... on Service { slo { frozen budgetSpent "
        "windowDays objectives { name bad allowed budgetSpent } } } } }",
        {"id": world.service_id},
    )
    assert slo["node"]["slo"] == {
        "frozen": True,
        "budgetSpent": 3.12,
        "windowDays": 30,
        "objectives": [{"name": "availability", "bad": 312, "allowed": 100.0, "budgetSpent": 3.12}],
    }

    fix = await world.deploy(strategy="CANARY", fix=True)
    assert fix["__typename"] == "DeploySuccess", fix
    assert (fix["deployment"]["strategy"], fix["deployment"]["fix"]) == ("CANARY", True)


# -- overrides ---------------------------------------------------------------------------------


async def _override(
    world: World, field: str, deployment_id: str, extra: str = ""
) -> dict[str, Any]:
    document = OVERRIDE.format(field=field, extra=extra)
    result: dict[str, Any] = (await world.api.data(document, {"id": deployment_id}))[field]
    return result


async def test_pause_promote_and_abort_over_graphql(world: World) -> None:
    deployment_id = await world.deployment(canary={"step": 1, "weight": 10})
    paused = await _override(world, "pauseDeployment", deployment_id)
    assert paused == {
        "__typename": "DeploymentOverrideSuccess",
        "deployment": {
            "id": deployment_id,
            "generation": 2,
            "phase": "DEPLOYING",
            "canary": {"pausedBy": "Owner (token bootstrap)"},
        },
    }
    promoted = await _override(world, "promoteDeployment", deployment_id, ", full: true")
    assert promoted["deployment"]["generation"] == 3
    assert promoted["deployment"]["canary"] == {"pausedBy": None}
    aborted = await _override(world, "abortDeployment", deployment_id, ', reason: "slow"')
    assert aborted["deployment"]["generation"] == 4
    async with world.store.read() as session:
        row = await session.get(Deployment, deployment_id)
        assert row is not None
        assert row.canary == {
            "step": 1,
            "weight": 10,
            "promote": "full",
            "abortBy": "Owner (token bootstrap)",
            "abortReason": "slow",
        }


async def test_override_errors_are_union_members(world: World) -> None:
    rolling = await world.deployment(strategy=DeploymentStrategy.ROLLING)
    missing = await _override(world, "promoteDeployment", MISSING)
    assert (missing["__typename"], missing["code"], missing["message"]) == (
        "NotFoundError",
        "NOT_FOUND",
        f"Deployment {MISSING!r} not found.",
    )
    conflict = await _override(world, "abortDeployment", rolling)
    assert (conflict["__typename"], conflict["code"]) == ("ConflictError", "CONFLICT")
    assert conflict["message"] == (
        f"deployment {rolling} is a rolling deployment; promote, pause and abort apply to "
        "canary deployments"
    )
    too_long = await _override(world, "abortDeployment", rolling, f', reason: "{"x" * 501}"')
    assert (too_long["__typename"], too_long["message"]) == (
        "ValidationError",
        "reason is 501 characters; at most 500",
    )


async def test_a_decided_canary_shows_its_latest_check_and_the_decision(world: World) -> None:
    failing = sample(errors=50, at_s=60)
    state = {
        "step": 1,
        "weight": 10,
        "startedAt": T0.isoformat(),
        "lastCheckAt": failing["at"],
        "checks": 2,
        "history": ["fail", "fail"],
        "last": failing,
        "decision": {"reason": "automated rollback", "automated": True, "sample": failing},
    }
    deployment_id = await world.deployment(canary=state, phase=DeploymentPhase.ROLLED_BACK)
    canary = (await world.api.data(DEPLOYMENT, {"id": deployment_id}))["deployment"]["canary"]
    assert (canary["step"], canary["weight"], canary["checks"]) == (1, 10, 2)
    assert datetime.fromisoformat(canary["startedAt"]) == T0
    latest = canary["latest"]
    assert (latest["sequence"], latest["verdict"], latest["weight"]) == (None, "FAIL", 10)
    assert latest["reason"] == "5xx rate 5.0% > 2.0% (50 of 1000 requests)"
    assert latest["canary"] == {"requests": 1000, "errors": 50, "errorRate": 0.05, "p95Ms": 20.171}
    assert canary["decision"] == {
        "reason": "automated rollback",
        "automated": True,
        "sample": {"verdict": "FAIL", "reason": "5xx rate 5.0% > 2.0% (50 of 1000 requests)"},
    }


# -- canaryMetrics -------------------------------------------------------------------------------


def auth(api: Api) -> dict[str, str]:
    return {"authorization": api.headers["authorization"]}


@pytest.mark.parametrize("protocol", PROTOCOLS)
async def test_canary_metrics_replays_then_streams_and_completes_when_the_canary_ends(
    world: World, live_server: LiveServer, protocol: str
) -> None:
    deployment_id = await world.deployment()
    first, second, third = sample(0, 30), sample(50, 60), sample(2, 90)
    await world.append(deployment_id, CANARY_SAMPLE, first)
    await world.append(deployment_id, CANARY_SAMPLE, second)
    async with asyncio.timeout(DEADLINE_S):
        async with GraphQLWebSocket.connect(
            live_server.ws_url, protocol, payload=auth(world.api)
        ) as ws:
            op = await ws.subscribe(CANARY_METRICS, {"id": deployment_id})
            replayed = [(await ws.next_data(op))["canaryMetrics"] for _ in range(2)]
            assert replayed == [streamed(first, 1), streamed(second, 2)]
            await world.append(deployment_id, CANARY_SAMPLE, third)
            live = (await ws.next_data(op))["canaryMetrics"]
            assert live == streamed(third, 3)
            await world.append(deployment_id, CANARY_ENDED, {})
            done = await ws.receive_type("complete")
            assert done["id"] == op


async def test_canary_metrics_after_a_cursor_and_of_an_ended_canary(
    world: World, live_server: LiveServer
) -> None:
    deployment_id = await world.deployment()
    checks = [sample(0, 30 * i) for i in range(1, 4)]
    for check in checks:
        await world.append(deployment_id, CANARY_SAMPLE, check)
    await world.append(deployment_id, CANARY_ENDED, {})
    async with asyncio.timeout(DEADLINE_S):
        async with GraphQLWebSocket.connect(live_server.ws_url, payload=auth(world.api)) as ws:
            op = await ws.subscribe(CANARY_METRICS, {"id": deployment_id, "after": 1})
            rest = [(await ws.next_data(op))["canaryMetrics"] for _ in range(2)]
            assert rest == [streamed(checks[1], 2), streamed(checks[2], 3)]
            assert (await ws.receive_type("complete"))["id"] == op


async def test_rolling_a_canary_back_ends_its_metrics_stream(
    world: World, live_server: LiveServer
) -> None:
    deployment_id = await world.deployment()
    await world.append(deployment_id, CANARY_SAMPLE, sample(0, 30))
    async with asyncio.timeout(DEADLINE_S):
        async with GraphQLWebSocket.connect(live_server.ws_url, payload=auth(world.api)) as ws:
            op = await ws.subscribe(CANARY_METRICS, {"id": deployment_id})
            assert (await ws.next_data(op))["canaryMetrics"]["sequence"] == 1
            rolled = await world.api.data(
                "mutation($s: ID!) { rollback(input: {serviceId: $s}) { __typename } }",
                {"s": world.service_id},
            )
            assert rolled == {"rollback": {"__typename": "RollbackSuccess"}}
            assert (await ws.receive_type("complete"))["id"] == op


@pytest.mark.parametrize(
    ("which", "expected"),
    [
        ("rolling", "is a rolling deployment; only canary deployments are analysed"),
        ("missing", f"Deployment {MISSING!r} not found."),
    ],
)
async def test_canary_metrics_of_what_is_not_a_canary_is_an_error(
    world: World, live_server: LiveServer, which: str, expected: str
) -> None:
    deployment_id = (
        await world.deployment(strategy=DeploymentStrategy.ROLLING)
        if which == "rolling"
        else MISSING
    )
    async with asyncio.timeout(DEADLINE_S):
        async with GraphQLWebSocket.connect(live_server.ws_url, payload=auth(world.api)) as ws:
            op = await ws.subscribe(CANARY_METRICS, {"id": deployment_id})
            with pytest.raises(WsProtocolError) as caught:
                await ws.next_data(op)
    assert expected in str(caught.value)
    assert ("CONFLICT" if which == "rolling" else "NOT_FOUND") in str(caught.value)
