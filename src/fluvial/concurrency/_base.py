"""The slot-manager interface shared by every backend.

Owns: `SlotManager` (the abstract base: argument checks, limit resolution, the
blocking `acquire`/`try_acquire` built on the non-blocking `request`), `Lease`,
`SlotRequest`, `SlotStatistics`, `Limit`, and the `ConcurrencySlotTimeout` error.

Shape (modelled on trio's CapacityLimiter)::

    req = manager.request(["db"], 1, on_granted)   # never blocks
    ...                                            # on_granted(lease) runs once every
    lease.release()                                # named slot is held (all or nothing)

A backend implements four primitives — `_request`, `_try_acquire`, `_release`,
`_renew` — plus `statistics`, `reset` and (optionally) `_take_tokens` for
`rate_limit`. Names without a limit never reach the backend: `request` grants
them synchronously with an empty lease.
"""

from __future__ import annotations

import logging
import threading
import weakref
from abc import ABC, abstractmethod
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from fluvial.exceptions import ConcurrencySlotTimeout

__all__ = [
    "ConcurrencySlotTimeout",
    "Lease",
    "Limit",
    "LimitSource",
    "SlotManager",
    "SlotRequest",
    "SlotStatistics",
    "normalize_names",
]

logger = logging.getLogger("fluvial.concurrency")

_store_backed: weakref.WeakSet[SlotManager] = weakref.WeakSet()


def limits_changed(tag: str) -> None:
    """Tell every store-backed manager of this process that `tag`'s limit changed."""
    for manager in list(_store_backed):
        manager._limit_changed(tag)


@dataclass(frozen=True, slots=True)
class Limit:
    """A limit as the slot managers see it (``0 <= limit <= MAX_LIMIT``)."""

    limit: int
    slot_decay_per_second: float | None = None


@dataclass(frozen=True, slots=True)
class SlotStatistics:
    """A snapshot of one name: `active` slots in use, `holders` leases holding it, `waiters` queued."""

    name: str
    limit: int | None
    active: int
    holders: int
    waiters: int


LimitSource = Callable[[str], Limit | None]

#: The largest limit a tag may have: a million task runs of one tag at once is beyond any
#: machine or cluster fluvial drives, and every slot manager (host files, the Dask
#: plugin's and the Ray actor's counters, the store's INTEGER column) supports it.
MAX_LIMIT = 1_000_000


def check_limit(tag: str, limit: object) -> int:
    """``limit`` if it is an int in ``[0, MAX_LIMIT]``; else a TypeError/ValueError naming
    ``tag``."""
    if isinstance(limit, bool) or not isinstance(limit, int):
        raise TypeError(f"a concurrency limit must be an integer, got {limit!r} for {tag!r}")
    if limit < 0:
        raise ValueError(f"a concurrency limit must be 0 or more, got {limit} for {tag!r}")
    if limit > MAX_LIMIT:
        shown = str(limit) if limit < 10**24 else f"about 10**{len(str(limit)) - 1}"
        raise ValueError(f"a concurrency limit must be at most {MAX_LIMIT:,}, got {shown} "
                         f"for {tag!r}")
    return limit


def _limit_source(limits: Mapping[str, int | Limit] | LimitSource | None) -> LimitSource:
    if limits is None:
        from fluvial.concurrency._limits import stored_limit

        return stored_limit
    if callable(limits):
        return limits
    table = {
        k: (v if isinstance(v, Limit) else Limit(int(v))) for k, v in dict(limits).items()
    }
    for k, v in table.items():
        check_limit(k, v.limit)
    return table.get


def normalize_names(names: str | Sequence[str]) -> tuple[str, ...]:
    """Turn `"a"` or `["b", "a", "b"]` into a sorted tuple of unique names; reject empty names."""
    if isinstance(names, str):
        names = (names,)
    out = []
    for n in names:
        if not isinstance(n, str):
            raise TypeError(f"concurrency limit names must be strings, got {n!r}")
        if not n.strip():
            raise ValueError("concurrency limit names must be non-empty strings")
        out.append(n)
    if not out:
        raise ValueError("at least one concurrency limit name is required")
    return tuple(sorted(set(out)))


