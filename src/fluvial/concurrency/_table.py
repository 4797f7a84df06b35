"""The slot table: FIFO, all-or-nothing slot accounting as a plain data structure.

Owns the one algorithm every hosted backend runs: the in-process manager in a
driver, the Dask scheduler plugin and the Ray actor each hold a `SlotTable`.

- Each name has a limit, an `active` count and a FIFO queue of waiters.
- A waiter for {a, b} is granted when it is at the head of *every* one of its
  queues and every name has room. Arrival order is global, so two waiters can
  never each be ahead of the other: {a, b} and {b, a} cannot deadlock, and a big
  `occupy` at a head is never overtaken (no starvation).
- Leases may carry a deadline (`lease_seconds`) and an owner key (a Dask worker
  or client); `expire(now)` and `release_owner(key)` free them.
- Token buckets (`take_tokens`) implement `rate_limit`: a name's decaying slots
  drain at `slot_decay_per_second`, as in Prefect. The arithmetic is
  `take_from_buckets`, which the host manager also runs over its bucket files.

Thread-safe; callbacks run after the table's lock is dropped.
"""

from __future__ import annotations

import heapq
import itertools
import math
import threading
import time
from collections import deque
from collections.abc import Callable, Hashable, Iterable, Sequence

__all__ = ["SlotTable", "take_from_buckets"]

Grant = Callable[[int], None]


def take_from_buckets(
    full_at: Sequence[float], specs: Sequence[tuple[int, float]], occupy: int, now: float
) -> tuple[float, list[float]]:
    """Take ``occupy`` decaying slots from every bucket now, or say how long to wait.

    Bucket ``i`` has ``specs[i] = (limit, rate)`` and drains empty at ``full_at[i]``
    (its slots decay at ``rate`` per second). Returns ``(0.0, new full_at)`` when the
    slots were taken, ``(seconds to wait, [])`` when not (``inf`` for a limit of 0).
    """
    wait = 0.0
    for t, (limit, rate) in zip(full_at, specs, strict=True):
        if limit <= 0:
            return math.inf, []
        over = max(0.0, (t - now) * rate) + occupy - limit
        if over > 1e-9:
            wait = max(wait, over / rate if rate > 0 else math.inf)
    if wait > 0.0:
        return wait, []
    return 0.0, [
        max(now, t) + occupy / (rate if rate > 0 else 1.0)
        for t, (_, rate) in zip(full_at, specs, strict=True)
    ]


class _Name:
    __slots__ = ("limit", "active", "holders", "queue", "bucket_full_at", "rate")

    def __init__(self, limit: int) -> None:
        self.limit = limit
        self.active = 0
        self.holders = 0
        self.queue: deque[_Waiter] = deque()
        self.bucket_full_at = 0.0
        self.rate = 0.0


class _Waiter:
    __slots__ = ("rid", "names", "occupy", "callback", "lease_seconds", "owners")

    def __init__(self, rid, names, occupy, callback, lease_seconds, owners) -> None:  # type: ignore[no-untyped-def]
        self.rid = rid
        self.names = names
        self.occupy = occupy
        self.callback = callback
        self.lease_seconds = lease_seconds
        self.owners = owners


class _Held:
    __slots__ = ("names", "occupy", "deadline", "owners")

    def __init__(self, names: set[str], occupy: int, deadline: float | None, owners: tuple) -> None:
        self.names = names
        self.occupy = occupy
        self.deadline = deadline
        self.owners = owners


