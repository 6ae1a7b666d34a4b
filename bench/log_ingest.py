"""Log ingestion: lines/s from a replica's stdout to the store, and the latency from a line
being printed to its arrival at a `logs` websocket subscriber.

A real control plane runs as its own process — `graph.server.serve`, as `enclii serve`
runs it, with a plane that supervises the replicas below through a Supervisor and a
LogWriter (in the product the deployment controller starts replicas; here the benchmark's
plane does) — on a fresh database. This process drives it, each phase with a replica and a
service of its own:

  1. ingest: a replica prints N lines (half JSON, half plain, each carrying the time it was
     printed) as fast as Python prints; lines/s = N / (the moment the last line is in the
     store, seen from this process, - the moment the first one was printed).
  2. latency under load: a replica prints --rate lines/s (20,000) for --seconds while this
     process follows the service's `logs` over graphql-transport-ws with `grep`, so the
     server sends every --sample-th line (a `logs --follow --grep` on a service logging at
     full rate: one GraphQL message per line could not carry 20,000 lines/s).
  3. latency of every line: a replica prints --every-rate lines/s (1,000) and the
     subscription takes every line.

A line's latency is its arrival here minus the time it was printed: P50/P95/P99/max over
every line received; "read" is the part until the tailer read it (the line's `ts`).
Every line must arrive, in order, once. Targets: >= 20,000 lines/s; P95 <= 100 ms.

    python bench/log_ingest.py [--backend sqlite|postgres|both] [--lines 200000]
        [--rate 20000] [--sample 100] [--every-rate 1000] [--seconds 5]
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import gc
import json
import os
import signal
import subprocess
import sys
import tempfile
import textwrap
import time
from collections.abc import Iterator
from dataclasses import asdict, dataclass
from datetime import datetime
from pathlib import Path
from typing import Any, Final

import httpx
from sqlalchemy import select
from websockets.asyncio.client import connect

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench._common import REPO, database, free_port, machine, percentile, seed
from reconcile.local.supervisor import ReplicaSpec, Supervisor
from store.db import Store
from store.hub import EventHub
from store.logs import LogWriter
from store.models import LogHead, LogLine, Service

TARGET_LINES_PER_S: Final = 20_000.0
TARGET_P95_MS: Final = 100.0
DEADLINE_S: Final = 120.0
PROBE: Final = "probe"  # the word that marks every --sample-th line, for grep

FOLLOW: Final = (
    "subscription($id: ID!, $grep: String, $after: Int) "
    "{ logs(serviceId: $id, grep: $grep, after: $after) { sequence message ts } }"
)

# A replica. It waits for its go file, so that the benchmark decides when printing starts,
# and never exits (the supervisor would restart it and it would print again). Every line
# begins with the time it was printed; every `sample`-th line says "probe".
EMITTER: Final = textwrap.dedent(
    """
    import json, os, sys, time

    count, rate, seconds, sample, go = (
        int(sys.argv[1]), int(sys.argv[2]), float(sys.argv[3]), int(sys.argv[4]), sys.argv[5]
    )
    while not os.path.exists(go):
        time.sleep(0.005)
    out = sys.stdout

    def line(i):
        word = "probe" if i % sample == 0 else "line"
        now = time.time()
        if i % 2:
            return json.dumps(
                {"level": "info", "msg": f"{now:.6f} {word} {i} request served",
                 "path": "/api/orders", "status": 200, "ms": 12.5}
            )
        return f"{now:.6f} {word} {i} GET /api/orders 200 12.5ms user=42 plain text line"

    if rate == 0:
        for i in range(count):
            out.write(line(i) + "\\n")
        out.flush()
    else:
        # Paced: every millisecond, the lines due by then, flushed at once.
        start, i = time.time(), 0
        while i < count:
            due = min(count, int((time.time() - start) * rate) + 1)
            while i < due:
                out.write(line(i) + "\\n")
                i += 1
            out.flush()
            time.sleep(0.001)
    while True:
        time.sleep(1)
    """
)


@dataclass(frozen=True)
class Phase:
    """One replica: ``count`` lines at ``rate`` lines/s (0: as fast as it prints); a
    subscriber follows every ``sample``-th line through grep (1: every line, no grep)."""

    name: str
    service_id: str
    count: int
    rate: int
    sample: int

    def spec(self, data_dir: Path) -> ReplicaSpec:
        return ReplicaSpec(
            name=f"bench-{self.name}-0",
            service_id=self.service_id,
            release_id=f"rel_bench_{self.name}",
            index=0,
            command=[
                sys.executable,
                "emit.py",
                str(self.count),
                str(self.rate),
                "0",
                str(self.sample),
                str(self.go(data_dir)),
            ],
            cwd=data_dir / "app",
            env={"PATH": os.environ["PATH"]},
            grace_s=2.0,
        )

    def go(self, data_dir: Path) -> Path:
        return data_dir / f"go-{self.name}"

    @property
    def followed(self) -> int:
        """How many lines the subscriber receives."""
        return len(range(0, self.count, self.sample))


# -- the control plane's process ---------------------------------------------------------


class _BenchPlane:
    """What the server runs beside the API here: the log writer and the replicas."""

    def __init__(self, logs: LogWriter, supervisor: Supervisor) -> None:
        self.logs = logs
        self.supervisor = supervisor

    async def stop(self) -> None:
        for replica in self.supervisor.replicas():
            await self.supervisor.stop(replica.spec.name)
        await self.logs.close()


def plane_main(argv: list[str]) -> None:
    """``log_ingest.py plane DATABASE_URL PORT DATA_DIR PHASES_JSON``: serve the API with a
    plane that supervises the phases' replicas."""
    from graph.server import ServerConfig, serve

    url, port, data_dir, phases_json = argv
    phases = [Phase(**p) for p in json.loads(phases_json)]
    home = Path(data_dir)
    (home / "app").mkdir(parents=True, exist_ok=True)
    (home / "app" / "emit.py").write_text(EMITTER)

    async def start(store: Store, hub: EventHub, data: Path) -> _BenchPlane:
        del hub
        logs = LogWriter(store)
        logs.start()
        supervisor = Supervisor(data / "runtime", logs)
        for phase in phases:
            supervisor.ensure(phase.spec(data))
        return _BenchPlane(logs, supervisor)

    config = ServerConfig(
        data_dir=home,
        port=int(port),
        router_port=free_port(),
        database_url=url,
        log_level="warning",
        # Far above the load: the benchmark measures logs, not refusals.
        rate_per_minute=1e9,
        rate_burst=1_000_000_000,
    )
    with open(os.devnull, "w") as devnull:
        asyncio.run(serve(config, out=devnull, plane=start))


