"""Timing helpers and result output shared by the benchmark modules.

A benchmark row is a plain dict::

    {"group": "threads", "name": "map 100000 no-ops", "value": 61234.0, "unit": "tasks/s",
     "raw": 80321.0, "ratio": 0.76, "target": ">= 0.5x raw", "ok": True}

``group``, ``name``, ``value`` and ``unit`` are required (the other engineers' modules
return only those); ``raw``, ``ratio``, ``target`` and ``ok`` are set on side-by-side
comparisons. ``value`` is always fluvial's number.

Timing on a noisy 2-core machine: each side is run ``repeat`` times, alternating which
side goes first, and the best (shortest) time of each side is kept. The ratio of two
bests taken from the same interleaved run holds even when the machine is busy.
"""

from __future__ import annotations

import gc
import json
import math
import platform
import statistics
import subprocess
import sys
import time
import traceback
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

__all__ = [
    "Options",
    "throwaway_home",
    "ROOT",
    "best_pair",
    "compare_throughput",
    "median_subprocess_seconds",
    "render_markdown",
    "row",
    "timed",
    "write_results",
]

ROOT = Path(__file__).resolve().parent.parent  # the project root (holds benchmarks/)
RESULTS_DIR = Path(__file__).resolve().parent / "results"


@dataclass(frozen=True)
class Options:
    """What the command line asked for; each benchmark module picks its sizes from it."""

    quick: bool = False
    n: int | None = None  # overrides every map size (smoke tests use a tiny one)
    chain: int | None = None  # overrides every chain length
    repeat: int = 3

    def sizes(self, full: Sequence[int], quick: Sequence[int]) -> list[int]:
        if self.n is not None:
            return [self.n]
        return list(quick if self.quick else full)

    def chain_length(self, full: int, quick: int) -> int:
        if self.chain is not None:
            return self.chain
        return quick if self.quick else full


def row(group: str, name: str, value: float, unit: str, *, raw: float | None = None,
        ratio: float | None = None, target: str | None = None, ok: bool | None = None,
        **extra: Any) -> dict[str, Any]:
    """One result row (``value`` is fluvial's number, ``raw`` the raw backend's)."""
    out: dict[str, Any] = {"group": group, "name": name, "value": value, "unit": unit}
    if raw is not None:
        out["raw"] = raw
    if ratio is not None:
        out["ratio"] = round(ratio, 3)
    if target is not None:
        out["target"] = target
    if ok is not None:
        out["ok"] = ok
    out.update(extra)
    return out


def timed(fn: Callable[[], Any]) -> float:
    """Seconds taken by one call of ``fn`` (garbage collected first, not during)."""
    gc.collect()
    start = time.perf_counter()
    fn()
    return time.perf_counter() - start


def best_pair(raw: Callable[[], Any], fluvial: Callable[[], Any], repeat: int = 3,
              settle: Callable[[], Any] | None = None,
              settle_raw: Callable[[], Any] | None = None) -> tuple[float, float]:
    """Best seconds of ``raw`` and of ``fluvial`` over ``repeat`` interleaved rounds.

    Round 0 runs raw first, round 1 fluvial first, and so on, so neither side always
    benefits from a warm (or suffers from a cold) machine. ``settle``, if given, is
    called untimed after each fluvial run (e.g. to let the run store's writer catch up,
    so its background work does not land in the next measurement); ``settle_raw`` after
    each raw run (when the "raw" side records too).
    """
    best_raw = best_fluvial = math.inf

    def settled(fn: Callable[[], Any], then: Callable[[], Any] | None) -> float:
        seconds = timed(fn)
        if then is not None:
            then()
        return seconds

    for i in range(repeat):
        if i % 2 == 0:
            best_raw = min(best_raw, settled(raw, settle_raw))
            best_fluvial = min(best_fluvial, settled(fluvial, settle))
        else:
            best_fluvial = min(best_fluvial, settled(fluvial, settle))
            best_raw = min(best_raw, settled(raw, settle_raw))
    return best_raw, best_fluvial


def compare_throughput(group: str, name: str, n: int, raw: Callable[[], Any],
                       fluvial: Callable[[], Any], *, repeat: int = 3,
                       min_ratio: float | None = None, settle: Callable[[], Any] | None = None,
                       **extra: Any) -> dict[str, Any]:
    """Time ``n`` tasks both ways and return a tasks/s row with the fluvial/raw ratio."""
    raw_s, fluvial_s = best_pair(raw, fluvial, repeat, settle)
    fluvial_rate, raw_rate = n / fluvial_s, n / raw_s
    ratio = fluvial_rate / raw_rate
    return row(group, name, round(fluvial_rate, 1), "tasks/s", raw=round(raw_rate, 1),
               ratio=ratio,
               target=None if min_ratio is None else f">= {min_ratio:g}x raw",
               ok=None if min_ratio is None else ratio >= min_ratio,
               fluvial_seconds=round(fluvial_s, 4), raw_seconds=round(raw_s, 4), n=n, **extra)


