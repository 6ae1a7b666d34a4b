"""`enclii auth whoami` (role, and what the caller may do) and `enclii stats` (delivery
health), as `enclii` subprocesses against the API served from this process, on a history
seeded with the factories: deployments in every phase, at times no build could produce."""

from __future__ import annotations

import asyncio
import json
import re
import subprocess
from dataclasses import dataclass
from datetime import UTC, datetime, time, timedelta
from pathlib import Path
from typing import Any, Final

import pytest

from resolvers.context import Context
from store.models import Deployment, DeploymentKind, DeploymentPhase, Service
from tests.factories import add_deployment, add_release, make_environment, make_project
from tests.factories import make_service as make_service_row
from tests.helpers import DEADLINE_S, ENCLII_CLI, LiveServer, cli_env

EVERYTHING: Final = (
    "deploy, routes, observe, read audit, write project, write environments, manage roles, "
    "read cost"
)
P = DeploymentPhase


@pytest.fixture
def database_url(sqlite_url: str) -> str:
    """SQLite only: what the CLI prints does not depend on the backend, and the figures are
    checked on both in tests/graph/test_delivery.py."""
    return sqlite_url


@dataclass
class Cli:
    server: LiveServer
    token: str
    home: Path

    async def run(self, *args: str, **env: str) -> subprocess.CompletedProcess[str]:
        """Run in a thread: the server answers from this test's event loop meanwhile."""
        variables = cli_env(self.home, f"{self.server.http_url}/graphql", self.token, **env)
        return await asyncio.to_thread(
            subprocess.run,
            [*ENCLII_CLI, *args],
            cwd=self.home,
            env=variables,
            capture_output=True,
            text=True,
            timeout=DEADLINE_S * 2,
        )

    async def json(self, *args: str, **env: str) -> Any:
        done = await self.run(*args, "--json", **env)
        assert done.returncode == 0, done.stderr
        return json.loads(done.stdout)


@pytest.fixture
def cli(live_server: LiveServer, token: str, tmp_path: Path) -> Cli:
    home = tmp_path / "home"
    home.mkdir()
    return Cli(live_server, token, home)


def fields(table: str) -> dict[str, str]:
    """whoami's FIELD/VALUE table as a dict (columns are two or more spaces apart)."""
    rows = [re.split(r"\s{2,}", line.strip(), maxsplit=1) for line in table.splitlines()[1:]]
    return {row[0]: row[1] if len(row) > 1 else "" for row in rows if row[0]}


# -- whoami -----------------------------------------------------------------------------------


async def test_whoami_shows_the_owners_role_and_everything_it_may_do(
    cli: Cli, ctx: Context
) -> None:
    shop = await make_project(ctx, "shop")
    done = await cli.run("auth", "whoami")
    assert done.returncode == 0, done.stderr
    shown = fields(done.stdout)
    assert (shown["user"].split(" (")[0], shown["role"], shown["may"]) == (
        "Owner",
        "owner",
        EVERYTHING,
    )
    assert "project" not in shown

    who = await cli.json("auth", "whoami")
    assert who["role"] == "OWNER"
    assert who["can"] == {
        "deploy": True,
        "routes": True,
        "observe": True,
        "readAudit": True,
        "writeProject": True,
        "writeEnvironments": True,
        "manageRoles": True,
        "readCost": True,
    }
    assert "project" not in who

    on_shop = await cli.run("auth", "whoami", "--project", "shop")
    assert on_shop.returncode == 0, on_shop.stderr
    shown = fields(on_shop.stdout)
    assert (shown["project"], shown["project role"], shown["project may"]) == (
        "shop",
        "owner",
        EVERYTHING,
    )
    project = (await cli.json("auth", "whoami", "-p", "shop"))["project"]
    assert (project["id"], project["slug"], project["role"]) == (shop.id, "shop", "OWNER")
    assert project["can"] == who["can"]


