"""SIGKILL the control plane in the middle of deploys, twenty times: no release is lost, no
replica is doubled, and everything converges once it runs again.

A real `enclii serve` (SQLite) builds and deploys a small service over and over; after each
deploy it is killed at a random moment — mid-build, mid-rollout, mid-write — and started
again on the same data dir (adopting the router and the replicas). The random moments come
from a seeded generator, so a failure can be replayed."""

from __future__ import annotations

import os
import random
import signal
import textwrap
import time
from collections import Counter
from pathlib import Path
from typing import Any

import httpx
import psutil

from tests.helpers import ServerProcess, start_server_process

KILLS = 20
REPLICAS = 2
SEED = 20261127
SERVICE = "crashy.dev.shop"
CONVERGE_S = 120.0

APP = textwrap.dedent(
    """
    import os
    from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self):
            body = os.environ["ENCLII_RELEASE_ID"].encode()
            self.send_response(200)
            self.send_header("content-length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args):
            pass

    ThreadingHTTPServer(("127.0.0.1", int(os.environ["PORT"])), Handler).serve_forever()
    """
)

SPEC = f"""apiVersion: enclii.dev/v1
kind: Service
metadata: {{project: shop, environment: dev, name: crashy}}
spec:
  runtime:
    cmd: ["python3", "app.py"]
    ports: [8080]
    replicas: {{min: {REPLICAS}}}
  health:
    readiness: {{httpGet: /, periodSeconds: 0.2}}
  deploy:
    progressDeadlineSeconds: 60
    rollbackWindowSeconds: 0
"""


def gql(server: ServerProcess, query: str, **variables: Any) -> dict[str, Any]:
    body: dict[str, Any] = httpx.post(
        f"{server.http_url}/graphql",
        json={"query": query, "variables": variables},
        headers=server.headers,
        timeout=30,
    ).json()
    assert "errors" not in body, body
    data: dict[str, Any] = body["data"]
    return data


def replica_processes() -> Counter[tuple[str, str]]:
    """(release, replica index) of every live replica process of the service."""
    found: Counter[tuple[str, str]] = Counter()
    for process in psutil.process_iter(["pid"]):
        try:
            env = process.environ()
            if env.get("ENCLII_SERVICE") == SERVICE and process.status() != psutil.STATUS_ZOMBIE:
                found[(env["ENCLII_RELEASE_ID"], env["ENCLII_REPLICA"])] += 1
        except (psutil.Error, KeyError):
            continue
    return found


def kill(server: ServerProcess) -> None:
    os.killpg(server.process.pid, signal.SIGKILL)
    server.process.wait(30)


def test_sigkill_during_deploys_loses_nothing_and_doubles_nothing(tmp_path: Path) -> None:
    rng = random.Random(SEED)
    source = tmp_path / "app"
    source.mkdir()
    (source / "app.py").write_text(APP)
    data = tmp_path / "data"
    server = start_server_process(data)
    try:
        project = gql(
            server,
            'mutation { createProject(input: {name: "Shop", slug: "shop"}) '
            "{ ... on CreateProjectSuccess { project { id } } } }",
        )["createProject"]["project"]["id"]
        gql(
            server,
            'mutation($p: ID!) { createEnvironment(input: {projectId: $p, name: "dev"}) '
            "{ __typename } }",
            p=project,
        )
        service = gql(
            server,
            "mutation($y: String!) { applyService(input: {specYaml: $y}) "
            "{ ... on ApplyServiceSuccess { service { id } } } }",
            y=SPEC,
        )["applyService"]["service"]["id"]

        releases: list[str] = []
        deployments: list[str] = []
        for _ in range(KILLS):
            release = gql(
                server,
                "mutation($s: ID!, $p: String!) { createRelease(input: "
                "{serviceId: $s, sourcePath: $p}) { ... on CreateReleaseSuccess "
                "{ release { id } } } }",
                s=service,
                p=str(source),
            )["createRelease"]["release"]["id"]
            releases.append(release)
            deployed = gql(
                server,
                "mutation($s: ID!, $r: ID!) { deploy(input: {serviceId: $s, releaseId: $r}) "
                "{ __typename ... on DeploySuccess { deployment { id } } } }",
                s=service,
                r=release,
            )["deploy"]
            assert deployed["__typename"] == "DeploySuccess", deployed
            deployments.append(deployed["deployment"]["id"])
            time.sleep(rng.uniform(0.0, 1.5))
            kill(server)
            server = start_server_process(data, router_port=server.router_port)

        final = releases[-1]
        deadline = time.monotonic() + CONVERGE_S
        while True:
            phase = gql(
                server, "query($d: ID!) { deployment(id: $d) { phase reason } }", d=deployments[-1]
            )["deployment"]
            processes = replica_processes()
            if phase["phase"] == "HEALTHY" and set(processes) == {
                (final, str(i)) for i in range(REPLICAS)
            }:
                break
            assert phase["phase"] != "FAILED", phase["reason"]
            if time.monotonic() > deadline:
                raise AssertionError(f"not converged: {phase}, processes {dict(processes)}")
            time.sleep(0.25)

        # No replica doubled: one process per (release, index), the final release's only.
        assert processes == Counter({(final, str(i)): 1 for i in range(REPLICAS)})
        # No release lost: every one was built (a build killed midway was done again).
        statuses = gql(
            server,
            "query($s: ID!) { node(id: $s) { ... on Service { releases(first: 100) "
            "{ nodes { id status } } } } }",
            s=service,
        )["node"]["releases"]["nodes"]
        assert {r["id"]: r["status"] for r in statuses} == dict.fromkeys(releases, "READY")
        # Every earlier deployment ended: superseded by the next one, or healthy before it.
        for deployment in deployments[:-1]:
            phase = gql(server, "query($d: ID!) { deployment(id: $d) { phase } }", d=deployment)
            assert phase["deployment"]["phase"] in ("HEALTHY", "SUPERSEDED"), phase
        # The router, adopted twenty times, sends every request to the final release.
        for _ in range(10):
            response = httpx.get(server.router_url, headers={"host": f"{SERVICE}.localhost"})
            assert (response.status_code, response.text) == (200, final)
            assert response.headers["x-enclii-release"] == final
    finally:
        server.terminate()
