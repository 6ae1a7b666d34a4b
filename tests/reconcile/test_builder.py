"""The local builder: what it detects, what it builds (real virtualenvs, real npm), its
digest, its deadline, and getting a release's source onto disk."""

from __future__ import annotations

import asyncio
import io
import json
import os
import shlex
import shutil
import subprocess
import sys
import tarfile
import time
import uuid
from collections.abc import AsyncIterator, Callable, Coroutine
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

import psutil
import pytest

from reconcile.local import builder
from reconcile.local.builder import (
    BuildError,
    Built,
    LogLine,
    Package,
    Plan,
    build,
    detect,
    tree_digest,
)
from reconcile.local.sources import git_sha, prepare_source
from store.blobs import BlobStore
from tests.factories import make_wheel

T = TypeVar("T")
PY_CMD = ["python", "app.py"]


def _run_in_thread(make: Callable[[], Coroutine[Any, Any, T]]) -> T:
    """Run a coroutine on a loop of its own (module fixtures are built outside any test's
    loop, and may be first requested from inside one)."""
    with ThreadPoolExecutor(max_workers=1) as pool:
        return pool.submit(lambda: asyncio.run(make())).result()


def write(root: Path, files: dict[str, str]) -> Path:
    for name, content in files.items():
        path = root / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(content)
    return root


def collector(lines: list[tuple[str, str]]) -> LogLine:
    async def log(stream: str, line: str) -> None:
        lines.append((stream, line))

    return log


# -- detect ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("files", "spec_cmd", "process", "expected"),
    [
        ({"requirements.txt": "", "app.py": ""}, None, "web", Plan("python", ["python", "app.py"])),
        ({"pyproject.toml": "", "main.py": ""}, None, "web", Plan("python", ["python", "main.py"])),
        (
            {"requirements.txt": "", "server.py": ""},
            None,
            "web",
            Plan("python", ["python", "server.py"]),
        ),
        # app.py is the first candidate.
        (
            {"requirements.txt": "", "server.py": "", "app.py": ""},
            None,
            "web",
            Plan("python", ["python", "app.py"]),
        ),
        # The spec's command wins over a Procfile and over app.py.
        (
            {"requirements.txt": "", "app.py": "", "Procfile": "web: gunicorn app:app\n"},
            ["uvicorn", "main:app"],
            "web",
            Plan("python", ["uvicorn", "main:app"]),
        ),
        # The Procfile's line for the process wins over app.py.
        (
            {
                "requirements.txt": "",
                "app.py": "",
                "Procfile": "web: gunicorn 'app:create()' -b :8080\nworker: celery -A tasks\n",
            },
            None,
            "web",
            Plan("python", ["gunicorn", "app:create()", "-b", ":8080"]),
        ),
        (
            {
                "requirements.txt": "",
                "app.py": "",
                "Procfile": "web: gunicorn app:app\nworker: celery -A tasks worker\n",
            },
            None,
            "worker",
            Plan("python", ["celery", "-A", "tasks", "worker"]),
        ),
        (
            {"package.json": json.dumps({"scripts": {"start": "node index.js"}})},
            None,
            "web",
            Plan("node", ["npm", "start"]),
        ),
        (
            {
                "package.json": json.dumps({"scripts": {"start": "node index.js"}}),
                "Procfile": "web: node server.js\n",
            },
            None,
            "web",
            Plan("node", ["node", "server.js"]),
        ),
        (
            {"package.json": "{}"},
            ["node", "index.js"],
            "web",
            Plan("node", ["node", "index.js"]),
        ),
        # Python files win over package.json.
        (
            {"requirements.txt": "", "app.py": "", "package.json": "{}"},
            None,
            "web",
            Plan("python", ["python", "app.py"]),
        ),
        (
            {"Procfile": "web: ./run.sh --port 8080\n"},
            None,
            "web",
            Plan("procfile", ["./run.sh", "--port", "8080"]),
        ),
        ({"Procfile": "web: ./serve\n"}, ["./other"], "web", Plan("cmd", ["./other"])),
        ({"README.md": ""}, ["./bin/server"], "web", Plan("cmd", ["./bin/server"])),
    ],
)
def test_detect(
    tmp_path: Path,
    files: dict[str, str],
    spec_cmd: list[str] | None,
    process: str,
    expected: Plan,
) -> None:
    assert detect(write(tmp_path, files), spec_cmd, process) == expected


