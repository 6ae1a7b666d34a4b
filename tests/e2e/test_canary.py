"""TC-02 end to end: canary deploys under synthetic load, with a real `enclii serve`, real
replica processes and the real router recording every request.

A stable release serves; a new release goes out as a canary while clients keep requesting
through the router. A release answering 5xx on 5% of its requests is rolled back by the
analysis on its own; a healthy one is promoted to 100%; a healthy one with hardly any
traffic is neither aborted nor promoted, and rolls back at its deadline for "insufficient
traffic". Throughout, the stable release's clients see no errors. Windows and intervals
are seconds here, so each scenario takes about as long as its checks."""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import sys
import textwrap
import time
from collections import Counter
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import pytest
from aiohttp import web

from tests.helpers import DEADLINE_S, GraphQLWebSocket, ServerProcess, running_server

APP = textwrap.dedent(
    """
    import itertools, os
    from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

    every = int(os.environ.get("FAIL_EVERY", "0"))  # 20: one request in 20 answers 500
    counter = itertools.count(1)

    class Handler(BaseHTTPRequestHandler):
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

ANALYSIS = (
    "intervalSeconds: 1, windowSeconds: 10, minRequests: {min_requests}, minErrors: 3, "
    "failuresToAbort: 2, deadlineSeconds: {deadline}"
)


def spec(
    name: str,
    *,
    fail_every: int = 0,
    pause_s: int = 4,
    min_requests: int = 40,
    deadline: int = 90,
    webhook: str | None = None,
) -> str:
    analysis = ANALYSIS.format(min_requests=min_requests, deadline=deadline)
    alerts = (
        f'  alerts:\n    - {{name: oncall, webhook: "{webhook}", events: [rollback]}}\n'
        if webhook
        else ""
    )
    return f"""apiVersion: enclii.dev/v1
kind: Service
metadata: {{project: shop, environment: dev, name: {name}}}
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
    progressDeadlineSeconds: 60
    canary:
      steps: [{{setWeight: 50}}, {{pause: {{seconds: {pause_s}}}}}, {{setWeight: 100}}]
      analysis: {{{analysis}}}
{alerts}"""


DEPLOY = """mutation($s: ID!, $r: ID!, $strategy: DeploymentStrategy) {
  deploy(input: {serviceId: $s, releaseId: $r, strategy: $strategy}) {
    __typename ... on DeploySuccess { deployment { id } } ... on Error { message } } }"""
DEPLOYMENT = """query($d: ID!) { deployment(id: $d) { phase reason canary {
  weight checks decision { reason automated sample { verdict canary { requests errors errorRate }
  stable { requests errors } } } } } }"""
CANARY_METRICS = """subscription($d: ID!) { canaryMetrics(deploymentId: $d) {
  sequence weight verdict reason canary { requests errors errorRate p95Ms }
  stable { requests errors p95Ms } } }"""


@dataclass
class Platform:
    server: ServerProcess
    api: httpx.AsyncClient
    router: httpx.AsyncClient
    source: Path
    project_id: str = ""

    async def gql(self, query: str, **variables: Any) -> dict[str, Any]:
        body: dict[str, Any] = (
            await self.api.post("/graphql", json={"query": query, "variables": variables})
        ).json()
        assert "errors" not in body, body
        data: dict[str, Any] = body["data"]
        return data

    async def apply(self, yaml: str) -> str:
        done = await self.gql(
            "mutation($y: String!) { applyService(input: {specYaml: $y}) { __typename "
            "... on ApplyServiceSuccess { service { id } } ... on Error { message } } }",
            y=yaml,
        )
        assert done["applyService"]["__typename"] == "ApplyServiceSuccess", done
        service_id: str = done["applyService"]["service"]["id"]
        return service_id

    async def release(self, service_id: str) -> str:
        made = await self.gql(
            "mutation($s: ID!, $p: String!) { createRelease(input: {serviceId: $s, "
            "sourcePath: $p}) { __typename ... on CreateReleaseSuccess { release { id } } "
            "... on Error { message } } }",
            s=service_id,
            p=str(self.source),
        )
        release_id: str = made["createRelease"]["release"]["id"]
        return release_id

    async def deploy(self, service_id: str, release_id: str, strategy: str | None) -> str:
        done = await self.gql(DEPLOY, s=service_id, r=release_id, strategy=strategy)
        assert done["deploy"]["__typename"] == "DeploySuccess", done
        deployment_id: str = done["deploy"]["deployment"]["id"]
        return deployment_id

    async def deployment(self, deployment_id: str) -> dict[str, Any]:
        found: dict[str, Any] = (await self.gql(DEPLOYMENT, d=deployment_id))["deployment"]
        return found

    async def ended(self, deployment_id: str, timeout: float = DEADLINE_S) -> dict[str, Any]:
        deadline = time.monotonic() + timeout
        while True:
            found = await self.deployment(deployment_id)
            if found["phase"] not in ("QUEUED", "BUILDING", "DEPLOYING"):
                return found
            assert time.monotonic() < deadline, f"deployment still {found['phase']}"
            await asyncio.sleep(0.2)


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerProcess]:
    with running_server(tmp_path_factory.mktemp("canary")) as process:
        yield process


@pytest.fixture
async def platform(server: ServerProcess, tmp_path: Path) -> AsyncIterator[Platform]:
    source = tmp_path / "app"
    source.mkdir()
    (source / "app.py").write_text(APP)
    # uvicorn drops a keep-alive connection idle for 5 s; a client reusing it at that
    # moment reads nothing (httpx.ReadError). Idle connections are dropped here first.
    limits = httpx.Limits(keepalive_expiry=2.0)
    api = httpx.AsyncClient(
        base_url=server.http_url, headers=server.headers, timeout=60, limits=limits
    )
    router = httpx.AsyncClient(base_url=server.router_url, timeout=30, limits=limits)
    async with api, router:
        platform = Platform(server, api, router, source)
        found = await platform.gql("{ projects(first: 10) { nodes { id slug } } }")
        shop = [p for p in found["projects"]["nodes"] if p["slug"] == "shop"]
        if shop:
            platform.project_id = shop[0]["id"]
        else:
            made = await platform.gql(
                'mutation { createProject(input: {name: "Shop", slug: "shop"}) '
                "{ ... on CreateProjectSuccess { project { id } } } }"
            )
            platform.project_id = made["createProject"]["project"]["id"]
            await platform.gql(
                'mutation($p: ID!) { createEnvironment(input: {projectId: $p, name: "dev"}) '
                "{ __typename } }",
                p=platform.project_id,
            )
        yield platform


@dataclass
class Load:
    """Clients requesting through the router, counting answers by release and status."""

    answers: Counter[tuple[str, int]] = field(default_factory=Counter)
    failures: list[str] = field(default_factory=list)

    def of(self, release_id: str) -> dict[int, int]:
        return {status: n for (r, status), n in self.answers.items() if r == release_id}


@contextlib.asynccontextmanager
async def load(
    router: httpx.AsyncClient, host: str, *, clients: int = 4, pause_s: float = 0.0
) -> AsyncIterator[Load]:
    seen = Load()

    async def client() -> None:
        while True:
            try:
                response = await router.get("/", headers={"host": host})
                release = response.headers.get("x-enclii-release", "router")
                seen.answers[(release, response.status_code)] += 1
            except httpx.HTTPError as exc:
                seen.failures.append(repr(exc))
            await asyncio.sleep(pause_s)

    tasks = [asyncio.create_task(client()) for _ in range(clients)]
    try:
        yield seen
    finally:
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)


async def stable_service(platform: Platform, name: str, **options: Any) -> tuple[str, str]:
    """A service whose first release serves all traffic (a first canary goes straight to
    100%: there is nothing to compare it with)."""
    service_id = await platform.apply(spec(name, **options))
    first = await platform.release(service_id)
    deployment = await platform.deploy(service_id, first, None)
    done = await platform.ended(deployment)
    assert done["phase"] == "HEALTHY", done
    return service_id, first


async def samples_of(server: ServerProcess, deployment_id: str) -> list[dict[str, Any]]:
    """Every analysis check canaryMetrics streams, until it completes."""
    got: list[dict[str, Any]] = []
    async with GraphQLWebSocket.connect(server.ws_url, payload=server.ws_payload()) as ws:
        await ws.subscribe(CANARY_METRICS, {"d": deployment_id})
        while True:
            message = await ws.receive_type("next", "complete", "error", timeout=60)
            if message["type"] == "complete":
                return got
            assert message["type"] == "next", message
            got.append(message["payload"]["data"]["canaryMetrics"])


@contextlib.asynccontextmanager
async def fake_slack() -> AsyncIterator[tuple[str, list[dict[str, Any]]]]:
    """A local HTTP receiver standing in for Slack's incoming webhooks."""
    received: list[dict[str, Any]] = []

    async def hook(request: web.Request) -> web.Response:
        received.append(await request.json())
        return web.Response(text="ok")

    app = web.Application()
    app.router.add_post("/services/T0/B0/secret", hook)
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = runner.addresses[0][1]
    try:
        yield f"http://127.0.0.1:{port}/services/T0/B0/secret", received
    finally:
        await runner.cleanup()


async def test_a_canary_answering_5xx_on_5_percent_is_rolled_back_and_stable_sees_no_error(
    platform: Platform,
) -> None:
    host = "bad.dev.shop.localhost"
    service_id, stable = await stable_service(platform, "bad")
    async with fake_slack() as (webhook, received):
        await platform.apply(spec("bad", fail_every=20, webhook=webhook))
        await _bad_canary(platform, host, service_id, stable, (webhook, received))


async def _bad_canary(
    platform: Platform,
    host: str,
    service_id: str,
    stable: str,
    slack: tuple[str, list[dict[str, Any]]],
) -> None:
    webhook, received = slack
    canary = await platform.release(service_id)
    async with load(platform.router, host) as traffic:
        deployment = await platform.deploy(service_id, canary, "CANARY")
        streamed = asyncio.create_task(samples_of(platform.server, deployment))
        done = await platform.ended(deployment)
        samples = await streamed
        # Only the stable release answers once the decision is made.
        before = traffic.of(canary)
        await asyncio.sleep(1.5)
        assert traffic.of(canary) == before

    assert done["phase"] == "ROLLED_BACK", done
    assert done["reason"].startswith("automated rollback after 2 failed analysis checks")
    assert "5xx rate" in done["reason"]
    decision = done["canary"]["decision"]
    assert decision["automated"] is True
    assert decision["sample"]["verdict"] == "FAIL"
    assert decision["sample"]["canary"]["errorRate"] > 0.02
    assert decision["sample"]["stable"]["errors"] == 0

    # The canary did take traffic and did fail 1 in 20; the stable release never failed.
    assert traffic.of(canary).get(500, 0) > 0
    assert set(traffic.of(stable)) == {200}, traffic.of(stable)
    assert not traffic.failures

    # The stream showed each check, the last ones failing, and completed at the end.
    assert [s["verdict"] for s in samples[-2:]] == ["FAIL", "FAIL"]
    assert all(s["weight"] == 50 for s in samples)
    assert samples == sorted(samples, key=lambda s: s["sequence"])

    # The failed replicas are kept, out of traffic, for debugging.
    runtimes = await platform.gql(
        "query($s: ID!) { service(id: $s) { runtimes { nodes { release { id } weight status } } } }",
        s=service_id,
    )
    kept = {r["release"]["id"]: r for r in runtimes["service"]["runtimes"]["nodes"]}
    assert kept[canary]["weight"] == 0 and kept[canary]["status"] == "RUNNING"
    assert kept[stable]["weight"] == 100

    # On-call heard of it, with the numbers, in a message Slack can show.
    deadline = time.monotonic() + DEADLINE_S
    while not received:
        assert time.monotonic() < deadline, "no alert reached the webhook"
        await asyncio.sleep(0.1)
    message = received[0]
    assert message["text"].startswith(":rewind: bad.dev.shop: deployment ")
    facts = json.dumps(message["blocks"])
    assert "5xx rate" in facts and stable in facts and "Canary" in facts
    code, out, stderr = await cli(
        platform, "alerts", "bad", "--env", "dev", "--project", "shop", "--json"
    )
    assert code == 0, stderr
    sent = json.loads(out)["alerts"]
    assert [(a["event"], a["status"]) for a in sent] == [("rollback", "DELIVERED")]
    assert sent[0]["destination"] == "http://127.0.0.1:" + webhook.split(":")[2].split("/")[0]
    assert "secret" not in out


async def test_a_healthy_canary_is_promoted_to_all_traffic(platform: Platform) -> None:
    host = "good.dev.shop.localhost"
    service_id, stable = await stable_service(platform, "good")
    await platform.apply(spec("good", pause_s=3))
    canary = await platform.release(service_id)
    async with load(platform.router, host) as traffic:
        deployment = await platform.deploy(service_id, canary, "CANARY")
        samples = await samples_of(platform.server, deployment)
        done = await platform.ended(deployment)
        settled = traffic.of(canary).get(200, 0)
        await asyncio.sleep(1)
        assert traffic.of(canary).get(200, 0) > settled
    assert done["phase"] == "HEALTHY", done
    assert done["canary"]["weight"] == 100
    assert samples and samples[-1]["verdict"] == "PASS"
    assert all(s["verdict"] != "FAIL" for s in samples)
    assert set(traffic.of(stable)) == {200}
    assert set(traffic.of(canary)) == {200}
    answered = await platform.router.get("/", headers={"host": host})
    assert answered.headers["x-enclii-release"] == canary


async def test_a_canary_with_too_little_traffic_holds_then_rolls_back_at_the_deadline(
    platform: Platform,
) -> None:
    host = "quiet.dev.shop.localhost"
    options: dict[str, Any] = {"min_requests": 1000, "deadline": 8, "pause_s": 1}
    service_id, stable = await stable_service(platform, "quiet", **options)
    await platform.apply(spec("quiet", **options))
    canary = await platform.release(service_id)
    async with load(platform.router, host, clients=1, pause_s=0.2) as traffic:
        deployment = await platform.deploy(service_id, canary, "CANARY")
        samples = await samples_of(platform.server, deployment)
        done = await platform.ended(deployment)
    assert done["phase"] == "ROLLED_BACK", done
    assert done["reason"].startswith("insufficient traffic: "), done["reason"]
    assert "of 1000 canary requests" in done["reason"]
    # Never judged, so never aborted for a failure and never promoted: it held at 50%.
    assert samples and {s["verdict"] for s in samples} == {"INCONCLUSIVE"}
    assert {s["weight"] for s in samples} == {50}
    assert traffic.of(canary).get(200, 0) > 0
    assert set(traffic.of(stable)) == {200}


async def cli(platform: Platform, *args: str, cwd: Path | None = None) -> tuple[int, str, str]:
    """`enclii …` as a user runs it, against the test server."""
    env = {
        **os.environ,
        "ENCLII_API_URL": platform.server.http_url,
        "ENCLII_TOKEN": platform.server.token,
        "LANG": "C.UTF-8",
    }
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "client.cli.main",
        *args,
        cwd=cwd,
        env=env,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    async with asyncio.timeout(DEADLINE_S):
        stdout, stderr = await process.communicate()
    assert process.returncode is not None
    return process.returncode, stdout.decode(), stderr.decode()


async def test_cli_deploy_canary_wait_prints_each_check_and_exits_30_on_rollback(
    platform: Platform,
) -> None:
    host = "clibad.dev.shop.localhost"
    _service_id, stable = await stable_service(platform, "clibad")
    (platform.source / "enclii.yaml").write_text(spec("clibad", fail_every=20))
    async with load(platform.router, host) as traffic:
        code, stdout, stderr = await cli(
            platform, "deploy", "--strategy", "canary", "--wait", "--json", cwd=platform.source
        )
    assert code == 30, stderr
    report = json.loads(stdout)
    assert report["error"]["exitCode"] == 30
    assert report["deployment"]["phase"] == "ROLLED_BACK"
    checks = report["analysis"]
    assert [c["verdict"] for c in checks[-2:]] == ["FAIL", "FAIL"]
    assert "Canary at 50% — fail:" in stderr
    assert "automated rollback after 2 failed analysis checks" in stderr
    assert set(traffic.of(stable)) == {200}


async def test_cli_pause_promote_and_abort_a_canary(platform: Platform) -> None:
    hold = spec("manual").replace(
        "{pause: {seconds: 4}}", "{pause: {}}"
    )  # a step that waits for a person
    service_id, _stable = await stable_service(platform, "manual")
    await platform.apply(hold)

    async def held_canary() -> str:
        release = await platform.release(service_id)
        deployment = await platform.deploy(service_id, release, "CANARY")
        deadline = time.monotonic() + DEADLINE_S
        while (await platform.deployment(deployment))["canary"]["weight"] != 50:
            assert time.monotonic() < deadline, "the canary never took 50%"
            await asyncio.sleep(0.2)
        return deployment

    first = await held_canary()
    code, _out, stderr = await cli(platform, "pause", first)
    assert code == 0, stderr
    paused = await platform.gql(
        "query($d: ID!) { deployment(id: $d) { generation canary { pausedBy weight } } }",
        d=first,
    )
    assert paused["deployment"]["canary"]["pausedBy"]
    code, _out, stderr = await cli(platform, "promote", first)
    assert code == 0, stderr
    assert (await platform.ended(first))["phase"] == "HEALTHY"

    second = await held_canary()
    code, _out, stderr = await cli(platform, "abort", second, "--reason", "checkout errors")
    assert code == 0, stderr
    done = await platform.ended(second)
    assert done["phase"] == "ROLLED_BACK"
    assert done["reason"].endswith(": checkout errors"), done["reason"]
    assert done["canary"]["decision"]["automated"] is False
    code, out, stderr = await cli(platform, "status", second)
    assert code == 0, stderr
    assert "CANARY" in out and "aborted by" in out, out

    # Overrides of what has ended are refused, precisely.
    code, _out, stderr = await cli(platform, "promote", second)
    assert code == 10 and "has ended (rolled-back" in stderr, stderr


async def test_a_service_over_its_error_budget_is_frozen_but_a_canary_fix_goes_out(
    platform: Platform,
) -> None:
    host = "budget.dev.shop.localhost"
    slo = "  slo: {availability: 99, windowDays: 30}\n"
    failing = spec("budget", fail_every=2) + slo  # one request in two answers 500
    service_id, _first = await stable_service(platform, "budget", fail_every=2)
    await platform.apply(failing)
    async with load(platform.router, host, clients=2) as traffic:
        deadline = time.monotonic() + DEADLINE_S
        while sum(traffic.of(_first).values()) < 200:
            assert time.monotonic() < deadline, "the load never reached 200 requests"
            await asyncio.sleep(0.1)
    await asyncio.sleep(1.5)  # the router's flush
    # A changed SLO has the SLO controller look again at once (not at its 30 s resync).
    await platform.apply(failing.replace("windowDays: 30", "windowDays: 29"))

    async def frozen() -> dict[str, Any] | None:
        found = await platform.gql(
            "query($s: ID!) { node(id: $s) { ... on Service { slo { frozen budgetSpent "
            "requests reason } } } }",
            s=service_id,
        )
        status: dict[str, Any] | None = found["node"]["slo"]
        return status if status and status["frozen"] else None

    deadline = time.monotonic() + DEADLINE_S
    while (status := await frozen()) is None:
        assert time.monotonic() < deadline, "the service was never frozen"
        await asyncio.sleep(0.2)
    assert status["budgetSpent"] > 1 and status["requests"] >= 200

    (platform.source / "enclii.yaml").write_text(failing)
    code, _out, stderr = await cli(platform, "deploy", "--strategy", "rolling", cwd=platform.source)
    assert code == 30, stderr
    assert "deploys of 'budget' are frozen" in stderr and "--strategy canary --fix" in stderr

    code, out, stderr = await cli(platform, "slo", "--json", cwd=platform.source)
    assert code == 0, stderr
    assert json.loads(out)["slo"]["frozen"] is True
    code, _out, stderr = await cli(platform, "slo", cwd=platform.source)
    assert code == 0 and "deploys are frozen" in stderr, stderr

    code, out, stderr = await cli(
        platform, "deploy", "--strategy", "canary", "--fix", "--json", cwd=platform.source
    )
    assert code == 0, stderr
    deployment = json.loads(out)["deployment"]
    assert deployment["strategy"] == "CANARY" and deployment["phase"] == "QUEUED"
    fix = await platform.gql("query($d: ID!) { deployment(id: $d) { fix } }", d=deployment["id"])
    assert fix["deployment"]["fix"] is True
    code, _out, stderr = await cli(platform, "abort", deployment["id"])
    assert code == 0, stderr
