"""The benchmark picture: ``benchmarks/results/latest.png``.

Drawn with matplotlib (the ``bench`` extra: a benchmark-only dependency, imported here
and nowhere in ``fluvial``), for one run (a history entry) and the history before it:

- **header**: the commit, date and machine, how many targets were met and missed, and
  every missed target that has no raw side (so every miss of the run is on the page).
- **fluvial vs raw, this run**: one small panel per group (a runner, or a feature
  measured on one) and unit, holding every side-by-side row (a ``ratio`` and a ``raw``)
  as a pair of bars: fluvial above, the raw backend below. The value axis is
  logarithmic when the panel's values span more than a decade. Right of each pair: the
  ratio and the target. The fluvial bar is green when its target is met, red and
  hatched with "MISSED" written beside it when not, blue when the row has no target;
  a black tick on the fluvial bar is where the target lies (raw x the target's ratio).
- **ratio history over commits**: one small panel per group, one line per ratio row,
  over the runs on the same machine and of the same kind (full or smoke) as this one,
  the commits on the x axis; the ratio axis is logarithmic when the panel's ratios span
  more than a decade, 1.0 (the raw backend) is dashed, a missed target is a red ring
  round its point.

``python -m benchmarks.report [--out DIR]`` redraws it from ``history.jsonl`` without
running anything.
"""

from __future__ import annotations

import argparse
import math
import re
import sys
import textwrap
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from benchmarks.harness import RESULTS_DIR
from benchmarks.history import load_history, machine_key

__all__ = ["Pair", "draw", "figure", "main", "pairs", "ratio_bounds", "try_draw"]

_MET, _MISSED, _PLAIN, _RAW = "#2e7d32", "#c62828", "#1565c0", "#90a4ae"
_MAX_HISTORY = 30  # runs shown in the history panels (the most recent)
_LOG_SPAN = 10.0  # a panel whose largest value is this many times its smallest: log axis
_WIDTH = 20.0  # inches; at 100 dpi a 2000-pixel-wide picture
_ROW = 0.62  # inches per fluvial/raw pair
_HISTORY_COLUMNS = 3


def _number(value: Any) -> float | None:
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    return float(value)


def _short(value: float) -> str:
    if abs(value) >= 1000:
        return f"{value:,.0f}"
    return f"{value:.3g}"


def ratio_bounds(target: Any) -> tuple[float | None, float | None]:
    """The ratios a target allows, ``(low, high)``: ``">= 0.8x raw"`` is ``(0.8, None)``,
    ``"<= 2x raw"`` ``(None, 2.0)``, ``"within 10%"`` ``(0.9, 1.1)``; ``(None, None)`` for
    no target or one this cannot read."""
    text = str(target or "").strip()
    within = re.fullmatch(r"within\s+([0-9.]+)\s*%", text)
    if within:
        share = float(within.group(1)) / 100
        return 1 - share, 1 + share
    bound = re.match(r"(>=|<=|>|<)\s*([0-9]*\.?[0-9]+)\s*x?(\s|$)", text)
    if not bound:
        return None, None
    limit = float(bound.group(2))
    return (limit, None) if bound.group(1).startswith(">") else (None, limit)


@dataclass(frozen=True)
class Pair:
    """One side-by-side row of a run, as the picture draws it."""

    group: str
    name: str
    unit: str
    value: float
    raw: float
    ratio: float
    target: str
    ok: bool | None  # None: no target
    raw_means: str

    @property
    def panel(self) -> tuple[str, str]:
        """The panel it is drawn in: its group and unit (one value axis per panel)."""
        return self.group, self.unit


def pairs(rows: Sequence[dict[str, Any]]) -> list[Pair]:
    """The rows with a fluvial value, a raw value and their ratio, in the run's order."""
    found = []
    for r in rows:
        value, raw, ratio = _number(r.get("value")), _number(r.get("raw")), _number(r.get("ratio"))
        if value is None or raw is None or ratio is None:
            continue
        ok = r.get("ok")
        found.append(Pair(
            group=str(r.get("group", "")), name=str(r.get("name", "")),
            unit=str(r.get("unit", "")), value=value, raw=raw, ratio=ratio,
            target=str(r.get("target") or ""), ok=ok if isinstance(ok, bool) else None,
            raw_means=str(r.get("raw_means") or "")))
    return found


def _comparable_runs(history: Sequence[dict[str, Any]], latest: dict[str, Any]
                     ) -> list[dict[str, Any]]:
    return [e for e in history
            if machine_key(e) == machine_key(latest)
            and bool(e.get("smoke")) == bool(latest.get("smoke"))][-_MAX_HISTORY:]


