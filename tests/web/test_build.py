"""The UI's generated and built artefacts: typed documents current with schema.graphql,
the app type-checking, and the initial JavaScript within its budget."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest

from tests.helpers import REPO
from web.assets import BUDGET_GZIP_BYTES, bundle

WEB = REPO / "web"


def npm(*args: str) -> subprocess.CompletedProcess[str]:
    if shutil.which("npm") is None:
        pytest.fail("npm is not installed: the UI is built with Node.js 20+ and npm")
    if not (WEB / "node_modules").is_dir():
        pytest.fail("web/node_modules is missing: run `npm --prefix web ci`")
    return subprocess.run(
        ["npm", "--prefix", str(WEB), "run", "-s", *args],
        capture_output=True,
        text=True,
        timeout=300,
    )


def test_typed_documents_are_current() -> None:
    done = npm("codegen:check")
    assert done.returncode == 0, (
        "web/src/gql is stale against schema.graphql or the documents in web/src: run "
        f"`npm --prefix web run codegen`\n{done.stdout}{done.stderr}"
    )


def test_the_app_type_checks() -> None:
    done = npm("typecheck")
    assert done.returncode == 0, f"tsc found errors:\n{done.stdout}{done.stderr}"


def test_initial_javascript_is_within_budget(ui_built: Path) -> None:
    start = bundle(ui_built)
    names = ", ".join(name for name, _, _ in start.scripts)
    assert start.js_gzip <= BUDGET_GZIP_BYTES, (
        f"the UI starts with {start.js_gzip / 1000:.0f} kB of gzipped JavaScript ({names}); "
        f"the budget is {BUDGET_GZIP_BYTES / 1000:.0f} kB"
    )
