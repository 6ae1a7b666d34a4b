"""``reconcile.rollout.decide`` for canary deployments: pure decisions from snapshots on a
clock the tests move by hand.

A ``Rollout`` plays the deployment controller around ``decide``: it builds each snapshot
from what the last plan left (runtimes with their weights, replica counts and warm
windows, the deployment's phase and canary state, as JSON), makes an analysis check when
one is due, and applies the plan the way the controller writes it back."""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any, Final

import pytest

from reconcile.canary import AnalysisPolicy, Sample, judge
from reconcile.canary_steps import CanaryPlan, CanaryState, check_due
from reconcile.driver import ReplicaObservation
from reconcile.rollout import (
    STARTING_REQUEUE_S,
    DeploymentFacts,
    Plan,
    ReleaseFacts,
    RuntimeFacts,
    Snapshot,
    decide,
)
from store.metrics import Tally
from store.models import DeploymentKind, DeploymentPhase, DeploymentStrategy, ReleaseStatus

T0: Final = datetime(2030, 1, 1, 12, 0, tzinfo=UTC)
STABLE: Final = "rel_stable"
CANARY: Final = "rel_canary"
STABLE_REPLICAS: Final = 3  # what the stable release runs now (its spec says 2)
CANARY_REPLICAS: Final = 2
ROLLBACK_WINDOW_S: Final = 900
KEEP_ABORTED_S: Final = 120


def traffic(requests: int, errors: int = 0) -> Tally:
    tally = Tally()
    for i in range(requests):
        tally.record(503 if i < errors else 200, 20.0)
    return tally


HEALTHY: Final = judge(traffic(1000), traffic(9000), AnalysisPolicy())
FAILING: Final = judge(traffic(1000, errors=50), traffic(9000), AnalysisPolicy())


def release(release_id: str, replicas: int) -> ReleaseFacts:
    return ReleaseFacts(
        id=release_id,
        status=ReleaseStatus.READY,
        status_reason=None,
        runnable=True,
        replicas=replicas,
        progress_deadline_s=300,
        rollback_window_s=ROLLBACK_WINDOW_S,
    )


CRASHING: Final = "exited with status 3; restarting in 4s"


def replicas(
    release_id: str, ready: int, total: int, crashing: int = 0
) -> list[ReplicaObservation]:
    """``total`` replicas: the first ``ready`` ready, the last ``crashing`` crash-looping,
    the rest starting."""
    observed = []
    for i in range(total):
        crash = i >= total - crashing
        observed.append(
            ReplicaObservation(
                name=f"{release_id}-{i}",
                index=i,
                phase="crash-loop-back-off" if crash else "running" if i < ready else "starting",
                ready=i < ready and not crash,
                restarts=5 if crash else 0,
                pid=None,
                address=None,
                message=CRASHING if crash else "" if i < ready else "waiting for readiness",
                last_exit=3 if crash else None,
            )
        )
    return observed


def canary_plan(steps: Sequence[Mapping[str, Any]] | None = None) -> CanaryPlan:
    canary: dict[str, Any] = {"keepAbortedSeconds": KEEP_ABORTED_S}
    if steps is not None:
        canary["steps"] = list(steps)
    return CanaryPlan.from_spec(canary)


