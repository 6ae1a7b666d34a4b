"""What changed between two Service Spec versions, path by path.

Lists of named things (env, volumes, jobs) are matched by name, so adding a variable shows
as one addition rather than every later item changing place.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum
from typing import Any


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
    """Items keyed by name when every item has a distinct one (an empty list qualifies)."""
    if not all(isinstance(i, dict) and isinstance(i.get("name"), str) for i in items):
        return None
    names = [i["name"] for i in items]
    return dict(zip(names, items, strict=True)) if len(set(names)) == len(names) else None


def _child(where: str, key: str) -> str:
    return f"{where}.{key}" if where else key


def _walk(before: Any, after: Any, where: str, out: list[SpecChange]) -> None:
    if isinstance(before, dict) and isinstance(after, dict):
        for key in sorted(before.keys() | after.keys(), key=str):
            child = _child(where, str(key))
            if key not in after:
                out.append(SpecChange(child, ChangeKind.REMOVED, before[key], None))
            elif key not in before:
                out.append(SpecChange(child, ChangeKind.ADDED, None, after[key]))
            else:
                _walk(before[key], after[key], child, out)
        return
    if isinstance(before, list) and isinstance(after, list):
        old, new = _named(before), _named(after)
        if old is not None and new is not None:
            for name in [*old, *(n for n in new if n not in old)]:
                item = f"{where}[name={name}]"
                if name not in new:
                    out.append(SpecChange(item, ChangeKind.REMOVED, old[name], None))
                elif name not in old:
                    out.append(SpecChange(item, ChangeKind.ADDED, None, new[name]))
                else:
                    _walk(old[name], new[name], item, out)
            return
    if before != after:
        out.append(SpecChange(where, ChangeKind.CHANGED, before, after))


def diff_specs(before: dict[str, Any] | None, after: dict[str, Any]) -> list[SpecChange]:
    """Changes from ``before`` (None for a new service: everything is added) to ``after``."""
    out: list[SpecChange] = []
    _walk(before or {}, after, "", out)
    return out
