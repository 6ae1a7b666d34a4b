"""Apply → first 200 through the router, for examples/python-web with a warm package cache.

Against a real `enclii serve` (its own router, real builds, real replicas): one deploy first
warms pip's cache and the interpreter's file cache, then each measured round applies the
example as a new service, creates a release from its folder (uploaded as a tarball on
PostgreSQL, as a remote client must), deploys it and requests it through the router until
the release answers. Prints every round and the median, split into apply+build and
rollout+route. Target: ≤ 5 s.

    python bench/deploy.py [--backend sqlite|postgres] [--rounds 5]
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import sys
import time
from pathlib import Path

import httpx

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench._common import Server, database, machine, seed, server
from bench._platform import (
    DEADLINE_S,
    answering,
    apply_example,
    create_release,
    deploy,
    host_of,
    states,
)

TARGET_S = 5.0


async def one_deploy(
    api: httpx.AsyncClient, router: httpx.AsyncClient, name: str, upload: bool
) -> dict[str, float]:
    host = host_of(name)
    started = time.perf_counter()
    service = await apply_example(api, name)
    release = await create_release(api, service, upload)
    deployment = await deploy(api, service, release)
    built = None
    deadline = time.perf_counter() + DEADLINE_S
    while True:
        if built is None and (await states(api, release, deployment))[0] == "READY":
            built = time.perf_counter()
        if await answering(router, host) == release:
            answered = time.perf_counter()
            break
        if time.perf_counter() > deadline:
            raise RuntimeError(f"{release} did not answer at {host} within {DEADLINE_S:.0f} s")
        await asyncio.sleep(0.01)
    built = built or answered
    return {
        "total": answered - started,
        "apply_build": built - started,
        "rollout": answered - built,
    }


async def run(srv: Server, token: str, rounds: int, upload: bool) -> list[dict[str, float]]:
    headers = {"authorization": f"Bearer {token}"}
    api = httpx.AsyncClient(base_url=srv.url, headers=headers, timeout=60)
    router = httpx.AsyncClient(base_url=srv.router_url, timeout=10)
    async with api, router:
        await one_deploy(api, router, "warmup", upload)
        return [await one_deploy(api, router, f"web-{i}", upload) for i in range(rounds)]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--backend", choices=["sqlite", "postgres"], default="sqlite")
    parser.add_argument("--rounds", type=int, default=5)
    args = parser.parse_args()
    print(f"machine: {machine()}")
    with database(args.backend) as url:
        seeded = asyncio.run(seed(url, services=0))
        with server(url) as srv:
            upload = args.backend != "sqlite"
            results = asyncio.run(run(srv, seeded.token, args.rounds, upload))
    for i, r in enumerate(results):
        print(
            f"round {i}: apply→first 200 {r['total']:.2f} s "
            f"(apply+build {r['apply_build']:.2f} s, rollout+route {r['rollout']:.2f} s)"
        )
    median = statistics.median(r["total"] for r in results)
    worst = max(r["total"] for r in results)
    verdict = "met" if median <= TARGET_S else "MISSED"
    print(
        f"{args.backend}: median {median:.2f} s, worst {worst:.2f} s over {len(results)} rounds "
        f"(target ≤ {TARGET_S:.0f} s: {verdict})"
    )
    if verdict != "met":
        raise SystemExit(1)


if __name__ == "__main__":
    main()