def test_detect_a_missing_folder(tmp_path: Path) -> None:
    missing = tmp_path / "nowhere"
    with pytest.raises(BuildError) as raised:
        detect(missing, PY_CMD)
    assert str(raised.value) == f"the source folder {missing} does not exist or is not a folder"
    a_file = write(tmp_path, {"file.txt": ""}) / "file.txt"
    with pytest.raises(BuildError) as raised:
        detect(a_file, PY_CMD)
    assert str(raised.value) == f"the source folder {a_file} does not exist or is not a folder"


@pytest.mark.parametrize(
    "files",
    [
        {},
        {"README.md": "", "index.html": ""},
        {"Procfile": "worker: ./work\n"},  # no line for the web process
        {"Procfile": "web:\n"},  # a line without a command
    ],
)
def test_detect_nothing_to_build(tmp_path: Path, files: dict[str, str]) -> None:
    source = write(tmp_path, files)
    with pytest.raises(BuildError) as raised:
        detect(source, None)
    assert str(raised.value) == (
        f"nothing to build in {source}: add requirements.txt or pyproject.toml (Python), "
        "package.json (Node), a Procfile, or set spec.runtime.cmd"
    )


@pytest.mark.parametrize(
    ("files", "kind", "process"),
    [
        ({"requirements.txt": "", "lib.py": ""}, "python", "web"),
        ({"pyproject.toml": "", "Procfile": "web: python app.py\n"}, "python", "worker"),
        ({"package.json": json.dumps({"scripts": {"test": "jest"}})}, "node", "web"),
        ({"package.json": json.dumps({"scripts": {"start": ""}})}, "node", "web"),
    ],
)
def test_detect_no_command(tmp_path: Path, files: dict[str, str], kind: str, process: str) -> None:
    source = write(tmp_path, files)
    with pytest.raises(BuildError) as raised:
        detect(source, None, process)
    assert str(raised.value) == (
        f"no command to run the {kind} service in {source}: set spec.runtime.cmd or add "
        f"a Procfile with a '{process}:' line"
    )


@pytest.mark.parametrize("package_json", ["{not json", "[1, 2]"])
def test_detect_a_malformed_package_json_is_a_build_error(
    tmp_path: Path, package_json: str
) -> None:
    """detect() reads package.json with json.loads(...).get(...): a file that is not JSON
    raises JSONDecodeError, and a JSON array AttributeError. The build controller catches
    only BuildError, so such a release is retried forever and stays BUILDING instead of
    ending FAILED with the reason."""
    source = write(tmp_path, {"package.json": package_json})
    with pytest.raises(BuildError):
        detect(source, None)


# -- building -------------------------------------------------------------------------------


@dataclass(frozen=True)
class PythonBuilds:
    source: Path
    plan: Plan
    one: Built
    two: Built
    logs: list[tuple[str, str]]


PYTHON_APP = {
    "app.py": "print('hello')\n",
    # A real dependency, installed offline from a wheel in the source (see make_wheel).
    "requirements.txt": "./wheels/tiny-1.0-py3-none-any.whl\n",
    "lib/util.py": "VALUE = 1\n",
    ".git/HEAD": "ref: refs/heads/main\n",
    "__pycache__/app.cpython-311.pyc": "stale",
    "lib/__pycache__/util.cpython-311.pyc": "stale",
    "node_modules/left-pad/index.js": "module.exports = 1\n",
    ".venv/pyvenv.cfg": "home = /usr\n",
}


@pytest.fixture(scope="module")
def python_builds(tmp_path_factory: pytest.TempPathFactory) -> PythonBuilds:
    """One Python source (requiring a local wheel) built twice, into two roots, at once."""
    base = tmp_path_factory.mktemp("python-builds")
    source = write(base / "source", PYTHON_APP)
    make_wheel(source / "wheels")
    plan = detect(source, None)
    logs: list[tuple[str, str]] = []

    async def both() -> tuple[Built, Built]:
        return await asyncio.gather(
            build(source, base / "one", plan, collector(logs)),
            build(source, base / "two", plan, collector([])),
        )

    one, two = _run_in_thread(both)
    return PythonBuilds(source, plan, one, two, logs)


