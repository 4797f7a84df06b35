"""Ray slot manager: the slots live in a named actor of the cluster.

Owns `SlotActor` (an async Ray actor hosting a `HostedSlots`, found or created
with `get_if_exists=True` under a fixed name and namespace) and `RaySlotManager`
(the client side, a `RemoteSlotManager` whose messages are actor calls). Every driver and worker of the cluster that uses the same
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

import concurrent.futures
import threading
from collections.abc import Mapping
from typing import Any

import ray

from fluvial.concurrency._base import Lease, Limit, LimitSource
from fluvial.concurrency._hosted import HostedSlots, RemoteSlotManager

__all__ = ["RaySlotManager", "SlotActor"]

DEFAULT_ACTOR_NAME = "fluvial-slots"
DEFAULT_NAMESPACE = "fluvial"


@ray.remote(num_cpus=0, concurrency_groups={"wait": 100_000, "control": 64})  # type: ignore[call-overload]
class SlotActor:
    """The cluster's slot table."""

    def __init__(self) -> None:
        self.slots = HostedSlots("fluvial-ray-slot-leases")

    @ray.method(concurrency_group="wait")
    async def acquire(self, **kw: Any) -> int | None:
        return await self.slots.acquire(**kw)

    @ray.method(concurrency_group="control")
    async def control(self, action: str, kw: dict[str, Any]) -> Any:
        return self.slots.control(action, kw)


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


class RaySlotManager(RemoteSlotManager):
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

    # -- messages -------------------------------------------------------------------

    def _ref(self, action: str, kw: dict[str, Any]) -> Any:
        if action == "acquire":
            return self.actor.acquire.remote(**kw)
        return self.actor.control.remote(action, kw)

    def _send(self, action: str, **kw: Any) -> concurrent.futures.Future[Any]:
        return self._ref(action, kw).future()

    def _post(self, action: str, **kw: Any) -> None:
        self._ref(action, kw)

    # -- every lease expires; live ones are renewed -------------------------------------

    def _lease_seconds(self, lease_seconds: float | None) -> float:
        return lease_seconds or self.default_lease_seconds

    def _held(self, lease: Lease) -> None:
        if not self.auto_renew:
            return
        with self._lock:
            self._live[lease.lease_id] = lease
            if self._renewer is None:
                self._renewer = threading.Thread(target=self._renew_loop, daemon=True,
                                                 name="fluvial-ray-lease-renewer")
                self._renewer.start()

    def _dropped(self, lease: Lease) -> None:
        with self._lock:
            self._live.pop(lease.lease_id, None)

    def _renew_loop(self) -> None:
        while not self._stop.wait(self.default_lease_seconds / 3):
            with self._lock:
                by_duration: dict[float, list[int]] = {}
                for rid, lease in self._live.items():
                    d = lease.lease_seconds or self.default_lease_seconds
                    by_duration.setdefault(d, []).append(rid)
            for d, rids in by_duration.items():
                self._post("renew", rids=rids, lease_seconds=d)

    def close(self) -> None:
        self._stop.set()
