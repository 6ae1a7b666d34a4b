"""Where the CLI connects and with which token (client/config.py): the order of sources,
and that a token never goes to a server it was not meant for."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from client.config import (
    DEFAULT_URL,
    ConfigError,
    forget_token,
    normalise_url,
    read_config,
    resolve,
    save_profile,
)


@pytest.fixture(autouse=True)
def isolated(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    for name in list(os.environ):
        if name.startswith("ENCLII_"):
            monkeypatch.delenv(name)
    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path / "config"))
    monkeypatch.setenv("ENCLII_DATA_DIR", str(tmp_path / "data"))
    return tmp_path


def test_nothing_configured_means_the_local_default_without_a_token() -> None:
    found = resolve()
    assert (found.url, found.token, found.source) == (DEFAULT_URL, None, "the default")


def test_the_environment_pairs_url_and_token(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("ENCLII_API_URL", "https://enclii.example.com")
    monkeypatch.setenv("ENCLII_TOKEN", "enclii_pat_ci")
    found = resolve()
    assert (found.url, found.token) == ("https://enclii.example.com/graphql", "enclii_pat_ci")


def test_a_url_given_on_the_command_line_never_gets_the_environments_token(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("ENCLII_API_URL", "https://prod.example.com/graphql")
    monkeypatch.setenv("ENCLII_TOKEN", "enclii_pat_prod")
    found = resolve(api_url="https://other.example.com")
    assert (found.url, found.token, found.source) == (
        "https://other.example.com/graphql",
        None,
        "--api-url",
    )
    assert resolve(api_url="https://other.example.com", token="mine").token == "mine"


def test_empty_variables_count_as_unset(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("ENCLII_API_URL", "")
    monkeypatch.setenv("ENCLII_TOKEN", "")
    assert resolve().url == DEFAULT_URL


def test_profiles_are_saved_0600_and_their_token_goes_only_to_their_url(
    isolated: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = save_profile("work", "https://work.example.com", "enclii_pat_work")
    assert path.stat().st_mode & 0o777 == 0o600
    assert read_config()["default"] == "work"
    found = resolve()
    assert (found.url, found.token, found.source) == (
        "https://work.example.com/graphql",
        "enclii_pat_work",
        "profile work",
    )
    # Another URL on the command line: the profile's token stays home.
    assert resolve(api_url="https://elsewhere.example.com").token is None
    assert forget_token("work") is True
    assert resolve().token is None
    assert forget_token("work") is False


def test_an_unknown_profile_is_named_with_the_known_ones() -> None:
    save_profile("work", "https://work.example.com", "t")
    with pytest.raises(ConfigError, match=r"no profile 'nope' .*\(profiles: work\)"):
        resolve(profile="nope")


def test_a_broken_config_file_is_reported_not_ignored(isolated: Path) -> None:
    path = isolated / "config" / "enclii" / "config.toml"
    path.parent.mkdir(parents=True)
    path.write_text("default = [unclosed\n")
    with pytest.raises(ConfigError, match="is not valid TOML"):
        resolve()


def test_the_local_server_is_found_only_while_it_runs(isolated: Path) -> None:
    data = isolated / "data"
    data.mkdir()
    (data / "bootstrap-token").write_text("enclii_pat_owner\n")
    record = {
        "pid": os.getpid(),
        "api": "http://127.0.0.1:8123/graphql",
        "router": "http://127.0.0.1:8124",
    }
    (data / "server.json").write_text(json.dumps(record))
    found = resolve()
    assert (found.url, found.token, found.router) == (
        "http://127.0.0.1:8123/graphql",
        "enclii_pat_owner",
        "http://127.0.0.1:8124",
    )
    (data / "server.json").write_text(json.dumps({**record, "pid": 2**22 + 12345}))
    assert resolve().url == DEFAULT_URL  # a stale record: that server is gone


@pytest.mark.parametrize(
    ("given", "expected"),
    [
        ("localhost:8000", "http://localhost:8000/graphql"),
        ("https://enclii.example.com/", "https://enclii.example.com/graphql"),
        ("http://h:1/graphql/", "http://h:1/graphql"),
        ("http://h:1/api/graphql", "http://h:1/api/graphql"),
    ],
)
def test_urls_are_normalised(given: str, expected: str) -> None:
    assert normalise_url(given) == expected
