"""Ray slot manager: the slots live in a named actor of the cluster.

Owns `SlotActor` (an async Ray actor holding a `SlotTable`, found or created
with `get_if_exists=True` under a fixed name and namespace) and `RaySlotManager`
(the client side). Every driver and worker of the cluster that uses the same
actor name shares the slots.

Leases expire: every lease has a duration (`lease_seconds`, default 30 s) and
the manager that took it renews its live leases from a background thread every
third of that. A holder that dies stops renewing, and the actor frees its slots
when the lease runs out. Waiting `acquire` calls run in the actor's `wait`
concurrency group; `release`, `renew`, `cancel` and the read-only calls run in the
`control` group, on their own event loop, so they are never starved by waiters.
ray is imported only in this module.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import logging
import threading
import uuid
from collections import OrderedDict
from collections.abc import Callable, Mapping
from typing import Any

import ray

from fluvial.concurrency._base import (
    Lease,
    Limit,
    LimitSource,
    SlotManager,
    SlotRequest,
    SlotStatistics,
)
from fluvial.concurrency._inprocess import DeadlineTimer
from fluvial.concurrency._table import SlotTable

__all__ = ["RaySlotManager", "SlotActor"]

logger = logging.getLogger("fluvial.concurrency")

DEFAULT_ACTOR_NAME = "fluvial-slots"
DEFAULT_NAMESPACE = "fluvial"


@ray.remote(num_cpus=0, concurrency_groups={"wait": 100_000, "control": 64})  # type: ignore[call-overload]
class SlotActor:
    """The cluster's slot table."""

    def __init__(self) -> None:
        self.table = SlotTable()
        self.waiting: dict[str, tuple[int, asyncio.Future[int | None]]] = {}
        self.cancelled: OrderedDict[str, None] = OrderedDict()  # cancels that beat their acquire
        self.timer = DeadlineTimer(self._expire, "fluvial-ray-slot-leases")

    def _expire(self) -> float | None:
        return self.table.expire()[1]

    def _schedule(self) -> None:
        nxt = self.table.next_deadline()
        if nxt is not None:
            self.timer.schedule(nxt)

    @ray.method(concurrency_group="wait")
    async def acquire(self, token: str, limits: dict[str, int], occupy: int,
                      lease_seconds: float | None, nowait: bool) -> int | None:
        if nowait:
            rid = self.table.try_acquire(limits, occupy, lease_seconds)
            self._schedule()
            return rid
        if self.cancelled.pop(token, False) is None:
            return None
        loop = asyncio.get_running_loop()
        fut: asyncio.Future[int | None] = loop.create_future()

        def settle(rid: int) -> None:
            if fut.done():
                self.table.release(rid)
            else:
                fut.set_result(rid)

        def granted(rid: int) -> None:  # may run on the control loop or the timer thread
            self.waiting.pop(token, None)
            loop.call_soon_threadsafe(settle, rid)

        rid, now = self.table.request(limits, occupy, granted, lease_seconds)
        if now:
            self._schedule()
            return rid
        self.waiting[token] = (rid, fut)
        got = await fut
        self._schedule()
        return got

    @ray.method(concurrency_group="control")
    async def cancel(self, token: str) -> bool:
        entry = self.waiting.pop(token, None)
        if entry is None:
            self.cancelled[token] = None
            while len(self.cancelled) > 10_000:
                self.cancelled.popitem(last=False)
            return False
        if not self.table.cancel(entry[0]):
            return False
        fut = entry[1]

        def settle() -> None:
            if not fut.done():
                fut.set_result(None)

        fut.get_loop().call_soon_threadsafe(settle)
        return True

    @ray.method(concurrency_group="control")
    async def release(self, rid: int) -> bool:
        return self.table.release(rid)

    @ray.method(concurrency_group="control")
    async def renew(self, rids: list[int], lease_seconds: float) -> int:
        n = sum(self.table.renew(rid, lease_seconds) for rid in rids)
        self._schedule()
        return n

    @ray.method(concurrency_group="control")
    async def statistics(self, name: str) -> tuple[int | None, int, int, int]:
        return self.table.statistics(name)

    @ray.method(concurrency_group="control")
    async def reset(self, name: str) -> None:
        self.table.reset(name)

    @ray.method(concurrency_group="control")
    async def take_tokens(self, specs: dict[str, tuple[int, float]], occupy: int) -> float:
        return self.table.take_tokens(specs, occupy)

    @ray.method(concurrency_group="control")
    async def leases(self) -> dict[int, tuple[list[str], int]]:
        return {rid: (sorted(n), o) for rid, (n, o) in self.table.leases().items()}


_actors: dict[tuple[str, str, str], Any] = {}
_actors_lock = threading.Lock()


