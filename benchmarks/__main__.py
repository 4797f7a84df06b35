"""``python -m benchmarks [GROUP ...] [--quick] [--n N] [--chain L] [--repeat R] [--out DIR]``.

Runs the benchmark groups (all by default, which is what ``make bench`` does), prints a
Markdown table, and writes ``latest.json`` and ``latest.md`` to ``benchmarks/results/``
(or ``--out``). Each run is then appended to ``history.jsonl`` there (commit, date,
machine; see :mod:`benchmarks.history`), compared with the previous run on the same
machine (ratios more than 10 % worse are flagged), and drawn into ``latest.png`` (see
:mod:`benchmarks.report`; needs the ``bench`` extra). A group whose module is missing is skipped with a note; a group that
raises is reported in the notes and the run goes on (the exit status is then 1).

The whole run uses a throwaway ``FLUVIAL_HOME``, so the run store and result files the
flows write never touch the user's ``~/.fluvial``.
"""

from __future__ import annotations

import argparse
import faulthandler
import importlib
import inspect
import logging
import os
import sys
import tempfile
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from benchmarks.cli import add_output, new_parser, parse
from benchmarks.harness import (
    RESULTS_DIR,
    ROOT,
    Options,
    error_note,
    render_markdown,
    write_results,
)
from benchmarks.history import track

# group -> (module, function); in the order they run
GROUPS: dict[str, tuple[str, str]] = {
    "threads": ("benchmarks.bench_threads", "run"),
    "startup": ("benchmarks.bench_startup", "run"),
    "serialization": ("benchmarks.bench_serialization", "run"),
    "store": ("benchmarks.bench_store", "run"),
    "concurrency": ("benchmarks.bench_concurrency", "run"),
    "processes": ("benchmarks.bench_remote", "run_processes"),
    "dask": ("benchmarks.bench_remote", "run_dask"),
    "ray": ("benchmarks.bench_remote", "run_ray"),
    "caching": ("benchmarks.bench_features", "run_caching"),
    "limits": ("benchmarks.bench_features", "run_limits"),
    "streaming": ("benchmarks.bench_streaming", "run"),
    "locality": ("benchmarks.bench_features", "run_locality"),
    "scheduler": ("benchmarks.bench_scheduler", "run"),
    "exactly-once": ("benchmarks.bench_exactly_once", "run"),
    "workers": ("benchmarks.bench_workers", "run"),
    "events": ("benchmarks.bench_events", "run"),
    "server": ("benchmarks.bench_server", "run"),
}


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    parser = new_parser("python -m benchmarks", __doc__, names="groups", metavar="GROUP",
                        choices=list(GROUPS), what="groups to run",
                        quick="smaller sizes and fewer runs: a smoke check, not a measurement")
    parser.add_argument("--n", type=int, default=None,
                        help="override every .map size (e.g. --n 200 for a smoke test)")
    parser.add_argument("--chain", type=int, default=None,
                        help="override every dependency-chain length")
    parser.add_argument("--repeat", type=int, default=3,
                        help="timed rounds per side; the best is kept (default: 3)")
    parser.add_argument("--group-timeout", type=float, default=600.0,
                        help="seconds one group may take before the run dumps every "
                             "thread's stack and exits 1 (a hang is a bug to report, not "
                             "a number; default: 600)")
    add_output(parser, RESULTS_DIR, holds="latest.json, latest.md, history.jsonl and "
               "latest.png", no_history="do not append this run to history.jsonl (nor "
               "compare or draw)")
    return parse(parser, argv, names="groups", choices=list(GROUPS), noun="group",
                 counts=("n", "chain", "repeat"))


def _call(fn: Callable[..., list[dict[str, Any]]], options: Options) -> list[dict[str, Any]]:
    """Call a group's ``run``: ours take ``options``; others may take ``quick`` or nothing."""
    params = inspect.signature(fn).parameters
    if "options" in params:
        return fn(options)
    if "quick" in params:
        return fn(quick=options.quick)
    return fn()


