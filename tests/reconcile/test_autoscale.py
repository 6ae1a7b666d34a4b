"""The autoscaler's rule (reconcile/autoscale.py): the HPA's formula, its tolerance, its
bounds and its scale-down stabilisation — and the meter that feeds it real measurements."""

from __future__ import annotations

import subprocess
import sys
import time
from datetime import UTC, datetime, timedelta

from hypothesis import given
from hypothesis import strategies as st

from reconcile.autoscale import ScalePolicy, Usage, recommend
from reconcile.local.usage import UsageMeter
from store.spec.loader import load_spec

NOW = datetime(2026, 11, 27, 12, 0, tzinfo=UTC)


def policy(
    minimum: int = 1,
    maximum: int = 5,
    cpu: int | None = 50,
    memory: int | None = None,
    stabilization_s: int = 300,
) -> ScalePolicy:
    return ScalePolicy(
        minimum=minimum,
        maximum=maximum,
        cpu_target=cpu,
        memory_target=memory,
        cpu_request=0.5,
        memory_request=512 * 2**20,
        stabilization_s=stabilization_s,
    )


def cores(*values: float) -> list[Usage]:
    return [Usage(v, 100 * 2**20) for v in values]


def test_the_policy_comes_from_the_normalised_spec() -> None:
    document = load_spec(
        "apiVersion: enclii.dev/v1\n"
        "kind: Service\n"
        "metadata: {project: shop, environment: stage, name: api}\n"
        "spec:\n"
        "  runtime:\n"
        "    image: registry.local/api:1\n"
        "    cpu: 250m\n"
        "    memory: 1Gi\n"
        "    replicas: {min: 2, max: 6}\n"
        "  autoscaling:\n"
        "    hpa: {cpuTargetUtilization: 70, scaleDownStabilizationSeconds: 60}\n"
    ).normalised()["spec"]
    assert ScalePolicy.from_spec(document) == ScalePolicy(
        minimum=2,
        maximum=6,
        cpu_target=70,
        memory_target=None,
        cpu_request=0.25,
        memory_request=2**30,
        stabilization_s=60,
    )
    del document["autoscaling"]
    assert ScalePolicy.from_spec(document) is None


def test_over_the_target_it_scales_up_at_once_by_the_hpa_formula() -> None:
    # Two replicas at 0.4 cores of a 0.5 request: 80% against 50% → ceil(2 * 1.6) = 4.
    found = recommend(policy(), 2, cores(0.4, 0.4), scaled_at=NOW, now=NOW)
    assert (found.replicas, found.changed) == (4, True)
    assert found.reason == "cpu at 80% of its request (target 50%): 2 → 4 replicas"


def test_it_never_leaves_min_and_max() -> None:
    assert recommend(policy(maximum=3), 2, cores(2.0, 2.0), None, NOW).replicas == 3
    assert recommend(policy(minimum=2), 4, cores(0, 0, 0, 0), None, NOW).replicas == 2
    # Bounds that changed under a running count are obeyed at once, both ways.
    lowered = recommend(policy(maximum=2), 5, [], NOW, NOW)
    assert (lowered.replicas, lowered.changed) == (2, True)
    assert "do not admit 5" in lowered.reason
    raised = recommend(policy(minimum=3), 1, [], NOW, NOW)
    assert (raised.replicas, raised.changed) == (3, True)


def test_within_the_tolerance_nothing_changes() -> None:
    # 54% against 50% is a ratio of 1.08: inside the 10% tolerance.
    found = recommend(policy(), 3, cores(0.27, 0.27, 0.27), None, NOW)
    assert (found.replicas, found.changed) == (3, False)


def test_scaling_down_waits_out_the_stabilisation_window() -> None:
    idle = cores(0.01, 0.01, 0.01, 0.01)
    held = recommend(policy(), 4, idle, scaled_at=NOW - timedelta(seconds=100), now=NOW)
    assert (held.replicas, held.changed) == (4, False)
    assert "would scale down to 1, holding 4 for 200s" in held.reason
    done = recommend(policy(), 4, idle, scaled_at=NOW - timedelta(seconds=300), now=NOW)
    assert (done.replicas, done.changed) == (1, True)
    # Never scaled (first look after a deploy): nothing to wait for.
    assert recommend(policy(), 4, idle, scaled_at=None, now=NOW).replicas == 1


