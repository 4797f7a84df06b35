"""The benchmark history: one JSON line per run, and the change against the previous run.

``make bench`` appends every run to ``benchmarks/results/history.jsonl``::

    {"commit": "088e47a", "dirty": false, "subject": "...", "date": "2026-11-29T05:40:00Z",
     "machine": {"cores": 2, "cpu": "AMD EPYC", "hostname": "...", "python": "3.11.7"},
     "smoke": false, "groups": ["threads", ...], "rows": [{...}, ...]}

A row is compared with the same row (same ``group`` and ``name``) of the most recent
earlier run on the same machine (same core count and CPU model) and of the same kind
(a smoke run, with ``--quick``/``--n``/``--chain``, only with smoke runs). The ratio is
what is judged, since it is measured against the raw backend in the same run and holds
on a busy machine: a ratio that moved more than 10 % in the bad direction is a
regression. Whether higher or lower is better comes from the row: an explicit
``better`` key, else its target (``>= ...`` or ``<= ...``), else its unit (rates such as
``tasks/s`` are better higher; seconds, MB, %, requests better lower).
"""

from __future__ import annotations

import json
import os
import platform
import subprocess
import sys
import time
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from benchmarks.harness import _fmt

__all__ = [
    "REGRESSION",
    "Change",
    "append_run",
    "compare",
    "git_commit",
    "higher_is_better",
    "load_history",
    "machine",
    "machine_key",
    "render_changes",
    "track",
]

REGRESSION = 0.10  # a ratio worse by more than this fraction is flagged

_LOWER_UNITS = {"s", "ms", "us", "mb", "gb", "kb", "bytes", "%", "requests"}


def machine() -> dict[str, Any]:
    """The machine a run is measured on: cores and CPU model (the key), host and Python."""
    return {"cores": os.cpu_count(), "cpu": _cpu_model(), "hostname": platform.node(),
            "python": sys.version.split()[0]}


def _cpu_model() -> str:
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as info:
            for line in info:
                if line.lower().startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine() or "unknown"


def machine_key(entry: dict[str, Any]) -> tuple[Any, Any]:
    """What makes two runs comparable: the same core count and CPU model."""
    m = entry.get("machine") or {}
    return (m.get("cores"), m.get("cpu"))


def git_commit(root: Path) -> dict[str, Any]:
    """The checked-out commit of ``root``: short hash, subject, whether the tree is dirty."""
    def git(*args: str) -> str:
        return subprocess.run(["git", "-C", str(root), *args], capture_output=True, text=True,
                              timeout=10, check=True).stdout.strip()

    try:
        return {"commit": git("rev-parse", "--short=10", "HEAD"),
                "subject": git("log", "-1", "--format=%s"),
                "dirty": bool(git("status", "--porcelain", "--untracked-files=no"))}
    except (OSError, subprocess.SubprocessError):
        return {"commit": "unknown", "subject": "", "dirty": False}


def load_history(path: Path) -> list[dict[str, Any]]:
    """The runs recorded in ``path``, oldest first ([] if there is no file yet).

    A line that is not valid JSON (a run killed while writing) is skipped, not fatal.
    """
    if not path.exists():
        return []
    entries = []
    for line in path.read_text(encoding="utf-8").splitlines():
        line = line.strip()
        if not line:
            continue
        try:
            entry = json.loads(line)
        except json.JSONDecodeError:
            continue
        if isinstance(entry, dict) and isinstance(entry.get("rows"), list):
            entries.append(entry)
    return entries


def append_run(path: Path, rows: Sequence[dict[str, Any]], *, groups: Sequence[str] = (),
               smoke: bool = False, root: Path | None = None,
               date: str | None = None, machine_info: dict[str, Any] | None = None
               ) -> dict[str, Any]:
    """Append one run to the history file ``path`` (created with its directory); return it."""
    entry: dict[str, Any] = dict(git_commit(root) if root is not None else
                                 {"commit": "unknown", "subject": "", "dirty": False})
    entry["date"] = date or time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
    entry["machine"] = machine_info if machine_info is not None else machine()
    entry["smoke"] = smoke
    entry["groups"] = list(groups)
    entry["rows"] = list(rows)
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("a", encoding="utf-8") as out:
        out.write(json.dumps(entry, sort_keys=True) + "\n")
    return entry


def higher_is_better(row: dict[str, Any]) -> bool:
    """Whether a bigger ratio (and value) of this row is an improvement."""
    better = row.get("better")
    if better in ("higher", "lower"):
        return better == "higher"
    target = str(row.get("target") or "").strip()
    if target.startswith(">"):
        return True
    if target.startswith("<"):
        return False
    unit = str(row.get("unit") or "").strip().lower()
    if "/s" in unit or unit.endswith("per s"):
        return True
    return unit not in _LOWER_UNITS


