"""What changed between two Service Spec versions, path by path.

Lists of named things (env, volumes, jobs) are matched by name, so adding a variable shows
as one addition rather than every later item changing place.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum
from typing import Any

from store.errors import dotted_path as dotted


class ChangeKind(StrEnum):
    ADDED = "added"
    REMOVED = "removed"
    CHANGED = "changed"


@dataclass(frozen=True, slots=True)
class SpecChange:
    path: str
    kind: ChangeKind
    before: Any
    after: Any

    def render(self) -> str:
        if self.kind is ChangeKind.ADDED:
            return f"+ {self.path}: {self.after!r}"
        if self.kind is ChangeKind.REMOVED:
            return f"- {self.path}: {self.before!r}"
        return f"~ {self.path}: {self.before!r} → {self.after!r}"


def _named(items: list[Any]) -> dict[str, Any] | None:
    if not items or not all(isinstance(i, dict) and isinstance(i.get("name"), str) for i in items):
        return None
    names = [i["name"] for i in items]
    return dict(zip(names, items, strict=True)) if len(set(names)) == len(names) else None


def _walk(before: Any, after: Any, path: tuple[str | int, ...], out: list[SpecChange]) -> None:
    if isinstance(before, dict) and isinstance(after, dict):
        for key in sorted(before.keys() | after.keys(), key=str):
            child = (*path, key)
            if key not in after:
                out.append(SpecChange(dotted(child), ChangeKind.REMOVED, before[key], None))
            elif key not in before:
                out.append(SpecChange(dotted(child), ChangeKind.ADDED, None, after[key]))
            else:
                _walk(before[key], after[key], child, out)
        return
    if isinstance(before, list) and isinstance(after, list):
        old, new = _named(before), _named(after)
        if old is not None and new is not None:
            for name in [*old, *(n for n in new if n not in old)]:
                where = f"{dotted(path)}[name={name}]"
                if name not in new:
                    out.append(SpecChange(where, ChangeKind.REMOVED, old[name], None))
                elif name not in old:
                    out.append(SpecChange(where, ChangeKind.ADDED, None, new[name]))
                elif old[name] != new[name]:
                    _walk(old[name], new[name], (*path, f"name={name}"), out)
            return
        if before != after:
            out.append(SpecChange(dotted(path), ChangeKind.CHANGED, before, after))
        return
    if before != after:
        out.append(SpecChange(dotted(path), ChangeKind.CHANGED, before, after))


def diff_specs(before: dict[str, Any] | None, after: dict[str, Any]) -> list[SpecChange]:
    """Changes from ``before`` (None for a new service: everything is added) to ``after``."""
    out: list[SpecChange] = []
    _walk(before or {}, after, (), out)
    return out
