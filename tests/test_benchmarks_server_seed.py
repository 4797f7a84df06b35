"""The server benchmark's bulk seed writes a record the server reads as it reads a real
one: the counts asked for, one run holding the big block of task runs, the newest runs
left running, logs on the task runs — through the store's own row helpers, so a schema
change the helpers follow reaches the seed too (this test is where it shows if not)."""

from __future__ import annotations

from benchmarks.harness import throwaway_home
from benchmarks.server_seed import LIVE, _task_counts, seed


def test_task_counts_give_the_big_run_its_block() -> None:
    counts = _task_counts(10, 1_000, big_index=3, big_tasks=100)
    assert sum(counts) == 1_000 and counts[3] == 100
    assert {c for i, c in enumerate(counts) if i != 3} == {100}
    assert _task_counts(4, 10, big_index=0, big_tasks=50) == [10, 0, 0, 0]


def test_seed_writes_a_record_the_server_reads() -> None:
    from fluvial.server import queries
    from fluvial.store.connection import open_database

    with throwaway_home():
        seeded = seed(60, 2_000, 9_000, big_run_tasks=500)
        conn = open_database()
        try:
            counts = [conn.execute(f"SELECT COUNT(*) FROM {t}").fetchone()[0]
                      for t in ("flow_runs", "task_runs", "logs", "state_history")]
            assert counts == [60, 2_000, 9_000, 60]
            assert seeded.states == 60 and seeded.seconds > 0 and seeded.db_bytes > 100_000

            newest = queries.flow_runs(conn, limit=1 + LIVE).items
            assert newest[0]["id"] == seeded.big_run  # the big run is the newest
            assert [r["id"] for r in newest[1:]] == seeded.running
            assert {r["state_type"] for r in newest[1:]} == {"RUNNING"}

            summary = queries.task_run_summary(conn, seeded.big_run)
            assert sum(t["total"] for t in summary) == 500
            page = queries.task_runs(conn, seeded.big_run, limit=200)
            assert len(page.items) == 200 and page.next_cursor is not None
            assert queries.run_states(conn, seeded.big_run)[-1]["type"] == "COMPLETED"
            lines = queries.logs(conn, seeded.big_run, limit=100)
            assert len(lines) == 100 and lines[0]["message"].startswith("processed row")
            # every task run got its log lines (9 000 over 2 000: four or five each)
            per_task = conn.execute("SELECT MIN(c), MAX(c) FROM (SELECT COUNT(*) AS c "
                                    "FROM logs GROUP BY run_id)").fetchone()
            assert tuple(per_task) == (4, 5)
            failed = queries.flow_runs(conn, state="FAILED", limit=500).items
            assert failed and all(r["state_type"] == "FAILED" for r in failed)
        finally:
            conn.close()
