"""The benchmark history (``history.jsonl``), the change against the previous run on the
same machine with regressions flagged, and the picture (``latest.png``).

Real files in tmp dirs; the end-to-end test runs ``python -m benchmarks`` twice with tiny
sizes and reads what it wrote.
"""

from __future__ import annotations

import json
import struct
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from benchmarks.history import (
    append_run,
    compare,
    git_commit,
    higher_is_better,
    load_history,
    machine,
    render_changes,
)
from benchmarks.report import draw

ROOT = Path(__file__).resolve().parent.parent
HERE = {"cores": 2, "cpu": "Test CPU 9000", "hostname": "a", "python": "3.11"}
THERE = {"cores": 64, "cpu": "Other CPU", "hostname": "b", "python": "3.11"}


def _rows(map_ratio: float, memory_ratio: float = 0.5, **extra: Any) -> list[dict[str, Any]]:
    return [
        {"group": "threads", "name": "map 100000 no-ops", "value": 50_000.0 * map_ratio,
         "unit": "tasks/s", "raw": 50_000.0, "ratio": map_ratio, "target": ">= 0.5x raw",
         "ok": map_ratio >= 0.5, **extra},
        {"group": "threads", "name": "peak memory, map 100000", "value": 100 * memory_ratio,
         "unit": "MB", "raw": 100.0, "ratio": memory_ratio, "target": "<= 2x raw",
         "ok": memory_ratio <= 2},
        {"group": "startup", "name": "import fluvial", "value": 0.07, "unit": "s"},
    ]


def _png_size(path: Path) -> tuple[int, int]:
    data = path.read_bytes()
    assert data[:8] == b"\x89PNG\r\n\x1a\n", "not a PNG"
    assert data[12:16] == b"IHDR"
    width, height = struct.unpack(">II", data[16:24])
    return width, height


def test_machine_and_commit_are_recorded(tmp_path: Path) -> None:
    info = machine()
    assert info["cores"] >= 1 and info["cpu"] and info["python"].startswith("3.")
    commit = git_commit(ROOT)
    expected = subprocess.run(["git", "-C", str(ROOT), "rev-parse", "HEAD"], text=True,
                              capture_output=True, check=True).stdout.strip()
    assert expected.startswith(commit["commit"]) and len(commit["commit"]) >= 7
    assert isinstance(commit["dirty"], bool)
    # not a repository: still a record, the commit says it is unknown
    assert git_commit(tmp_path)["commit"] == "unknown"


def test_runs_append_one_json_line_each(tmp_path: Path) -> None:
    path = tmp_path / "deep" / "history.jsonl"
    first = append_run(path, _rows(0.8), groups=["threads"], root=ROOT, machine_info=HERE,
                       date="2026-11-29T05:00:00Z")
    append_run(path, _rows(0.9), groups=["threads"], root=ROOT, machine_info=HERE)
    lines = path.read_text().splitlines()
    assert len(lines) == 2
    stored = json.loads(lines[0])
    assert stored == first
    assert stored["machine"] == HERE and stored["date"] == "2026-11-29T05:00:00Z"
    assert stored["commit"] == git_commit(ROOT)["commit"] and stored["groups"] == ["threads"]
    assert stored["smoke"] is False and stored["rows"][0]["ratio"] == 0.8
    # a line cut short by a killed run is skipped, the others still load
    with path.open("a") as out:
        out.write('{"commit": "abc", "rows": [\n')
    append_run(path, _rows(1.0), machine_info=HERE)
    assert [e["rows"][0]["ratio"] for e in load_history(path)] == [0.8, 0.9, 1.0]
    assert load_history(tmp_path / "missing.jsonl") == []


def test_which_way_is_better() -> None:
    assert higher_is_better({"unit": "tasks/s"})
    assert higher_is_better({"unit": "events/s"})
    assert not higher_is_better({"unit": "MB"})
    assert not higher_is_better({"unit": "ms"})
    assert not higher_is_better({"unit": "s"})
    assert not higher_is_better({"unit": "tasks/s", "target": "<= 1.1x raw"})
    assert higher_is_better({"unit": "MB", "target": ">= 0.9"})
    assert not higher_is_better({"unit": "tasks/s", "better": "lower"})


def test_a_ratio_more_than_ten_percent_worse_is_a_regression(tmp_path: Path) -> None:
    path = tmp_path / "history.jsonl"
    append_run(path, _rows(1.00, memory_ratio=0.50), machine_info=HERE)
    earlier = load_history(path)
    # throughput ratio 11 % lower: worse; memory ratio 11 % higher: worse too
    latest = append_run(path, _rows(0.89, memory_ratio=0.555), machine_info=HERE)
    changes = {c.name: c for c in compare(earlier, latest)}
    assert set(changes) == {"map 100000 no-ops", "peak memory, map 100000", "import fluvial"}
    assert changes["map 100000 no-ops"].regression
    assert changes["map 100000 no-ops"].ratio_change == pytest.approx(-0.11)
    assert changes["map 100000 no-ops"].value_change == pytest.approx(-0.11)
    assert changes["peak memory, map 100000"].regression
    assert not changes["import fluvial"].regression  # no ratio: reported, never flagged
    text = render_changes(changes.values())
    assert text.count("**REGRESSION**") == 2
    assert "2 ratio(s) regressed by more than 10%" in text
    assert "threads / map 100000 no-ops" in text


