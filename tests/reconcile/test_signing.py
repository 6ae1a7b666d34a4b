"""The platform key: made once per data dir (owner-only), loaded after that, signing
release manifests; every way a signature can be wrong has its own message."""

from __future__ import annotations

import base64
import stat
import threading
from pathlib import Path
from typing import Any

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec

from reconcile.signing import KEY_FILE, PlatformKey, SignatureError, release_manifest


def manifest(**changes: Any) -> dict[str, Any]:
    fields: dict[str, Any] = {
        "release_id": "rel_1",
        "service_id": "svc_1",
        "digest": "sha256:" + "a" * 64,
        "sbom_sha256": "sha256:" + "b" * 64,
        "git_sha": "c" * 40,
        "command": ["python", "app.py"],
        "builder": "python",
    }
    fields.update(changes)
    return release_manifest(**fields)


def test_load_or_create_writes_an_owner_only_key_and_loads_it_next_time(tmp_path: Path) -> None:
    created = PlatformKey.load_or_create(tmp_path)
    path = tmp_path / KEY_FILE
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert path.read_bytes().startswith(b"-----BEGIN PRIVATE KEY-----")
    assert sorted(p.name for p in tmp_path.iterdir()) == [KEY_FILE]  # no temporary left

    loaded = PlatformKey.load_or_create(tmp_path)
    assert loaded.key_id == created.key_id
    assert len(created.key_id) == 16
    # The same key, not merely the same ID: each verifies what the other signed.
    loaded.verify(manifest(), created.sign(manifest()))
    created.verify(manifest(), loaded.sign(manifest()))
    assert stat.S_IMODE(path.stat().st_mode) == 0o600


def test_each_data_dir_has_its_own_key(tmp_path: Path) -> None:
    (tmp_path / "a").mkdir()
    (tmp_path / "b").mkdir()
    assert (
        PlatformKey.load_or_create(tmp_path / "a").key_id
        != PlatformKey.load_or_create(tmp_path / "b").key_id
    )


def test_a_key_file_of_another_kind_is_refused(tmp_path: Path) -> None:
    pem = ec.generate_private_key(ec.SECP256R1()).private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )
    (tmp_path / KEY_FILE).write_bytes(pem)
    with pytest.raises(SignatureError) as raised:
        PlatformKey.load_or_create(tmp_path)
    assert str(raised.value) == f"{tmp_path / KEY_FILE} does not hold an Ed25519 key"


def _race(data_dir: Path, callers: int) -> list[str]:
    """``callers`` threads calling load_or_create on ``data_dir`` at once: the key ID each
    got, or the exception it raised."""
    barrier = threading.Barrier(callers)
    results: list[str] = [""] * callers

    def call(i: int) -> None:
        barrier.wait()
        try:
            results[i] = PlatformKey.load_or_create(data_dir).key_id
        except Exception as exc:
            results[i] = f"{exc.__class__.__name__}: {exc}"

    threads = [threading.Thread(target=call, args=(i,)) for i in range(callers)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return results


def test_concurrent_load_or_create_agrees_on_one_key(tmp_path: Path) -> None:
    """Two first starts at once (two threads here; two processes on one data dir alike)
    must end with one key that both hold and that is on disk. load_or_create uses one fixed
    temporary name (platform-key.tmp): the second caller unlinks the first caller's
    temporary, the first then links the second's (possibly half-written) file as the key
    and unlinks it, and the second's os.link fails with FileNotFoundError."""
    outcomes = []
    for attempt in range(20):
        data_dir = tmp_path / f"round-{attempt}"
        data_dir.mkdir()
        got = _race(data_dir, 2)
        on_disk = PlatformKey.load_or_create(data_dir).key_id
        outcomes.append((got, on_disk))
    assert [got for got, _ in outcomes] == [[disk, disk] for _, disk in outcomes]


# -- signatures -----------------------------------------------------------------------------


@pytest.fixture
def key(tmp_path: Path) -> PlatformKey:
    return PlatformKey.load_or_create(tmp_path)


def test_sign_and_verify_round_trip(key: PlatformKey) -> None:
    signature = key.sign(manifest())
    scheme, key_id, encoded = signature.split(":")
    assert (scheme, key_id) == ("ed25519", key.key_id)
    assert len(base64.b64decode(encoded, validate=True)) == 64
    key.verify(manifest(), signature)
    # The manifest is canonical: the order of its keys does not matter.
    key.verify(dict(reversed(list(manifest().items()))), signature)


MISMATCH = (
    "the signature does not match the release: its manifest or files changed after it was signed"
)


@pytest.mark.parametrize(
    "changes",
    [
        {"digest": "sha256:" + "d" * 64},
        {"git_sha": None},
        {"git_sha": "e" * 40},
        {"command": ["python", "other.py"]},
        {"builder": "node"},
        {"sbom_sha256": "sha256:" + "0" * 64},
        {"release_id": "rel_2"},
        {"service_id": "svc_2"},
    ],
)
def test_a_changed_manifest_does_not_verify(key: PlatformKey, changes: dict[str, Any]) -> None:
    signature = key.sign(manifest())
    with pytest.raises(SignatureError) as raised:
        key.verify(manifest(**changes), signature)
    assert str(raised.value) == MISMATCH


def test_each_way_a_signature_is_wrong_has_its_own_message(
    key: PlatformKey, tmp_path: Path
) -> None:
    other_dir = tmp_path / "other"
    other_dir.mkdir()
    other = PlatformKey.load_or_create(other_dir)
    good = key.sign(manifest())
    _, _, encoded = good.split(":")
    cases = {
        "changed manifest": (manifest(digest="sha256:" + "f" * 64), good),
        "another key": (manifest(), other.sign(manifest())),
        "malformed": (manifest(), "not-a-signature"),
        "no signature part": (manifest(), f"ed25519:{key.key_id}:"),
        "another scheme": (manifest(), f"rsa:{key.key_id}:{encoded}"),
        "empty": (manifest(), ""),
        "missing": (manifest(), None),
        "not base64": (manifest(), f"ed25519:{key.key_id}:!!!not base64!!!"),
        "truncated": (manifest(), f"ed25519:{key.key_id}:{encoded[:20]}"),
    }
    messages: dict[str, str] = {}
    for case, (given, signature) in cases.items():
        with pytest.raises(SignatureError) as raised:
            key.verify(given, signature)
        messages[case] = str(raised.value)
    not_ed25519 = "the signature is not an ed25519 signature"
    assert messages == {
        "changed manifest": MISMATCH,
        "another key": (
            f"the release was signed by key {other.key_id}, not by this platform's key {key.key_id}"
        ),
        "malformed": not_ed25519,
        "no signature part": not_ed25519,
        "another scheme": not_ed25519,
        "empty": "the release is not signed",
        "missing": "the release is not signed",
        "not base64": MISMATCH,
        "truncated": MISMATCH,
    }
    assert len(set(messages.values())) == 4