@dataclass
class Rollout:
    """A canary deployment of CANARY replacing STABLE (unless ``first``), and what runs."""

    plan_: CanaryPlan = field(default_factory=canary_plan)
    first: bool = False  # nothing serves yet
    now: datetime = T0
    phase: DeploymentPhase = DeploymentPhase.DEPLOYING
    deadline_at: datetime | None = T0 + timedelta(seconds=300)
    canary: dict[str, Any] = field(default_factory=dict)  # Deployment.canary, as stored
    runtimes: dict[str, RuntimeFacts] = field(default_factory=dict)
    ready: dict[str, int] = field(default_factory=dict)  # release → replicas ready
    crashing: dict[str, int] = field(default_factory=dict)  # release → replicas crash-looping
    plans: list[Plan] = field(default_factory=list)

    def __post_init__(self) -> None:
        if not self.first:
            self.runtimes[STABLE] = RuntimeFacts(STABLE, 100, None, STABLE_REPLICAS)
            self.ready[STABLE] = STABLE_REPLICAS

    def at(self, seconds: float) -> None:
        moved = T0 + timedelta(seconds=seconds)
        assert moved >= self.now
        self.now = moved

    def facts(self) -> DeploymentFacts:
        return DeploymentFacts(
            id="dep_canary",
            kind=DeploymentKind.DEPLOY,
            strategy=DeploymentStrategy.CANARY,
            phase=self.phase,
            to_release=release(CANARY, CANARY_REPLICAS),
            from_release_id=None if self.first else STABLE,
            deadline_at=self.deadline_at,
            verified=True,
            canary=CanaryState.from_json(self.canary),
            canary_plan=self.plan_,
        )

    def snapshot(self, sample: Sample | None = None) -> Snapshot:
        current = self.facts()
        releases = {CANARY: current.to_release}
        if not self.first:
            releases[STABLE] = release(STABLE, 2)
        observed = {
            release_id: replicas(
                release_id,
                ready,
                self._total(release_id, ready),
                self.crashing.get(release_id, 0),
            )
            for release_id, ready in self.ready.items()
        }
        return Snapshot(self.now, current, dict(self.runtimes), observed, releases, sample)

    def _total(self, release_id: str, ready: int) -> int:
        runtime = self.runtimes.get(release_id)
        wanted = runtime.replicas if runtime is not None else 0
        return max(wanted, ready, CANARY_REPLICAS if release_id == CANARY else 0)

    def decide(self, sample: Sample | None = None) -> Plan:
        plan = decide(self.snapshot(sample))
        self.apply(plan)
        return plan

    def check_due(self) -> bool:
        current = self.facts()
        assert current.canary is not None and current.canary_plan is not None
        return self.phase is DeploymentPhase.DEPLOYING and check_due(
            current.canary, current.canary_plan, self.now
        )

    def apply(self, plan: Plan) -> None:
        """Write the plan back as the controller does: runtimes, phase, canary state."""
        self.plans.append(plan)
        for release_id in set(self.runtimes) | set(plan.run):
            desired = plan.run.get(release_id, 0)
            if release_id not in self.runtimes and desired == 0:
                continue
            weight = plan.weights.get(release_id, 0)
            warm = plan.warm_until.get(release_id) if desired and not weight else None
            self.runtimes[release_id] = RuntimeFacts(release_id, weight, warm, desired)
        for release_id in plan.retire:
            self.ready.pop(release_id, None)
        if plan.phase is not None:
            self.phase = plan.phase
        if plan.canary is not None:
            self.canary = json.loads(json.dumps(plan.canary))

    def weights(self) -> dict[str, int]:
        return {r: rt.weight for r, rt in self.runtimes.items() if rt.weight}

    def run_checks(self, sample: Sample, until_s: float, every_s: float = 10) -> Plan:
        """Reconcile every ``every_s`` seconds, with an analysis check when one is due,
        until the deployment leaves DEPLOYING (or ``until_s``)."""
        seconds = (self.now - T0).total_seconds()
        plan = self.plans[-1]
        while self.phase is DeploymentPhase.DEPLOYING and seconds < until_s:
            seconds += every_s
            self.at(seconds)
            plan = self.decide(sample if self.check_due() else None)
            if self.phase is DeploymentPhase.DEPLOYING:
                # Stable keeps its replicas, whatever the canary's weight.
                assert plan.run[STABLE] == STABLE_REPLICAS
        return plan


# -- before the canary is whole ----------------------------------------------------------------


@pytest.mark.parametrize("ready", [0, 1])
def test_until_its_replicas_are_all_ready_the_canary_takes_no_traffic(ready: int) -> None:
    rollout = Rollout()
    rollout.ready[CANARY] = ready
    plan = rollout.decide()
    assert plan.weights == {STABLE: 100}
    assert plan.run == {CANARY: CANARY_REPLICAS, STABLE: STABLE_REPLICAS}
    assert plan.phase is None
    assert plan.canary is None  # not started: no step taken
    assert plan.retire == set()
    assert plan.progress == (
        f"{ready} of {CANARY_REPLICAS} replicas ready; the canary starts once all are ready"
    )
    assert plan.requeue_after == STARTING_REQUEUE_S


