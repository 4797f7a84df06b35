"""The cyclic garbage collector around big maps: paused while a map's runs are built,
and those runs kept out of its walks until their flow run ends.

A map of 100 000 allocates about ten long-lived objects per run (the run, its
submission, its future, their dicts and lists). Every collection while they are built
walks the growing heap and frees nothing, so the collector is paused for the burst
(``allocation_burst``). Switched back on, it would then walk the whole burst once in
its youngest generation — a single pause of 150–250 ms after a 100 000-run map, a
quarter of the map's time, freeing nothing again. Instead, the objects the burst made
are moved to the collector's permanent generation (``gc.freeze()``, which walks
nothing) and given back to it (``gc.unfreeze()``) when the last flow run holding such
a freeze ends; a run object that becomes garbage meanwhile is freed by reference
counting as usual, only a cycle among them waits for the flow run's end.

``gc.freeze()`` is process-wide: when something else froze objects first (a server
preparing to fork, say), the collector is left alone and the burst is only paused.
"""

from __future__ import annotations

import gc
import threading
from collections.abc import Hashable, Iterator
from contextlib import contextmanager

__all__ = ["BURST", "allocation_burst", "thaw"]

BURST = 1000  # runs: below this, collections during a map cost nothing worth avoiding

_lock = threading.Lock()
_holders: set[Hashable] = set()  # the flow runs whose maps' objects are frozen


@contextmanager
def allocation_burst(n: int, holder: Hashable | None = None) -> Iterator[None]:
    """Pause the collector while ``n`` task runs are built and handed out.

    With a ``holder`` (the flow run id the runs belong to), what the burst allocated is
    then frozen until ``thaw(holder)``; without one the collector catches up on its own
    schedule. Small bursts, or a collector switched off by the application, are left
    alone.
    """
    if n < BURST or not gc.isenabled():
        yield
        return
    gc.disable()
    try:
        yield
    finally:
        if holder is not None:
            _freeze(holder)
        gc.enable()


def _freeze(holder: Hashable) -> None:
    with _lock:
        if not _holders and gc.get_freeze_count():
            return  # frozen by someone else: theirs to keep, not ours to thaw
        gc.freeze()
        _holders.add(holder)


def thaw(holder: Hashable) -> None:
    """``holder``'s flow run ended: once no other holds a freeze, the collector gets every
    frozen object back (into its oldest generation, walked at its next full collection)."""
    if holder not in _holders:  # (unlocked: the common case, a flow without a big map)
        return
    with _lock:
        _holders.discard(holder)
        if not _holders:
            gc.unfreeze()
