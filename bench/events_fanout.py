"""One event to 1,000 websocket subscribers of `events(projectId)`.

Opens 1,000 graphql-transport-ws connections to a real `enclii serve`, each subscribed to the
same project's events, then:
  1. latency: writes one event at a time (a mutation) and measures, for every subscriber,
     the time from the event's commit-side timestamp (createdAt) to its arrival: P50/P95/max
     over all deliveries, and the time until the last subscriber has it;
  2. throughput: writes events back to back and measures events/s delivered to all.
Target: P95 <= 250 ms for one event to all 1,000 subscribers.

    python bench/events_fanout.py [--backend sqlite|postgres|both] [--subscribers 1000]
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import json
import math
import sys
import time
from datetime import datetime
from pathlib import Path

import httpx
from websockets.asyncio.client import ClientConnection, connect

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench._common import database, machine, percentile, seed, server

TARGET_P95_MS = 250.0
SUBSCRIBERS_PER_TOKEN = 100
SUBSCRIPTION = "subscription($p: ID!, $a: Int) { events(projectId: $p, after: $a) { sequence type createdAt } }"
UPDATE = (
    "mutation($id: ID!, $n: String!) { updateProject(input: {id: $id, name: $n}) { __typename } }"
)
DEADLINE_S = 60.0


class Subscriber:
    def __init__(self, conn: ClientConnection) -> None:
        self.conn = conn
        self.arrivals: dict[int, tuple[float, float]] = {}  # seq -> (sent, received) epoch s
        self.got = asyncio.Condition()

    async def run(self) -> None:
        async for raw in self.conn:
            received = time.time()
            message = json.loads(raw)
            if message.get("type") != "next":
                continue
            event = message["payload"]["data"]["events"]
            sent = datetime.fromisoformat(event["createdAt"]).timestamp()
            async with self.got:
                self.arrivals[event["sequence"]] = (sent, received)
                self.got.notify_all()

    async def wait_for(self, seq: int) -> None:
        async with self.got:
            await self.got.wait_for(lambda: seq in self.arrivals)


async def create_token(client: httpx.AsyncClient, name: str) -> str:
    body = (
        await client.post(
            "/graphql",
            json={
                "query": "mutation($n: String!) { createToken(input: {name: $n, "
                'scopes: ["logs:read"]}) { ... on CreateTokenSuccess { secret } } }',
                "variables": {"n": name},
            },
        )
    ).json()
    return str(body["data"]["createToken"]["secret"])


async def open_subscriber(url: str, project_id: str, after: int, token: str) -> Subscriber:
    conn = await connect(
        url,
        subprotocols=["graphql-transport-ws"],
        open_timeout=DEADLINE_S,  # type: ignore[list-item]
        max_queue=None,
        ping_interval=None,
    )
    await conn.send(
        json.dumps({"type": "connection_init", "payload": {"authorization": f"Bearer {token}"}})
    )
    ack = json.loads(await asyncio.wait_for(conn.recv(), DEADLINE_S))
    assert ack["type"] == "connection_ack", ack
    await conn.send(
        json.dumps(
            {
                "id": "1",
                "type": "subscribe",
                "payload": {"query": SUBSCRIPTION, "variables": {"p": project_id, "a": after}},
            }
        )
    )
    return Subscriber(conn)


async def run(
    url: str,
    ws_url: str,
    project_id: str,
    token: str,
    subscribers: int,
    events: int,
    burst: int,
) -> dict[str, float]:
    headers = {"authorization": f"Bearer {token}"}
    async with httpx.AsyncClient(base_url=url, headers=headers, timeout=DEADLINE_S) as client:

        async def head() -> int:
            body = (
                await client.post(
                    "/graphql",
                    json={
                        "query": "query($p: ID!) { projectEvents(projectId: $p, first: 1) "
                        "{ events { sequence } } }",
                        "variables": {"p": project_id},
                    },
                )
            ).json()
            return int(body["data"]["projectEvents"]["events"][0]["sequence"])

        seq = await head()
        # Many clients, many tokens: one token may hold at most PER_TOKEN_CAP subscriptions.
        client_tokens = [
            await create_token(client, f"subscriber {i}")
            for i in range(math.ceil(subscribers / SUBSCRIBERS_PER_TOKEN))
        ]
        # Subscribing from the current head: each subscription replays anything written
        # before the server attached it, so none can miss the warm-up event.
        subs: list[Subscriber] = []
        for start in range(0, subscribers, 100):  # connect in waves, as clients would
            subs += await asyncio.gather(
                *(
                    open_subscriber(
                        ws_url, project_id, seq, client_tokens[i // SUBSCRIBERS_PER_TOKEN]
                    )
                    for i in range(start, min(start + 100, subscribers))
                )
            )
        readers = [asyncio.create_task(s.run()) for s in subs]

        async def write(i: int) -> None:
            body = (
                await client.post(
                    "/graphql",
                    json={"query": UPDATE, "variables": {"id": project_id, "n": f"Bench {i}"}},
                )
            ).json()
            assert body["data"]["updateProject"]["__typename"] == "UpdateProjectSuccess", body

        async def delivered_to_all(target: int) -> None:
            await asyncio.wait_for(asyncio.gather(*(s.wait_for(target) for s in subs)), DEADLINE_S)

        # The load generator's own garbage collections would show up as delivery latency;
        # this measures the server, so the client collects nothing while measuring.
        gc.collect()
        gc.freeze()
        gc.disable()
        # Warm-up: proves every subscription is attached before measuring.
        await write(0)
        seq += 1
        await delivered_to_all(seq)

        latencies: list[float] = []
        to_all: list[float] = []
        for i in range(events):
            await write(i + 1)
            seq += 1
            await delivered_to_all(seq)
            arrivals = [s.arrivals[seq] for s in subs]
            sent = arrivals[0][0]
            latencies += [(r - s) * 1000 for s, r in arrivals]
            to_all.append((max(r for _, r in arrivals) - sent) * 1000)
            await asyncio.sleep(0.05)

        began = time.perf_counter()
        for i in range(burst):
            await write(10_000 + i)
        seq += burst
        await delivered_to_all(seq)
        elapsed = time.perf_counter() - began

    gc.enable()
    gc.unfreeze()
    for task in readers:
        task.cancel()
    await asyncio.gather(*(s.conn.close() for s in subs), return_exceptions=True)
    return {
        "p50": percentile(latencies, 50),
        "p95": percentile(latencies, 95),
        "max": max(latencies),
        "all_p50": percentile(to_all, 50),
        "all_p95": percentile(to_all, 95),
        "eps": burst / elapsed,
        "deliveries": burst * len(subs) / elapsed,
    }


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawTextHelpFormatter
    )
    parser.add_argument("--backend", choices=["sqlite", "postgres", "both"], default="both")
    parser.add_argument("--subscribers", type=int, default=1000)
    parser.add_argument("--events", type=int, default=20)
    parser.add_argument("--burst", type=int, default=50)
    args = parser.parse_args()
    backends = ["sqlite", "postgres"] if args.backend == "both" else [args.backend]
    print(f"machine: {machine()}")
    print(
        f"{args.subscribers} subscribers of one project's events; target P95 <= {TARGET_P95_MS:.0f} ms"
    )
    ok = True
    for backend in backends:
        with database(backend) as db_url:
            seeded = asyncio.run(seed(db_url, 0))
            project_id = seeded.project_id
            with server(db_url) as srv:
                r = asyncio.run(
                    run(
                        srv.url,
                        srv.ws_url,
                        project_id,
                        seeded.token,
                        args.subscribers,
                        args.events,
                        args.burst,
                    )
                )
        ok &= r["p95"] <= TARGET_P95_MS
        print(
            f"{backend:9s} delivery P50 {r['p50']:6.1f} ms  P95 {r['p95']:6.1f} ms  max {r['max']:6.1f} ms  "
            f"| last subscriber P50 {r['all_p50']:6.1f} ms P95 {r['all_p95']:6.1f} ms  "
            f"| sustained {r['eps']:5.1f} events/s = {r['deliveries']:7.0f} deliveries/s  "
            f"{'meets' if r['p95'] <= TARGET_P95_MS else 'MISSES'} target"
        )
    return 0 if ok else 1


if __name__ == "__main__":
    raise SystemExit(main())
