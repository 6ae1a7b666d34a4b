"""The UI end to end, as an Owner on a new install: sign in with the bootstrap token, meet
the empty state, deploy a real example service from the UI, add a route, watch its logs
arrive live (grep, pause, jump to a time), take a canary to 100 %, roll back to an earlier
release with its provenance shown, abort a canary with a reason, see a refused action's
exact error, and read the audit trail's diff.

One real `enclii serve` for the module; each step checks the page and, where it changed
something, the platform itself (the router's answer, the API)."""

from __future__ import annotations

import re
import time
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx
import pytest
from playwright.sync_api import Page, expect

from tests.helpers import DEADLINE_S, REPO, ServerProcess, running_server
from tests.web.conftest import Gql, screenshot_dir, sign_in

EXAMPLE = REPO / "examples" / "python-web"
HOST = "web.test"
SERVICE_PATH = "/projects/examples/dev/python-web"


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerProcess]:
    with running_server(tmp_path_factory.mktemp("ui")) as process:
        yield process


@pytest.fixture(scope="module")
def gql(server: ServerProcess) -> Iterator[Gql]:
    limits = httpx.Limits(keepalive_expiry=2.0)
    with httpx.Client(
        base_url=server.http_url, headers=server.headers, timeout=60, limits=limits
    ) as client:
        yield Gql(server, client)


