"""In-process slot manager: threads of one process, and the driver of any runner.

Owns `InProcessSlotManager` (a `SlotTable` behind the `SlotManager` interface)
and `DeadlineTimer`, the one thread that expires leases with `lease_seconds`
(started on first use; it sleeps until the next deadline, never polls).
Waiters are woken by the release that frees their slots, on the releasing thread.
"""

from __future__ import annotations

import sys
import threading
import time
from collections.abc import Callable, Mapping, Sequence

from fluvial.concurrency._base import (
    Lease,
    Limit,
    LimitSource,
    SlotManager,
    SlotRequest,
    SlotStatistics,
)
from fluvial.concurrency._table import SlotTable

__all__ = ["DeadlineTimer", "InProcessSlotManager"]


class DeadlineTimer:
    """Calls `expire()` at each deadline it is told about, from one daemon thread."""

    def __init__(self, expire: Callable[[], float | None], name: str) -> None:
        self._expire = expire
        self._name = name
        self._cond = threading.Condition()
        self._next: float | None = None
        self._thread: threading.Thread | None = None
        self._closed = False

    def schedule(self, deadline: float) -> None:
        with self._cond:
            if self._next is not None and self._next <= deadline:
                return
            self._next = deadline
            if self._thread is None:
                self._thread = threading.Thread(target=self._run, name=self._name, daemon=True)
                self._thread.start()
            self._cond.notify()

    def close(self) -> None:
        with self._cond:
            self._closed = True
            self._cond.notify()

    def _run(self) -> None:
        while True:
            with self._cond:
                while not self._closed and (self._next is None or self._next > time.monotonic()):
                    delay = None if self._next is None else self._next - time.monotonic()
                    self._cond.wait(delay)
                if self._closed:
                    return
                self._next = None
            nxt = self._expire()
            if nxt is not None:
                self.schedule(nxt)


class InProcessSlotManager(SlotManager):
    """Slots shared by the threads of this process. Acquire+release costs a few µs."""

    def __init__(self, limits: Mapping[str, int | Limit] | LimitSource | None = None) -> None:
        super().__init__(limits)
        self._table = SlotTable()
        self._timer = DeadlineTimer(self._expire, "fluvial-slot-leases")

    def _expire(self) -> float | None:
        return self._table.expire()[1]

    def _limit_changed(self, tag: str) -> None:
        if self._table.statistics(tag)[0] is None:
            return
        lim = self.limit_of(tag)
        self._table.set_limit(tag, sys.maxsize if lim is None else lim.limit)

    def _after_hold(self, lease_seconds: float | None) -> None:
        if lease_seconds is not None:
            nxt = self._table.next_deadline()
            if nxt is not None:
                self._timer.schedule(nxt)

    def acquire(
        self,
        names: str | Sequence[str],
        occupy: int = 1,
        timeout: float | None = None,
        lease_seconds: float | None = None,
    ) -> Lease:
        lease = self.try_acquire(names, occupy, lease_seconds)
        if lease is not None:
            return lease
        return super().acquire(names, occupy, timeout, lease_seconds)

    def _request(
        self,
        specs: dict[str, Limit],
        occupy: int,
        on_granted: Callable[[Lease], None],
        lease_seconds: float | None,
    ) -> SlotRequest:
        names = tuple(specs)
        rid_box: list[int] = []
        table = self._table

        def cancel() -> None:
            table.cancel(rid_box[0])

        req = SlotRequest(names, occupy, cancel=cancel)

        def granted(rid: int) -> None:
            lease = Lease(self, names, occupy, rid, lease_seconds)
            if req._mark_granted(lease):
                self._after_hold(lease_seconds)
                on_granted(lease)
            else:
                table.release(rid)

        rid, now = table.request(
            {n: s.limit for n, s in specs.items()}, occupy, granted, lease_seconds
        )
        rid_box.append(rid)
        if now:
            granted(rid)
        return req

    def _try_acquire(
        self, specs: dict[str, Limit], occupy: int, lease_seconds: float | None
    ) -> Lease | None:
        rid = self._table.try_acquire({n: s.limit for n, s in specs.items()}, occupy, lease_seconds)
        if rid is None:
            return None
        self._after_hold(lease_seconds)
        return Lease(self, tuple(specs), occupy, rid, lease_seconds)

    def _release(self, lease: Lease) -> None:
        self._table.release(lease.lease_id)

    def _renew(self, lease: Lease, lease_seconds: float | None) -> None:
        if self._table.renew(lease.lease_id, lease_seconds):
            self._after_hold(lease_seconds)

    def _take_tokens(self, specs: dict[str, Limit], occupy: int) -> float:
        return self._table.take_tokens(
            {n: (s.limit, float(s.slot_decay_per_second or 0)) for n, s in specs.items()}, occupy
        )

    def statistics(self, name: str) -> SlotStatistics:
        limit, active, holders, waiters = self._table.statistics(name)
        if limit is None:
            lim = self.limit_of(name)
            limit = None if lim is None else lim.limit
        return SlotStatistics(name, limit, active, holders, waiters)

    def reset(self, name: str) -> None:
        self._table.reset(name)

    def live_leases(self) -> dict[int, tuple[frozenset[str], int]]:
        """Every held lease: id -> (names, occupy). For tests and `inspect`."""
        return self._table.leases()

    def close(self) -> None:
        self._timer.close()
