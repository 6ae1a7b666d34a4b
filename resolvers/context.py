"""Who is asking, on what store: the one argument every resolver function takes."""

from __future__ import annotations

from dataclasses import dataclass, field

from store.db import Store
from store.hub import EventHub


@dataclass(frozen=True, slots=True)
class Actor:
    """The identity a request acts as."""

    id: str
    display: str
    account_id: str


@dataclass(slots=True)
class Context:
    store: Store
    hub: EventHub
    actor: Actor
    request_id: str | None = None
    source_address: str | None = None
    # Per-request scratch space for the GraphQL layer (its DataLoaders live here).
    extras: dict[str, object] = field(default_factory=dict)