def _history(runs: Sequence[dict[str, Any]]
             ) -> dict[str, dict[str, list[tuple[int, float, bool | None]]]]:
    """group -> row name -> [(run index, ratio, ok)] over ``runs``, in first-seen order."""
    series: dict[str, dict[str, list[tuple[int, float, bool | None]]]] = {}
    for index, entry in enumerate(runs):
        for r in entry.get("rows", []):
            ratio = _number(r.get("ratio"))
            if ratio is None or ratio <= 0:
                continue
            ok = r.get("ok")
            lines = series.setdefault(str(r.get("group", "")), {})
            lines.setdefault(str(r.get("name", "")), []).append(
                (index, ratio, ok if isinstance(ok, bool) else None))
    return series


def _run_label(entry: dict[str, Any]) -> str:
    commit = str(entry.get("commit", "?"))[:7] + ("+" if entry.get("dirty") else "")
    return f"{commit}\n{str(entry.get('date', ''))[5:16].replace('T', ' ')}"


def _wrap(text: str, width: int) -> str:
    return "\n".join(textwrap.wrap(text, width)) or text


def _header(latest: dict[str, Any]) -> tuple[str, list[str]]:
    """The title line and the lines under it (the score, then the misses with no raw)."""
    machine = latest.get("machine") or {}
    title = (f"fluvial benchmarks: {str(latest.get('commit', '?'))[:10]}"
             f"{' (uncommitted changes)' if latest.get('dirty') else ''}, "
             f"{latest.get('date', '')}, {machine.get('cores', '?')} cores "
             f"{machine.get('cpu', '?')}{', SMOKE RUN (small sizes)' if latest.get('smoke') else ''}")
    rows = latest.get("rows", [])
    judged = [r for r in rows if isinstance(r.get("ok"), bool)]
    missed = [r for r in judged if r["ok"] is False]
    lines = [f"{len(judged)} targets: {len(judged) - len(missed)} met, {len(missed)} missed"
             if judged else "no row of this run has a target"]
    paired = {(p.group, p.name) for p in pairs(rows)}
    for r in missed:
        if (r.get("group"), r.get("name")) in paired:
            continue
        value = _number(r.get("value"))
        shown = _short(value) if value is not None else str(r.get("value"))
        lines.append(f"MISSED  {r.get('group')}: {r.get('name')} = {shown} "
                     f"{r.get('unit', '')} (target {r.get('target')})")
    return title, lines


def _target_ticks(pair: Pair) -> list[float]:
    """Where the target lies on the value axis: raw x each bound of its ratio."""
    return [pair.raw * bound for bound in ratio_bounds(pair.target) if bound is not None]


def _verdict(pair: Pair) -> str:
    """What is written right of a pair: the ratio, met or MISSED, and the target."""
    verdict = "" if pair.ok is None else ("  met" if pair.ok else "  MISSED")
    return f"{pair.ratio:.2f}x{verdict}\n{f'target {pair.target}' if pair.target else 'no target'}"


def _draw_pairs(ax: Any, panel: Sequence[Pair], title: str) -> None:
    """One panel of fluvial/raw bar pairs, the ratio and target written right of each."""
    values = [v for p in panel for v in (p.value, p.raw, *_target_ticks(p)) if v > 0]
    log = bool(values) and max(values) / min(values) > _LOG_SPAN
    if log:
        ax.set_xscale("log")
    n = len(panel)
    for i, p in enumerate(panel):
        y = n - 1 - i
        colour = _PLAIN if p.ok is None else (_MET if p.ok else _MISSED)
        ax.barh(y + 0.2, p.value, height=0.38, color=colour,
                hatch="//" if p.ok is False else None, edgecolor="white" if p.ok is False
                else colour, linewidth=0)
        ax.barh(y - 0.2, p.raw, height=0.38, color=_RAW)
        ticks = _target_ticks(p)
        for tick in ticks:
            ax.plot([tick] * 2, [y + 0.0, y + 0.42], color="black", linewidth=2.2,
                    solid_capstyle="butt")
        ax.text(p.value, y + 0.2, f" {_short(p.value)}", va="center", fontsize=8, zorder=3,
                bbox={"facecolor": "white", "alpha": 0.8, "edgecolor": "none", "pad": 0.5})
        raw_name = f"raw: {p.raw_means}" if p.raw_means else "raw"
        ax.text(p.raw, y - 0.2, f" {_short(p.raw)}  {textwrap.shorten(raw_name, 46)}",
                va="center", fontsize=7, color="#455a64")
    # names on the left, ratio and target on the right: both tick labels, so the layout
    # makes room for them
    right = ax.secondary_yaxis("right")
    ax.set_yticks(range(n), [_wrap(p.name, 34) for p in reversed(panel)], fontsize=8)
    right.set_yticks(range(n), [_verdict(p) for p in reversed(panel)], fontsize=8)
    right.tick_params(length=0, pad=6)
    for labels in (ax.get_yticklabels(), right.get_yticklabels()):
        for label, p in zip(labels, reversed(panel), strict=True):
            if p.ok is False:
                label.set_color(_MISSED)
                label.set_fontweight("bold")
    for label, p in zip(right.get_yticklabels(), reversed(panel), strict=True):
        label.set_color(_PLAIN if p.ok is None else (_MET if p.ok else _MISSED))
    ax.set_ylim(-0.7, n - 0.3)
    top = max(values, default=1.0)
    if log:
        ax.set_xlim(min(values) / 2, top * 40)  # room for the value labels
    else:
        ax.set_xlim(0, top * 1.9)
    ax.set_title(f"{title}{' (log scale)' if log else ''}", fontsize=10, loc="left",
                 fontweight="bold")
    _readable_ticks(ax.xaxis, log, decades=3.0)
    ax.tick_params(axis="x", labelsize=7)
    ax.grid(axis="x", color="#eceff1", linewidth=0.8)
    ax.set_axisbelow(True)