@pytest.fixture(scope="module")
def shots(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return screenshot_dir(tmp_path_factory.mktemp("shots"))


def wait_ready(gql: Gql, release_id: str) -> None:
    deadline = time.monotonic() + DEADLINE_S * 2
    while True:
        found = gql(
            "query($id: ID!) { node(id: $id) { ... on Release { status statusReason } } }",
            id=release_id,
        )
        status = found["node"]["status"]
        if status == "READY":
            return
        assert status != "FAILED", found
        assert time.monotonic() < deadline, f"release {release_id} still {status}"
        time.sleep(0.2)


def example_service(gql: Gql) -> tuple[str, list[str]]:
    """The python-web example applied, with two releases built from its source."""
    project = gql(
        'mutation { createProject(input: {name: "Examples", slug: "examples"}) '
        "{ ... on CreateProjectSuccess { project { id } } } }"
    )
    project_id = project["createProject"]["project"]["id"]
    gql(
        'mutation($p: ID!) { createEnvironment(input: {projectId: $p, name: "dev"}) { __typename } }',
        p=project_id,
    )
    applied = gql(
        "mutation($y: String!) { applyService(input: {specYaml: $y}) { __typename "
        "... on ApplyServiceSuccess { service { id } } ... on Error { message } } }",
        y=(EXAMPLE / "enclii.yaml").read_text(),
    )
    service_id: str = applied["applyService"]["service"]["id"]
    releases = []
    for _ in range(2):
        made = gql(
            "mutation($s: ID!, $p: String!) { createRelease(input: {serviceId: $s, sourcePath: $p}) "
            "{ __typename ... on CreateReleaseSuccess { release { id } } ... on Error { message } } }",
            s=service_id,
            p=str(EXAMPLE),
        )
        releases.append(made["createRelease"]["release"]["id"])
    for release_id in releases:
        wait_ready(gql, release_id)
    return service_id, releases


def deploy_from_ui(page: Page, server: ServerProcess, release_id: str, strategy: str) -> str:
    page.goto(server.http_url + SERVICE_PATH)
    page.get_by_test_id("service-actions").get_by_role("button", name="Deploy").click()
    dialog = page.get_by_role("dialog")
    dialog.get_by_label("Release").select_option(release_id)
    dialog.get_by_label("Strategy").select_option(strategy)
    dialog.get_by_role("button", name="Deploy").click()
    page.wait_for_url(re.compile(r"/deployments/dep_"))
    return page.url.rsplit("/", 1)[-1]


def expect_phase(page: Page, phase: str) -> None:
    expect(page.get_by_test_id("phase").locator(f'[data-status="{phase}"]')).to_be_visible(
        timeout=DEADLINE_S * 2000
    )


def router_get(server: ServerProcess, path: str) -> httpx.Response:
    return httpx.get(server.router_url + path, headers={"host": HOST}, timeout=10)


def serving(server: ServerProcess, release_id: str) -> None:
    """Wait until the router sends the route's requests to ``release_id`` (a routing change
    reaches the router a moment after the API has committed it)."""
    deadline = time.monotonic() + DEADLINE_S
    while True:
        answer = router_get(server, "/")
        if answer.status_code == 200 and release_id in answer.text:
            return
        assert time.monotonic() < deadline, (
            f"the router still answers {answer.status_code}: {answer.text}"
        )
        time.sleep(0.1)


def test_owner_journey(page: Page, server: ServerProcess, gql: Gql, shots: Path) -> None:
    # A new install: the sign-in page refuses a wrong token with the API's reason.
    page.goto(server.http_url)
    page.get_by_label("Token").fill("enclii_pat_wrong")
    page.get_by_role("button", name="Sign in", exact=True).click()
    expect(page.get_by_test_id("signin-error")).to_contain_text("token")
    page.screenshot(path=shots / "signin.png")

    sign_in(page, server)
    expect(page.get_by_test_id("getting-started")).to_contain_text("enclii init")
    page.screenshot(path=shots / "empty-dashboard.png")

    service_id, (first, second) = example_service(gql)

    # Deploy the first release from the UI and follow it live to healthy.
    deploy_from_ui(page, server, first, "ROLLING")
    expect_phase(page, "HEALTHY")
    expect(page.get_by_test_id("conditions")).to_contain_text("Available")

    # Add a route in the UI; the router answers on it with the release deployed.
    page.goto(server.http_url + SERVICE_PATH)
    routes = page.get_by_test_id("routes")
    routes.get_by_label("Host").fill(HOST)
    routes.get_by_role("button", name="Add route").click()
    expect(routes).to_contain_text(f"{HOST}/")
    serving(server, first)

    # The second release as a canary: its weight and steps show live; promote it to 100 %.
    deploy_from_ui(page, server, second, "CANARY")
    canary = page.get_by_test_id("canary")
    expect(canary).to_be_visible(timeout=DEADLINE_S * 1000)
    expect(page.get_by_role("meter")).to_have_attribute(
        "aria-valuenow", re.compile(r"[1-9]\d*"), timeout=DEADLINE_S * 2000
    )
    page.screenshot(path=shots / "canary.png", full_page=True)
    page.get_by_test_id("canary-actions").get_by_role("button", name="Promote to 100 %").click()
    page.get_by_role("dialog").get_by_role("button", name="Promote to 100 %").click()
    expect_phase(page, "HEALTHY")
    serving(server, second)

    # Live logs: requests through the router appear as they are logged.
    page.goto(server.http_url + SERVICE_PATH)
    page.get_by_role("link", name="Logs").click()
    status = page.get_by_test_id("log-status")
    expect(status).to_contain_text("live")
    marker = f"ui-{uuid.uuid4().hex[:10]}"
    started = datetime.now(UTC).replace(microsecond=0) - timedelta(seconds=1)
    for i in range(3):
        assert router_get(server, f"/{marker}-{i}").status_code == 200
    expect(page.locator(".log-line", has_text=marker)).to_have_count(3)
    page.screenshot(path=shots / "logs.png")

    # grep narrows to the matching lines; pause holds new ones back until resumed.
    page.get_by_label("Filter lines (grep)").fill(marker)
    expect(status).to_contain_text("3 lines")
    page.get_by_role("button", name="Pause").click()
    for i in range(3, 5):
        router_get(server, f"/{marker}-{i}")
    expect(status).to_contain_text("2 new while paused")
    expect(page.locator(".log-line", has_text=marker)).to_have_count(3)
    page.get_by_role("button", name="Resume").click()
    expect(status).to_contain_text("5 lines")

    # Jump to a time: the lines from then on, not following; then back to live.
    page.get_by_label("Filter lines (grep)").fill("")
    page.get_by_label("From").fill(started.strftime("%Y-%m-%dT%H:%M:%S"))
    expect(status).to_contain_text("history")
    expect(page.locator(".log-line", has_text=marker)).to_have_count(5)
    page.get_by_role("button", name="Back to live").click()
    expect(status).to_contain_text("live")

    # Roll back to the first release: the dialog shows where it came from.
    page.goto(server.http_url + SERVICE_PATH)
    expect(page.get_by_test_id("runtime")).to_contain_text("100 %")
    # People are named, not shown as user IDs.
    expect(page.get_by_test_id("releases")).to_contain_text("Owner")
    expect(page.get_by_test_id("releases")).not_to_contain_text("usr_")
    page.screenshot(path=shots / "service.png", full_page=True)
    page.get_by_test_id("service-actions").get_by_role("button", name="Roll back").click()
    dialog = page.get_by_role("dialog")
    dialog.get_by_label("Roll back to").select_option(first)
    expect(dialog.get_by_test_id("provenance")).to_contain_text("signing key")
    dialog.get_by_role("button", name="Roll back now").click()
    page.wait_for_url(re.compile(r"/deployments/dep_"))
    expect(page.get_by_role("heading", name=re.compile("Rollback"))).to_be_visible()
    expect_phase(page, "HEALTHY")
    serving(server, first)
    page.screenshot(path=shots / "deployment.png", full_page=True)

    # A canary aborted by hand, with a reason: traffic returns to the stable release and
    # the deployment ends rolled back, saying who and why.
    deploy_from_ui(page, server, second, "CANARY")
    expect(page.get_by_role("meter")).to_have_attribute(
        "aria-valuenow", re.compile(r"[1-9]\d*"), timeout=DEADLINE_S * 2000
    )
    page.get_by_test_id("canary-actions").get_by_role("button", name="Abort").click()
    dialog = page.get_by_role("dialog")
    dialog.get_by_label("Reason").fill("checkout errors in the canary")
    dialog.get_by_role("button", name="Abort").click()
    expect_phase(page, "ROLLED_BACK")
    expect(page.get_by_test_id("phase")).to_contain_text("checkout errors in the canary")
    expect(page.get_by_test_id("canary-actions")).to_have_count(0)
    serving(server, first)

    # A refused action shows the server's words and changes nothing.
    before = gql(
        "query($s: ID!) { node(id: $s) { ... on Service { spec { version } } } }", s=service_id
    )
    refused = gql(
        "mutation($s: ID!) { scaleService(input: {serviceId: $s, min: 5, max: 2}) { __typename "
        "... on Error { message } } }",
        s=service_id,
    )["scaleService"]
    assert refused["__typename"] == "ValidationError", refused
    page.goto(server.http_url + SERVICE_PATH)
    page.get_by_test_id("service-actions").get_by_role("button", name="Scale").click()
    dialog = page.get_by_role("dialog")
    dialog.get_by_label("Minimum").fill("5")
    dialog.get_by_label("Maximum").fill("2")
    dialog.get_by_role("button", name="Scale").click()
    expect(dialog.get_by_test_id("error")).to_contain_text(refused["message"])
    after = gql(
        "query($s: ID!) { node(id: $s) { ... on Service { spec { version } } } }", s=service_id
    )
    assert after == before

    # Corrected, it goes through: the bounds change at once.
    dialog.get_by_label("Minimum").fill("1")
    dialog.get_by_label("Maximum").fill("3")
    dialog.get_by_role("button", name="Scale").click()
    expect(dialog).to_be_hidden()
    bounds = page.locator(".card", has_text="replicas (min\u2013max)")  # an en dash, as shown
    expect(bounds).to_contain_text("1\u20133")

    # The audit trail: the route added, opened to its diff.
    page.get_by_role("link", name="Audit trail").click()
    row = page.get_by_test_id("audit-row").filter(has_text="route.add").first
    row.click()
    expect(page.get_by_test_id("audit-diff")).to_contain_text(HOST)
    page.screenshot(path=shots / "audit.png", full_page=True)

    # The dashboard: the service, its health, and the rollback among recent ones.
    page.get_by_role("link", name="Dashboard").click()
    expect(page.get_by_test_id("dashboard-services")).to_contain_text("python-web")
    expect(page.get_by_role("heading", name="Recent rollbacks")).to_be_visible()
    page.screenshot(path=shots / "dashboard.png", full_page=True)


def test_spanish_is_one_click_and_sticks(page: Page, server: ServerProcess) -> None:
    sign_in(page, server)
    page.get_by_role("button", name="Español").click()
    expect(page.get_by_role("link", name="Panel")).to_be_visible()
    expect(page.locator("html")).to_have_attribute("lang", "es")
    page.reload()
    expect(page.get_by_role("link", name="Proyectos")).to_be_visible()


def test_a_deep_link_loads_the_app_and_unknown_pages_say_so(
    page: Page, server: ServerProcess
) -> None:
    sign_in(page, server)
    page.goto(server.http_url + "/no/such/page")
    expect(page.get_by_role("heading", name="Nothing here")).to_be_visible()
    page.goto(server.http_url + "/projects/nope")
    expect(page.get_by_test_id("error")).to_contain_text("nope")
