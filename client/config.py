"""Where the CLI finds Enclii and who it is there.

In order, the first that says:

1. ``--api-url`` / ``--token`` on the command line;
2. ``ENCLII_API_URL`` / ``ENCLII_TOKEN`` (what CI sets);
3. a profile in ``~/.config/enclii/config.toml`` (``$XDG_CONFIG_HOME`` respected; mode
   0600, since it holds tokens): ``--profile``, ``ENCLII_PROFILE``, or the file's
   ``default``. ``enclii auth login`` writes it;
4. the embedded default on this machine: ``enclii serve`` records where it listens in
   ``DATA_DIR/server.json`` (the server writes it; this is the other side of that
   contract), and the Owner's token is in ``DATA_DIR/bootstrap-token`` — so on one machine
   the CLI works with no set-up at all.

A token is only taken from a profile or the data dir for the URL it belongs to: a token
for one server is never sent to another.
"""

from __future__ import annotations

import json
import os
import tomllib
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Final

SERVER_FILE: Final = "server.json"  # written by graph/server.py
TOKEN_FILE: Final = "bootstrap-token"  # written by graph/server.py
DEFAULT_URL: Final = "http://127.0.0.1:8000/graphql"


class ConfigError(Exception):
    """The configuration cannot be used as it is (a bad file, an unknown profile)."""


@dataclass(frozen=True)
class Connection:
    url: str
    token: str | None
    source: str  # where the URL came from, for messages: "--api-url", "profile work", …
    router: str | None = None  # the local router, when the URL is the local server's


def config_path() -> Path:
    home = os.environ.get("XDG_CONFIG_HOME") or str(Path.home() / ".config")
    return Path(home) / "enclii" / "config.toml"


def data_dir() -> Path:
    return Path(os.environ.get("ENCLII_DATA_DIR", "~/.enclii")).expanduser()


def read_config(path: Path | None = None) -> dict[str, Any]:
    path = path or config_path()
    try:
        with path.open("rb") as handle:
            return tomllib.load(handle)
    except FileNotFoundError:
        return {}
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"{path} is not valid TOML: {exc}") from None


def write_config(document: dict[str, Any], path: Path | None = None) -> Path:
    """Write the whole file, 0600 from its first byte (it holds tokens)."""
    path = path or config_path()
    path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    temporary = path.with_suffix(".tmp")
    import tomli_w

    descriptor = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(descriptor, "wb") as handle:
        tomli_w.dump(document, handle)
    os.replace(temporary, path)
    return path


def profile_name(given: str | None, document: dict[str, Any]) -> str | None:
    name = given or os.environ.get("ENCLII_PROFILE") or document.get("default")
    return str(name) if name else None


def save_profile(name: str, url: str, token: str, make_default: bool = True) -> Path:
    document = read_config()
    profiles = document.setdefault("profiles", {})
    profiles[name] = {"url": url, "token": token}
    if make_default or "default" not in document:
        document["default"] = name
    return write_config(document)


def forget_token(name: str) -> bool:
    """Remove the profile's token (the URL stays); whether there was one."""
    document = read_config()
    profile = document.get("profiles", {}).get(name)
    if not profile or "token" not in profile:
        return False
    del profile["token"]
    write_config(document)
    return True


def discover() -> tuple[str, str | None, str | None] | None:
    """The embedded server running on this machine: its API, the Owner's token, and its
    router, if any."""
    directory = data_dir()
    try:
        record = json.loads((directory / SERVER_FILE).read_text())
    except (OSError, ValueError):
        return None
    import psutil  # here: the CLI's start-up pays only for what a verb uses

    pid, url = record.get("pid"), record.get("api")
    if not isinstance(pid, int) or not isinstance(url, str) or not psutil.pid_exists(pid):
        return None
    try:
        token: str | None = (directory / TOKEN_FILE).read_text().strip() or None
    except OSError:
        token = None
    router = record.get("router")
    return url, token, router if isinstance(router, str) else None


def resolve(
    api_url: str | None = None, token: str | None = None, profile: str | None = None
) -> Connection:
    """The connection to use; see the module's docstring for the order."""
    # An empty variable means unset (CI systems export empty secrets).
    env_url = os.environ.get("ENCLII_API_URL") or None
    env_token = os.environ.get("ENCLII_TOKEN") or None
    document = read_config()
    name = profile_name(profile, document)
    chosen: dict[str, Any] = {}
    if name is not None:
        chosen = document.get("profiles", {}).get(name) or {}
        if not chosen and (profile or os.environ.get("ENCLII_PROFILE")):
            known = ", ".join(sorted(document.get("profiles", {}))) or "none yet"
            raise ConfigError(
                f"no profile {name!r} in {config_path()} (profiles: {known}); "
                "create one with `enclii auth login --profile NAME`"
            )
    found = discover()
    candidates: list[tuple[str | None, str | None, str]] = [
        (api_url, token, "--api-url"),
        (env_url, env_token, "ENCLII_API_URL"),
        (chosen.get("url"), chosen.get("token"), f"profile {name}"),
        (found[0] if found else None, found[1] if found else None, f"{data_dir()}"),
    ]
    url, source = next(((u, s) for u, _, s in candidates if u), (DEFAULT_URL, "the default"))
    url = normalise_url(url)
    # ENCLII_TOKEN belongs with ENCLII_API_URL: it is not sent to a URL given by a flag.
    env_token_fits = source == "ENCLII_API_URL" or (env_url is None and api_url is None)
    secret = token or (env_token if env_token_fits else None)
    if secret is None:
        # A stored token only goes to the server it was stored for.
        for candidate_url, candidate_token, _ in candidates[2:]:
            if candidate_url and candidate_token and normalise_url(candidate_url) == url:
                secret = candidate_token
                break
    local_router = found[2] if found and normalise_url(found[0]) == url else None
    return Connection(url=url, token=secret, source=source, router=local_router)


def normalise_url(url: str) -> str:
    """``localhost:8000`` → ``http://localhost:8000/graphql``; a trailing slash is dropped."""
    url = url.strip()
    if "://" not in url:
        url = "http://" + url
    scheme, rest = url.split("://", 1)
    host, _, path = rest.partition("/")
    path = path.rstrip("/")
    return f"{scheme}://{host}/{path or 'graphql'}"
