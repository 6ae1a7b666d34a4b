"""The CLI as users and CI run it: `enclii` subprocesses against a real `enclii serve` with
real builds, replicas and router. Every exit code, --json shapes, CI mode, Spanish, and
logs -f surviving a server restart."""

from __future__ import annotations

import json
import os
import re
import shutil
import signal
import subprocess
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest

from reconcile.local.processes import kill_recorded
from tests.helpers import (
    DEADLINE_S,
    ENCLII_CLI,
    REPO,
    ServerProcess,
    cli_env,
    running_server,
    start_server_process,
)

EXAMPLE = REPO / "examples" / "python-web"


@dataclass
class Cli:
    server: ServerProcess
    home: Path  # XDG_CONFIG_HOME: profiles never touch the real one

    def env(self, **extra: str) -> dict[str, str]:
        return cli_env(self.home, f"{self.server.http_url}/graphql", self.server.token, **extra)

    def run(
        self, *args: str, cwd: Path | None = None, stdin: str | None = None, **env: str
    ) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [*ENCLII_CLI, *args],
            cwd=cwd or self.home,
            env=self.env(**env),
            input=stdin,
            capture_output=True,
            text=True,
            timeout=DEADLINE_S * 4,
        )

    def json(self, *args: str, cwd: Path | None = None, **env: str) -> Any:
        done = self.run(*args, "--json", cwd=cwd, **env)
        assert done.returncode == 0, done.stderr
        return json.loads(done.stdout)

    def answer(self, host: str, path: str = "/") -> str:
        """The release answering at ``host`` through the router (waiting, within the
        deadline, for the router to load a table that routes it)."""
        deadline = time.monotonic() + DEADLINE_S
        while True:
            response = httpx.get(
                f"{self.server.router_url}{path}", headers={"host": host}, timeout=10
            )
            if response.status_code == 200 or time.monotonic() > deadline:
                break
            time.sleep(0.05)
        assert response.status_code == 200, response.text
        release: str = response.json()["release"]
        return release


@pytest.fixture(scope="module")
def cli(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Cli]:
    root = tmp_path_factory.mktemp("cli")
    (root / "home").mkdir()
    with running_server(root) as server:
        yield Cli(server, root / "home")


def app_folder(tmp_path: Path, project: str, **replace: str) -> Path:
    """A copy of examples/python-web as service ``web`` of ``project``."""
    folder = tmp_path / "web"
    shutil.copytree(EXAMPLE, folder)
    spec = (folder / "enclii.yaml").read_text()
    spec = (
        spec.replace("project: examples", f"project: {project}")
        .replace("name: python-web", "name: web")
        .replace("environment: dev", "environment: stage")
    )
    for old, new in replace.items():
        spec = spec.replace(old, new)
    (folder / "enclii.yaml").write_text(spec)
    return folder


def count_projects(cli: Cli) -> int:
    data = cli.json("api", "{ projects(first: 100) { totalCount } }")
    total: int = data["data"]["projects"]["totalCount"]
    return total


# -- deploy, its exit codes and its output ---------------------------------------------------


def test_deploy_wait_creates_what_is_missing_builds_deploys_and_routes(
    cli: Cli, tmp_path: Path
) -> None:
    folder = app_folder(tmp_path, "alpha")
    done = cli.run("deploy", "--env", "stage", "--wait", "--json", cwd=folder)
    assert done.returncode == 0, done.stderr
    report = json.loads(done.stdout)
    assert set(report) == {"service", "release", "deployment", "url"}
    assert report["url"] == "http://web.stage.alpha.localhost/"  # a remote router: no port
    assert report["service"]["name"] == "web"
    deployment = report["deployment"]
    assert deployment["phase"] == "HEALTHY"
    assert deployment["toRelease"]["id"] == report["release"]["id"]
    assert deployment["service"]["environment"]["name"] == "stage"
    assert "Created project alpha (it did not exist)" in done.stderr
    assert "Created environment stage in alpha (it did not exist)" in done.stderr
    assert "Clear to deploy" in done.stderr
    # CI=true: no spinners or progress lines, nothing but the document on stdout.
    assert "Holding at Junction" not in done.stderr
    assert cli.answer("web.stage.alpha.localhost") == report["release"]["id"]

    # A second deploy of the same folder is a new release; the first is kept for rollback.
    again = cli.json("deploy", "--env", "stage", "--wait", cwd=folder)
    second = again["release"]["id"]
    assert second != report["release"]["id"]
    listed = cli.json("releases", "web", "--env", "stage", "--project", "alpha")
    assert listed["serving"] == second
    assert [r["id"] for r in listed["releases"]] == [second, report["release"]["id"]]
    assert listed["releases"][0]["createdByUser"] == {"displayName": "Owner"}
    table = cli.run("releases", "web", "--env", "stage", "--project", "alpha")
    assert "Owner" in table.stdout and "usr_" not in table.stdout  # people by name

    # rollback --wait: the first release answers again, within the same command.
    back = cli.run("rollback", "--wait", cwd=folder)
    assert back.returncode == 0, back.stderr
    assert cli.answer("web.stage.alpha.localhost") == report["release"]["id"]

    status = cli.json("status", again["deployment"]["id"])
    assert status["id"] == again["deployment"]["id"]
    assert status["phase"] == "ROLLED_BACK"
    assert cli.json("status", deployment["id"])["phase"] == "HEALTHY"  # history stays


