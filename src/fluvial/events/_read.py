"""Reading the event log: both streams merged, from a position; a live tail; the cleanup."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from typing import Any

from fluvial.store.events import EventRow

__all__ = ["Positions", "cleanup", "read_since", "stream"]

Positions = tuple[int, int]  # (events seq, states seq)


def read_since(conn: Any, positions: Positions, limit: int = 1000,
               flow_runs: bool = True, task_runs: bool = True, emitted: bool = True,
               now: float | None = None) -> tuple[list[EventRow], Positions]:
    """Events after ``positions`` from both streams, ordered by the time they were received.

    Returns the events and the positions after them; a consumer calls again until it
    gets nothing. A state whose run row has not arrived yet holds the state stream's
    position back (so it is read once the row is there), for at most
    ``ORPHAN_STATE_SECONDS``; after that it is passed over.
    """
    from fluvial.store import events as stored

    events_seq, states_seq = positions
    explicit = stored.read_events(conn, events_seq, limit) if emitted else []
    if explicit:
        events_seq = explicit[-1].seq
    states: list[EventRow] = []
    horizon = (time.time() if now is None else now) - ORPHAN_STATE_SECONDS
    for seq, ts, event in stored.read_state_events(conn, states_seq, limit, flow_runs,
                                                   task_runs):
        if event is None and ts > horizon and _unresolved(conn, seq, flow_runs, task_runs):
            break
        if event is not None:
            states.append(event)
        states_seq = seq
    merged = sorted(explicit + states, key=lambda e: (e.received, e.stream, e.seq))
    return merged, (events_seq, states_seq)


ORPHAN_STATE_SECONDS = 60.0


def _unresolved(conn: Any, seq: int, flow_runs: bool, task_runs: bool) -> bool:
    """Whether the state ``seq`` belongs to no run recorded yet (rather than to a run of a
    kind the reader did not ask for)."""
    run_id = conn.execute("SELECT run_id FROM state_history WHERE seq = ?", (seq,)).fetchone()[0]
    for table in ("flow_runs", "task_runs"):
        if conn.execute(f"SELECT 1 FROM {table} WHERE id = ?", (run_id,)).fetchone():
            return False
    return True


def stream(name_filter: str | None = None, poll_interval: float = 0.5,
           stop: Callable[[], bool] | None = None,
           from_positions: Positions | None = None) -> Iterator[EventRow]:
    """Events as they are recorded (from now, or ``from_positions``), until ``stop()``."""
    from fluvial.events._labels import canonical_name
    from fluvial.events._matching import name_matches
    from fluvial.store.connection import open_database
    from fluvial.store.events import latest_positions

    pattern = canonical_name(name_filter) if name_filter else None
    conn = open_database()
    try:
        positions = from_positions or latest_positions(conn)
        while stop is None or not stop():
            batch, positions = read_since(conn, positions)
            for event in batch:
                if pattern is None or name_matches(pattern, event.event):
                    yield event
            if not batch:
                time.sleep(poll_interval)
    finally:
        conn.close()


def cleanup(retention_days: float | None = None, now: float | None = None) -> int:
    """Delete events older than the retention (default ``FLUVIAL_EVENTS_RETENTION_DAYS``)."""
    from fluvial import settings
    from fluvial.store.connection import open_database, transaction
    from fluvial.store.events import cleanup_events

    days = settings.get().events_retention_days if retention_days is None else retention_days
    cutoff = (time.time() if now is None else now) - days * 86400
    conn = open_database()
    try:
        with transaction(conn):
            return cleanup_events(conn, cutoff)
    finally:
        conn.close()
