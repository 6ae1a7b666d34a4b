"""Token-bucket rate limits per identity (product spec 7.2: 60 requests/min, burst 120).

Each key (a token, or an OIDC user) has a bucket of ``burst`` requests that refills at
``rate_per_minute``. Buckets live in the process: with several API replicas each one limits
on its own, which bounds the total at the limit times the replicas — documented, and far cheaper
than a database write per request.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Final

DEFAULT_RATE_PER_MINUTE: Final = 60
DEFAULT_BURST: Final = 120
MAX_BUCKETS: Final = 100_000


@dataclass(frozen=True, slots=True)
class Decision:
    allowed: bool
    limit: int  # the burst: requests a client may make at once
    remaining: int
    retry_after: float  # seconds until one request is allowed again (0 when allowed)
    reset_after: float  # seconds until the bucket is full again


@dataclass(slots=True)
class _Bucket:
    tokens: float
    updated: float


class RateLimiter:
    def __init__(
        self,
        rate_per_minute: float = DEFAULT_RATE_PER_MINUTE,
        burst: int = DEFAULT_BURST,
        *,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        if rate_per_minute <= 0 or burst < 1:
            raise ValueError("rate and burst must be positive")
        self.rate = rate_per_minute / 60.0  # tokens per second
        self.burst = burst
        self._clock = clock
        self._buckets: dict[str, _Bucket] = {}

    def take(self, key: str, cost: float = 1.0) -> Decision:
        now = self._clock()
        bucket = self._buckets.get(key)
        if bucket is None:
            if len(self._buckets) >= MAX_BUCKETS:
                self._evict_full(now)
            bucket = self._buckets[key] = _Bucket(float(self.burst), now)
        else:
            elapsed = max(0.0, now - bucket.updated)
            bucket.tokens = min(float(self.burst), bucket.tokens + elapsed * self.rate)
            bucket.updated = now
        if bucket.tokens >= cost:
            bucket.tokens -= cost
            allowed, retry_after = True, 0.0
        else:
            allowed, retry_after = False, (cost - bucket.tokens) / self.rate
        return Decision(
            allowed=allowed,
            limit=self.burst,
            remaining=max(0, math.floor(bucket.tokens)),
            retry_after=retry_after,
            reset_after=(self.burst - bucket.tokens) / self.rate,
        )

    def _evict_full(self, now: float) -> None:
        # Buckets that have refilled completely carry no state worth keeping.
        for key, bucket in list(self._buckets.items()):
            if bucket.tokens + (now - bucket.updated) * self.rate >= self.burst:
                del self._buckets[key]