def median_subprocess_seconds(args: Sequence[str], runs: int = 5, **kwargs: Any) -> float:
    """Median wall time of ``runs`` runs of a command (which must exit 0)."""
    times = []
    for _ in range(runs):
        start = time.perf_counter()
        subprocess.run(args, check=True, capture_output=True, **kwargs)
        times.append(time.perf_counter() - start)
    return statistics.median(times)


# -- output ------------------------------------------------------------------------

def _fmt(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, bool):
        return "yes" if value else "**NO**"
    if isinstance(value, float):
        if value == 0 or abs(value) >= 100:
            return f"{value:,.0f}"
        if abs(value) >= 1:
            return f"{value:,.2f}"
        return f"{value:.3g}"
    if isinstance(value, int):
        return f"{value:,}"
    return str(value)


def render_markdown(rows: Sequence[dict[str, Any]]) -> str:
    """A Markdown table: group, benchmark, fluvial, raw, ratio, target, ok?"""
    lines = ["| group | benchmark | fluvial | raw | ratio | target | ok? |",
             "|---|---|---:|---:|---:|---|---|"]
    for r in rows:
        unit = r.get("unit", "")
        value = f"{_fmt(r.get('value'))} {unit}".strip()
        raw = r.get("raw")
        raw_text = f"{_fmt(raw)} {unit}".strip() if raw is not None else ""
        ratio = r.get("ratio")
        lines.append(
            f"| {r.get('group', '')} | {r.get('name', '')} | {value} | {raw_text} | "
            f"{'' if ratio is None else f'{ratio:.2f}'} | {r.get('target', '')} | "
            f"{_fmt(r.get('ok'))} |"
        )
    return "\n".join(lines)


def environment() -> dict[str, Any]:
    """Where the numbers come from."""
    import os

    return {"python": sys.version.split()[0], "platform": platform.platform(),
            "cpus": os.cpu_count(), "time": time.strftime("%Y-%m-%dT%H:%M:%S%z")}


def write_results(rows: Sequence[dict[str, Any]], notes: Sequence[str] = (),
                  directory: Path = RESULTS_DIR) -> tuple[Path, Path]:
    """Write ``latest.json`` and ``latest.md`` into ``directory``; return their paths."""
    directory.mkdir(parents=True, exist_ok=True)
    json_path, md_path = directory / "latest.json", directory / "latest.md"
    env = environment()
    json_path.write_text(json.dumps({"environment": env, "rows": list(rows),
                                     "notes": list(notes)}, indent=2) + "\n")
    header = (f"# fluvial benchmarks\n\nPython {env['python']} on {env['platform']}, "
              f"{env['cpus']} CPUs, {env['time']}.\n\n")
    footer = "".join(f"\n- {note}" for note in notes)
    md_path.write_text(header + render_markdown(rows) + "\n" + (f"\nNotes:{footer}\n"
                                                                 if notes else ""))
    return json_path, md_path


def error_note(what: str, exc: BaseException) -> str:
    """A one-line note for a benchmark group that failed, with the last frame."""
    last = traceback.extract_tb(exc.__traceback__)[-1:] if exc.__traceback__ else []
    where = f" at {last[0].filename}:{last[0].lineno}" if last else ""
    return f"{what} failed: {type(exc).__name__}: {exc}{where}"


@contextmanager
def throwaway_home() -> Iterator[str]:
    """A temporary ``FLUVIAL_HOME`` (and no ``FLUVIAL_DATABASE_URL``) for this process and
    the processes it starts with ``os.environ``; the previous settings come back after."""
    import os
    import tempfile

    import fluvial.store as store

    saved = {k: os.environ.get(k) for k in ("FLUVIAL_HOME", "FLUVIAL_DATABASE_URL")}
    with tempfile.TemporaryDirectory(ignore_cleanup_errors=True) as home:
        os.environ["FLUVIAL_HOME"] = home
        os.environ.pop("FLUVIAL_DATABASE_URL", None)
        store._reset_for_tests()
        try:
            yield home
        finally:
            store._reset_for_tests()
            for key, value in saved.items():
                if value is None:
                    os.environ.pop(key, None)
                else:
                    os.environ[key] = value

