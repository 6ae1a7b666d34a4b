"""The local data plane, as the server starts it: the platform key, the log writer, the
router process, the controllers and the retention sweep.

``enclii serve`` passes ``start_local_plane`` to the server, which calls it once the store
and the event hub are up; the server itself knows nothing of controllers (the API never
calls a driver).
"""

from __future__ import annotations

import asyncio
import logging
from pathlib import Path
from typing import Final

from reconcile.alerts import AlertController
from reconcile.builds import BuildController
from reconcile.deployments import DeploymentController
from reconcile.host import ControllerHost, Hosted
from reconcile.local.driver import LocalDriver
from reconcile.local.router_process import RouterError, RouterPortInUse, RouterProcess
from reconcile.signing import PlatformKey
from reconcile.slo import SloController
from store.aio import cancel_and_wait
from store.blobs import BlobStore
from store.db import Store
from store.errors import ConfigurationError
from store.events import ALERTS_STREAM, BUILDS_STREAM, DEPLOYMENTS_STREAM, SLO_STREAM
from store.hub import EventHub
from store.logs import LogWriter, prune
from store.metrics import prune_metrics

log = logging.getLogger(__name__)

RETENTION_SWEEP_S: Final = 600.0
DEFAULT_ROUTER_PORT: Final = 8080


class LocalPlane:
    """What runs beside the API on this machine."""

    def __init__(
        self,
        store: Store,
        hub: EventHub,
        data_dir: Path,
        *,
        router_port: int = DEFAULT_ROUTER_PORT,
        router_host: str = "127.0.0.1",
    ) -> None:
        self.store = store
        self.router = RouterProcess(
            data_dir, router_port, router_host, database_url=store.url_for_children()
        )
        self.key = PlatformKey.load_or_create(data_dir)
        self.logs = LogWriter(store)
        builds = BuildController(
            store, data_dir, self.key, BlobStore(data_dir / "blobs"), self.logs
        )
        self.driver = LocalDriver(
            data_dir, self.logs, on_change=self._replica_changed, router_url=self.router.url
        )
        deployments = DeploymentController(store, self.driver, self.key)
        self.alerts = AlertController(store)
        self.host = ControllerHost(
            store,
            hub,
            [
                Hosted(builds, BUILDS_STREAM),
                Hosted(deployments, DEPLOYMENTS_STREAM, workers=4),
                Hosted(self.alerts, ALERTS_STREAM),
                Hosted(SloController(store), SLO_STREAM),
            ],
        )
        self._retention: asyncio.Task[None] | None = None

    async def start(self) -> None:
        try:
            await self.router.ensure()
        except RouterPortInUse as exc:
            raise ConfigurationError(str(exc)) from None
        except RouterError as exc:
            raise ConfigurationError(f"the router did not start: {exc}") from None
        self.logs.start()
        await self.host.start()
        self._retention = asyncio.get_running_loop().create_task(self._sweep())

    def _replica_changed(self, service_id: str) -> None:
        # A replica became ready, failed or restarted: the rollout may move on at once.
        runner = self.host.runners.get(DeploymentController.name)
        if runner is not None:
            runner.enqueue(service_id)

    async def _sweep(self) -> None:
        """Logs past their age or size limit go, on the leading replica only."""
        while True:
            await asyncio.sleep(RETENTION_SWEEP_S)
            if not self.host.leading.is_set():
                continue
            try:
                async with self.store.write() as session:
                    removed = await prune(session)
                    windows = await prune_metrics(session)
                if removed or windows:
                    log.info(
                        "retention removed %d log lines and %d metric windows", removed, windows
                    )
            except Exception:
                log.exception("log retention failed; will try again")

    async def stop(self) -> None:
        if self._retention is not None:
            await cancel_and_wait(self._retention)
        await self.host.stop()
        await self.alerts.close()
        # Replicas (and the router) keep running and serving: a restarted control plane
        # adopts them. ``stop_workloads`` is for when they should go too.
        await self.driver.detach()
        await self.logs.close()

    async def stop_workloads(self) -> None:
        """Stop every replica and the router of this machine (tests; a machine retired)."""
        await self.driver.stop_everything()
        await self.router.stop()


async def start_local_plane(
    store: Store,
    hub: EventHub,
    data_dir: Path,
    *,
    router_port: int = DEFAULT_ROUTER_PORT,
    router_host: str = "127.0.0.1",
) -> LocalPlane:
    plane = LocalPlane(store, hub, data_dir, router_port=router_port, router_host=router_host)
    await plane.start()
    return plane