def test_a_bad_spec_exits_10_and_creates_nothing(cli: Cli, tmp_path: Path) -> None:
    folder = app_folder(
        tmp_path, "bravo", **{"replicas: { min: 1, max: 2 }": "replicas: { min: 6, max: 5 }"}
    )
    before = count_projects(cli)
    done = cli.run("deploy", "--env", "stage", cwd=folder)
    assert done.returncode == 10, done.stderr
    assert "min 6 is greater than max 5" in done.stderr
    assert "(line 11)" in done.stderr
    assert count_projects(cli) == before


def test_a_missing_spec_and_a_missing_service_exit_10(cli: Cli, tmp_path: Path) -> None:
    done = cli.run("deploy", "--env", "stage", cwd=tmp_path)
    assert done.returncode == 10
    assert "no enclii.yaml here" in done.stderr
    done = cli.run("logs", "ghost", "--env", "stage", "--project", "alpha")
    assert done.returncode == 10
    assert "no service 'ghost' in alpha/stage" in done.stderr


def test_a_failed_build_exits_20(cli: Cli, tmp_path: Path) -> None:
    folder = app_folder(tmp_path, "charlie")
    (folder / "requirements.txt").write_text("./wheels/missing-1.0-py3-none-any.whl\n")
    done = cli.run("deploy", "--env", "stage", "--wait", cwd=folder)
    assert done.returncode == 20, done.stderr
    assert "failed" in done.stderr
    # The hint names the command that shows the build's own output.
    found = re.search(r"enclii logs --release (rel_\w+)", done.stderr)
    assert found is not None, done.stderr
    shown = cli.run("logs", "--release", found[1], "--json", cwd=folder)
    lines = [json.loads(line) for line in shown.stdout.splitlines()]
    assert lines and {line["releaseId"] for line in lines} == {found[1]}
    assert any("missing-1.0-py3-none-any.whl" in line["message"] for line in lines)


def test_a_failed_deployment_exits_30(cli: Cli, tmp_path: Path) -> None:
    folder = app_folder(tmp_path, "delta")
    (folder / "app.py").write_text("import sys\nprint('cannot start', flush=True)\nsys.exit(3)\n")
    spec = (folder / "enclii.yaml").read_text() + "  deploy: {progressDeadlineSeconds: 10}\n"
    (folder / "enclii.yaml").write_text(spec)
    done = cli.run("deploy", "--env", "stage", "--wait", "--json", cwd=folder)
    assert done.returncode == 30, done.stderr
    report = json.loads(done.stdout)  # one document: the deployment, and the error
    assert report["deployment"]["phase"] == "FAILED"
    assert report["error"]["exitCode"] == 30
    assert "failed" in done.stderr
    # `status --wait` of a deployment that failed says so in its exit code too.
    status = cli.run("status", report["deployment"]["id"], "--wait", "--json")
    assert status.returncode == 30
    assert json.loads(status.stdout)["phase"] == "FAILED"