class Lease:
    """Slots held on `names` (each with `occupy` units). `release()` is safe to call twice."""

    __slots__ = ("names", "occupy", "lease_id", "lease_seconds", "_manager", "_released")

    def __init__(
        self,
        manager: SlotManager | None,
        names: tuple[str, ...],
        occupy: int,
        lease_id: Any,
        lease_seconds: float | None,
    ) -> None:
        self.names = names
        self.occupy = occupy
        self.lease_id = lease_id
        self.lease_seconds = lease_seconds
        self._manager = manager
        self._released = manager is None

    @property
    def released(self) -> bool:
        return self._released

    def release(self) -> None:
        """Give the slots back (idempotent; never blocks on a remote backend)."""
        if self._released:
            return
        self._released = True
        assert self._manager is not None
        self._manager._release(self)

    def renew(self, lease_seconds: float | None = None) -> None:
        """Push the lease's expiry `lease_seconds` (default: the original duration) into the future."""
        if self._released or self._manager is None:
            return
        self._manager._renew(self, lease_seconds if lease_seconds is not None else self.lease_seconds)

    def __enter__(self) -> Lease:
        return self

    def __exit__(self, *exc: object) -> None:
        self.release()

    def __repr__(self) -> str:
        state = "released" if self._released else "held"
        return f"<Lease {self.lease_id} {list(self.names)} occupy={self.occupy} {state}>"


class SlotRequest:
    """A registered waiter. `cancel()` returns True when `on_granted` will never be called."""

    __slots__ = ("names", "occupy", "lease", "_cancel", "_lock", "_state")

    _WAITING, _GRANTED, _CANCELLED = 0, 1, 2

    def __init__(
        self,
        names: tuple[str, ...],
        occupy: int,
        cancel: Callable[[], object] | None = None,
        lease: Lease | None = None,
    ) -> None:
        self.names = names
        self.occupy = occupy
        self.lease = lease
        self._cancel = cancel
        self._lock = threading.Lock()
        self._state = self._GRANTED if lease is not None else self._WAITING

    @property
    def granted(self) -> bool:
        return self._state == self._GRANTED

    @property
    def cancelled(self) -> bool:
        return self._state == self._CANCELLED

    def _mark_granted(self, lease: Lease) -> bool:
        """Backend hook: True if the grant stands, False if the request was cancelled first."""
        with self._lock:
            if self._state != self._WAITING:
                return False
            self._state = self._GRANTED
            self.lease = lease
            return True

    def cancel(self) -> bool:
        """Withdraw the waiter. False if the slots were already granted (release the lease then)."""
        with self._lock:
            if self._state == self._GRANTED:
                return False
            if self._state == self._CANCELLED:
                return True
            self._state = self._CANCELLED
        if self._cancel is not None:
            self._cancel()
        return True


