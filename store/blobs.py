"""Content-addressed files in the data dir: uploaded source tarballs, for now.

A blob is written to a temporary file while it streams in, hashed on the way, and renamed
to its sha256 once complete, so a blob that exists is always whole and the same upload
twice is stored once.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import re
import tempfile
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Final

MAX_BLOB_BYTES: Final = 512 * 2**20
_KEY: Final = re.compile(r"sha256-[0-9a-f]{64}")


class BlobError(Exception):
    pass


class BlobStore:
    def __init__(self, root: Path) -> None:
        self.root = root

    def path(self, key: str) -> Path:
        if not _KEY.fullmatch(key):
            raise BlobError(f"{key!r} is not a blob key")
        return self.root / key

    async def put(self, chunks: AsyncIterator[bytes], limit: int = MAX_BLOB_BYTES) -> str:
        """Store what ``chunks`` yields; return its key. Refuses more than ``limit`` bytes."""
        self.root.mkdir(parents=True, exist_ok=True)
        digest = hashlib.sha256()
        size = 0
        fd, temporary = tempfile.mkstemp(dir=self.root, prefix=".incoming-")
        try:
            with os.fdopen(fd, "wb") as handle:
                async for chunk in chunks:
                    size += len(chunk)
                    if size > limit:
                        raise BlobError(f"the upload is larger than {limit // 2**20} MiB")
                    digest.update(chunk)
                    handle.write(chunk)
            key = f"sha256-{digest.hexdigest()}"
            os.replace(temporary, self.root / key)
            return key
        finally:
            with contextlib.suppress(FileNotFoundError):
                os.unlink(temporary)

    def discard(self, key: str) -> None:
        """Remove a blob (one no release refers to: see resolvers.releases.blob_in_use)."""
        with contextlib.suppress(FileNotFoundError):
            self.path(key).unlink()
