"""Which slot manager is current: the process default and a contextvar override.

Owns `get_slot_manager()`, `set_slot_manager()` and `use_slot_manager()`.
By default the current manager is a `HostSlotManager` over `$FLUVIAL_HOME`
(one per home directory, created on first use), so two scripts on one machine
share their limits. A Dask or Ray runner installs its cluster-wide manager for
the duration of a flow with `with use_slot_manager(DaskSlotManager(client)):`.
"""

from __future__ import annotations

import contextvars
import threading
from collections.abc import Iterator
from contextlib import contextmanager

from fluvial.concurrency._base import SlotManager
from fluvial.concurrency._limits import fluvial_home

__all__ = ["get_slot_manager", "set_slot_manager", "use_slot_manager"]

_current: contextvars.ContextVar[SlotManager | None] = contextvars.ContextVar(
    "fluvial_slot_manager", default=None
)
_default: SlotManager | None = None
_host_by_home: dict[str, SlotManager] = {}
_lock = threading.Lock()


def get_slot_manager() -> SlotManager:
    """The manager in effect: the contextvar's, else the process default, else the host one."""
    manager = _current.get()
    if manager is not None:
        return manager
    if _default is not None:
        return _default
    home = str(fluvial_home())
    manager = _host_by_home.get(home)
    if manager is None:
        with _lock:
            manager = _host_by_home.get(home)
            if manager is None:
                from fluvial.concurrency._host import HostSlotManager

                manager = _host_by_home[home] = HostSlotManager(home=home)
    return manager


def set_slot_manager(manager: SlotManager | None) -> None:
    """Set (or with None, clear) the process-wide default manager."""
    global _default
    _default = manager


@contextmanager
def use_slot_manager(manager: SlotManager) -> Iterator[SlotManager]:
    """Make `manager` current in this context (a flow run, a task) until the block exits."""
    token = _current.set(manager)
    try:
        yield manager
    finally:
        _current.reset(token)
