"""The CLI verbs that exist so far: serve (see tests/e2e), db upgrade, db current."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

from typer.testing import CliRunner

import graph.server
from client.cli.main import app
from store.migrate import head_revision

runner = CliRunner()


def test_help_lists_verbs_with_examples() -> None:
    result = runner.invoke(app, ["serve", "--help"])
    assert result.exit_code == 0
    assert "--database-url" in result.output
    assert "enclii serve --port 9000" in result.output


def test_db_upgrade_then_current(tmp_path: Path) -> None:
    upgraded = runner.invoke(app, ["db", "upgrade", "--data-dir", str(tmp_path)])
    assert upgraded.exit_code == 0, upgraded.output
    assert "Migrated from an empty database" in upgraded.output
    again = runner.invoke(app, ["db", "upgrade", "--data-dir", str(tmp_path)])
    assert "Already at the newest revision" in again.output
    current = runner.invoke(app, ["db", "current", "--data-dir", str(tmp_path)])
    assert current.output.strip() == f"{head_revision()} (newest: {head_revision()}; up to date)"


def test_db_upgrade_on_postgres(pg_database: str) -> None:
    result = runner.invoke(app, ["db", "upgrade", "--database-url", pg_database])
    assert result.exit_code == 0, result.output
    assert "Already at the newest revision" in result.output


def test_conductor_is_the_same_cli() -> None:
    conductor = shutil.which("conductor", path=str(Path(sys.executable).parent))
    assert conductor is not None, "the conductor console script is not installed"
    result = subprocess.run([conductor, "--help"], capture_output=True, text=True, timeout=60)
    assert result.returncode == 0
    assert "Usage: conductor" in result.stdout
    assert "serve" in result.stdout


def test_every_verb_has_help_with_examples() -> None:
    """`--help` of every command and subcommand shows at least one example."""
    import typer

    from client.cli.main import app as cli_app

    def walk(command: Any, path: list[str]) -> list[list[str]]:
        if hasattr(command, "commands"):  # a group (typer bundles its own click)
            found: list[list[str]] = []
            for name, sub in command.commands.items():
                found += walk(sub, [*path, name])
            return found
        return [path]

    verbs = walk(typer.main.get_command(cli_app), [])
    assert len(verbs) >= 20, verbs
    for verb in verbs:
        result = runner.invoke(cli_app, [*verb, "--help"])
        assert result.exit_code == 0, (verb, result.output)
        assert "Example" in result.output, f"`enclii {' '.join(verb)} --help` shows no example"


def _served_config(monkeypatch: Any, tmp_path: Path, *args: str, **env: str) -> Any:
    """What `enclii serve ARGS` would start with (the server itself is not started)."""
    seen: list[Any] = []

    async def capture(config: Any, **_kw: Any) -> None:
        seen.append(config)

    monkeypatch.setattr(graph.server, "serve", capture)
    for name in ("ENCLII_OIDC_ISSUER", "ENCLII_OIDC_AUDIENCE", "ENCLII_OIDC_CLIENT_ID"):
        monkeypatch.delenv(name, raising=False)
    result = runner.invoke(app, ["serve", "--data-dir", str(tmp_path), *args], env=env)
    return result, seen[0] if seen else None


def test_the_ui_client_id_defaults_to_the_audience(monkeypatch: Any, tmp_path: Path) -> None:
    oidc = ["--oidc-issuer", "https://login.example.test", "--oidc-audience", "enclii"]
    result, config = _served_config(monkeypatch, tmp_path, *oidc)
    assert result.exit_code == 0, result.output
    assert (config.oidc.client_id, config.oidc.ui_client_id) == (None, "enclii")

    result, config = _served_config(monkeypatch, tmp_path, *oidc, "--oidc-client-id", "web")
    assert (config.oidc.audience, config.oidc.ui_client_id) == ("enclii", "web")

    result, config = _served_config(monkeypatch, tmp_path, *oidc, ENCLII_OIDC_CLIENT_ID="spa")
    assert config.oidc.ui_client_id == "spa"


def test_a_ui_client_id_needs_an_issuer(monkeypatch: Any, tmp_path: Path) -> None:
    result, config = _served_config(monkeypatch, tmp_path, "--oidc-client-id", "web")
    assert result.exit_code == 10
    assert config is None
    assert "--oidc-client-id needs them" in result.output