async def test_a_logs_read_token_may_only_observe(cli: Cli, ctx: Context) -> None:
    await make_project(ctx, "shop")
    made = await cli.json("auth", "token", "create", "reader", "--scopes", "logs:read")
    reader = made["secret"]

    done = await cli.run("auth", "whoami", "--project", "shop", ENCLII_TOKEN=reader)
    assert done.returncode == 0, done.stderr
    shown = fields(done.stdout)
    # The role is the owner's; the token's scopes narrow what it may do with it.
    assert (shown["role"], shown["may"]) == ("owner", "observe")
    assert (shown["project role"], shown["project may"]) == ("owner", "observe")

    who = await cli.json("auth", "whoami", ENCLII_TOKEN=reader)
    assert [name for name, allowed in who["can"].items() if allowed] == ["observe"]

    spanish = await cli.run("auth", "whoami", ENCLII_TOKEN=reader, LANG="es_ES.UTF-8")
    assert fields(spanish.stdout)["may"] == "observar"


async def test_whoami_of_an_unknown_project_exits_10(cli: Cli) -> None:
    done = await cli.run("auth", "whoami", "--project", "nope")
    assert done.returncode == 10
    assert "no project 'nope'" in done.stderr
    assert done.stdout == ""
    failed = await cli.run("auth", "whoami", "--project", "nope", "--json")
    assert failed.returncode == 10
    assert json.loads(failed.stdout)["error"]["exitCode"] == 10


# -- stats ------------------------------------------------------------------------------------


def noon(days_ago: int) -> datetime:
    """Noon UTC some days back: a deployment and its end fall on the same UTC day, whenever
    the test runs."""
    day = datetime.now(UTC).date() - timedelta(days=days_ago)
    return datetime.combine(day, time(12), tzinfo=UTC)


async def make_service(ctx: Context, slug: str, name: str) -> Service:
    project = await make_project(ctx, slug)
    await make_environment(ctx, project)
    return await make_service_row(ctx, slug, "stage", name)


async def deployment(
    ctx: Context,
    service: Service,
    created: datetime,
    phase: DeploymentPhase,
    *,
    kind: DeploymentKind = DeploymentKind.DEPLOY,
    reason: str | None = None,
) -> str:
    release = await add_release(ctx, service)
    row = await add_deployment(
        ctx,
        service,
        release,
        created_at=created,
        phase=phase,
        finished_at=created + timedelta(minutes=5),
        kind=kind,
    )
    if reason is not None:
        async with ctx.store.write() as session:
            stored = await session.get(Deployment, row.id)
            assert stored is not None
            stored.reason = reason
    return row.id


@dataclass
class History:
    rolled_back: str
    rollback: str


async def seed(ctx: Context) -> History:
    """shop/api: healthy three days ago, failed two days ago, and yesterday a deploy rolled
    back by a rollback; mall/web: one healthy deploy yesterday."""
    api = await make_service(ctx, "shop", "api")
    await deployment(ctx, api, noon(3), P.HEALTHY)
    await deployment(ctx, api, noon(2), P.FAILED, reason="the health check never passed")
    rolled_back = await deployment(ctx, api, noon(1), P.ROLLED_BACK, reason="5xx rate 12% over 5%")
    rollback = await deployment(
        ctx, api, noon(1) + timedelta(minutes=1), P.HEALTHY, kind=DeploymentKind.ROLLBACK
    )
    web = await make_service(ctx, "mall", "web")
    await deployment(ctx, web, noon(1), P.HEALTHY)
    return History(rolled_back, rollback)


def day_rows(stdout: str) -> dict[str, list[str]]:
    return {
        cells[0]: cells[1:]
        for line in stdout.splitlines()
        if re.match(r"\d{4}-\d{2}-\d{2}\s", line) and len(cells := line.split()) == 5
    }


