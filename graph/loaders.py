"""Per-request DataLoaders, so nested fields of many parents cost one statement each."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, TypeVar

from strawberry.dataloader import DataLoader

from resolvers import loaders as batch
from resolvers.pagination import ListSpec, Page, PageRequest
from store.db import Store
from store.models import Base, Release, Runtime, ServiceSpecVersion

T = TypeVar("T", bound=Base)


class Loaders:
    """Created per request (DataLoader caches must not outlive one)."""

    def __init__(self, store: Store) -> None:
        self._store = store
        self._pages: dict[str, DataLoader[PageRequest, Page[Any]]] = {}
        self._counts: dict[str, DataLoader[str, int]] = {}
        self._by_id: dict[type[Base], DataLoader[str, Any]] = {}
        self.latest_release: DataLoader[str, Release | None] = DataLoader(
            lambda ids: batch.latest_releases(store, ids)
        )
        self.current_runtime: DataLoader[str, Runtime | None] = DataLoader(
            lambda ids: batch.current_runtimes(store, ids)
        )
        self.current_spec: DataLoader[str, ServiceSpecVersion | None] = DataLoader(
            lambda ids: batch.current_specs(store, ids)
        )

    def page(self, spec: ListSpec[T]) -> DataLoader[PageRequest, Page[T]]:
        loader = self._pages.get(spec.name)
        if loader is None:

            async def load(requests: Sequence[PageRequest]) -> list[Page[T]]:
                return await batch.pages(self._store, spec, requests)

            loader = self._pages[spec.name] = DataLoader(load)
        return loader

    def count(self, spec: ListSpec[T]) -> DataLoader[str, int]:
        loader = self._counts.get(spec.name)
        if loader is None:

            async def load(parent_ids: Sequence[str]) -> list[int]:
                return await batch.counts(self._store, spec, parent_ids)

            loader = self._counts[spec.name] = DataLoader(load)
        return loader

    def by_id(self, model: type[T]) -> DataLoader[str, T | None]:
        loader = self._by_id.get(model)
        if loader is None:

            async def load(ids: Sequence[str]) -> list[T | None]:
                return await batch.rows_by_id(self._store, model, ids)

            loader = self._by_id[model] = DataLoader(load)
        return loader
