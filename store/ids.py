"""Sortable, kind-prefixed identifiers (``svc_01J9…``).

An ID reads well in a terminal (the prefix names the kind), sorts by creation time (so it
doubles as a stable pagination key), and is unique without coordination between API
replicas. The body is a ULID: 48 bits of milliseconds and 80 bits of randomness in Crockford
base32. Within one millisecond the random part is incremented, so IDs minted by one process
are strictly increasing.
"""

from __future__ import annotations

import os
import threading
import time
from typing import Final

_ALPHABET: Final = "0123456789ABCDEFGHJKMNPQRSTVWXYZ"
_RANDOM_BITS: Final = 80
_BODY_LEN: Final = 26

# One place that says which prefix belongs to which kind; graph's node(id) dispatches on it.
PREFIXES: Final[dict[str, str]] = {
    "account": "acc",
    "project": "prj",
    "environment": "env",
    "service": "svc",
    "service_spec_version": "ssv",
    "release": "rel",
    "deployment": "dep",
    "runtime": "rtm",
    "secret": "sec",
    "secret_version": "scv",
    "volume": "vol",
    "job": "job",
    "job_run": "jrn",
    "route": "rte",
    "audit_event": "aud",
    "cost_sample": "cst",
    "membership": "mem",
    "api_token": "tok",
    "user": "usr",
    "alert": "alr",
}

_lock = threading.Lock()
_last_ms = 0
_last_rand = 0


def _encode(value: int) -> str:
    chars = []
    for _ in range(_BODY_LEN):
        chars.append(_ALPHABET[value & 31])
        value >>= 5
    return "".join(reversed(chars))


def _next_body() -> str:
    global _last_ms, _last_rand
    with _lock:
        now = time.time_ns() // 1_000_000
        if now <= _last_ms:
            # Same millisecond (or the clock stepped back): keep order by incrementing.
            now = _last_ms
            rand = _last_rand + 1
            if rand >= 1 << _RANDOM_BITS:
                now += 1
                rand = int.from_bytes(os.urandom(10), "big") >> 1
        else:
            rand = int.from_bytes(os.urandom(10), "big") >> 1  # headroom for increments
        _last_ms, _last_rand = now, rand
    return _encode((now << _RANDOM_BITS) | rand)


def new_id(kind: str) -> str:
    """A fresh ID for ``kind`` (a key of ``PREFIXES``)."""
    return f"{PREFIXES[kind]}_{_next_body()}"


def kind_of(identifier: str) -> str | None:
    """The kind an ID belongs to, or None when it is not one of ours."""
    prefix, sep, body = identifier.partition("_")
    if not sep or len(body) != _BODY_LEN or any(c not in _ALPHABET for c in body):
        return None
    for kind, known in PREFIXES.items():
        if known == prefix:
            return kind
    return None
