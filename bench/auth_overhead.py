"""What authentication costs: requests/s of a small query with auth on versus off.

Two servers on the same database, each in its own process, differing only in the gate:
"on" is the real app (bearer token checked, rate limit counted, RateLimit headers added);
"off" replaces the gate with one that lets every request through as the Owner (a benchmark
fixture: the product has no such switch). They are measured alternately, three rounds each,
so machine noise falls on both. Target: on/off >= 0.9.

    python bench/auth_overhead.py [--backend sqlite|postgres] [--seconds 4] [--concurrency 8]
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import multiprocessing
import sys
import time
from pathlib import Path
from typing import Any

import httpx

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench._common import database, free_port, machine

TARGET_RATIO = 0.9
QUERY = {"query": "{ projects(first: 5) { totalCount nodes { slug name } } }"}


def _serve(mode: str, database_url: str, port: int, token_out: Any) -> None:
    import uvicorn
    from starlette.types import ASGIApp, Receive, Scope, Send

    from graph.app import AppState, create_app
    from graph.auth import ACTOR_KEY
    from resolvers.bootstrap import bootstrap
    from resolvers.context import Context
    from resolvers.identity.authenticate import Authenticator
    from resolvers.identity.ratelimit import RateLimiter
    from resolvers.projects import create_project
    from store.db import Store
    from store.hub import EventHub

    async def main() -> None:
        store = Store(database_url)
        hub = EventHub(store)
        await hub.start()
        started = await bootstrap(store)
        if started.token is not None:
            ctx = Context(store=store, hub=hub, actor=started.actor)
            for i in range(5):
                await create_project(ctx, f"Bench {i}", None)
            token_out.put(started.token)
        state = AppState(
            store=store,
            hub=hub,
            authenticator=Authenticator(store, started.owner.account_id),
            # Limits far above the load, so the benchmark measures their cost, not refusals.
            limiter=RateLimiter(rate_per_minute=10**9, burst=10**9),
        )
        starlette_app = create_app(state)
        app: ASGIApp = starlette_app
        if mode == "off":
            owner = started.actor
            router = starlette_app.router  # the routes, without the gate in front of them

            async def no_gate(scope: Scope, receive: Receive, send: Send) -> None:
                scope.setdefault("state", {})[ACTOR_KEY] = owner
                scope["app"] = starlette_app
                await router(scope, receive, send)

            app = no_gate
        config = uvicorn.Config(
            app, port=port, log_level="warning", access_log=False, lifespan="off"
        )
        gc.freeze()
        await uvicorn.Server(config).serve()

    asyncio.run(main())


async def _load(url: str, headers: dict[str, str], seconds: float, concurrency: int) -> float:
    done = 0
    async with httpx.AsyncClient(base_url=url, headers=headers, timeout=30) as client:
        for _ in range(20):
            (await client.post("/graphql", json=QUERY)).raise_for_status()
        stop = time.perf_counter() + seconds

        async def worker() -> None:
            nonlocal done
            while time.perf_counter() < stop:
                response = await client.post("/graphql", json=QUERY)
                response.raise_for_status()
                done += 1

        began = time.perf_counter()
        await asyncio.gather(*(worker() for _ in range(concurrency)))
        return done / (time.perf_counter() - began)


def _wait_ready(url: str) -> None:
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        try:
            if httpx.get(f"{url}/healthz", timeout=1).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.1)
    raise RuntimeError("server did not start")


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawTextHelpFormatter
    )
    parser.add_argument("--backend", choices=["sqlite", "postgres"], default="sqlite")
    parser.add_argument("--seconds", type=float, default=4.0)
    parser.add_argument("--concurrency", type=int, default=8)
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    print(f"machine: {machine()}")
    context = multiprocessing.get_context("spawn")
    with database(args.backend) as url:
        tokens: Any = context.Queue()
        servers = {}
        for mode in ("on", "off"):
            port = free_port()
            process = context.Process(target=_serve, args=(mode, url, port, tokens), daemon=True)
            process.start()
            servers[mode] = (process, f"http://127.0.0.1:{port}")
            _wait_ready(servers[mode][1])
        token = tokens.get(timeout=60)
        rates: dict[str, list[float]] = {"on": [], "off": []}
        try:
            for _ in range(args.rounds):
                for mode in ("off", "on"):
                    headers = {"authorization": f"Bearer {token}"} if mode == "on" else {}
                    rates[mode].append(
                        asyncio.run(
                            _load(servers[mode][1], headers, args.seconds, args.concurrency)
                        )
                    )
        finally:
            for process, _ in servers.values():
                process.terminate()
                process.join(10)
    on, off = sum(rates["on"]) / len(rates["on"]), sum(rates["off"]) / len(rates["off"])
    ratio = on / off
    print(
        f"{args.backend}: auth on {on:7.1f} req/s, off {off:7.1f} req/s "
        f"(rounds on {[round(r) for r in rates['on']]}, off {[round(r) for r in rates['off']]}); "
        f"ratio {ratio:.3f} {'meets' if ratio >= TARGET_RATIO else 'MISSES'} target {TARGET_RATIO}"
    )
    return 0 if ratio >= TARGET_RATIO else 1


if __name__ == "__main__":
    raise SystemExit(main())
