"""Status conditions, Kubernetes-style: ``{type, status, reason, message, observedGeneration,
lastTransitionTime}``, one per type. The transition time changes only when the status does,
so "since when" stays true however often a controller writes the same condition."""

from __future__ import annotations

from datetime import datetime
from typing import Any, Literal

Status = Literal["True", "False", "Unknown"]


def set_condition(
    conditions: list[dict[str, Any]],
    type: str,
    status: Status,
    reason: str,
    message: str,
    *,
    now: datetime,
    generation: int = 1,
) -> list[dict[str, Any]]:
    """A new list with ``type`` set; the others unchanged, in their order."""
    previous = next((c for c in conditions if c.get("type") == type), None)
    transition = (
        previous["lastTransitionTime"]
        if previous is not None
        and previous.get("status") == status
        and previous.get("lastTransitionTime")
        else now.isoformat()
    )
    condition = {
        "type": type,
        "status": status,
        "reason": reason,
        "message": message,
        "observedGeneration": generation,
        "lastTransitionTime": transition,
    }
    if previous is None:
        return [*conditions, condition]
    return [condition if c is previous else c for c in conditions]


def condition(conditions: list[dict[str, Any]], type: str) -> dict[str, Any] | None:
    return next((c for c in conditions if c.get("type") == type), None)


def is_true(conditions: list[dict[str, Any]], type: str) -> bool:
    found = condition(conditions, type)
    return found is not None and found.get("status") == "True"
