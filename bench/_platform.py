"""Driving a real `enclii serve` through its GraphQL API, as a remote client does: apply an
example, create a release from its folder, deploy, roll back, wait for a phase, ask the
router which release answers. Shared by bench/deploy.py and bench/rollback.py."""

from __future__ import annotations

import asyncio
import json
import time
from typing import Any

import httpx

from bench._common import REPO
from client.cli.target import tarball  # what the CLI uploads, the bench uploads

EXAMPLE = REPO / "examples" / "python-web"
DEADLINE_S = 120.0

CREATE_RELEASE = (
    "mutation($input: CreateReleaseInput!) { createRelease(input: $input) "
    "{ ... on CreateReleaseSuccess { release { id } } ... on Error { message } } }"
)


async def gql(api: httpx.AsyncClient, query: str, **variables: Any) -> dict[str, Any]:
    body: dict[str, Any] = (
        await api.post("/graphql", json={"query": query, "variables": variables})
    ).json()
    if "errors" in body:
        raise RuntimeError(body["errors"])
    data: dict[str, Any] = body["data"]
    return data


def success(result: dict[str, Any], field: str) -> dict[str, Any]:
    """The payload of a mutation's success member, or the refusal's message as an error."""
    if field not in result:
        raise RuntimeError(result.get("message", result))
    value: dict[str, Any] = result[field]
    return value


def host_of(name: str, project: str = "bench", env: str = "dev") -> str:
    return f"{name}.{env}.{project}.localhost"


async def apply_example(api: httpx.AsyncClient, name: str) -> str:
    """examples/python-web applied as service ``name`` of project bench; its ID."""
    spec = (
        (EXAMPLE / "enclii.yaml")
        .read_text()
        .replace("project: examples", "project: bench")
        .replace("name: python-web", f"name: {name}")
    )
    applied = await gql(
        api,
        "mutation($y: String!) { applyService(input: {specYaml: $y}) "
        "{ ... on ApplyServiceSuccess { service { id } } ... on Error { message } } }",
        y=spec,
    )
    service: str = success(applied["applyService"], "service")["id"]
    return service


async def create_release(api: httpx.AsyncClient, service: str, upload: bool) -> str:
    """A release of the example: from its folder on the embedded default; elsewhere the
    source goes up as a tarball (a GraphQL multipart request). Its ID."""
    if not upload:
        made = await gql(
            api, CREATE_RELEASE, input={"serviceId": service, "sourcePath": str(EXAMPLE)}
        )
        result: dict[str, Any] = made["createRelease"]
    else:
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
    release: str = success(result, "release")["id"]
    return release


async def deploy(api: httpx.AsyncClient, service: str, release: str) -> str:
    deployed = await gql(
        api,
        "mutation($s: ID!, $r: ID!) { deploy(input: {serviceId: $s, releaseId: $r}) "
        "{ ... on DeploySuccess { deployment { id } } ... on Error { message } } }",
        s=service,
        r=release,
    )
    deployment: str = success(deployed["deploy"], "deployment")["id"]
    return deployment


async def rollback(api: httpx.AsyncClient, service: str) -> str:
    back = await gql(
        api,
        "mutation($s: ID!) { rollback(input: {serviceId: $s}) "
        "{ ... on RollbackSuccess { deployment { id } } ... on Error { message } } }",
        s=service,
    )
    deployment: str = success(back["rollback"], "deployment")["id"]
    return deployment


async def states(api: httpx.AsyncClient, release: str, deployment: str) -> tuple[str, str]:
    """The release's status and the deployment's phase (a FAILED one raises its reason)."""
    state = await gql(
        api,
        "query($r: ID!, $d: ID!) { node(id: $r) { ... on Release { status } } "
        "deployment(id: $d) { phase reason } }",
        r=release,
        d=deployment,
    )
    if state["deployment"]["phase"] == "FAILED":
        raise RuntimeError(state["deployment"]["reason"])
    return state["node"]["status"], state["deployment"]["phase"]


async def until_healthy(api: httpx.AsyncClient, release: str, deployment: str) -> None:
    deadline = time.monotonic() + DEADLINE_S
    while (await states(api, release, deployment))[1] != "HEALTHY":
        if time.monotonic() > deadline:
            raise RuntimeError(f"{deployment} not HEALTHY within {DEADLINE_S:.0f} s")
        await asyncio.sleep(0.05)


async def answering(router: httpx.AsyncClient, host: str) -> str | None:
    """The release that answered one request through the router (None: not a 200)."""
    try:
        response = await router.get("/", headers={"host": host})
    except httpx.HTTPError:
        return None
    if response.status_code != 200:
        return None
    release: str = response.json()["release"]
    return release