def run_groups(groups: Sequence[str], options: Options, out: Path = RESULTS_DIR,
               group_timeout: float = 600.0) -> tuple[list[dict[str, Any]], list[str], bool]:
    """Run ``groups``; return (rows, notes, whether every group ran without error).

    The results so far are written after every group, and a watchdog ends the process
    (stacks on stderr) if one group takes longer than ``group_timeout`` seconds, so a
    hang still leaves the numbers of the groups before it in ``out``.
    """
    rows: list[dict[str, Any]] = []
    notes: list[str] = []
    clean = True
    for group in groups:
        write_results(rows, [*notes, f"partial: stopped before or during {group}"], out)
        module_name, fn_name = GROUPS[group]
        print(f"[benchmarks] {group} ...", file=sys.stderr, flush=True)
        faulthandler.dump_traceback_later(group_timeout, exit=True)
        try:
            clean = _run_group(group, module_name, fn_name, options, rows, notes) and clean
        finally:
            faulthandler.cancel_dump_traceback_later()
    return rows, notes, clean


def _run_group(group: str, module_name: str, fn_name: str, options: Options,
               rows: list[dict[str, Any]], notes: list[str]) -> bool:
    """Run one group, appending its rows (or a note); False if it failed."""
    start = time.perf_counter()
    try:
        module = importlib.import_module(module_name)
        if not hasattr(module, fn_name):
            raise AttributeError(f"{module_name} has no {fn_name}()")
    except ModuleNotFoundError as exc:
        if exc.name != module_name:  # the module is there, one of its imports is not
            return _failed(group, exc, notes)
        note = f"{group}: skipped, {module_name} is not there"
        print(f"[benchmarks] {note}", file=sys.stderr)
        notes.append(note)
        return True
    except Exception as exc:
        return _failed(group, exc, notes)
    try:
        group_rows = _call(getattr(module, fn_name), options)
    except Exception as exc:  # one broken group must not cost the others' numbers
        return _failed(group, exc, notes)
    for r in group_rows:
        r.setdefault("group", group)
    rows.extend(group_rows)
    print(f"[benchmarks] {group}: {len(group_rows)} rows in "
          f"{time.perf_counter() - start:.1f} s", file=sys.stderr, flush=True)
    return True


def _failed(group: str, exc: BaseException, notes: list[str]) -> bool:
    notes.append(error_note(group, exc))
    print(f"[benchmarks] {notes[-1]}", file=sys.stderr, flush=True)
    return False


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    groups = args.groups or list(GROUPS)
    options = Options(quick=args.quick, n=args.n, chain=args.chain, repeat=args.repeat)
    logging.getLogger("fluvial").setLevel(logging.WARNING)  # no per-flow INFO lines
    os.environ.setdefault("RAY_AUTH_MODE", "disabled")  # a local session needs no token
    saved_home = os.environ.get("FLUVIAL_HOME")
    started = time.perf_counter()
    with tempfile.TemporaryDirectory(prefix="fluvial-bench-") as home:
        os.environ["FLUVIAL_HOME"] = home
        try:
            rows, notes, clean = run_groups(groups, options, args.out, args.group_timeout)
        finally:
            try:
                from fluvial import store

                store._reset_for_tests()  # close the recorder before its home goes away
            except Exception:  # noqa: BLE001 - best effort at exit
                pass
            if saved_home is None:
                os.environ.pop("FLUVIAL_HOME", None)
            else:
                os.environ["FLUVIAL_HOME"] = saved_home
    smoke = args.quick or args.n is not None or args.chain is not None
    if smoke:
        notes.append("smoke run (--quick/--n/--chain): sizes differ from the targets' sizes")
    json_path, md_path = write_results(rows, notes, args.out)
    print(render_markdown(rows))
    missed = [r for r in rows if r.get("ok") is False]
    print(f"\n{len(rows)} rows in {time.perf_counter() - started:.0f} s; "
          f"{len(missed)} target(s) missed; written to {json_path} and {md_path}")
    for note in notes:
        print(f"note: {note}")
    if not args.no_history:
        track(rows, groups, smoke, args.out, ROOT)
    return 0 if clean else 1


if __name__ == "__main__":
    sys.exit(main())
