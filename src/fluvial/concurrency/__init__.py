"""Tag-based concurrency limits: persisted limits, the slot manager and its backends.

Owns the public façade. Limits are stored under `FLUVIAL_HOME` (`set_limit`,
`get_limit`, `list_limits`, `delete_limit`; a limit is an int from 0 to `MAX_LIMIT`,
one million); slots are granted by the current
`SlotManager` (`get_slot_manager()`): the host backend by default, or the one a
runner installs with `use_slot_manager(...)`.

Backends: `InProcessSlotManager` (threads of one process), `HostSlotManager`
(every process of one machine, flock), `DaskSlotManager` (hosted by a Dask
scheduler) and `RaySlotManager` (a named Ray actor). The last two import their
cluster library only when first used.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from fluvial.concurrency._api import arate_limit, concurrency, rate_limit
from fluvial.concurrency._api import reset as _reset
from fluvial.concurrency._base import (
    MAX_LIMIT,
    ConcurrencySlotTimeout,
    Lease,
    Limit,
    SlotManager,
    SlotRequest,
    SlotStatistics,
)
from fluvial.concurrency._context import get_slot_manager, set_slot_manager, use_slot_manager
from fluvial.concurrency._host import HostSlotManager
from fluvial.concurrency._inprocess import InProcessSlotManager
from fluvial.concurrency._limits import delete_limit, get_limit, list_limits, set_limit

if TYPE_CHECKING:
    from fluvial.concurrency._dask import DaskSlotManager
    from fluvial.concurrency._ray import RaySlotManager

__all__ = [
    "ConcurrencySlotTimeout",
    "DaskSlotManager",
    "HostSlotManager",
    "InProcessSlotManager",
    "Lease",
    "Limit",
    "MAX_LIMIT",
    "RaySlotManager",
    "SlotManager",
    "SlotRequest",
    "SlotStatistics",
    "arate_limit",
    "concurrency",
    "delete_limit",
    "get_limit",
    "get_slot_manager",
    "list_limits",
    "rate_limit",
    "reset",
    "set_limit",
    "set_slot_manager",
    "use_slot_manager",
]


def reset(tag: str, manager: SlotManager | None = None) -> None:
    """Free every slot of `tag` (on the current manager, or the one given)."""
    _reset(tag, manager)


def __getattr__(name: str) -> Any:
    if name == "DaskSlotManager":
        from fluvial.concurrency._dask import DaskSlotManager

        return DaskSlotManager
    if name == "RaySlotManager":
        from fluvial.concurrency._ray import RaySlotManager

        return RaySlotManager
    raise AttributeError(f"module 'fluvial.concurrency' has no attribute {name!r}")