def test_within_ten_percent_or_better_is_not_a_regression(tmp_path: Path) -> None:
    path = tmp_path / "history.jsonl"
    append_run(path, _rows(1.00, memory_ratio=0.50), machine_info=HERE)
    earlier = load_history(path)
    small = append_run(path, _rows(0.91, memory_ratio=0.545), machine_info=HERE)
    assert not any(c.regression for c in compare(earlier, small))
    better = append_run(path, _rows(1.5, memory_ratio=0.2), machine_info=HERE)
    changes = compare(load_history(path)[:-1], better)
    assert changes and not any(c.regression for c in changes)
    assert "no ratio regressed by more than 10%" in render_changes(changes)


def test_only_the_same_machine_and_kind_of_run_are_compared(tmp_path: Path) -> None:
    path = tmp_path / "history.jsonl"
    append_run(path, _rows(1.0), machine_info=HERE)  # the one to compare with
    append_run(path, _rows(3.0), machine_info=THERE)  # faster machine: ignored
    append_run(path, _rows(2.0), machine_info=HERE, smoke=True)  # smoke run: ignored
    append_run(path, [_rows(9.0)[2]], machine_info=HERE)  # a later run without that row
    earlier = load_history(path)
    latest = append_run(path, _rows(0.5), machine_info=HERE)
    changes = {c.name: c for c in compare(earlier, latest)}
    # the map row is compared with the most recent run on HERE that measured it
    assert changes["map 100000 no-ops"].previous_ratio == 1.0
    assert changes["map 100000 no-ops"].regression
    # nothing measured before on another machine: no comparison at all
    elsewhere = {**_rows(1.0)[0], "name": "new row"}
    other = append_run(path, [elsewhere], machine_info={**HERE, "cores": 4})
    assert compare(load_history(path)[:-1], other) == []
    assert render_changes([]) == "No earlier run on this machine to compare with."


def test_report_draws_a_png_of_this_run_and_the_history(tmp_path: Path) -> None:
    path = tmp_path / "history.jsonl"
    for ratio in (0.7, 0.8, 0.75, 0.9):
        append_run(path, _rows(ratio), machine_info=HERE, root=ROOT)
    append_run(path, _rows(5.0), machine_info=THERE)
    history = load_history(path)
    png = draw(history[-2], history, tmp_path / "out" / "latest.png")
    assert png == tmp_path / "out" / "latest.png"
    width, height = _png_size(png)
    assert width >= 800 and height >= 600
    assert png.stat().st_size > 20_000  # bars, labels and lines, not an empty canvas

    # no history and no side-by-side rows: still a picture, saying so
    lonely = append_run(tmp_path / "h2.jsonl", [_rows(1)[2]], machine_info=HERE)
    empty = draw(lonely, [lonely], tmp_path / "empty.png")
    assert _png_size(empty)[0] >= 800
    assert empty.stat().st_size < png.stat().st_size


@pytest.mark.timeout(300)  # three benchmark processes; slow when the machine is busy
def test_make_bench_appends_compares_and_draws(tmp_path: Path) -> None:
    out = tmp_path / "results"
    args = [sys.executable, "-m", "benchmarks", "threads", "--n", "20", "--chain", "5",
            "--repeat", "1", "--out", str(out)]
    outputs = []
    for _ in range(2):
        proc = subprocess.run(args, cwd=ROOT, capture_output=True, text=True, timeout=110)
        assert proc.returncode == 0, proc.stdout + proc.stderr
        outputs.append(proc.stdout)
    assert "No earlier run on this machine to compare with." in outputs[0]
    assert "Compared with the previous run(s) on this machine" in outputs[1]
    history = load_history(out / "history.jsonl")
    assert len(history) == 2
    assert history[0]["commit"] == git_commit(ROOT)["commit"]
    assert history[0]["machine"]["cores"] == machine()["cores"]
    assert history[0]["smoke"] is True and history[0]["groups"] == ["threads"]
    assert {r["name"] for r in history[1]["rows"]} == {
        r["name"] for r in json.loads((out / "latest.json").read_text())["rows"]}
    assert _png_size(out / "latest.png")[0] >= 800

    proc = subprocess.run([*args, "--no-history"], cwd=ROOT, capture_output=True,
                          text=True, timeout=110)
    assert proc.returncode == 0, proc.stderr
    assert len(load_history(out / "history.jsonl")) == 2
