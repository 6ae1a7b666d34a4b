"""Two API replicas on one PostgreSQL: events written through one reach subscribers of the
other, and a killed LISTEN connection loses nothing."""

from __future__ import annotations

import asyncio
import time
from pathlib import Path

import asyncpg
import httpx
import pytest
from sqlalchemy.engine import make_url

from tests.helpers import GraphQLWebSocket, ServerProcess, start_server_process

pytestmark = pytest.mark.postgres

EVENTS = "subscription($p: ID!, $a: Int) { events(projectId: $p, after: $a) { sequence type } }"


TOKEN: dict[str, str] = {}


def _gql(
    server: ServerProcess, query: str, variables: dict[str, object] | None = None
) -> dict[str, object]:
    body: dict[str, object] = httpx.post(
        f"{server.http_url}/graphql",
        json={"query": query, "variables": variables or {}},
        headers={"authorization": f"Bearer {TOKEN['token']}"},
        timeout=30,
    ).json()
    assert "errors" not in body, body
    data: dict[str, object] = body["data"]  # type: ignore[assignment]
    return data


def _create_env(server: ServerProcess, project_id: str, name: str) -> None:
    data = _gql(
        server,
        "mutation($p: ID!, $n: String!) { createEnvironment(input: {projectId: $p, name: $n}) "
        "{ __typename } }",
        {"p": project_id, "n": name},
    )
    assert data == {"createEnvironment": {"__typename": "CreateEnvironmentSuccess"}}


async def _listener_pids(dsn: str, server: ServerProcess) -> list[int]:
    conn = await asyncpg.connect(dsn)
    try:
        rows = await conn.fetch(
            "SELECT pid FROM pg_stat_activity WHERE application_name = $1",
            f"enclii-listener:{server.process.pid}",
        )
    finally:
        await conn.close()
    return [r["pid"] for r in rows]


def test_events_cross_replicas_and_survive_a_killed_listener(tmp_path: Path, pg_url: str) -> None:
    dsn = make_url(pg_url).set(drivername="postgresql").render_as_string(hide_password=False)
    writer = start_server_process(tmp_path / "a", database_url=pg_url)
    reader = start_server_process(tmp_path / "b", database_url=pg_url)
    # Exactly one replica created the account and wrote the Owner's token; it works on both.
    written = [p for p in (tmp_path / "a", tmp_path / "b") if (p / "bootstrap-token").exists()]
    assert len(written) == 1
    TOKEN["token"] = (written[0] / "bootstrap-token").read_text().strip()
    try:
        project = _gql(
            writer,
            'mutation { createProject(input: {name: "Shop"}) '
            "{ ... on CreateProjectSuccess { project { id } } } }",
        )
        project_id = project["createProject"]["project"]["id"]  # type: ignore[index]
        # Both replicas see one account, whichever bootstrapped first.
        assert _gql(reader, "{ projects { totalCount } }") == {"projects": {"totalCount": 1}}

        async def scenario() -> list[int]:
            seen: list[int] = []
            payload = {"authorization": f"Bearer {TOKEN['token']}"}
            async with GraphQLWebSocket.connect(reader.ws_url, payload=payload) as ws:
                op = await ws.subscribe(EVENTS, {"p": project_id, "a": 0})
                seen.append((await ws.next_data(op))["events"]["sequence"])  # project.created

                await asyncio.to_thread(_create_env, writer, project_id, "dev")
                seen.append((await ws.next_data(op))["events"]["sequence"])

                before = await _listener_pids(dsn, reader)
                assert len(before) == 1
                conn = await asyncpg.connect(dsn)
                try:
                    await conn.execute("SELECT pg_terminate_backend($1)", before[0])
                finally:
                    await conn.close()
                # Written through the other replica while this one's listener is gone.
                for i in range(10):
                    await asyncio.to_thread(_create_env, writer, project_id, f"preview-{i}")
                for _ in range(10):
                    seen.append((await ws.next_data(op))["events"]["sequence"])

                deadline = time.monotonic() + 30
                while True:
                    after = await _listener_pids(dsn, reader)
                    if after and after != before:
                        break
                    assert time.monotonic() < deadline, "the listener did not reconnect"
                    await asyncio.sleep(0.1)
                await asyncio.to_thread(_create_env, writer, project_id, "prod")
                seen.append((await ws.next_data(op))["events"]["sequence"])
            return seen

        assert asyncio.run(scenario()) == list(range(1, 14))
        assert httpx.get(f"{reader.http_url}/readyz").json()["status"] == "ready"
    finally:
        writer_code = writer.terminate()
        reader_code = reader.terminate()
    assert (writer_code, reader_code) == (0, 0)