@contextlib.contextmanager
def control_plane(url: str, phases: list[Phase]) -> Iterator[tuple[str, Path]]:
    """The control plane process; yields its base URL and data dir."""
    with tempfile.TemporaryDirectory(prefix="enclii-bench-logs-") as tmp:
        data_dir = Path(tmp)
        port = free_port()
        process = subprocess.Popen(
            [
                sys.executable,
                str(Path(__file__).resolve()),
                "plane",
                url,
                str(port),
                str(data_dir),
                json.dumps([asdict(p) for p in phases]),
            ],
            cwd=REPO,
            stdout=subprocess.DEVNULL,
        )
        base = f"http://127.0.0.1:{port}"
        try:
            deadline = time.monotonic() + 60
            while True:
                try:
                    if httpx.get(f"{base}/readyz", timeout=1).status_code == 200:
                        break
                except httpx.HTTPError:
                    pass
                if process.poll() is not None or time.monotonic() > deadline:
                    raise RuntimeError("the control plane did not become ready")
                time.sleep(0.1)
            yield base, data_dir
        finally:
            process.send_signal(signal.SIGTERM)
            try:
                process.wait(30)
            except subprocess.TimeoutExpired:
                process.kill()


# -- measuring --------------------------------------------------------------------------------


def printed_at(message: str) -> float:
    return float(message.split(" ", 1)[0])


async def ingest(url: str, phase: Phase, data_dir: Path) -> dict[str, float]:
    """Lines/s from the first line printed to the last one stored."""
    store = Store(url)
    try:
        phase.go(data_dir).touch()

        async def last_stored() -> float:
            while True:
                async with store.read() as session:
                    head = await session.scalar(
                        select(LogHead.last_seq).where(LogHead.service_id == phase.service_id)
                    )
                if (head or 0) >= phase.count:
                    return time.time()
                await asyncio.sleep(0.005)

        done = await asyncio.wait_for(last_stored(), DEADLINE_S)
        async with store.read() as session:
            first, last = (
                await session.scalars(
                    select(LogLine.message)
                    .where(
                        LogLine.service_id == phase.service_id,
                        LogLine.seq.in_([1, phase.count]),
                    )
                    .order_by(LogLine.seq)
                )
            ).all()
    finally:
        await store.close()
    began = printed_at(first)
    return {
        "lines_per_s": phase.count / (done - began),
        "printing_s": printed_at(last) - began,
        "storing_s": done - began,
    }