def _readable_ticks(axis: Any, log: bool, decades: float = 0.0) -> None:
    """Plain numbers on a value axis (1, 2, 5, 10, 1,000), never 10^3 or 2x10^-1; on a log
    axis spanning more than two decades, only the powers of ten."""
    from matplotlib.ticker import FuncFormatter, LogLocator, NullFormatter

    if log:
        axis.set_major_locator(LogLocator(subs=(1.0,) if decades > 2 else (1.0, 2.0, 5.0)))
        axis.set_minor_formatter(NullFormatter())
    axis.set_major_formatter(FuncFormatter(lambda value, _: _short(value)))


def _draw_history(ax: Any, group: str, lines: dict[str, list[tuple[int, float, bool | None]]],
                  labels: Sequence[str]) -> None:
    ratios = [y for points in lines.values() for _, y, _ in points] + [1.0]
    log = max(ratios) / min(ratios) > _LOG_SPAN
    if log:
        ax.set_yscale("log")
    else:
        ax.set_ylim(0, max(ratios) * 1.15)
    _readable_ticks(ax.yaxis, log, decades=math.log10(max(ratios) / min(ratios)))
    ax.axhline(1.0, color="#37474f", linestyle="--", linewidth=1)
    for name, points in lines.items():
        xs, ys = [p[0] for p in points], [p[1] for p in points]
        (line,) = ax.plot(xs, ys, marker="o", markersize=4, linewidth=1.4,
                          label=textwrap.shorten(name, 52))
        missed = [(x, y) for x, y, ok in points if ok is False]
        if missed:
            ax.plot([m[0] for m in missed], [m[1] for m in missed], linestyle="none",
                    marker="o", markersize=11, markeredgewidth=2.2, markerfacecolor="none",
                    markeredgecolor=_MISSED)
    ax.set_xticks(range(len(labels)), labels, fontsize=7,
                  rotation=0 if len(labels) <= 6 else 60)
    ax.set_xlim(-0.5, len(labels) - 0.5)
    ax.set_title(f"{group}{' (log scale)' if log else ''}", fontsize=10, loc="left",
                 fontweight="bold")
    ax.set_ylabel("fluvial / raw", fontsize=8)
    ax.tick_params(axis="y", labelsize=7)
    ax.grid(axis="y", which="both", color="#eceff1", linewidth=0.8)
    ax.legend(fontsize=7, loc="upper center", bbox_to_anchor=(0.5, -0.12 if len(labels) <= 6
              else -0.3), ncol=1, frameon=False)


def _columns(panels: Sequence[list[Pair]]) -> list[list[list[Pair]]]:
    """The panels split into two columns of about equal height, keeping their order."""
    sizes = [len(p) + 1.2 for p in panels]
    total, height, split = sum(sizes), 0.0, len(panels)
    for i, size in enumerate(sizes):
        if height + size / 2 > total / 2:
            split = i
            break
        height += size
    split = max(1, split) if len(panels) > 1 else len(panels)
    return [list(panels[:split]), list(panels[split:])]