@dataclass(frozen=True)
class Change:
    """One row against the same row of an earlier run on the same machine."""

    group: str
    name: str
    unit: str
    value: float | None
    previous_value: float | None
    ratio: float | None
    previous_ratio: float | None
    previous_commit: str
    higher_is_better: bool

    @staticmethod
    def _relative(now: float | None, before: float | None) -> float | None:
        if now is None or before is None or before == 0:
            return None
        return (now - before) / abs(before)

    @property
    def value_change(self) -> float | None:
        """Relative change of the value (+0.05 = 5 % more)."""
        return self._relative(self.value, self.previous_value)

    @property
    def ratio_change(self) -> float | None:
        """Relative change of the ratio (+0.05 = 5 % more)."""
        return self._relative(self.ratio, self.previous_ratio)

    @property
    def regression(self) -> bool:
        """The ratio got worse by more than :data:`REGRESSION`."""
        change = self.ratio_change
        if change is None:
            return False
        worse = -change if self.higher_is_better else change
        return worse > REGRESSION + 1e-9


def _number(value: Any) -> float | None:
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    return float(value)


def _comparable(entry: dict[str, Any], latest: dict[str, Any]) -> bool:
    return (machine_key(entry) == machine_key(latest)
            and bool(entry.get("smoke")) == bool(latest.get("smoke")))


def compare(history: Sequence[dict[str, Any]], latest: dict[str, Any]) -> list[Change]:
    """Each row of ``latest`` against the same row of the most recent comparable run before it.

    ``history`` holds the earlier runs, oldest first. Rows never measured before on this
    machine are left out.
    """
    earlier = [e for e in history if _comparable(e, latest)]
    changes = []
    for r in latest.get("rows", []):
        key = (r.get("group"), r.get("name"))
        for before in reversed(earlier):
            old = next((o for o in before.get("rows", [])
                        if (o.get("group"), o.get("name")) == key), None)
            if old is None:
                continue
            changes.append(Change(
                group=str(key[0]), name=str(key[1]), unit=str(r.get("unit", "")),
                value=_number(r.get("value")), previous_value=_number(old.get("value")),
                ratio=_number(r.get("ratio")), previous_ratio=_number(old.get("ratio")),
                previous_commit=str(before.get("commit", "unknown")),
                higher_is_better=higher_is_better(r)))
            break
    return changes


def _pct(change: float | None) -> str:
    return "" if change is None else f"{change * 100:+.1f} %"


def render_changes(changes: Iterable[Change]) -> str:
    """A Markdown table of the changes, regressions marked, and a one-line verdict."""
    changes = list(changes)
    if not changes:
        return "No earlier run on this machine to compare with."
    lines = ["| group | benchmark | value | change | ratio | was | change | |",
             "|---|---|---:|---:|---:|---:|---:|---|"]
    for c in changes:
        value = "" if c.value is None else f"{_fmt(c.value)} {c.unit}".strip()
        ratio = "" if c.ratio is None else f"{c.ratio:.3f}"
        was = "" if c.previous_ratio is None else f"{c.previous_ratio:.3f}"
        flag = f"**REGRESSION** (> {REGRESSION:.0%} worse)" if c.regression else ""
        lines.append(f"| {c.group} | {c.name} | {value} | {_pct(c.value_change)} | {ratio} | "
                     f"{was} | {_pct(c.ratio_change)} | {flag} |")
    regressions = [c for c in changes if c.regression]
    commits = sorted({c.previous_commit for c in changes})
    lines.append("")
    lines.append(f"Compared with the previous run(s) on this machine ({', '.join(commits)}): "
                 + (f"{len(regressions)} ratio(s) regressed by more than {REGRESSION:.0%}: "
                    + "; ".join(f"{c.group} / {c.name}" for c in regressions)
                    if regressions else f"no ratio regressed by more than {REGRESSION:.0%}."))
    return "\n".join(lines)


def track(rows: Sequence[dict[str, Any]], groups: Sequence[str], smoke: bool, out: Path,
          root: Path) -> dict[str, Any]:
    """Append a run to ``out/history.jsonl``, print its change against the previous run on
    this machine (regressions flagged) and draw ``out/latest.png``; return the entry."""
    from benchmarks.report import try_draw

    history_path = out / "history.jsonl"
    earlier = load_history(history_path)
    entry = append_run(history_path, rows, groups=groups, smoke=smoke, root=root)
    print("\n" + render_changes(compare(earlier, entry)))
    png, why = try_draw(entry, [*earlier, entry], out / "latest.png")
    print(f"history: {history_path} ({len(earlier) + 1} runs); "
          + (f"picture: {png}" if png else why or ""))
    return entry
