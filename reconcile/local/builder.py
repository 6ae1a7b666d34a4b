"""Building a release from source on this machine, without containers.

The builder looks at the source folder and picks one way to build it:

- **python**: ``requirements.txt`` or ``pyproject.toml`` → a virtualenv of the release's own,
  with the requirements (or the project) installed into it;
- **node**: ``package.json`` → ``npm ci`` (with a lockfile) or ``npm install``;
- **procfile** / **cmd**: nothing to install; the command comes from the Procfile or the
  spec.

Everything lands in the release's own directory (``app/``, ``venv/``), so releases never
share files and a release runs exactly what was built. Every step runs as a child process
with its output streamed line by line to the build log, under one deadline for the whole
build. The digest covers the built tree — the app and the installed packages, not caches or
files that embed the release's own path — so the same source and dependencies give the same
digest.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import importlib.metadata
import json
import os
import shlex
import shutil
import signal
import sys
import time
from collections.abc import Awaitable, Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Final

BUILDER_VERSION: Final = "enclii-local-builder/1"
IGNORED: Final = frozenset({".git", "__pycache__", "node_modules", ".venv", "venv", ".enclii"})
NOT_HASHED_SUFFIXES: Final = (".pyc", ".pyo")
# RECORD lists hashes of the console scripts, whose shebangs name the release directory.
NOT_HASHED_NAMES: Final = frozenset({"direct_url.json", "INSTALLER", "REQUESTED", "RECORD"})
DEFAULT_DEADLINE_S: Final = 600.0

LogLine = Callable[[str, str], Awaitable[None]]  # (stream, line)


class BuildError(Exception):
    """The build cannot succeed as things are; the message says why and what to change."""


@dataclass(frozen=True)
class Plan:
    kind: str  # python | node | procfile | cmd
    command: list[str]


@dataclass(frozen=True)
class Package:
    ecosystem: str  # pypi | npm
    name: str
    version: str


@dataclass(frozen=True)
class Built:
    root: Path
    plan: Plan
    digest: str
    packages: list[Package] = field(default_factory=list)
    seconds: float = 0.0


def _procfile_command(source: Path, process: str) -> list[str] | None:
    procfile = source / "Procfile"
    if not procfile.is_file():
        return None
    for raw in procfile.read_text(errors="replace").splitlines():
        name, sep, command = raw.partition(":")
        if sep and name.strip() == process and command.strip():
            return shlex.split(command.strip())
    return None


BUILDERS: Final = ("auto", "python", "node", "procfile", "cmd")


def detect(
    source: Path, spec_cmd: list[str] | None, process: str = "web", builder: str = "auto"
) -> Plan:
    """How to build ``source``; BuildError when there is nothing to build or run.

    ``builder`` is the spec's ``runtime.build.builder``: ``auto`` looks at the files; any
    other value insists on that kind and says so when the files do not fit it."""
    if not source.is_dir():
        raise BuildError(f"the source folder {source} does not exist or is not a folder")
    if builder != "auto":
        plan = detect(source, spec_cmd, process)
        if plan.kind != builder and not (builder == "cmd" and spec_cmd):
            raise BuildError(
                f"runtime.build.builder is {builder!r} but {source} looks like a {plan.kind} "
                "source; set builder to auto or to what the folder holds"
            )
        return Plan(kind=builder, command=plan.command) if builder == "cmd" else plan
    command = list(spec_cmd) if spec_cmd else _procfile_command(source, process)
    if (source / "requirements.txt").is_file() or (source / "pyproject.toml").is_file():
        kind = "python"
        if command is None:
            for candidate in ("app.py", "main.py", "server.py"):
                if (source / candidate).is_file():
                    command = ["python", candidate]
                    break
    elif (source / "package.json").is_file():
        kind = "node"
        try:
            package = json.loads((source / "package.json").read_text())
        except (ValueError, UnicodeDecodeError) as exc:
            raise BuildError(f"package.json in {source} is not valid JSON: {exc}") from None
        if not isinstance(package, dict):
            raise BuildError(f"package.json in {source} must be a JSON object")
        scripts = package.get("scripts", {})
        if command is None and isinstance(scripts, dict) and scripts.get("start"):
            command = ["npm", "start"]
    elif spec_cmd:
        kind = "cmd"
    elif command is not None:
        kind = "procfile"
    else:
        raise BuildError(
            f"nothing to build in {source}: add requirements.txt or pyproject.toml (Python), "
            "package.json (Node), a Procfile, or set spec.runtime.cmd"
        )
    if command is None:
        raise BuildError(
            f"no command to run the {kind} service in {source}: set spec.runtime.cmd or add "
            f"a Procfile with a '{process}:' line"
        )
    return Plan(kind=kind, command=command)


def _copy_source(source: Path, app: Path) -> None:
    app.parent.mkdir(parents=True)

    def ignore(directory: str, names: list[str]) -> set[str]:
        return {n for n in names if n in IGNORED}

    shutil.copytree(source, app, ignore=ignore, symlinks=True)


async def _run(
    args: list[str], cwd: Path, log: LogLine, deadline: float, env: dict[str, str]
) -> None:
    remaining = deadline - time.monotonic()
    if remaining <= 0:
        raise BuildError(f"the build ran out of time before {args[0]!r}")
    await log("build", f"$ {shlex.join(args)}")
    try:
        process = await asyncio.create_subprocess_exec(
            *args,
            cwd=cwd,
            env=env,
            stdin=asyncio.subprocess.DEVNULL,
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.STDOUT,
            start_new_session=True,  # its whole process group can be stopped on timeout
        )
    except FileNotFoundError:
        raise BuildError(f"{args[0]!r} is not installed on this machine") from None
    assert process.stdout is not None

    async def pump() -> None:
        assert process.stdout is not None
        async for raw in process.stdout:
            await log("build", raw.decode(errors="replace").rstrip("\n"))

    try:
        async with asyncio.timeout(remaining):
            await asyncio.gather(pump(), process.wait())
    except TimeoutError:
        _kill_group(process.pid)
        await process.wait()
        raise BuildError(
            f"the build timed out: {shlex.join(args)} was still running at the deadline"
        ) from None
    except asyncio.CancelledError:
        # The control plane is stopping: leave no build step running behind it.
        _kill_group(process.pid)
        raise
    if process.returncode != 0:
        raise BuildError(f"{shlex.join(args)} failed with exit code {process.returncode}")


def _kill_group(pid: int) -> None:
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(pid, signal.SIGKILL)


def _python_packages(venv: Path) -> list[Package]:
    site = list(venv.glob("lib/python*/site-packages"))
    packages = {
        (dist.metadata["Name"], dist.version)
        for dist in importlib.metadata.distributions(path=[str(p) for p in site])
        if dist.metadata["Name"]
    }
    return [Package("pypi", name, version) for name, version in sorted(packages)]


def _node_packages(app: Path) -> list[Package]:
    lock = app / "node_modules" / ".package-lock.json"
    if not lock.is_file():
        lock = app / "package-lock.json"
    if not lock.is_file():
        return []
    found = set()
    for path, info in json.loads(lock.read_text()).get("packages", {}).items():
        if path and isinstance(info, dict) and info.get("version"):
            found.add((path.rsplit("node_modules/", 1)[-1], str(info["version"])))
    return [Package("npm", name, version) for name, version in sorted(found)]


def _hashed_files(root: Path) -> Iterator[Path]:
    for path in sorted(root.rglob("*")):
        if not path.is_file() or path.is_symlink():
            continue
        if "__pycache__" in path.parts or path.name.endswith(NOT_HASHED_SUFFIXES):
            continue
        if path.name in NOT_HASHED_NAMES:
            continue
        yield path


def tree_digest(root: Path, command: list[str]) -> str:
    """sha256 over the app and the installed packages (by relative path and content) and
    the command: what decides how the release behaves."""
    digest = hashlib.sha256()
    digest.update(json.dumps(command).encode())
    parts = [root / "app", *sorted(root.glob("venv/lib/python*/site-packages"))]
    for part in parts:
        if not part.is_dir():
            continue
        for path in _hashed_files(part):
            digest.update(str(path.relative_to(root)).encode() + b"\0")
            with path.open("rb") as handle:
                digest.update(hashlib.file_digest(handle, "sha256").digest())
    return "sha256:" + digest.hexdigest()


def _pip_here(python: str) -> bool:
    """Whether ``python`` is this interpreter and has pip (new enough for ``--python``)."""
    if Path(python).resolve() != Path(sys.executable).resolve():
        return False
    try:
        version = importlib.metadata.version("pip")
    except importlib.metadata.PackageNotFoundError:
        return False
    major, _, rest = version.partition(".")
    minor = rest.partition(".")[0]
    return major.isdigit() and minor.isdigit() and (int(major), int(minor)) >= (22, 3)


def _lists_requirements(path: Path) -> bool:
    """Whether a requirements file names anything (not only comments and blank lines)."""
    for raw in path.read_text(errors="replace").splitlines():
        line = raw.strip()
        if line and not line.startswith("#"):
            return True
    return False


def _env() -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("ENCLII_", "VIRTUAL_ENV"))}
    env["PIP_DISABLE_PIP_VERSION_CHECK"] = "1"
    env["PYTHONDONTWRITEBYTECODE"] = "1"
    return env


async def build(
    source: Path,
    root: Path,
    plan: Plan,
    log: LogLine,
    *,
    deadline_s: float = DEFAULT_DEADLINE_S,
    python: str = sys.executable,
) -> Built:
    """Build ``source`` into ``root`` (which must not exist yet) following ``plan``."""
    started = time.monotonic()
    deadline = started + deadline_s
    env = _env()
    app = root / "app"
    await log("build", f"building a {plan.kind} release from {source}")
    await asyncio.to_thread(_copy_source, source, app)
    packages: list[Package] = []
    if plan.kind == "python":
        venv = root / "venv"
        target = str(venv / "bin" / "python")
        if _pip_here(python):
            # Our own pip installs into the release's venv (pip --python), which saves
            # seeding every venv with a copy of pip — most of a small build's time.
            await _run([python, "-m", "venv", "--without-pip", str(venv)], app, log, deadline, env)
            pip = [python, "-m", "pip", "--python", target, "install", "--no-input"]
        else:
            await _run([python, "-m", "venv", str(venv)], app, log, deadline, env)
            pip = [target, "-m", "pip", "install", "--no-input"]
        requirements = app / "requirements.txt"
        if requirements.is_file() and _lists_requirements(requirements):
            await _run([*pip, "-r", "requirements.txt"], app, log, deadline, env)
        elif requirements.is_file():
            await log("build", "requirements.txt lists nothing to install")
        if (app / "pyproject.toml").is_file():
            await _run([*pip, "."], app, log, deadline, env)
        packages = await asyncio.to_thread(_python_packages, venv)
    elif plan.kind == "node":
        npm = shutil.which("npm")
        if npm is None:
            raise BuildError("npm is not installed on this machine; the Node build needs it")
        install = "ci" if (app / "package-lock.json").is_file() else "install"
        await _run([npm, install, "--no-audit", "--no-fund"], app, log, deadline, env)
        packages = await asyncio.to_thread(_node_packages, app)
    digest = await asyncio.to_thread(tree_digest, root, plan.command)
    seconds = time.monotonic() - started
    await log("build", f"built {digest} in {seconds:.1f}s with {len(packages)} packages")
    return Built(root=root, plan=plan, digest=digest, packages=packages, seconds=seconds)
