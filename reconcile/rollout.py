"""How a service's releases should run and share traffic, decided from what is observed.

``decide`` is a pure function of a snapshot (the newest deployment, its release, the
replicas the driver sees, the weights last routed, the clock), which is what makes the
deployment controller level-triggered: it never asks what happened, only what is, and
deciding twice from the same world gives the same plan.

Strategies:

- **rolling** (default): the new release's share of traffic follows its ready replicas —
  one of four ready, 25 %; the previous release keeps the rest until the new one is whole.
- **blue-green**: the new release gets no traffic until every replica is ready, then all of
  it at once.
- **canary**: the new release starts at full size beside the stable one (which keeps its
  replicas, so no request meets a cold start) and, once all its replicas are ready, follows
  its steps (``reconcile.canary_steps``): a weight, a pause, an analysis gate. Each check
  judges it against the stable release over the same window; failing checks abort it —
  traffic returns to the stable release at once, and the canary's replicas stay out of
  traffic for ``keepAbortedSeconds`` for debugging. A first deploy has nothing to compare
  with and goes straight to all traffic.
- **rollback**: traffic moves to the target release as soon as one of its replicas is
  ready; a release still warm from its last deploy has them all ready already, so the move
  is immediate.

A release that leaves traffic keeps running for the rollback window (``warm_until``), then
is retired. A deployment that is not healthy by its deadline fails: traffic goes back to
the release it came from and the new replicas stop.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from reconcile.autoscale import SYNC_S, ScalePolicy, Usage, recommend
from reconcile.canary import Sample
from reconcile.canary_steps import (
    CanaryPlan,
    CanaryState,
    Outcome,
    abort_now,
    advance,
    begin,
)
from reconcile.driver import ReplicaObservation
from store.models import (
    DeploymentKind,
    DeploymentPhase,
    DeploymentStrategy,
    ReleaseStatus,
    RuntimeStatus,
)

STARTING_REQUEUE_S = 1.0
BUILDING_REQUEUE_S = 5.0


@dataclass(frozen=True)
class ReleaseFacts:
    id: str
    status: ReleaseStatus
    status_reason: str | None
    runnable: bool  # built here, with files a local driver can run
    replicas: int  # replicas.min (of the service's newest spec: bounds are live)
    progress_deadline_s: int
    rollback_window_s: int
    scaling: ScalePolicy | None = None  # spec.autoscaling.hpa with replicas min..max


@dataclass(frozen=True)
class DeploymentFacts:
    id: str
    kind: DeploymentKind
    strategy: DeploymentStrategy
    phase: DeploymentPhase
    to_release: ReleaseFacts
    from_release_id: str | None
    deadline_at: datetime | None
    verified: bool
    generation: int = 1
    canary: CanaryState | None = None  # its progress, for a canary deploy
    canary_plan: CanaryPlan | None = None  # its steps and analysis policy


@dataclass(frozen=True)
class RuntimeFacts:
    release_id: str
    weight: int
    warm_until: datetime | None
    replicas: int  # replicas wanted when last decided
    scaled_at: datetime | None = None  # the autoscaler's last change


@dataclass(frozen=True)
class Snapshot:
    now: datetime
    current: DeploymentFacts | None
    runtimes: Mapping[str, RuntimeFacts]  # by release id
    observed: Mapping[str, Sequence[ReplicaObservation]]  # by release id
    releases: Mapping[str, ReleaseFacts]  # every release named above
    sample: Sample | None = None  # the canary analysis check made for this reconcile


@dataclass
class Plan:
    phase: DeploymentPhase | None = None  # the current deployment's phase, if it changes
    reason: str | None = None
    progress: str = ""  # a sentence for the Progressing condition
    needs_verification: bool = False
    start_deadline: bool = False
    run: dict[str, int] = field(default_factory=dict)  # release → replicas
    retire: set[str] = field(default_factory=set)
    weights: dict[str, int] = field(default_factory=dict)  # release → percent
    warm_until: dict[str, datetime | None] = field(default_factory=dict)
    scaled: dict[str, str] = field(default_factory=dict)  # release → why the autoscaler moved it
    canary: dict[str, Any] | None = None  # the canary's new state, to record
    sample: dict[str, Any] | None = None  # the analysis check made now, to stream
    requeue_after: float | None = None


def ready_count(observed: Sequence[ReplicaObservation]) -> int:
    return sum(1 for r in observed if r.ready)


def runtime_status(desired: int, observed: Sequence[ReplicaObservation]) -> RuntimeStatus:
    if desired == 0 and not observed:
        return RuntimeStatus.STOPPED
    if any(r.phase == "crash-loop-back-off" for r in observed):
        return RuntimeStatus.CRASH_LOOP
    ready = ready_count(observed)
    if desired > 0 and ready >= desired:
        return RuntimeStatus.RUNNING
    if ready > 0:
        return RuntimeStatus.DEGRADED
    return RuntimeStatus.STARTING if desired > 0 else RuntimeStatus.STOPPED


def _serving(snapshot: Snapshot, exclude: str) -> dict[str, int]:
    """Releases other than ``exclude`` that take traffic now, with their weights."""
    return {
        release_id: runtime.weight
        for release_id, runtime in snapshot.runtimes.items()
        if runtime.weight > 0 and release_id != exclude
    }


def _split(remaining: int, previous: Mapping[str, int]) -> dict[str, int]:
    """Share ``remaining`` percent among ``previous`` releases in proportion to their
    weights; rounding leftovers go to the largest."""
    total = sum(previous.values())
    if remaining <= 0 or total <= 0:
        return {}
    shares = {r: remaining * w // total for r, w in previous.items()}
    leftover = remaining - sum(shares.values())
    if leftover:
        biggest = max(previous, key=lambda r: (previous[r], r))
        shares[biggest] += leftover
    return {r: w for r, w in shares.items() if w > 0}


def _describe_failure(
    release: ReleaseFacts, wanted: int, observed: Sequence[ReplicaObservation], waited_s: float
) -> str:
    ready = ready_count(observed)
    lines = [
        f"{ready} of {wanted} replicas of {release.id} ready after "
        f"{waited_s:.0f}s (progressDeadlineSeconds {release.progress_deadline_s})"
    ]
    for replica in sorted(observed, key=lambda r: r.index):
        if not replica.ready and replica.message:
            lines.append(f"replica {replica.index}: {replica.message}")
    if not observed:
        lines.append("no replica started")
    return "; ".join(lines)


def decide(snapshot: Snapshot) -> Plan:
    plan = Plan()
    current = snapshot.current
    if current is None:
        # Never deployed: nothing should run. Anything observed is left over.
        plan.retire = set(snapshot.observed) | set(snapshot.runtimes)
        return plan
    target = current.to_release
    observed_target = snapshot.observed.get(target.id, [])
    previous = _serving(snapshot, exclude=target.id)
    phase = current.phase

    if phase in (DeploymentPhase.QUEUED, DeploymentPhase.BUILDING):
        if target.status in (ReleaseStatus.PENDING, ReleaseStatus.BUILDING):
            if phase is not DeploymentPhase.BUILDING:
                plan.phase = DeploymentPhase.BUILDING
            plan.progress = f"waiting for release {target.id} to be built"
            _keep_serving(plan, snapshot, previous)
            plan.requeue_after = BUILDING_REQUEUE_S
            return plan
        if target.status is ReleaseStatus.FAILED:
            return _fail(
                plan,
                snapshot,
                current,
                f"release {target.id} failed to build: {target.status_reason or 'no reason given'}",
            )
        if not target.runnable:
            return _fail(
                plan,
                snapshot,
                current,
                f"release {target.id} is a prebuilt image; the local data plane runs releases "
                "built from source (createRelease with a source). Images need the Kubernetes "
                "data plane",
            )
        if not current.verified:
            plan.needs_verification = True
        plan.phase = DeploymentPhase.DEPLOYING
        plan.start_deadline = current.deadline_at is None
        phase = DeploymentPhase.DEPLOYING

    if phase is DeploymentPhase.DEPLOYING:
        return _progress(plan, snapshot, current, observed_target, previous)
    if phase is DeploymentPhase.HEALTHY:
        wanted = _autoscale(plan, snapshot, target, observed_target)
        plan.run[target.id] = wanted
        plan.weights = {target.id: 100} if wanted > 0 else {}
        plan.progress = _complete(target)
    elif phase is DeploymentPhase.FAILED:
        _after_failure(plan, snapshot, current)
    elif phase is DeploymentPhase.ROLLED_BACK:
        _after_abort(plan, snapshot, current)
    _keep_warm(plan, snapshot)
    return plan


def _is_canary(current: DeploymentFacts, previous: Mapping[str, int]) -> bool:
    return (
        current.kind is DeploymentKind.DEPLOY
        and current.strategy is DeploymentStrategy.CANARY
        and current.canary_plan is not None
        and bool(previous)
    )


def _progress(
    plan: Plan,
    snapshot: Snapshot,
    current: DeploymentFacts,
    observed_target: Sequence[ReplicaObservation],
    previous: dict[str, int],
) -> Plan:
    target = current.to_release
    wanted = _starting_replicas(snapshot, target, previous)
    ready = min(ready_count(observed_target), wanted)
    plan.run[target.id] = wanted
    for release_id in previous:
        # The releases being replaced keep serving (and their replicas) until the end.
        plan.run[release_id] = snapshot.runtimes[release_id].replicas
    whole = ready >= wanted
    if _is_canary(current, previous) and (
        whole or _canary_started(current) or _abort_asked(current)
    ):
        return _canary(plan, snapshot, current, wanted, ready, previous)
    if current.kind is DeploymentKind.ROLLBACK:
        weight = 100 if ready > 0 or whole else 0
    elif current.strategy is DeploymentStrategy.BLUE_GREEN or _is_canary(current, previous):
        weight = 100 if whole else 0  # (a whole canary took the branch above)
    elif not previous:
        weight = 100 if ready > 0 or whole else 0  # nothing else serves: no reason to wait
    else:
        weight = 100 * ready // wanted if wanted else 100
    rest = _split(100 - weight, previous)
    plan.weights = {**({target.id: weight} if weight > 0 else {}), **rest}
    if whole and weight == 100:
        return _completed(plan, snapshot, target, wanted, previous)
    if _is_canary(current, previous):
        weight_note = "the canary starts once all are ready"
    else:
        weight_note = f"release {target.id} takes {weight}%"
    plan.progress = f"{ready} of {wanted} replicas ready; {weight_note}"
    deadline = current.deadline_at
    if deadline is not None and snapshot.now >= deadline:
        waited = target.progress_deadline_s + (snapshot.now - deadline).total_seconds()
        return _fail(
            plan, snapshot, current, _describe_failure(target, wanted, observed_target, waited)
        )
    _keep_warm(plan, snapshot)
    plan.requeue_after = STARTING_REQUEUE_S
    return plan


def _completed(
    plan: Plan,
    snapshot: Snapshot,
    target: ReleaseFacts,
    wanted: int,
    previous: Mapping[str, int],
) -> Plan:
    """All traffic on the new release: the deployment is healthy, and the releases it
    replaced stay warm for the rollback window."""
    plan.phase = DeploymentPhase.HEALTHY
    plan.progress = _complete(target)
    plan.weights = {target.id: 100}
    window = timedelta(seconds=target.rollback_window_s)
    for release_id in previous:
        plan.warm_until[release_id] = snapshot.now + window
    plan.run = {target.id: wanted}
    _keep_warm(plan, snapshot)
    return plan


def _abort_asked(current: DeploymentFacts) -> bool:
    """A person aborted the canary, maybe before its replicas were up: no need to wait."""
    return current.canary is not None and current.canary.abort_by is not None


def _canary_started(current: DeploymentFacts) -> bool:
    return current.canary is not None and current.canary.started_at is not None


def _canary(
    plan: Plan,
    snapshot: Snapshot,
    current: DeploymentFacts,
    wanted: int,
    ready: int,
    previous: dict[str, int],
) -> Plan:
    """A canary whose replicas are up: follow its steps and the analysis."""
    target = current.to_release
    assert current.canary_plan is not None
    state = begin(current.canary or CanaryState(), snapshot.now)
    moved = advance(state, current.canary_plan, snapshot.now, snapshot.sample)
    crashing = [r for r in snapshot.observed.get(target.id, []) if r.phase == "crash-loop-back-off"]
    if crashing and moved.outcome is not Outcome.ABORT:
        # A canary that keeps crashing serves nothing, so its checks would only ever be
        # inconclusive: waiting for the deadline would hide a failure that is plain now.
        replica = min(crashing, key=lambda r: r.index)
        moved = abort_now(
            moved.state,
            f"automated rollback: canary replica {replica.index} is crash-looping"
            + (f" ({replica.message})" if replica.message else ""),
        )
    plan.canary = moved.state.to_json()
    if snapshot.sample is not None:
        plan.sample = moved.state.last
    if moved.outcome is Outcome.PROMOTE:
        _completed(plan, snapshot, target, wanted, previous)
        plan.progress = f"{_complete(target)} ({moved.reason})"
        return plan
    if moved.outcome is Outcome.ABORT:
        plan.phase = DeploymentPhase.ROLLED_BACK
        plan.reason = moved.reason
        plan.progress = moved.reason
        plan.weights = _split(100, previous)
        # The failed replicas stay, out of traffic, for whoever debugs them.
        plan.warm_until[target.id] = snapshot.now + timedelta(
            seconds=current.canary_plan.keep_aborted_s
        )
        _keep_warm(plan, snapshot)
        return plan
    weight = moved.state.weight
    plan.weights = {**({target.id: weight} if weight > 0 else {}), **_split(100 - weight, previous)}
    step = min(moved.state.step, len(current.canary_plan.steps) - 1)
    plan.progress = (
        f"canary step {step + 1} of {len(current.canary_plan.steps)} "
        f"({current.canary_plan.steps[step].describe()}): {moved.reason}; "
        f"{ready} of {wanted} canary replicas ready"
    )
    _keep_warm(plan, snapshot)
    if moved.next_at is not None:
        wait = max((moved.next_at - snapshot.now).total_seconds(), 0.05)
        plan.requeue_after = wait if plan.requeue_after is None else min(plan.requeue_after, wait)
    return plan


def _starting_replicas(snapshot: Snapshot, target: ReleaseFacts, previous: dict[str, int]) -> int:
    """How many replicas a deployment brings up: ``replicas.min`` — or, for an autoscaled
    service, as many as serve now (within the new bounds), so a deploy under load does not
    drop to the minimum."""
    if target.scaling is None:
        return target.replicas
    serving = [snapshot.runtimes[r].replicas for r in previous if r in snapshot.runtimes]
    own = snapshot.runtimes.get(target.id)
    if own is not None and own.replicas:
        serving.append(own.replicas)
    return target.scaling.clamp(max(serving, default=target.replicas))


def _autoscale(
    plan: Plan,
    snapshot: Snapshot,
    target: ReleaseFacts,
    observed: Sequence[ReplicaObservation],
) -> int:
    """The serving release's replica count: ``replicas.min``, or the autoscaler's answer."""
    if target.scaling is None:
        return target.replicas
    runtime = snapshot.runtimes.get(target.id)
    current = runtime.replicas if runtime is not None and runtime.replicas else target.replicas
    usage = [
        Usage(r.cpu_cores, r.memory_bytes)
        for r in observed
        if r.ready and r.cpu_cores is not None and r.memory_bytes is not None
    ]
    scaled_at = runtime.scaled_at if runtime is not None else None
    found = recommend(target.scaling, current, usage, scaled_at, snapshot.now)
    if found.changed:
        plan.scaled[target.id] = found.reason
    plan.requeue_after = SYNC_S
    return found.replicas


def _complete(target: ReleaseFacts) -> str:
    return f"rollout complete: release {target.id} takes all traffic"


def _fail(plan: Plan, snapshot: Snapshot, current: DeploymentFacts, reason: str) -> Plan:
    plan.phase = DeploymentPhase.FAILED
    plan.reason = reason
    plan.progress = reason
    plan.needs_verification = False
    plan.start_deadline = False
    plan.run = {}
    plan.weights = {}
    _after_failure(plan, snapshot, current)
    _keep_warm(plan, snapshot)
    return plan


def _after_failure(plan: Plan, snapshot: Snapshot, current: DeploymentFacts) -> None:
    """Traffic goes back to where the deployment came from; the new release stops."""
    back = current.from_release_id
    if back is not None and back != current.to_release.id and back in snapshot.releases:
        plan.run[back] = snapshot.releases[back].replicas
        plan.weights = {back: 100}
        plan.warm_until[back] = None
    else:
        plan.weights = {}
    plan.retire.add(current.to_release.id)


def _after_abort(plan: Plan, snapshot: Snapshot, current: DeploymentFacts) -> None:
    """An aborted canary: traffic back on the release it came from, at the size it ran;
    the canary's replicas run out of traffic until their debugging window closes."""
    back = current.from_release_id
    if back is None or back == current.to_release.id or back not in snapshot.releases:
        _after_failure(plan, snapshot, current)
        return
    runtime = snapshot.runtimes.get(back)
    plan.run[back] = (
        runtime.replicas if runtime and runtime.replicas else (snapshot.releases[back].replicas)
    )
    plan.weights = {back: 100}
    plan.warm_until[back] = None


def _keep_serving(plan: Plan, snapshot: Snapshot, previous: dict[str, int]) -> None:
    for release_id in previous:
        plan.run[release_id] = snapshot.runtimes[release_id].replicas
    plan.weights = dict(previous)
    _keep_warm(plan, snapshot)


def _keep_warm(plan: Plan, snapshot: Snapshot) -> None:
    """Releases out of traffic run until their window closes; everything else observed
    that no one wants is retired."""
    requeue: float | None = None
    for release_id, runtime in snapshot.runtimes.items():
        if release_id in plan.run or release_id in plan.weights:
            continue
        until = plan.warm_until.get(release_id, runtime.warm_until)
        if until is not None and until > snapshot.now:
            plan.run[release_id] = runtime.replicas
            plan.warm_until.setdefault(release_id, until)
            left = (until - snapshot.now).total_seconds()
            requeue = left if requeue is None else min(requeue, left)
        else:
            plan.retire.add(release_id)
    for release_id in snapshot.observed:
        if release_id not in plan.run:
            plan.retire.add(release_id)
    plan.retire -= set(plan.run)
    if requeue is not None:
        plan.requeue_after = (
            requeue if plan.requeue_after is None else min(plan.requeue_after, requeue)
        )
