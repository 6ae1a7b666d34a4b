"""Rollback mutation → every response from the old release, through the router, under load.

Against a real `enclii serve` (its own router, real builds and replicas): examples/python-web
is deployed as release A, then each round deploys release B, waits until B answers every
request, and rolls back while clients keep requesting through the router. A round's figure
is the time from sending the rollback mutation to the last answer that did not come from A
(B, or an error); after it, only A answers (checked for a further second). Errors are
counted: a rollback must not drop requests. Target: ≤ 1 s.

    python bench/rollback.py [--backend sqlite|postgres] [--rounds 5] [--clients 4]
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import sys
import time
from dataclasses import dataclass, field
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
    rollback,
    until_healthy,
)

TARGET_S = 1.0
SETTLED_S = 1.0  # only A answers for this long after the switch, or the round fails
NAME = "web"


@dataclass
class Round:
    switched_s: float  # rollback sent → last answer not from A
    mutation_s: float  # rollback sent → the mutation's answer
    requests: int
    errors: int


@dataclass
class Load:
    """Clients requesting through the router without pause, recording who answered."""

    router: httpx.AsyncClient
    host: str
    answers: list[tuple[float, str | None]] = field(default_factory=list)
    running: bool = True

    async def client(self) -> None:
        while self.running:
            release = await answering(self.router, self.host)
            self.answers.append((time.perf_counter(), release))


async def until_only(router: httpx.AsyncClient, host: str, release: str, in_a_row: int) -> None:
    deadline = time.monotonic() + DEADLINE_S
    seen = 0
    while seen < in_a_row:
        seen = seen + 1 if await answering(router, host) == release else 0
        if time.monotonic() > deadline:
            raise RuntimeError(f"{release} is not answering alone at {host}")


async def one_round(
    api: httpx.AsyncClient, router: httpx.AsyncClient, service: str, a: str, b: str, clients: int
) -> Round:
    host = host_of(NAME)
    await until_healthy(api, b, await deploy(api, service, b))
    await until_only(router, host, b, in_a_row=20)

    load = Load(router, host)
    tasks = [asyncio.create_task(load.client()) for _ in range(clients)]
    await asyncio.sleep(0.2)
    sent = time.perf_counter()
    back = await rollback(api, service)
    answered = time.perf_counter()
    # Wait for the switch, then watch a while longer: A must answer alone.
    deadline = sent + DEADLINE_S
    while True:
        await asyncio.sleep(0.05)
        others = [t for t, release in load.answers if t > sent and release != a]
        last_other = max(others, default=sent)
        if time.perf_counter() - last_other >= SETTLED_S:
            break
        if time.perf_counter() > deadline:
            raise RuntimeError(f"requests still reach a release other than {a}")
    load.running = False
    await asyncio.gather(*tasks)
    await until_healthy(api, a, back)
    after = [(t, release) for t, release in load.answers if t > sent]
    return Round(
        switched_s=last_other - sent,
        mutation_s=answered - sent,
        requests=len(after),
        errors=sum(1 for _, release in after if release is None),
    )


async def run(srv: Server, token: str, rounds: int, clients: int, upload: bool) -> list[Round]:
    headers = {"authorization": f"Bearer {token}"}
    limits = httpx.Limits(max_connections=clients * 2, max_keepalive_connections=clients * 2)
    api = httpx.AsyncClient(base_url=srv.url, headers=headers, timeout=60)
    router = httpx.AsyncClient(base_url=srv.router_url, timeout=10, limits=limits)
    async with api, router:
        service = await apply_example(api, NAME)
        a = await create_release(api, service, upload)
        b = await create_release(api, service, upload)
        await until_healthy(api, a, await deploy(api, service, a))
        return [await one_round(api, router, service, a, b, clients) for _ in range(rounds)]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--backend", choices=["sqlite", "postgres"], default="sqlite")
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--clients", type=int, default=4)
    args = parser.parse_args()
    print(f"machine: {machine()}")
    with database(args.backend) as url:
        seeded = asyncio.run(seed(url, services=0))
        with server(url) as srv:
            upload = args.backend != "sqlite"
            results = asyncio.run(run(srv, seeded.token, args.rounds, args.clients, upload))
    for i, r in enumerate(results):
        print(
            f"round {i}: rollback→only the old release {r.switched_s * 1000:.0f} ms "
            f"(mutation answered in {r.mutation_s * 1000:.0f} ms; "
            f"{r.requests} requests after it, {r.errors} errors)"
        )
    median = statistics.median(r.switched_s for r in results)
    worst = max(r.switched_s for r in results)
    errors = sum(r.errors for r in results)
    verdict = "met" if worst <= TARGET_S and errors == 0 else "MISSED"
    print(
        f"{args.backend}: median {median * 1000:.0f} ms, worst {worst * 1000:.0f} ms over "
        f"{len(results)} rounds, {errors} failed requests "
        f"(target ≤ {TARGET_S * 1000:.0f} ms with none failed: {verdict})"
    )
    if verdict != "met":
        raise SystemExit(1)


if __name__ == "__main__":
    main()