class SlotManager(ABC):
    """Grants slots on named limits, all or nothing, in arrival order.

    `limits` is where limits come from: None (the store under `FLUVIAL_HOME`),
    a mapping `{name: n | Limit}`, or a callable `name -> Limit | None`.
    """

    def __init__(self, limits: Mapping[str, int | Limit] | LimitSource | None = None) -> None:
        self._limit_of = _limit_source(limits)
        self._warned_zero: set[str] = set()
        if limits is None:
            _store_backed.add(self)

    def _limit_changed(self, tag: str) -> None:
        """Hook: a stored limit changed in this process (wake waiters if it grew)."""
        return None

    # -- public API --------------------------------------------------------------

    def request(
        self,
        names: str | Sequence[str],
        occupy: int,
        on_granted: Callable[[Lease], None],
        *,
        lease_seconds: float | None = None,
    ) -> SlotRequest:
        """Register a waiter; `on_granted(lease)` runs (any thread) once all slots are held.

        Names without a limit are granted synchronously, before this returns.
        """
        keys, specs = self._resolve(names, occupy, lease_seconds)
        if not specs:
            lease = Lease(None, keys, occupy, None, lease_seconds)
            on_granted(lease)
            return SlotRequest(keys, occupy, lease=lease)
        return self._request(specs, occupy, on_granted, lease_seconds)

    def acquire(
        self,
        names: str | Sequence[str],
        occupy: int = 1,
        timeout: float | None = None,
        lease_seconds: float | None = None,
    ) -> Lease:
        """Block until all slots are held; `ConcurrencySlotTimeout` after `timeout` seconds."""
        box: list[Lease] = []
        done = threading.Event()

        def granted(lease: Lease) -> None:
            box.append(lease)
            done.set()

        req = self.request(names, occupy, granted, lease_seconds=lease_seconds)
        if box:
            return box[0]
        if not done.wait(timeout):
            if req.cancel():
                raise ConcurrencySlotTimeout(req.names, occupy, timeout or 0.0)
            done.wait()
        return box[0]

    def try_acquire(
        self,
        names: str | Sequence[str],
        occupy: int = 1,
        lease_seconds: float | None = None,
    ) -> Lease | None:
        """Take the slots if they are free right now (and nobody waits for them), else None."""
        keys, specs = self._resolve(names, occupy, lease_seconds)
        if not specs:
            return Lease(None, keys, occupy, None, lease_seconds)
        return self._try_acquire(specs, occupy, lease_seconds)

    def limit_of(self, name: str) -> Limit | None:
        return self._limit_of(name)

    @abstractmethod
    def statistics(self, name: str) -> SlotStatistics:
        """A snapshot of `name`'s slots."""

    @abstractmethod
    def reset(self, name: str) -> None:
        """Free every slot of `name` (holders' later `release()` is a no-op for it)."""

    def take_tokens(self, names: str | Sequence[str], occupy: int = 1) -> float:
        """Rate limiting: take `occupy` decaying slots of every name now (0.0) or say how long to wait."""
        keys, specs = self._resolve(names, occupy, None)
        specs = {n: s for n, s in specs.items()}
        for n, s in specs.items():
            if not s.slot_decay_per_second or s.slot_decay_per_second <= 0:
                raise ValueError(
                    f"rate_limit needs a slot decay rate on limit {n!r}: "
                    f"set_limit({n!r}, {s.limit}, slot_decay_per_second=...)"
                )
        if not specs:
            return 0.0
        return self._take_tokens(specs, occupy)

    def close(self) -> None:
        """Release backend resources (threads, files, connections)."""
        return None

    def __enter__(self) -> SlotManager:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- backend primitives --------------------------------------------------------

    @abstractmethod
    def _request(
        self,
        specs: dict[str, Limit],
        occupy: int,
        on_granted: Callable[[Lease], None],
        lease_seconds: float | None,
    ) -> SlotRequest: ...

    @abstractmethod
    def _try_acquire(
        self, specs: dict[str, Limit], occupy: int, lease_seconds: float | None
    ) -> Lease | None: ...

    @abstractmethod
    def _release(self, lease: Lease) -> None: ...

    @abstractmethod
    def _renew(self, lease: Lease, lease_seconds: float | None) -> None: ...

    def _take_tokens(self, specs: dict[str, Limit], occupy: int) -> float:
        raise NotImplementedError(f"{type(self).__name__} does not support rate limits")

    # -- helpers ---------------------------------------------------------------------

    def _resolve(
        self, names: str | Sequence[str], occupy: int, lease_seconds: float | None
    ) -> tuple[tuple[str, ...], dict[str, Limit]]:
        if isinstance(occupy, bool) or not isinstance(occupy, int):
            raise TypeError(f"occupy must be an integer, got {occupy!r}")
        if occupy < 1:
            raise ValueError(f"occupy must be at least 1, got {occupy}")
        if lease_seconds is not None and not lease_seconds > 0:
            raise ValueError(f"lease_seconds must be greater than 0, got {lease_seconds!r}")
        keys = normalize_names(names)
        specs: dict[str, Limit] = {}
        for name in keys:
            lim = self._limit_of(name)
            if lim is None:
                continue
            if lim.limit == 0:
                if name not in self._warned_zero:
                    self._warned_zero.add(name)
                    logger.warning(
                        "concurrency limit %r is 0: the tag is blocked and its tasks wait "
                        "until the limit is raised",
                        name,
                    )
            elif occupy > lim.limit:
                raise ValueError(
                    f"occupy={occupy} is greater than concurrency limit {name!r} ({lim.limit}); "
                    "it could never be granted"
                )
            specs[name] = lim
        return keys, specs
