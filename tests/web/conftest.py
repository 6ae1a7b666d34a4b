"""A real browser on the real UI: Debian's chromium driven by Playwright, against the built
app (web/dist) served by a real `enclii serve`.

The app must be built first (the README's test command does it); a missing build or a
missing chromium fails here with the command that fixes it — they are never skipped, or a
UI that no longer builds would pass CI unnoticed.
"""

from __future__ import annotations

import os
import shutil
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import pytest
from playwright.sync_api import Browser, ConsoleMessage, Page, Playwright, sync_playwright

import web
from tests.helpers import REPO, ServerProcess

CHROMIUM = os.environ.get("ENCLII_CHROMIUM", "/usr/bin/chromium")
# Without the background-networking flags chromium keeps dialing Google, and on a closed
# network those refusals arrive many at a time.
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
EXPECT_MS = 30_000  # every wait on the page has this deadline


def screenshot_dir(tmp_path: Path) -> Path:
    """docs/screenshots when ENCLII_SCREENSHOTS=1 (to refresh the committed ones), else tmp."""
    if os.environ.get("ENCLII_SCREENSHOTS") == "1":
        target = REPO / "docs" / "screenshots"
        target.mkdir(parents=True, exist_ok=True)
        return target
    return tmp_path


@pytest.fixture(scope="session")
def ui_built() -> Path:
    dist = web.dist_dir()
    if dist is None:
        pytest.fail(
            "web/dist is missing: build the UI with `npm --prefix web ci && npm --prefix web "
            "run build` (the README's test command does this first)"
        )
    return dist


# Package scope, not session: Playwright's sync API keeps an event loop running in this
# thread while it is open, and pytest-asyncio cannot start a test's loop inside it; the
# driver must be gone before any async test that runs after tests/web.
@pytest.fixture(scope="package")
def playwright_driver() -> Iterator[Playwright]:
    with sync_playwright() as driver:
        yield driver


@pytest.fixture(scope="package")
def browser(playwright_driver: Playwright, ui_built: Path) -> Iterator[Browser]:
    if not Path(CHROMIUM).exists() and shutil.which("chromium") is None:
        pytest.fail(
            f"no chromium at {CHROMIUM}: install Debian's package (`apt-get install -y "
            "chromium`; .ci/run does) or point ENCLII_CHROMIUM at one"
        )
    launched = playwright_driver.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
    yield launched
    launched.close()


@dataclass
class PageErrors:
    """JavaScript errors the page raised; a test ends by asserting there were none."""

    errors: list[str] = field(default_factory=list)

    def on_console(self, message: ConsoleMessage) -> None:
        # The browser logs failed requests as console errors; a test that expects a 4xx
        # (a refused token) says so itself, so only script errors count here.
        if message.type == "error" and "Failed to load resource" not in message.text:
            self.errors.append(message.text)


@pytest.fixture
def page(browser: Browser) -> Iterator[Page]:
    # UTC, as the tests' own clocks: "jump to a time" is typed in the browser's zone.
    context = browser.new_context(
        viewport={"width": 1280, "height": 900}, locale="en-US", timezone_id="UTC"
    )
    context.set_default_timeout(EXPECT_MS)
    opened = context.new_page()
    seen = PageErrors()
    opened.on("pageerror", lambda exc: seen.errors.append(f"{exc}"))
    opened.on("console", seen.on_console)
    yield opened
    context.close()
    assert seen.errors == [], f"the page raised errors: {seen.errors}"


@dataclass
class Gql:
    """The API beside the browser, for setting up what a test then looks at in the UI."""

    server: ServerProcess
    client: httpx.Client

    def __call__(self, query: str, **variables: Any) -> dict[str, Any]:
        body: dict[str, Any] = self.client.post(
            "/graphql", json={"query": query, "variables": variables}
        ).json()
        assert "errors" not in body, body
        data: dict[str, Any] = body["data"]
        return data


def sign_in(page: Page, server: ServerProcess, token: str | None = None) -> None:
    """Sign in through the form, as a person pasting the bootstrap token would."""
    page.goto(server.http_url)
    page.get_by_label("Token").fill(token or server.token)
    page.get_by_role("button", name="Sign in", exact=True).click()
    page.get_by_role("link", name="Dashboard").wait_for()
