"""deliveryStats: 1 project, 200 services, 5,000 deployments over 90 days.

Prints P50/P95/P99 latency of one client in a loop asking for 14 and for 90 days (with the
10 most recent rollbacks) through the ASGI app in this process, and of the counting alone
(the resolver: its SQL and nothing of GraphQL), for SQLite and PostgreSQL. In process, so
that no controller competes for the CPU (a served platform would start the seeded
services). Target: P95 <= 30 ms.

    python bench/delivery_stats.py [--backend sqlite|postgres|both] [--requests 200]
"""

from __future__ import annotations

import argparse
import asyncio
import random
import sys
import time
from collections.abc import Awaitable, Callable
from datetime import timedelta
from pathlib import Path

import httpx
from sqlalchemy import select

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench._common import database, machine, percentile, seed
from graph.app import AppState, create_app
from resolvers.bootstrap import bootstrap
from resolvers.context import Context
from resolvers.delivery import delivery_stats
from resolvers.identity.authenticate import Authenticator
from resolvers.identity.ratelimit import RateLimiter
from store.db import Store
from store.hub import EventHub
from store.ids import new_id
from store.models import (
    Deployment,
    DeploymentKind,
    DeploymentPhase,
    DeploymentStrategy,
    Release,
    utcnow,
)

SERVICES = 200
DEPLOYMENTS = 5_000
TARGET_P95_MS = 30.0
ENDINGS = [DeploymentPhase.HEALTHY] * 8 + [
    DeploymentPhase.FAILED,
    DeploymentPhase.ROLLED_BACK,
    DeploymentPhase.SUPERSEDED,
]

STATS = """
query($days: Int!) {
  deliveryStats(days: $days) {
    days { day deploys succeeded failed rolledBack }
    deploys succeeded failed rolledBack successRate
    recentRollbacks(first: 10) { id kind phase createdAt service { name } }
  }
}
"""


async def add_deployments(url: str) -> None:
    """DEPLOYMENTS deployments of the seeded releases, spread over the last 90 days."""
    rng = random.Random(7)
    now = utcnow()
    store = Store(url)
    try:
        async with store.read() as session:
            releases = (await session.execute(select(Release.id, Release.service_id))).all()
        rows = []
        for _ in range(DEPLOYMENTS):
            release_id, service_id = rng.choice(releases)
            created = now - timedelta(seconds=rng.uniform(0, 90 * 86400))
            phase = rng.choice(ENDINGS)
            rows.append(
                Deployment(
                    id=new_id("deployment"),
                    service_id=service_id,
                    to_release_id=release_id,
                    strategy=DeploymentStrategy.ROLLING,
                    kind=DeploymentKind.ROLLBACK if rng.random() < 0.05 else DeploymentKind.DEPLOY,
                    phase=phase,
                    created_by="bench",
                    created_at=created,
                    updated_at=created,
                    finished_at=min(now, created + timedelta(seconds=rng.uniform(20, 600))),
                )
            )
        async with store.write() as session:
            session.add_all(rows)
    finally:
        await store.close()


async def _timed(call: Callable[[], Awaitable[object]], requests: int) -> list[float]:
    for _ in range(20):  # warm up caches and connections
        await call()
    latencies = []
    for _ in range(requests):
        start = time.perf_counter()
        await call()
        latencies.append((time.perf_counter() - start) * 1000)
    return latencies


async def measure(url: str, token: str, days: int, requests: int) -> dict[str, list[float]]:
    store = Store(url)
    hub = EventHub(store)
    started = await bootstrap(store)
    authenticator = Authenticator(store, started.owner.account_id)
    state = AppState(store, hub, authenticator, RateLimiter(10**9, 10**9))
    payload = {"query": STATS, "variables": {"days": days}}
    try:
        async with httpx.AsyncClient(
            transport=httpx.ASGITransport(app=create_app(state)),
            base_url="http://bench",
            headers={"authorization": f"Bearer {token}"},
        ) as client:
            body = (await client.post("/graphql", json=payload)).json()
            assert "errors" not in body, body
            assert len(body["data"]["deliveryStats"]["days"]) == days

            async def over_http() -> None:
                (await client.post("/graphql", json=payload)).raise_for_status()

            ctx = Context(store=store, hub=hub, actor=started.actor)

            async def counting() -> None:
                await delivery_stats(ctx, None, days)

            return {
                "graphql": await _timed(over_http, requests),
                "sql": await _timed(counting, requests),
            }
    finally:
        await state.connections.close()
        await authenticator.close()
        await store.close()


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawTextHelpFormatter
    )
    parser.add_argument("--backend", choices=["sqlite", "postgres", "both"], default="both")
    parser.add_argument("--requests", type=int, default=200)
    args = parser.parse_args()
    backends = ["sqlite", "postgres"] if args.backend == "both" else [args.backend]
    print(f"machine: {machine()}")
    print(
        f"deliveryStats: {SERVICES} services, {DEPLOYMENTS} deployments over 90 days; "
        f"target P95 <= {TARGET_P95_MS:.0f} ms"
    )
    ok = True
    for backend in backends:
        with database(backend) as url:
            seeded = asyncio.run(seed(url, SERVICES))
            asyncio.run(add_deployments(url))
            for days in (14, 90):
                found = asyncio.run(measure(url, seeded.token, days, args.requests))
                for what, latencies in found.items():
                    p95 = percentile(latencies, 95)
                    ok = ok and (what != "graphql" or p95 <= TARGET_P95_MS)
                    verdict = "" if what == "sql" else "meets" if p95 <= TARGET_P95_MS else "MISSES"
                    print(
                        f"{backend:9} days={days:<3} {what:8} "
                        f"P50 {percentile(latencies, 50):6.1f} ms  P95 {p95:6.1f} ms  "
                        f"P99 {percentile(latencies, 99):6.1f} ms  {verdict}"
                    )
    return 0 if ok else 1


if __name__ == "__main__":
    raise SystemExit(main())
