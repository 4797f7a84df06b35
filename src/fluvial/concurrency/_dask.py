"""Dask slot manager: the slots live on the cluster's scheduler.

Owns `SlotsSchedulerPlugin` (a `distributed.SchedulerPlugin` holding a
`SlotTable`, reached through the scheduler handler `fluvial_slots`) and
`DaskSlotManager` (the client side). Every client of the cluster shares the same
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
import logging
import time
import uuid
from collections import OrderedDict
from collections.abc import Callable, Mapping
from typing import Any

from distributed import Client, get_client, get_worker
from distributed.diagnostics.plugin import SchedulerPlugin

from fluvial.concurrency._base import (
    Lease,
    Limit,
    LimitSource,
    SlotManager,
    SlotRequest,
    SlotStatistics,
)
from fluvial.concurrency._table import SlotTable

__all__ = ["DaskSlotManager", "SlotsSchedulerPlugin"]

logger = logging.getLogger("fluvial.concurrency")

PLUGIN_NAME = "fluvial-slots"


class SlotsSchedulerPlugin(SchedulerPlugin):
    """The cluster's slot table, hosted by the scheduler (registered idempotently)."""

    name = PLUGIN_NAME
    idempotent = True

    async def start(self, scheduler: Any) -> None:
        self.table = SlotTable()
        self.loop = asyncio.get_running_loop()
        self.waiting: dict[str, tuple[int, asyncio.Future[int | None], tuple[str, ...]]] = {}
        self.cancelled: OrderedDict[str, None] = OrderedDict()  # cancels that beat their acquire
        self.timer: asyncio.TimerHandle | None = None
        self.timer_at = float("inf")
        scheduler.handlers["fluvial_slots"] = self.handle

    # -- the handler ----------------------------------------------------------------

    async def handle(self, action: str, **kw: Any) -> Any:
        return await getattr(self, "_" + action)(**kw)

    async def _acquire(self, token: str, limits: dict[str, int], occupy: int,
                       lease_seconds: float | None, owners: list[str], nowait: bool) -> int | None:
        if nowait:
            rid = self.table.try_acquire(limits, occupy, lease_seconds, tuple(owners))
            self._schedule_expiry()
            return rid
        if self.cancelled.pop(token, False) is None:
            return None
        fut: asyncio.Future[int | None] = self.loop.create_future()

        def granted(rid: int) -> None:
            self.waiting.pop(token, None)
            if fut.done():
                self.table.release(rid)
            else:
                fut.set_result(rid)

        rid, now = self.table.request(limits, occupy, granted, lease_seconds, tuple(owners))
        if now:
            self._schedule_expiry()
            return rid
        self.waiting[token] = (rid, fut, tuple(owners))
        got = await fut
        self._schedule_expiry()
        return got

    async def _cancel(self, token: str) -> bool:
        entry = self.waiting.pop(token, None)
        if entry is None:
            self.cancelled[token] = None
            while len(self.cancelled) > 10_000:
                self.cancelled.popitem(last=False)
            return False
        if not self.table.cancel(entry[0]):
            return False
        if not entry[1].done():
            entry[1].set_result(None)
        return True

    async def _release(self, rid: int) -> bool:
        return self.table.release(rid)

    async def _renew(self, rid: int, lease_seconds: float | None) -> bool:
        ok = self.table.renew(rid, lease_seconds)
        self._schedule_expiry()
        return ok

    async def _statistics(self, name: str) -> tuple[int | None, int, int, int]:
        return self.table.statistics(name)

    async def _reset(self, name: str) -> None:
        self.table.reset(name)

    async def _take_tokens(self, specs: dict[str, tuple[int, float]], occupy: int) -> float:
        return self.table.take_tokens(specs, occupy)

    async def _leases(self) -> dict[int, tuple[list[str], int]]:
        return {rid: (sorted(n), o) for rid, (n, o) in self.table.leases().items()}

    # -- expiry and dead holders -----------------------------------------------------------

    def _schedule_expiry(self) -> None:
        nxt = self.table.next_deadline()
        if nxt is None or nxt >= self.timer_at:
            return
        if self.timer is not None:
            self.timer.cancel()
        self.timer_at = nxt
        self.timer = self.loop.call_later(max(0.0, nxt - time.monotonic()), self._expire)

    def _expire(self) -> None:
        self.timer, self.timer_at = None, float("inf")
        self.table.expire()
        self._schedule_expiry()

    def _drop_owner(self, owner: str) -> None:
        for token, (_, _fut, owners) in list(self.waiting.items()):
            if owner in owners:
                self.loop.create_task(self._cancel(token))
        freed = self.table.release_owner(owner)
        if freed:
            logger.info("freed %d slot lease(s) held by %s", len(freed), owner)

    def remove_worker(self, scheduler: Any, worker: str, **kwargs: Any) -> None:
        self._drop_owner(worker)

    def remove_client(self, scheduler: Any, client: str) -> None:
        self._drop_owner(client)