async def latency(base: str, token: str, phase: Phase, data_dir: Path) -> dict[str, float]:
    """Each followed line's time from being printed to arriving here."""
    ws_url = base.replace("http://", "ws://") + "/graphql"
    total: list[float] = []
    read: list[float] = []  # printed -> read by the tailer (the line's ts)
    async with connect(
        ws_url,
        subprotocols=["graphql-transport-ws"],  # type: ignore[list-item]
        open_timeout=DEADLINE_S,
        max_queue=None,
        ping_interval=None,
    ) as conn:
        await conn.send(
            json.dumps({"type": "connection_init", "payload": {"authorization": f"Bearer {token}"}})
        )
        ack = json.loads(await asyncio.wait_for(conn.recv(), DEADLINE_S))
        assert ack["type"] == "connection_ack", ack
        variables: dict[str, Any] = {"id": phase.service_id, "after": 0}
        if phase.sample > 1:
            variables["grep"] = PROBE
        subscribe = {"query": FOLLOW, "variables": variables}
        await conn.send(json.dumps({"id": "1", "type": "subscribe", "payload": subscribe}))
        # From sequence 0, a subscription attached late would replay rather than miss; a
        # moment to attach first keeps lines from being replayed (and timed) late.
        await asyncio.sleep(1.0)
        # The client's own collections would show up as latency: none while measuring.
        gc.collect()
        gc.freeze()
        gc.disable()
        try:
            phase.go(data_dir).touch()

            async def receive() -> None:
                seen = 0
                while len(total) < phase.followed:
                    raw = await conn.recv()
                    arrived = time.time()
                    message = json.loads(raw)
                    if message["type"] != "next":
                        raise RuntimeError(f"unexpected message: {message}")
                    line = message["payload"]["data"]["logs"]
                    if line["sequence"] <= seen:
                        raise RuntimeError(f"line {line['sequence']} after {seen}")
                    seen = line["sequence"]
                    printed = printed_at(line["message"])
                    total.append((arrived - printed) * 1000)
                    read.append((datetime.fromisoformat(line["ts"]).timestamp() - printed) * 1000)

            await asyncio.wait_for(receive(), DEADLINE_S)
        finally:
            gc.enable()
            gc.unfreeze()
    return {
        "lines": len(total),
        "p50": percentile(total, 50),
        "p95": percentile(total, 95),
        "p99": percentile(total, 99),
        "max": max(total),
        "read_p50": percentile(read, 50),
        "read_p95": percentile(read, 95),
    }


async def service_ids(url: str) -> list[str]:
    store = Store(url)
    try:
        async with store.read() as session:
            return list(await session.scalars(select(Service.id).order_by(Service.name)))
    finally:
        await store.close()


def verdict(ok: bool) -> str:
    return "meets target" if ok else "MISSES target"


def main() -> int:
    if sys.argv[1:2] == ["plane"]:
        plane_main(sys.argv[2:])
        return 0
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawTextHelpFormatter
    )
    parser.add_argument("--backend", choices=["sqlite", "postgres", "both"], default="both")
    parser.add_argument("--lines", type=int, default=200_000, help="lines of the ingest phase")
    parser.add_argument("--rate", type=int, default=20_000, help="lines/s under load")
    parser.add_argument("--sample", type=int, default=100, help="follow every Nth under load")
    parser.add_argument("--every-rate", type=int, default=1_000, help="lines/s, all followed")
    parser.add_argument("--seconds", type=float, default=5.0, help="of each latency phase")
    args = parser.parse_args()
    backends = ["sqlite", "postgres"] if args.backend == "both" else [args.backend]
    print(f"machine: {machine()}")
    print(
        f"targets: >= {TARGET_LINES_PER_S:,.0f} lines/s from stdout to the store; "
        f"P95 <= {TARGET_P95_MS:.0f} ms from stdout to a subscriber"
    )
    ok = True
    for backend in backends:
        with database(backend) as url:
            seeded = asyncio.run(seed(url, 3))
            ids = asyncio.run(service_ids(url))
            burst = Phase("burst", ids[0], args.lines, 0, args.lines + 1)
            loaded = Phase("loaded", ids[1], int(args.rate * args.seconds), args.rate, args.sample)
            every = Phase("every", ids[2], int(args.every_rate * args.seconds), args.every_rate, 1)
            with control_plane(url, [burst, loaded, every]) as (base, data_dir):
                rate = asyncio.run(ingest(url, burst, data_dir))
                results = [
                    (phase, asyncio.run(latency(base, seeded.token, phase, data_dir)))
                    for phase in (loaded, every)
                ]
        good = rate["lines_per_s"] >= TARGET_LINES_PER_S
        ok &= good
        print(
            f"{backend:9s} ingest {rate['lines_per_s']:8,.0f} lines/s  ({burst.count:,} lines "
            f"printed in {rate['printing_s']:.2f} s, all stored after {rate['storing_s']:.2f} s)"
            f"  {verdict(good)}"
        )
        for phase, r in results:
            good = r["p95"] <= TARGET_P95_MS
            ok &= good
            what = f"every {phase.sample}th line (grep)" if phase.sample > 1 else "every line"
            print(
                f"{'':9s} {phase.rate:6,} lines/s, following {what}: {r['lines']:,.0f} lines  "
                f"P50 {r['p50']:6.1f}  P95 {r['p95']:6.1f}  P99 {r['p99']:6.1f}  "
                f"max {r['max']:6.1f} ms  (read P50 {r['read_p50']:.1f}, "
                f"P95 {r['read_p95']:.1f} ms)  {verdict(good)}"
            )
    return 0 if ok else 1


if __name__ == "__main__":
    raise SystemExit(main())
