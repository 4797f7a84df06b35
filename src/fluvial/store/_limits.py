"""Tag concurrency limits, as stored: the ``concurrency_limits`` table.

Private: :mod:`fluvial.concurrency` is the one public path to limits (it
validates, and wakes waiters when a limit changes). Written synchronously,
never on a hot path.
"""

from __future__ import annotations

import time

from fluvial.store.connection import kept_open, reading, transaction
from fluvial.store.queries import LimitRecord

__all__ = ["LimitRecord", "delete_limit", "get_limit", "list_limits", "set_limit"]

_COLUMNS = 'tag, "limit", slot_decay_per_second, created, updated'


def set_limit(tag: str, limit: int, slot_decay_per_second: float | None = None) -> LimitRecord:
    """Create or replace the limit of ``tag`` (already validated); return it as stored."""
    now = time.time()
    decay = None if slot_decay_per_second is None else float(slot_decay_per_second)
    with reading() as conn, transaction(conn):
        conn.execute(
            f"""INSERT INTO concurrency_limits ({_COLUMNS}) VALUES (?, ?, ?, ?, ?)
                ON CONFLICT (tag) DO UPDATE SET "limit" = excluded."limit",
                    slot_decay_per_second = excluded.slot_decay_per_second,
                    updated = excluded.updated""",
            (tag, int(limit), decay, now, now),
        )
        row = conn.execute(
            f"SELECT {_COLUMNS} FROM concurrency_limits WHERE tag = ?", (tag,)
        ).fetchone()
    return LimitRecord(*row)


def get_limit(tag: str) -> LimitRecord | None:
    """The limit of ``tag``, or None if it has none."""
    with reading() as conn:
        row = conn.execute(
            f"SELECT {_COLUMNS} FROM concurrency_limits WHERE tag = ?", (tag,)
        ).fetchone()
    return LimitRecord(*row) if row else None


def list_limits() -> list[LimitRecord]:
    """Every limit, by tag: one ``SELECT`` on a connection kept open (the admission
    path asks once a second)."""
    with kept_open() as conn:
        rows = conn.execute(f"SELECT {_COLUMNS} FROM concurrency_limits ORDER BY tag").fetchall()
    return [LimitRecord(*row) for row in rows]


def delete_limit(tag: str) -> bool:
    """Remove the limit of ``tag``; False if it had none."""
    with reading() as conn, transaction(conn):
        deleted = conn.execute("DELETE FROM concurrency_limits WHERE tag = ?", (tag,)).rowcount
    return deleted > 0