def figure(latest: dict[str, Any], history: Sequence[dict[str, Any]]) -> Any:
    """The picture of the run ``latest`` (a history entry) as a matplotlib ``Figure``."""
    import matplotlib

    matplotlib.use("Agg")  # files only, no display
    import matplotlib.pyplot as plt
    from matplotlib.layout_engine import ConstrainedLayoutEngine
    from matplotlib.lines import Line2D
    from matplotlib.patches import Patch

    panels: dict[tuple[str, str], list[Pair]] = {}
    for p in pairs(latest.get("rows", [])):
        panels.setdefault(p.panel, []).append(p)
    columns = [c for c in _columns(list(panels.values())) if c]
    runs = _comparable_runs(history, latest)
    series = _history(runs)
    order = [p.group for p in pairs(latest.get("rows", []))]
    series = dict(sorted(series.items(), key=lambda item: (
        order.index(item[0]) if item[0] in order else len(order))))
    labels = [_run_label(e) for e in runs]
    title, notes = _header(latest)

    bars_height = max((sum(len(p) * _ROW + 0.75 for p in c) for c in columns), default=1.5)
    history_rows = math.ceil(len(series) / _HISTORY_COLUMNS)
    line_count = max((len(lines) for lines in series.values()), default=0)
    history_height = history_rows * (3.2 + 0.16 * line_count) if series else 1.5
    header_height = 0.9 + 0.2 * len(notes)
    fig = plt.figure(figsize=(_WIDTH, header_height + bars_height + history_height + 1.0),
                     layout=ConstrainedLayoutEngine(w_pad=0.12, h_pad=0.06))
    parts: Any = fig.subfigures(3, 1, height_ratios=[
        header_height, bars_height + 0.5, history_height + 0.5])
    top, middle, bottom = parts

    top.text(0.01, 0.95, title, fontsize=14, fontweight="bold", va="top")
    for i, line in enumerate(notes):
        top.text(0.01, 0.95 - (0.45 + 0.2 * i) / header_height, line, va="top",
                 fontsize=10 if i == 0 else 9,
                 color=_MISSED if line.startswith("MISSED") else "black",
                 fontweight="bold" if i == 0 and "0 missed" not in line else "normal")

    middle.suptitle("fluvial vs the raw backend, this run (bars: fluvial above, raw below; "
                    "right: ratio fluvial / raw and target)", fontsize=12, x=0.01, ha="left")
    if columns:
        middle.legend(handles=[
            Patch(color=_MET, label="fluvial, target met"),
            Patch(facecolor=_MISSED, hatch="//", edgecolor="white",
                  label="fluvial, target MISSED"),
            Patch(color=_PLAIN, label="fluvial, no target"),
            Patch(color=_RAW, label="raw backend"),
            Line2D([], [], color="black", marker="|", linestyle="none", markersize=13,
                   markeredgewidth=2.5, label="target (raw x the target's ratio)"),
        ], loc="upper right", ncol=5, fontsize=8, frameon=False)
        grid: Any = middle.subfigures(1, len(columns), wspace=0.05, squeeze=False)
        subs = list(grid.flat)
        for column, sub in zip(columns, subs, strict=True):
            axes = sub.subplots(len(column), 1, squeeze=False, gridspec_kw={
                "height_ratios": [len(p) * _ROW + 0.4 for p in column]})[:, 0]
            for ax, panel in zip(axes, column, strict=True):
                group, unit = panel[0].panel
                _draw_pairs(ax, panel, f"{group} ({unit})" if unit else group)
    else:
        ax = middle.subplots()
        ax.text(0.5, 0.5, "no side-by-side rows in this run", ha="center", va="center")
        ax.set_axis_off()

    bottom.suptitle("ratio fluvial / raw over commits (this machine, "
                    f"{'smoke' if latest.get('smoke') else 'full'} runs; "
                    "dashed: 1.0 = the raw backend; red ring: target missed)",
                    fontsize=12, x=0.01, ha="left")
    if series:
        grid = bottom.subplots(history_rows, _HISTORY_COLUMNS, squeeze=False)
        cells = list(grid.flat)
        for ax, (group, lines) in zip(cells, series.items(), strict=False):
            _draw_history(ax, group, lines, labels)
        for ax in cells[len(series):]:
            ax.set_axis_off()
    else:
        ax = bottom.subplots()
        ax.text(0.5, 0.5, "no ratio history yet on this machine", ha="center", va="center")
        ax.set_axis_off()

    return fig


def draw(latest: dict[str, Any], history: Sequence[dict[str, Any]], path: Path) -> Path:
    """Draw the picture of the run ``latest`` (a history entry) into the PNG ``path``."""
    import matplotlib.pyplot as plt

    fig = figure(latest, history)
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        fig.savefig(path, dpi=100)
    finally:
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