def _site_packages(root: Path) -> Path:
    (site,) = root.glob("venv/lib/python*/site-packages")
    return site


def test_python_build_makes_a_venv_and_copies_the_app(python_builds: PythonBuilds) -> None:
    built = python_builds.one
    root = built.root
    assert built.plan == Plan("python", ["python", "app.py"])
    assert sorted(p.name for p in root.iterdir()) == ["app", "venv"]
    assert (root / "venv" / "bin" / "python").exists()
    site = _site_packages(root)
    assert (site / "tiny" / "__init__.py").is_file()
    # The venv is seeded without pip: Enclii's own pip installs into it.
    assert not (site / "pip").exists()
    app_files = sorted(str(p.relative_to(root / "app")) for p in (root / "app").rglob("*"))
    assert app_files == [
        "app.py",
        "lib",
        "lib/util.py",
        "requirements.txt",
        "wheels",
        "wheels/tiny-1.0-py3-none-any.whl",
    ]
    assert (root / "app" / "app.py").read_text() == "print('hello')\n"

    assert [(p.ecosystem, p.name, p.version) for p in built.packages] == [("pypi", "tiny", "1.0")]
    assert (site / "tiny-1.0.dist-info").is_dir()

    assert built.digest.startswith("sha256:") and len(built.digest) == 7 + 64
    assert built.digest == tree_digest(root, ["python", "app.py"])
    assert built.seconds > 0


def test_python_build_streams_its_log(python_builds: PythonBuilds) -> None:
    logs = python_builds.logs
    root = python_builds.one.root
    assert {stream for stream, _ in logs} == {"build"}
    lines = [line for _, line in logs]
    assert lines[0] == f"building a python release from {python_builds.source}"
    venv = [sys.executable, "-m", "venv", "--without-pip", str(root / "venv")]
    assert lines[1] == f"$ {shlex.join(venv)}"
    target = str(root / "venv" / "bin" / "python")
    pip = [sys.executable, "-m", "pip", "--python", target, "install", "--no-input"]
    assert f"$ {shlex.join([*pip, '-r', 'requirements.txt'])}" in lines
    built = python_builds.one
    assert lines[-1] == (
        f"built {built.digest} in {built.seconds:.1f}s with {len(built.packages)} packages"
    )


def test_the_same_source_built_twice_has_the_same_digest(python_builds: PythonBuilds) -> None:
    one, two = python_builds.one, python_builds.two
    assert one.root != two.root
    assert one.digest == two.digest
    assert one.packages == two.packages


def test_the_digest_covers_the_app_the_packages_and_the_command(
    python_builds: PythonBuilds, tmp_path: Path
) -> None:
    copy = tmp_path / "copy"
    shutil.copytree(python_builds.one.root, copy, symlinks=True)
    digest = python_builds.one.digest
    assert tree_digest(copy, PY_CMD) == digest  # where the tree lives does not matter

    app = copy / "app" / "app.py"
    app.write_text("print('changed')\n")
    changed = tree_digest(copy, PY_CMD)
    assert changed != digest
    app.write_text("print('hello')\n")
    assert tree_digest(copy, PY_CMD) == digest

    (copy / "app" / "lib" / "new.py").write_text("")
    assert tree_digest(copy, PY_CMD) != digest
    (copy / "app" / "lib" / "new.py").unlink()

    init = _site_packages(copy) / "tiny" / "__init__.py"
    original = init.read_bytes()
    init.write_bytes(original + b"\n# patched\n")
    assert tree_digest(copy, PY_CMD) != digest
    init.write_bytes(original)

    assert tree_digest(copy, ["python", "other.py"]) != digest

    # Caches and compiled files are not what the release is.
    (copy / "app" / "__pycache__").mkdir()
    (copy / "app" / "__pycache__" / "app.cpython-311.pyc").write_bytes(b"\0")
    (copy / "app" / "lib" / "util.pyc").write_bytes(b"\0")
    assert tree_digest(copy, PY_CMD) == digest


