"""Start-up costs a user pays once per process, each measured in fresh interpreters.

Rows (group ``startup``):

* ``import fluvial`` — median wall time of ``python -c "import fluvial"`` minus the
  median of ``python -c "pass"`` (5 runs each, interleaved). Target <= 0.15 s.
* ``first tiny flow`` — inside a fresh interpreter that has imported fluvial, the time
  from calling a flow of one submitted task (``one.submit().result()`` on the default
  thread runner, run store on) to its return; median of 5 interpreters. The first call
  pays for everything fluvial does lazily: the console log handler, starting the
  runner, opening the run store. Target <= 0.05 s.
"""

from __future__ import annotations

import json
import os
import statistics
import subprocess
import sys
import time
from typing import Any

from benchmarks.harness import ROOT, Options, row

GROUP = "startup"

_FIRST_FLOW = """
import json, time
from fluvial import flow, task

@task
def one():
    return 1

@flow
def tiny():
    return one.submit().result()

start = time.perf_counter()
assert tiny() == 1
print(json.dumps({"seconds": time.perf_counter() - start}))
"""


def _wall(args: list[str]) -> float:
    start = time.perf_counter()
    subprocess.run(args, check=True, capture_output=True, cwd=ROOT)
    return time.perf_counter() - start


def import_seconds(runs: int = 5) -> tuple[float, float]:
    """Median seconds of ``import fluvial`` and of an empty interpreter."""
    with_fluvial, empty = [], []
    for i in range(runs):
        pair = [(with_fluvial, "import fluvial"), (empty, "pass")]
        for times, code in (pair if i % 2 == 0 else reversed(pair)):
            times.append(_wall([sys.executable, "-c", code]))
    return statistics.median(with_fluvial), statistics.median(empty)


def first_flow_seconds(runs: int = 5) -> float:
    """Median, over fresh interpreters, of the first call of a one-task flow."""
    times = []
    env = dict(os.environ)
    for _ in range(runs):
        out = subprocess.run([sys.executable, "-c", _FIRST_FLOW], check=True,
                             capture_output=True, text=True, cwd=ROOT, env=env)
        times.append(json.loads(out.stdout.strip().splitlines()[-1])["seconds"])
    return statistics.median(times)


def run(options: Options | None = None) -> list[dict[str, Any]]:
    """Measure import time and the first flow run; return the rows."""
    options = options or Options()
    runs = 3 if options.quick else 5
    imported, empty = import_seconds(runs)
    cost = imported - empty
    first = first_flow_seconds(runs)
    return [
        row(GROUP, "import fluvial (fresh interpreter)", round(cost, 4), "s",
            target="<= 0.15 s", ok=cost <= 0.15, interpreter_seconds=round(empty, 4),
            method=f"median of {runs} `python -c 'import fluvial'` minus `python -c pass`"),
        row(GROUP, "first tiny flow (fresh interpreter)", round(first, 4), "s",
            target="<= 0.05 s", ok=first <= 0.05,
            method=f"median of {runs} interpreters, call to return of a 1-task flow"),
    ]


if __name__ == "__main__":
    from benchmarks.harness import render_markdown

    print(render_markdown(run()))
