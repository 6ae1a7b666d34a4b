"""Per-request DataLoaders, so nested fields of many parents cost one statement each.

Resolvers of linked fields are plain functions returning the loader's future rather than
coroutines: graphql-core awaits a future far more cheaply than it drives a coroutine per
field, which matters when a page holds hundreds of objects.
"""

from __future__ import annotations

from collections.abc import Callable, Hashable
from typing import Any, TypeVar

from strawberry.dataloader import DataLoader

K = TypeVar("K")
V = TypeVar("V")


class Loaders:
    """Created per request: a DataLoader's cache must not outlive one."""

    def __init__(self) -> None:
        self._loaders: dict[Hashable, DataLoader[Any, Any]] = {}

    def get(self, key: Hashable, factory: Callable[[], DataLoader[K, V]]) -> DataLoader[K, V]:
        """The request's loader for ``key``, made by ``factory`` on first use."""
        loader = self._loaders.get(key)
        if loader is None:
            loader = self._loaders[key] = factory()
        return loader
