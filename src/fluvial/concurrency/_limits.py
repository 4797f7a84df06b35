"""Persisted limits: `set_limit`, `get_limit`, `list_limits`, `delete_limit`, and the cached lookup.

Owns the bridge between the slot managers and the store. Limits live in the
store under `FLUVIAL_HOME` (`fluvial.store.limits`), so a limit set once applies
to every later run on the machine. Until that module is importable, a small JSON
file (`$FLUVIAL_HOME/limits.json`) stands in for it.

`stored_limit(name)` is what the default managers call on every request. It reads
the whole table at most once per `REFRESH_SECONDS` (changes made in this process
are seen at once; changes made by another process, e.g. the CLI, within that
time), so a tag without a limit costs a dict lookup.
"""

from __future__ import annotations

import json
import math
import os
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from fluvial.concurrency._base import Limit, limits_changed, normalize_names

__all__ = [
    "LimitRecord",
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
    return Path(os.environ.get("FLUVIAL_HOME") or Path.home() / ".fluvial")


@dataclass(frozen=True, slots=True)
class LimitRecord:
    """Fallback record shape (the store's own record has the same fields)."""

    tag: str
    limit: int
    slot_decay_per_second: float | None = None


def _store() -> Any:
    try:
        from fluvial.store import limits as store_limits
    except ImportError:
        return _JsonLimits
    return store_limits


def _check(tag: str, limit: object, slot_decay_per_second: object) -> None:
    normalize_names(tag)
    if isinstance(limit, bool) or not isinstance(limit, int):
        raise TypeError(f"a concurrency limit must be an integer, got {limit!r} for {tag!r}")
    if limit < 0:
        raise ValueError(f"a concurrency limit must be 0 or more, got {limit} for {tag!r}")
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
    invalidate_cache()
    limits_changed(tag)
    return record if record is not None else get_limit(tag)


def get_limit(tag: str) -> Any:
    """The stored record for `tag` (fields tag, limit, slot_decay_per_second) or None."""
    return _store().get_limit(tag)


def list_limits() -> list[Any]:
    return list(_store().list_limits())


def delete_limit(tag: str) -> bool:
    """Remove the limit on `tag`; True if there was one."""
    deleted = bool(_store().delete_limit(tag))
    invalidate_cache()
    limits_changed(tag)
    return deleted


# -- the cached lookup the managers use ----------------------------------------------

_cache: dict[str, Limit] = {}
_cache_at = -math.inf
_cache_home: str | None = None
_cache_lock = threading.Lock()


def invalidate_cache() -> None:
    global _cache_at
    _cache_at = -math.inf


def stored_limit(name: str) -> Limit | None:
    global _cache, _cache_at, _cache_home
    home = os.environ.get("FLUVIAL_HOME")
    if time.monotonic() - _cache_at > REFRESH_SECONDS or home != _cache_home:
        with _cache_lock:
            fresh = {
                r.tag: Limit(int(r.limit), r.slot_decay_per_second) for r in list_limits()
            }
            _cache, _cache_at, _cache_home = fresh, time.monotonic(), home
    return _cache.get(name)


class _JsonLimits:
    """Stand-in for `fluvial.store.limits` until the store lands (atomic file replace)."""

    _lock = threading.Lock()

    @staticmethod
    def _path() -> Path:
        return fluvial_home() / "limits.json"

    @classmethod
    def _read(cls) -> dict[str, dict]:
        try:
            return json.loads(cls._path().read_text())
        except FileNotFoundError:
            return {}

    @classmethod
    def _write(cls, data: dict[str, dict]) -> None:
        path = cls._path()
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_suffix(f".{os.getpid()}.tmp")
        tmp.write_text(json.dumps(data))
        os.replace(tmp, path)

    @classmethod
    def set_limit(cls, tag: str, limit: int, slot_decay_per_second: float | None = None) -> LimitRecord:
        with cls._lock:
            data = cls._read()
            data[tag] = {"limit": limit, "slot_decay_per_second": slot_decay_per_second}
            cls._write(data)
        return LimitRecord(tag, limit, slot_decay_per_second)

    @classmethod
    def get_limit(cls, tag: str) -> LimitRecord | None:
        d = cls._read().get(tag)
        return None if d is None else LimitRecord(tag, d["limit"], d["slot_decay_per_second"])

    @classmethod
    def list_limits(cls) -> list[LimitRecord]:
        return [LimitRecord(t, d["limit"], d["slot_decay_per_second"]) for t, d in sorted(cls._read().items())]

    @classmethod
    def delete_limit(cls, tag: str) -> bool:
        with cls._lock:
            data = cls._read()
            found = data.pop(tag, None) is not None
            if found:
                cls._write(data)
        return found