async def test_a_failing_step_names_the_command_and_exit_code(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("PIP_NO_INDEX", "1")  # no network: the package cannot be found
    source = write(
        tmp_path / "source",
        {"app.py": "", "requirements.txt": "enclii-test-no-such-package==1.0\n"},
    )
    root = tmp_path / "root"
    logs: list[tuple[str, str]] = []
    with pytest.raises(BuildError) as raised:
        await build(source, root, detect(source, None), collector(logs))
    target = str(root / "venv" / "bin" / "python")
    pip = [sys.executable, "-m", "pip", "--python", target, "install", "--no-input"]
    assert str(raised.value) == (
        f"{shlex.join([*pip, '-r', 'requirements.txt'])} failed with exit code 1"
    )
    # pip's own explanation reached the log.
    assert any("enclii-test-no-such-package" in line for _, line in logs[2:])


def _processes_with(marker: str) -> list[psutil.Process]:
    found = []
    for process in psutil.process_iter():
        try:
            if process.status() == psutil.STATUS_ZOMBIE:
                continue
            if process.environ().get("ENCLII_TEST_MARKER") == marker:
                found.append(process)
        except (psutil.NoSuchProcess, psutil.AccessDenied):
            continue
    return found


async def test_a_step_past_the_deadline_is_killed_with_its_children(tmp_path: Path) -> None:
    marker = uuid.uuid4().hex
    env = {**os.environ, "ENCLII_TEST_MARKER": marker}
    logs: list[tuple[str, str]] = []
    # The shell starts a second sleep in the background: the whole group must go.
    args = ["sh", "-c", "sleep 30 & sleep 30"]
    with pytest.raises(BuildError) as raised:
        await builder._run(args, tmp_path, collector(logs), time.monotonic() + 0.5, env)
    assert str(raised.value) == (
        f"the build timed out: {shlex.join(args)} was still running at the deadline"
    )
    assert logs == [("build", f"$ {shlex.join(args)}")]

    async def no_survivors() -> None:
        while _processes_with(marker):
            await asyncio.sleep(0.02)

    await asyncio.wait_for(no_survivors(), 10)
    assert not [c for c in psutil.Process().children(recursive=True) if "sleep" in c.name()]


async def test_run_refuses_after_the_deadline_and_names_a_missing_program(tmp_path: Path) -> None:
    log = collector([])
    with pytest.raises(BuildError) as raised:
        await builder._run(["true"], tmp_path, log, time.monotonic() - 1, dict(os.environ))
    assert str(raised.value) == "the build ran out of time before 'true'"
    with pytest.raises(BuildError) as raised:
        await builder._run(
            ["enclii-no-such-program"], tmp_path, log, time.monotonic() + 30, dict(os.environ)
        )
    assert str(raised.value) == "'enclii-no-such-program' is not installed on this machine"


async def test_a_cmd_build_copies_the_app_and_installs_nothing(tmp_path: Path) -> None:
    source = write(tmp_path / "source", {"run.sh": "#!/bin/sh\n", ".git/HEAD": "x"})
    plan = detect(source, ["./run.sh"])
    built = await build(source, tmp_path / "root", plan, collector([]))
    assert sorted(p.name for p in built.root.iterdir()) == ["app"]
    assert sorted(p.name for p in (built.root / "app").iterdir()) == ["run.sh"]
    assert built.packages == []
    assert built.digest == tree_digest(built.root, ["./run.sh"])


async def test_node_build(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    if shutil.which("npm") is None:
        pytest.skip("npm is not on PATH: the Node build cannot be exercised here")
    monkeypatch.setenv("npm_config_offline", "true")  # nothing to fetch; never the network
    package = {"name": "demo", "version": "1.0.0", "scripts": {"start": "node index.js"}}
    source = write(
        tmp_path / "source",
        {"package.json": json.dumps(package), "index.js": "console.log('hi')\n"},
    )
    plan = detect(source, None)
    assert plan == Plan("node", ["npm", "start"])
    logs: list[tuple[str, str]] = []
    root = tmp_path / "root"
    built = await build(source, root, plan, collector(logs))
    npm = shutil.which("npm")
    assert f"$ {shlex.join([str(npm), 'install', '--no-audit', '--no-fund'])}" in [
        line for _, line in logs
    ]
    assert (root / "app" / "package-lock.json").is_file()
    assert not (root / "venv").exists()
    assert built.packages == []
    assert built.digest == tree_digest(root, ["npm", "start"])

    again = await build(source, tmp_path / "again", plan, collector([]))
    assert again.digest == built.digest


async def test_node_packages_are_read_from_the_lockfile(tmp_path: Path) -> None:
    lock = {
        "packages": {
            "": {"name": "demo", "version": "1.0.0"},
            "node_modules/left-pad": {"version": "1.3.0"},
            "node_modules/@scope/pkg": {"version": "2.0.0"},
            "node_modules/a/node_modules/b": {"version": "0.1.0"},
        }
    }
    write(tmp_path, {"package-lock.json": json.dumps(lock)})
    assert builder._node_packages(tmp_path) == [
        Package("npm", "@scope/pkg", "2.0.0"),
        Package("npm", "b", "0.1.0"),
        Package("npm", "left-pad", "1.3.0"),
    ]


# -- sources --------------------------------------------------------------------------------


def tarball(members: dict[str, bytes], links: dict[str, str] | None = None) -> bytes:
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w:gz") as tar:
        for name, data in members.items():
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
        for name, target in (links or {}).items():
            info = tarfile.TarInfo(name)
            info.type = tarfile.SYMTYPE
            info.linkname = target
            tar.addfile(info)
    return buffer.getvalue()


async def put(blobs: BlobStore, data: bytes) -> str:
    async def chunks() -> AsyncIterator[bytes]:
        yield data

    return await blobs.put(chunks())


def tree(root: Path) -> list[str]:
    return sorted(str(p.relative_to(root)) for p in root.rglob("*"))


async def test_a_path_source_is_the_folder_itself(tmp_path: Path) -> None:
    blobs = BlobStore(tmp_path / "blobs")
    source = write(tmp_path / "src", {"app.py": ""})
    assert await prepare_source(f"path:{source}", blobs, tmp_path / "work") == source
    assert not (tmp_path / "work").exists()
    gone = tmp_path / "gone"
    with pytest.raises(BuildError) as raised:
        await prepare_source(f"path:{gone}", blobs, tmp_path / "work")
    assert str(raised.value) == f"the source folder {gone} does not exist (any more)"


async def test_a_tarball_of_one_folder_unpacks_to_that_folder(tmp_path: Path) -> None:
    blobs = BlobStore(tmp_path / "blobs")
    key = await put(blobs, tarball({"shop-1.0/app.py": b"print(1)\n", "shop-1.0/lib/x.py": b""}))
    work = tmp_path / "work" / "rel_1"
    folder = await prepare_source(f"blob:{key}", blobs, work)
    assert folder == work / "shop-1.0"
    assert tree(folder) == ["app.py", "lib", "lib/x.py"]
    assert (folder / "app.py").read_bytes() == b"print(1)\n"

    # Unpacking again (a rebuild) starts from an empty folder.
    (work / "leftover.txt").write_text("from a crashed build")
    assert await prepare_source(f"blob:{key}", blobs, work) == folder
    assert tree(work) == ["shop-1.0", "shop-1.0/app.py", "shop-1.0/lib", "shop-1.0/lib/x.py"]


async def test_a_tarball_of_several_entries_unpacks_to_the_work_folder(tmp_path: Path) -> None:
    blobs = BlobStore(tmp_path / "blobs")
    key = await put(blobs, tarball({"app.py": b"", "requirements.txt": b""}))
    work = tmp_path / "work"
    assert await prepare_source(f"blob:{key}", blobs, work) == work
    assert tree(work) == ["app.py", "requirements.txt"]


@pytest.mark.parametrize(
    ("members", "links"),
    [
        ({"src/app.py": b"", "../escaped.txt": b"x"}, {}),
        ({"src/app.py": b"", "src/../../escaped.txt": b"x"}, {}),
        ({"src/app.py": b""}, {"src/etc": "/etc"}),
        ({"src/app.py": b""}, {"src/up": "../../.."}),
    ],
)
async def test_a_tarball_reaching_outside_is_refused(
    tmp_path: Path, members: dict[str, bytes], links: dict[str, str]
) -> None:
    blobs = BlobStore(tmp_path / "blobs")
    key = await put(blobs, tarball(members, links))
    work = tmp_path / "work" / "rel_1"
    before = tree(tmp_path)
    with pytest.raises(BuildError) as raised:
        await prepare_source(f"blob:{key}", blobs, work)
    assert str(raised.value).startswith("the uploaded source is not a usable tarball: ")
    assert not (tmp_path / "work" / "escaped.txt").exists()
    assert not (tmp_path / "escaped.txt").exists()
    # Nothing appeared outside the release's work folder.
    assert [p for p in tree(tmp_path) if not p.startswith("work")] == [
        p for p in before if not p.startswith("work")
    ]
    assert [p for p in tree(tmp_path / "work") if not p.startswith("rel_1")] == []


async def test_an_absolute_member_never_lands_at_its_absolute_path(tmp_path: Path) -> None:
    """The "data" extraction filter strips the leading slash (as GNU tar does), so the file
    lands inside the work folder; nothing is written at the absolute path."""
    target = tmp_path / "outside" / "abs.txt"
    blobs = BlobStore(tmp_path / "blobs")
    key = await put(blobs, tarball({"app.py": b"", str(target): b"x"}))
    work = tmp_path / "work"
    folder = await prepare_source(f"blob:{key}", blobs, work)
    assert not target.exists()
    assert folder == work
    assert (work / str(target).lstrip("/")).read_bytes() == b"x"


@pytest.mark.parametrize(
    ("ref", "message"),
    [
        ("blob:not-a-key", "'not-a-key' is not a blob key"),
        (
            "blob:sha256-" + "0" * 64,
            f"the uploaded source sha256-{'0' * 64} is missing from the blob store",
        ),
        ("ftp:somewhere", "unknown source reference 'ftp:somewhere'"),
        ("", "unknown source reference ''"),
    ],
)
async def test_unusable_source_references(tmp_path: Path, ref: str, message: str) -> None:
    with pytest.raises(BuildError) as raised:
        await prepare_source(ref, BlobStore(tmp_path / "blobs"), tmp_path / "work")
    assert str(raised.value) == message


async def test_a_blob_that_is_not_a_tarball(tmp_path: Path) -> None:
    blobs = BlobStore(tmp_path / "blobs")
    key = await put(blobs, b"this is not a tarball")
    with pytest.raises(BuildError) as raised:
        await prepare_source(f"blob:{key}", blobs, tmp_path / "work")
    assert str(raised.value).startswith("the uploaded source is not a usable tarball: ")


def _git_repos(tmp_path: Path, git: str) -> tuple[Path, str, Path]:
    """A work tree with one commit (and its HEAD), and one with none yet."""
    env = {
        **os.environ,
        "GIT_CONFIG_GLOBAL": os.devnull,
        "GIT_CONFIG_NOSYSTEM": "1",
        "GIT_AUTHOR_NAME": "Test",
        "GIT_AUTHOR_EMAIL": "test@example.test",
        "GIT_COMMITTER_NAME": "Test",
        "GIT_COMMITTER_EMAIL": "test@example.test",
    }
    repo = write(tmp_path / "repo", {"app.py": "print(1)\n"})
    for args in (["init", "-q"], ["add", "app.py"], ["commit", "-q", "-m", "first"]):
        subprocess.run([git, "-C", str(repo), *args], env=env, check=True)
    done = subprocess.run(
        [git, "-C", str(repo), "rev-parse", "HEAD"], env=env, check=True, capture_output=True
    )
    empty = tmp_path / "empty"
    empty.mkdir()
    subprocess.run([git, "-C", str(empty), "init", "-q"], env=env, check=True)
    return repo, done.stdout.decode().strip(), empty


async def test_git_sha_of_a_work_tree(tmp_path: Path) -> None:
    git = shutil.which("git")
    if git is None:
        pytest.skip("git is not on PATH")
    assert await git_sha(tmp_path) is None  # not a work tree
    repo, head, empty = await asyncio.to_thread(_git_repos, tmp_path, git)
    sha = await git_sha(repo)
    assert sha == head
    assert sha is not None and len(sha) == 40
    assert all(c in "0123456789abcdef" for c in sha)
    # A work tree without a commit yet has no SHA.
    assert await git_sha(empty) is None
