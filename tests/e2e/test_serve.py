"""`enclii serve` as a real process on the embedded default (SQLite in a data dir)."""

from __future__ import annotations

import asyncio
import sqlite3
import stat
import subprocess
import sys
from pathlib import Path

import httpx

from tests.helpers import GraphQLWebSocket, ServerProcess, start_server_process

CREATE = 'mutation { createProject(input: {name: "Shop"}) { ... on CreateProjectSuccess { project { id } } } }'


def _gql(server: ServerProcess, query: str) -> dict[str, object]:
    response = httpx.post(
        f"{server.http_url}/graphql", json={"query": query}, headers=server.headers, timeout=30
    )
    body: dict[str, object] = response.json()
    assert "errors" not in body, body
    return body


def test_serve_creates_data_dir_migrates_and_answers(tmp_path: Path) -> None:
    data_dir = tmp_path / "enclii-data"
    # No UI build, whether or not this checkout has one: / must then say how to build it.
    server = start_server_process(data_dir, extra_env={"ENCLII_WEB_DIST": str(tmp_path / "no-ui")})
    try:
        assert stat.S_IMODE(data_dir.stat().st_mode) == 0o700
        token_file = data_dir / "bootstrap-token"
        assert stat.S_IMODE(token_file.stat().st_mode) == 0o600
        assert token_file.read_text().startswith("enclii_pat_")
        anonymous = httpx.post(
            f"{server.http_url}/graphql", json={"query": "{ projects { totalCount } }"}
        )
        assert anonymous.status_code == 401
        assert anonymous.json()["errors"][0]["extensions"] == {
            "code": "UNAUTHENTICATED",
            "reason": "TOKEN_MISSING",
        }
        assert (data_dir / "enclii.db").exists()
        assert httpx.get(f"{server.http_url}/healthz").json() == {"status": "ok"}
        assert httpx.get(f"{server.http_url}/readyz").json() == {
            "status": "ready",
            "store": "sqlite",
        }
        index = httpx.get(f"{server.http_url}/")
        assert index.status_code == 200
        assert "Enclii is running" in index.text
        assert "npm --prefix web ci" in index.text
        graphiql = httpx.get(f"{server.http_url}/graphql", headers={"accept": "text/html"})
        assert graphiql.status_code == 200
        assert "graphiql" in graphiql.text.lower()
        via_get = httpx.get(
            f"{server.http_url}/graphql",
            params={"query": "{ viewer { account { name } } }"},
            headers=server.headers,
        )
        assert via_get.json() == {"data": {"viewer": {"account": {"name": "Default account"}}}}
        _gql(server, CREATE)
    finally:
        assert server.terminate() == 0
    output = server.output()
    assert f"API       {server.http_url}/graphql" in output
    assert f"UI        {server.http_url}/   (not built: npm --prefix web ci" in output
    assert str(data_dir) in output

    # Restarting on the same data dir keeps everything, creates no second owner and
    # leaves the token file as it was.
    first_token = (data_dir / "bootstrap-token").read_text()
    again = start_server_process(data_dir)
    assert (data_dir / "bootstrap-token").read_text() == first_token
    try:
        body = _gql(
            again, "{ projects { totalCount } viewer { account { users { totalCount } } } }"
        )
        assert body["data"] == {
            "projects": {"totalCount": 1},
            "viewer": {"account": {"users": {"totalCount": 1}}},
        }
    finally:
        assert again.terminate() == 0
    with sqlite3.connect(data_dir / "enclii.db") as db:
        assert db.execute("PRAGMA journal_mode").fetchone() == ("wal",)


def test_sigterm_completes_open_subscriptions_then_exits_cleanly(tmp_path: Path) -> None:
    server = start_server_process(tmp_path / "data")
    project_id = _gql(server, CREATE)["data"]["createProject"]["project"]["id"]  # type: ignore[index]

    async def scenario() -> list[dict[str, object]]:
        received: list[dict[str, object]] = []
        async with (
            GraphQLWebSocket.connect(server.ws_url, payload=server.ws_payload()) as modern,
            GraphQLWebSocket.connect(
                server.ws_url, "graphql-ws", payload=server.ws_payload()
            ) as legacy,
        ):
            query = "subscription($p: ID!) { events(projectId: $p, after: 0) { sequence } }"
            op_modern = await modern.subscribe(query, {"p": project_id})
            op_legacy = await legacy.subscribe(query, {"p": project_id})
            assert (await modern.next_data(op_modern))["events"] == {"sequence": 1}
            assert (await legacy.next_data(op_legacy))["events"] == {"sequence": 1}
            await asyncio.to_thread(server.process.terminate)  # SIGTERM
            received.append(await modern.receive_type("complete"))
            received.append(await legacy.receive_type("complete"))
        return received

    completes = asyncio.run(scenario())
    assert [c["type"] for c in completes] == ["complete", "complete"]
    assert server.process.wait(30) == 0
    assert "Traceback" not in server.output(), server.output()


def test_bad_database_url_is_refused_with_the_forms_that_work(tmp_path: Path) -> None:
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "client.cli.main",
            "serve",
            "--data-dir",
            str(tmp_path),
            "--database-url",
            "mysql://root@localhost/enclii",
        ],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 10
    assert (
        "Database URL scheme 'mysql' is not supported; use sqlite:///PATH or postgresql://"
        in result.stderr
    )
    assert list(tmp_path.iterdir()) == [], "a refused start must not create anything"