_registered: set[str] = set()


class DaskSlotManager(SlotManager):
    """Slots shared by every client of a Dask cluster (default client: `get_client()`)."""

    def __init__(
        self,
        client: Client | None = None,
        limits: Mapping[str, int | Limit] | LimitSource | None = None,
    ) -> None:
        super().__init__(limits)
        self.client = client if client is not None else get_client()
        self._owners = [self.client.id]
        try:
            self._owners.append(get_worker().address)
        except ValueError:
            pass
        addr = self.client.scheduler.address
        if addr not in _registered:
            self.client.register_plugin(SlotsSchedulerPlugin(), name=PLUGIN_NAME)
            _registered.add(addr)

    def _call(self, action: str, **kw: Any) -> concurrent.futures.Future[Any]:
        async def rpc() -> Any:
            return await self.client.scheduler.fluvial_slots(action=action, **kw)

        loop = self.client.loop.asyncio_loop  # type: ignore[union-attr]
        return asyncio.run_coroutine_threadsafe(rpc(), loop)

    def _acquire_msg(self, token: str, specs: dict[str, Limit], occupy: int,
                     lease_seconds: float | None, nowait: bool) -> concurrent.futures.Future[Any]:
        return self._call("acquire", token=token, limits={n: s.limit for n, s in specs.items()},
                          occupy=occupy, lease_seconds=lease_seconds, owners=self._owners,
                          nowait=nowait)

    def _request(self, specs: dict[str, Limit], occupy: int,
                 on_granted: Callable[[Lease], None], lease_seconds: float | None) -> SlotRequest:
        names = tuple(specs)
        token = uuid.uuid4().hex
        req = SlotRequest(names, occupy, cancel=lambda: self._call("cancel", token=token))

        def done(f: concurrent.futures.Future[Any]) -> None:
            try:
                rid = f.result()
            except Exception:
                logger.exception("slot request for %s failed", list(names))
                return
            if rid is None:
                return
            lease = Lease(self, names, occupy, rid, lease_seconds)
            if req._mark_granted(lease):
                on_granted(lease)
            else:
                self._call("release", rid=rid)

        self._acquire_msg(token, specs, occupy, lease_seconds, False).add_done_callback(done)
        return req

    def _try_acquire(self, specs: dict[str, Limit], occupy: int,
                     lease_seconds: float | None) -> Lease | None:
        rid = self._acquire_msg(uuid.uuid4().hex, specs, occupy, lease_seconds, True).result()
        return None if rid is None else Lease(self, tuple(specs), occupy, rid, lease_seconds)

    def _release(self, lease: Lease) -> None:
        self._call("release", rid=lease.lease_id)

    def _renew(self, lease: Lease, lease_seconds: float | None) -> None:
        self._call("renew", rid=lease.lease_id, lease_seconds=lease_seconds)

    def _take_tokens(self, specs: dict[str, Limit], occupy: int) -> float:
        payload = {n: (s.limit, float(s.slot_decay_per_second or 0)) for n, s in specs.items()}
        return float(self._call("take_tokens", specs=payload, occupy=occupy).result())

    def statistics(self, name: str) -> SlotStatistics:
        limit, active, holders, waiters = self._call("statistics", name=name).result()
        if limit is None:
            lim = self.limit_of(name)
            limit = None if lim is None else lim.limit
        return SlotStatistics(name, limit, active, holders, waiters)

    def reset(self, name: str) -> None:
        self._call("reset", name=name).result()

    def live_leases(self) -> dict[int, tuple[frozenset[str], int]]:
        got = self._call("leases").result()
        return {int(k): (frozenset(n), o) for k, (n, o) in got.items()}
