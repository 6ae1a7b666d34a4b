"""The local data plane, as the server starts it: the platform key, the log writer, the
controllers and the log retention sweep.

``enclii serve`` passes ``start_local_plane`` to the server, which calls it once the store
and the event hub are up; the server itself knows nothing of controllers (the API never
calls a driver).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from pathlib import Path
from typing import Final

from reconcile.builds import BuildController
from reconcile.host import ControllerHost, Hosted
from reconcile.signing import PlatformKey
from store.blobs import BlobStore
from store.db import Store
from store.events import BUILDS_STREAM
from store.hub import EventHub
from store.logs import LogWriter, prune

log = logging.getLogger(__name__)

RETENTION_SWEEP_S: Final = 600.0


class LocalPlane:
    """What runs beside the API on this machine."""

    def __init__(self, store: Store, hub: EventHub, data_dir: Path) -> None:
        self.store = store
        self.key = PlatformKey.load_or_create(data_dir)
        self.logs = LogWriter(store)
        builds = BuildController(
            store, data_dir, self.key, BlobStore(data_dir / "blobs"), self.logs
        )
        self.host = ControllerHost(store, hub, [Hosted(builds, BUILDS_STREAM)])
        self._retention: asyncio.Task[None] | None = None

    async def start(self) -> None:
        self.logs.start()
        await self.host.start()
        self._retention = asyncio.get_running_loop().create_task(self._sweep())

    async def _sweep(self) -> None:
        """Logs past their age or size limit go, on the leading replica only."""
        while True:
            await asyncio.sleep(RETENTION_SWEEP_S)
            if not self.host.leading.is_set():
                continue
            try:
                async with self.store.write() as session:
                    removed = await prune(session)
                if removed:
                    log.info("log retention removed %d lines", removed)
            except Exception:
                log.exception("log retention failed; will try again")

    async def stop(self) -> None:
        if self._retention is not None:
            self._retention.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._retention
        await self.host.stop()
        await self.logs.close()


async def start_local_plane(store: Store, hub: EventHub, data_dir: Path) -> LocalPlane:
    plane = LocalPlane(store, hub, data_dir)
    await plane.start()
    return plane
