"""The local data plane, as the server starts it: the platform key, the controllers.

``enclii serve`` passes ``start_local_plane`` to the server, which calls it once the store
and the event hub are up; the server itself knows nothing of controllers (the API never
calls a driver).
"""

from __future__ import annotations

from pathlib import Path

from reconcile.builds import BuildController
from reconcile.host import ControllerHost, Hosted
from reconcile.signing import PlatformKey
from store.blobs import BlobStore
from store.db import Store
from store.events import BUILDS_STREAM
from store.hub import EventHub


async def start_local_plane(store: Store, hub: EventHub, data_dir: Path) -> ControllerHost:
    key = PlatformKey.load_or_create(data_dir)
    builds = BuildController(store, data_dir, key, BlobStore(data_dir / "blobs"))
    host = ControllerHost(store, hub, [Hosted(builds, BUILDS_STREAM)])
    await host.start()
    return host
