"""Smoke test of the benchmark harness: ``python -m benchmarks threads --quick`` with tiny
sizes runs, and writes a JSON file with the expected rows and positive numbers.

It asserts nothing about speed: benchmarks report numbers, tests assert behaviour.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def test_threads_group_writes_expected_rows(tmp_path: Path) -> None:
    n, chain = 50, 10
    out = tmp_path / "results"
    proc = subprocess.run(
        [sys.executable, "-m", "benchmarks", "threads", "--quick", "--n", str(n),
         "--chain", str(chain), "--repeat", "1", "--out", str(out)],
        cwd=ROOT, capture_output=True, text=True, timeout=110,
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "| group | benchmark | fluvial | raw | ratio | target | ok? |" in proc.stdout

    data = json.loads((out / "latest.json").read_text())
    rows = {row["name"]: row for row in data["rows"]}
    assert set(rows) == {
        f"map {n} no-ops",
        f"map {n} no-ops, store on vs off",
        f"store backlog flush after map {n}",
        f"chain of {chain}",
        f"peak memory, map {n}",
        "per-run cost: build the run (driver: TaskRun + prepare)",
        "per-run cost: hand it to the runner (submit_many: future, ready queue)",
        "per-run cost: run it (execute: task engine, settle future, tracker)",
        "per-run cost: read its result (future.result())",
        "per-run cost: all stages vs the raw pool per item",
    }
    for row in data["rows"]:
        assert row["group"] == "threads"
        assert row["value"] >= 0
    for name in (f"map {n} no-ops", f"map {n} no-ops, store on vs off", f"chain of {chain}",
                 f"peak memory, map {n}"):
        row = rows[name]
        assert row["value"] > 0 and row["raw"] > 0 and row["ratio"] > 0, row
    assert rows[f"map {n} no-ops"]["unit"] == "tasks/s"
    assert rows[f"peak memory, map {n}"]["unit"] == "MB"
    assert (out / "latest.md").read_text().count(f"| threads | map {n} no-ops |") == 1