# -- following the steps -------------------------------------------------------------------------


def test_once_whole_the_canary_takes_its_first_steps_weight() -> None:
    rollout = Rollout()
    rollout.ready[CANARY] = CANARY_REPLICAS
    plan = rollout.decide()
    assert plan.weights == {CANARY: 10, STABLE: 90}
    assert plan.run == {CANARY: CANARY_REPLICAS, STABLE: STABLE_REPLICAS}
    assert plan.phase is None
    assert plan.start_deadline is False
    assert plan.canary is not None
    assert (plan.canary["step"], plan.canary["weight"]) == (1, 10)
    assert plan.canary["startedAt"] == T0.isoformat()
    assert plan.sample is None  # no check made yet
    assert plan.progress == (
        "canary step 2 of 3 (pause 300s): at 10% for 300s more; 2 of 2 canary replicas ready"
    )
    assert plan.requeue_after == 30  # the first check


def test_the_weights_follow_each_step_and_stable_keeps_its_replicas() -> None:
    steps: list[dict[str, Any]] = [
        {"setWeight": 20},
        {"pause": {}},
        {"setWeight": 50},
        {"pause": {}},
        {"setWeight": 100},
    ]
    rollout = Rollout(plan_=canary_plan(steps))
    rollout.ready[CANARY] = CANARY_REPLICAS
    first = rollout.decide()
    assert (first.weights, first.run) == ({CANARY: 20, STABLE: 80}, {CANARY: 2, STABLE: 3})
    held = rollout.run_checks(HEALTHY, until_s=60)
    assert (held.weights, held.run) == ({CANARY: 20, STABLE: 80}, {CANARY: 2, STABLE: 3})

    rollout.canary["promote"] = "step"  # what promoteDeployment writes
    rollout.at(61)
    second = rollout.decide()
    assert (second.weights, second.run) == ({CANARY: 50, STABLE: 50}, {CANARY: 2, STABLE: 3})
    assert second.progress.startswith("canary step 4 of 5 (pause until promoted): ")
    held = rollout.run_checks(HEALTHY, until_s=120)
    assert (held.weights, held.run) == ({CANARY: 50, STABLE: 50}, {CANARY: 2, STABLE: 3})

    rollout.canary["promote"] = "step"
    rollout.at(125)
    done = rollout.decide()
    assert done.phase is DeploymentPhase.HEALTHY
    assert done.weights == {CANARY: 100}
    assert done.run == {CANARY: 2, STABLE: 3}  # stable warm for a rollback
    assert rollout.weights() == {CANARY: 100}


def test_each_check_made_is_recorded_and_streamed() -> None:
    rollout = Rollout()
    rollout.ready[CANARY] = CANARY_REPLICAS
    rollout.decide()
    rollout.at(30)
    assert rollout.check_due()
    plan = rollout.decide(HEALTHY)
    assert plan.sample is not None and plan.canary is not None
    assert plan.sample == plan.canary["last"]
    assert (plan.sample["verdict"], plan.sample["weight"], plan.sample["at"]) == (
        "pass",
        10,
        rollout.now.isoformat(),
    )
    assert plan.canary["checks"] == 1
    rollout.at(40)
    assert rollout.decide().sample is None  # no check this time: nothing to stream


