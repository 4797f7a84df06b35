"""Dask slot manager: the slots live on the cluster's scheduler.

Owns `SlotsSchedulerPlugin` (a `distributed.SchedulerPlugin` hosting a
`HostedSlots`, reached through the scheduler handler `fluvial_slots`) and
`DaskSlotManager` (the client side, a `RemoteSlotManager` whose messages travel
as scheduler RPCs). Every client of the cluster shares the same
slots. A lease is owned by the client that took it and, when taken inside a task,
by that worker too: the plugin's `remove_worker` / `remove_client` hooks free a
dead worker's or a gone client's slots as soon as the scheduler drops it.

Calls go over the client's event loop: `request` never blocks, `release` is
fire-and-forget; `on_granted` runs on the client's event-loop thread, so it must
not block (dispatching a task with `client.submit` is fine).
distributed is imported only in this module.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
from collections.abc import Mapping
from typing import Any

from distributed import Client, get_client, get_worker
from distributed.diagnostics.plugin import SchedulerPlugin

from fluvial.concurrency._base import Limit, LimitSource
from fluvial.concurrency._hosted import HostedSlots, RemoteSlotManager

__all__ = ["DaskSlotManager", "SlotsSchedulerPlugin"]

PLUGIN_NAME = "fluvial-slots"


class SlotsSchedulerPlugin(SchedulerPlugin):
    """The cluster's slot table, hosted by the scheduler (registered idempotently)."""

    name = PLUGIN_NAME
    idempotent = True

    async def start(self, scheduler: Any) -> None:
        self.slots = HostedSlots("fluvial-dask-slot-leases")
        scheduler.handlers["fluvial_slots"] = self.handle

    async def close(self) -> None:
        self.slots.close()

    async def handle(self, action: str, **kw: Any) -> Any:
        if action == "acquire":
            return await self.slots.acquire(**kw)
        return self.slots.control(action, kw)

    def remove_worker(self, scheduler: Any, worker: str, **kwargs: Any) -> None:
        self.slots.drop_owner(worker)

    def remove_client(self, scheduler: Any, client: str) -> None:
        self.slots.drop_owner(client)


_registered: set[str] = set()


class DaskSlotManager(RemoteSlotManager):
    """Slots shared by every client of a Dask cluster (default client: `get_client()`)."""

    def __init__(
        self,
        client: Client | None = None,
        limits: Mapping[str, int | Limit] | LimitSource | None = None,
    ) -> None:
        super().__init__(limits)
        self.client = client if client is not None else get_client()
        owners = [self.client.id]
        try:
            owners.append(get_worker().address)
        except ValueError:
            pass
        self._owners = tuple(owners)
        addr = self.client.scheduler.address
        if addr not in _registered:
            self.client.register_plugin(SlotsSchedulerPlugin(), name=PLUGIN_NAME)
            _registered.add(addr)

    def _send(self, action: str, **kw: Any) -> concurrent.futures.Future[Any]:
        async def rpc() -> Any:
            return await self.client.scheduler.fluvial_slots(action=action, **kw)

        loop = self.client.loop.asyncio_loop  # type: ignore[union-attr]
        return asyncio.run_coroutine_threadsafe(rpc(), loop)
