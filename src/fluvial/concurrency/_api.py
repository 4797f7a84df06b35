"""User-facing helpers: `concurrency(...)` (sync and async context manager), `rate_limit`, `reset`.

Owns the Prefect-compatible surface (`prefect.concurrency.sync/asyncio`). The
async paths are built on the non-blocking `SlotManager.request`: the event loop
is never blocked and a cancelled or timed-out wait withdraws its waiter.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Iterator, Sequence
from types import TracebackType

from fluvial.concurrency._base import ConcurrencySlotTimeout, Lease, SlotManager, normalize_names
from fluvial.concurrency._context import get_slot_manager

__all__ = ["arate_limit", "concurrency", "rate_limit", "reset"]


class concurrency:  # noqa: N801 - Prefect's name
    """Hold `occupy` slots of every limit in `names` for the block (`with` or `async with`).

    Raises `ConcurrencySlotTimeout` (a `TimeoutError`) after `timeout_seconds`.
    """

    def __init__(
        self,
        names: str | Sequence[str],
        occupy: int = 1,
        timeout_seconds: float | None = None,
        *,
        lease_seconds: float | None = None,
        manager: SlotManager | None = None,
    ) -> None:
        self.names = names
        self.occupy = occupy
        self.timeout_seconds = timeout_seconds
        self.lease_seconds = lease_seconds
        self._manager = manager
        self.lease: Lease | None = None

    def _mgr(self) -> SlotManager:
        return self._manager if self._manager is not None else get_slot_manager()

    def __enter__(self) -> Lease:
        self.lease = self._mgr().acquire(
            self.names, self.occupy, timeout=self.timeout_seconds, lease_seconds=self.lease_seconds
        )
        return self.lease

    def __exit__(self, *exc: object) -> None:
        if self.lease is not None:
            self.lease.release()
            self.lease = None

    async def __aenter__(self) -> Lease:
        self.lease = await _acquire_async(
            self._mgr(), self.names, self.occupy, self.timeout_seconds, self.lease_seconds
        )
        return self.lease

    async def __aexit__(
        self, et: type[BaseException] | None, e: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.__exit__()


async def _acquire_async(
    manager: SlotManager,
    names: str | Sequence[str],
    occupy: int,
    timeout: float | None,
    lease_seconds: float | None,
) -> Lease:
    loop = asyncio.get_running_loop()
    fut: asyncio.Future[Lease] = loop.create_future()
    handed_out: list[Lease] = []

    def granted(lease: Lease) -> None:
        def settle() -> None:
            if not fut.done():
                fut.set_result(lease)
            elif lease not in handed_out:
                lease.release()

        loop.call_soon_threadsafe(settle)

    req = manager.request(names, occupy, granted, lease_seconds=lease_seconds)
    if req.lease is not None:
        handed_out.append(req.lease)
        return req.lease
    try:
        return await asyncio.wait_for(asyncio.shield(fut), timeout)
    except (TimeoutError, asyncio.CancelledError) as exc:
        fut.cancel()
        if not req.cancel() and req.lease is not None:
            if isinstance(exc, TimeoutError):
                handed_out.append(req.lease)
                return req.lease
            req.lease.release()
        if isinstance(exc, TimeoutError):
            raise ConcurrencySlotTimeout(req.names, occupy, timeout or 0.0) from None
        raise


def _token_waits(names: str | Sequence[str], occupy: int, timeout_seconds: float | None,
                 manager: SlotManager | None) -> Iterator[float]:
    """The waits before the decaying slots are taken (the caller sleeps each one, sync
    or async); raises ``ConcurrencySlotTimeout`` when a wait would pass the deadline."""
    mgr = manager if manager is not None else get_slot_manager()
    deadline = None if timeout_seconds is None else time.monotonic() + timeout_seconds
    while True:
        wait = mgr.take_tokens(names, occupy)
        if wait <= 0:
            return
        if deadline is not None and time.monotonic() + wait > deadline:
            raise ConcurrencySlotTimeout(normalize_names(names), occupy, timeout_seconds or 0.0)
        yield wait


def rate_limit(
    names: str | Sequence[str],
    occupy: int = 1,
    timeout_seconds: float | None = None,
    *,
    manager: SlotManager | None = None,
) -> None:
    """Take `occupy` decaying slots of every name, waiting until the decay frees enough.

    Each name needs a limit with `slot_decay_per_second`; the slots are never
    released, they drain at that rate (a token bucket of size `limit`).
    """
    for wait in _token_waits(names, occupy, timeout_seconds, manager):
        time.sleep(wait)  # the computed time until the decay frees the slots


async def arate_limit(
    names: str | Sequence[str],
    occupy: int = 1,
    timeout_seconds: float | None = None,
    *,
    manager: SlotManager | None = None,
) -> None:
    """`rate_limit` for coroutines (never blocks the event loop on a wait)."""
    for wait in _token_waits(names, occupy, timeout_seconds, manager):
        await asyncio.sleep(wait)


def reset(tag: str, manager: SlotManager | None = None) -> None:
    """Free every slot of `tag` on the current (or given) manager."""
    (manager if manager is not None else get_slot_manager()).reset(tag)