def test_a_wait_that_runs_out_exits_40_and_the_deployment_goes_on(cli: Cli, tmp_path: Path) -> None:
    folder = app_folder(tmp_path, "echo")
    (folder / "app.py").write_text(
        "import time\ntime.sleep(30)\n" + (EXAMPLE / "app.py").read_text()
    )
    done = cli.run("deploy", "--env", "stage", "--wait", "--timeout", "3", cwd=folder)
    assert done.returncode == 40, done.stderr
    assert "enclii status dep_" in done.stderr


def test_a_bad_token_exits_50(cli: Cli) -> None:
    done = cli.run("auth", "whoami", ENCLII_TOKEN="enclii_pat_" + "x" * 36)
    assert done.returncode == 50
    assert "enclii auth login" in done.stderr
    done = cli.run("auth", "whoami", "--json", ENCLII_TOKEN="nonsense")
    assert done.returncode == 50
    assert json.loads(done.stdout)["error"]["exitCode"] == 50


def test_an_unreachable_server_exits_1_with_a_hint(cli: Cli) -> None:
    done = cli.run("auth", "whoami", ENCLII_API_URL="http://127.0.0.1:9/graphql")
    assert done.returncode == 1
    assert "enclii serve" in done.stderr


# -- the other verbs ------------------------------------------------------------------------


def test_routes_add_list_remove(cli: Cli, tmp_path: Path) -> None:
    folder = app_folder(tmp_path, "foxtrot")
    assert cli.run("deploy", "--env", "stage", "--wait", cwd=folder).returncode == 0
    added = cli.json("routes", "add", "--host", "web.foxtrot.test", "--path", "/v1", cwd=folder)
    assert (added["host"], added["path"], added["source"]) == ("web.foxtrot.test", "/v1", "API")
    listed = cli.json("routes", "list", cwd=folder)
    assert [(r["host"], r["path"]) for r in listed] == [("web.foxtrot.test", "/v1")]
    assert cli.answer("web.foxtrot.test", "/v1/x")  # routed, as the spec's would be
    removed = cli.json(
        "routes", "remove", "--host", "web.foxtrot.test", "--path", "/v1", cwd=folder
    )
    assert removed == {"removedRouteId": added["id"]}
    again = cli.run("routes", "remove", "--host", "web.foxtrot.test", cwd=folder)
    assert again.returncode == 10
    assert "has no route web.foxtrot.test/" in again.stderr


def test_auth_login_whoami_token_create_and_logout(cli: Cli) -> None:
    made = cli.json("auth", "token", "create", "ci", "--scopes", "logs:read", "--expires", "7d")
    secret = made["secret"]
    assert secret.startswith("enclii_pat_")
    assert made["token"]["scopes"] == ["logs:read"]

    url = f"{cli.server.http_url}/graphql"
    login = cli.run(
        "auth",
        "login",
        "--api-url",
        url,
        "--token-stdin",
        "--profile",
        "ci",
        stdin=secret + "\n",
        ENCLII_API_URL="",
        ENCLII_TOKEN="",
    )
    assert login.returncode == 0, login.stderr
    config = cli.home / "enclii" / "config.toml"
    assert config.stat().st_mode & 0o777 == 0o600
    who = cli.json("--profile", "ci", "auth", "whoami", ENCLII_API_URL="", ENCLII_TOKEN="")
    assert who["url"] == url
    assert who["source"] == "profile ci"
    assert who["user"]["displayName"] == "Owner"

    assert (
        cli.run("--profile", "ci", "auth", "logout", ENCLII_API_URL="", ENCLII_TOKEN="").returncode
        == 0
    )
    signed_out = cli.run("--profile", "ci", "auth", "whoami", ENCLII_API_URL="", ENCLII_TOKEN="")
    assert signed_out.returncode == 50
    unknown = cli.run("--profile", "nope", "auth", "whoami", ENCLII_API_URL="", ENCLII_TOKEN="")
    assert unknown.returncode == 10
    assert "no profile 'nope'" in unknown.stderr


def test_api_runs_any_operation(cli: Cli) -> None:
    data = cli.json("api", "query($n: Int) { projects(first: $n) { totalCount } }", "--var", "n=5")
    assert data["data"]["projects"]["totalCount"] >= 0
    bad = cli.run("api", "{ nope }")
    assert bad.returncode == 10
    assert json.loads(bad.stdout)["error"]["code"] == "GRAPHQL_VALIDATION_FAILED"


