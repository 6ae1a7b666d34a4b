"""Getting a release's source onto disk: a local folder as it is, or an uploaded tarball
unpacked safely (no absolute paths, no escaping the folder, no devices or links outward)."""

from __future__ import annotations

import asyncio
import shutil
import tarfile
from pathlib import Path
from typing import Final

from reconcile.local.builder import BuildError
from store.blobs import BlobError, BlobStore

GIT_TIMEOUT_S: Final = 10.0


def _unpack(archive: Path, into: Path) -> Path:
    if into.exists():
        shutil.rmtree(into)
    into.mkdir(parents=True)
    try:
        with tarfile.open(archive) as tar:
            tar.extractall(into, filter="data")
    except (tarfile.TarError, OSError) as exc:
        raise BuildError(f"the uploaded source is not a usable tarball: {exc}") from None
    entries = list(into.iterdir())
    # A tarball of one top-level folder (as `git archive --prefix` and `tar czf x dir/` make)
    # is that folder's contents.
    if len(entries) == 1 and entries[0].is_dir():
        return entries[0]
    return into


async def prepare_source(source_ref: str, blobs: BlobStore, workdir: Path) -> Path:
    """The folder to build for ``source_ref`` (``path:…`` or ``blob:…``)."""
    kind, _, value = source_ref.partition(":")
    if kind == "path":
        path = Path(value)
        if not path.is_dir():
            raise BuildError(f"the source folder {path} does not exist (any more)")
        return path
    if kind == "blob":
        try:
            archive = blobs.path(value)
        except BlobError as exc:
            raise BuildError(str(exc)) from None
        if not archive.is_file():
            raise BuildError(f"the uploaded source {value} is missing from the blob store")
        return await asyncio.to_thread(_unpack, archive, workdir)
    raise BuildError(f"unknown source reference {source_ref!r}")


async def git_sha(folder: Path) -> str | None:
    """The commit checked out in ``folder``, when it is a git work tree."""
    if not (folder / ".git").exists():
        return None
    try:
        process = await asyncio.create_subprocess_exec(
            "git",
            "-C",
            str(folder),
            "rev-parse",
            "HEAD",
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.DEVNULL,
        )
        async with asyncio.timeout(GIT_TIMEOUT_S):
            out, _ = await process.communicate()
    except (FileNotFoundError, TimeoutError):
        return None
    sha = out.decode().strip()
    return sha if process.returncode == 0 and len(sha) in (40, 64) else None
