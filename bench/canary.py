"""Canary analysis under load: how fast a failing canary loses its traffic, and whether a
healthy one is ever aborted.

Against a real `enclii serve` (its own router, real builds and replicas): a small app
serves as the stable release while clients request through the router without pause,
counting answers by the release the router stamps on them (``x-enclii-release``). The
analysis runs every 5 s (``--interval``) over a 10 s window and aborts on 3 failed checks
in a row (minRequests, minErrors and the 2% 5xx threshold are the defaults). Five seconds,
not the default 30, keeps the bench short while the fixed delays (the router's 1 s flush, a
reconcile) stay small beside an interval; at 2 s they are not (see docs/benchmarks.md).

- **Failing canaries.** A release answering 500 on 1 request in 10 goes out as a canary
  (20%, then a 600 s pause: only the analysis can end it). Its figure is the time from the
  first answer any client got from it (it fails from its first request) to the last, after
  which none follows (the load goes on 2 s after the deployment is seen ROLLED_BACK).
  Target: ≤ (N+1) analysis intervals, N = failuresToAbort, i.e. 20 s. Each round also
  prints where the time went: every check (when, verdict, the sample, and how old the
  newest canary request it counted was) and the deciding check → last canary answer.
- **Healthy canaries.** 20 healthy releases, one after another, as canaries (20%, a pause
  of three intervals — which ends only on a passing check — then 100%), so 60 checks that
  must not fail. Target: none rolled back.

    python bench/canary.py [--backend sqlite|postgres] [--rounds 3] [--healthy 20]
                           [--clients 32] [--interval 5]
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import json
import statistics
import sys
import tempfile
import textwrap
import time
from collections import Counter
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

import aiohttp
import httpx

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench._common import Server, database, machine, seed, server
from bench._platform import DEADLINE_S, gql, host_of, success
from client.cli.target import tarball  # what the CLI uploads, the bench uploads

NAME = "canary"
INTERVAL_S = 5  # --interval: the target scales with it
WINDOW_S = 10
FAILURES_TO_ABORT = 3
FAIL_EVERY = 10  # the failing canary answers 500 on 1 request in 10
SETTLED_S = 2.0  # the load goes on this long after the rollback is seen
HEALTHY_PAUSES = 3  # a healthy canary's pause, in intervals: three checks each
WEIGHT = 20
ENDED = ("HEALTHY", "ROLLED_BACK", "FAILED", "SUPERSEDED")

# The replica: answers its release id; with FAIL_EVERY=n, every n-th request answers 500.
APP = textwrap.dedent(
    """
    import itertools, os
    from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

    every = int(os.environ.get("FAIL_EVERY", "0"))
    counter = itertools.count(1)

    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"  # keep-alive: the router reuses its connections

        def do_GET(self):
            failing = every and self.path != "/healthz" and next(counter) % every == 0
            body = os.environ["ENCLII_RELEASE_ID"].encode()
            self.send_response(500 if failing else 200)
            self.send_header("content-length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args):
            pass

    ThreadingHTTPServer(("127.0.0.1", int(os.environ["PORT"])), Handler).serve_forever()
    """
)


def spec(name: str, *, fail_every: int, pause_s: int, interval_s: float) -> str:
    # The previous release and an aborted canary leave after 5 s instead of 10 minutes:
    # 23 deploys must not pile up idle replicas on a 2-vCPU machine.
    return f"""apiVersion: enclii.dev/v1
kind: Service
metadata: {{project: bench, environment: dev, name: {name}}}
spec:
  runtime:
    cmd: ["python3", "app.py"]
    ports: [8080]
  env:
    - {{name: FAIL_EVERY, value: "{fail_every}"}}
  health:
    readiness: {{httpGet: /healthz, periodSeconds: 0.2}}
  deploy:
    strategy: canary
    rollbackWindowSeconds: 5
    canary:
      steps: [{{setWeight: {WEIGHT}}}, {{pause: {{seconds: {pause_s}}}}}, {{setWeight: 100}}]
      keepAbortedSeconds: 5
      analysis: {{intervalSeconds: {interval_s:g}, windowSeconds: {WINDOW_S}, failuresToAbort: {FAILURES_TO_ABORT}}}
"""


CREATE_RELEASE = (
    "mutation($input: CreateReleaseInput!) { createRelease(input: $input) "
    "{ ... on CreateReleaseSuccess { release { id } } ... on Error { message } } }"
)
DEPLOY = (
    "mutation($s: ID!, $r: ID!, $strategy: DeploymentStrategy) { deploy(input: "
    "{serviceId: $s, releaseId: $r, strategy: $strategy}) "
    "{ ... on DeploySuccess { deployment { id } } ... on Error { message } } }"
)
SIDE = "requests errors errorRate p95Ms"
SAMPLE = f"at verdict reason canary {{ {SIDE} }} stable {{ {SIDE} }}"
DEPLOYMENT = (
    "query($d: ID!) { deployment(id: $d) { phase reason canary { startedAt checks "
    f"latest {{ {SAMPLE} }} decision {{ reason automated sample {{ {SAMPLE} }} }} }} }} }}"
)


def epoch(iso: str) -> float:
    return datetime.fromisoformat(iso).timestamp()


@dataclass
class Seen:
    """One release's answers, as the clients saw them (wall-clock times, in order)."""

    times: list[float] = field(default_factory=list)
    errors: int = 0  # 5xx

    @property
    def first(self) -> float:
        return self.times[0]

    @property
    def last(self) -> float:
        return self.times[-1]


@dataclass
class Load:
    """Clients requesting through the router without pause, tallying who answered."""

    url: str
    host: str
    seen: dict[str, Seen] = field(default_factory=dict)
    failures: Counter[str] = field(default_factory=Counter)  # no answer at all, by kind
    running: bool = True

    async def client(self, session: aiohttp.ClientSession) -> None:
        headers = {"host": self.host}
        while self.running:
            try:
                async with session.get(self.url, headers=headers) as response:
                    await response.read()
                    release = response.headers.get("x-enclii-release", "router")
                    status = response.status
            except (aiohttp.ClientError, TimeoutError) as exc:
                self.failures[type(exc).__name__] += 1
                await asyncio.sleep(0.01)
                continue
            seen = self.seen.setdefault(release, Seen())
            seen.times.append(time.time())
            if status >= 500:
                seen.errors += 1


@dataclass
class Platform:
    api: httpx.AsyncClient
    source: Path
    upload: bool
    service: str = ""

    async def apply(self, yaml: str) -> None:
        applied = await gql(
            self.api,
            "mutation($y: String!) { applyService(input: {specYaml: $y}) "
            "{ ... on ApplyServiceSuccess { service { id } } ... on Error { message } } }",
            y=yaml,
        )
        self.service = success(applied["applyService"], "service")["id"]

    async def release(self) -> str:
        """A release of the app in ``source``: from its folder on the embedded default;
        elsewhere uploaded as a tarball, as a remote client must."""
        if not self.upload:
            made = await gql(
                self.api,
                CREATE_RELEASE,
                input={"serviceId": self.service, "sourcePath": str(self.source)},
            )
            result: dict[str, Any] = made["createRelease"]
        else:
            operations = {
                "query": CREATE_RELEASE,
                "variables": {"input": {"serviceId": self.service}},
            }
            response = await self.api.post(
                "/graphql",
                data={
                    "operations": json.dumps(operations),
                    "map": json.dumps({"0": ["variables.input.source"]}),
                },
                files={"0": ("source.tar.gz", tarball(self.source), "application/gzip")},
            )
            body: dict[str, Any] = response.json()
            if "errors" in body:
                raise RuntimeError(body["errors"])
            result = body["data"]["createRelease"]
        release: str = success(result, "release")["id"]
        return release

    async def deploy(self, release: str, strategy: str | None) -> str:
        done = await gql(self.api, DEPLOY, s=self.service, r=release, strategy=strategy)
        deployment: str = success(done["deploy"], "deployment")["id"]
        return deployment

    async def follow(self, deployment: str) -> Followed:
        """Poll the deployment until it ends, keeping every analysis check it made."""
        checks: dict[str, dict[str, Any]] = {}
        async with asyncio.timeout(DEADLINE_S):
            while True:
                found: dict[str, Any] = (await gql(self.api, DEPLOYMENT, d=deployment))[
                    "deployment"
                ]
                latest = (found.get("canary") or {}).get("latest")
                if latest is not None:
                    checks[latest["at"]] = latest
                if found["phase"] in ENDED:
                    return Followed(found, time.time(), [checks[at] for at in sorted(checks)])
                await asyncio.sleep(0.1)


@dataclass
class Followed:
    deployment: dict[str, Any]
    ended_seen: float  # when the poll first saw it end (wall clock)
    checks: list[dict[str, Any]]

    @property
    def phase(self) -> str:
        phase: str = self.deployment["phase"]
        return phase

    @property
    def started_at(self) -> float | None:
        started = (self.deployment.get("canary") or {}).get("startedAt")
        return epoch(started) if started else None


@dataclass
class Failing:
    release: str
    phase: str
    reason: str
    first: float  # first answer from the canary (wall clock)
    last: float  # last answer from the canary, none after it
    ended_seen: float
    started_at: float | None
    checks: list[dict[str, Any]]
    times: list[float]  # every answer from the canary
    errors: int

    @property
    def detected_s(self) -> float:
        return self.last - self.first

    def data_age_s(self, check: dict[str, Any]) -> float:
        """How old the newest canary request a check counted was: the router flushes its
        tallies every second and a check reads what has been flushed."""
        counted = int(check["canary"]["requests"])
        if counted == 0:
            return epoch(check["at"]) - self.first
        return epoch(check["at"]) - self.times[min(counted, len(self.times)) - 1]


@dataclass
class Healthy:
    phase: str
    reason: str
    deploy_to_end_s: float  # deploy sent → the poll saw it end
    canary_to_end_s: float  # first answer from the canary → the poll saw it end
    checks: list[tuple[str, float]]  # verdict, seconds after the first canary answer

    @property
    def verdicts(self) -> list[str]:
        return [verdict for verdict, _ in self.checks]


async def failing_round(p: Platform, load: Load) -> Failing:
    release = await p.release()
    deployment = await p.deploy(release, "CANARY")
    followed = await p.follow(deployment)
    await asyncio.sleep(SETTLED_S)
    seen = load.seen.get(release)
    if seen is None:
        raise RuntimeError(f"the canary {release} never answered a client")
    decision = (followed.deployment.get("canary") or {}).get("decision") or {}
    sample = decision.get("sample")
    checks = list(followed.checks)
    if sample is not None and all(c["at"] != sample["at"] for c in checks):
        checks.append(sample)
    return Failing(
        release=release,
        phase=followed.phase,
        reason=followed.deployment.get("reason") or "",
        first=seen.first,
        last=seen.last,
        ended_seen=followed.ended_seen,
        started_at=followed.started_at,
        checks=checks,
        times=seen.times,
        errors=seen.errors,
    )


async def healthy_round(p: Platform, load: Load) -> Healthy:
    release = await p.release()
    sent = time.time()
    deployment = await p.deploy(release, "CANARY")
    followed = await p.follow(deployment)
    seen = load.seen.get(release)
    first = seen.first if seen is not None else followed.ended_seen
    return Healthy(
        phase=followed.phase,
        reason=followed.deployment.get("reason") or "",
        deploy_to_end_s=followed.ended_seen - sent,
        canary_to_end_s=followed.ended_seen - first,
        checks=[(c["verdict"], epoch(c["at"]) - first) for c in followed.checks],
    )


async def until_answering(load: Load, release: str) -> None:
    async with asyncio.timeout(DEADLINE_S):
        while True:
            if release in load.seen:
                return
            await asyncio.sleep(0.05)


@dataclass
class Results:
    failing: list[Failing]
    healthy: list[Healthy]
    load_s: float
    answers: int
    stable_errors: int  # 5xx from releases that were not a failing canary
    failures: Counter[str]


async def run(
    srv: Server,
    token: str,
    rounds: int,
    healthy: int,
    clients: int,
    interval_s: float,
    upload: bool,
) -> Results:
    headers = {"authorization": f"Bearer {token}"}
    api = httpx.AsyncClient(base_url=srv.url, headers=headers, timeout=60)
    connector = aiohttp.TCPConnector(limit=clients)
    timeout = aiohttp.ClientTimeout(total=10)
    session = aiohttp.ClientSession(connector=connector, timeout=timeout)
    with tempfile.TemporaryDirectory(prefix="enclii-bench-canary-") as tmp:
        source = Path(tmp)
        (source / "app.py").write_text(APP)
        async with api, session:
            p = Platform(api, source, upload)
            await p.apply(
                spec(
                    NAME,
                    fail_every=0,
                    pause_s=round(HEALTHY_PAUSES * interval_s),
                    interval_s=interval_s,
                )
            )
            stable = await p.release()
            first = await p.follow(await p.deploy(stable, None))
            if first.phase != "HEALTHY":
                raise RuntimeError(f"the stable release did not serve: {first.deployment}")
            load = Load(srv.router_url, host_of(NAME))
            gc.collect()
            gc.freeze()
            tasks = [asyncio.create_task(load.client(session)) for _ in range(clients)]
            try:
                await until_answering(load, stable)
                started = time.time()
                await p.apply(spec(NAME, fail_every=FAIL_EVERY, pause_s=600, interval_s=interval_s))
                failing = []
                for i in range(rounds):
                    failing.append(await failing_round(p, load))
                    print(
                        f"failing canary {i}: {describe_failing(failing[-1], interval_s)}",
                        flush=True,
                    )
                await p.apply(
                    spec(
                        NAME,
                        fail_every=0,
                        pause_s=round(HEALTHY_PAUSES * interval_s),
                        interval_s=interval_s,
                    )
                )
                passed = []
                for i in range(healthy):
                    passed.append(await healthy_round(p, load))
                    print(f"healthy canary {i}: {describe_healthy(passed[-1])}", flush=True)
                load_s = time.time() - started
            finally:
                load.running = False
                async with asyncio.timeout(30):
                    await asyncio.gather(*tasks, return_exceptions=True)
                gc.unfreeze()
    bad = {f.release for f in failing}
    return Results(
        failing=failing,
        healthy=passed,
        load_s=load_s,
        answers=sum(len(s.times) for s in load.seen.values()),
        stable_errors=sum(s.errors for r, s in load.seen.items() if r not in bad),
        failures=load.failures,
    )


def describe_failing(f: Failing, interval_s: float) -> str:
    """A round with where its time went, every offset from the canary's first answer."""
    checks = ", ".join(
        f"{epoch(c['at']) - f.first:+.1f} s {c['verdict']} "
        f"{c['canary']['errors']}/{c['canary']['requests']} (data {f.data_age_s(c):.1f} s old)"
        for c in f.checks
    )
    took = f"{f.started_at - f.first:+.1f} s" if f.started_at is not None else "?"
    decided = epoch(f.checks[-1]["at"]) if f.checks else f.ended_seen
    return (
        f"{f.phase}, first→last canary answer {f.detected_s:.2f} s "
        f"({f.detected_s / interval_s:.1f} intervals); canary started {took}; "
        f"checks (5xx/requests) {checks}; deciding check→last canary answer "
        f"{f.last - decided:.2f} s; {len(f.times)} canary answers "
        f"({len(f.times) / max(f.detected_s, 1e-9):.0f}/s), {f.errors} of them 500"
    )


def describe_healthy(h: Healthy) -> str:
    return (
        f"{h.phase} {h.canary_to_end_s:.1f} s after its first answer "
        f"({h.deploy_to_end_s:.1f} s after the deploy); checks "
        + ", ".join(f"{offset:+.1f} s {verdict}" for verdict, offset in h.checks)
        + (f"; {h.reason}" if h.phase != "HEALTHY" else "")
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--backend", choices=["sqlite", "postgres"], default="sqlite")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--healthy", type=int, default=20)
    parser.add_argument("--clients", type=int, default=32)
    parser.add_argument("--interval", type=float, default=INTERVAL_S)
    args = parser.parse_args()
    interval_s: float = args.interval
    target_s = (FAILURES_TO_ABORT + 1) * interval_s
    print(f"machine: {machine()}")
    print(
        f"analysis: intervalSeconds {interval_s:g}, windowSeconds {WINDOW_S}, failuresToAbort "
        f"{FAILURES_TO_ABORT} (minRequests 200, minErrors 5, maxErrorRatePercent 2: the "
        f"defaults); canary at {WEIGHT}%; {args.clients} clients through the router",
        flush=True,
    )
    with database(args.backend) as url:
        seeded = asyncio.run(seed(url, services=0))
        with server(url) as srv:
            upload = args.backend != "sqlite"
            results = asyncio.run(
                run(
                    srv,
                    seeded.token,
                    args.rounds,
                    args.healthy,
                    args.clients,
                    interval_s,
                    upload,
                )
            )
    rate = results.answers / results.load_s
    print(
        f"load: {rate:.0f} answers/s through the router (the canary's {WEIGHT}% ≈ "
        f"{rate * WEIGHT / 100 * WINDOW_S:.0f} requests per {WINDOW_S} s window); "
        f"{results.stable_errors} errors from healthy releases, "
        f"{sum(results.failures.values())} requests unanswered"
        + (f" ({dict(results.failures)})" if results.failures else "")
    )
    failing = results.failing
    worst = max((f.detected_s for f in failing), default=float("nan"))
    rolled_back = bool(failing) and all(f.phase == "ROLLED_BACK" for f in failing)
    reasons = sorted({f.reason for f in failing})
    print(f"failing canary: reason recorded: {' | '.join(reasons)}")
    fail_verdict = "met" if rolled_back and worst <= target_s else "MISSED"
    print(
        f"failing canary → 0% canary traffic: "
        f"{', '.join(f'{f.detected_s:.2f} s' for f in failing)}; worst {worst:.2f} s = "
        f"{worst / interval_s:.1f} intervals over {len(failing)} rounds "
        f"(target ≤ {FAILURES_TO_ABORT + 1} intervals = {target_s:g} s: {fail_verdict})"
    )
    passed = results.healthy
    aborted = sum(1 for h in passed if h.phase == "ROLLED_BACK")
    promoted = [h for h in passed if h.phase == "HEALTHY"]
    failed_checks = sum(h.verdicts.count("FAIL") for h in passed)
    checks = sum(len(h.verdicts) for h in passed)
    inconclusive = sum(h.verdicts.count("INCONCLUSIVE") for h in passed)
    median = statistics.median(h.canary_to_end_s for h in promoted) if promoted else float("nan")
    median_deploy = (
        statistics.median(h.deploy_to_end_s for h in promoted) if promoted else float("nan")
    )
    healthy_verdict = "met" if len(promoted) == len(passed) else "MISSED"
    print(
        f"healthy canaries: {len(promoted)} promoted, {aborted} rolled back, "
        f"{len(passed) - len(promoted) - aborted} otherwise of {len(passed)}; "
        f"{failed_checks} of {checks} checks failed ({inconclusive} inconclusive); median "
        f"time to promotion {median:.1f} s from the first canary answer "
        f"({median_deploy:.1f} s from the deploy) "
        f"(target: 0 false aborts: {healthy_verdict})"
    )
    if fail_verdict != "met" or healthy_verdict != "met":
        raise SystemExit(1)


if __name__ == "__main__":
    main()
