"""Request metrics for tests: tallies built directly (a million requests cost nothing) and
written with the store's own functions, as the router writes them, at any time a test
chooses."""

from __future__ import annotations

from datetime import datetime

from store.db import Store
from store.metrics import Tally, add_windows, bucket_of, window_start


def traffic(
    requests: int,
    errors: int = 0,
    *,
    latency_ms: float = 20.0,
    slow: int = 0,
    slow_ms: float = 1000.0,
) -> Tally:
    """``requests`` requests, ``errors`` of them 5xx, ``slow`` of them taking ``slow_ms``
    and the rest ``latency_ms``."""
    assert 0 <= errors <= requests and 0 <= slow <= requests
    tally = Tally()
    tally.requests = requests
    tally.by_class["5xx"] = errors
    tally.by_class["2xx"] = requests - errors
    tally.latency_sum_ms = (requests - slow) * latency_ms + slow * slow_ms
    for latency, count in ((latency_ms, requests - slow), (slow_ms, slow)):
        if count:
            index = bucket_of(latency)
            tally.histogram[index] = tally.histogram.get(index, 0) + count
    return tally


async def record_traffic(
    store: Store, service_id: str, at: datetime, tally: Tally, release_id: str = "rel_a"
) -> None:
    """Add ``tally`` to the 10-second window holding ``at`` and to its hour."""
    async with store.write() as session:
        await add_windows(session, {window_start(at): {(service_id, release_id): tally}})