class SlotTable:
    """Slot accounting for many names. Ids are ints, unique per table."""

    def __init__(self, clock: Callable[[], float] = time.monotonic) -> None:
        self._lock = threading.Lock()
        self._names: dict[str, _Name] = {}
        self._waiters: dict[int, _Waiter] = {}
        self._held: dict[int, _Held] = {}
        self._deadlines: list[tuple[float, int]] = []
        self._ids = itertools.count(1)
        self._clock = clock

    # -- acquisition ----------------------------------------------------------------

    def request(
        self,
        limits: dict[str, int],
        occupy: int,
        callback: Grant,
        lease_seconds: float | None = None,
        owners: tuple[Hashable, ...] = (),
    ) -> tuple[int, bool]:
        """Queue a waiter. Returns (id, granted_now); if granted now the callback is NOT called."""
        with self._lock:
            recheck = self._set_limits(limits)
            rid = next(self._ids)
            entries = [self._names[n] for n in limits]
            if all(not e.queue and e.active + occupy <= e.limit for e in entries):
                self._hold(rid, limits.keys(), entries, occupy, lease_seconds, owners)
                granted = []
                if recheck:
                    granted = self._pump(recheck)
                now = True
            else:
                w = _Waiter(rid, tuple(limits), occupy, callback, lease_seconds, owners)
                self._waiters[rid] = w
                for e in entries:
                    e.queue.append(w)
                granted = self._pump(recheck or limits.keys())
                now = False
        self._fire(granted)
        return rid, now

    def try_acquire(
        self,
        limits: dict[str, int],
        occupy: int,
        lease_seconds: float | None = None,
        owners: tuple[Hashable, ...] = (),
    ) -> int | None:
        with self._lock:
            recheck = self._set_limits(limits)
            entries = [self._names[n] for n in limits]
            rid: int | None = None
            if all(not e.queue and e.active + occupy <= e.limit for e in entries):
                rid = next(self._ids)
                self._hold(rid, limits.keys(), entries, occupy, lease_seconds, owners)
            granted = self._pump(recheck) if recheck else []
        self._fire(granted)
        return rid

    def cancel(self, rid: int) -> bool:
        """Withdraw a waiter; False if it was already granted (or unknown)."""
        with self._lock:
            w = self._waiters.pop(rid, None)
            if w is None:
                return False
            for n in w.names:
                self._names[n].queue.remove(w)
            granted = self._pump(w.names)
        self._fire(granted)
        return True

    # -- release --------------------------------------------------------------------

    def release(self, rid: int) -> bool:
        with self._lock:
            held = self._held.pop(rid, None)
            if held is None:
                return False
            for n in held.names:
                e = self._names[n]
                e.active -= held.occupy
                e.holders -= 1
            granted = self._pump(held.names)
        self._fire(granted)
        return True

    def renew(self, rid: int, lease_seconds: float | None) -> bool:
        with self._lock:
            held = self._held.get(rid)
            if held is None:
                return False
            if lease_seconds is not None:
                held.deadline = self._clock() + lease_seconds
                heapq.heappush(self._deadlines, (held.deadline, rid))
            return True

    def reset(self, name: str) -> None:
        """Free every slot of `name`; its holders keep their other names."""
        with self._lock:
            e = self._names.get(name)
            if e is None:
                return
            for rid, held in list(self._held.items()):
                if name in held.names:
                    held.names.discard(name)
                    if not held.names:
                        del self._held[rid]
            e.active = 0
            e.holders = 0
            e.bucket_full_at = 0.0
            granted = self._pump([name])
        self._fire(granted)

    def release_owner(self, owner: Hashable) -> list[int]:
        """Free every lease whose owners include `owner` (a dead worker, a gone client)."""
        rids = [rid for rid, h in list(self._held.items()) if owner in h.owners]
        for rid in rids:
            self.release(rid)
        for rid, w in list(self._waiters.items()):
            if owner in w.owners:
                self.cancel(rid)
        return rids

    def expire(self, now: float | None = None) -> tuple[list[int], float | None]:
        """Free leases past their deadline; returns (freed ids, next deadline or None)."""
        now = self._clock() if now is None else now
        due: list[int] = []
        with self._lock:
            while self._deadlines and self._deadlines[0][0] <= now:
                deadline, rid = heapq.heappop(self._deadlines)
                held = self._held.get(rid)
                if held is not None and held.deadline == deadline:
                    due.append(rid)
        for rid in due:
            self.release(rid)
        return due, self.next_deadline()

    def next_deadline(self) -> float | None:
        with self._lock:
            while self._deadlines:
                deadline, rid = self._deadlines[0]
                held = self._held.get(rid)
                if held is not None and held.deadline == deadline:
                    return deadline
                heapq.heappop(self._deadlines)
            return None

    # -- rate limits ------------------------------------------------------------------

    def take_tokens(self, specs: dict[str, tuple[int, float]], occupy: int) -> float:
        """Take `occupy` decaying slots on every name now (returns 0.0) or return the wait in seconds."""
        with self._lock:
            self._set_limits({n: lim for n, (lim, _) in specs.items()})
            entries = [self._names[n] for n in specs]
            wait, full_at = take_from_buckets(
                [e.bucket_full_at for e in entries], list(specs.values()), occupy, self._clock()
            )
            for e, (_, rate), t in zip(entries, specs.values(), full_at, strict=False):
                e.rate = rate
                e.bucket_full_at = t
            return wait

    # -- introspection -----------------------------------------------------------------

    def statistics(self, name: str) -> tuple[int | None, int, int, int]:
        """(limit, active, holders, waiters) — the limit is None for a name never seen."""
        with self._lock:
            e = self._names.get(name)
            if e is None:
                return None, 0, 0, 0
            decaying = max(0.0, (e.bucket_full_at - self._clock()) * e.rate)
            return e.limit, e.active + math.ceil(decaying - 1e-9), e.holders, len(e.queue)

    def leases(self) -> dict[int, tuple[frozenset[str], int]]:
        with self._lock:
            return {rid: (frozenset(h.names), h.occupy) for rid, h in self._held.items()}

    def set_limit(self, name: str, limit: int) -> None:
        with self._lock:
            granted = self._pump(self._set_limits({name: limit}))
        self._fire(granted)

    # -- internals (lock held) ------------------------------------------------------------

    def _set_limits(self, limits: dict[str, int]) -> list[str]:
        """Create or update names; returns names whose limit grew (their queues may move)."""
        grew = []
        for n, lim in limits.items():
            e = self._names.get(n)
            if e is None:
                self._names[n] = _Name(lim)
            elif e.limit != lim:
                if lim > e.limit:
                    grew.append(n)
                e.limit = lim
        return grew

    def _hold(self, rid: int, names: Iterable[str], entries: list[_Name], occupy: int,
              lease_seconds: float | None, owners: tuple) -> None:
        for e in entries:
            e.active += occupy
            e.holders += 1
        deadline = None
        if lease_seconds is not None:
            deadline = self._clock() + lease_seconds
            heapq.heappush(self._deadlines, (deadline, rid))
        self._held[rid] = _Held(set(names), occupy, deadline, owners)

    def _pump(self, names: Iterable[str]) -> list[tuple[Grant, int]]:
        granted: list[tuple[Grant, int]] = []
        work = list(names)
        while work:
            e = self._names.get(work.pop())
            while e is not None and e.queue:
                w = e.queue[0]
                entries = [self._names[n] for n in w.names]
                if not all(x.queue[0] is w and x.active + w.occupy <= x.limit for x in entries):
                    break
                for x in entries:
                    x.queue.popleft()
                del self._waiters[w.rid]
                self._hold(w.rid, w.names, entries, w.occupy, w.lease_seconds, w.owners)
                granted.append((w.callback, w.rid))
                work.extend(w.names)
        return granted

    @staticmethod
    def _fire(granted: list[tuple[Grant, int]]) -> None:
        for callback, rid in granted:
            callback(rid)
