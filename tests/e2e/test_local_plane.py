"""The local data plane end to end, as a user drives it: a real `enclii serve` process,
GraphQL over HTTP and websockets, a real build of examples/python-web, real replica
processes and the real router.

Apply the spec, build, deploy and follow the deployment, request through the router,
stream the logs live, deploy a second release, roll back — and check which release answers
at each step."""

from __future__ import annotations

import asyncio
import time
from pathlib import Path
from typing import Any

import httpx

from tests.helpers import DEADLINE_S, REPO, GraphQLWebSocket, ServerProcess, start_server_process

EXAMPLE = REPO / "examples" / "python-web"
HOST = "python-web.dev.examples.localhost"

APPLY = """mutation($yaml: String!) { applyService(input: {specYaml: $yaml}) {
  __typename ... on ApplyServiceSuccess { service { id } } ... on Error { message } } }"""
RELEASE = """mutation($s: ID!, $p: String!) { createRelease(input: {serviceId: $s, sourcePath: $p}) {
  __typename ... on CreateReleaseSuccess { release { id } } ... on Error { message } } }"""
DEPLOY = """mutation($s: ID!, $r: ID!) { deploy(input: {serviceId: $s, releaseId: $r}) {
  __typename ... on DeploySuccess { deployment { id phase } } ... on Error { message } } }"""
ROLLBACK = """mutation($s: ID!) { rollback(input: {serviceId: $s}) {
  __typename ... on RollbackSuccess { deployment { id toRelease { id } } }
  ... on Error { message } } }"""
STATUS = """subscription($d: ID!) { deploymentStatus(deploymentId: $d) {
  sequence deployment { phase reason } } }"""
LOGS = """subscription($s: ID!, $a: Int) { logs(serviceId: $s, after: $a) {
  sequence source message releaseId } }"""


async def gql(
    client: httpx.AsyncClient, query: str, variables: dict[str, Any] | None = None
) -> dict[str, Any]:
    body: dict[str, Any] = (
        await client.post("/graphql", json={"query": query, "variables": variables or {}})
    ).json()
    assert "errors" not in body, body
    data: dict[str, Any] = body["data"]
    return data


async def follow_to_the_end(server: ServerProcess, deployment_id: str) -> list[str]:
    """Every phase the deployment passes through, until the stream completes."""
    phases: list[str] = []
    async with GraphQLWebSocket.connect(server.ws_url, payload=server.ws_payload()) as ws:
        op = await ws.subscribe(STATUS, {"d": deployment_id})
        while True:
            message = await ws.receive_type("next", "complete", "error", timeout=120)
            if message["type"] != "next":
                assert message["type"] == "complete", message
                return phases
            deployment = message["payload"]["data"]["deploymentStatus"]["deployment"]
            assert deployment["phase"] != "FAILED", deployment["reason"]
            phases.append(deployment["phase"])
            assert message["id"] == op


async def answers(router: httpx.AsyncClient, count: int = 20) -> list[str]:
    """Which release answered each of ``count`` requests through the router."""
    releases = []
    for _ in range(count):
        response = await router.get("/", headers={"host": HOST})
        assert response.status_code == 200, response.text
        assert response.headers["x-enclii-release"] == response.json()["release"]
        releases.append(response.json()["release"])
    return releases


async def until(check: Any, what: str, timeout: float = DEADLINE_S) -> Any:
    deadline = time.monotonic() + timeout
    while True:
        value = await check()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"never happened: {what}")
        await asyncio.sleep(0.2)


