"""Persisted limits: `set_limit`, `get_limit`, `list_limits`, `delete_limit`, and the cached lookup.

Owns the bridge between the slot managers and the store, and the one public
path to limits: every change is validated here (`_check`) and wakes the waiters
of its tag. Limits live in the store (`fluvial.store._limits`, private), so a
limit set once applies to every later run on the machine (or, with
`FLUVIAL_DATABASE_URL`, on every machine sharing the record).

`stored_limit(name)` is what the default managers call on every request. It reads
the whole table at most once per `REFRESH_SECONDS`, with one `SELECT` on a
connection kept open (changes made in this process are seen at once; changes made
by another process, e.g. the CLI, within that time, and the refresh wakes the
waiters of every tag whose limit it finds changed), so a tag without a limit
costs a dict lookup.
"""

from __future__ import annotations

import math
import threading
import time
from pathlib import Path
from typing import Any

from fluvial import settings
from fluvial.concurrency._base import (
    MAX_LIMIT,
    Limit,
    check_limit,
    limits_changed,
    normalize_names,
)

__all__ = [
    "delete_limit",
    "fluvial_home",
    "get_limit",
    "invalidate_cache",
    "list_limits",
    "set_limit",
    "stored_limit",
]

REFRESH_SECONDS = 1.0


def fluvial_home() -> Path:
    return settings.home()


def _store() -> Any:
    from fluvial.store import _limits as store_limits

    return store_limits


def _check_tag(tag: object) -> None:
    if not isinstance(tag, str):
        raise TypeError(f"a concurrency limit tag must be a string, got {tag!r}")
    normalize_names(tag)


def _check(tag: str, limit: object, slot_decay_per_second: object) -> None:
    _check_tag(tag)
    check_limit(tag, limit)
    if slot_decay_per_second is not None:
        if isinstance(slot_decay_per_second, bool) or not isinstance(slot_decay_per_second, int | float):
            raise TypeError(f"slot_decay_per_second must be a number, got {slot_decay_per_second!r}")
        if not (slot_decay_per_second > 0 and math.isfinite(slot_decay_per_second)):
            raise ValueError(
                f"slot_decay_per_second must be a finite number greater than 0, got {slot_decay_per_second!r}"
            )


def set_limit(tag: str, limit: int, slot_decay_per_second: float | None = None) -> Any:
    """Create or update the limit on `tag` (0 blocks the tag). Returns the stored record."""
    _check(tag, limit, slot_decay_per_second)
    record = _store().set_limit(tag, limit, slot_decay_per_second=slot_decay_per_second)
    _changed_here(tag, Limit(int(limit), slot_decay_per_second))
    return record if record is not None else get_limit(tag)


def get_limit(tag: str) -> Any:
    """The stored record for `tag` (fields tag, limit, slot_decay_per_second) or None."""
    _check_tag(tag)
    return _store().get_limit(tag)


def list_limits() -> list[Any]:
    return list(_store().list_limits())


def delete_limit(tag: str) -> bool:
    """Remove the limit on `tag`; True if there was one."""
    _check_tag(tag)
    deleted = bool(_store().delete_limit(tag))
    _changed_here(tag, None)
    return deleted


# -- the cached lookup the managers use ----------------------------------------------

_cache: dict[str, Limit] = {}
_cache_at = -math.inf
_cache_home: str | None = None
_cache_lock = threading.Lock()


def invalidate_cache() -> None:
    global _cache_at
    _cache_at = -math.inf


def _changed_here(tag: str, limit: Limit | None) -> None:
    """A change made by this process: into the cache at once, and its waiters woken."""
    global _cache
    with _cache_lock:
        if _cache_home == settings.get().database_url:
            fresh = dict(_cache)
            if limit is None:
                fresh.pop(tag, None)
            else:
                fresh[tag] = limit
            _cache = fresh
        else:
            invalidate_cache()
    limits_changed(tag)


def stored_limit(name: str) -> Limit | None:
    global _cache, _cache_at, _cache_home
    home = settings.get().database_url
    if time.monotonic() - _cache_at > REFRESH_SECONDS or home != _cache_home:
        with _cache_lock:
            before, same_home = _cache, home == _cache_home
            fresh = {
                # min(): a limit stored by an older version may exceed the bound
                r.tag: Limit(min(int(r.limit), MAX_LIMIT), r.slot_decay_per_second)
                for r in list_limits()
            }
            _cache, _cache_at, _cache_home = fresh, time.monotonic(), home
        changed = [t for t in before.keys() | fresh.keys() if before.get(t) != fresh.get(t)]
        if same_home and changed:
            # Changed by another process: wake the tags' waiters. From a thread of its
            # own, since a manager may be asking for a limit while holding its lock.
            threading.Thread(
                target=_wake, args=(changed,), name="fluvial-limits-changed", daemon=True
            ).start()
    return _cache.get(name)


def _wake(tags: list[str]) -> None:
    for tag in tags:
        limits_changed(tag)