def test_a_healthy_canary_is_promoted_and_stable_stays_warm_for_the_rollback_window() -> None:
    rollout = Rollout()
    rollout.ready[CANARY] = CANARY_REPLICAS
    rollout.decide()
    plan = rollout.run_checks(HEALTHY, until_s=3600)
    assert rollout.now == T0 + timedelta(seconds=300)
    assert plan.phase is DeploymentPhase.HEALTHY
    assert plan.progress == (
        f"rollout complete: release {CANARY} takes all traffic (every canary step passed)"
    )
    assert plan.weights == {CANARY: 100}
    assert plan.run == {CANARY: CANARY_REPLICAS, STABLE: STABLE_REPLICAS}
    assert plan.warm_until == {STABLE: rollout.now + timedelta(seconds=ROLLBACK_WINDOW_S)}
    assert plan.canary is not None and plan.canary["weight"] == 100
    # Stable served 90% at full size until the end.
    assert {(p.weights[STABLE], p.run[STABLE]) for p in rollout.plans[:-1]} == {
        (90, STABLE_REPLICAS)
    }


# -- abort -------------------------------------------------------------------------------------


def test_a_failing_canary_is_rolled_back_and_kept_out_of_traffic_for_debugging() -> None:
    rollout = Rollout()
    rollout.ready[CANARY] = CANARY_REPLICAS
    rollout.decide()
    plan = rollout.run_checks(FAILING, until_s=3600)
    aborted_at = rollout.now
    assert aborted_at == T0 + timedelta(seconds=120)  # the fourth failed check
    assert plan.phase is DeploymentPhase.ROLLED_BACK
    assert plan.reason == (
        "automated rollback after 4 failed analysis checks in a row: 5xx rate 5.0% > 2.0% "
        "(50 of 1000 requests)"
    )
    assert plan.progress == plan.reason
    assert plan.weights == {STABLE: 100}
    # The canary keeps running, out of traffic; stable never lost a replica.
    assert plan.run == {CANARY: CANARY_REPLICAS, STABLE: STABLE_REPLICAS}
    assert plan.retire == set()
    assert plan.warm_until[CANARY] == aborted_at + timedelta(seconds=KEEP_ABORTED_S)
    assert plan.canary is not None
    assert plan.canary["decision"]["automated"] is True
    assert plan.canary["decision"]["sample"]["verdict"] == "fail"

    # Later reconciles of the rolled-back deployment: stable serves alone at its size, the
    # canary runs until its debugging window closes, then it is retired.
    rollout.at(120 + 60)
    later = rollout.decide()
    assert later.phase is None
    assert later.weights == {STABLE: 100}
    assert later.run == {STABLE: STABLE_REPLICAS, CANARY: CANARY_REPLICAS}
    assert later.retire == set()
    assert later.warm_until[CANARY] == aborted_at + timedelta(seconds=KEEP_ABORTED_S)
    assert later.requeue_after == KEEP_ABORTED_S - 60
    rollout.at(120 + KEEP_ABORTED_S)
    closed = rollout.decide()
    assert closed.weights == {STABLE: 100}
    assert closed.run == {STABLE: STABLE_REPLICAS}
    assert closed.retire == {CANARY}
    rollout.at(120 + KEEP_ABORTED_S + 60)
    assert rollout.decide().run == {STABLE: STABLE_REPLICAS}


def test_an_abort_by_a_person_rolls_back_at_the_next_decision() -> None:
    rollout = Rollout()
    rollout.ready[CANARY] = CANARY_REPLICAS
    rollout.decide()
    rollout.canary.update(abortBy="ana", abortReason="wrong config")  # what abortDeployment writes
    rollout.at(5)
    plan = rollout.decide()
    assert plan.phase is DeploymentPhase.ROLLED_BACK
    assert plan.reason == "aborted by ana: wrong config"
    assert plan.weights == {STABLE: 100}
    assert plan.run == {CANARY: CANARY_REPLICAS, STABLE: STABLE_REPLICAS}
    assert plan.warm_until[CANARY] == rollout.now + timedelta(seconds=KEEP_ABORTED_S)
    assert plan.canary is not None and plan.canary["decision"]["automated"] is False