async def scenario(server: ServerProcess) -> None:
    api = httpx.AsyncClient(base_url=server.http_url, headers=server.headers, timeout=60)
    router = httpx.AsyncClient(base_url=server.router_url, timeout=30)
    async with api, router:
        project = await gql(
            api,
            'mutation { createProject(input: {name: "Examples", slug: "examples"}) '
            "{ ... on CreateProjectSuccess { project { id } } } }",
        )
        project_id = project["createProject"]["project"]["id"]
        await gql(
            api,
            'mutation($p: ID!) { createEnvironment(input: {projectId: $p, name: "dev"}) '
            "{ __typename } }",
            {"p": project_id},
        )
        applied = await gql(api, APPLY, {"yaml": (EXAMPLE / "enclii.yaml").read_text()})
        service_id = applied["applyService"]["service"]["id"]

        # Nothing is routed yet: the router says so, precisely.
        missing = await router.get("/", headers={"host": HOST})
        assert missing.status_code in (404, 503), missing.text

        async def release_and_deploy() -> tuple[str, list[str]]:
            made = await gql(api, RELEASE, {"s": service_id, "p": str(EXAMPLE)})
            release_id: str = made["createRelease"]["release"]["id"]
            deployed = await gql(api, DEPLOY, {"s": service_id, "r": release_id})
            deployment = deployed["deploy"]["deployment"]
            return release_id, await follow_to_the_end(server, deployment["id"])

        # Follow the logs from the very first line while the first release builds and runs.
        async with GraphQLWebSocket.connect(server.ws_url, payload=server.ws_payload()) as logs:
            log_op = await logs.subscribe(LOGS, {"s": service_id, "a": 0})
            first, phases = await release_and_deploy()
            assert phases[0] == "QUEUED" and phases[-1] == "HEALTHY"
            assert "DEPLOYING" in phases
            assert set(await answers(router)) == {first}

            sources: set[str] = set()
            last = 0
            while not {"build", "replica-0"} <= sources or "listening on" not in str(sources):
                line = (await logs.next_data(log_op, timeout=60))["logs"]
                assert line["sequence"] > last, "lines arrive in order, each once"
                last = line["sequence"]
                sources.add(line["source"])
                if "listening on" in line["message"]:
                    sources.add("listening on")
            # A request through the router shows up in the live stream (the access log).
            await router.get("/live-check", headers={"host": HOST})
            while True:
                line = (await logs.next_data(log_op, timeout=60))["logs"]
                if "/live-check" in line["message"]:
                    assert line["releaseId"] == first
                    break

        second, phases = await release_and_deploy()
        assert phases[-1] == "HEALTHY"
        assert set(await answers(router)) == {second}
        runtime = await gql(
            api,
            "query($s: ID!) { runtime(serviceId: $s) { release { id } weight warmUntil "
            "replicas { ready } } }",
            {"s": service_id},
        )
        by_release = {r["release"]["id"]: r for r in runtime["runtime"]}
        assert by_release[second]["weight"] == 100
        assert by_release[first]["weight"] == 0 and by_release[first]["warmUntil"]
        assert all(r["ready"] for r in by_release[first]["replicas"]), "kept warm"

        back = await gql(api, ROLLBACK, {"s": service_id})
        rollback = back["rollback"]["deployment"]
        assert rollback["toRelease"]["id"] == first
        await follow_to_the_end(server, rollback["id"])
        assert set(await answers(router)) == {first}

        async def counted() -> Any:
            found = await gql(
                api,
                "query($s: ID!) { metrics(serviceId: $s, window: 600) { overall { requests "
                "p95Ms errorRate } releases { releaseId traffic { requests } } } }",
                {"s": service_id},
            )
            metrics = found["metrics"]
            return metrics if metrics["overall"]["requests"] >= 60 else None

        metrics = await until(counted, "the router's counts reach the store", timeout=60)
        assert metrics["overall"]["errorRate"] == 0
        assert metrics["overall"]["p95Ms"] is not None
        assert {r["releaseId"] for r in metrics["releases"]} >= {first, second}


def test_build_deploy_route_stream_roll_back(tmp_path: Path) -> None:
    server = start_server_process(tmp_path / "data")
    try:
        asyncio.run(scenario(server))
    finally:
        server.terminate()
