"""Tag concurrency limits, as stored: the ``concurrency_limits`` table.

Private: :mod:`fluvial.concurrency` is the one public path to limits (it
validates, and wakes waiters when a limit changes). Written synchronously,
never on a hot path.
"""

from __future__ import annotations

import math
import time

from fluvial.store.connection import reading, transaction
from fluvial.store.queries import LimitRecord

__all__ = ["LimitRecord", "delete_limit", "get_limit", "list_limits", "set_limit"]

_COLUMNS = 'tag, "limit", slot_decay_per_second, created, updated'


def _check_tag(tag: object) -> str:
    if not isinstance(tag, str):
        raise TypeError(f"tag must be a string, got {type(tag).__name__}")
    if not tag.strip():
        raise ValueError("tag must be a non-empty string")
    return tag


def set_limit(tag: str, limit: int, slot_decay_per_second: float | None = None) -> LimitRecord:
    """Create or replace the concurrency limit of ``tag``; return it as stored."""
    tag = _check_tag(tag)
    if isinstance(limit, bool) or not isinstance(limit, int):
        raise ValueError(f"limit must be a non-negative integer, got {limit!r}")
    if limit < 0:
        raise ValueError(f"limit must be a non-negative integer, got {limit}")
    if slot_decay_per_second is not None:
        if isinstance(slot_decay_per_second, bool) or not isinstance(
            slot_decay_per_second, int | float
        ):
            raise ValueError(
                f"slot_decay_per_second must be a number or None, got {slot_decay_per_second!r}"
            )
        slot_decay_per_second = float(slot_decay_per_second)
        if not math.isfinite(slot_decay_per_second) or slot_decay_per_second < 0:
            raise ValueError(
                f"slot_decay_per_second must be a finite number >= 0, got {slot_decay_per_second}"
            )
    now = time.time()
    with reading() as conn, transaction(conn):
        conn.execute(
            f"""INSERT INTO concurrency_limits ({_COLUMNS}) VALUES (?, ?, ?, ?, ?)
                ON CONFLICT (tag) DO UPDATE SET "limit" = excluded."limit",
                    slot_decay_per_second = excluded.slot_decay_per_second,
                    updated = excluded.updated""",
            (tag, limit, slot_decay_per_second, now, now),
        )
        row = conn.execute(
            f"SELECT {_COLUMNS} FROM concurrency_limits WHERE tag = ?", (tag,)
        ).fetchone()
    return LimitRecord(*row)


def get_limit(tag: str) -> LimitRecord | None:
    """The limit of ``tag``, or None if it has none."""
    tag = _check_tag(tag)
    with reading() as conn:
        row = conn.execute(
            f"SELECT {_COLUMNS} FROM concurrency_limits WHERE tag = ?", (tag,)
        ).fetchone()
    return LimitRecord(*row) if row else None


def list_limits() -> list[LimitRecord]:
    """Every limit, by tag."""
    with reading() as conn:
        rows = conn.execute(f"SELECT {_COLUMNS} FROM concurrency_limits ORDER BY tag").fetchall()
    return [LimitRecord(*row) for row in rows]


def delete_limit(tag: str) -> bool:
    """Remove the limit of ``tag``; False if it had none."""
    tag = _check_tag(tag)
    with reading() as conn, transaction(conn):
        deleted = conn.execute("DELETE FROM concurrency_limits WHERE tag = ?", (tag,)).rowcount
    return deleted > 0