async def test_stats_of_a_project(cli: Cli, ctx: Context) -> None:
    await seed(ctx)
    done = await cli.run("stats", "--project", "shop")
    assert done.returncode == 0, done.stderr
    lines = done.stdout.splitlines()
    first, today = noon(13).date().isoformat(), noon(0).date().isoformat()
    assert lines[0] == (
        f"Project shop, {first} to {today} (UTC): deploys 4, succeeded 2, failed 1, "
        "rolled back 1; success rate 50%"
    )
    assert lines[2].split() == ["DAY", "DEPLOYS", "HEALTHY", "FAILED", "ROLLED", "BACK"]
    days = day_rows(done.stdout)
    assert len(days) == 14
    assert days[noon(3).date().isoformat()] == ["1", "1", "0", "0"]
    assert days[noon(2).date().isoformat()] == ["1", "0", "1", "0"]
    assert days[noon(1).date().isoformat()] == ["2", "1", "0", "1"]
    assert days[today] == ["0", "0", "0", "0"]

    rollbacks = done.stdout.split("Recent rollbacks:\n")[1].splitlines()
    assert rollbacks[0].split() == ["SERVICE", "ENV", "PHASE/KIND", "REASON", "WHEN"]
    # Newest first: the rollback, then the deployment it rolled back (with its reason).
    assert rollbacks[1].split()[:3] == ["api", "stage", "healthy/rollback"]
    assert rollbacks[2].split()[:3] == ["api", "stage", "rolled_back/deploy"]
    assert "5xx rate 12% over 5%" in rollbacks[2]
    ended = noon(1) + timedelta(minutes=5)
    assert rollbacks[2].endswith(ended.strftime("%Y-%m-%d %H:%M:%S"))
    assert done.stderr == ""


async def test_stats_of_every_project_and_in_json(cli: Cli, ctx: Context) -> None:
    history = await seed(ctx)
    done = await cli.run("stats", "--days", "3")
    assert done.returncode == 0, done.stderr
    # Three days back from today: the deploy of three days ago is out of the window.
    assert done.stdout.splitlines()[0].startswith("All projects, ")
    assert done.stdout.splitlines()[0].endswith(
        "deploys 4, succeeded 2, failed 1, rolled back 1; success rate 50%"
    )
    assert len(day_rows(done.stdout)) == 3
    assert "shop/api" in done.stdout  # across projects, a service is named with its project

    report = await cli.json("stats")
    assert set(report) == {
        "project",
        "days",
        "deploys",
        "succeeded",
        "failed",
        "rolledBack",
        "successRate",
        "recentRollbacks",
    }
    assert report["project"] is None
    assert (report["deploys"], report["succeeded"], report["failed"]) == (5, 3, 1)
    assert report["rolledBack"] == 1
    assert report["successRate"] == pytest.approx(3 / 5)
    assert len(report["days"]) == 14
    assert report["days"][-1] == {
        "day": noon(0).date().isoformat(),
        "deploys": 0,
        "succeeded": 0,
        "failed": 0,
        "rolledBack": 0,
    }
    assert [d["id"] for d in report["recentRollbacks"]] == [history.rollback, history.rolled_back]
    rolled_back = report["recentRollbacks"][1]
    assert (rolled_back["phase"], rolled_back["kind"]) == ("ROLLED_BACK", "DEPLOY")
    assert rolled_back["service"]["project"]["slug"] == "shop"

    scoped = await cli.json("stats", "--project", "mall", "--days", "7")
    assert scoped["project"] == "mall"
    assert (scoped["deploys"], scoped["successRate"], len(scoped["days"])) == (1, 1.0, 7)
    assert scoped["recentRollbacks"] == []


async def test_stats_with_nothing_finished_and_in_spanish(cli: Cli, ctx: Context) -> None:
    api = await make_service(ctx, "shop", "api")
    await add_deployment(
        ctx, api, await add_release(ctx, api), created_at=noon(1), phase=P.DEPLOYING
    )
    done = await cli.run("stats", "-p", "shop")
    assert done.returncode == 0, done.stderr
    assert done.stdout.splitlines()[0].endswith(
        "deploys 1, succeeded 0, failed 0, rolled back 0; no finished deploys"
    )
    assert "No rollbacks in these days" in done.stdout

    spanish = await cli.run("stats", "-p", "shop", LANG="es_ES.UTF-8")
    assert spanish.stdout.startswith("Proyecto shop, del ")
    assert "ningún despliegue terminado" in spanish.stdout


async def test_stats_refusals_exit_10_with_the_apis_message(cli: Cli) -> None:
    done = await cli.run("stats", "--days", "0")
    assert done.returncode == 10
    assert "days must be between 1 and 90, got 0" in done.stderr
    failed = await cli.run("stats", "--days", "91", "--json")
    assert failed.returncode == 10
    error = json.loads(failed.stdout)["error"]
    assert (error["code"], error["exitCode"]) == ("BAD_USER_INPUT", 10)
    assert "got 91" in error["message"]

    missing = await cli.run("stats", "--project", "nope")
    assert missing.returncode == 10
    assert "no project 'nope'" in missing.stderr
