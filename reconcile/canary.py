"""Canary analysis: judging a canary against the stable release over the same window, and
deciding when enough failed judgements mean abort.

Pure functions of the router's tallies (``store.metrics.Tally``), so the rules are tested
on their own and the deployment controller (issue #6) only feeds them windows:

- **Same window.** Canary and stable are read over the same sliding window, so a spike
  that hits both is not the canary's fault.
- **Percentiles, not averages.** Latency is judged on P95 from the latency histograms:
  a canary with a slow tail and a fast median is caught.
- **No data is not a failure.** Below the minimum sample (default 200 canary requests) a
  check is *inconclusive*: the canary holds its weight, is never aborted for it and never
  promoted on it. An error-rate failure also needs a minimum number of errors (default 5),
  so 1 error in 40 requests cannot abort a release.
- **Abort on a run, not a blip.** Only N consecutive failed checks (default 4) abort.
"""

from __future__ import annotations

import enum
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Final

from store.metrics import Tally

DEFAULT_INTERVAL_S: Final = 30.0
DEFAULT_WINDOW_S: Final = 120.0


@dataclass(frozen=True)
class AnalysisPolicy:
    max_error_rate: float = 0.02  # a canary answering more 5xx than this fails
    max_p95_ratio: float = 1.5  # … or with a P95 above this many times stable's
    min_requests: int = 200  # canary requests in the window before any verdict
    min_errors: int = 5  # canary 5xx in the window before an error-rate failure
    failures_to_abort: int = 4  # consecutive failed checks
    interval_s: float = DEFAULT_INTERVAL_S
    window_s: float = DEFAULT_WINDOW_S


class Verdict(enum.Enum):
    PASS = "pass"
    FAIL = "fail"
    INCONCLUSIVE = "inconclusive"


@dataclass(frozen=True)
class Side:
    """One release's traffic in the window, as a check saw it."""

    requests: int
    errors: int
    error_rate: float
    p95_ms: float | None

    @classmethod
    def of(cls, tally: Tally) -> Side:
        errors = tally.by_class["5xx"]
        rate = errors / tally.requests if tally.requests else 0.0
        return cls(tally.requests, errors, rate, tally.quantile(0.95))


@dataclass(frozen=True)
class Sample:
    """One analysis check: what ``canaryMetrics`` streams and a rollback records."""

    canary: Side
    stable: Side
    verdict: Verdict
    reason: str


def judge(canary: Tally, stable: Tally, policy: AnalysisPolicy) -> Sample:
    """The verdict on a canary from its traffic and the stable release's, in one window."""
    mine, theirs = Side.of(canary), Side.of(stable)
    if mine.requests < policy.min_requests:
        return Sample(
            mine,
            theirs,
            Verdict.INCONCLUSIVE,
            f"insufficient traffic: {mine.requests} of {policy.min_requests} canary requests "
            "in the window",
        )
    failures: list[str] = []
    if mine.error_rate > policy.max_error_rate and mine.errors >= policy.min_errors:
        failures.append(
            f"5xx rate {mine.error_rate:.1%} > {policy.max_error_rate:.1%} "
            f"({mine.errors} of {mine.requests} requests)"
        )
    if mine.p95_ms is not None and theirs.p95_ms is not None:
        limit = policy.max_p95_ratio * theirs.p95_ms
        if mine.p95_ms > limit:
            failures.append(
                f"P95 {mine.p95_ms:.0f} ms > {policy.max_p95_ratio:g}x stable's "
                f"{theirs.p95_ms:.0f} ms"
            )
    if failures:
        return Sample(mine, theirs, Verdict.FAIL, "; ".join(failures))
    latency = (
        f"P95 {mine.p95_ms:.0f} ms vs stable's {theirs.p95_ms:.0f} ms"
        if mine.p95_ms is not None and theirs.p95_ms is not None
        else "no stable traffic to compare latency with"
    )
    return Sample(
        mine,
        theirs,
        Verdict.PASS,
        f"5xx rate {mine.error_rate:.1%} ({mine.requests} requests); {latency}",
    )


def should_abort(history: Sequence[Verdict], policy: AnalysisPolicy) -> bool:
    """Whether the last ``failures_to_abort`` checks all failed (an inconclusive check in
    between breaks the run: it is no evidence either way)."""
    needed = policy.failures_to_abort
    return len(history) >= needed and all(v is Verdict.FAIL for v in history[-needed:])


def may_promote(history: Sequence[Verdict]) -> bool:
    """A step may move on only when its latest check passed: never on silence."""
    return bool(history) and history[-1] is Verdict.PASS
