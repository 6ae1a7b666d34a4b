"""Apply → first 200 through the router, for examples/python-web with a warm package cache.

Against a real `enclii serve` (its own router, real builds, real replicas): one deploy first
warms pip's cache and the interpreter's file cache, then each measured round applies the
example as a new service, creates a release from its folder (uploaded as a tarball on
PostgreSQL, as a remote client must), deploys it and requests it through the router until
the first 200. Prints every round and the median, split into
apply+build, rollout, and first answer. Target: ≤ 5 s.

    python bench/deploy.py [--backend sqlite|postgres] [--rounds 5]
"""

from __future__ import annotations

import argparse
import asyncio
import io
import json
import statistics
import sys
import tarfile
import time
from pathlib import Path
from typing import Any

import httpx

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench._common import REPO, Server, database, machine, seed, server

TARGET_S = 5.0
EXAMPLE = REPO / "examples" / "python-web"
DEADLINE_S = 120.0


async def gql(api: httpx.AsyncClient, query: str, **variables: Any) -> dict[str, Any]:
    body: dict[str, Any] = (
        await api.post("/graphql", json={"query": query, "variables": variables})
    ).json()
    if "errors" in body:
        raise RuntimeError(body["errors"])
    data: dict[str, Any] = body["data"]
    return data


def success(result: dict[str, Any], field: str) -> dict[str, Any]:
    if field not in result:
        raise RuntimeError(result.get("message", result))
    value: dict[str, Any] = result[field]
    return value


def tarball(folder: Path) -> bytes:
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w:gz") as tar:
        for path in sorted(folder.iterdir()):
            tar.add(path, arcname=path.name)
    return buffer.getvalue()


CREATE_RELEASE = (
    "mutation($input: CreateReleaseInput!) { createRelease(input: $input) "
    "{ ... on CreateReleaseSuccess { release { id } } ... on Error { message } } }"
)


async def create_release(api: httpx.AsyncClient, service: str, upload: bool) -> dict[str, Any]:
    """From the folder on the embedded default; elsewhere the source goes up as a tarball
    (a GraphQL multipart request), as the CLI sends it."""
    if not upload:
        made = await gql(
            api, CREATE_RELEASE, input={"serviceId": service, "sourcePath": str(EXAMPLE)}
        )
        result: dict[str, Any] = made["createRelease"]
        return result
    operations = {"query": CREATE_RELEASE, "variables": {"input": {"serviceId": service}}}
    response = await api.post(
        "/graphql",
        data={
            "operations": json.dumps(operations),
            "map": json.dumps({"0": ["variables.input.source"]}),
        },
        files={"0": ("source.tar.gz", tarball(EXAMPLE), "application/gzip")},
    )
    body: dict[str, Any] = response.json()
    if "errors" in body:
        raise RuntimeError(body["errors"])
    result = body["data"]["createRelease"]
    return result


async def one_deploy(
    api: httpx.AsyncClient, router: httpx.AsyncClient, name: str, upload: bool
) -> dict[str, float]:
    spec = (
        (EXAMPLE / "enclii.yaml")
        .read_text()
        .replace("project: examples", "project: bench")
        .replace("name: python-web", f"name: {name}")
    )
    host = f"{name}.dev.bench.localhost"
    started = time.perf_counter()
    applied = await gql(
        api,
        "mutation($y: String!) { applyService(input: {specYaml: $y}) "
        "{ ... on ApplyServiceSuccess { service { id } } ... on Error { message } } }",
        y=spec,
    )
    service = success(applied["applyService"], "service")["id"]
    release = success(await create_release(api, service, upload), "release")["id"]
    deployed = await gql(
        api,
        "mutation($s: ID!, $r: ID!) { deploy(input: {serviceId: $s, releaseId: $r}) "
        "{ ... on DeploySuccess { deployment { id } } ... on Error { message } } }",
        s=service,
        r=release,
    )
    deployment = success(deployed["deploy"], "deployment")["id"]
    built = rolled = None
    deadline = time.perf_counter() + DEADLINE_S
    while True:
        if built is None or rolled is None:
            state = await gql(
                api,
                "query($r: ID!, $d: ID!) { node(id: $r) { ... on Release { status } } "
                "deployment(id: $d) { phase reason } }",
                r=release,
                d=deployment,
            )
            if built is None and state["node"]["status"] == "READY":
                built = time.perf_counter()
            if state["deployment"]["phase"] == "FAILED":
                raise RuntimeError(state["deployment"]["reason"])
            if rolled is None and state["deployment"]["phase"] == "HEALTHY":
                rolled = time.perf_counter()
        response = await router.get("/", headers={"host": host})
        if response.status_code == 200:
            answered = time.perf_counter()
            break
        if time.perf_counter() > deadline:
            raise RuntimeError(f"no 200 from {host} in {DEADLINE_S}s: {response.text}")
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


if __name__ == "__main__":
    main()