def test_messages_in_spanish(cli: Cli, tmp_path: Path) -> None:
    folder = app_folder(tmp_path, "golf")
    done = cli.run("deploy", "--env", "stage", "--wait", cwd=folder, LANG="es_ES.UTF-8")
    assert done.returncode == 0, done.stderr
    assert "Proyecto golf creado (no existía)" in done.stderr
    assert "Despliegue autorizado" in done.stderr


def test_the_embedded_server_is_found_with_no_setup(cli: Cli) -> None:
    """No URL, no token, no profile: the CLI reads DATA_DIR/server.json and the bootstrap
    token of the server running on this machine."""
    who = cli.json(
        "auth",
        "whoami",
        ENCLII_API_URL="",
        ENCLII_TOKEN="",
        ENCLII_DATA_DIR=str(cli.server.data_dir),
    )
    assert who["url"] == f"{cli.server.http_url}/graphql"
    assert who["user"]["displayName"] == "Owner"


# -- logs -----------------------------------------------------------------------------------


def test_logs_follow_survives_a_server_restart_without_gaps_or_repeats(tmp_path: Path) -> None:
    """Kill the server (and with it the websocket) mid-stream: `logs -f` reconnects to the
    next server on the same port and resumes from its cursor."""
    server = start_server_process(tmp_path / "data")
    (tmp_path / "home").mkdir()
    cli = Cli(server, tmp_path / "home")
    follower: subprocess.Popen[str] | None = None
    try:
        folder = app_folder(tmp_path, "hotel")
        (folder / "app.py").write_text(
            "import itertools, time\n"
            "for i in itertools.count():\n"
            "    print(f'tick {i}', flush=True)\n"
            "    time.sleep(0.05)\n"
        )
        spec = (folder / "enclii.yaml").read_text()
        spec = spec.replace("spec:\n", "spec:\n  type: worker\n").replace("    ports: [8080]\n", "")
        spec = spec.split("  health:")[0]
        (folder / "enclii.yaml").write_text(spec)
        deployed = cli.run("deploy", "--env", "stage", "--wait", cwd=folder)
        assert deployed.returncode == 0, deployed.stderr
        follower = subprocess.Popen(
            [*ENCLII_CLI, "logs", "-f", "--json", "--tail", "1"],
            cwd=folder,
            env=cli.env(),
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        assert follower.stdout is not None
        lines = [json.loads(follower.stdout.readline()) for _ in range(20)]

        os.killpg(server.process.pid, signal.SIGKILL)
        server.process.wait(DEADLINE_S)
        time.sleep(1.0)  # the replica keeps printing; the lines wait in its output file
        restarted = start_server_process(
            tmp_path / "data", port=server.port, router_port=server.router_port
        )
        cli.server = server = restarted
        for _ in range(60):
            lines.append(json.loads(follower.stdout.readline()))
        sequences = [line["sequence"] for line in lines]
        assert sequences == list(range(sequences[0], sequences[0] + len(sequences)))
        ticks = [
            int(line["message"].split()[1])
            for line in lines
            if line["source"].startswith("replica")
        ]
        assert ticks == list(range(ticks[0], ticks[0] + len(ticks)))
        follower.kill()
        stderr = follower.communicate(timeout=DEADLINE_S)[1]
        # It noticed the drop and said so on stderr (stdout held only the lines).
        assert "Connection lost" in stderr and "reconnecting in" in stderr, stderr
    finally:
        if follower is not None and follower.poll() is None:
            follower.kill()
            follower.communicate(timeout=DEADLINE_S)
        server.terminate()
        kill_recorded(tmp_path)


def test_logs_search_and_since(cli: Cli, tmp_path: Path) -> None:
    folder = app_folder(tmp_path, "india")
    assert cli.run("deploy", "--env", "stage", "--wait", cwd=folder).returncode == 0
    cli.answer("web.stage.india.localhost")
    done = cli.run("logs", "--json", "--grep", "GET / ", "--since", "10m", cwd=folder)
    assert done.returncode == 0, done.stderr
    lines = [json.loads(line) for line in done.stdout.splitlines()]
    assert lines and all("get / " in line["message"].lower() for line in lines)
    bad = cli.run("logs", "--since", "yesterday", cwd=folder)
    assert bad.returncode == 10
    assert "give a duration" in bad.stderr


# -- ps, scale, init, up --------------------------------------------------------------------


def test_ps_shows_replicas_health_and_traffic_and_scale_changes_them_at_once(
    cli: Cli, tmp_path: Path
) -> None:
    folder = app_folder(tmp_path, "juliet")
    assert cli.run("deploy", "--env", "stage", "--wait", cwd=folder).returncode == 0
    for _ in range(20):
        cli.answer("web.stage.juliet.localhost")

    def ps() -> dict[str, Any]:
        listed = cli.json("ps", cwd=folder)
        assert (listed["project"], listed["environment"]) == ("juliet", "stage")
        [service] = listed["services"]
        found: dict[str, Any] = service
        return found

    deadline = time.monotonic() + DEADLINE_S
    while (service := ps())["traffic"]["requests"] < 20:  # the router flushes every 5 s
        assert time.monotonic() < deadline, service
        time.sleep(0.5)
    assert service["name"] == "web"
    assert service["runtime"]["status"] == "RUNNING"
    assert (service["runtime"]["replicasReady"], service["runtime"]["replicasDesired"]) == (1, 1)
    assert service["traffic"]["errorRate"] == 0
    assert service["traffic"]["p95Ms"] > 0
    table = cli.run("ps", cwd=folder)
    assert table.returncode == 0
    assert table.stdout.split("\n")[0].split() == [
        "SERVICE",
        "TYPE",
        "RELEASE",
        "READY",
        "HEALTH",
        "P95",
        "5XX",
        "REQ/S",
    ]
    assert "1/1" in table.stdout

    scaled = cli.json("scale", "--min", "2", "--max", "3", cwd=folder)
    assert scaled["replicas"] == {"min": 2, "max": 3}
    deadline = time.monotonic() + DEADLINE_S
    while ps()["runtime"]["replicasReady"] != 2:  # no deploy: the bounds are live
        assert time.monotonic() < deadline
        time.sleep(0.2)
    bad = cli.run("scale", "--min", "5", "--max", "3", cwd=folder)
    assert bad.returncode == 10
    assert "min 5 is greater than max 3" in bad.stderr
    # Deploying the folder again brings its file's bounds back, and says so.
    redeployed = cli.run("deploy", "--env", "stage", "--wait", cwd=folder)
    assert redeployed.returncode == 0, redeployed.stderr
    assert "Replica bounds from enclii.yaml: max 3 → 2, min 2 → 1" in redeployed.stderr
    empty = cli.run("ps", "--env", "stage", "--project", "nobody-here")
    assert empty.returncode == 10


def test_init_writes_a_spec_and_up_deploys_it_to_a_preview_environment(
    cli: Cli, tmp_path: Path
) -> None:
    folder = tmp_path / "kilo" / "hello"
    folder.mkdir(parents=True)
    made = cli.run("init", "--template", "web", cwd=folder)
    assert made.returncode == 0, made.stderr
    assert "Wrote enclii.yaml, app.py, requirements.txt" in made.stderr
    assert "  project: kilo\n" in (folder / "enclii.yaml").read_text()
    assert cli.run("init", cwd=folder).returncode == 10  # never overwrites by surprise

    up = cli.run("up", "--json", cwd=folder)
    assert up.returncode == 0, up.stderr
    report = json.loads(up.stdout)
    environment = report["deployment"]["service"]["environment"]["name"]
    assert environment.startswith("preview-")
    assert report["url"] == f"http://hello.{environment}.kilo.localhost/"
    body = httpx.get(
        f"{cli.server.router_url}/", headers={"host": f"hello.{environment}.kilo.localhost"}
    )
    assert body.json() == {"hello": "hello"}
    # The same branch, the same preview: a second `up` deploys there again.
    again = cli.json("up", cwd=folder)
    assert again["deployment"]["service"]["environment"]["name"] == environment


def test_malformed_command_lines_and_a_bad_strategy_exit_10_having_done_nothing(
    cli: Cli, tmp_path: Path
) -> None:
    assert cli.run("deploy", "--no-such-option").returncode == 10
    assert cli.run("scale", "--min", "many").returncode == 10
    folder = app_folder(tmp_path, "lima")
    before = count_projects(cli)
    done = cli.run("deploy", "--env", "stage", "--strategy", "sideways", cwd=folder)
    assert done.returncode == 10
    assert "--strategy 'sideways': use one of" in done.stderr
    assert count_projects(cli) == before
