"""The platform key: Ed25519, created on first start in the data dir, signing releases.

A release is signed over a canonical manifest (its ID, service, digest of the built tree,
SBOM hash, git SHA, builder and command), and the signature is checked against the tree
again before any replica of it starts — a release whose files changed after the build, or
whose manifest was edited in the store, is refused with the reason.
"""

from __future__ import annotations

import base64
import contextlib
import hashlib
import json
import os
import tempfile
from collections.abc import Mapping
from pathlib import Path
from typing import Any, Final

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey

KEY_FILE: Final = "platform-key.pem"
SCHEME: Final = "ed25519"


class SignatureError(Exception):
    """A signature that is missing, malformed, by another key, or does not verify."""


def canonical(manifest: Mapping[str, Any]) -> bytes:
    return json.dumps(manifest, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode()


class PlatformKey:
    def __init__(self, private: Ed25519PrivateKey) -> None:
        self._private = private
        self.public: Ed25519PublicKey = private.public_key()
        raw = self.public.public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)
        self.key_id = hashlib.sha256(raw).hexdigest()[:16]

    @classmethod
    def load_or_create(cls, data_dir: Path) -> PlatformKey:
        """The data dir's key; made (owner-only, written whole) when there is none."""
        path = data_dir / KEY_FILE
        if path.exists():
            loaded = serialization.load_pem_private_key(path.read_bytes(), password=None)
            if not isinstance(loaded, Ed25519PrivateKey):
                raise SignatureError(f"{path} does not hold an Ed25519 key")
            return cls(loaded)
        private = Ed25519PrivateKey.generate()
        pem = private.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
        # A temporary file of our own (mkstemp: mode 0600, a unique name), written whole, then
        # linked into place: the link fails if another process got there first, in which
        # case its key is the key.
        fd, temporary = tempfile.mkstemp(dir=data_dir, prefix=".platform-key-")
        try:
            with os.fdopen(fd, "wb") as handle:
                handle.write(pem)
                handle.flush()
                os.fsync(handle.fileno())
            try:
                os.link(temporary, path)
            except FileExistsError:
                return cls.load_or_create(data_dir)
        finally:
            with contextlib.suppress(FileNotFoundError):
                os.unlink(temporary)
        return cls(private)

    def sign(self, manifest: Mapping[str, Any]) -> str:
        """``ed25519:<key id>:<base64 signature>`` over the canonical manifest."""
        signature = self._private.sign(canonical(manifest))
        return f"{SCHEME}:{self.key_id}:{base64.b64encode(signature).decode()}"

    def verify(self, manifest: Mapping[str, Any], signature: str | None) -> None:
        """Raise SignatureError unless ``signature`` is this key's, over ``manifest``."""
        if not signature:
            raise SignatureError("the release is not signed")
        scheme, _, rest = signature.partition(":")
        key_id, _, encoded = rest.partition(":")
        if scheme != SCHEME or not encoded:
            raise SignatureError(f"the signature is not an {SCHEME} signature")
        if key_id != self.key_id:
            raise SignatureError(
                f"the release was signed by key {key_id}, not by this platform's key {self.key_id}"
            )
        try:
            self.public.verify(base64.b64decode(encoded, validate=True), canonical(manifest))
        except (InvalidSignature, ValueError):
            raise SignatureError(
                "the signature does not match the release: its manifest or files changed "
                "after it was signed"
            ) from None


def release_manifest(
    *,
    release_id: str,
    service_id: str,
    digest: str,
    sbom_sha256: str,
    git_sha: str | None,
    command: list[str],
    builder: str,
) -> dict[str, Any]:
    """What a release's signature covers."""
    return {
        "release": release_id,
        "service": service_id,
        "digest": digest,
        "sbom": sbom_sha256,
        "git_sha": git_sha,
        "command": command,
        "builder": builder,
    }
