"""Which project, environment and service a verb means.

A verb names a service (``enclii logs api``) and may say ``--env`` and ``--project``; what
it leaves out comes from the ``enclii.yaml`` in the current folder (its ``metadata``), so in
a service's own folder ``enclii logs`` is enough. The CLI reads only ``metadata``: the
server validates the whole document.
"""

from __future__ import annotations

import io
import os
import subprocess
import tarfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Final

from client.cli.i18n import t
from client.cli.session import fail

SPEC_FILE: Final = "enclii.yaml"
# Never shipped with a source upload: caches, environments, VCS data.
EXCLUDED: Final = frozenset(
    {".git", ".hg", ".venv", "venv", "__pycache__", "node_modules", ".mypy_cache", ".pytest_cache"}
)


@dataclass(frozen=True)
class Target:
    project: str
    environment: str
    service: str | None


def read_metadata(path: Path) -> dict[str, Any]:
    """``metadata`` of a Service Spec file ({} when there is no file)."""
    import yaml

    try:
        text = path.read_text()
    except FileNotFoundError:
        return {}
    except OSError as exc:
        fail(f"cannot read {path}: {exc.strerror}")
    try:
        document = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        fail(f"{path} is not valid YAML: {exc}")
    metadata = document.get("metadata") if isinstance(document, dict) else None
    return metadata if isinstance(metadata, dict) else {}


def target(
    service: str | None,
    environment: str | None,
    project: str | None,
    spec_file: Path | None = None,
    need_service: bool = True,
) -> Target:
    metadata = read_metadata(spec_file or Path(SPEC_FILE))
    chosen = Target(
        project=project or os.environ.get("ENCLII_PROJECT") or metadata.get("project") or "",
        environment=environment
        or os.environ.get("ENCLII_ENV")
        or metadata.get("environment")
        or "",
        service=service or metadata.get("name"),
    )
    missing = [
        what
        for what, value in (
            ("--project (or ENCLII_PROJECT)", chosen.project),
            ("--env (or ENCLII_ENV)", chosen.environment),
            ("the service name", chosen.service if need_service else "given"),
        )
        if not value
    ]
    if missing:
        fail(t("missing.target", what=" & ".join(missing), file=SPEC_FILE))
    return chosen


def git_facts(folder: Path) -> tuple[str | None, str | None]:
    """(SHA, branch) of the git work tree holding ``folder``, if it is one."""

    def ask(*args: str) -> str | None:
        try:
            done = subprocess.run(
                ["git", *args], cwd=folder, capture_output=True, text=True, timeout=10
            )
        except (OSError, subprocess.TimeoutExpired):
            return None
        value = done.stdout.strip()
        return value if done.returncode == 0 and value else None

    sha = ask("rev-parse", "HEAD")
    branch = ask("rev-parse", "--abbrev-ref", "HEAD")
    return sha, (branch if branch != "HEAD" else None)


def tarball(folder: Path) -> bytes:
    """The folder as a gzipped tarball, without caches, environments and VCS data."""

    def keep(info: tarfile.TarInfo) -> tarfile.TarInfo | None:
        parts = Path(info.name).parts
        if any(part in EXCLUDED for part in parts) or info.name.endswith(".pyc"):
            return None
        return info

    buffer = io.BytesIO()
    try:
        with tarfile.open(fileobj=buffer, mode="w:gz") as archive:
            for path in sorted(folder.iterdir()):
                archive.add(path, arcname=path.name, filter=keep)
    except OSError as exc:
        fail(f"cannot pack {folder} for upload: {exc.strerror or exc} ({exc.filename})")
    return buffer.getvalue()
