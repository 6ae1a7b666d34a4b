"""Horizontal autoscaling between ``replicas.min`` and ``replicas.max``: the Kubernetes HPA's
rule, as a pure function the deployment controller applies to the serving release.

``desired = ceil(replicas measured * utilisation / target)`` for each metric the spec
targets (CPU against the ``runtime.cpu`` request, memory against ``runtime.memory``), the
largest of them, kept inside ``[min, max]``. A ratio within 10 % of the target changes
nothing, so a service hovering at its target does not flap. Scaling up happens at once;
scaling down only once the last change is older than the stabilisation window (default
300 s, ``autoscaling.hpa.scaleDownStabilizationSeconds``), so a dip in load does not
throw away replicas a returning peak needs. With no measurement (replicas just started,
or a control plane just restarted) nothing changes.

On Kubernetes the same spec becomes a HorizontalPodAutoscaler and the cluster decides; the
local data plane decides here, from what the driver measures of each replica.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Final

from store.quantity import byte_size, cpu_millicores

TOLERANCE: Final = 0.1  # as the HPA's --horizontal-pod-autoscaler-tolerance
SYNC_S: Final = 15.0  # how often a scaled service is looked at again (the HPA's sync period)
DEFAULT_STABILIZATION_S: Final = 300


@dataclass(frozen=True)
class ScalePolicy:
    minimum: int
    maximum: int
    cpu_target: int | None  # percent of the CPU request
    memory_target: int | None  # percent of the memory size
    cpu_request: float  # cores
    memory_request: int  # bytes
    stabilization_s: int

    @classmethod
    def from_spec(cls, spec: dict[str, Any]) -> ScalePolicy | None:
        """The policy of a normalised Service Spec (its ``spec`` part); None without an HPA."""
        hpa = (spec.get("autoscaling") or {}).get("hpa")
        if not hpa:
            return None
        runtime = spec.get("runtime", {})
        replicas = runtime.get("replicas", {})
        minimum = int(replicas.get("min", 1))
        maximum = replicas.get("max")
        return cls(
            minimum=minimum,
            maximum=max(minimum, int(maximum) if maximum is not None else minimum),
            cpu_target=hpa.get("cpuTargetUtilization"),
            memory_target=hpa.get("memoryTargetUtilization"),
            cpu_request=cpu_millicores(runtime.get("cpu", "500m")) / 1000,
            memory_request=byte_size(runtime.get("memory", "512Mi")),
            stabilization_s=int(hpa.get("scaleDownStabilizationSeconds", DEFAULT_STABILIZATION_S)),
        )

    def clamp(self, replicas: int) -> int:
        return min(self.maximum, max(self.minimum, replicas))


@dataclass(frozen=True)
class Usage:
    """What one ready replica uses: CPU in cores (averaged over the last interval), memory
    in bytes (resident)."""

    cpu_cores: float
    memory_bytes: int


@dataclass(frozen=True)
class Recommendation:
    replicas: int
    reason: str  # a sentence for the Scaled condition and the scale event
    changed: bool  # whether ``replicas`` differs from the current count


def recommend(
    policy: ScalePolicy,
    current: int,
    usage: Sequence[Usage],
    scaled_at: datetime | None,
    now: datetime,
) -> Recommendation:
    """How many replicas the serving release should have, from ``current`` and what its
    ready replicas use."""
    base = policy.clamp(current)
    if base != current:
        # Bounds changed (a new spec, or a release deployed at another count): obey them.
        return Recommendation(base, _bounds(policy, current, base), True)
    if not usage:
        return Recommendation(base, f"{base} replicas; no usage measured yet", False)
    proposals: list[tuple[int, str]] = []
    measured = len(usage)
    if policy.cpu_target is not None and policy.cpu_request > 0:
        used = sum(u.cpu_cores for u in usage) / measured / policy.cpu_request * 100
        proposals.append(_propose("cpu", used, policy.cpu_target, measured, base))
    if policy.memory_target is not None and policy.memory_request > 0:
        used = sum(u.memory_bytes for u in usage) / measured / policy.memory_request * 100
        proposals.append(_propose("memory", used, policy.memory_target, measured, base))
    if not proposals:
        return Recommendation(base, f"{base} replicas; nothing to scale on", False)
    wanted, why = max(proposals, key=lambda p: p[0])
    desired = policy.clamp(wanted)
    if desired > base:
        return Recommendation(desired, f"{why}: {base} → {desired} replicas", True)
    if desired < base:
        waited = (now - scaled_at).total_seconds() if scaled_at is not None else math.inf
        if waited >= policy.stabilization_s:
            return Recommendation(desired, f"{why}: {base} → {desired} replicas", True)
        left = policy.stabilization_s - waited
        return Recommendation(
            base, f"{why}: would scale down to {desired}, holding {base} for {left:.0f}s", False
        )
    return Recommendation(base, f"{why}: {base} replicas", False)


def _propose(metric: str, used: float, target: int, measured: int, base: int) -> tuple[int, str]:
    ratio = used / target
    why = f"{metric} at {used:.0f}% of its request (target {target}%)"
    if abs(ratio - 1) <= TOLERANCE:
        return base, why
    return max(1, math.ceil(measured * ratio)), why


def _bounds(policy: ScalePolicy, current: int, base: int) -> str:
    return (
        f"replicas {policy.minimum}..{policy.maximum} do not admit {current}: "
        f"{current} → {base} replicas"
    )
