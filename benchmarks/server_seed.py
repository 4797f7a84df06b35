"""A big run record written in bulk, for the server benchmarks: ``seed(F, T, L)``.

F flow runs (one final or running state each in ``state_history``), T task runs (one run
holds ``big_run_tasks`` of them, the others about T / F each) and L log lines spread over
the task runs (five each at full size), in the database of the current ``FLUVIAL_HOME``.

Rows go through the store's own helpers (:mod:`fluvial.store.rows`, ``executemany`` in
chunks of 200 000, one transaction each), so the seed follows the schema the writer
writes. It is fast because of the order it writes in, not because it bypasses anything:
the ids are ordinary random UUIDs, but they are generated first, sorted, and handed out
in order — flow runs by id, each flow run's task runs as one block of ascending ids,
each task run's log lines together — so every index (the primary keys,
``(flow_run_id, created)``, ``(run_id, ts)``) is appended to rather than written at
random. The seeding connection also runs with ``synchronous = OFF`` and a 512 MB page
cache: it is a throwaway database.

The newest flow runs (after the big one) are left RUNNING, so a benchmark can complete
them while the runs list is open. ``python -m benchmarks.server_seed F T L`` seeds the
configured database and prints what it wrote.
"""

from __future__ import annotations

import json
import random
import sys
import time
import uuid
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any

__all__ = ["FLOWS", "Seeded", "seed"]

FLOWS = ["etl", "report", "sync", "train", "score"]
STATES = ["COMPLETED"] * 8 + ["FAILED", "CANCELLED"]
CHUNK = 200_000
LIVE = 25  # the newest flow runs, left RUNNING


@dataclass
class Seeded:
    """What :func:`seed` wrote."""

    big_run: str
    running: list[str] = field(default_factory=list)  # newest first
    states: int = 0
    seconds: float = 0.0
    db_bytes: int = 0


def _sorted_ids(n: int) -> list[str]:
    return sorted(str(uuid.uuid4()) for _ in range(n))


def _chunks(rows: Iterator[tuple[Any, ...]], size: int = CHUNK) -> Iterator[list[tuple[Any, ...]]]:
    chunk: list[tuple[Any, ...]] = []
    for item in rows:
        chunk.append(item)
        if len(chunk) >= size:
            yield chunk
            chunk = []
    if chunk:
        yield chunk


def _task_counts(flow_runs: int, task_runs: int, big_index: int, big_tasks: int) -> list[int]:
    """How many task runs each flow run (in id order) gets: ``big_tasks`` for the big one."""
    big_tasks = min(big_tasks, task_runs)
    rest, others = task_runs - big_tasks, max(1, flow_runs - 1)
    base, extra = divmod(rest, others)
    counts, k = [], 0
    for i in range(flow_runs):
        if i == big_index:
            counts.append(big_tasks)
            continue
        counts.append(base + (1 if k < extra else 0))
        k += 1
    return counts


def seed(flow_runs: int, task_runs: int, logs: int, big_run_tasks: int = 10_000,
         *, seed_value: int = 7) -> Seeded:
    """Write the record (see the module docstring) and return what was written."""
    from fluvial.store import rows
    from fluvial.store.connection import open_database, store_path, transaction

    if flow_runs < 2 or task_runs < 1:
        raise ValueError("seed needs at least 2 flow runs and 1 task run")
    started = time.perf_counter()
    rng = random.Random(seed_value)
    now = time.time()
    flow_ids = _sorted_ids(flow_runs)
    # creation order is a random permutation of the id order; rank F-1 is the newest
    ranks = list(range(flow_runs))
    rng.shuffle(ranks)
    by_rank = sorted(range(flow_runs), key=ranks.__getitem__)
    big_index = by_rank[-1]
    live = set(by_rank[-1 - LIVE:-1])
    states = [("RUNNING" if i in live else rng.choice(STATES)) for i in range(flow_runs)]
    created = [now - 60 - (flow_runs - 1 - ranks[i]) * 0.8 for i in range(flow_runs)]
    states[big_index] = "COMPLETED"

    conn = open_database()
    conn.execute("PRAGMA synchronous = OFF")
    conn.execute("PRAGMA cache_size = -524288")
    try:
        def flow_rows() -> Iterator[tuple[Any, ...]]:
            for i, fid in enumerate(flow_ids):
                state, start = states[i], created[i] + 0.1
                end = None if state == "RUNNING" else start + 0.5
                yield (fid, f"run-{ranks[i]}", FLOWS[ranks[i] % len(FLOWS)], "{}",
                       json.dumps(["bench"] if ranks[i] % 3 else []), None, created[i],
                       None, None, None,
                       state, state.title(), None, end or start, start, end, None)

        for chunk in _chunks(flow_rows()):
            with transaction(conn):
                rows.insert_flow_runs(conn, chunk)
                rows.insert_states(conn, [(r[0], r[10], r[11], None, r[13], None)
                                          for r in chunk])

        counts = _task_counts(flow_runs, task_runs, big_index, big_run_tasks)
        task_ids = _sorted_ids(sum(counts))

        def task_rows() -> Iterator[tuple[Any, ...]]:
            j = 0
            for i, fid in enumerate(flow_ids):
                base = created[i] + 0.2
                for k in range(counts[i]):
                    t = base + k * 1e-4
                    yield (task_ids[j], fid, f"step-{k % 7}-{k}", f"bench.step{k % 7}", "[]",
                           t, "COMPLETED", "Completed", None, t + 0.01, t, t + 0.01, None)
                    j += 1

        for chunk in _chunks(task_rows()):
            with transaction(conn):
                rows.insert_task_runs(conn, chunk)

        per_task, extra = divmod(logs, len(task_ids))

        def log_rows() -> Iterator[tuple[Any, ...]]:
            n = 0
            stamp = now - 30
            for j, tid in enumerate(task_ids):
                for _ in range(per_task + (1 if j < extra else 0)):
                    yield (tid, 20, f"processed row {n}", stamp)
                    n += 1

        for chunk in _chunks(log_rows()):
            with transaction(conn):
                rows.insert_logs(conn, chunk)
        conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    finally:
        conn.close()
    path = store_path()
    size = sum(p.stat().st_size for p in path.parent.glob(path.name + "*") if p.is_file())
    newest_first = sorted(live, key=ranks.__getitem__, reverse=True)
    return Seeded(big_run=flow_ids[big_index], running=[flow_ids[i] for i in newest_first],
                  states=flow_runs, seconds=time.perf_counter() - started, db_bytes=size)


def main(argv: Sequence[str] | None = None) -> int:
    args = [int(a.replace("_", "")) for a in (argv if argv is not None else sys.argv[1:])]
    if len(args) != 3:
        print("usage: python -m benchmarks.server_seed FLOW_RUNS TASK_RUNS LOG_LINES",
              file=sys.stderr)
        return 2
    result = seed(*args)
    print(json.dumps({"big_run": result.big_run, "seconds": round(result.seconds, 1),
                      "db_mb": round(result.db_bytes / 1e6)}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