def test_without_measurements_it_keeps_what_runs() -> None:
    found = recommend(policy(), 3, [], None, NOW)
    assert (found.replicas, found.changed) == (3, False)
    assert found.reason == "3 replicas; no usage measured yet"


def test_the_hungriest_metric_wins() -> None:
    # CPU says 1 (idle), memory says 3 (300 MiB each of 512 MiB against a 20% target… ≥ 3).
    usage = [Usage(0.0, 300 * 2**20)]
    found = recommend(policy(cpu=50, memory=20, maximum=10), 1, usage, None, NOW)
    assert found.replicas == 3
    assert found.reason.startswith("memory at 59% of its request (target 20%)")


@given(
    minimum=st.integers(1, 5),
    extra=st.integers(0, 10),
    current=st.integers(0, 20),
    used=st.lists(st.floats(0, 8, allow_nan=False), max_size=12),
    age_s=st.one_of(st.none(), st.integers(0, 1000)),
)
def test_every_answer_is_within_bounds_and_down_only_after_the_window(
    minimum: int, extra: int, current: int, used: list[float], age_s: int | None
) -> None:
    rule = policy(minimum=minimum, maximum=minimum + extra)
    scaled_at = None if age_s is None else NOW - timedelta(seconds=age_s)
    found = recommend(rule, current, cores(*used), scaled_at, NOW)
    assert rule.minimum <= found.replicas <= rule.maximum
    assert found.changed == (found.replicas != current)
    in_bounds = rule.clamp(current) == current
    if in_bounds and found.replicas < current:
        assert age_s is None or age_s >= rule.stabilization_s


@given(st.lists(st.floats(0, 4, allow_nan=False), min_size=1, max_size=8), st.floats(0, 4))
def test_more_load_never_means_fewer_replicas(used: list[float], more: float) -> None:
    base = recommend(policy(maximum=50), len(used), cores(*used), None, NOW).replicas
    busier = [u + more for u in used]
    assert recommend(policy(maximum=50), len(used), cores(*busier), None, NOW).replicas >= base


BURN = "import time\nwhile True:\n    pass\n"
IDLE = "import time\nwhile True:\n    time.sleep(1)\n"


def test_the_meter_tells_a_busy_process_from_an_idle_one() -> None:
    meter = UsageMeter(min_interval_s=0.3)
    busy = subprocess.Popen([sys.executable, "-c", BURN])
    idle = subprocess.Popen([sys.executable, "-c", IDLE])
    try:
        assert meter.measure("busy", busy.pid)[0] is None  # a rate needs two looks
        assert meter.measure("idle", idle.pid)[0] is None
        time.sleep(0.6)
        busy_cores, busy_memory = meter.measure("busy", busy.pid)
        idle_cores, idle_memory = meter.measure("idle", idle.pid)
        assert busy_cores is not None and idle_cores is not None
        # On a shared machine the busy one may not get a whole core, but far more than idle.
        assert busy_cores > 0.2
        assert busy_cores > 5 * idle_cores
        assert busy_memory and idle_memory and busy_memory > 2**20
        # Within the interval the last rate is repeated rather than a noisy new one.
        assert meter.measure("busy", busy.pid)[0] == busy_cores
    finally:
        for process in (busy, idle):
            process.kill()
            process.wait()
    # A process that is gone is forgotten, not reported.
    assert meter.measure("busy", busy.pid) == (None, None)
    assert "busy" not in meter.names()


def test_a_new_pid_under_the_same_name_starts_over() -> None:
    meter = UsageMeter(min_interval_s=0.0)
    first = subprocess.Popen([sys.executable, "-c", IDLE])
    second = subprocess.Popen([sys.executable, "-c", IDLE])
    try:
        meter.measure("r", first.pid)
        assert meter.measure("r", first.pid)[0] is not None
        assert meter.measure("r", second.pid)[0] is None  # restarted: no rate across pids
    finally:
        for process in (first, second):
            process.kill()
            process.wait()


def test_no_pid_no_measurement() -> None:
    assert UsageMeter().measure("r", None) == (None, None)
