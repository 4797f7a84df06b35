"""One slot table hosted for a whole cluster, and the client side that talks to it.

Owns `HostedSlots` (a `SlotTable` plus what hosting it behind messages adds:
waiters keyed by the client's token, cancels that arrive before their acquire,
lease expiry on a timer thread, freeing the leases of an owner that is gone) and
`RemoteSlotManager` (the client side: a `SlotManager` whose primitives are
messages to a `HostedSlots`). The Dask scheduler plugin and the Ray actor are thin
hosts over `HostedSlots`; `DaskSlotManager` and `RaySlotManager` only say how a
message travels (`_send`).

Messages (keyword arguments, plain values):

    acquire(token, limits, occupy, lease_seconds, owners, nowait) -> lease id | None
    cancel(token) -> bool        release(rid) -> bool
    renew(rids, lease_seconds) -> int (how many were live)
    statistics(name)   reset(name)   take_tokens(specs, occupy) -> wait   leases()
    set_limit(name, limit)   (a limit changed in a driver: waiters move if it grew)

``acquire`` is the only one that may wait (until granted or cancelled); hosts run
it apart from the others, which answer at once.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import logging
import uuid
from abc import abstractmethod
from collections import OrderedDict
from collections.abc import Callable, Hashable, Sequence
from typing import Any

from fluvial.concurrency._base import (
    MAX_LIMIT,
    Lease,
    Limit,
    SlotManager,
    SlotRequest,
    SlotStatistics,
)
from fluvial.concurrency._inprocess import DeadlineTimer
from fluvial.concurrency._table import SlotTable

__all__ = ["CONTROL_ACTIONS", "HostedSlots", "RemoteSlotManager"]

logger = logging.getLogger("fluvial.concurrency")

CONTROL_ACTIONS = frozenset(
    {"cancel", "release", "renew", "statistics", "reset", "take_tokens", "leases", "set_limit"}
)
MAX_EARLY_CANCELS = 10_000


class HostedSlots:
    """The cluster's slot table behind messages. `acquire` is a coroutine; the rest are not.

    Grants may happen on any thread (a release on one event loop, the expiry
    timer on its own thread): a waiting `acquire` is always settled on its own loop.
    """

    def __init__(self, timer_name: str) -> None:
        self.table = SlotTable()
        self.waiting: dict[str, tuple[int, asyncio.Future[int | None], tuple[Hashable, ...]]] = {}
        self.cancelled: OrderedDict[str, None] = OrderedDict()  # cancels that beat their acquire
        self.timer = DeadlineTimer(lambda: self.table.expire()[1], timer_name)

    def _schedule_expiry(self) -> None:
        nxt = self.table.next_deadline()
        if nxt is not None:
            self.timer.schedule(nxt)

    async def acquire(self, token: str, limits: dict[str, int], occupy: int,
                      lease_seconds: float | None, owners: Sequence[Hashable] = (),
                      nowait: bool = False) -> int | None:
        owners = tuple(owners)
        if nowait:
            rid: int | None = self.table.try_acquire(limits, occupy, lease_seconds, owners)
            self._schedule_expiry()
            return rid
        if self.cancelled.pop(token, False) is None:
            return None  # cancelled before it arrived
        loop = asyncio.get_running_loop()
        fut: asyncio.Future[int | None] = loop.create_future()

        def settle(rid: int) -> None:
            if fut.done():  # cancelled meanwhile: nobody will hold it
                self.table.release(rid)
            else:
                fut.set_result(rid)

        def granted(rid: int) -> None:
            self.waiting.pop(token, None)
            loop.call_soon_threadsafe(settle, rid)

        rid, now = self.table.request(limits, occupy, granted, lease_seconds, owners)
        if now:
            self._schedule_expiry()
            return rid
        self.waiting[token] = (rid, fut, owners)
        got = await fut
        self.waiting.pop(token, None)
        self._schedule_expiry()
        return got

    def cancel(self, token: str) -> bool:
        entry = self.waiting.pop(token, None)
        if entry is None:
            self.cancelled[token] = None
            while len(self.cancelled) > MAX_EARLY_CANCELS:
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

    def release(self, rid: int) -> bool:
        return self.table.release(rid)

    def renew(self, rids: Sequence[int], lease_seconds: float | None) -> int:
        n = sum(self.table.renew(rid, lease_seconds) for rid in rids)
        self._schedule_expiry()
        return n

    def statistics(self, name: str) -> tuple[int | None, int, int, int]:
        return self.table.statistics(name)

    def reset(self, name: str) -> None:
        self.table.reset(name)

    def take_tokens(self, specs: dict[str, tuple[int, float]], occupy: int) -> float:
        return self.table.take_tokens(specs, occupy)

    def set_limit(self, name: str, limit: int) -> None:
        self.table.set_limit(name, limit)

    def leases(self) -> dict[int, tuple[list[str], int]]:
        return {rid: (sorted(n), o) for rid, (n, o) in self.table.leases().items()}

    def control(self, action: str, kw: dict[str, Any]) -> Any:
        """Run one of :data:`CONTROL_ACTIONS` (a host's single entry point for them)."""
        if action not in CONTROL_ACTIONS:
            raise ValueError(f"unknown slot action {action!r}")
        return getattr(self, action)(**kw)

    def drop_owner(self, owner: Hashable) -> list[int]:
        """The owner is gone: withdraw its waiters and free its leases; the freed ids."""
        for token, (_, _, owners) in list(self.waiting.items()):
            if owner in owners:
                self.cancel(token)
        freed = self.table.release_owner(owner)
        if freed:
            logger.info("freed %d slot lease(s) held by %s", len(freed), owner)
        return freed

    def close(self) -> None:
        self.timer.close()


class RemoteSlotManager(SlotManager):
    """A `SlotManager` over a `HostedSlots` elsewhere: subclasses implement `_send`."""

    _owners: tuple[Hashable, ...] = ()

    @abstractmethod
    def _send(self, action: str, **kw: Any) -> concurrent.futures.Future[Any]:
        """Deliver one message; its answer arrives in the future."""

    def _post(self, action: str, **kw: Any) -> None:
        """Deliver one message whose answer nobody reads."""
        self._send(action, **kw)

    def _limit_changed(self, tag: str) -> None:
        """A stored limit changed in this process: tell the host, so runs it queues for
        ``tag`` (a cluster-gated map) move if the limit grew (a deleted limit lets them
        all go: the tag has no limit any more)."""
        limit = self.limit_of(tag)
        try:
            self._post("set_limit", name=tag,
                       limit=MAX_LIMIT if limit is None else limit.limit)
        except Exception:  # noqa: BLE001 - the cluster is gone: nothing waits there
            logger.debug("could not tell the slot host that %r changed", tag, exc_info=True)

    def _lease_seconds(self, lease_seconds: float | None) -> float | None:
        """The duration a lease gets (a subclass may give every lease one)."""
        return lease_seconds

    def _held(self, lease: Lease) -> None:
        """Hook: `lease` was granted to this manager."""

    def _dropped(self, lease: Lease) -> None:
        """Hook: `lease` is being released."""

    def _acquire(self, token: str, specs: dict[str, Limit], occupy: int,
                 lease_seconds: float | None, nowait: bool) -> concurrent.futures.Future[Any]:
        return self._send("acquire", token=token, limits={n: s.limit for n, s in specs.items()},
                          occupy=occupy, lease_seconds=lease_seconds,
                          owners=list(self._owners), nowait=nowait)

    def _request(self, specs: dict[str, Limit], occupy: int,
                 on_granted: Callable[[Lease], None], lease_seconds: float | None) -> SlotRequest:
        names = tuple(specs)
        seconds = self._lease_seconds(lease_seconds)
        token = uuid.uuid4().hex
        req = SlotRequest(names, occupy, cancel=lambda: self._post("cancel", token=token))

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
                self._held(lease)
                on_granted(lease)
            else:  # cancelled on this side after the host granted it
                self._post("release", rid=rid)

        self._acquire(token, specs, occupy, seconds, False).add_done_callback(done)
        return req

    def _try_acquire(self, specs: dict[str, Limit], occupy: int,
                     lease_seconds: float | None) -> Lease | None:
        seconds = self._lease_seconds(lease_seconds)
        rid = self._acquire(uuid.uuid4().hex, specs, occupy, seconds, True).result()
        if rid is None:
            return None
        lease = Lease(self, tuple(specs), occupy, rid, seconds)
        self._held(lease)
        return lease

    def _release(self, lease: Lease) -> None:
        self._dropped(lease)
        self._post("release", rid=lease.lease_id)

    def _renew(self, lease: Lease, lease_seconds: float | None) -> None:
        self._post("renew", rids=[lease.lease_id], lease_seconds=self._lease_seconds(lease_seconds))

    def _take_tokens(self, specs: dict[str, Limit], occupy: int) -> float:
        payload = {n: (s.limit, float(s.slot_decay_per_second or 0)) for n, s in specs.items()}
        return float(self._send("take_tokens", specs=payload, occupy=occupy).result())

    def statistics(self, name: str) -> SlotStatistics:
        limit, active, holders, waiters = self._send("statistics", name=name).result()
        if limit is None:
            lim = self.limit_of(name)
            limit = None if lim is None else lim.limit
        return SlotStatistics(name, limit, active, holders, waiters)

    def reset(self, name: str) -> None:
        self._send("reset", name=name).result()

    def live_leases(self) -> dict[int, tuple[frozenset[str], int]]:
        """Every lease the host holds: id -> (names, occupy). For tests and `inspect`."""
        got = self._send("leases").result()
        return {int(k): (frozenset(n), o) for k, (n, o) in got.items()}
