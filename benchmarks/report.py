"""The benchmark picture: ``benchmarks/results/latest.png``.

Two panels, drawn with matplotlib (the ``bench`` extra: a benchmark-only dependency,
imported here and nowhere in ``fluvial``):

- **fluvial vs raw, this run**: one horizontal bar per side-by-side row (those with a
  ``ratio``), grouped by runner/group, its length the ratio (fluvial / raw). The raw
  backend is the line at 1.0; a bar is green when its target is met, red when missed,
  grey when the row has no target; each bar is labelled with both numbers.
- **ratio history over commits**: the ratio of every row with a target, over the runs
  on the same machine and of the same kind (full or smoke) as this one, one point per
  run, labelled with the commit.

``python -m benchmarks.report [--out DIR]`` redraws it from ``latest.json`` and
``history.jsonl`` without running anything.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from benchmarks.harness import RESULTS_DIR
from benchmarks.history import load_history, machine_key

__all__ = ["draw", "main"]

_GREEN, _RED, _GREY, _RAW = "#2e7d32", "#c62828", "#9e9e9e", "#37474f"
_MAX_HISTORY = 30  # runs shown in the history panel (the most recent)


def _short(value: Any) -> str:
    if not isinstance(value, int | float) or isinstance(value, bool):
        return str(value)
    if abs(value) >= 1000:
        return f"{value:,.0f}"
    return f"{value:.3g}"


def _comparisons(rows: Sequence[dict[str, Any]]) -> list[dict[str, Any]]:
    return [r for r in rows if isinstance(r.get("ratio"), int | float)
            and not isinstance(r.get("ratio"), bool)]


def _series(history: Sequence[dict[str, Any]], latest: dict[str, Any]
            ) -> tuple[list[str], dict[str, list[float | None]]]:
    """Labels of the comparable runs (oldest first) and each targeted row's ratio in them."""
    runs = [e for e in history
            if machine_key(e) == machine_key(latest)
            and bool(e.get("smoke")) == bool(latest.get("smoke"))][-_MAX_HISTORY:]
    keys: list[tuple[str, str]] = []
    for entry in runs:
        for r in _comparisons(entry.get("rows", [])):
            key = (str(r.get("group")), str(r.get("name")))
            if r.get("target") and key not in keys:
                keys.append(key)
    series: dict[str, list[float | None]] = {}
    for group, name in keys:
        values: list[float | None] = []
        for entry in runs:
            match = next((r for r in entry.get("rows", [])
                          if (r.get("group"), r.get("name")) == (group, name)), None)
            ratio = None if match is None else match.get("ratio")
            values.append(float(ratio) if isinstance(ratio, int | float) else None)
        series[f"{group}: {name}"] = values
    labels = [f"{e.get('commit', '?')[:7]}{'+' if e.get('dirty') else ''}\n"
              f"{str(e.get('date', ''))[5:16].replace('T', ' ')}" for e in runs]
    return labels, series


def draw(latest: dict[str, Any], history: Sequence[dict[str, Any]], path: Path) -> Path:
    """Draw the two panels for the run ``latest`` (a history entry) into the PNG ``path``."""
    import matplotlib

    matplotlib.use("Agg")  # files only, no display
    import matplotlib.pyplot as plt

    rows = _comparisons(latest.get("rows", []))
    rows.sort(key=lambda r: (str(r.get("group")), str(r.get("name"))))
    labels, series = _series(history, latest)
    bar_height = max(2.5, 0.42 * len(rows) + 1.5)
    fig, (bars, lines) = plt.subplots(
        2, 1, figsize=(13, bar_height + 5.5),
        gridspec_kw={"height_ratios": [bar_height, 5.0]})
    machine = latest.get("machine") or {}
    fig.suptitle(f"fluvial benchmarks — {latest.get('commit', '?')}"
                 f"{' (dirty)' if latest.get('dirty') else ''}, {latest.get('date', '')}, "
                 f"{machine.get('cores', '?')} cores, {machine.get('cpu', '?')}"
                 f"{', smoke run' if latest.get('smoke') else ''}", fontsize=11)

    # -- fluvial vs raw, this run
    if rows:
        ratios = [float(r["ratio"]) for r in rows]
        colours = [_GREY if r.get("ok") is None else (_GREEN if r["ok"] else _RED)
                   for r in rows]
        ys = list(range(len(rows)))[::-1]
        bars.barh(ys, ratios, color=colours, height=0.7)
        bars.axvline(1.0, color=_RAW, linestyle="--", linewidth=1.2)
        bars.set_yticks(ys, [f"{r.get('group')}: {r.get('name')}" for r in rows], fontsize=8)
        top = max(max(ratios), 1.0)
        for y, r, ratio in zip(ys, rows, ratios, strict=True):
            unit = r.get("unit", "")
            text = f"{ratio:.2f}  ({_short(r.get('value'))} vs {_short(r.get('raw'))} {unit}"
            text += f"; target {r['target']})" if r.get("target") else ")"
            bars.text(ratio + top * 0.01, y, text, va="center", fontsize=7)
        bars.set_xlim(0, top * 1.55)
        bars.set_xlabel("ratio fluvial / raw (dashed line: the raw backend = 1.0; "
                        "green: target met, red: missed, grey: no target)")
    else:
        bars.text(0.5, 0.5, "no side-by-side rows in this run", ha="center", va="center")
        bars.set_axis_off()
    bars.set_title("fluvial vs raw, this run", fontsize=10)

    # -- ratio history over commits
    if series and labels:
        xs = list(range(len(labels)))
        for name, values in series.items():
            points = [(x, v) for x, v in zip(xs, values, strict=True) if v is not None]
            if points:
                lines.plot([p[0] for p in points], [p[1] for p in points], marker="o",
                           markersize=3, linewidth=1.2, label=name)
        lines.axhline(1.0, color=_RAW, linestyle="--", linewidth=1)
        lines.set_xticks(xs, labels, fontsize=7, rotation=0 if len(xs) <= 8 else 60)
        lines.set_ylabel("ratio fluvial / raw")
        lines.legend(fontsize=7, loc="upper left", bbox_to_anchor=(1.01, 1.0))
    else:
        lines.text(0.5, 0.5, "no history yet on this machine", ha="center", va="center")
        lines.set_axis_off()
    lines.set_title("ratio history over commits (rows with a target, this machine)",
                    fontsize=10)

    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=100)
    plt.close(fig)
    return path


def try_draw(latest: dict[str, Any], history: Sequence[dict[str, Any]], path: Path
             ) -> tuple[Path | None, str | None]:
    """:func:`draw`, or (None, why) when matplotlib is not installed."""
    try:
        import matplotlib  # noqa: F401
    except ImportError:
        return None, ("no picture: matplotlib is not installed "
                      "(`pip install -e '.[bench]'`, which `make bench` does)")
    return draw(latest, history, path), None


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.report", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--out", type=Path, default=RESULTS_DIR,
                        help="directory holding history.jsonl; latest.png is written there")
    args = parser.parse_args(argv)
    history = load_history(args.out / "history.jsonl")
    if not history:
        print(f"no runs in {args.out / 'history.jsonl'} yet: run `make bench` first",
              file=sys.stderr)
        return 1
    path = draw(history[-1], history, args.out / "latest.png")
    print(f"written to {path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())

