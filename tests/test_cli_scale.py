"""``runs inspect`` on a run of a million task runs pages and summarises (issue 16, item 14).

A flow run of 1 000 000 task runs (bulk-inserted into a real SQLite store: 10 of them
failed, two tasks) is inspected by the real command in its own process: the output is
the summary (counts per task and state, failures first) and a bounded page of task runs
with the failures first; the process's peak memory stays within a fixed margin of a
command that reads nothing. ``--all`` streams every task run of a 100 000-run flow run
within the same margin, and ``-o json`` pages the same way.
"""

from __future__ import annotations

import json
import os
import sqlite3
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

BIG, FAILED, OTHER = 1_000_000, 10, 100_000
MARGIN_KB = 80 * 1024  # memory a command may use beyond one that reads nothing
pytestmark = pytest.mark.timeout(400)  # seeding a million rows on a loaded 2-core box

RSS_WRAPPER = (
    "import atexit, resource, runpy, sys\n"
    "out = sys.argv[1]\n"
    "atexit.register(lambda: open(out, 'w').write(\n"
    "    str(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss)))\n"
    "sys.argv = ['fluvial', *sys.argv[2:]]\n"
    "runpy.run_module('fluvial.cli', run_name='__main__')\n"
)


def _seed_run(conn: sqlite3.Connection, run_id: str, n: int, failed: int, t0: float) -> None:
    conn.execute(
        "INSERT INTO flow_runs (id, name, flow_name, parameters, tags, created, pid, hostname,"
        " state_type, state_name, state_message, start_time, end_time)"
        " VALUES (?, 'huge-run', 'etl', '{}', '[]', ?, 1, 'seed', 'FAILED', 'Failed',"
        " ?, ?, ?)", (run_id, t0, f"{failed} task runs failed", t0, t0 + n / 1000))
    conn.execute("INSERT INTO state_history (run_id, type, name, ts) VALUES (?, 'RUNNING',"
                 " 'Running', ?)", (run_id, t0))

    def rows() -> Iterator[tuple]:
        for i in range(n):
            bad = i % (n // failed) == n // failed - 1 if failed else False
            key = "jobs.etl.extract" if i % 5 else "jobs.etl.load"
            yield (f"{run_id[:24]}{i:012x}", run_id,
                   f"row-{i}", key, "[]", t0 + i / 1000,
                   "FAILED" if bad else "COMPLETED", "Failed" if bad else "Completed",
                   f"ValueError: bad row {i}" if bad else None, t0 + i / 1000,
                   t0 + i / 1000 + 0.25)

    conn.executemany(
        "INSERT INTO task_runs (id, flow_run_id, name, task_key, tags, created, state_type,"
        " state_name, state_message, start_time, end_time) VALUES (?,?,?,?,?,?,?,?,?,?,?)",
        rows())


@pytest.fixture(scope="module")
def big_store(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, str, str]:
    home = tmp_path_factory.mktemp("scale") / "home"
    env = {**os.environ, "FLUVIAL_HOME": str(home)}
    subprocess.run([sys.executable, "-m", "fluvial.cli", "runs", "ls"], env=env, check=True,
                   capture_output=True)  # creates and migrates the store
    big, other = str(uuid.uuid4()), str(uuid.uuid4())
    conn = sqlite3.connect(home / "fluvial.db", isolation_level=None)
    started = time.perf_counter()
    conn.execute("BEGIN")
    _seed_run(conn, big, BIG, FAILED, 1_700_000_000.0)
    _seed_run(conn, other, OTHER, 0, 1_700_100_000.0)
    conn.execute("COMMIT")
    conn.close()
    print(f"seeded {BIG + OTHER} task runs in {time.perf_counter() - started:.1f}s")
    return home, big, other


def _fluvial(home: Path, tmp_path: Path, *args: str, stdout: Path | None = None
             ) -> tuple[subprocess.CompletedProcess, int]:
    """Run the command; its result and its peak RSS in KiB."""
    rss = tmp_path / f"rss-{time.monotonic_ns()}"
    env = {**os.environ, "FLUVIAL_HOME": str(home), "COLUMNS": "160"}
    command = [sys.executable, "-c", RSS_WRAPPER, str(rss), *args]
    if stdout is None:
        out = subprocess.run(command, env=env, capture_output=True, text=True, timeout=300)
    else:
        with stdout.open("w") as fh:
            out = subprocess.run(command, env=env, stdout=fh, stderr=subprocess.PIPE,
                                 text=True, timeout=600)
    return out, int(rss.read_text())


def test_inspect_a_million_task_runs_is_a_bounded_summary(big_store, tmp_path: Path) -> None:
    home, big, _ = big_store
    _, baseline = _fluvial(home, tmp_path, "runs", "ls")
    started = time.perf_counter()
    out, peak = _fluvial(home, tmp_path, "runs", "inspect", big[:8])
    elapsed = time.perf_counter() - started
    assert out.returncode == 0, out.stderr
    lines = out.stdout.splitlines()
    assert len(lines) < 120, f"{len(lines)} lines of output"
    text = out.stdout
    assert f"Task runs (50 of {BIG} listed, failures first" in text
    assert "799990" in text and "200000" in text and "jobs.etl.extract" in text
    assert f"Failures ({FAILED})" in text and "ValueError: bad row 99999" in text
    listing = lines[lines.index(next(x for x in lines if x.startswith("task run"))) + 1:]
    assert [row.split()[1] for row in listing[:FAILED]] == ["Failed"] * FAILED, listing[:12]
    assert listing[FAILED].split()[1] == "Completed"
    assert peak - baseline < MARGIN_KB, f"peak {peak} KiB vs {baseline} KiB reading nothing"
    print(f"inspect of {BIG} task runs: {elapsed:.1f}s, peak {peak // 1024} MiB "
          f"(baseline {baseline // 1024} MiB)")

    limited, _ = _fluvial(home, tmp_path, "runs", "inspect", big, "--limit", "3")
    assert limited.returncode == 0 and f"Task runs (3 of {BIG} listed" in limited.stdout
    assert len(limited.stdout.splitlines()) < 60


def test_inspect_all_streams(big_store, tmp_path: Path) -> None:
    home, _, other = big_store
    _, baseline = _fluvial(home, tmp_path, "runs", "ls")
    listing = tmp_path / "all.txt"
    out, peak = _fluvial(home, tmp_path, "runs", "inspect", other, "--all", stdout=listing)
    assert out.returncode == 0, out.stderr
    with listing.open() as fh:
        rows = sum(1 for line in fh if line.startswith("row-"))
    assert rows == OTHER
    assert peak - baseline < MARGIN_KB, f"--all peaked at {peak} KiB vs {baseline} KiB"


def test_inspect_json_pages_too(big_store, tmp_path: Path) -> None:
    home, big, other = big_store
    out, _ = _fluvial(home, tmp_path, "runs", "inspect", big, "-o", "json", "--limit", "12")
    assert out.returncode == 0, out.stderr
    detail = json.loads(out.stdout)
    assert detail["task_runs_total"] == BIG and detail["task_runs_shown"] == 12
    assert [t["state_type"] for t in detail["task_runs"]] == ["FAILED"] * 10 + ["COMPLETED"] * 2
    assert detail["task_run_counts"][0]["state_type"] == "FAILED"
    listing = tmp_path / "all.json"
    out, _ = _fluvial(home, tmp_path, "runs", "inspect", other, "-o", "json", "--all",
                      stdout=listing)
    assert out.returncode == 0, out.stderr
    assert len(json.loads(listing.read_text())["task_runs"]) == OTHER