def test_a_crash_looping_canary_is_rolled_back_at_once() -> None:
    rollout = Rollout()
    rollout.ready[CANARY] = CANARY_REPLICAS
    rollout.decide()
    rollout.run_checks(HEALTHY, until_s=60)
    rollout.crashing[CANARY] = 1  # its second replica keeps crashing: it serves nothing
    rollout.at(65)
    plan = rollout.decide()
    reason = f"automated rollback: canary replica 1 is crash-looping ({CRASHING})"
    assert plan.phase is DeploymentPhase.ROLLED_BACK
    assert (plan.reason, plan.progress) == (reason, reason)
    assert plan.weights == {STABLE: 100}
    assert plan.run == {CANARY: CANARY_REPLICAS, STABLE: STABLE_REPLICAS}
    assert plan.warm_until[CANARY] == rollout.now + timedelta(seconds=KEEP_ABORTED_S)
    assert plan.canary is not None
    assert plan.canary["decision"]["reason"] == reason
    assert plan.canary["decision"]["automated"] is True


def test_a_person_aborting_a_crash_looping_canary_is_the_reason_recorded() -> None:
    rollout = Rollout()
    rollout.ready[CANARY] = CANARY_REPLICAS
    rollout.decide()
    rollout.crashing[CANARY] = 1
    rollout.canary.update(abortBy="ana")
    rollout.at(5)
    plan = rollout.decide()
    assert (plan.phase, plan.reason) == (DeploymentPhase.ROLLED_BACK, "aborted by ana")
    assert plan.canary is not None and plan.canary["decision"]["automated"] is False


# -- a first deploy ------------------------------------------------------------------------------


def test_a_first_canary_deploy_has_nothing_to_compare_with_and_goes_straight_to_all() -> None:
    rollout = Rollout(first=True)
    rollout.ready[CANARY] = 1
    partly = rollout.decide()
    assert partly.weights == {CANARY: 100}  # nothing else serves: no reason to wait
    assert partly.phase is None
    rollout.ready[CANARY] = CANARY_REPLICAS
    rollout.at(5)
    plan = rollout.decide()
    assert plan.phase is DeploymentPhase.HEALTHY
    assert plan.weights == {CANARY: 100}
    assert plan.run == {CANARY: CANARY_REPLICAS}
    assert plan.canary is None  # no steps were taken
    assert plan.progress == f"rollout complete: release {CANARY} takes all traffic"


# -- bugs ------------------------------------------------------------------------------------


def test_an_abort_before_the_canary_is_whole_rolls_back_at_once() -> None:
    rollout = Rollout()
    rollout.ready[CANARY] = 1
    rollout.decide()
    rollout.canary.update(abortBy="ana")
    rollout.at(5)
    plan = rollout.decide()
    assert plan.phase is DeploymentPhase.ROLLED_BACK
    assert plan.reason == "aborted by ana"
    assert plan.weights == {STABLE: 100}


def test_a_first_canary_deploy_is_not_steered_by_its_canary_state() -> None:
    # With nothing to compare it with, a first deploy goes straight to all traffic; the
    # API refuses overrides of it (tests/resolvers/test_canary_overrides.py), so its
    # canary state is never consulted.
    rollout = Rollout(first=True)
    rollout.canary.update(abortBy="ana")
    rollout.ready[CANARY] = CANARY_REPLICAS
    plan = rollout.decide()
    assert plan.phase is DeploymentPhase.HEALTHY
    assert plan.weights == {CANARY: 100}


def test_a_crash_looping_canary_is_never_promoted() -> None:
    rollout = Rollout()
    rollout.ready[CANARY] = CANARY_REPLICAS
    rollout.decide()
    rollout.run_checks(HEALTHY, until_s=290)  # the latest check, at 270 s, passed
    rollout.crashing[CANARY] = 1
    rollout.at(300)  # the pause is over
    plan = rollout.decide()
    assert plan.phase is DeploymentPhase.ROLLED_BACK, plan.progress
    assert plan.weights == {STABLE: 100}


def test_a_canary_whole_at_its_first_reconcile_still_records_its_start() -> None:
    rollout = Rollout(phase=DeploymentPhase.QUEUED, deadline_at=None)
    rollout.ready[CANARY] = CANARY_REPLICAS  # still warm from an earlier deploy
    plan = rollout.decide()
    assert plan.phase is DeploymentPhase.DEPLOYING
    assert plan.weights == {CANARY: 10, STABLE: 90}
    assert plan.start_deadline is True