def _actor(name: str, namespace: str, detached: bool) -> Any:
    """The named actor's handle, kept for the life of this process's Ray job.

    A non-detached actor dies with its last handle in the creating process, so
    the handle is cached here rather than owned by one manager.
    """
    key = (ray.get_runtime_context().get_job_id(), name, namespace)
    with _actors_lock:
        handle = _actors.get(key)
        if handle is None:
            opts: dict[str, Any] = {"name": name, "namespace": namespace, "get_if_exists": True}
            if detached:
                opts["lifetime"] = "detached"
            handle = _actors[key] = SlotActor.options(**opts).remote()  # type: ignore[attr-defined]
        return handle


class RaySlotManager(SlotManager):
    """Slots shared through the named actor `name` in `namespace` (created on first use)."""

    def __init__(
        self,
        limits: Mapping[str, int | Limit] | LimitSource | None = None,
        *,
        name: str = DEFAULT_ACTOR_NAME,
        namespace: str = DEFAULT_NAMESPACE,
        lease_seconds: float = 30.0,
        detached: bool = False,
        auto_renew: bool = True,
    ) -> None:
        super().__init__(limits)
        if not lease_seconds > 0:
            raise ValueError(f"lease_seconds must be greater than 0, got {lease_seconds!r}")
        self.actor = _actor(name, namespace, detached)
        self.default_lease_seconds = lease_seconds
        self.auto_renew = auto_renew
        self._live: dict[int, Lease] = {}
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._renewer: threading.Thread | None = None

    # -- renewal --------------------------------------------------------------------

    def _track(self, lease: Lease) -> None:
        if not self.auto_renew:
            return
        with self._lock:
            self._live[lease.lease_id] = lease
            if self._renewer is None:
                self._renewer = threading.Thread(target=self._renew_loop, daemon=True,
                                                 name="fluvial-ray-lease-renewer")
                self._renewer.start()

    def _renew_loop(self) -> None:
        while not self._stop.wait(self.default_lease_seconds / 3):
            with self._lock:
                by_duration: dict[float, list[int]] = {}
                for rid, lease in self._live.items():
                    d = lease.lease_seconds or self.default_lease_seconds
                    by_duration.setdefault(d, []).append(rid)
            for d, rids in by_duration.items():
                self.actor.renew.remote(rids, d)

    # -- backend primitives ---------------------------------------------------------------

    def _lease_for(self, specs: dict[str, Limit], occupy: int, rid: int,
                   lease_seconds: float) -> Lease:
        lease = Lease(self, tuple(specs), occupy, rid, lease_seconds)
        self._track(lease)
        return lease

    def _request(self, specs: dict[str, Limit], occupy: int,
                 on_granted: Callable[[Lease], None], lease_seconds: float | None) -> SlotRequest:
        names = tuple(specs)
        seconds = lease_seconds or self.default_lease_seconds
        token = uuid.uuid4().hex
        req = SlotRequest(names, occupy, cancel=lambda: self.actor.cancel.remote(token))

        def done(f: concurrent.futures.Future[Any]) -> None:
            try:
                rid = f.result()
            except Exception:
                logger.exception("slot request for %s failed", list(names))
                return
            if rid is None:
                return
            lease = Lease(self, names, occupy, rid, seconds)
            if req._mark_granted(lease):
                self._track(lease)
                on_granted(lease)
            else:
                self.actor.release.remote(rid)

        limits = {n: s.limit for n, s in specs.items()}
        self.actor.acquire.remote(token, limits, occupy, seconds, False).future().add_done_callback(done)
        return req

    def _try_acquire(self, specs: dict[str, Limit], occupy: int,
                     lease_seconds: float | None) -> Lease | None:
        seconds = lease_seconds or self.default_lease_seconds
        limits = {n: s.limit for n, s in specs.items()}
        rid = ray.get(self.actor.acquire.remote(uuid.uuid4().hex, limits, occupy, seconds, True))
        return None if rid is None else self._lease_for(specs, occupy, rid, seconds)

    def _release(self, lease: Lease) -> None:
        with self._lock:
            self._live.pop(lease.lease_id, None)
        self.actor.release.remote(lease.lease_id)

    def _renew(self, lease: Lease, lease_seconds: float | None) -> None:
        self.actor.renew.remote([lease.lease_id], lease_seconds or self.default_lease_seconds)

    def _take_tokens(self, specs: dict[str, Limit], occupy: int) -> float:
        payload = {n: (s.limit, float(s.slot_decay_per_second or 0)) for n, s in specs.items()}
        return float(ray.get(self.actor.take_tokens.remote(payload, occupy)))

    def statistics(self, name: str) -> SlotStatistics:
        limit, active, holders, waiters = ray.get(self.actor.statistics.remote(name))
        if limit is None:
            lim = self.limit_of(name)
            limit = None if lim is None else lim.limit
        return SlotStatistics(name, limit, active, holders, waiters)

    def reset(self, name: str) -> None:
        ray.get(self.actor.reset.remote(name))

    def live_leases(self) -> dict[int, tuple[frozenset[str], int]]:
        got = ray.get(self.actor.leases.remote())
        return {int(k): (frozenset(n), o) for k, (n, o) in got.items()}

    def close(self) -> None:
        self._stop.set()
