"""Single sign-on in a real browser, and what a ReadOnly member sees.

`enclii serve` trusts a fake OIDC provider (tests/web/fake_oidc.py; no real one can run
here) that puts its person in the `readers` group, mapped to ReadOnly. The browser signs in
with the authorization-code flow and PKCE, then finds every view it may read and no button
for an action it may not take."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from playwright.sync_api import Page, expect

from tests.helpers import REPO, ServerProcess, running_server
from tests.web.conftest import Gql, screenshot_dir
from tests.web.fake_oidc import FakeOidcProvider, Person

CLIENT_ID = "enclii-ui"


@pytest.fixture(scope="module")
def provider() -> Iterator[FakeOidcProvider]:
    fake = FakeOidcProvider(
        CLIENT_ID, Person("reader-1", "Rita Reader", "rita@example.com", ["readers"])
    )
    yield fake
    fake.stop()


@pytest.fixture(scope="module")
def server(
    tmp_path_factory: pytest.TempPathFactory, provider: FakeOidcProvider
) -> Iterator[ServerProcess]:
    oidc = {
        "ENCLII_OIDC_ISSUER": provider.url,
        "ENCLII_OIDC_AUDIENCE": CLIENT_ID,
        "ENCLII_OIDC_ROLES": "readers=readonly",
    }
    with running_server(tmp_path_factory.mktemp("sso"), extra_env=oidc) as process:
        yield process


@pytest.fixture(scope="module")
def service(server: ServerProcess) -> str:
    """A project with one service (applied, never deployed) for the reader to look at."""
    with httpx.Client(base_url=server.http_url, headers=server.headers, timeout=60) as client:
        gql = Gql(server, client)
        made = gql(
            'mutation { createProject(input: {name: "Examples", slug: "examples"}) '
            "{ ... on CreateProjectSuccess { project { id } } } }"
        )
        gql(
            'mutation($p: ID!) { createEnvironment(input: {projectId: $p, name: "dev"}) { __typename } }',
            p=made["createProject"]["project"]["id"],
        )
        applied = gql(
            "mutation($y: String!) { applyService(input: {specYaml: $y}) { __typename "
            "... on ApplyServiceSuccess { service { id } } } }",
            y=(REPO / "examples" / "python-web" / "enclii.yaml").read_text(),
        )
        assert applied["applyService"]["__typename"] == "ApplyServiceSuccess", applied
    return "/projects/examples/dev/python-web"


def test_sso_sign_in_with_pkce_as_readonly_shows_no_actions(
    page: Page, server: ServerProcess, provider: FakeOidcProvider, service: str, tmp_path: Path
) -> None:
    page.goto(server.http_url + service)  # a deep link: after sign-in, the reader lands here
    sso = page.get_by_role("button", name=f"Sign in with {provider.url.removeprefix('http://')}")
    sso.click()
    expect(page.get_by_test_id("viewer")).to_contain_text("Rita Reader")
    expect(page.get_by_test_id("viewer")).to_contain_text("readonly")
    assert provider.refused_exchanges == []
    # The ID token went to the API as the bearer and was accepted: the service shows.
    expect(page.get_by_role("heading", name="python-web")).to_be_visible()
    page.wait_for_url(server.http_url + service)

    actions = page.get_by_test_id("service-actions")
    expect(actions.get_by_role("link", name="Logs")).to_be_visible()
    for name in ("Deploy", "Roll back", "Scale"):
        expect(actions.get_by_role("button", name=name)).to_have_count(0)
    expect(page.get_by_role("button", name="Add route")).to_have_count(0)
    expect(page.get_by_role("link", name="Audit trail")).to_have_count(0)
    page.screenshot(path=screenshot_dir(tmp_path) / "readonly.png", full_page=True)


def test_the_provider_refuses_a_code_without_its_verifier(provider: FakeOidcProvider) -> None:
    """The fake holds PKCE to account, so the browser test above proves the app sends it."""
    start = httpx.get(
        f"{provider.url}/authorize",
        params={
            "response_type": "code",
            "client_id": CLIENT_ID,
            "redirect_uri": "http://127.0.0.1/auth/callback",
            "scope": "openid",
            "state": "s",
            "code_challenge": "not-the-hash-of-anything",
            "code_challenge_method": "S256",
        },
    )
    code = httpx.URL(start.headers["location"]).params["code"]
    refused = httpx.post(
        f"{provider.url}/token",
        data={
            "grant_type": "authorization_code",
            "code": code,
            "client_id": CLIENT_ID,
            "redirect_uri": "http://127.0.0.1/auth/callback",
            "code_verifier": "wrong",
        },
    )
    assert refused.status_code == 400
    assert refused.json()["error_description"] == "code_verifier does not match the challenge"
