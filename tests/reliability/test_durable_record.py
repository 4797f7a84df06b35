"""The run record is durable and true (issue 16, item 5): a flow run's final state is
committed before the flow call returns; the task-run backlog is written before the
process ends — at a clean exit, on SIGTERM and on SIGINT; a backlog the database will
not take (server stopped, disk full) is kept in a spill journal and written later,
never dropped; a flow run's row is written before any of its task runs."""

from __future__ import annotations

import os
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import pytest

DRIVER = '''
import faulthandler, os, signal, sys, time
from fluvial import flow, task

faulthandler.register(signal.SIGUSR1, all_threads=True)  # the test's view of a hang

@task
def noop(i):
    return i

@flow
def many(n: int):
    noop.map(range(n))

if __name__ == "__main__":
    n = int(sys.argv[1])
    state = many(n, return_state=True)
    print("returned", state.run_id, time.time(), flush=True)
    time.sleep(600)
'''


def _counts(db: Path, run_id: str) -> tuple[int, str | None]:
    conn = sqlite3.connect(db)
    try:
        tasks = conn.execute("SELECT count(*) FROM task_runs WHERE flow_run_id = ?",
                             (run_id,)).fetchone()[0]
        row = conn.execute("SELECT state_name FROM flow_runs WHERE id = ?", (run_id,)).fetchone()
    finally:
        conn.close()
    return tasks, row[0] if row else None


def _where_it_hangs(proc: subprocess.Popen) -> str:
    """What a driver that does not end is doing: its signal masks (is the signal ignored
    or blocked?), its children, and every thread's stack (faulthandler, on SIGUSR1)."""
    lines = []
    try:
        status = Path(f"/proc/{proc.pid}/status").read_text().splitlines()
        lines += [line for line in status if line.startswith(("SigBlk", "SigIgn", "SigCgt"))]
        children = Path(f"/proc/{proc.pid}/task/{proc.pid}/children").read_text().split()
        lines += [f"child {c}: " + Path(f"/proc/{c}/cmdline").read_text().replace("\0", " ")[:120]
                  for c in children]
    except OSError as exc:
        lines.append(f"(no /proc view: {exc})")
    proc.send_signal(signal.SIGUSR1)
    time.sleep(1)
    proc.kill()
    _, err = proc.communicate(timeout=30)
    return "\n".join(lines) + "\n" + (err or "")[-6000:]


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGINT])
def test_a_signal_after_the_flow_returned_loses_no_task_run(sig, tmp_path: Path,
                                                           fluvial_home: str):
    n = 20_000
    script = tmp_path / "driver.py"
    script.write_text(DRIVER)
    env = {**os.environ, "FLUVIAL_HOME": fluvial_home, "FLUVIAL_PROGRESS": "off"}
    proc = subprocess.Popen([sys.executable, str(script), str(n)], env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        assert proc.stdout is not None
        line = proc.stdout.readline().split()
        assert line and line[0] == "returned", proc.stderr.read() if proc.stderr else ""
        run_id = line[1]
        db = Path(fluvial_home) / "fluvial.db"
        # the final state is committed before the call returned
        assert _counts(db, run_id)[1] == "Completed"
        proc.send_signal(sig)
        try:  # (well inside the test's own 120 s timeout, so that the view below is taken)
            proc.wait(60)
        except subprocess.TimeoutExpired:
            pytest.fail(f"the driver did not end within 60 s of {sig.name}:\n"
                        + _where_it_hangs(proc))
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    assert proc.returncode in (-sig, 128 + sig, 1), proc.returncode
    assert _counts(db, run_id) == (n, "Completed")


def test_a_clean_exit_with_a_long_backlog_shows_progress(tmp_path: Path, fluvial_home: str):
    script = tmp_path / "driver.py"
    script.write_text(DRIVER.replace("time.sleep(600)", "pass"))
    env = {**os.environ, "FLUVIAL_HOME": fluvial_home, "FLUVIAL_PROGRESS": "off"}
    done = subprocess.run([sys.executable, str(script), "20000"], env=env,
                          capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr
    run_id = done.stdout.split()[1]
    assert _counts(Path(fluvial_home) / "fluvial.db", run_id) == (20_000, "Completed")
