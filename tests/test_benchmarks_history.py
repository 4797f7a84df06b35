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
from benchmarks.report import draw, figure, pairs, ratio_bounds

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
    assert width >= 1600 and height >= 500
    assert png.stat().st_size > 20_000  # bars, labels and lines, not an empty canvas

    # no history and no side-by-side rows: still a picture, saying so
    lonely = append_run(tmp_path / "h2.jsonl", [_rows(1)[2]], machine_info=HERE)
    empty = draw(lonely, [lonely], tmp_path / "empty.png")
    assert _png_size(empty)[0] >= 1600
    assert empty.stat().st_size < png.stat().st_size
    texts = _texts(figure(lonely, [lonely]))
    assert "no side-by-side rows in this run" in texts
    assert "no ratio history yet on this machine" in texts


def _texts(fig: Any) -> dict[str, Any]:
    """Every non-empty text drawn in a figure (titles, labels, notes, tick labels)."""
    from matplotlib.text import Text

    found = {t.get_text(): t for t in fig.findobj(Text) if t.get_text()}
    for ax in fig.get_axes():
        for label in [*ax.get_xticklabels(), *ax.get_yticklabels()]:
            found.setdefault(label.get_text(), label)
    return found


def _axes(fig: Any, title: str) -> Any:
    return next(ax for ax in fig.get_axes() if ax.get_title(loc="left") == title)


def test_target_ratio_bounds_are_read_from_the_row() -> None:
    assert ratio_bounds(">= 0.8x raw") == (0.8, None)
    assert ratio_bounds(">= 0.9x off") == (0.9, None)
    assert ratio_bounds("<= 2x raw") == (None, 2.0)
    assert ratio_bounds(">= 0.9") == (0.9, None)
    assert ratio_bounds("< 1.2x") == (None, 1.2)
    assert ratio_bounds("within 10%") == (pytest.approx(0.9), pytest.approx(1.1))
    assert ratio_bounds("runs == fire times, 0 duplicates") == (None, None)
    assert ratio_bounds(None) == (None, None)


def test_report_writes_each_pair_its_ratio_and_target_and_marks_a_miss() -> None:
    from matplotlib.colors import to_hex

    rows = _rows(0.4)  # map: 0.4x misses ">= 0.5x raw"; memory 0.5x meets "<= 2x raw"
    rows.insert(0, {"group": "threads", "name": "map 10 no-ops", "value": 900.0,
                    "raw": 1_000.0, "ratio": 0.9, "unit": "tasks/s"})  # no target
    rows[1]["raw"] = 2_000_000.0  # the tasks/s panel's values now span four decades
    rows.append({"group": "store", "name": "writer commits", "value": 90_000.0,
                 "unit": "task runs/s", "target": ">= 100000", "ok": False})
    entry = {"commit": "abc1234def", "date": "2026-11-29T08:00:00Z", "machine": HERE,
             "smoke": False, "rows": rows}
    assert [(p.group, p.name) for p in pairs(rows)] == [
        ("threads", "map 10 no-ops"), ("threads", "map 100000 no-ops"),
        ("threads", "peak memory, map 100000")]  # the run's order; no raw, no pair
    fig = figure(entry, [entry])
    texts = _texts(fig)

    missed = texts["0.40x  MISSED\ntarget >= 0.5x raw"]
    assert to_hex(missed.get_color()) == "#c62828" and missed.get_fontweight() == "bold"
    met = texts["0.50x  met\ntarget <= 2x raw"]
    assert to_hex(met.get_color()) == "#2e7d32"
    assert "0.90x\nno target" in texts
    # a miss with no raw side is listed under the title, with the count of targets
    assert "3 targets: 1 met, 2 missed" in texts
    assert "MISSED  store: writer commits = 90,000 task runs/s (target >= 100000)" in texts

    # one panel per group and unit; log where its values span decades, else linear
    rates = _axes(fig, "threads (tasks/s) (log scale)")
    assert rates.get_xscale() == "log"
    names = {label.get_text(): label for label in rates.get_yticklabels()}
    assert to_hex(names["map 100000 no-ops"].get_color()) == "#c62828"  # its name too
    assert to_hex(names["map 10 no-ops"].get_color()) == "#000000"
    assert _axes(fig, "threads (MB)").get_xscale() == "linear"
    # the missed target is drawn where it lies: raw x 0.5
    assert any(list(line.get_xdata()) == [1_000_000.0] * 2 for line in rates.get_lines())
    # the fluvial bar of the miss is red and hatched, the raw one is not
    bars = [patch for patch in rates.patches if patch.get_height() > 0]
    red = [b for b in bars if to_hex(b.get_facecolor()) == "#c62828"]
    assert len(red) == 1 and red[0].get_hatch() == "//" and red[0].get_width() == 20_000.0


def test_report_history_draws_one_line_per_ratio_row_over_commits(tmp_path: Path) -> None:
    path = tmp_path / "history.jsonl"
    for ratio in (0.7, 0.4, 0.9):
        append_run(path, _rows(ratio), machine_info=HERE, root=ROOT)
    append_run(path, _rows(5.0), machine_info=THERE)  # another machine: not drawn
    history = load_history(path)
    fig = figure(history[2], history)
    ax = _axes(fig, "threads")
    lines = {line.get_label(): line for line in ax.get_lines()
             if not line.get_label().startswith("_")}
    assert set(lines) == {"map 100000 no-ops", "peak memory, map 100000"}
    assert list(lines["map 100000 no-ops"].get_ydata()) == [0.7, 0.4, 0.9]
    commit = git_commit(ROOT)["commit"][:7]
    labels = [t.get_text() for t in ax.get_xticklabels()]
    assert len(labels) == 3 and all(label.startswith(commit) for label in labels)
    # the run that missed its target (0.4 < 0.5) is ringed in red, at its point
    rings = [line for line in ax.get_lines() if line.get_marker() == "o"
             and line.get_linestyle() == "None"]
    assert [(list(r.get_xdata()), list(r.get_ydata())) for r in rings] == [([1], [0.4])]


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
