"""The routing table: what the control plane tells the router, through one file.

The deployment controller writes ``DATA_DIR/router/routes.json`` whole, atomically
(temporary file, fsync, rename), whenever a route, a weight or a ready replica changes; the
router re-reads it when the file changes. A file rather than a socket is what lets the
router keep serving — with the last table it read — while the control plane restarts.

A request is matched by host (exact, case-insensitive, port ignored) and then by the
longest path prefix that ends on a segment boundary (``/api`` matches ``/api`` and
``/api/v1``, not ``/apix``). A route's backends are releases with a weight in percent; a
backend with weight 0 is running but gets no traffic (warm for a rollback).
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Final

TABLE_FILE: Final = "routes.json"
FORMAT_VERSION: Final = 1


@dataclass(frozen=True, slots=True)
class Backend:
    release_id: str
    weight: int  # percent of the route's traffic
    upstreams: tuple[str, ...]  # "host:port" of ready replicas


@dataclass(frozen=True, slots=True)
class RouteEntry:
    host: str
    path: str
    service_id: str
    service: str  # "name.env.project", for people reading errors and metrics
    backends: tuple[Backend, ...]

    def live_backends(self) -> list[Backend]:
        """Backends that can take a request now: weighted and with a ready replica."""
        return [b for b in self.backends if b.weight > 0 and b.upstreams]


def path_matches(prefix: str, path: str) -> bool:
    if prefix == "/" or path == prefix:
        return True
    base = prefix.rstrip("/")
    return path.startswith(base) and (len(path) == len(base) or path[len(base)] == "/")


def normalise_host(host: str) -> str:
    """``API.Example.com:8080`` → ``api.example.com`` (IPv6 literals keep their brackets)."""
    host = host.strip().lower()
    if host.startswith("["):
        end = host.find("]")
        return host[: end + 1] if end != -1 else host
    return host.rsplit(":", 1)[0] if ":" in host else host


@dataclass(frozen=True)
class RoutingTable:
    generation: int = 0
    routes: tuple[RouteEntry, ...] = ()
    _by_host: dict[str, list[RouteEntry]] = field(default_factory=dict, compare=False, repr=False)

    def __post_init__(self) -> None:
        by_host: dict[str, list[RouteEntry]] = {}
        for route in self.routes:
            by_host.setdefault(normalise_host(route.host), []).append(route)
        for entries in by_host.values():
            entries.sort(key=lambda r: len(r.path.rstrip("/")), reverse=True)
        object.__setattr__(self, "_by_host", by_host)

    def match(self, host: str, path: str) -> RouteEntry | None:
        for route in self._by_host.get(normalise_host(host), ()):
            if path_matches(route.path, path):
                return route
        return None

    def to_json(self) -> dict[str, Any]:
        return {
            "version": FORMAT_VERSION,
            "generation": self.generation,
            "routes": [
                {
                    "host": r.host,
                    "path": r.path,
                    "service_id": r.service_id,
                    "service": r.service,
                    "backends": [
                        {"release_id": b.release_id, "weight": b.weight, "upstreams": b.upstreams}
                        for b in r.backends
                    ],
                }
                for r in self.routes
            ],
        }

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> RoutingTable:
        if data.get("version") != FORMAT_VERSION:
            raise ValueError(
                f"routing table format {data.get('version')!r} is not {FORMAT_VERSION}"
            )
        return cls(
            generation=int(data.get("generation", 0)),
            routes=tuple(
                RouteEntry(
                    host=r["host"],
                    path=r["path"],
                    service_id=r["service_id"],
                    service=r["service"],
                    backends=tuple(
                        Backend(b["release_id"], int(b["weight"]), tuple(b["upstreams"]))
                        for b in r["backends"]
                    ),
                )
                for r in data.get("routes", [])
            ),
        )


def write_table(directory: Path, table: RoutingTable) -> Path:
    """Replace the table atomically: a reader sees the old file or the new one, whole."""
    directory.mkdir(parents=True, exist_ok=True)
    target = directory / TABLE_FILE
    temporary = directory / f".{TABLE_FILE}.{os.getpid()}.tmp"
    with temporary.open("w") as handle:
        json.dump(table.to_json(), handle, separators=(",", ":"))
        handle.flush()
        os.fsync(handle.fileno())
    os.replace(temporary, target)
    return target


def read_table(directory: Path) -> RoutingTable:
    """The table in ``directory``; an empty one if none was written yet."""
    try:
        text = (directory / TABLE_FILE).read_text()
    except FileNotFoundError:
        return RoutingTable()
    return RoutingTable.from_json(json.loads(text))
